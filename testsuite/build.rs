//! Compiles the C guest programs in `guests/` into `$OUT_DIR/guests/`, each in
//! several variants, and tells the tests where they are (`GUEST_DIR`).
//!
//! Variants (file name `<guest>.<variant>`):
//! - `gcc`:  `gcc -static -O2` (glibc, static)
//! - `musl`: `musl-gcc -static -O2` (musl, static)
//! - `pie`:  `gcc -static-pie -fPIE -O2` (glibc, static PIE: loaded at a random base)
//! - `dyn`:  `gcc -O2` (glibc, dynamically linked: exercises PT_INTERP / ld.so)
//!
//! Guests named `dl_*.c` are about the dynamic loader and are built only in
//! the `dyn` variant (some link against the libraries below; see
//! [`GUEST_LINK`]).
//!
//! Shared libraries (for the dlopen, LD_LIBRARY_PATH and LD_PRELOAD tests)
//! are built from `guests/lib/*.c` with `gcc -shared -fPIC` into
//! `$OUT_DIR/guests/lib/` as listed in [`SHARED_LIBS`] (one source may give
//! several libraries, built with different `-D` flags).
//!
//! AVX2 code in the guests is enabled per function with
//! `__attribute__((target("avx2")))` and only called after
//! `__builtin_cpu_supports("avx2")`, so no global `-mavx2` is ever passed and
//! every binary runs on any x86-64.

use std::path::{Path, PathBuf};
use std::process::{Command, exit};
use std::sync::Mutex;
use std::thread;

struct Variant {
    suffix: &'static str,
    compiler: &'static str,
    flags: &'static [&'static str],
}

const VARIANTS: &[Variant] = &[
    Variant { suffix: "gcc", compiler: "gcc", flags: &["-static", "-O2"] },
    Variant { suffix: "musl", compiler: "musl-gcc", flags: &["-static", "-O2"] },
    Variant { suffix: "pie", compiler: "gcc", flags: &["-static-pie", "-fPIE", "-O2"] },
    Variant { suffix: "dyn", compiler: "gcc", flags: &["-O2"] },
];

/// A shared library built from `guests/<source>` into `<GUEST_DIR>/lib/<name>`.
struct SharedLib {
    name: &'static str,
    source: &'static str,
    flags: &'static [&'static str],
}

const SHARED_LIBS: &[SharedLib] = &[
    // Same source, same layout, different constants: dl_reuse loads one where the other was.
    SharedLib { name: "libdl_a.so", source: "lib/dl_variant.c", flags: &["-DVARIANT=1"] },
    SharedLib { name: "libdl_b.so", source: "lib/dl_variant.c", flags: &["-DVARIANT=2"] },
    SharedLib { name: "libdldep.so", source: "lib/dldep.c", flags: &[] },
    SharedLib { name: "libpreload_hello.so", source: "lib/preload_hello.c", flags: &[] },
];

/// Extra link arguments of particular guests; `{lib}` stands for the shared
/// library directory. (No rpath: such a guest needs LD_LIBRARY_PATH.)
const GUEST_LINK: &[(&str, &[&str])] = &[("dl_needed", &["-L{lib}", "-ldldep"])];

/// Guests whose names start with this are built only in the `dyn` variant.
const DYNAMIC_ONLY_PREFIX: &str = "dl_";

const COMMON_FLAGS: &[&str] = &["-g0", "-Wall", "-Wno-infinite-recursion", "-pthread"];

fn fail(msg: &str) -> ! {
    eprintln!("\nerror: testsuite build script: {msg}\n");
    exit(1);
}

fn check_compiler(name: &str, package: &str) {
    let ok = Command::new(name).arg("--version").output().map(|o| o.status.success()).unwrap_or(false);
    if !ok {
        fail(&format!(
            "`{name}` is needed to build the guest programs but was not found or does not run.\n\
             Install it with `apt-get install -y {package}` (scripts/test.sh installs everything the tests need)."
        ));
    }
}

