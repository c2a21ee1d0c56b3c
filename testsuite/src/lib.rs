//! Test harness for bt-run: run a command natively and under bt-run with the
//! same arguments, environment, stdin and working directory, and require the
//! same stdout, stderr and exit status (including death by signal).
//!
//! - bt-run is found via `$BT_RUN`, else `<workspace>/target/release/bt-run`,
//!   else `<workspace>/target/debug/bt-run` (`$CARGO_TARGET_DIR` is honoured).
//! - Both runs get a fixed, minimal environment (see [`BASE_ENV`]), their own
//!   process group, `RLIMIT_CORE = 0` (no core files) and a timeout; a run
//!   that times out is killed with its whole process group and is a failure.
//! - The native run must end with the status the test expects (exit 0 unless
//!   told otherwise), so that a broken test cannot "pass" by failing the same
//!   way twice.
//! - The bt-run timeout is `min(timeout, 30 s + 50 x native time)`, so a hung
//!   translator costs seconds, not minutes; `BT_TEST_TIMEOUT_SECS` overrides it.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

mod data;
pub use data::{pseudo_random_bytes, pseudo_random_text, set_mtimes, write_file};

/// Directory holding the compiled guest programs (`<name>.<variant>`).
pub const GUEST_DIR: &str = env!("GUEST_DIR");
/// Debian's busybox-static.
pub const BUSYBOX: &str = "/bin/busybox";
/// Default timeout of a single run.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// The environment both runs get (after clearing everything else).
pub const BASE_ENV: &[(&str, &str)] = &[
    ("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
    ("HOME", "/root"),
    ("LC_ALL", "C"),
    ("TZ", "UTC"),
    ("TERM", "dumb"),
];

/// How a process ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Status {
    Exited(i32),
    Signaled { signal: i32, core_dumped: bool },
}

impl Status {
    /// Death by `signal` without a core dump (the harness sets RLIMIT_CORE to 0).
    pub fn signal(signal: i32) -> Status {
        Status::Signaled { signal, core_dumped: false }
    }

    fn from_exit(es: ExitStatus) -> Status {
        match (es.code(), es.signal()) {
            (Some(code), _) => Status::Exited(code),
            (None, Some(signal)) => Status::Signaled { signal, core_dumped: es.core_dumped() },
            (None, None) => Status::Exited(-1),
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Status::Exited(c) => write!(f, "exit status {c}"),
            Status::Signaled { signal, core_dumped } => {
                write!(f, "killed by signal {signal} ({})", signal_name(signal))?;
                if core_dumped {
                    write!(f, " (core dumped)")?;
                }
                Ok(())
            }
        }
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGSYS => "SIGSYS",
        _ => "?",
    }
}

/// What one run produced.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub status: Status,
    pub elapsed: Duration,
    pub timed_out: bool,
}

impl Outcome {
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// A command to run natively and under bt-run.
#[derive(Clone, Debug)]
pub struct Cmd {
    argv: Vec<OsString>,
    stdin: Option<Vec<u8>>,
    cwd: Option<PathBuf>,
    env: Vec<(OsString, OsString)>,
    timeout: Duration,
    expect: Option<Status>,
}

impl Cmd {
    /// `argv[0]` is the program (an absolute path, as given to execve).
    pub fn new<S: AsRef<OsStr>>(argv: &[S]) -> Cmd {
        assert!(!argv.is_empty(), "Cmd::new needs at least a program");
        Cmd {
            argv: argv.iter().map(|a| a.as_ref().to_owned()).collect(),
            stdin: None,
            cwd: None,
            env: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            expect: Some(Status::Exited(0)),
        }
    }
    /// `/bin/busybox sh -c SCRIPT`.
    pub fn sh(script: &str) -> Cmd {
        Cmd::new(&[BUSYBOX, "sh", "-c", script])
    }
    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Cmd {
        self.argv.push(a.as_ref().to_owned());
        self
    }
    /// Bytes fed to stdin (default: /dev/null).
    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Cmd {
        self.stdin = Some(data.into());
        self
    }
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Cmd {
        self.cwd = Some(dir.into());
        self
    }
    /// Adds or overrides an environment variable (on top of [`BASE_ENV`]).
    pub fn env(mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> Cmd {
        self.env.push((k.as_ref().to_owned(), v.as_ref().to_owned()));
        self
    }
    pub fn timeout(mut self, t: Duration) -> Cmd {
        self.timeout = t;
        self
    }
    /// The status the native run must end with (default: exit 0).
    pub fn expect(mut self, s: Status) -> Cmd {
        self.expect = Some(s);
        self
    }
    /// Accept any native status (still compared with bt-run's).
    pub fn any_status(mut self) -> Cmd {
        self.expect = None;
        self
    }
    pub fn display(&self) -> String {
        self.argv.iter().map(|a| shell_quote(&a.to_string_lossy())).collect::<Vec<_>>().join(" ")
    }
}

fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    let shown: String = if s.len() > 120 { format!("{}...", &s[..floor_boundary(s, 120)]) } else { s.into() };
    if plain { shown } else { format!("'{}'", shown.replace('\'', "'\\''")) }
}

fn floor_boundary(s: &str, max: usize) -> usize {
    let mut i = max.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The workspace root (parent of this crate).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Path of the bt-run binary under test; panics with instructions if absent.
pub fn bt_run_path() -> PathBuf {
    if let Some(p) = std::env::var_os("BT_RUN") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "BT_RUN={} does not name a file", p.display());
        return p;
    }
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target"));
    // .cargo/config.toml names the target triple (bt-run is linked
    // statically), so cargo puts binaries under target/<triple>/.
    let triple = "x86_64-unknown-linux-gnu";
    let candidates = [target.join(triple).join("release/bt-run"), target.join(triple).join("debug/bt-run")];
    for c in &candidates {
        if c.is_file() {
            return c.clone();
        }
    }
    panic!(
        "bt-run binary not found (looked at {} and {}); build it with \
         `cargo build --release -p runtime` or point BT_RUN at it",
        candidates[0].display(),
        candidates[1].display()
    );
}

