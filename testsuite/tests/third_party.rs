//! Third-party test suites run natively and under bt-run, compared by their
//! verdicts: CPython's own regression tests for signals, threads, faults,
//! the OS interface, mmap, select, time, ctypes, ptys and more. They were
//! written by others to find bugs in exactly what a translator must get
//! right (signal delivery during blocking calls, sigwait, pthread_kill,
//! faulthandler's SIGSEGV on an alternate stack, fork in threads, ...).
//!
//! The summary (which tests passed, failed or were skipped as a whole) must
//! be identical; timing lines are left out.

use std::time::Duration;
use testsuite::*;

const PYTHON: &str = "/usr/bin/python3";

/// CPython regression-test modules (Debian: libpython3.11-testsuite).
const CPYTHON_TESTS: &[&str] = &[
    "test_signal",
    "test_faulthandler",
    "test_threading",
    "test_os",
    "test_posix",
    "test_mmap",
    "test_select",
    "test_time",
    "test_resource",
    "test_ctypes",
    "test_sys",
    "test_exceptions",
    "test_struct",
    "test_re",
    "test_zlib",
    "test_hashlib",
    "test_fcntl",
    "test_pty",
    "test_subprocess",
    "test_threadsignals",
    "test_thread",
    "test_wait3",
    "test_wait4",
    "test_fork1",
    "test_selectors",
    "test_poll",
    "test_epoll",
    "test_asyncio.test_subprocess",
];

/// The verdict part of `python3 -m test` output: from "== Tests result" on,
/// without the duration.
fn verdicts(o: &Outcome) -> String {
    let out = o.stdout_str();
    let Some(at) = out.find("== Tests result") else {
        panic!("no test summary in the output:\n{out}\n{}", o.stderr_str())
    };
    out[at..].lines().filter(|l| !l.starts_with("Total duration")).collect::<Vec<_>>().join("\n")
}

#[test]
fn cpython_regression_tests_same_verdicts() {
    require_tool("python3", "python3");
    assert!(
        std::path::Path::new("/usr/lib/python3.11/test/test_signal.py").is_file()
            || std::path::Path::new("/usr/lib/python3/dist-packages/test/test_signal.py").is_file(),
        "CPython's test suite is needed: `apt-get install -y libpython3.11-testsuite` (scripts/test.sh installs it)"
    );
    let dir = temp_dir("cpython-tests");
    let mut argv = vec![PYTHON, "-m", "test", "-j2"];
    argv.extend_from_slice(CPYTHON_TESTS);
    let cmd = Cmd::new(&argv).cwd(dir.path()).env("HOME", dir.path()).timeout(Duration::from_secs(1200)).any_status();
    let native = run_native(&cmd);
    let want = verdicts(&native);
    assert!(want.contains("tests OK"), "the native run passed nothing:\n{want}");
    let bt = run_bt(&cmd, Duration::from_secs(1200));
    assert!(!bt.timed_out, "bt-run timed out");
    let got = verdicts(&bt);
    assert_eq!(want, got, "CPython's tests under bt-run differ from native");
    assert_eq!(native.status, bt.status);
}
