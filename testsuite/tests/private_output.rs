//! bt-run's output is private (docs/design.md, "bt-run's own descriptors"):
//! trace lines and statistics go to bt-run's own stderr or to the `-o`
//! file, never into the guest's descriptors, whatever the guest does with
//! fds 0-2 (redirects, closes, dup2s over them, close_range, exec after
//! redirecting, fork, posix_spawn); and the guest's view of its descriptors
//! is the native one: the numbers open/dup/pipe hand out, /proc/self/fd
//! listings, what calls on numbers near the RLIMIT_NOFILE limits answer,
//! EMFILE at the limit, before and after the guest moves its limit.
//!
//! Each run is made natively and under bt-run, each in a fresh directory;
//! stdout, exit status and every file the program wrote must be identical,
//! and so must stderr once bt-run's own lines are taken out (with `-o`,
//! stderr must be identical as it is). The trace or statistics must be
//! there, non-empty, with the calls the program made.
//!
//! Guest: testsuite/guests/fd_private.c, in the four variants of build.rs;
//! and bash, coreutils ls and busybox sh.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;
use testsuite::*;

const T: Duration = Duration::from_secs(90);

/// Defines one test per guest variant, each calling `$body(variant)`.
macro_rules! per_variant {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[test]
            fn gcc() {
                ($body)("gcc")
            }
            #[test]
            fn musl() {
                ($body)("musl")
            }
            #[test]
            fn pie() {
                ($body)("pie")
            }
            #[test]
            fn dynamic() {
                ($body)("dyn")
            }
        }
    };
}

/// Regular files under `dir`, by relative path.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                walk(base, &p, out);
            } else if ft.is_file() {
                let rel = p.strip_prefix(base).unwrap_or(&p).to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display())));
            }
        }
    }
    let mut m = BTreeMap::new();
    walk(dir, dir, &mut m);
    m
}

/// Splits bt-run's stderr into (the guest's own lines, bt-run's lines):
/// trace lines (`[pid N] ...`) and text statistics reports are bt-run's.
fn split_stderr(stderr: &str) -> (String, String) {
    let (mut guest, mut ours) = (String::new(), String::new());
    let mut in_stats = false;
    for line in stderr.split_inclusive('\n') {
        if line.starts_with("bt-run statistics: ") {
            in_stats = true;
        } else if in_stats && !(line.starts_with("  ") || line == "\n") {
            in_stats = false;
        }
        // (On stderr trace lines have strace's `[pid N]` form.)
        if in_stats || line.starts_with("[pid ") {
            ours.push_str(line);
        } else {
            guest.push_str(line);
        }
    }
    (guest, ours)
}

/// What bt-run's run produced for the user, besides the guest's output.
struct Report {
    /// Trace lines and statistics (from stderr or the `-o` file).
    text: String,
    opts: Vec<String>,
}

impl Report {
    fn has(&self, opt: &str) -> bool {
        self.opts.iter().any(|o| o == opt || o.starts_with(&format!("{opt}=")))
    }

    /// Checks what was asked for is there: trace lines ending with the
    /// program's exit and containing each of `calls`, statistics.
    fn check(&self, calls: &[&str], what: &str) {
        let t = &self.text;
        assert!(!t.trim().is_empty(), "{what} {:?}: no trace or statistics at all", self.opts);
        if self.has("--trace") {
            // (strace's alignment of the result in column 40 taken off.)
            let unaligned = |l: &str| {
                let mut l = l.to_string();
                while l.contains("  = ") {
                    l = l.replace("  = ", " = ");
                }
                l
            };
            let lines: Vec<String> = t.lines().filter(|l| trace_pid(l).is_some()).map(unaligned).collect();
            assert!(!lines.is_empty(), "{what} {:?}: no trace lines in:\n{t}", self.opts);
            assert!(
                lines.iter().any(|l| l.contains("exit_group(")),
                "{what} {:?}: the trace does not show the exit:\n{t}",
                self.opts
            );
            for c in calls {
                assert!(
                    lines.iter().any(|l| l.contains(c)),
                    "{what} {:?}: no trace line with {c:?} in:\n{t}",
                    self.opts
                );
            }
        }
        if self.opts.iter().any(|o| o == "--stats") {
            assert!(t.contains("bt-run statistics: pid "), "{what} {:?}: no statistics in:\n{t}", self.opts);
        }
        if self.has("--stats=json") {
            assert!(t.contains("\"syscalls\":{"), "{what} {:?}: no JSON statistics in:\n{t}", self.opts);
        }
    }
}