/// Path of a compiled guest program, e.g. `guest("fib", "musl")`.
pub fn guest(name: &str, variant: &str) -> String {
    let p = Path::new(GUEST_DIR).join(format!("{name}.{variant}"));
    assert!(p.is_file(), "guest program {} was not built (see testsuite/build.rs)", p.display());
    p.to_string_lossy().into_owned()
}

fn spawn_error(what: &str, cmd: &Cmd, e: std::io::Error) -> ! {
    panic!("cannot start {what} for `{}`: {e}", cmd.display())
}

/// Runs `program` with `args` under the settings of `cmd`.
fn run_raw(program: &OsStr, args: &[OsString], cmd: &Cmd, timeout: Duration, what: &str) -> Outcome {
    let mut c = Command::new(program);
    c.args(args).env_clear();
    for (k, v) in BASE_ENV {
        c.env(k, v);
    }
    for (k, v) in &cmd.env {
        c.env(k, v);
    }
    if let Some(d) = &cmd.cwd {
        c.current_dir(d);
    }
    c.stdin(if cmd.stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    c.stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
    // SAFETY: the closure runs in the forked child before exec and only calls
    // setrlimit, which is async-signal-safe; it touches no Rust-managed state.
    unsafe {
        c.pre_exec(|| {
            let zero = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            if libc::setrlimit(libc::RLIMIT_CORE, &zero) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let start = Instant::now();
    let mut child = c.spawn().unwrap_or_else(|e| spawn_error(what, cmd, e));
    let pgid = child.id() as libc::pid_t;

    if let (Some(mut pipe), Some(data)) = (child.stdin.take(), cmd.stdin.clone()) {
        // A guest may exit without reading everything: EPIPE is not an error here.
        thread::spawn(move || {
            let _ = pipe.write_all(&data);
        });
    }
    let out_rx = reader(child.stdout.take());
    let err_rx = reader(child.stderr.take());

    let deadline = start + timeout;
    let mut timed_out = false;
    let mut nap = Duration::from_millis(1);
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if Instant::now() >= deadline => {
                timed_out = true;
                kill_group(pgid);
                match child.wait() {
                    Ok(st) => break st,
                    Err(e) => panic!("waiting for {what} of `{}` failed: {e}", cmd.display()),
                }
            }
            Ok(None) => {
                thread::sleep(nap);
                nap = (nap * 2).min(Duration::from_millis(20));
            }
            Err(e) => panic!("waiting for {what} of `{}` failed: {e}", cmd.display()),
        }
    };
    let elapsed = start.elapsed();
    // Background processes may still hold the pipes open: give them a moment, then kill them.
    let grace = Duration::from_secs(5);
    let stdout = collect(&out_rx, grace, pgid);
    let stderr = collect(&err_rx, grace, pgid);
    kill_group(pgid);
    Outcome { stdout, stderr, status: Status::from_exit(status), elapsed, timed_out }
}

fn reader<R: Read + Send + 'static>(pipe: Option<R>) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        let _ = tx.send(buf);
    });
    rx
}

