//! The host signal handler: what bt-run does when the kernel delivers a
//! signal to one of its threads. A fault in translated code becomes the
//! guest's fault at the guest instruction (state recovered from the
//! translator's metadata); a write to write-protected guest code drops its
//! translations and retries; a blocked signal goes back to the kernel; any
//! other is queued for the dispatcher, which delivers it (`signals`).
//! `sys::handler` calls it with references, so this is safe Rust.

use std::sync::atomic::Ordering;

use translator::abi::{ExitReason, GuestContext};
use translator::{CachePc, GuestAddr};

use crate::dispatch::Process;
use crate::memory::page_down;
use crate::signals::{ASYNC_SIGNALS, NSIG, ThreadSignals, guest_pc_at, kernel_mask, sigbit};
use crate::sys::frame;
use crate::sys::{self, HostAction};

fn is_sync(sig: i32, info: &libc::siginfo_t) -> bool {
    matches!(sig, libc::SIGSEGV | libc::SIGBUS | libc::SIGFPE | libc::SIGILL | libc::SIGTRAP) && info.si_code > 0
}

const REG_RIP: usize = libc::REG_RIP as usize;
/// ucontext gregs index for each GPR in hardware order.
const GREGS: [usize; 16] = [
    libc::REG_RAX as usize,
    libc::REG_RCX as usize,
    libc::REG_RDX as usize,
    libc::REG_RBX as usize,
    libc::REG_RSP as usize,
    libc::REG_RBP as usize,
    libc::REG_RSI as usize,
    libc::REG_RDI as usize,
    libc::REG_R8 as usize,
    libc::REG_R9 as usize,
    libc::REG_R10 as usize,
    libc::REG_R11 as usize,
    libc::REG_R12 as usize,
    libc::REG_R13 as usize,
    libc::REG_R14 as usize,
    libc::REG_R15 as usize,
];

/// Make `on_signal` the host handler's work for process `p` (see
/// `sys::handler`).
pub fn install(p: &'static Process) {
    sys::handler::set(Box::leak(Box::new(
        move |sig, info: &mut libc::siginfo_t, uc: &mut libc::ucontext_t, ctx: &mut GuestContext| {
            on_signal(p, sig, info, uc, ctx)
        },
    )));
}

