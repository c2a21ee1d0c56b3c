//! What users see of a guest's system calls: strace-style tracing, per-call
//! statistics, the deny policy and the embedding hook. The decisions are
//! syscall-inline's (`syscall_inline::layer`, re-exported here for
//! embedders); the gate sends a call there only when one of them needs it
//! (see `Options::gate_config`). This module holds what the runtime adds:
//! checked reads of guest memory and where output goes.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
pub use syscall_inline::layer::{CallStats, HookAction, Observers, SyscallEvent, SyscallHook, SyscallStats};
use syscall_inline::trace::GuestMem;
use translator::GuestAddr;

use crate::sys;

/// Guest memory as the trace decoder reads it: checked copies, so a bad
/// guest pointer shows as an address instead of crashing bt-run.
pub struct CheckedMem;

impl GuestMem for CheckedMem {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), i32> {
        sys::read_guest(GuestAddr(addr), buf)
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
