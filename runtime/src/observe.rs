//! What users see of a guest's system calls: strace-style tracing, per-call
//! statistics, the deny policy and the embedding hook. All of it runs in
//! the runtime's slow path; the gate sends a call here only when one of
//! these needs it (see `Process::gate_config`).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

use syscall_inline::Abi;
use syscall_inline::classes::TraceSet;
use syscall_inline::policy::{DenyAction, Policy};
use syscall_inline::trace::GuestMem;

use crate::sys;

/// Guest memory as the trace decoder reads it: checked copies, so a bad
/// guest pointer shows as an address instead of crashing bt-run.
pub struct CheckedMem;

impl GuestMem for CheckedMem {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), i32> {
        sys::read_guest(addr, buf)
    }
}

/// Per-syscall counts for `--stats`.
#[derive(Clone, Debug, Default)]
pub struct CallStats {
    /// Answered without entering the kernel.
    pub inline: u64,
    /// Passed to the kernel.
    pub forwarded: u64,
    /// Calls that returned an error, by errno.
    pub failed: std::collections::BTreeMap<i32, u64>,
}

/// A system call as an embedding hook sees it.
#[derive(Clone, Debug)]
pub struct SyscallEvent {
    pub pid: u32,
    pub tid: u32,
    /// Which table `nr` is in: `X86_64` for `syscall`, `I386` for
    /// `int $0x80`.
    pub abi: Abi,
    pub nr: u64,
    pub name: &'static str,
    /// rdi, rsi, rdx, r10, r8, r9 (i386: ebx, ecx, edx, esi, edi, ebp, their
    /// low 32 bits) — the hook may rewrite them.
    pub args: [u64; 6],
}

/// What a hook wants done with a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookAction {
    /// Carry on (with the possibly rewritten arguments).
    Continue,
    /// Do not perform the call; the guest sees this return value
    /// (a negative errno for a failure).
    Return(i64),
    /// Kill the guest with SIGSYS, as a seccomp kill would.
    Kill,
}

/// An embedder's view of every guest syscall (like a DynamoRIO client's
/// syscall events or zpoline's hook function). Called on the guest thread,
/// in bt-run's context, for every syscall once a hook is installed.
pub trait SyscallHook: Send + Sync {
    /// Before the call: observe, rewrite `ev.args`, or decide its result.
    fn before(&self, ev: &mut SyscallEvent) -> HookAction;
    /// After the call (not called for calls that do not return, like
    /// exit_group, nor for calls `before` answered): observe or rewrite the
    /// result.
    fn after(&self, _ev: &SyscallEvent, _ret: &mut i64) {}
}

/// Observation settings of a run.
#[derive(Clone, Default)]
pub struct Observers {
    pub trace: Option<TraceSet>,
    pub policy: Option<Arc<Policy>>,
    pub hook: Option<Arc<dyn SyscallHook>>,
}

impl Observers {
    pub fn traces(&self, nr: u64) -> bool {
        self.traces_in(Abi::X86_64, nr)
    }

    pub fn traces_in(&self, abi: Abi, nr: u64) -> bool {
        self.trace.as_ref().is_some_and(|t| t.contains_in(abi, nr))
    }

    pub fn deny(&self, nr: u64) -> Option<DenyAction> {
        self.deny_in(Abi::X86_64, nr)
    }

    pub fn deny_in(&self, abi: Abi, nr: u64) -> Option<DenyAction> {
        self.policy.as_ref().and_then(|p| p.action_in(abi, nr))
    }
}

impl std::fmt::Debug for Observers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observers")
            .field("trace", &self.trace.is_some())
            .field("policy", &self.policy.is_some())
            .field("hook", &self.hook.is_some())
            .finish()
    }
}

/// Print a path the way error messages do.
pub fn show(p: &OsStr) -> String {
    String::from_utf8_lossy(p.as_bytes()).into_owned()
}

/// Write one statistics report (or trace line) where the user asked.
pub fn emit(text: &str) {
    crate::own_fds::write_output(text);
}
