//! syscall-inline: bt-run's in-process privileged-call layer.
//!
//! Every guest `syscall` arrives here (through the gate in the runtime). The
//! declarative table in `table` says, for each call, whether the gate may
//! forward it to the kernel as it is, answer it in-process, or leave it to
//! the part of bt-run's runtime its row names (`Service`), and how the call
//! is restarted after a signal and meets bt-run's own descriptors. A call
//! the gate does not forward or answer goes through `layer`: hook, trace,
//! policy, the call itself (made by the runtime through `layer::Host`),
//! statistics. `int $0x80` reaches the i386 table (`table_i386`) through
//! the runtime.

#![deny(unsafe_code)]

pub mod args;
pub mod classes;
pub mod confine;
pub mod errno;
pub mod layer;
pub mod policy;
#[allow(unsafe_code)]
pub mod raw;
pub mod table;
pub mod table_i386;
pub mod trace;

pub use args::{Arg, Ret};
pub use classes::TraceSet;
pub use layer::{CallStats, HookAction, Host, Observers, Performed, Served, SyscallEvent, SyscallHook, SyscallStats};
pub use policy::Call;
pub use policy::{DenyAction, PolicyRule, parse_deny, parse_policy};
pub use table::{Fds, Restart, SYSCALLS, Syscall};
pub use table_i386::SYSCALLS_I386;
pub use trace::{
    GuestMem, format_entry, format_entry_in, format_exit, format_exit_in, format_exit_injected,
    format_exit_injected_in, format_line,
};

/// The system call table a call is made from. A 64-bit process reaches the
/// x86-64 table with `syscall` and the i386 one with `int $0x80` (the
/// kernel's compat entry: 32-bit arguments, i386 numbers).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum Abi {
    #[default]
    X86_64,
    I386,
}

impl Abi {
    /// Every ABI, in the order bt-run reports them.
    pub const ALL: [Abi; 2] = [Abi::X86_64, Abi::I386];

    /// The declarative table of this ABI's calls, in number order.
    pub fn table(self) -> &'static [Syscall] {
        match self {
            Abi::X86_64 => SYSCALLS,
            Abi::I386 => SYSCALLS_I386,
        }
    }

    /// The table row for `nr` in this ABI, if the number names a syscall.
    pub fn lookup(self, nr: u64) -> Option<&'static Syscall> {
        let t = self.table();
        // Rows are in number order with gaps, so search.
        t.binary_search_by_key(&nr, |s| s.nr as u64).ok().map(|i| &t[i])
    }

    /// The name of call `nr` in this ABI.
    pub fn name(self, nr: u64) -> Option<&'static str> {
        self.lookup(nr).map(|s| s.name)
    }

    /// How the ABI is named in statistics (`i386`, `x86_64`).
    pub fn label(self) -> &'static str {
        match self {
            Abi::X86_64 => "x86_64",
            Abi::I386 => "i386",
        }
    }

    /// Index of the ABI in per-ABI arrays (`Abi::ALL` order).
    pub fn index(self) -> usize {
        self as usize
    }
}

/// What bt-run does with a system call.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Executed by the gate itself with the guest's registers.
    Forward,
    /// Served (or wrapped) by the runtime in Rust, by the part named.
    Runtime(Service),
    /// Answered in-process from a value bt-run keeps exact (never enters
    /// the kernel); the `why` column says how the value is kept exact.
    Inline,
}

/// The parts of bt-run's runtime that serve the calls it cannot forward as
/// they are. `Runtime` rows name one; the runtime's `serve` is an exhaustive
/// match on them.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Service {
    /// Mappings: PROT_EXEC kept in the guest's view only, bt-run's ranges
    /// refused, stale translations and constants dropped.
    Memory,
    /// The program break, emulated over a reserved region.
    Break,
    /// The guest's FS/GS bases (virtual: bt-run keeps its own TLS).
    ThreadArea,
    /// Signal dispositions and the alternate stack (virtual).
    SignalAction,
    /// The guest's signal mask (virtual).
    SignalMask,
    /// Waits under a temporary signal mask (the kernel swaps it in).
    MaskedWait,
    /// Return from a signal handler through the guest's frame.
    SignalReturn,
    /// New threads and processes, which must resume translated.
    NewProcess,
    /// execve: bt-run runs the new program too.
    Exec,
    /// The end of a thread or of the process (statistics flushed first).
    Exit,
    /// Calls that could name bt-run instead of the guest
    /// (/proc/self/exe, /proc/self/cmdline, /proc/self/fd/N).
    ProcSelf,
    /// Calls whose answer or effect reaches bt-run's own descriptors.
    OwnFds,
    /// Credentials and namespaces: forwarded, then the cached ids refreshed.
    Ids,
    /// ptrace, whose stops must not show bt-run's own code.
    Ptrace,
    /// Refused with ENOSYS (the `why` column says why).
    Refused,
}

