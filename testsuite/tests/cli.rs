//! bt-run's command line and its handling of bad input (DESIGN.md invariant 5):
//! conventional exit statuses (2 usage, 127 not found, 126 not executable),
//! exactly one line on stderr, never a panic.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use testsuite::*;

const T: Duration = Duration::from_secs(30);

fn bt(args: &[&str]) -> Outcome {
    run_bt_args(args, T)
}

fn no_panic(out: &Outcome, what: &str) {
    let err = out.stderr_str();
    assert!(!out.timed_out, "{what}: bt-run timed out");
    assert!(!err.contains("panicked"), "{what}: bt-run panicked:\n{err}");
    assert!(!err.contains("RUST_BACKTRACE"), "{what}: stderr mentions RUST_BACKTRACE:\n{err}");
    assert!(!matches!(out.status, Status::Signaled { .. }), "{what}: bt-run died by a signal: {}\n{err}", out.status);
}

/// Exactly one line on stderr, starting with "bt-run:" and naming `path`.
fn one_line_error(out: &Outcome, status: i32, path: &str, what: &str) {
    no_panic(out, what);
    let err = out.stderr_str();
    assert_eq!(out.status, Status::Exited(status), "{what}: wrong exit status; stderr:\n{err}");
    assert!(
        err.ends_with('\n') && err.matches('\n').count() == 1 && err.trim().len() > "bt-run:".len(),
        "{what}: stderr should be exactly one line, got {err:?}"
    );
    assert!(err.starts_with("bt-run:"), "{what}: stderr should start with \"bt-run:\", got {err:?}");
    assert!(err.contains(path), "{what}: the message should name the program {path:?}, got {err:?}");
    assert!(out.stdout.is_empty(), "{what}: nothing should be written to stdout, got {:?}", out.stdout_str());
}

fn write_exec(dir: &Path, name: &str, data: &[u8], mode: u32) -> String {
    let p = dir.join(name);
    write_file(dir, name, data);
    if let Err(e) = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)) {
        panic!("chmod {}: {e}", p.display());
    }
    p.to_string_lossy().into_owned()
}

fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

#[test]
fn no_arguments_is_a_usage_error() {
    let out = bt(&[]);
    no_panic(&out, "no arguments");
    assert_eq!(out.status, Status::Exited(2), "no arguments: stderr {:?}", out.stderr_str());
    assert!(out.stderr_str().to_lowercase().contains("usage"), "usage should go to stderr: {:?}", out.stderr_str());
    assert!(out.stdout.is_empty(), "no arguments: stdout should be empty, got {:?}", out.stdout_str());
}

#[test]
fn help_goes_to_stdout() {
    let out = bt(&["--help"]);
    no_panic(&out, "--help");
    assert_eq!(out.status, Status::Exited(0), "--help: stderr {:?}", out.stderr_str());
    assert!(out.stdout_str().contains("Usage"), "--help should print Usage on stdout, got {:?}", out.stdout_str());
}

#[test]
fn version() {
    let out = bt(&["--version"]);
    no_panic(&out, "--version");
    assert_eq!(out.status, Status::Exited(0), "--version: stderr {:?}", out.stderr_str());
    let s = out.stdout_str();
    assert!(s.contains(env!("CARGO_PKG_VERSION")), "--version should print the version, got {s:?}");
}

#[test]
fn unknown_option_is_a_usage_error() {
    let out = bt(&["--no-such-option", BUSYBOX, "true"]);
    no_panic(&out, "unknown option");
    assert_eq!(out.status, Status::Exited(2), "unknown option: stderr {:?}", out.stderr_str());
    assert!(!out.stderr.is_empty(), "unknown option: an error message is expected");
}

#[test]
fn strace_options_bt_run_cannot_honour_are_one_line_usage_errors() {
    for (args, names) in [
        (&["-p", "1"][..], "-p"),
        (&["-p1"], "-p"),
        (&["-e", "signal=none"], "signal="),
        (&["-e", "inject=openat:retval=0"], "retval="),
        (&["-e", "inject=openat"], "error=ERRNO"),
        (&["-e", "trace=opne"], "opne"),
        (&["-e"], "-e"),
    ] {
        let mut argv = args.to_vec();
        argv.extend([BUSYBOX, "true"]);
        one_line_error(&bt(&argv), 2, names, &argv.join(" "));
    }
}

#[test]
fn strace_follow_and_quiet_are_accepted() {
    let out = bt(&["-f", "-q", "-qq", BUSYBOX, "sh", "-c", "echo hi; busybox true"]);
    no_panic(&out, "-f -q");
    assert_eq!(out.status, Status::Exited(0), "stderr {:?}", out.stderr_str());
    assert_eq!(out.stdout_str(), "hi\n");
}

