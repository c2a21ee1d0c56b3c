//! Running a case natively and under bt-run, and the verdict.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use super::class::Features;
use super::corpus::Case;
use super::dump;
use super::elf;
use super::state::init_state;
use crate::Status;

/// What one run produced.
#[derive(Clone, Debug)]
pub struct RunOutcome {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub status: Status,
    pub timed_out: bool,
}

/// Both runs of a case.
#[derive(Clone, Debug)]
pub struct Verdict {
    pub native: RunOutcome,
    pub bt: RunOutcome,
    pub vec_level: u8,
}

impl Verdict {
    /// Same stdout and same status, and neither run timed out.
    pub fn same(&self) -> bool {
        !self.native.timed_out
            && !self.bt.timed_out
            && self.native.status == self.bt.status
            && self.native.stdout == self.bt.stdout
    }

    /// A description of the difference (status, stderr, field-by-field diff).
    pub fn describe(&self, case: &Case) -> String {
        let mut s = String::new();
        let st = |o: &RunOutcome| {
            if o.timed_out { format!("{} (timed out)", o.status) } else { o.status.to_string() }
        };
        s.push_str(&format!("status: native {}, bt-run {}\n", st(&self.native), st(&self.bt)));
        let err = String::from_utf8_lossy(&self.bt.stderr);
        if !err.trim().is_empty() {
            let lines: Vec<&str> = err.lines().take(8).collect();
            s.push_str(&format!("bt-run stderr:\n    {}\n", lines.join("\n    ")));
        }
        let d = dump::diff(&self.native.stdout, &self.bt.stdout, self.vec_level);
        if !d.is_empty() {
            s.push_str(&format!("differences (final state, native vs bt-run):\n    {}\n", d.join("\n    ")));
        }
        s.push_str(&format!("initial state: {}\n", dump::describe_init(&init_state(case.seed))));
        s
    }
}

fn tmp_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("bt-run-equiv.{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("cannot create {}: {e}", d.display()));
        d
    })
}

/// Per-run wall-clock limit (`EQUIV_TIMEOUT_SECS`, default 30 s).
fn timeout() -> Duration {
    let secs = std::env::var("EQUIV_TIMEOUT_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(30);
    Duration::from_secs(secs)
}

/// Extra bt-run arguments from `EQUIV_BT_ARGS` (whitespace separated).
pub fn env_bt_args() -> Vec<String> {
    std::env::var("EQUIV_BT_ARGS").map(|s| s.split_whitespace().map(String::from).collect()).unwrap_or_default()
}

fn run(mut cmd: Command) -> RunOutcome {
    cmd.env_clear().stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
    // SAFETY: runs in the forked child before exec and only calls setrlimit
    // (async-signal-safe); no Rust-managed state is touched.
    unsafe {
        cmd.pre_exec(|| {
            let zero = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            libc::setrlimit(libc::RLIMIT_CORE, &zero);
            Ok(())
        });
    }
    // Another thread of this process may hold a just-written executable
    // open across its fork (ETXTBSY): retry a little.
    let mut tries = 0;
    let child = loop {
        match cmd.spawn() {
            Ok(c) => break c,
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 200 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("cannot run {:?}: {e}", cmd.get_program()),
        }
    };
    let pid = child.id() as libc::pid_t;
    let (tx, rx) = mpsc::channel::<()>();
    let limit = timeout();
    let watchdog = std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
            // SAFETY: signals the process group created for this child.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
            true
        } else {
            false
        }
    });
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("waiting for {pid}: {e}"));
    let _ = tx.send(());
    let timed_out = watchdog.join().unwrap_or(false);
    let status = match (out.status.code(), out.status.signal()) {
        (Some(c), _) => Status::Exited(c),
        (None, Some(signal)) => Status::Signaled { signal, core_dumped: out.status.core_dumped() },
        _ => Status::Exited(-1),
    };
    RunOutcome { stdout: out.stdout, stderr: out.stderr, status, timed_out }
}

/// Writes `elf` to a fresh executable file; removed when the guard drops.
struct TempExe(PathBuf);

impl TempExe {
    fn new(elf: &[u8]) -> TempExe {
        static N: AtomicU64 = AtomicU64::new(0);
        let p = tmp_dir().join(format!("case-{}", N.fetch_add(1, Ordering::Relaxed)));
        let mut f = std::fs::File::create(&p).unwrap_or_else(|e| panic!("cannot create {}: {e}", p.display()));
        f.write_all(elf).unwrap_or_else(|e| panic!("cannot write {}: {e}", p.display()));
        f.set_permissions(std::fs::Permissions::from_mode(0o755)).unwrap_or_else(|e| panic!("chmod: {e}"));
        drop(f);
        TempExe(p)
    }
}

impl Drop for TempExe {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs an executable natively and under bt-run (with `bt_args`).
pub fn run_exe(elf: &[u8], bt_args: &[String], vec_level: u8) -> Verdict {
    let exe = TempExe::new(elf);
    let native = run(Command::new(&exe.0));
    let mut bt = Command::new(crate::bt_run_path());
    bt.args(bt_args).arg(&exe.0);
    let bt = run(bt);
    Verdict { native, bt, vec_level }
}

/// Runs an executable natively only (generator self-checks).
pub fn run_native_only(elf: &[u8]) -> RunOutcome {
    let exe = TempExe::new(elf);
    run(Command::new(&exe.0))
}

/// Builds and runs `case` (its own `bt-args` plus `EQUIV_BT_ARGS`).
pub fn run_case(case: &Case, feats: &Features) -> Verdict {
    let level = feats.vector_level();
    let elf = elf::build(&case.code, case.seed, level);
    let mut args = case.bt_args.clone();
    args.extend(env_bt_args());
    run_exe(&elf, &args, level)
}

/// Writes the executable of `case` to `path` (for debugging by hand:
/// `./case; bt-run ./case`, `objdump -D -b binary -mi386:x86-64 ...`).
pub fn write_exe(case: &Case, feats: &Features, path: &Path) -> std::io::Result<()> {
    std::fs::write(path, elf::build(&case.code, case.seed, feats.vector_level()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
}