fn collect(rx: &mpsc::Receiver<Vec<u8>>, grace: Duration, pgid: libc::pid_t) -> Vec<u8> {
    match rx.recv_timeout(grace) {
        Ok(v) => v,
        Err(_) => {
            kill_group(pgid);
            rx.recv_timeout(Duration::from_secs(10)).unwrap_or_default()
        }
    }
}

fn kill_group(pgid: libc::pid_t) {
    // SAFETY: kill(2) with a negative pid signals the process group we created
    // for this child (process_group(0)); no memory is involved.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

/// Runs the command natively.
pub fn run_native(cmd: &Cmd) -> Outcome {
    run_raw(&cmd.argv[0], &cmd.argv[1..], cmd, cmd.timeout, "the native run")
}

/// With `BT_TEST_ISOLATE=1` in the environment every run under bt-run
/// (but the command-line tests' own) has isolation forced on: the test
/// command runs the program tests a second time that way.
pub fn forced_isolation() -> bool {
    std::env::var_os("BT_TEST_ISOLATE").is_some_and(|v| v == "1")
}

/// `--isolate` in front of `opts` when isolation is forced (and the
/// options do not ask for native children, which isolation refuses).
fn with_forced_isolation(opts: Vec<OsString>) -> Vec<OsString> {
    if forced_isolation() && !opts.iter().any(|o| o == "--no-follow") {
        let mut v = vec![OsString::from("--isolate")];
        v.extend(opts);
        v
    } else {
        opts
    }
}

/// Runs the command under bt-run (`bt-run PROG ARGS...`).
pub fn run_bt(cmd: &Cmd, timeout: Duration) -> Outcome {
    let bt = bt_run_path();
    let args = with_forced_isolation(cmd.argv.clone());
    run_raw(bt.as_os_str(), &args, cmd, timeout, "bt-run")
}

/// Runs bt-run itself with exactly `args` (for command-line tests).
pub fn run_bt_args<S: AsRef<OsStr>>(args: &[S], timeout: Duration) -> Outcome {
    let bt = bt_run_path();
    let args: Vec<OsString> = args.iter().map(|a| a.as_ref().to_owned()).collect();
    let cmd = Cmd::new(&[bt.as_os_str()]);
    run_raw(bt.as_os_str(), &args, &cmd, timeout, "bt-run")
}

fn bt_timeout(cmd: &Cmd, native: Duration) -> Duration {
    if let Some(secs) = std::env::var("BT_TEST_TIMEOUT_SECS").ok().and_then(|s| s.parse::<u64>().ok()) {
        return Duration::from_secs(secs);
    }
    cmd.timeout.min(Duration::from_secs(30) + native * 50)
}

/// Runs `cmd` natively, checks the native status, runs it under bt-run and
/// asserts identical stdout, stderr and status. Returns the native outcome.
pub fn compare(cmd: &Cmd) -> Outcome {
    let native = run_native(cmd);
    check_native(cmd, &native);
    let bt = run_bt(cmd, bt_timeout(cmd, native.elapsed));
    report(cmd, &native, &bt);
    native
}

fn check_native(cmd: &Cmd, native: &Outcome) {
    assert!(!native.timed_out, "native run of `{}` timed out after {:?}", cmd.display(), cmd.timeout);
    if let Some(exp) = cmd.expect {
        assert!(
            native.status == exp,
            "native run of `{}` ended with {}, but the test expects {exp} (a test or environment problem, \
             not a bt-run one)\n--- native stderr ---\n{}",
            cmd.display(),
            native.status,
            excerpt(&native.stderr, 20)
        );
    }
}

fn report(cmd: &Cmd, native: &Outcome, bt: &Outcome) {
    let mut problems = Vec::new();
    if bt.timed_out {
        problems.push(format!("bt-run timed out after {:?} (native took {:?})", bt.elapsed, native.elapsed));
    }
    if native.status != bt.status {
        problems.push(format!("status: native {}, bt-run {}", native.status, bt.status));
    }
    if let Some(d) = diff("stdout", &native.stdout, &bt.stdout) {
        problems.push(d);
    }
    if let Some(d) = diff("stderr", &native.stderr, &bt.stderr) {
        problems.push(d);
    }
    if !problems.is_empty() {
        panic!(
            "bt-run differs from native for `{}`:\n  {}\n--- bt-run stderr (first lines) ---\n{}",
            cmd.display(),
            problems.join("\n  "),
            excerpt(&bt.stderr, 15)
        );
    }
}

/// Describes how two outputs differ, or None if they are equal.
pub fn diff(what: &str, native: &[u8], bt: &[u8]) -> Option<String> {
    if native == bt {
        return None;
    }
    let nl: Vec<&[u8]> = native.split(|&b| b == b'\n').collect();
    let bl: Vec<&[u8]> = bt.split(|&b| b == b'\n').collect();
    let line = nl.iter().zip(&bl).position(|(a, b)| a != b).unwrap_or(nl.len().min(bl.len()));
    let byte = native.iter().zip(bt).position(|(a, b)| a != b).unwrap_or(native.len().min(bt.len()));
    let show = |v: &Vec<&[u8]>| v.get(line).map(|l| quote_line(l)).unwrap_or_else(|| "<end of output>".into());
    let mut s = format!(
        "{what} differs: native {} bytes / {} lines, bt-run {} bytes / {} lines; first difference at byte {byte}, line {}",
        native.len(),
        count_lines(native),
        bt.len(),
        count_lines(bt),
        line + 1
    );
    s.push_str(&format!("\n    native: {}\n    bt-run: {}", show(&nl), show(&bl)));
    // The lines that follow, so a failure seen only in CI can be read from its log.
    let context = |v: &Vec<&[u8]>| {
        v.iter().skip(line + 1).take(8).map(|l| format!("\n      {}", quote_line(l))).collect::<String>()
    };
    s.push_str(&format!("\n    native then:{}\n    bt-run then:{}", context(&nl), context(&bl)));
    if bt.is_empty() {
        s.push_str("\n    (bt-run produced no output at all)");
    } else if native.starts_with(bt) {
        s.push_str("\n    (bt-run output is a truncated prefix of native)");
    }
    Some(s)
}

fn count_lines(b: &[u8]) -> usize {
    b.iter().filter(|&&c| c == b'\n').count() + usize::from(!b.is_empty() && !b.ends_with(b"\n"))
}

fn quote_line(l: &[u8]) -> String {
    let s = String::from_utf8_lossy(l);
    let cut = floor_boundary(&s, 200);
    let more = if cut < s.len() { "..." } else { "" };
    format!("{:?}{more}", &s[..cut])
}

fn excerpt(bytes: &[u8], lines: usize) -> String {
    let s = String::from_utf8_lossy(bytes);
    let mut out: Vec<&str> = s.lines().take(lines).collect();
    if s.lines().count() > lines {
        out.push("...");
    }
    if out.is_empty() { "<empty>".into() } else { out.join("\n") }
}

/// Compares `argv` (exit 0 expected natively).
pub fn assert_same(argv: &[&str]) -> Outcome {
    compare(&Cmd::new(argv))
}

/// Compares `argv` fed with `stdin` (exit 0 expected natively).
pub fn assert_same_with_stdin(argv: &[&str], stdin: &[u8]) -> Outcome {
    compare(&Cmd::new(argv).stdin(stdin))
}

/// Compares `argv`, requiring the native run to end with `status`.
pub fn assert_same_status(argv: &[&str], status: Status) -> Outcome {
    compare(&Cmd::new(argv).expect(status))
}

/// Compares `/bin/busybox sh -c SCRIPT` (exit 0 expected natively).
pub fn assert_same_sh(script: &str) -> Outcome {
    compare(&Cmd::sh(script))
}

/// Runs `cmd` natively and under bt-run, each in its own fresh temporary
/// directory prepared by `setup` and used as the working directory. Commands
/// should use relative paths so outputs do not mention the directory.
pub fn compare_in_dirs(cmd: &Cmd, setup: impl Fn(&Path)) -> Outcome {
    let tag = test_tag();
    let nd = TempDir::new(&format!("{tag}-native"));
    setup(nd.path());
    let native_cmd = cmd.clone().cwd(nd.path());
    let native = run_native(&native_cmd);
    check_native(&native_cmd, &native);
    let bd = TempDir::new(&format!("{tag}-bt"));
    setup(bd.path());
    let bt_cmd = cmd.clone().cwd(bd.path());
    let bt = run_bt(&bt_cmd, bt_timeout(cmd, native.elapsed));
    report(cmd, &native, &bt);
    native
}

fn test_tag() -> String {
    let name = thread::current().name().unwrap_or("test").to_string();
    name.rsplit("::").next().unwrap_or("test").chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').collect()
}

/// A directory under the system temp dir, removed (with its contents) on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let base = std::env::temp_dir().join(format!("bt-run-tests.{}", std::process::id()));
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let path = base.join(format!("{tag}.{n}.{nanos}"));
        // Another test's drop removes the shared parent once it is empty,
        // possibly between the two creations: then make it again.
        for attempt in 0.. {
            if let Err(e) = std::fs::create_dir_all(&base) {
                panic!("cannot create {}: {e}", base.display());
            }
            match std::fs::create_dir(&path) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && attempt < 100 => continue,
                Err(e) => panic!("cannot create {}: {e}", path.display()),
            }
        }
        TempDir { path }
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.path.join(rel)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
        if let Some(parent) = self.path.parent() {
            let _ = std::fs::remove_dir(parent); // only succeeds once it is empty
        }
    }
}
pub mod equiv;

