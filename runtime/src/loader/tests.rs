//! In-process tests of the whole loader: real programs mapped into the test
//! process, checked through /proc/self/mem and /proc/self/maps (no unsafe).

use std::ffi::OsString;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::elf::{ElfKind, LoadPlan, page_up};
use super::stack::{self, ParsedStack};
use super::*;

/// ET_EXEC programs load at fixed addresses: one at a time.
static FIXED: Mutex<()> = Mutex::new(());

fn lock() -> std::sync::MutexGuard<'static, ()> {
    FIXED.lock().unwrap_or_else(|p| p.into_inner())
}

fn read_mem(addr: u64, len: usize) -> Option<Vec<u8>> {
    let f = File::open("/proc/self/mem").ok()?;
    let mut buf = vec![0u8; len];
    f.read_exact_at(&mut buf, addr).ok()?;
    Some(buf)
}

fn os(v: &[&str]) -> Vec<OsString> {
    v.iter().map(OsString::from).collect()
}

/// A scratch directory private to the calling test (libtest names each
/// test's thread after it).
fn scratch_dir() -> PathBuf {
    let test = std::thread::current().name().unwrap_or("main").replace("::", "-");
    let d = std::env::temp_dir().join(format!("bt-run-loader-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn remove_scratch() {
    let _ = std::fs::remove_dir_all(scratch_dir());
}

fn write_exec(name: &str, bytes: &[u8], mode: u32) -> PathBuf {
    let p = scratch_dir().join(name);
    std::fs::write(&p, bytes).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    p
}

/// (start, end, perms) of every line of /proc/self/maps.
fn maps() -> Vec<(u64, u64, String)> {
    let text = std::fs::read_to_string("/proc/self/maps").unwrap();
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let range = it.next()?;
            let perms = it.next()?.to_string();
            let (a, b) = range.split_once('-')?;
            Some((u64::from_str_radix(a, 16).ok()?, u64::from_str_radix(b, 16).ok()?, perms))
        })
        .collect()
}

fn parse_stack(prog: &LoadedProgram) -> ParsedStack {
    stack::parse(prog.stack_pointer, read_mem).expect("stack parses back")
}

fn aux(p: &ParsedStack, key: u64) -> Option<u64> {
    p.auxv.iter().find(|e| e.0 == key).map(|e| e.1)
}

/// Checks everything a loaded program must satisfy against its file.
fn check_image(prog: &LoadedProgram, file: &Path, bias: u64) {
    let bytes = std::fs::read(file).unwrap();
    let plan = LoadPlan::parse(&bytes).unwrap();
    let maps = maps();
    for seg in &plan.segments {
        let at = seg.vaddr.wrapping_add(bias);
        let mem = read_mem(at, seg.filesz as usize).expect("segment readable");
        let want = &bytes[seg.offset as usize..(seg.offset + seg.filesz) as usize];
        assert!(mem == want, "segment at {at:#x} differs from the file");
        let bss_end = page_up(seg.vaddr + seg.memsz).unwrap().wrapping_add(bias);
        let tail = read_mem(at + seg.filesz, (bss_end - at - seg.filesz) as usize).unwrap();
        if seg.memsz > seg.filesz {
            assert!(tail.iter().all(|&b| b == 0), "bss at {:#x} not zero", at + seg.filesz);
        } else {
            // Like the kernel, the rest of the last page shows the file.
            let from = (seg.offset + seg.filesz) as usize;
            let upto = (from + tail.len()).min(bytes.len());
            assert!(tail[..upto - from] == bytes[from..upto], "page tail at {at:#x} differs");
        }
        let r = prog.regions.iter().find(|r| r.start.get() <= at && at < r.end.get()).expect("segment has a region");
        assert_eq!(r.prot, seg.guest_prot());
        // Host view: mapped, never executable.
        for (s, e, perms) in maps.iter().filter(|m| m.0 < bss_end && at < m.1) {
            assert!(!perms.contains('x'), "{s:#x}-{e:#x} {perms} is host-executable");
            if seg.flags != 0 {
                assert!(perms.starts_with('r'), "{s:#x}-{e:#x} {perms} unreadable");
            }
        }
    }
}

fn unload(prog: LoadedProgram) {
    map::unmap_for_tests(&prog.regions);
}