/// Runs `cmd` natively and under `bt-run OPTS` (plus `-o FILE` when
/// `to_file`), each in a fresh directory, both started with RLIMIT_NOFILE's
/// soft limit at `soft` if given; requires the same status, stdout, files
/// and guest stderr. Returns bt-run's report.
fn run_both(cmd: &Cmd, opts: &[&str], to_file: bool, soft: Option<u64>) -> Report {
    let what = cmd.display();
    let nd = temp_dir("private-native");
    let bd = temp_dir("private-bt");
    let od = temp_dir("private-o");
    let out_file = od.join("bt-run.out");
    let bt = bt_run_path().to_string_lossy().into_owned();
    let mut bt_args: Vec<String> = vec![bt];
    bt_args.extend(opts.iter().map(|s| s.to_string()));
    if to_file {
        bt_args.push("-o".into());
        bt_args.push(out_file.to_string_lossy().into_owned());
    }
    let ulimit = soft.map(|s| format!("ulimit -Sn {s} && exec \"$@\""));
    let prefixed = |prefix: &[String], dir: &Path| -> Outcome {
        let mut all: Vec<String> = Vec::new();
        if let Some(u) = &ulimit {
            all.extend(["/bin/bash".to_string(), "-c".into(), u.clone(), "sh".into()]);
        }
        all.extend(prefix.iter().cloned());
        let c = cmd.clone().cwd(dir);
        if all.is_empty() {
            run_native(&c)
        } else {
            let refs: Vec<&str> = all.iter().map(String::as_str).collect();
            run_native_prefixed(&refs, &c)
        }
    };
    let native = prefixed(&[], nd.path());
    assert!(!native.timed_out, "native run of {what} timed out");
    let out = prefixed(&bt_args, bd.path());
    let shown = format!("bt-run {} {what}", bt_args[1..].join(" "));
    assert!(!out.timed_out, "{shown}: timed out\n{}", out.stderr_str());
    assert_eq!(out.status, native.status, "{shown}: exit status\n--- bt-run stderr ---\n{}", out.stderr_str());
    if let Some(d) = diff("stdout", &native.stdout, &out.stdout) {
        panic!("{shown}: {d}");
    }
    let (nf, bf) = (files(nd.path()), files(bd.path()));
    assert_eq!(nf.keys().collect::<Vec<_>>(), bf.keys().collect::<Vec<_>>(), "{shown}: the files the program wrote");
    for (name, n) in &nf {
        if let Some(d) = diff(name, n, &bf[name]) {
            panic!("{shown}: file {d}");
        }
    }
    let text = if to_file {
        if let Some(d) = diff("stderr (bt-run's output went to -o)", &native.stderr, &out.stderr) {
            panic!("{shown}: {d}");
        }
        std::fs::read_to_string(&out_file).unwrap_or_else(|e| panic!("{shown}: cannot read the -o file: {e}"))
    } else {
        let (guest, ours) = split_stderr(&out.stderr_str());
        if let Some(d) = diff("stderr (without bt-run's lines)", &native.stderr, guest.as_bytes()) {
            panic!("{shown}: {d}");
        }
        ours
    };
    Report { text, opts: opts.iter().map(|s| s.to_string()).collect() }
}

/// The option sets every scenario runs under: (options, with `-o`).
const OPTION_SETS: &[(&[&str], bool)] = &[
    (&[], false),
    (&["--trace"], false),
    (&["--stats"], false),
    (&["--trace", "--stats"], true),
    (&["--stats=json"], true),
];

/// fd_private MODE under every option set; `calls`: what its trace shows.
fn scenario(v: &str, mode: &str, calls: &[&str]) {
    let prog = guest("fd_private", v);
    let cmd = Cmd::new(&[prog.as_str(), mode]).timeout(T);
    for &(opts, to_file) in OPTION_SETS {
        let r = run_both(&cmd, opts, to_file, None);
        if !opts.is_empty() {
            r.check(calls, &format!("fd_private.{v} {mode}"));
        }
    }
}

// The standard descriptors redirected into files with dup2/dup3, written
// through, in a forked child too; /proc/self/fd listings.
per_variant!(redirected_std_fds, |v: &str| scenario(
    v,
    "redirect",
    &["write(2, \"stderr now goes to err.txt\\n\"", "getdents64(", "dup2("]
));

// fds 0-2 closed: new files get 0, 1, 2 as natively; then close_range over
// everything.
per_variant!(closed_std_fds_and_close_range, |v: &str| scenario(
    v,
    "close",
    &["close(2) = 0", "close_range(0, 4294967295, 0) = 0", "write(0, \"after close_range: 0 1\\n\""]
));

// The same through i386 calls (int $0x80): close, dup2 onto stderr, and a
// close_range over everything, which steps around bt-run's descriptors.
per_variant!(closed_std_fds_by_i386_calls, |v: &str| scenario(
    v,
    "close32",
    &["dup2(1, 2) = 2", "close_range(3, 4294967295, 0) = 0"]
));

// /proc/self/fd, fdinfo, /proc/PID/fd, the task's, thread-self's and
// /dev/fd list the program's descriptors only.
per_variant!(proc_fd_listings, |v: &str| scenario(v, "listfd", &["getdents64("]));

// Numbers at the limits' edges (where bt-run keeps its own) look closed to
// every call; dup2 onto them behaves natively; close_range(3, ~0).
per_variant!(numbers_at_the_limits_look_closed, |v: &str| scenario(
    v,
    "probe",
    &["EBADF (Bad file descriptor)", "close_range(3, 4294967295, 0) = 0"]
));