// ---- Helpers for the syscall-layer tests (testsuite/tests/syscall_layer.rs) ----

/// Runs `bt-run OPTS... PROG ARGS...` under the settings of `cmd`.
pub fn run_bt_opts(opts: &[&str], cmd: &Cmd, timeout: Duration) -> Outcome {
    let bt = bt_run_path();
    let mut args: Vec<OsString> = opts.iter().map(OsString::from).collect();
    args.extend(cmd.argv.iter().cloned());
    let args = with_forced_isolation(args);
    run_raw(bt.as_os_str(), &args, cmd, timeout, "bt-run")
}

/// Runs `PREFIX... PROG ARGS...` natively (e.g. under strace) with the
/// settings of `cmd`.
pub fn run_native_prefixed(prefix: &[&str], cmd: &Cmd) -> Outcome {
    assert!(!prefix.is_empty(), "run_native_prefixed needs a program");
    let mut args: Vec<OsString> = prefix[1..].iter().map(OsString::from).collect();
    args.extend(cmd.argv.iter().cloned());
    run_raw(OsStr::new(prefix[0]), &args, cmd, cmd.timeout, "the native run")
}

/// Like [`compare`], but bt-run gets `opts` before the program.
pub fn compare_opts(cmd: &Cmd, opts: &[&str]) -> Outcome {
    compare_prefixed(cmd, &[], opts)
}