#[test]
fn loader_maps_static_busybox() {
    let Some(bin) = elf::tests::static_binary() else { panic!("no static binary available") };
    let _g = lock();
    let argv = os(&["busybox", "echo", "hello world"]);
    let envp = os(&["A=1", "LANG=C"]);
    let prog = load(&LoadRequest { path: &bin, argv: &argv, envp: &envp, main_within: None, rest_within: None })
        .expect("load");
    let plan = LoadPlan::parse(&std::fs::read(&bin).unwrap()).unwrap();
    assert_eq!(plan.kind, ElfKind::Exec);
    assert_eq!(prog.main_bias, 0);
    assert_eq!(prog.entry.get(), plan.entry);
    assert_eq!(prog.main_entry, prog.entry);
    assert_eq!(prog.interp_base, None);
    assert_eq!(prog.brk_start.get() % 4096, 0);
    assert!(prog.brk_start.get() >= plan.max_vaddr && prog.brk_start.get() < plan.max_vaddr + (32 << 20));
    check_image(&prog, &bin, 0);

    // The stack: region, alignment, contents.
    assert_eq!(prog.stack_pointer.get() % 16, 0);
    assert!(prog.stack.start < prog.stack_pointer && prog.stack_pointer < prog.stack.end);
    assert!(prog.regions.contains(&prog.stack));
    let st = parse_stack(&prog);
    assert_eq!(st.argv, argv.iter().map(|s| s.as_bytes().to_vec()).collect::<Vec<_>>());
    assert_eq!(st.envp, envp.iter().map(|s| s.as_bytes().to_vec()).collect::<Vec<_>>());
    assert_eq!(aux(&st, stack::AT_ENTRY), Some(plan.entry));
    assert_eq!(aux(&st, stack::AT_BASE), Some(0));
    assert_eq!(aux(&st, stack::AT_PAGESZ), Some(4096));
    assert_eq!(aux(&st, stack::AT_PHNUM), Some(u64::from(plan.phnum)));
    assert_eq!(aux(&st, stack::AT_PHENT), Some(56));
    assert_eq!(aux(&st, stack::AT_PHDR), Some(prog.phdr.get()));
    assert_eq!(aux(&st, stack::AT_SECURE), Some(0));
    assert!(aux(&st, 27).is_none() && aux(&st, 28).is_none(), "no AT_RSEQ_*");
    // AT_PHDR points at the real program headers.
    let raw = std::fs::read(&bin).unwrap();
    let phoff = u64::from_le_bytes(raw[32..40].try_into().unwrap()) as usize;
    let n = plan.phnum as usize * 56;
    assert_eq!(read_mem(prog.phdr.get(), n).unwrap(), raw[phoff..phoff + n]);
    let execfn = read_mem(aux(&st, stack::AT_EXECFN).unwrap(), bin.as_os_str().len() + 1).unwrap();
    assert_eq!(&execfn[..execfn.len() - 1], bin.as_os_str().as_bytes());
    assert_eq!(read_mem(aux(&st, stack::AT_PLATFORM).unwrap(), 7).unwrap(), b"x86_64\0");
    assert!(read_mem(aux(&st, stack::AT_RANDOM).unwrap(), 16).is_some());
    // The host's values are passed through, as the kernel gave them (not
    // glibc's getauxval, which rewrites AT_HWCAP).
    let host = std::fs::read("/proc/self/auxv").unwrap();
    let host_aux = |key: u64| {
        host.chunks_exact(16)
            .find(|c| u64::from_le_bytes(c[..8].try_into().unwrap()) == key)
            .map(|c| u64::from_le_bytes(c[8..].try_into().unwrap()))
    };
    for key in [stack::AT_SYSINFO_EHDR, stack::AT_MINSIGSTKSZ, stack::AT_HWCAP, stack::AT_HWCAP2, stack::AT_CLKTCK] {
        assert_eq!(aux(&st, key), host_aux(key), "auxv key {key}");
    }

    // The fixed range is now taken: a second load fails cleanly.
    let err =
        load(&LoadRequest { path: &bin, argv: &argv, envp: &envp, main_within: None, rest_within: None }).unwrap_err();
    assert!(matches!(err, LoadError::MapFailed { .. }), "{err}");
    assert!(err.to_string().contains("already in use"), "{err}");
    assert_eq!(err.exit_code(), 126);
    // ... and leaves the first one intact.
    check_image(&prog, &bin, 0);
    unload(prog);
}