fn main() {
    let manifest =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| fail("CARGO_MANIFEST_DIR is not set")));
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_else(|| fail("OUT_DIR is not set")));
    let src_dir = manifest.join("guests");
    let dest = out_dir.join("guests");
    println!("cargo:rerun-if-changed=guests");
    println!("cargo:rerun-if-changed=build.rs");

    check_compiler("gcc", "gcc");
    check_compiler("musl-gcc", "musl-tools");

    if let Err(e) = std::fs::create_dir_all(&dest) {
        fail(&format!("cannot create {}: {e}", dest.display()));
    }
    let mut sources: Vec<PathBuf> = match std::fs::read_dir(&src_dir) {
        Ok(rd) => {
            rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "c")).collect()
        }
        Err(e) => fail(&format!("cannot read {}: {e}", src_dir.display())),
    };
    sources.sort();
    if sources.is_empty() {
        fail(&format!("no guest sources in {}", src_dir.display()));
    }

    let lib_dir = dest.join("lib");
    if let Err(e) = std::fs::create_dir_all(&lib_dir) {
        fail(&format!("cannot create {}: {e}", lib_dir.display()));
    }
    let lib_errors: Vec<String> =
        SHARED_LIBS.iter().filter_map(|l| compile_shared(&src_dir, l, &lib_dir).err()).collect();
    if !lib_errors.is_empty() {
        fail(&format!("{} shared library build(s) failed:\n{}", lib_errors.len(), lib_errors.join("\n")));
    }

    let jobs: Vec<(PathBuf, &Variant)> = sources
        .iter()
        .flat_map(|s| {
            let dynamic_only =
                s.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(DYNAMIC_ONLY_PREFIX));
            VARIANTS.iter().filter(move |v| !dynamic_only || v.suffix == "dyn").map(move |v| (s.clone(), v))
        })
        .collect();
    let jobs = Mutex::new(jobs);
    let errors = Mutex::new(Vec::<String>::new());
    let workers = thread::available_parallelism().map(|n| n.get()).unwrap_or(2).min(8);
    thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let job = jobs.lock().map(|mut j| j.pop()).unwrap_or(None);
                    let Some((src, variant)) = job else { break };
                    if let (Err(e), Ok(mut errs)) = (compile(&src, variant, &dest), errors.lock()) {
                        errs.push(e);
                    }
                }
            });
        }
    });
    let errors = errors.into_inner().unwrap_or_default();
    if !errors.is_empty() {
        fail(&format!("{} guest compilation(s) failed:\n{}", errors.len(), errors.join("\n")));
    }
    println!("cargo:rustc-env=GUEST_DIR={}", dest.display());
}

fn compile(src: &Path, v: &Variant, dest: &Path) -> Result<(), String> {
    let stem = src.file_stem().and_then(|s| s.to_str()).ok_or_else(|| format!("bad file name {}", src.display()))?;
    let out = dest.join(format!("{stem}.{}", v.suffix));
    let mut cmd = Command::new(v.compiler);
    cmd.args(v.flags).args(COMMON_FLAGS).arg("-o").arg(&out).arg(src);
    let lib_dir = dest.join("lib");
    for (_, extra) in GUEST_LINK.iter().filter(|(name, _)| *name == stem) {
        cmd.args(extra.iter().map(|a| a.replace("{lib}", &lib_dir.to_string_lossy())));
    }
    cmd.arg("-lm");
    let output = cmd.output().map_err(|e| format!("cannot run {}: {e}", v.compiler))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("--- {:?} failed ({}):\n{}", cmd, output.status, String::from_utf8_lossy(&output.stderr)))
    }
}

fn compile_shared(src_dir: &Path, lib: &SharedLib, lib_dir: &Path) -> Result<(), String> {
    let out = lib_dir.join(lib.name);
    let mut cmd = Command::new("gcc");
    cmd.args(["-shared", "-fPIC", "-O2"])
        .args(COMMON_FLAGS)
        .args(lib.flags)
        .arg("-o")
        .arg(&out)
        .arg(src_dir.join(lib.source));
    let output = cmd.output().map_err(|e| format!("cannot run gcc: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("--- {:?} failed ({}):\n{}", cmd, output.status, String::from_utf8_lossy(&output.stderr)))
    }
}
