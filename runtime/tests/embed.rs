//! The embedding API: the example hook program runs a guest, sees its
//! syscalls and refuses the ones it is told to, with the guest's own error
//! handling visible in its output and exit status.

use std::path::PathBuf;
use std::process::Command;

fn example() -> PathBuf {
    // Integration tests live in target/<profile>/deps; examples next to it.
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe.parent().and_then(|d| d.parent()).expect("target/<profile>");
    let p = profile_dir.join("examples/count_syscalls");
    if !p.exists() {
        // Running this test alone does not build examples; build it.
        let release = profile_dir.file_name().is_some_and(|n| n == "release");
        let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        c.args(["build", "-p", "runtime", "--example", "count_syscalls"]);
        if release {
            c.arg("--release");
        }
        assert!(c.status().expect("run cargo").success(), "building the example failed");
    }
    assert!(p.exists(), "{} not built", p.display());
    p
}

#[test]
fn hook_counts_and_denies() {
    let dir = std::env::temp_dir().join(format!("bt-embed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("data.txt");
    std::fs::write(&file, "secret\n").unwrap();
    // Allowed: a directory the file is not in.
    let ok =
        Command::new(example()).arg("/nonexistent-dir").arg("/bin/busybox").arg("cat").arg(&file).output().unwrap();
    let native = Command::new("/bin/busybox").arg("cat").arg(&file).output().unwrap();
    assert_eq!(ok.stdout, native.stdout);
    assert_eq!(ok.status.code(), native.status.code());
    let err = String::from_utf8_lossy(&ok.stderr);
    assert!(err.lines().any(|l| l.starts_with("hook: openat ")), "{err}");
    assert!(err.lines().any(|l| l.starts_with("hook: exit_group 1")), "{err}");
    // Denied: the guest sees EACCES and reports it as cat does natively for
    // an unreadable file.
    let denied = Command::new(example()).arg(&dir).arg("/bin/busybox").arg("cat").arg(&file).output().unwrap();
    assert!(denied.stdout.is_empty());
    assert_eq!(denied.status.code(), Some(1));
    let err = String::from_utf8_lossy(&denied.stderr);
    assert!(err.contains("Permission denied"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

/// The embedding API starts a guest the way the `bt-run` binary does (one
/// start-up path): the same one-line error and exit status for a program
/// that is not there, and the guest's own name in /proc/self/comm.
#[test]
fn starts_as_the_binary_does() {
    let missing = Command::new(example()).arg("/nonexistent-dir").arg("/nonexistent/prog").output().unwrap();
    assert_eq!(missing.status.code(), Some(127));
    assert_eq!(String::from_utf8_lossy(&missing.stderr), "bt-run: /nonexistent/prog: No such file or directory\n");
    let comm = ["cat", "/proc/self/comm"];
    let native = Command::new("/bin/busybox").args(comm).output().unwrap();
    let embedded = Command::new(example()).arg("/nonexistent-dir").arg("/bin/busybox").args(comm).output().unwrap();
    assert_eq!(embedded.stdout, native.stdout);
    assert_eq!(embedded.status.code(), native.status.code());
}