// The program lowers and raises its RLIMIT_NOFILE: EMFILE comes where it
// does natively, and bt-run's descriptors stay out of the way.
per_variant!(nofile_limit_lowered_and_raised, |v: &str| scenario(
    v,
    "rlimit",
    &["RLIMIT_NOFILE, {rlim_cur=64, ", "EMFILE (Too many open files)"]
));

// Redirect and close, then exec a child (bt-run re-executes itself): the
// child's view is native and the trace goes on where it went.
per_variant!(exec_after_redirecting, |v: &str| scenario(
    v,
    "exec",
    &["write(2, \"parent stderr line\\n\"", "close_range(3, 4294967295, 0) = 0"]
));

// posix_spawn (a vfork child under bt-run) with file actions on fds 0-2.
per_variant!(posix_spawn_with_file_actions, |v: &str| scenario(v, "spawn", &["getdents64("]));

// bt-run started with the soft limit below the hard one (its descriptors
// then sit right above the soft limit, and move when the program raises
// it), as after `ulimit -Sn 1024`.
per_variant!(soft_limit_below_hard_at_start, |v: &str| {
    let hard = {
        let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit writes one struct rlimit.
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) };
        r.rlim_max
    };
    if hard <= 1100 {
        eprintln!("skipped: the hard RLIMIT_NOFILE ({hard}) leaves no room above a soft limit of 1024");
        return;
    }
    let prog = guest("fd_private", v);
    for mode in ["probe", "rlimit", "exec", "redirect"] {
        let cmd = Cmd::new(&[prog.as_str(), mode]).timeout(T);
        for &(opts, to_file) in &[(&["--trace"][..], false), (&["--trace", "--stats"][..], true)] {
            run_both(&cmd, opts, to_file, Some(1024)).check(&[], &format!("fd_private.{v} {mode} (soft limit 1024)"));
        }
    }
});

/// A shell command under every option set.
fn shell(argv: &[&str], status: i32, calls: &[&str]) {
    let cmd = Cmd::new(argv).timeout(T).expect(Status::Exited(status));
    for &(opts, to_file) in OPTION_SETS {
        let r = run_both(&cmd, opts, to_file, None);
        if !opts.is_empty() {
            r.check(calls, &argv.join(" "));
        }
    }
}

/// The example: natively log.txt holds ls's one line, and so it
/// must under `bt-run --trace` (the trace once went into it).
#[test]
fn trace_stays_out_of_a_redirected_stderr() {
    let bash = require_tool("bash", "bash").to_string_lossy().into_owned();
    shell(&[bash.as_str(), "-c", "ls /nonexistent 2>log.txt"], 2, &["\"/nonexistent\"", "exit_group(2)"]);
}

/// coreutils ls closes stderr at exit: the statistics still appear.
#[test]
fn statistics_survive_a_program_closing_stderr() {
    let ls = require_tool("ls", "coreutils").to_string_lossy().into_owned();
    shell(&[ls.as_str(), "/"], 0, &["close(2) = 0", "getdents64("]);
}

/// Shell redirections: a descriptor above 2 and stderr onto it, stderr
/// closed, listings of the shell's children's descriptors, exec.
#[test]
fn busybox_sh_redirections_and_listings() {
    shell(
        &[
            BUSYBOX,
            "sh",
            "-c",
            "exec 3>three.txt 2>&3; echo to-three >&2; ls /proc/self/fd; exec 2>&-; ls /proc/self/fd /dev/fd/; \
             exec 1>out.txt; echo last; exec ls /proc/self/fd",
        ],
        0,
        &["getdents64("],
    );
}

#[test]
fn bash_exec_with_redirections() {
    let bash = require_tool("bash", "bash").to_string_lossy().into_owned();
    shell(
        &[
            bash.as_str(),
            "-c",
            "exec 2>err.txt 1>out.txt; ls /proc/self/fd; ls /nonexistent; (exec 2>&-; ls /proc/self/fd); \
             ulimit -Sn 256; exec ls -a /proc/self/fd /proc/self/fdinfo",
        ],
        0,
        &["getdents64(", "RLIMIT_NOFILE"],
    );
}

/// A bt-run that re-executes itself passes its descriptors with
/// `--own-fds`; a bad one is refused with one line and status 2.
#[test]
fn own_fds_option_checks_its_descriptors() {
    for args in [
        &["--own-fds", "77777,-", "/bin/true"][..],
        &["--own-fds", "x", "/bin/true"],
        &["--stats", "--own-fds", "1,1", "/bin/true"],
    ] {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        let out = run_bt_args(&args, T);
        assert_eq!(out.status, Status::Exited(2), "{args:?}: {}", out.stderr_str());
        let err = out.stderr_str();
        assert!(
            err.starts_with("bt-run: ") && err.matches('\n').count() == 1 && err.contains("--own-fds"),
            "{args:?}: {err:?}"
        );
    }
}