#[test]
fn options_stop_at_the_program() {
    let out = bt(&[BUSYBOX, "echo", "--version", "-x", "--help"]);
    no_panic(&out, "guest options");
    assert_eq!(out.status, Status::Exited(0), "stderr {:?}", out.stderr_str());
    assert_eq!(out.stdout_str(), "--version -x --help\n", "guest arguments must reach the guest untouched");
}

#[test]
fn double_dash_separates_the_program() {
    let out = bt(&["--", BUSYBOX, "echo", "hi"]);
    no_panic(&out, "--");
    assert_eq!(out.status, Status::Exited(0), "stderr {:?}", out.stderr_str());
    assert_eq!(out.stdout_str(), "hi\n");
}

#[test]
fn nonexistent_program_is_127() {
    let p = "/nonexistent/dir/program";
    one_line_error(&bt(&[p, "arg"]), 127, p, "nonexistent program");
}

/// `-o` naming a file that cannot be created or written: one line naming
/// it, usage status 2, and the program never runs.
#[test]
fn unwritable_output_file_is_a_usage_error() {
    let d = TempDir::new("cli-o");
    let missing = d.join("no/such/dir/trace.txt").to_string_lossy().into_owned();
    let dir = d.path().to_string_lossy().into_owned();
    let marker = d.join("ran").to_string_lossy().into_owned();
    for (path, what) in [(missing.as_str(), "-o in a missing directory"), (dir.as_str(), "-o naming a directory")] {
        let out = bt(&["--trace", "-o", path, BUSYBOX, "touch", &marker]);
        one_line_error(&out, 2, path, what);
        assert!(!Path::new(&marker).exists(), "{what}: the program ran");
    }
}

#[test]
fn text_file_is_126() {
    let d = TempDir::new("cli-text");
    let p = write_exec(d.path(), "notes.txt", b"hello, I am not a program\njust text\n", 0o755);
    one_line_error(&bt(&[&p]), 126, &p, "text file with exec permission");
}

#[test]
fn empty_file_is_126() {
    let d = TempDir::new("cli-empty");
    let p = write_exec(d.path(), "empty", b"", 0o755);
    one_line_error(&bt(&[&p]), 126, &p, "empty file");
}

#[test]
fn truncated_elf_is_126() {
    let d = TempDir::new("cli-trunc");
    let head = read(BUSYBOX);
    let p = write_exec(d.path(), "truncated", &head[..100], 0o755);
    one_line_error(&bt(&[&p]), 126, &p, "truncated ELF (first 100 bytes of busybox)");
}

#[test]
fn elf32_is_126() {
    let d = TempDir::new("cli-elf32");
    let p = d.join("elf32");
    let ps = p.to_string_lossy().into_owned();
    // A real `gcc -m32` binary when multilib is installed, else a minimal hand-made one.
    let src = d.join("t.c");
    write_file(d.path(), "t.c", "int main(void) { return 0; }\n");
    let built = Command::new("gcc")
        .args(["-m32", "-static", "-o"])
        .arg(&p)
        .arg(&src)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !built {
        write_exec(d.path(), "elf32", &minimal_elf32(), 0o755);
    }
    one_line_error(&bt(&[&ps]), 126, &ps, "32-bit ELF");
}

#[test]
fn foreign_architecture_elf_is_126() {
    let d = TempDir::new("cli-arm");
    let mut bytes = read(BUSYBOX);
    bytes[18] = 183; // e_machine = EM_AARCH64
    bytes[19] = 0;
    let p = write_exec(d.path(), "aarch64", &bytes, 0o755);
    one_line_error(&bt(&[&p]), 126, &p, "ELF for another architecture");
}

#[test]
fn relocatable_object_is_126() {
    let d = TempDir::new("cli-obj");
    write_file(d.path(), "o.c", "int f(int x) { return x + 1; }\n");
    let obj = d.join("o.o");
    let ok = Command::new("gcc")
        .arg("-c")
        .arg("-o")
        .arg(&obj)
        .arg(d.join("o.c"))
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "gcc -c failed (gcc is required by the test suite)");
    let p = obj.to_string_lossy().into_owned();
    if let Err(e) = std::fs::set_permissions(&obj, std::fs::Permissions::from_mode(0o755)) {
        panic!("chmod {p}: {e}");
    }
    one_line_error(&bt(&[&p]), 126, &p, "relocatable object (ET_REL)");
}