#[test]
fn loader_maps_dynamic_program_and_interpreter() {
    let bin = PathBuf::from("/bin/ls");
    let argv = os(&["ls", "-l"]);
    let prog =
        load(&LoadRequest { path: &bin, argv: &argv, envp: &[], main_within: None, rest_within: None }).expect("load");
    let bytes = std::fs::read(&bin).unwrap();
    let plan = LoadPlan::parse(&bytes).unwrap();
    assert_eq!(plan.kind, ElfKind::Dyn);
    assert_eq!(prog.main_bias % 4096, 0);
    assert_ne!(prog.main_bias, 0);
    check_image(&prog, &bin, prog.main_bias);
    let interp = plan.interp.clone().unwrap();
    let base = prog.interp_base.expect("interpreter loaded");
    check_image(&prog, &interp, base);
    let iplan = LoadPlan::parse(&std::fs::read(&interp).unwrap()).unwrap();
    assert_eq!(prog.entry.get(), iplan.entry + base);
    assert_eq!(prog.main_entry.get(), plan.entry + prog.main_bias);
    let st = parse_stack(&prog);
    assert_eq!(aux(&st, stack::AT_BASE), Some(base));
    assert_eq!(aux(&st, stack::AT_ENTRY), Some(prog.main_entry.get()));
    assert_eq!(aux(&st, stack::AT_PHDR), Some(plan.phdr_vaddr + prog.main_bias));
    assert_eq!(st.argv, vec![b"ls".to_vec(), b"-l".to_vec()]);
    // Regions are sorted and disjoint.
    for w in prog.regions.windows(2) {
        assert!(w[0].end <= w[1].start, "{:?} overlaps {:?}", w[0], w[1]);
    }
    unload(prog);
}

#[test]
fn loader_places_position_independent_program_in_the_band_asked() {
    let bin = PathBuf::from("/bin/ls");
    let argv = os(&["ls"]);
    let band = crate::isolate::EXEC_SAFE_BAND;
    let prog = load(&LoadRequest { path: &bin, argv: &argv, envp: &[], main_within: Some(band), rest_within: None })
        .expect("load");
    let plan = LoadPlan::parse(&std::fs::read(&bin).unwrap()).unwrap();
    let (start, end) = (plan.min_vaddr + prog.main_bias, plan.max_vaddr + prog.main_bias);
    assert!(band.0 <= start && end <= band.1, "{start:#x}-{end:#x} outside {:#x}-{:#x}", band.0, band.1);
    check_image(&prog, &bin, prog.main_bias);
    // The interpreter still goes where the kernel puts mappings.
    assert!(prog.interp_base.expect("interpreter loaded") >= band.1);
    unload(prog);
}

#[test]
fn loader_runs_interpreter_as_program() {
    let ls = std::fs::read("/bin/ls").unwrap();
    let interp = LoadPlan::parse(&ls).unwrap().interp.unwrap();
    let argv = vec![interp.clone().into_os_string(), "/bin/ls".into()];
    let prog = load(&LoadRequest { path: &interp, argv: &argv, envp: &[], main_within: None, rest_within: None })
        .expect("load ld.so");
    assert_eq!(prog.interp_base, None);
    assert_eq!(prog.entry, prog.main_entry);
    check_image(&prog, &interp, prog.main_bias);
    assert_eq!(aux(&parse_stack(&prog), stack::AT_BASE), Some(0));
    unload(prog);
}

#[test]
fn loader_follows_shebang() {
    let script = write_exec("hello.sh", b"#!/bin/sh -e\necho hi\n", 0o755);
    let argv = os(&["hello.sh", "one"]);
    let prog = load(&LoadRequest { path: &script, argv: &argv, envp: &[], main_within: None, rest_within: None })
        .expect("load script");
    assert_eq!(prog.exe_path, std::fs::canonicalize("/bin/sh").unwrap());
    let st = parse_stack(&prog);
    let want: Vec<Vec<u8>> =
        vec![b"/bin/sh".to_vec(), b"-e".to_vec(), script.as_os_str().as_bytes().to_vec(), b"one".to_vec()];
    assert_eq!(st.argv, want);
    let execfn = aux(&st, stack::AT_EXECFN).unwrap();
    assert_eq!(read_mem(execfn, script.as_os_str().len()).unwrap(), script.as_os_str().as_bytes());
    unload(prog);

    let bad = write_exec("bad.sh", b"#!/nonexistent/interp\n", 0o755);
    let err =
        load(&LoadRequest { path: &bad, argv: &[], envp: &[], main_within: None, rest_within: None }).unwrap_err();
    assert_eq!(err.exit_code(), 126);
    assert!(err.to_string().contains("bad interpreter"), "{err}");
    remove_scratch();
}