/// Runs `cmd` natively under `native_prefix` (nothing if empty; for example
/// strace with fault injection as the oracle of `--deny`), checks the native
/// status, runs it under `bt-run OPTS...` and asserts identical stdout,
/// stderr and status. Returns the native outcome.
pub fn compare_prefixed(cmd: &Cmd, native_prefix: &[&str], opts: &[&str]) -> Outcome {
    let native = if native_prefix.is_empty() { run_native(cmd) } else { run_native_prefixed(native_prefix, cmd) };
    check_native(cmd, &native);
    let bt = run_bt_opts(opts, cmd, bt_timeout(cmd, native.elapsed));
    let shown = Cmd { argv: opts.iter().map(OsString::from).chain(cmd.argv.iter().cloned()).collect(), ..cmd.clone() };
    report(&shown, &native, &bt);
    native
}

/// Path of a tool the tests need from the system (e.g. strace); panics with
/// the package to install if it is missing.
pub fn require_tool(name: &str, package: &str) -> PathBuf {
    for dir in ["/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"] {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "`{name}` is needed by this test but is not installed: `apt-get install -y {package}` (scripts/test.sh should install it)"
    )
}

/// A parsed JSON value (just enough JSON for bt-run's `--stats=json`).
#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    /// The number's text, as written.
    Num(String),
    Str(String),
    Arr(Vec<Json>),
    /// Members in the order written.
    Obj(Vec<(String, Json)>),
}

impl Json {
    /// Parses one JSON text (surrounding whitespace allowed).
    pub fn parse(text: &str) -> Result<Json, String> {
        let mut p = JsonParser { s: text.as_bytes(), i: 0 };
        let v = p.value()?;
        p.ws();
        if p.i != p.s.len() {
            return Err(format!("trailing characters at byte {}", p.i));
        }
        Ok(v)
    }
    /// Member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
    /// Members of an object (empty for anything else).
    pub fn members(&self) -> &[(String, Json)] {
        match self {
            Json::Obj(m) => m,
            _ => &[],
        }
    }
    /// A non-negative integer.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Json::Num(n) => n.parse().ok(),
            _ => None,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }
}

