//! The words of a thread's signal-mask state that the syscall gate reads
//! and writes itself (`rt_sigprocmask` answered in the gate, see
//! `trampolines`), and the signal sets the rules about them are written in.
//! `signals::ThreadSignals` holds a `MaskWords` as its first field, so the
//! gate reaches them through the context's `thread_sig` pointer.

use std::sync::atomic::{AtomicBool, AtomicU64};

/// The guest's mask and what the kernel's is known to be.
#[repr(C)]
#[derive(Default)]
pub struct MaskWords {
    /// The guest's signal mask (virtual: the kernel's follows lazily).
    pub vmask: AtomicU64,
    /// The mask bt-run last installed in the kernel for this thread ...
    pub real: AtomicU64,
    /// ... plus what the host handler added to it since (on return from a
    /// host signal handler the kernel installs the handler's uc_sigmask).
    /// `real | extra` may block more than the kernel does, never less.
    pub extra: AtomicU64,
}

/// Has the process ever had more than one thread (since its last fork)?
/// Then the guest's mask is always installed at once.
pub static MULTI_THREADED: AtomicBool = AtomicBool::new(false);

/// Signal bit in a mask.
pub const fn sigbit(sig: i32) -> u64 {
    1u64 << (sig - 1)
}

/// Signals 32-64.
pub const REALTIME_SIGNALS: u64 = !0u64 << 31;
/// Signals that can never be blocked.
pub const UNBLOCKABLE: u64 = sigbit(libc::SIGKILL) | sigbit(libc::SIGSTOP);
/// Signals that report faults: the kernel's mask for them always equals the
/// guest's, because a fault must reach bt-run the moment it happens.
pub const FAULT_SIGNALS: u64 = sigbit(libc::SIGSEGV)
    | sigbit(libc::SIGBUS)
    | sigbit(libc::SIGFPE)
    | sigbit(libc::SIGILL)
    | sigbit(libc::SIGTRAP)
    | sigbit(libc::SIGSYS);
/// Signals the kernel's mask never blocks, whatever the guest's says: a
/// checked copy of guest memory relies on its faults reaching bt-run, and
/// isolation on its filter's SIGSYS reaching its report (the kernel kills
/// silently when the signal of a fault or a seccomp trap is blocked). The
/// guest's mask still decides delivery.
pub const KERNEL_NEVER_BLOCKED: u64 = sigbit(libc::SIGSEGV) | sigbit(libc::SIGBUS) | sigbit(libc::SIGSYS);

/// The kernel's share of guest mask `m`.
pub const fn kernel_mask(m: u64) -> u64 {
    m & !KERNEL_NEVER_BLOCKED
}

/// Can the guest's mask become `new` without installing it in the kernel,
/// given what the kernel blocks (`kernel`: `real | extra`)? Only where
/// handing a signal back to the kernel changes nothing the guest can see:
/// nothing the kernel blocks is unblocked, fault signals match exactly, and
/// in a single-threaded process (no other thread could have taken a signal)
/// no real-time signal is blocked lazily (they queue, and would be
/// re-ordered). The gate's `rt_sigprocmask` makes the same decision.
pub fn lazy_ok(new: u64, kernel: u64, multi_threaded: bool) -> bool {
    let km = kernel_mask(new);
    kernel & !km == 0 && (kernel ^ km) & FAULT_SIGNALS == 0 && !multi_threaded && km & !kernel & REALTIME_SIGNALS == 0
}