/// Gate table byte: forward with the guest's registers.
pub const GATE_FORWARD: u8 = 0;
/// Gate table byte: leave to the runtime (Rust).
pub const GATE_RUNTIME: u8 = 1;
/// Gate table byte: answer from the process answer table (indexed by nr).
pub const GATE_ANSWER: u8 = 2;
/// Gate table byte: answer with the thread's tid.
pub const GATE_TID: u8 = 3;
/// Gate byte: `rt_sigprocmask` answered in the gate from the thread's
/// virtual mask when no kernel entry is needed (the runtime's rules in
/// `signals`, restated in the gate); anything else goes to the runtime.
pub const GATE_SIGMASK: u8 = 4;
/// Gate byte: `write`, answered in the gate when the descriptor is one the
/// runtime knows to be /dev/null opened for writing (`NULL_FDS` in the
/// runtime) and the buffer and count are ones the kernel accepts without
/// looking further; anything else is forwarded as with `GATE_FD_CHECK | 1`.
pub const GATE_NULL_WRITE: u8 = 5;
/// Gate byte: `close`, which first forgets the descriptor in `NULL_FDS`,
/// then is forwarded as with `GATE_FD_CHECK | 1`.
pub const GATE_CLOSE: u8 = 6;
/// Gate byte: `read`, answered in the gate when the descriptor is one the
/// runtime knows to be /dev/zero opened for reading (`ZERO_FDS` in the
/// runtime) and the buffer and count are ones the kernel accepts without
/// looking further: the buffer is zero-filled as the kernel's `read_zero`
/// does (a fault ends it: the bytes cleared before it, or EFAULT if none);
/// anything else is forwarded as with `GATE_FD_CHECK | 1`.
pub const GATE_ZERO_READ: u8 = 7;

/// Gate table bytes from this value up: forward, unless one of the
/// arguments named by the low six bits (bit i: argument i) is, as a 32-bit
/// signed number, at or above the lowest of bt-run's own descriptors; such
/// a call goes to the runtime, which refuses it if it names one of them.
pub const GATE_FD_CHECK: u8 = 0x40;

/// Gate table bit (isolation): before anything else the byte's low seven
/// bits say, the arguments that [`gate_address_masks`] names for the call
/// must lie outside bt-run's part of the address space
/// ([`confine::above`]); a call with one there goes to the runtime, which
/// fails it with EFAULT.
pub const GATE_ADDR_CHECK: u8 = 0x80;

/// What the gate table is built for.
#[derive(Clone, Debug, Default)]
pub struct GateConfig {
    /// Serve `Inline` calls in the gate (false: `--no-inline`, forward them).
    pub inline: bool,
    /// Send every call to the runtime (statistics, tracing, hooks).
    pub all_to_runtime: bool,
    /// Further calls to send to the runtime (traced or denied ones).
    pub to_runtime: Vec<u64>,
    /// Forwarded calls that take descriptors check them in the gate
    /// (`GATE_FD_CHECK`), so the guest cannot use bt-run's own.
    pub fd_check: bool,
    /// Isolation: calls the gate makes or answers have their address
    /// arguments checked (`GATE_ADDR_CHECK`), and calls whose addresses the
    /// gate cannot check ([`confine::Check`]) go to the runtime.
    pub address_check: bool,
}

/// Highest syscall number the gate's table covers (exclusive).
pub const GATE_TABLE_LEN: usize = 512;

/// The table row for `nr`, if the number names a syscall.
pub fn lookup(nr: u64) -> Option<&'static Syscall> {
    Abi::X86_64.lookup(nr)
}

/// Name of syscall `nr`, or None for an unknown number.
pub fn name(nr: u64) -> Option<&'static str> {
    lookup(nr).map(|s| s.name)
}

/// Which arguments of `s` name a descriptor of the calling process (bit i:
/// argument i): `Fd` and `DirFd` kinds, except pidfd_getfd's second, which
/// names a descriptor of another process.
pub fn fd_arg_mask(s: &Syscall) -> u8 {
    let mut m = 0u8;
    for (i, a) in s.args.iter().enumerate() {
        if matches!(a, Arg::Fd | Arg::DirFd) && !(s.nr as i64 == libc::SYS_pidfd_getfd && i == 1) {
            m |= 1 << i;
        }
    }
    m
}