struct JsonParser<'a> {
    s: &'a [u8],
    i: usize,
}

impl JsonParser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }
    fn err<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("{what} at byte {}", self.i))
    }
    fn eat(&mut self, c: u8) -> Result<(), String> {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            Ok(())
        } else {
            self.err(&format!("expected '{}'", c as char))
        }
    }
    fn lit(&mut self, word: &str, v: Json) -> Result<Json, String> {
        if self.s[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            Ok(v)
        } else {
            self.err("bad literal")
        }
    }
    fn value(&mut self) -> Result<Json, String> {
        self.ws();
        match self.s.get(self.i) {
            None => self.err("unexpected end"),
            Some(b'{') => {
                self.i += 1;
                let mut m = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Ok(Json::Obj(m));
                }
                loop {
                    self.ws();
                    let k = self.string()?;
                    self.eat(b':')?;
                    m.push((k, self.value()?));
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(Json::Obj(m));
                        }
                        _ => return self.err("expected ',' or '}'"),
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                let mut a = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(Json::Arr(a));
                }
                loop {
                    a.push(self.value()?);
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Json::Arr(a));
                        }
                        _ => return self.err("expected ',' or ']'"),
                    }
                }
            }
            Some(b'"') => Ok(Json::Str(self.string()?)),
            Some(b't') => self.lit("true", Json::Bool(true)),
            Some(b'f') => self.lit("false", Json::Bool(false)),
            Some(b'n') => self.lit("null", Json::Null),
            Some(c) if *c == b'-' || c.is_ascii_digit() => {
                let start = self.i;
                while self.i < self.s.len() && matches!(self.s[self.i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    self.i += 1;
                }
                Ok(Json::Num(String::from_utf8_lossy(&self.s[start..self.i]).into_owned()))
            }
            Some(_) => self.err("unexpected character"),
        }
    }
    fn string(&mut self) -> Result<String, String> {
        if self.s.get(self.i) != Some(&b'"') {
            return self.err("expected a string");
        }
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let Some(&c) = self.s.get(self.i) else { return self.err("unterminated string") };
            self.i += 1;
            match c {
                b'"' => return String::from_utf8(out).map_err(|e| format!("bad UTF-8 in a string: {e}")),
                b'\\' => {
                    let Some(&e) = self.s.get(self.i) else { return self.err("unterminated escape") };
                    self.i += 1;
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let hex = self.s.get(self.i..self.i + 4).ok_or("short \\u escape")?;
                            let code =
                                u32::from_str_radix(&String::from_utf8_lossy(hex), 16).map_err(|e| e.to_string())?;
                            self.i += 4;
                            let ch = char::from_u32(code).unwrap_or('\u{fffd}');
                            let mut b = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut b).as_bytes());
                        }
                        _ => return self.err("bad escape"),
                    }
                }
                _ => out.push(c),
            }
        }
    }
}

/// A [`TempDir`] made safely while other tests' directories come and go:
/// `TempDir::new` can lose a race with the drop of another thread's last
/// directory, which removes the shared per-process base directory between
/// its `create_dir_all(base)` and `create_dir(path)`; this retries then.
pub fn temp_dir(tag: &str) -> TempDir {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let base = std::env::temp_dir().join(format!("bt-run-tests.{}", std::process::id()));
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let path = base.join(format!("{tag}.t{n}.{:?}", thread::current().id()).replace(['(', ')'], ""));
    for _ in 0..100 {
        let _ = std::fs::create_dir_all(&base);
        match std::fs::create_dir(&path) {
            Ok(()) => return TempDir { path },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => panic!("cannot create {}: {e}", path.display()),
        }
    }
    panic!("cannot create {}: its parent keeps disappearing", path.display())
}

/// A trace line's thread id and the rest, for either of strace's (and
/// bt-run's) prefixes: `[pid  1234] rest` (on stderr) or `1234  rest` (in
/// a `-o` file). None for any other line (statistics, messages).
pub fn trace_pid(line: &str) -> Option<(&str, &str)> {
    if let Some(r) = line.strip_prefix("[pid ") {
        let (pid, rest) = r.split_once("] ")?;
        return Some((pid.trim(), rest));
    }
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    let rest = line[digits..].strip_prefix(' ')?.trim_start();
    (digits > 0 && rest.starts_with(|c: char| c.is_ascii_lowercase() || c == '+' || c == '-'))
        .then(|| (&line[..digits], rest))
}
