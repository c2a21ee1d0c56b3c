//! Start-up, the one path shared by the `bt-run` binary and the embedding
//! API (`embed::Guest::run`): bt-run's own descriptors, the CPU check, the
//! guest's load, the process, the guest's identity, then the run.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::dispatch::{Options, Process, ProcessError};
use crate::loader::{self, LoadError, LoadRequest};
use crate::{GuestAddr, own_fds, perf_map};

/// What to run, and how.
pub struct Launch {
    /// The program's file (already resolved through PATH).
    pub path: PathBuf,
    /// Its argv, argv[0] included.
    pub argv: Vec<OsString>,
    /// Its environment, as `NAME=value` strings.
    pub envp: Vec<OsString>,
    pub opts: Options,
    /// Started by a guest's execve under bt-run, which handed over bt-run's
    /// own descriptors (`--own-fds`): they are adopted already.
    pub adopted: bool,
}

/// Why the guest could not be started (each with bt-run's conventional
/// exit status, `exit_code`).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// bt-run's own copy of stderr or its `-o` file could not be set up.
    #[error("{0}")]
    OwnFds(String),
    #[error("this CPU or kernel does not allow user-space FS/GS base access (FSGSBASE), which bt-run needs")]
    NoFsgsbase,
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("cannot find bt-run's own executable: {0}")]
    SelfExe(std::io::Error),
    #[error(transparent)]
    Process(#[from] ProcessError),
    /// `--isolate` (or a deny policy) asked for a filter that could not be
    /// built or installed: the program does not run unprotected.
    #[error("{0}")]
    Isolation(String),
}

impl StartError {
    /// The exit status bt-run ends with: 2 for a bad output file (a usage
    /// error), the loader's 126/127 for a program that cannot be run or
    /// found, 125 for bt-run's own failures.
    pub fn exit_code(&self) -> i32 {
        match self {
            StartError::OwnFds(_) => 2,
            StartError::Load(e) => e.exit_code(),
            StartError::NoFsgsbase | StartError::SelfExe(_) | StartError::Process(_) | StartError::Isolation(_) => 125,
        }
    }
}

/// The environment of this process, as `NAME=value` strings.
pub fn environment() -> Vec<OsString> {
    std::env::vars_os()
        .map(|(k, v)| {
            let mut s = k;
            s.push("=");
            s.push(v);
            s
        })
        .collect()
}