fn load_err(path: &Path) -> LoadError {
    load(&LoadRequest { path, argv: &os(&["x"]), envp: &[], main_within: None, rest_within: None })
        .expect_err("must not load")
}

#[test]
fn loader_error_kinds_and_exit_codes() {
    let missing = load_err(Path::new("/nonexistent/bt-run-test"));
    assert!(matches!(missing, LoadError::NotFound { .. }));
    assert_eq!(missing.exit_code(), 127);
    assert_eq!(missing.to_string(), "/nonexistent/bt-run-test: No such file or directory");

    let text = write_exec("text.txt", b"just some text\n", 0o755);
    let e = load_err(&text);
    assert!(matches!(e, LoadError::NotExecutable { .. }), "{e}");
    assert_eq!(e.exit_code(), 126);
    assert!(e.to_string().starts_with(&format!("{}: ", text.display())), "{e}");

    let real = std::fs::read("/bin/ls").unwrap();
    let trunc = write_exec("truncated", &real[..real.len() / 3], 0o755);
    let e = load_err(&trunc);
    assert!(matches!(e, LoadError::NotExecutable { .. }), "{e}");
    assert!(e.to_string().contains("truncated"), "{e}");
    assert_eq!(e.exit_code(), 126);

    let mut b32 = real.clone();
    b32[4] = 1; // ELFCLASS32
    let e32 = write_exec("elf32", &b32, 0o755);
    let e = load_err(&e32);
    assert_eq!(e.to_string(), format!("{}: ELF32 binaries are not supported", e32.display()));
    assert_eq!(e.exit_code(), 126);

    let noexec = write_exec("noexec", &real, 0o644);
    let e = load_err(&noexec);
    assert!(matches!(e, LoadError::PermissionDenied { .. }), "{e}");
    assert_eq!(e.exit_code(), 126);

    let e = load_err(&scratch_dir());
    assert!(e.to_string().ends_with("Is a directory"), "{e}");
    assert_eq!(e.exit_code(), 126);

    // A program whose PT_INTERP does not exist: 127, naming the interpreter.
    let mut broken = real.clone();
    let needle = b"ld-linux-x86-64.so.2";
    let pos = broken.windows(needle.len()).position(|w| w == needle).unwrap();
    broken[pos..pos + needle.len()].copy_from_slice(b"ld-nothere-x86.so.99");
    let bi = write_exec("badinterp", &broken, 0o755);
    let e = load_err(&bi);
    assert!(matches!(e, LoadError::InterpreterNotFound { .. }), "{e}");
    assert_eq!(e.exit_code(), 127);
    remove_scratch();
}

/// Compiles `src` with gcc and `flags` into the scratch directory.
fn gcc(name: &str, flags: &[&str]) -> Option<PathBuf> {
    let dir = scratch_dir();
    let src = dir.join("prog.c");
    let code = "static char big[40 << 20]; int data = 42;\n\
                int main(int c, char **v) { big[c] = 1; return data + big[0]; }\n";
    std::fs::write(&src, code).ok()?;
    let out = dir.join(name);
    let ok = std::process::Command::new("gcc").args(flags).arg("-o").arg(&out).arg(&src).status().ok()?.success();
    ok.then_some(out)
}

#[test]
fn loader_maps_compiled_layouts() {
    let variants: [(&str, &[&str]); 3] = [
        ("static-pie", &["-static-pie", "-O1"]),
        // Text and data share file pages, and a 40 MiB bss needs anonymous pages.
        ("static-nosep", &["-static", "-no-pie", "-Wl,-z,noseparate-code"]),
        ("pie-dyn", &["-O1", "-pie", "-fPIE"]),
    ];
    let mut built = 0;
    for (name, flags) in variants {
        let Some(bin) = gcc(name, flags) else {
            continue;
        };
        built += 1;
        let _g = lock();
        let prog =
            load(&LoadRequest { path: &bin, argv: &os(&[name]), envp: &[], main_within: None, rest_within: None })
                .expect(name);
        let plan = LoadPlan::parse(&std::fs::read(&bin).unwrap()).unwrap();
        assert_eq!(prog.main_entry.get(), plan.entry.wrapping_add(prog.main_bias), "{name}");
        assert_eq!(prog.interp_base.is_some(), plan.interp.is_some(), "{name}");
        check_image(&prog, &bin, prog.main_bias);
        assert!(prog.brk_start.get() >= plan.max_vaddr.wrapping_add(prog.main_bias));
        unload(prog);
    }
    if built == 0 {
        eprintln!("gcc unavailable: compiled layouts not tested");
    }
    remove_scratch();
}