/// The byte table the gate reads (`GATE_*` values), for the default
/// configuration. Unknown numbers are forwarded (the kernel answers ENOSYS).
pub fn gate_table() -> Box<[u8; GATE_TABLE_LEN]> {
    gate_table_for(&GateConfig { inline: true, ..Default::default() })
}

/// The byte table the gate reads, for `cfg`.
pub fn gate_table_for(cfg: &GateConfig) -> Box<[u8; GATE_TABLE_LEN]> {
    let mut t = Box::new([GATE_FORWARD; GATE_TABLE_LEN]);
    for s in SYSCALLS {
        let Some(b) = t.get_mut(s.nr as usize) else { continue };
        *b = match s.disposition {
            Disposition::Forward if cfg.inline && cfg.fd_check && s.nr as i64 == libc::SYS_write => GATE_NULL_WRITE,
            Disposition::Forward if cfg.inline && cfg.fd_check && s.nr as i64 == libc::SYS_read => GATE_ZERO_READ,
            Disposition::Forward if cfg.fd_check && s.nr as i64 == libc::SYS_close => GATE_CLOSE,
            // The runtime keeps `NULL_FDS` across duplicates (rare calls).
            Disposition::Forward
                if cfg.inline && matches!(s.nr as i64, libc::SYS_dup | libc::SYS_dup2 | libc::SYS_dup3) =>
            {
                GATE_RUNTIME
            }
            Disposition::Forward if cfg.fd_check && fd_arg_mask(s) != 0 => GATE_FD_CHECK | fd_arg_mask(s),
            Disposition::Forward => GATE_FORWARD,
            // The one SignalMask row (rt_sigprocmask): the gate serves it.
            Disposition::Runtime(Service::SignalMask) if cfg.inline => GATE_SIGMASK,
            Disposition::Runtime(_) => GATE_RUNTIME,
            Disposition::Inline if !cfg.inline => GATE_FORWARD,
            Disposition::Inline if s.nr as i64 == libc::SYS_gettid => GATE_TID,
            Disposition::Inline => GATE_ANSWER,
        };
    }
    if cfg.address_check {
        for s in SYSCALLS {
            let Some(b) = t.get_mut(s.nr as usize) else { continue };
            match confine::check(s) {
                confine::Check::None | confine::Check::Service => {}
                confine::Check::Direct(_) if *b != GATE_RUNTIME => *b |= GATE_ADDR_CHECK,
                confine::Check::Direct(_) => {}
                confine::Check::Range | confine::Check::Nested(_) | confine::Check::Refused => *b = GATE_RUNTIME,
            }
        }
    }
    if cfg.all_to_runtime {
        t.fill(GATE_RUNTIME);
    }
    for &nr in &cfg.to_runtime {
        if let Some(b) = t.get_mut(nr as usize) {
            *b = GATE_RUNTIME;
        }
    }
    t
}

