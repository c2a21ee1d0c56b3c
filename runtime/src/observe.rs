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

    fn fd_path(&self, fd: i32) -> Option<String> {
        let level = DECODE_FDS.load(std::sync::atomic::Ordering::Relaxed);
        if level == 0 || (fd != -100 && crate::own_fds::is_own(fd as u64)) {
            return None;
        }
        let link = if fd == -100 { "/proc/self/cwd".to_string() } else { format!("/proc/self/fd/{fd}") };
        let target = std::fs::read_link(link).ok()?;
        let path = String::from_utf8_lossy(target.as_os_str().as_bytes()).into_owned();
        Some(if level >= 2 && fd != -100 { crate::fd_details::describe(fd, &path) } else { path })
    }
}

/// strace's `-y` (1) and `-yy` (2): trace lines show what descriptors refer
/// to, with -yy the details of sockets, devices and pidfds.
static DECODE_FDS: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// Turn `-y` (level 1) or `-yy` (2) on for this process image.
pub fn decode_fds(level: u8) {
    DECODE_FDS.store(level.min(2), std::sync::atomic::Ordering::Relaxed);
}

/// Print a path the way error messages do.
pub fn show(p: &OsStr) -> String {
    String::from_utf8_lossy(p.as_bytes()).into_owned()
}

/// Write one statistics report (or trace line) where the user asked.
pub fn emit(text: &str) {
    crate::own_fds::write_output(text);
}