/// Start the guest and run it to its end: the process exits with the
/// guest's status (or dies of its signal). Returns only if it could not
/// be started.
pub fn start(l: Launch) -> StartError {
    match start_inner(l) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

fn start_inner(l: Launch) -> Result<std::convert::Infallible, StartError> {
    if !l.adopted {
        // bt-run's messages go to a private copy of stderr, never to the
        // guest's; trace lines and statistics need it (or the -o file).
        let needed = l.opts.stats || l.opts.observers.trace.is_some();
        own_fds::init(l.opts.output.as_deref(), needed).map_err(StartError::OwnFds)?;
        if l.opts.perf_map.is_some() {
            perf_map::PerfMap::discard_old();
        }
    }
    if !crate::sys::fsgsbase_available() {
        return Err(StartError::NoFsgsbase);
    }
    if l.opts.isolate && !std::arch::is_x86_feature_detected!("bmi2") {
        // Confined stores check their address with `rorx`.
        return Err(StartError::Isolation("isolation needs a CPU with BMI2".into()));
    }
    // Under isolation a position-independent program goes into the band
    // where the code cache must be, so that the cache can be near it.
    let main_within = l.opts.isolate.then_some(crate::isolate::EXEC_SAFE_BAND);
    // And the rest of the guest's memory below bt-run's (see `guest_space`).
    let rest_within = l.opts.isolate.then_some(crate::guest_space::GUEST_BAND);
    let prog = loader::load(&LoadRequest { path: &l.path, argv: &l.argv, envp: &l.envp, main_within, rest_within })?;
    let exe = std::fs::canonicalize(&prog.exe_path).unwrap_or_else(|_| prog.exe_path.clone());
    let self_exe = std::fs::read_link("/proc/self/exe").map_err(StartError::SelfExe)?;
    crate::ptrace_view::at_start(l.adopted);
    let process = Process::new(&prog, l.opts, exe, self_exe)?;
    // The descriptors it inherited that are /dev/null (see `sys::nullfds`).
    crate::sys::nullfds::scan_inherited(|fd| own_fds::is_own(fd as u64));
    let mut thread = process.main_thread(&prog);
    // The guest's name and auxv where the kernel shows a process's own.
    let comm = Path::new(&l.path).file_name().map(|n| n.as_bytes().to_vec()).unwrap_or_default();
    let auxv = crate::sys::adopt_identity(&comm, &process.exe_path, prog.stack_pointer.get());
    // The execve that started this image has succeeded: its trace line,
    // formatted by the image that made the call, or for the program bt-run
    // starts, from what the program is given (as strace shows the execve
    // of the program it starts).
    let entry = match &process.opts.exec_line {
        Some(e) => Some(e.clone()),
        None if !l.adopted
            && process.opts.observers.traces_in(syscall_inline::Abi::X86_64, libc::SYS_execve as u64) =>
        {
            initial_exec_entry(&l.path, &l.argv, prog.stack_pointer.get())
        }
        None => None,
    };
    if let Some(line) = entry.and_then(|e| process.opts.observers.exec_line(crate::sys::gettid() as u32, &e)) {
        own_fds::write_output(&line);
    }
    // Counted in this image, as strace counts the execve at its return.
    let exec_nr = match &process.opts.exec_line {
        Some(e) if e.starts_with("execveat(") => libc::SYS_execveat,
        _ => libc::SYS_execve,
    };
    thread.with_stats(|s| {
        s.syscalls.record(syscall_inline::Abi::X86_64, exec_nr as u64, syscall_inline::layer::Served::Kernel, Some(0))
    });
    crate::ptrace_view::publish_auxv(auxv);
    drop(prog);
    if let Some(plan) = &process.isolation {
        // Last, once bt-run's own set-up calls are made: from here on only
        // the calls the plan names reach the kernel from guest-call sites.
        let prog = crate::isolate::program(plan).map_err(StartError::Isolation)?;
        crate::sys::seccomp::install(&prog)
            .map_err(|e| StartError::Isolation(format!("cannot install the isolation filter: {e}")))?;
    }
    let exit = thread.run();
    thread.finish(exit)
}

/// The first half of the trace line of the execve that would have started
/// the program as bt-run did: `path` and `argv` as bt-run was given them
/// (for a script, not the interpreter's, which the new stack holds), and
/// the environment the program's stack at `sp` holds.
fn initial_exec_entry(path: &Path, argv: &[OsString], sp: u64) -> Option<String> {
    let mut word = [0u8; 8];
    crate::sys::read_guest(GuestAddr(sp), &mut word).ok()?;
    let argc = u64::from_ne_bytes(word);
    let envp = sp + 8 + 8 * (argc + 1);
    // The path and argv laid out as the kernel would read them, in memory
    // of their own at addresses no guest mapping has (non-canonical).
    let mut bytes = Vec::new();
    let mut strings = Vec::new();
    for s in std::iter::once(path.as_os_str()).chain(argv.iter().map(|a| a.as_os_str())) {
        strings.push(SYNTHETIC_BASE + bytes.len() as u64);
        bytes.extend_from_slice(s.as_bytes());
        bytes.push(0);
    }
    bytes.resize(bytes.len().next_multiple_of(8), 0);
    let argv_at = SYNTHETIC_BASE + bytes.len() as u64;
    for &p in &strings[1..] {
        bytes.extend_from_slice(&p.to_ne_bytes());
    }
    bytes.extend_from_slice(&0u64.to_ne_bytes());
    let mem = Synthetic { bytes: &bytes };
    let a = [strings[0], argv_at, envp, 0, 0, 0];
    Some(syscall_inline::format_entry_in(syscall_inline::Abi::X86_64, libc::SYS_execve as u64, &a, &mem))
}

/// Where `initial_exec_entry` lays out its strings: a non-canonical
/// address, which no guest memory can have.
const SYNTHETIC_BASE: u64 = 0x8000_0000_0000_0000;

/// Guest memory with [SYNTHETIC_BASE, +len) served from `bytes`.
struct Synthetic<'a> {
    bytes: &'a [u8],
}

impl syscall_inline::trace::GuestMem for Synthetic<'_> {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), i32> {
        if addr < SYNTHETIC_BASE {
            return crate::observe::CheckedMem.read(addr, buf);
        }
        let off = (addr - SYNTHETIC_BASE) as usize;
        let b = self.bytes.get(off..off.saturating_add(buf.len())).ok_or(libc::EFAULT)?;
        buf.copy_from_slice(b);
        Ok(())
    }
}