/// bt-run's host handler: the kernel's siginfo and ucontext for `sig`, and
/// the interrupted thread's live context.
fn on_signal(p: &Process, sig: i32, info: &mut libc::siginfo_t, uc: &mut libc::ucontext_t, ctx: &mut GuestContext) {
    if !(1..=NSIG as i32).contains(&sig) {
        return;
    }
    if sig == libc::SIGSYS
        && let Some(plan) = &p.isolation
    {
        isolation_trap(plan, info);
    }
    if ctx.view_echo & 0xff == sig as u64 {
        // Raised only for a tracer to see (`ptrace_view`): it went through.
        ctx.view_echo = 0;
        return;
    }
    let Some((ts, ctx)) = ThreadSignals::of(ctx) else { return };
    let rip = uc.uc_mcontext.gregs[REG_RIP] as u64;
    if sig == libc::SIGSEGV && info.si_code == 2
    /* SEGV_ACCERR */
    {
        // A guest write to code bt-run write-protected (see CodeGuard): drop
        // the page's translations, make it writable again and retry.
        let addr = sys::handler::fault_addr(info);
        let page = page_down(addr);
        loop {
            // Another thread holds the lock only briefly (it never blocks
            // while holding it), so waiting here cannot deadlock: this
            // thread was in guest code, not in the dispatcher.
            match p.shared.try_lock() {
                Ok(mut sh) => {
                    if sh.guard.contains(GuestAddr(page)) {
                        sh.unguard_for_write(GuestAddr(page));
                        return;
                    }
                    if sh.exec.prot_at(GuestAddr(page)).is_some_and(|p| p & libc::PROT_WRITE != 0) {
                        // Another thread unguarded it between our fault and
                        // taking the lock (only guarded pages are read-only
                        // on the host while writable for the guest): retry.
                        return;
                    }
                    break;
                }
                Err(std::sync::TryLockError::WouldBlock) if p.cache_contains(CachePc(rip)) => std::thread::yield_now(),
                Err(_) => break,
            }
        }
    }
    if matches!(sig, libc::SIGSEGV | libc::SIGBUS)
        && info.si_code > 0
        && let Some(to) = sys::trampolines::copy_fault_fixup(rip)
    {
        // A checked copy of guest memory hit a bad address: it fails.
        uc.uc_mcontext.gregs[REG_RIP] = to as i64;
        return;
    }
    // The dispatcher of another thread may be changing the cache; if the
    // lock is taken we cannot look blocks up, and fall back on delivery at
    // this thread's next exit from the cache. A fault in cached code cannot
    // wait for that exit: then we wait for the lock, which is held only
    // briefly and never by this thread while it runs cached code.
    let in_cache = p.cache_contains(CachePc(rip));
    let mut shared = p.shared.try_lock().ok();
    if shared.is_none() && in_cache && is_sync(sig, info) {
        shared = loop {
            match p.shared.try_lock() {
                Ok(sh) => break Some(sh),
                Err(std::sync::TryLockError::WouldBlock) => std::thread::yield_now(),
                Err(_) => break None,
            }
        };
    }
    let cache = shared.as_ref().map(|s| &s.cache);

    if is_sync(sig, info) {
        let pc = cache.and_then(|c| guest_pc_at(c, CachePc(rip)));
        let (Some(pc), Some(cache)) = (pc, cache) else {
            // A fault in bt-run itself, or in code it did not translate:
            // let the default action report it.
            let _ = sys::set_host_action(sig, HostAction::Raw(libc::SIG_DFL), 0, 0);
            return;
        };
        // Synchronous fault in translated code: recover the guest state at
        // the faulting instruction and leave the cache through
        // `bt_signal_exit`, which returns to the dispatcher.
        for (r, &g) in GREGS.iter().enumerate() {
            ctx.gpr[r] = uc.uc_mcontext.gregs[g] as u64;
        }
        // Guest registers that the translation keeps in spill slots at
        // the faulting instruction, as recorded when it was translated.
        let spilled = cache.spilled_at(CachePc(rip));
        spilled.restore(ctx);
        ctx.rflags = uc.uc_mcontext.gregs[libc::REG_EFL as usize] as u64;
        ctx.rip = pc.get();
        if spilled.probe.is_some() && sig == libc::SIGSEGV {
            // A confined store's check found its address at or above the
            // guest's limit (`GuestContext::store_probe`): the store's
            // own exit, which faults at the store's address as natively.
            ctx.exit_reason = ExitReason::StoreFault as u64;
            uc.uc_mcontext.gregs[REG_RIP] = sys::trampolines::bt_signal_exit as *const () as i64;
            uc.uc_mcontext.gregs[libc::REG_RSP as usize] = ctx.host_rsp as i64;
            return;
        }
        if matches!(sig, libc::SIGILL | libc::SIGFPE) {
            // si_addr names the instruction: make it the guest's.
            set_si_addr(info, pc.get());
        }
        let addr = sys::handler::fault_addr(info);
        // The guard gap below the guest stack is mapped PROT_NONE by bt-run;
        // natively it is unmapped, so an overflow reports SEGV_MAPERR.
        // So is the band above the program's memory under isolation
        // (`translator::abi::GUEST_GUARD`).
        let in_guard_band = p.isolation.is_some()
            && (translator::abi::GUEST_LIMIT..translator::abi::GUEST_LIMIT + translator::abi::GUEST_GUARD)
                .contains(&addr);
        if sig == libc::SIGSEGV && info.si_code == 2 && (p.in_stack_guard(GuestAddr(addr)) || in_guard_band) {
            info.si_code = 1;
        }
        // The kernel's error code and trap number for the frame's sigcontext,
        // carried in the (otherwise zero) tail of the queued siginfo.
        frame::with_siginfo(info, |si| {
            si.carried_err = uc.uc_mcontext.gregs[libc::REG_ERR as usize] as u64;
            si.carried_trapno = uc.uc_mcontext.gregs[libc::REG_TRAPNO as usize] as u64;
        });
        let _ = ts.queue(sig, &sys::handler::siginfo_bytes(info));
        sys::handler::flag_pending(ctx);
        ctx.exit_reason = ExitReason::Signal as u64;
        uc.uc_mcontext.gregs[REG_RIP] = sys::trampolines::bt_signal_exit as *const () as i64;
        uc.uc_mcontext.gregs[libc::REG_RSP as usize] = ctx.host_rsp as i64;
        return;
    }

    let raw = sys::handler::siginfo_bytes(info);
    // Interrupted in the gate's rt_sigprocmask before it took effect: the
    // signal came first, so the call restarts in the runtime after it.
    if let Some(to) = sys::trampolines::sigmask_window_exit(rip) {
        uc.uc_mcontext.gregs[REG_RIP] = to as i64;
    }
    let guest_mask = ts.mask();
    // A guest filter's SIGSYS is forced as natively: queued even when the
    // guest blocks it, so that delivery gives it its default action.
    let forced = crate::signals::is_forced_info(sig, &raw);
    if guest_mask & sigbit(sig) != 0 && !forced && !ts.mask_swapped.load(Ordering::SeqCst) {
        // The guest blocks it, the kernel did not yet (the mask is lazy):
        // block for real what the guest blocks, from this handler's return
        // on, and give the signal back to the kernel, which holds it pending
        // (visible to sigpending, sigwaitinfo, signalfd) until the guest
        // unblocks it. A process-directed one goes back to the process, so
        // another thread that does not block it may take it, as natively.
        // (A fault signal sent with kill while blocked is the one case where
        // the kernel's mask blocks SIGSEGV/SIGBUS, until the next change.)
        let block = kernel_mask(guest_mask) | sigbit(sig);
        *sys::handler::uc_mask(uc) |= block;
        ts.extra().fetch_or(block, Ordering::SeqCst);
        let threads = shared.as_ref().map_or(2, |s| s.threads);
        if !(info.si_code != SI_TKILL && threads > 1 && sys::requeue_signal_to_process(sig, &raw)) {
            sys::requeue_signal(sig, &raw);
        }
        return;
    }
    if ts.queue(sig, &raw) {
        // Taken: until the dispatcher has delivered it, the kernel keeps
        // every further asynchronous signal (so a storm is delivered one at
        // a time, in the kernel's order, and nothing overflows our queue).
        *sys::handler::uc_mask(uc) |= ASYNC_SIGNALS;
        ts.extra().fetch_or(ASYNC_SIGNALS, Ordering::SeqCst);
        // Interrupted between the gate's last look at the pending flag and
        // its `syscall`: leave without making the call (closing the window
        // in which a blocking call would sleep on a taken signal).
        if let Some(to) = sys::trampolines::syscall_window_exit(rip) {
            uc.uc_mcontext.gregs[REG_RIP] = to as i64;
        }
    } else {
        // Our queue is full (only with the kernel's help: a storm of real-
        // time signals while asynchronous ones were not blocked): give the
        // instance back to the kernel and keep it blocked until delivery.
        sys::requeue_signal(sig, &raw);
        *sys::handler::uc_mask(uc) |= sigbit(sig);
        ts.extra().fetch_or(sigbit(sig), Ordering::SeqCst);
    }
    sys::handler::flag_pending(ctx);
    drop(shared);
    let mut shared = p.shared.try_lock().ok();
    let Some(cache) = shared.as_mut().map(|s| &mut s.cache) else { return };
    if in_cache {
        if let Some(b) = cache.block_at(CachePc(rip)) {
            cache.unlink_exits(b);
        }
    } else if sys::trampolines::contains(rip) {
        // Between the dispatcher's check and a block: unlink every block the
        // trampoline may be heading to.
        for t in [ctx.entry_target, ctx.gate_ret, ctx.ibl_jump] {
            if let Some(b) = cache.block_at(CachePc(t)) {
                cache.unlink_exits(b);
            }
        }
    }
}

const SI_TKILL: i32 = -6;

fn set_si_addr(info: &mut libc::siginfo_t, addr: u64) {
    frame::with_siginfo(info, |si| si.set_addr(addr));
}

/// A SIGSYS that isolation's filter raised (si_code SYS_SECCOMP, its data
/// in si_errno, at an address the filter names): one line, then death by
/// SIGSYS. Any other SIGSYS (a guest's own filter, a signal sent) returns.
fn isolation_trap(plan: &crate::isolate::Plan, info: &libc::siginfo_t) {
    const SYS_SECCOMP: i32 = 1;
    if info.si_code != SYS_SECCOMP {
        return;
    }
    let b = sys::handler::siginfo_bytes(info);
    let word = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"));
    // struct siginfo: si_errno at 4; _sigsys: _call_addr at 16, _syscall
    // at 24, _arch at 28.
    let data = word(4) as u16;
    let ip = u64::from_le_bytes(b[16..24].try_into().expect("8 bytes"));
    let (nr, arch) = (word(24) as i32 as i64 as u64, word(28));
    if let Some(line) = crate::isolate::trap_report(data, nr, arch, ip, plan) {
        crate::own_fds::diag(&line);
        sys::die_by_signal(libc::SIGSYS);
    }
}
