//! The host signal handler's way in. `bt_host_signal_entry` (see
//! `trampolines`) restores the host FS base and calls `entry` with the
//! kernel's siginfo and ucontext and the interrupted thread's context; this
//! module turns them into references and calls the handler the runtime
//! handed it with `set` (so `sys` never calls up into the runtime's
//! signal code: it calls what it was given).

use std::sync::atomic::{AtomicPtr, Ordering};

use translator::abi::GuestContext;

/// What the runtime does with a host signal: the signal, the kernel's
/// siginfo and ucontext (both editable: the interrupted thread resumes with
/// the ucontext's registers), and the thread's context.
pub type Handler = dyn Fn(i32, &mut libc::siginfo_t, &mut libc::ucontext_t, &mut GuestContext) + Sync;

static HANDLER: AtomicPtr<&'static Handler> = AtomicPtr::new(std::ptr::null_mut());

/// Make `h` the handler from now on (for every thread). Each call keeps one
/// small allocation alive for good (a handler may still be running the
/// previous one); the runtime sets one per process image.
pub fn set(h: &'static Handler) {
    HANDLER.store(Box::into_raw(Box::new(h)), Ordering::SeqCst);
}

/// Called by `bt_host_signal_entry` only.
///
/// # Safety
/// `info` and `uc` are the kernel's pointers for this delivery; `ctx` is
/// null or this thread's live context (read from its GS base), which no
/// other code uses while the handler runs on this thread.
pub(super) unsafe extern "C" fn entry(
    sig: i32,
    info: *mut libc::siginfo_t,
    uc: *mut libc::c_void,
    ctx: *mut GuestContext,
) {
    let h = HANDLER.load(Ordering::SeqCst);
    if h.is_null() || ctx.is_null() || info.is_null() || uc.is_null() {
        return;
    }
    // SAFETY: guaranteed by the caller (see above); `h` was leaked by `set`
    // and is never freed.
    let (h, info, uc, ctx) = unsafe { (*h, &mut *info, &mut *(uc as *mut libc::ucontext_t), &mut *ctx) };
    h(sig, info, uc, ctx)
}

/// A copy of the kernel's siginfo as its 128 bytes.
pub fn siginfo_bytes(info: &libc::siginfo_t) -> [u8; 128] {
    super::frame::with_siginfo_ref(info, |si| si.to_bytes())
}

/// The first 64 signals of a ucontext's saved mask (what the kernel installs
/// when the handler returns).
pub fn uc_mask(uc: &mut libc::ucontext_t) -> &mut u64 {
    const _: () = assert!(std::mem::size_of::<libc::sigset_t>() >= 8);
    const _: () = assert!(std::mem::align_of::<libc::sigset_t>() >= 8);
    // SAFETY: sigset_t is at least 8 bytes and 8-aligned (checked above),
    // its first word holds signals 1-64 on x86-64, and any bits are valid;
    // the borrow is `uc`'s.
    unsafe { &mut *(&mut uc.uc_sigmask as *mut libc::sigset_t as *mut u64) }
}

/// `si_addr` of a fault signal's siginfo.
pub fn fault_addr(info: &libc::siginfo_t) -> u64 {
    super::frame::with_siginfo_ref(info, |si| si.addr())
}

/// Tell the thread's cached code that a signal waits (it reads the flag at
/// block exits and in the gate): a volatile store, since the interrupted
/// code reads it without the compiler knowing.
pub fn flag_pending(ctx: &mut GuestContext) {
    // SAFETY: a plain aligned store through a live reference.
    unsafe { std::ptr::write_volatile(&mut ctx.signal_pending, 1) };
}