/// For each call number, the arguments the gate checks under
/// `GATE_ADDR_CHECK` (bit i: argument i; [`confine::address_mask`]).
/// Immutable: the gate reads it where the guest cannot write.
pub static GATE_ADDRESS_MASKS: [u8; GATE_TABLE_LEN] = {
    let mut t = [0u8; GATE_TABLE_LEN];
    let mut i = 0;
    while i < SYSCALLS.len() {
        let s = &SYSCALLS[i];
        if (s.nr as usize) < GATE_TABLE_LEN {
            t[s.nr as usize] = confine::address_mask(s);
        }
        i += 1;
    }
    t
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_unique() {
        for abi in Abi::ALL {
            for w in abi.table().windows(2) {
                assert!(w[0].nr < w[1].nr, "{abi:?}: {} before {}", w[0].name, w[1].name);
            }
            for s in abi.table() {
                assert_eq!(s.nargs as usize, s.args.len(), "{abi:?} {}", s.name);
                assert!((s.nr as usize) < GATE_TABLE_LEN, "{abi:?} {}", s.name);
            }
        }
    }

    #[test]
    fn i386_numbers() {
        let i = Abi::I386;
        let want = [
            (1, "exit"),
            (2, "fork"),
            (3, "read"),
            (4, "write"),
            (5, "open"),
            (6, "close"),
            (11, "execve"),
            (20, "getpid"),
            (45, "brk"),
            (90, "mmap"),
            (120, "clone"),
            (140, "_llseek"),
            (192, "mmap2"),
            (195, "stat64"),
            (224, "gettid"),
            (240, "futex"),
            (252, "exit_group"),
            (295, "openat"),
            (359, "socket"),
            (386, "rseq"),
            (403, "clock_gettime64"),
            (422, "futex_time64"),
            (435, "clone3"),
            (471, "rseq_slice_yield"),
        ];
        for (nr, name) in want {
            assert_eq!(i.name(nr), Some(name), "i386 {nr}");
        }
        assert_eq!(i.name(222), None);
        assert_eq!(i.name(415), None);
        assert_eq!(i.lookup(5).unwrap().disposition, Disposition::Runtime(Service::ProcSelf));
        assert_eq!(i.lookup(4).unwrap().disposition, Disposition::Forward);
        // Calls past 424 have the same numbers in both tables.
        for s in SYSCALLS.iter().filter(|s| s.nr >= 424) {
            assert_eq!(i.name(s.nr as u64), Some(s.name));
        }
        // No i386 call is answered in-process: every one is made by the kernel
        // or served by the runtime.
        assert!(SYSCALLS_I386.iter().all(|s| s.disposition != Disposition::Inline));
    }

    #[test]
    fn numbers_match_libc() {
        assert_eq!(name(libc::SYS_read as u64), Some("read"));
        assert_eq!(name(libc::SYS_execve as u64), Some("execve"));
        assert_eq!(name(libc::SYS_rseq as u64), Some("rseq"));
        assert_eq!(name(libc::SYS_clone3 as u64), Some("clone3"));
        assert_eq!(lookup(libc::SYS_brk as u64).unwrap().disposition, Disposition::Runtime(Service::Break));
        assert_eq!(gate_table()[libc::SYS_write as usize], 0);
        assert_eq!(gate_table()[libc::SYS_mmap as usize], GATE_RUNTIME);
        assert_eq!(gate_table()[libc::SYS_getpid as usize], GATE_ANSWER);
        assert_eq!(gate_table()[libc::SYS_gettid as usize], GATE_TID);
        assert_eq!(gate_table()[libc::SYS_rt_sigprocmask as usize], GATE_SIGMASK);
        let off = gate_table_for(&GateConfig::default());
        assert_eq!(off[libc::SYS_getpid as usize], GATE_FORWARD);
    }

    #[test]
    fn descriptor_arguments_are_checked_in_the_gate() {
        let t = gate_table_for(&GateConfig { inline: true, fd_check: true, ..Default::default() });
        assert_eq!(t[libc::SYS_pread64 as usize], GATE_FD_CHECK | 1);
        assert_eq!(t[libc::SYS_write as usize], GATE_NULL_WRITE);
        assert_eq!(t[libc::SYS_close as usize], GATE_CLOSE);
        assert_eq!(t[libc::SYS_read as usize], GATE_ZERO_READ);
        assert_eq!(t[libc::SYS_dup2 as usize], GATE_RUNTIME);
        assert_eq!(t[libc::SYS_dup3 as usize], GATE_RUNTIME);
        assert_eq!(t[libc::SYS_pwrite64 as usize], GATE_FD_CHECK | 1);
        assert_eq!(t[libc::SYS_epoll_ctl as usize], GATE_FD_CHECK | 5);
        assert_eq!(t[libc::SYS_linkat as usize], GATE_FD_CHECK | 5);
        assert_eq!(t[libc::SYS_pidfd_getfd as usize], GATE_FD_CHECK | 1, "the second fd is another process's");
        assert_eq!(t[libc::SYS_getppid as usize], GATE_FORWARD);
        assert_eq!(t[libc::SYS_getpid as usize], GATE_ANSWER);
        // Calls bt-run serves itself check their descriptors there.
        for nr in [libc::SYS_close_range, libc::SYS_getdents64, libc::SYS_prlimit64, libc::SYS_openat, libc::SYS_mmap] {
            assert_eq!(t[nr as usize], GATE_RUNTIME, "{}", name(nr as u64).unwrap_or("?"));
        }
        // Every byte the gate can meet is one it knows.
        assert!(t.iter().all(|&b| b <= GATE_ZERO_READ || (GATE_FD_CHECK..GATE_FD_CHECK + 64).contains(&b)));
        // --no-inline: write forwarded as any descriptor call.
        let off = gate_table_for(&GateConfig { inline: false, fd_check: true, ..Default::default() });
        assert_eq!(off[libc::SYS_write as usize], GATE_FD_CHECK | 1);
        assert_eq!(off[libc::SYS_dup2 as usize], GATE_FD_CHECK | 3);
    }
}