#[test]
fn directory_is_126() {
    let d = TempDir::new("cli-dir");
    let p = d.path().to_string_lossy().into_owned();
    one_line_error(&bt(&[&p]), 126, &p, "a directory");
}

#[test]
fn file_without_exec_permission_is_126() {
    let d = TempDir::new("cli-noexec");
    let p = write_exec(d.path(), "busybox-copy", &read(BUSYBOX), 0o644);
    // Root bypasses permission checks for reading but execve still needs an x bit.
    one_line_error(&bt(&[&p, "true"]), 126, &p, "ELF without execute permission");
}

/// An i386 ELF executable (93 bytes) whose code is `exit(0)` via int 0x80.
fn minimal_elf32() -> Vec<u8> {
    let code: [u8; 9] = [0xb8, 0x01, 0, 0, 0, 0x31, 0xdb, 0xcd, 0x80];
    let base: u32 = 0x0804_8000;
    let hdr = 52u32 + 32;
    let total = hdr + code.len() as u32;
    let mut v = Vec::new();
    v.extend_from_slice(&[0x7f, b'E', b'L', b'F', 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    v.extend_from_slice(&2u16.to_le_bytes()); // e_type ET_EXEC
    v.extend_from_slice(&3u16.to_le_bytes()); // e_machine EM_386
    v.extend_from_slice(&1u32.to_le_bytes()); // e_version
    v.extend_from_slice(&(base + hdr).to_le_bytes()); // e_entry
    v.extend_from_slice(&52u32.to_le_bytes()); // e_phoff
    v.extend_from_slice(&0u32.to_le_bytes()); // e_shoff
    v.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    v.extend_from_slice(&52u16.to_le_bytes()); // e_ehsize
    v.extend_from_slice(&32u16.to_le_bytes()); // e_phentsize
    v.extend_from_slice(&1u16.to_le_bytes()); // e_phnum
    v.extend_from_slice(&[0; 6]); // e_shentsize, e_shnum, e_shstrndx
    for word in [1u32, 0, base, base, total, total, 5, 0x1000] {
        v.extend_from_slice(&word.to_le_bytes()); // PT_LOAD, R+X
    }
    v.extend_from_slice(&code);
    v
}

/// The README's quick start works on a fresh machine exactly as written:
/// the program it runs comes from an Essential Debian package (present
/// before anything is installed), and bt-run's output of it is native.
#[test]
fn readme_quick_start_runs_as_written() {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).expect("README.md");
    let prefix = "cargo build --release -p runtime && ";
    let line = readme
        .lines()
        .find(|l| l.starts_with(prefix))
        .expect("README quick start: a line `cargo build --release -p runtime && BT-RUN PROG ARGS`");
    let words: Vec<&str> = line[prefix.len()..].split_whitespace().collect();
    assert!(words.len() >= 2, "quick start names bt-run and a program: {line}");
    if std::env::var_os("BT_RUN").is_none() && std::env::var_os("CARGO_TARGET_DIR").is_none() {
        // The path the quick start names is where the build puts bt-run.
        assert_eq!(workspace_root().join(words[0]), bt_run_path(), "quick start's bt-run path: {line}");
    }
    let prog = words[1];
    let owner = Command::new("dpkg").args(["-S", prog]).output().expect("dpkg");
    assert!(owner.status.success(), "{prog} belongs to no Debian package: install-dependent quick start");
    let pkg = String::from_utf8_lossy(&owner.stdout).split(':').next().unwrap_or("").trim().to_string();
    let essential = Command::new("dpkg-query").args(["-W", "-f=${Essential}", &pkg]).output().expect("dpkg-query");
    assert_eq!(
        String::from_utf8_lossy(&essential.stdout).trim(),
        "yes",
        "{prog} comes from {pkg}, which a fresh machine need not have"
    );
    assert_same(&words[1..]);
}

/// `--perf-map`: the guest runs as natively, and /tmp/perf-PID.map names
/// the cache's code in perf's format, by the guest's file and offset, for
/// the process and for a forked child (which also execs).
#[test]
fn perf_map_names_translated_code_for_perf() {
    let script = "echo hi";
    compare_opts(&Cmd::new(&[BUSYBOX, "sh", "-c", script]), &["--perf-map"]);
    for detail in ["--perf-map", "--perf-map=insns"] {
        let out = bt(&[detail, BUSYBOX, "sh", "-c", "echo $$; busybox sh -c 'echo $$'; true"]);
        no_panic(&out, detail);
        assert_eq!(out.status, Status::Exited(0), "{detail}: {}", out.stderr_str());
        let pids: Vec<String> = out.stdout_str().lines().map(str::to_string).collect();
        assert_eq!(pids.len(), 2, "{detail}: two pids, got {pids:?}");
        assert_ne!(pids[0], pids[1], "{detail}: the child is another process");
        for pid in &pids {
            let path = format!("/tmp/perf-{pid}.map");
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{detail}: {path}: {e}"));
            let _ = std::fs::remove_file(&path);
            let mut lines = 0;
            let mut named = 0;
            for l in text.lines() {
                let f: Vec<&str> = l.splitn(3, ' ').collect();
                assert_eq!(f.len(), 3, "{detail}: {path}: not `START SIZE NAME`: {l:?}");
                let start = u64::from_str_radix(f[0], 16).unwrap_or_else(|_| panic!("{detail}: start in {l:?}"));
                let size = u64::from_str_radix(f[1], 16).unwrap_or_else(|_| panic!("{detail}: size in {l:?}"));
                assert!(start > 0 && size > 0, "{detail}: {l:?}");
                lines += 1;
                named += f[2].starts_with("busybox+0x") as usize;
            }
            assert!(named > 10 && named * 2 > lines, "{detail}: {path}: {named} of {lines} lines name busybox code");
            if detail.ends_with("insns") {
                assert!(text.contains(" [entry check]\n"), "{detail}: {path}: no entry checks named");
                assert!(text.contains(" Call\n") && text.contains(" Ret\n"), "{detail}: {path}: no instructions named");
            }
        }
    }
}

/// `--code-offset N` moves translated code, not what it does: the output at
/// every offset is the native one (across an exec too, which inherits the
/// offset); a value that is not a multiple of 16 below 4096 is a usage
/// error.
#[test]
fn code_offset_moves_code_and_nothing_else() {
    let script = "i=0; while [ $i -lt 2000 ]; do i=$((i + 1)); done; echo $i; exec /bin/echo done";
    let native = run_native(&Cmd::new(&["/bin/sh", "-c", script]));
    for off in ["0", "16", "48", "4080"] {
        let out = bt(&["--code-offset", off, "/bin/sh", "-c", script]);
        no_panic(&out, "--code-offset");
        assert_eq!(out.status, Status::Exited(0), "--code-offset {off}: stderr {:?}", out.stderr_str());
        assert_eq!(out.stdout, native.stdout, "--code-offset {off}: stdout differs from native");
    }
    for bad in ["17", "4096", "-16", "x"] {
        let out = bt(&["--code-offset", bad, BUSYBOX, "true"]);
        one_line_error(&out, 2, bad, "bad --code-offset");
    }
}

/// A tool the shell-integration tests run: present, since the test command
/// installs it.
fn tool(name: &str) -> Command {
    let found = Command::new("sh").args(["-c", &format!("command -v {name}")]).output().expect("sh");
    assert!(found.status.success(), "{name} is required (scripts/test.sh installs it)");
    Command::new(name)
}

/// `scripts/install.sh` into a staging directory, with the bt-run under
/// test: the directory it installed into.
fn staged_install(tag: &str) -> TempDir {
    let dir = TempDir::new(tag);
    let out = Command::new("bash")
        .arg(workspace_root().join("scripts/install.sh"))
        .args(["--prefix", "/usr"])
        .env("DESTDIR", dir.path())
        .env("BT_RUN", bt_run_path())
        .output()
        .expect("bash");
    assert!(out.status.success(), "install.sh failed: {}", String::from_utf8_lossy(&out.stderr));
    let installed = std::fs::read(dir.path().join("usr/bin/bt-run")).expect("installed bt-run");
    assert_eq!(installed, read(bt_run_path().to_str().unwrap()), "install.sh installed another binary");
    dir
}

/// Every long option `bt-run --help` lists.
fn long_options() -> Vec<String> {
    let help = bt(&["--help"]);
    let mut opts: Vec<String> = help
        .stdout_str()
        .lines()
        .filter_map(|l| {
            l.trim_start()
                .split([' ', ',', '[', '<'])
                .find(|w| w.starts_with("--") && w[2..].starts_with(|c: char| c.is_ascii_alphabetic()))
        })
        .map(|w| w.trim_end_matches('.').to_string())
        .collect();
    opts.sort();
    opts.dedup();
    assert!(opts.len() > 20, "--help lists too few long options: {opts:?}");
    opts
}

/// The installed man page renders with `man ./bt-run.1` and documents
/// every option `--help` does.
#[test]
fn man_page_renders_every_option() {
    let dir = staged_install("man");
    let out = tool("man")
        .arg("./bt-run.1")
        .current_dir(dir.path().join("usr/share/man/man1"))
        .env("LANG", "C")
        .env("MANWIDTH", "400")
        .env("MANPAGER", "cat")
        .output()
        .expect("man");
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "man ./bt-run.1 failed: {}", String::from_utf8_lossy(&out.stderr));
    for section in ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "Exit status"] {
        assert!(page.contains(section), "the man page has no {section}:\n{page}");
    }
    for opt in long_options() {
        assert!(
            page.contains(&format!("{opt} "))
                || page.contains(&format!("{opt}="))
                || page.contains(&format!("{opt}\n"))
                || page.contains(&format!("{opt}[")),
            "the man page does not document {opt}:\n{page}"
        );
    }
}

/// bash's completion, loaded from where install.sh put it, completes
/// bt-run's options and their values.
#[test]
fn bash_completion_completes_options_and_values() {
    let dir = staged_install("bash-completion");
    let file = dir.path().join("usr/share/bash-completion/completions/bt-run");
    let complete = |line: &str| -> Vec<String> {
        let words: Vec<&str> = line.split(' ').collect();
        let script = format!(
            "source {file:?} || exit 3; f=$(complete -p bt-run | sed -n 's/.*-F \\([^ ]*\\) .*/\\1/p'); [ -n \"$f\" ] || exit 4; \
             COMP_WORDS=({words}); COMP_CWORD={cword}; COMP_LINE={line:?}; COMP_POINT=${{#COMP_LINE}}; \
             \"$f\" bt-run {cur:?} {prev:?}; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            words = words.iter().map(|w| format!("{w:?}")).collect::<Vec<_>>().join(" "),
            cword = words.len() - 1,
            cur = words[words.len() - 1],
            prev = words[words.len() - 2],
        );
        let out = tool("bash").args(["-c", &script]).output().expect("bash");
        assert!(out.status.success(), "bash completion of {line:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).lines().map(|l| l.trim().to_string()).collect()
    };
    let got = complete("bt-run --de");
    assert!(got.contains(&"--deny".to_string()) && got.contains(&"--decode-fds".to_string()), "bt-run --de: {got:?}");
    assert!(!got.iter().any(|w| w == "--trace"), "bt-run --de offers --trace: {got:?}");
    let got = complete("bt-run --generate ");
    assert!(got.contains(&"man".to_string()) && got.contains(&"complete-fish".to_string()), "--generate: {got:?}");
}

/// zsh's and fish's completions load and name bt-run's options.
#[test]
fn zsh_and_fish_completions_load() {
    let dir = staged_install("zsh-fish");
    let zsh_file = dir.path().join("usr/share/zsh/site-functions/_bt-run");
    let out = tool("zsh")
        .args([
            "-fc",
            &format!(
                "autoload -U compinit && compinit -u -D && source {zsh_file:?} && print -r -- ${{_comps[bt-run]}}"
            ),
        ])
        .output()
        .expect("zsh");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "_bt-run", "zsh: {}", String::from_utf8_lossy(&out.stderr));
    let fish_file = dir.path().join("usr/share/fish/vendor_completions.d/bt-run.fish");
    let out = tool("fish")
        .args(["--no-config", "-c", &format!("source {fish_file:?}; complete -C 'bt-run --summ'")])
        .output()
        .expect("fish");
    let text = String::from_utf8_lossy(&out.stdout);
    let got: Vec<&str> = text.lines().map(|l| l.split('\t').next().unwrap_or("")).collect();
    assert!(
        got.contains(&"--summary") && got.contains(&"--summary-only"),
        "fish: bt-run --summ: {got:?} {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A program started with an argv[0] that looks like an option (a login
/// shell's "-bash") runs with it, through bt-run's re-execution too.
#[test]
fn an_argv0_starting_with_a_dash_reaches_the_exec_d_program() {
    assert_same(&["/bin/bash", "-c", "exec -a -bash /bin/bash -c 'echo \"$0\"'"]);
    assert_same(&["/bin/bash", "-c", "exec -a -- /bin/bash -c 'echo \"$0\"'"]);
}

/// Repeating an option is not an error, as in strace.
#[test]
fn repeated_options_are_accepted() {
    let out = bt(&["-c", "-c", "-f", "-f", "--no-inline", "--no-inline", "-o", "/dev/null", BUSYBOX, "echo", "hi"]);
    no_panic(&out, "repeated options");
    assert_eq!(out.status, Status::Exited(0), "stderr {:?}", out.stderr_str());
    assert_eq!(out.stdout_str(), "hi\n");
}
