//! Guest signal handling, virtualized: the guest's sigaction table and
//! alternate stack live here; the host kernel only ever runs bt-run's
//! handler, which queues the signal and steers the thread back to the
//! dispatcher, where a kernel-identical frame is built on the guest stack.
//!
//! Invariant: a queued signal is delivered before the guest executes another
//! block boundary: the handler unlinks the block the thread is in (or is
//! about to enter), the lookup routine and the gate check the pending flag.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};

use translator::abi::{GuestContext, reg};
use translator::cache::CodeCache;
use translator::{CachePc, GuestAddr};

use crate::sys::frame::{
    self, FP_XSTATE_MAGIC1, FP_XSTATE_MAGIC2, FPX_SW_BYTES_AT, FpxSwBytes, RtSigFrame, SIGCONTEXT_GPRS, SigInfo,
    StackT, UContext,
};
use crate::sys::mask::{MULTI_THREADED, MaskWords};
use crate::sys::{self, HostAction};
use std::mem::offset_of;

pub const NSIG: usize = 64;

const SA_RESTORER: u64 = 0x0400_0000;
const SA_ONSTACK: u64 = 0x0800_0000;
const SA_RESTART: u64 = 0x1000_0000;
const SA_NODEFER: u64 = 0x4000_0000;
const SA_RESETHAND: u64 = 0x8000_0000;
const SA_SIGINFO: u64 = 4;
const SS_ONSTACK: i32 = 1;
const SS_DISABLE: i32 = 2;
const SS_AUTODISARM: u32 = 1 << 31;
/// si_code of a signal the kernel sends itself (force_sig).
const SI_KERNEL: i32 = 0x80;
const MINSIGSTKSZ: u64 = 2048;

/// The guest's `struct k_sigaction` for one signal.
#[derive(Copy, Clone, Debug, Default)]
pub struct GuestAction {
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}

/// The guest's alternate signal stack.
#[derive(Copy, Clone, Debug, Default)]
pub struct AltStack {
    pub sp: u64,
    pub flags: u32,
    pub size: u64,
}

/// The guest's process-wide signal dispositions.
#[derive(Clone)]
pub struct Actions {
    pub table: [GuestAction; NSIG + 1],
    /// What bt-run last installed in the kernel for each signal (None:
    /// unknown), so rt_sigaction installs only what changes.
    installed: [Option<(HostAction, u64)>; NSIG + 1],
}

/// One thread's signal state: what is queued for it and its alternate stack.
/// Boxed and reachable from its `GuestContext::thread_sig`, because the host
/// handler finds it from the context alone.
#[repr(C)]
pub struct ThreadSignals {
    /// The guest's mask and the kernel's, first (the gate reads them at
    /// offset 0 of this struct).
    masks: MaskWords,
    pending: AtomicU64,
    /// The siginfo of each pending standard signal: written by the host
    /// handler of the owning thread while the signal's pending bit is
    /// clear, read by the same thread's dispatcher after it took the bit.
    info: [InfoSlot; NSIG + 1],
    /// Real-time signals queue every instance (standard ones coalesce):
    /// a ring filled by the handler and drained by the dispatcher.
    rt: [(AtomicI32, InfoSlot); RT_QUEUE],
    rt_head: AtomicU64,
    rt_tail: AtomicU64,
    /// Set while the thread waits in a call that swaps in a temporary mask
    /// (sigsuspend, ppoll, ...): a signal the guest's mask blocks may then
    /// arrive legitimately and is taken, not held.
    pub mask_swapped: AtomicBool,
    pub altstack: AltStack,
    /// The thread's last exception, as the kernel keeps it for frames.
    pub fault: LastFault,
}

/// What the kernel remembers of a thread's last exception (thread.cr2,
/// error_code, trap_nr) and writes into every signal frame's sigcontext.
#[derive(Copy, Clone, Debug, Default)]
pub struct LastFault {
    pub cr2: u64,
    pub err: u64,
    pub trapno: u64,
}

pub use crate::sys::mask::{FAULT_SIGNALS, KERNEL_NEVER_BLOCKED, REALTIME_SIGNALS, UNBLOCKABLE, kernel_mask, sigbit};

/// Record whether the process has (had) other threads.
pub fn set_multi_threaded(yes: bool) {
    MULTI_THREADED.store(yes, Ordering::SeqCst);
}

/// What the host handler blocks after taking an asynchronous signal, until
/// the dispatcher has delivered it: everything that is not a fault. So the
/// kernel, not bt-run, holds every further signal meanwhile, and delivers
/// them one at a time in its own order.
pub const ASYNC_SIGNALS: u64 = !FAULT_SIGNALS & !UNBLOCKABLE;

/// Real-time signal instances one thread can hold before delivery. The host
/// handler blocks asynchronous signals once it has taken one, so this only
/// needs room for what the kernel hands over in one go (at most one per
/// signal number: it nests a handler frame for each deliverable signal
/// before the first handler runs); beyond it, instances go back to the kernel.
const RT_QUEUE: usize = 64;

/// A siginfo's 128 bytes, in words that the host handler and the
/// dispatcher hand over through the pending bits and ring indices
/// (sequentially consistent), so the words themselves need no ordering.
struct InfoSlot([AtomicU64; 16]);

impl InfoSlot {
    fn empty() -> InfoSlot {
        InfoSlot(std::array::from_fn(|_| AtomicU64::new(0)))
    }

    fn store(&self, info: &[u8; 128]) {
        for (w, b) in self.0.iter().zip(info.chunks_exact(8)) {
            w.store(u64::from_le_bytes(b.try_into().expect("8 bytes")), Ordering::Relaxed);
        }
    }

    fn load(&self) -> [u8; 128] {
        let mut info = [0u8; 128];
        for (w, b) in self.0.iter().zip(info.chunks_exact_mut(8)) {
            b.copy_from_slice(&w.load(Ordering::Relaxed).to_le_bytes());
        }
        info
    }
}

impl ThreadSignals {
    pub fn new() -> Box<Self> {
        Box::new(Self {
            pending: AtomicU64::new(0),
            info: std::array::from_fn(|_| InfoSlot::empty()),
            rt: std::array::from_fn(|_| (AtomicI32::new(0), InfoSlot::empty())),
            rt_head: AtomicU64::new(0),
            rt_tail: AtomicU64::new(0),
            masks: MaskWords::default(),
            mask_swapped: AtomicBool::new(false),
            altstack: AltStack::default(),
            fault: LastFault::default(),
        })
    }

    /// The first thread's state: the guest's mask is the one bt-run was
    /// started with.
    pub fn initial() -> Box<Self> {
        let t = Self::new();
        let m = sys::get_sigmask();
        t.masks.vmask.store(m & !UNBLOCKABLE, Ordering::SeqCst);
        t.install(m);
        t
    }

    /// A copy for a forked child or new thread (alternate stack is inherited
    /// by fork, not by threads; nothing is pending in either; the mask is
    /// inherited by both and must be installed by the new thread with
    /// `install(mask())`).
    pub fn inherit(&self, thread: bool) -> Box<Self> {
        let mut t = Self::new();
        if !thread {
            t.altstack = self.altstack;
        }
        let m = self.mask();
        t.masks.vmask.store(m, Ordering::SeqCst);
        t.masks.real.store(kernel_mask(m), Ordering::SeqCst);
        t.fault = self.fault;
        t
    }

    /// The guest's signal mask.
    pub fn mask(&self) -> u64 {
        self.masks.vmask.load(Ordering::SeqCst)
    }

    /// Change the guest's mask. The kernel's mask follows lazily: blocking
    /// more costs no syscall (a signal that arrives blocked is handed back to
    /// the kernel by the host handler, which then blocks it for real);
    /// unblocking something the kernel blocks installs the new mask at once,
    /// so whatever the kernel holds is delivered now. Fault signals are
    /// always installed at once. While the kernel's mask lags behind
    /// (`lagging`), calls that go to the kernel must `sync` first, because
    /// they may block or depend on the mask.
    pub fn set_mask(&self, m: u64) {
        let m = m & !UNBLOCKABLE;
        self.masks.vmask.store(m, Ordering::SeqCst);
        let kernel = self.masks.real.load(Ordering::SeqCst) | self.masks.extra.load(Ordering::SeqCst);
        if !crate::sys::mask::lazy_ok(m, kernel, MULTI_THREADED.load(Ordering::SeqCst)) {
            self.install(m);
        }
    }

    /// Does the kernel's mask block less than the guest's?
    pub fn lagging(&self) -> bool {
        kernel_mask(self.mask()) & !(self.masks.real.load(Ordering::SeqCst) | self.masks.extra.load(Ordering::SeqCst))
            != 0
    }

    /// Make the kernel's mask guest mask `m` (less KERNEL_NEVER_BLOCKED).
    pub fn install(&self, m: u64) {
        let m = kernel_mask(m);
        // Record first: a host handler that runs between these stores and
        // the syscall adds to `extra`, which then over-states the kernel's
        // mask (harmless: at worst one more syscall later), never under-states.
        self.masks.real.store(m, Ordering::SeqCst);
        self.masks.extra.store(0, Ordering::SeqCst);
        sys::set_sigmask(libc::SIG_SETMASK, m);
    }

    /// Undo blocks the kernel's mask has beyond the guest's (the host
    /// handler's temporary ones after a delivery).
    pub fn settle(&self) {
        let m = self.mask();
        if (self.masks.real.load(Ordering::SeqCst) | self.masks.extra.load(Ordering::SeqCst)) & !kernel_mask(m) != 0 {
            self.install(m);
        }
    }

    /// Make the kernel's mask the guest's (before anything that blocks or
    /// reads the mask in the kernel, and after a delivery, which leaves the
    /// host handler's temporary blocks to undo).
    pub fn sync(&self) {
        self.install(self.mask());
    }

    /// Queue `sig` with its siginfo `info`; false if it could not be (the
    /// real-time ring is full: the caller must leave it with the kernel).
    /// Called by this thread's host handler only.
    pub(crate) fn queue(&self, sig: i32, info: &[u8; 128]) -> bool {
        if sig >= libc::SIGRTMIN() {
            let (h, t) = (self.rt_head.load(Ordering::SeqCst), self.rt_tail.load(Ordering::SeqCst));
            if t - h >= RT_QUEUE as u64 {
                return false;
            }
            // Slot `t` is not yet published, and only this thread's handler
            // writes slots.
            let (s, slot) = &self.rt[(t % RT_QUEUE as u64) as usize];
            s.store(sig, Ordering::Relaxed);
            slot.store(info);
            self.rt_tail.store(t + 1, Ordering::SeqCst);
            return true;
        }
        let bit = 1u64 << (sig - 1);
        if self.pending.load(Ordering::SeqCst) & bit == 0 {
            // The slot is the handler's while the bit is clear.
            self.info[sig as usize].store(info);
            self.pending.fetch_or(bit, Ordering::SeqCst);
        }
        true
    }

    /// Take every queued signal: (signal, siginfo) lowest number first
    /// (real-time instances in number order, each in arrival order).
    pub fn take(&self) -> Vec<(i32, [u8; 128])> {
        let bits = self.pending.swap(0, Ordering::SeqCst);
        let mut v: Vec<(i32, [u8; 128])> = (1..=NSIG as i32)
            .filter(|s| bits & (1u64 << (s - 1)) != 0)
            .map(|s| (s, self.info[s as usize].load()))
            .collect();
        let (mut h, t) = (self.rt_head.load(Ordering::SeqCst), self.rt_tail.load(Ordering::SeqCst));
        let mut rt = Vec::new();
        while h < t {
            // Slots in [head, tail) are published and not rewritten until
            // head moves past them.
            let (s, slot) = &self.rt[(h % RT_QUEUE as u64) as usize];
            rt.push((s.load(Ordering::Relaxed), slot.load()));
            h += 1;
        }
        self.rt_head.store(h, Ordering::SeqCst);
        rt.sort_by_key(|e| e.0); // stable: arrival order within a signal
        v.extend(rt);
        v
    }

    /// What the host handler added to the kernel's mask since the last
    /// install.
    pub(crate) fn extra(&self) -> &AtomicU64 {
        &self.masks.extra
    }

    /// Make this the state the host handler finds from `ctx` (the thread's
    /// context, owned with this by the same `Thread`).
    pub fn attach(&self, ctx: &mut GuestContext) {
        ctx.thread_sig = self as *const ThreadSignals as u64;
    }

    /// The state `attach` gave `ctx`, beside `ctx` itself (they are
    /// separate objects, borrowed for as long as `ctx` is).
    #[allow(unsafe_code)]
    pub fn of(ctx: &mut GuestContext) -> Option<(&ThreadSignals, &mut GuestContext)> {
        // SAFETY: `thread_sig` is 0 or was set by `attach` from the boxed
        // ThreadSignals of the Thread that owns `ctx` too, and both are
        // dropped together: it is live for as long as `ctx` is borrowed,
        // and it does not overlap `ctx`; it is only read through `&`.
        let ts = unsafe { (ctx.thread_sig as *const ThreadSignals).as_ref() }?;
        Some((ts, ctx))
    }

    pub fn on_altstack(&self, rsp: u64) -> bool {
        self.altstack.size != 0 && rsp > self.altstack.sp && rsp - self.altstack.sp <= self.altstack.size
    }

    /// The kernel's on_sig_stack: an auto-disarming stack never counts as
    /// the one the thread is on.
    pub fn on_altstack_armed(&self, rsp: u64) -> bool {
        self.altstack.flags & SS_AUTODISARM == 0 && self.on_altstack(rsp)
    }

    /// sigaltstack(ss, old_ss), given the guest's current stack pointer.
    pub fn sigaltstack(&mut self, ss: u64, old: u64, rsp: u64) -> i64 {
        if old != 0
            && let Err(e) = sys::write_guest(GuestAddr(old), &self.altstack_image(rsp))
        {
            return -(e as i64);
        }
        let mut new = None;
        if ss != 0 {
            let mut b = [0u8; 24];
            if let Err(e) = sys::read_guest(GuestAddr(ss), &mut b) {
                return -(e as i64);
            }
            new = Some(b);
        }
        self.set_altstack(new, rsp)
    }

    /// The 64-bit `stack_t` that sigaltstack reports as the old stack.
    pub fn altstack_image(&self, rsp: u64) -> [u8; 24] {
        let a = self.altstack;
        let flags = if self.on_altstack(rsp) {
            SS_ONSTACK as u32
        } else if a.size == 0 {
            SS_DISABLE as u32
        } else {
            0
        } | (a.flags & SS_AUTODISARM);
        let mut b = [0u8; 24];
        b[0..8].copy_from_slice(&a.sp.to_le_bytes());
        b[8..12].copy_from_slice(&flags.to_le_bytes());
        b[16..24].copy_from_slice(&a.size.to_le_bytes());
        b
    }

    /// sigaltstack's change, with the new 64-bit `stack_t` (None: no
    /// change): 0 or -errno.
    pub fn set_altstack(&mut self, new: Option<[u8; 24]>, rsp: u64) -> i64 {
        let Some(b) = new else { return 0 };
        let sp = u64::from_le_bytes(b[0..8].try_into().expect("8"));
        let flags = u32::from_le_bytes(b[8..12].try_into().expect("4"));
        let size = u64::from_le_bytes(b[16..24].try_into().expect("8"));
        if self.on_altstack(rsp) {
            return -(libc::EPERM as i64);
        }
        let mode = flags & !SS_AUTODISARM;
        if mode != 0 && mode != SS_DISABLE as u32 && mode != SS_ONSTACK as u32 {
            return -(libc::EINVAL as i64);
        }
        // As the kernel, the flags are kept as given (frames show them).
        if mode == SS_DISABLE as u32 {
            self.altstack = AltStack { sp: 0, flags, size: 0 };
        } else {
            if size < MINSIGSTKSZ {
                return -(libc::ENOMEM as i64);
            }
            self.altstack = AltStack { sp, flags, size };
        }
        0
    }
}

/// Guest pc of the instruction containing cache address `pc`.
pub fn guest_pc_at(cache: &CodeCache, pc: CachePc) -> Option<GuestAddr> {
    let b = cache.block(cache.block_at(pc)?);
    let off = (pc.get() - b.start.get()) as u32;
    let i = b.insn_map.partition_point(|&(c, _)| c <= off);
    let (_, g) = *b.insn_map.get(i.checked_sub(1)?)?;
    Some(b.guest.add(g as u64))
}

impl Actions {
    /// The guest inherits the dispositions bt-run was started with (ignored
    /// signals stay ignored across exec); no guest handlers exist yet.
    pub fn new() -> Self {
        let mut table = [GuestAction::default(); NSIG + 1];
        for (sig, a) in table.iter_mut().enumerate().skip(1) {
            if let Some((h, flags, mask)) = sys::host_action(sig as i32)
                && h == libc::SIG_IGN
            {
                a.handler = h as u64;
                a.flags = flags as u64;
                a.mask = mask;
            }
        }
        Self { table, installed: [None; NSIG + 1] }
    }

    /// rt_sigaction(sig, act, oact, sigsetsize)
    pub fn sigaction(&mut self, sig: u64, act: u64, oact: u64, setsize: u64) -> i64 {
        if setsize != 8 || sig == 0 || sig > NSIG as u64 {
            return -(libc::EINVAL as i64);
        }
        let s = sig as usize;
        let mut new = None;
        if act != 0 {
            if sig == libc::SIGKILL as u64 || sig == libc::SIGSTOP as u64 {
                return -(libc::EINVAL as i64);
            }
            let mut b = [0u8; 32];
            if let Err(e) = sys::read_guest(GuestAddr(act), &mut b) {
                return -(e as i64);
            }
            let w = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
            new = Some(GuestAction { handler: w(0), flags: w(1), restorer: w(2), mask: w(3) });
        }
        if oact != 0 {
            let a = self.table[s];
            let mut b = [0u8; 32];
            for (i, v) in [a.handler, a.flags, a.restorer, a.mask].iter().enumerate() {
                b[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
            }
            if let Err(e) = sys::write_guest(GuestAddr(oact), &b) {
                return -(e as i64);
            }
        }
        if let Some(a) = new {
            self.table[s] = a;
            let want = self.host_choice(sig as i32);
            if self.installed[s] != Some(want) {
                self.install_host(sig as i32);
            }
        }
        0
    }

    /// The host action (and handler mask) that serves the guest's action
    /// for `sig`. SIGSEGV, SIGBUS and SIGSYS are always bt-run's: guest
    /// writes to write-protected code arrive as SIGSEGV, checked copies of
    /// guest memory fail through them, isolation's filter traps are
    /// reported before the process dies (`host_signal::isolation_trap`);
    /// and the kernel's mask never blocks them (`KERNEL_NEVER_BLOCKED`), so
    /// a sent one the guest blocks must be handed back by the host handler.
    /// A real fault with the default action is turned back into death by
    /// the signal by the dispatcher. A guest handler is bt-run's handler
    /// with the guest's mask. Ignored, or default, is the kernel's own,
    /// except that a default that terminates keeps bt-run's handler where
    /// it is installed already (the guest just reset a handler: the
    /// dispatcher then gives the signal its default action itself), so
    /// that a program that sets and resets a handler (perl's `local
    /// $SIG{ALRM}`) makes no host call at all.
    fn host_choice(&self, sig: i32) -> (HostAction, u64) {
        let a = self.table[sig as usize];
        let ours = matches!(sig, libc::SIGSEGV | libc::SIGBUS | libc::SIGSYS);
        let (dfl, ign) = (libc::SIG_DFL as u64, libc::SIG_IGN as u64);
        if ours || (a.handler != dfl && a.handler != ign) {
            return (HostAction::Ours, a.mask);
        }
        if a.handler == dfl
            && default_terminates(sig)
            && let Some((HostAction::Ours, mask)) = self.installed[sig as usize]
        {
            return (HostAction::Ours, mask);
        }
        (HostAction::Raw(a.handler as usize), 0)
    }

    /// Install the host action for `sig` (`host_choice`), whatever is
    /// installed (another party may have changed it: the host libc does
    /// for its own signals).
    pub fn install_host(&mut self, sig: i32) {
        let a = self.table[sig as usize];
        let (action, mask) = self.host_choice(sig);
        // Blocking the guest's sa_mask on the host too keeps a second signal
        // from interrupting the host handler, as it would the guest's.
        let ok = sys::set_host_action(sig, action, a.flags as i32, mask).is_ok();
        self.installed[sig as usize] = ok.then_some((action, mask));
    }

    /// Does the guest have a handler for `sig`?
    pub fn has_handler(&self, sig: i32) -> bool {
        let h = self.table[sig as usize].handler;
        h != libc::SIG_DFL as u64 && h != libc::SIG_IGN as u64
    }
}

impl Default for Actions {
    fn default() -> Self {
        Self::new()
    }
}

/// A syscall interrupted by `sig` (it returned EINTR because bt-run's host
/// handler never asks the kernel to restart): restart it after the handler,
/// as the kernel does for -ERESTARTSYS, when the guest's action has
/// SA_RESTART and the call is one the kernel restarts (signal(7)).
pub fn restart_if_asked(actions: &Actions, ctx: &mut GuestContext, abi: syscall_inline::Abi, nr: u64, sig: i32) {
    if ctx.gpr[reg::RAX] != (-(libc::EINTR as i64)) as u64 {
        return;
    }
    let a = actions.table[sig as usize];
    let handled = a.handler != libc::SIG_DFL as u64 && a.handler != libc::SIG_IGN as u64;
    // The call's arguments as the kernel sees them after the call (the
    // registers it preserves): the row decides (`Syscall::restart`).
    let args = match abi {
        syscall_inline::Abi::X86_64 => [reg::RDI, reg::RSI, reg::RDX, reg::R10, reg::R8, reg::R9].map(|r| ctx.gpr[r]),
        syscall_inline::Abi::I386 => {
            [reg::RBX, reg::RCX, reg::RDX, reg::RSI, reg::RDI, reg::RBP].map(|r| ctx.gpr[r] & 0xffff_ffff)
        }
    };
    let restart = abi.lookup(nr).is_none_or(|row| row.restarts(&args));
    if !handled || a.flags & SA_RESTART == 0 || !restart {
        return;
    }
    ctx.gpr[reg::RAX] = nr;
    ctx.rip -= 2; // back onto the 2-byte `syscall` (or `int $0x80`)
}

/// Build the kernel's rt_sigframe for `sig` on the guest stack and point
/// the guest at its handler.
pub fn deliver(
    actions: &mut Actions,
    ts: &mut ThreadSignals,
    xs: sys::UserXstate,
    ctx: &mut GuestContext,
    sig: i32,
    info: &[u8; 128],
) -> Result<(), i32> {
    deliver_as(actions, ts, xs, ctx, sig, info, false)
}

/// `deliver`; `forced` for the kernel's own SIGSEGV after a frame could not
/// be set up, which is no new exception (the thread's last one stays in the
/// frame, no RF).
fn deliver_as(
    actions: &mut Actions,
    ts: &mut ThreadSignals,
    xs: sys::UserXstate,
    ctx: &mut GuestContext,
    sig: i32,
    info: &[u8; 128],
    forced: bool,
) -> Result<(), i32> {
    let a = actions.table[sig as usize];
    if is_forced_info(sig, info) && (a.handler == libc::SIG_IGN as u64 || ts.mask() & sigbit(sig) != 0) {
        // The kernel forces a fault it cannot deliver: default action.
        return Err(sig);
    }
    if a.handler == libc::SIG_IGN as u64 {
        return Ok(());
    }
    if a.handler == libc::SIG_DFL as u64 {
        // The guest reset it while the signal was queued: default action.
        return if default_ignores(sig) { Ok(()) } else { Err(sig) };
    }
    let mask_now = ts.mask();
    // No mask check here: the host handler only ran because the signal was
    // deliverable when it arrived (for sigsuspend and friends, under the
    // temporary mask, which the kernel has already swapped back), so it is
    // delivered now even if the mask in force at this point blocks it.
    // Where the kernel's get_sigframe puts the frame, and whether it fits:
    // a frame on (or entering) the alternate stack that would run off its
    // bottom is refused, as is a handler without a restorer.
    let rsp = ctx.gpr[reg::RSP];
    let nested = ts.on_altstack_armed(rsp);
    let mut sp = rsp - 128;
    let entering = a.flags & SA_ONSTACK != 0 && ts.altstack.size != 0 && !ts.on_altstack_armed(sp);
    if entering {
        sp = ts.altstack.sp + ts.altstack.size;
    }
    if a.flags & SA_RESTORER == 0 {
        return force_sigsegv(actions, ts, xs, ctx, sig);
    }
    // Extended state image, 64-byte aligned, plus the trailing magic.
    let xstate = xs;
    let features = xs.features;
    let xs = xs.size.min(ctx.xsave.len());
    sp = (sp - (xs as u64 + 4)) & !63;
    let fp = sp;
    let mut image = ctx.xsave[..xs].to_vec();
    // fx_sw_bytes: tell readers an XSAVE image follows.
    let sw = FpxSwBytes {
        magic1: FP_XSTATE_MAGIC1,
        extended_size: (xs + 4) as u32,
        xfeatures: features,
        xstate_size: xs as u32,
        padding: [0; 7],
    };
    image[FPX_SW_BYTES_AT..FPX_SW_BYTES_AT + 48].copy_from_slice(frame::as_bytes(&sw));
    // As the kernel: x87 and SSE are always marked present in the frame's
    // XSTATE_BV (they live in the legacy area).
    let mut bv = u64::from_le_bytes(image[512..520].try_into().expect("8")) | 3;
    // PKRU, which bt-run's own saves leave out, is the thread's: the
    // kernel puts it in every frame (and marks it present) where the
    // host has protection keys.
    if let Some(at) = xstate.pkru_at.filter(|&at| at + 8 <= image.len()) {
        image[at..at + 4].copy_from_slice(&sys::rdpkru().to_le_bytes());
        image[at + 4..at + 8].fill(0);
        bv |= sys::XFEATURE_MASK_PKRU;
    }
    image[512..520].copy_from_slice(&bv.to_le_bytes());
    image.extend_from_slice(&FP_XSTATE_MAGIC2.to_le_bytes());
    sp -= std::mem::size_of::<RtSigFrame>() as u64;
    sp = (sp & !15) - 8;
    let frame = sp;
    let mut f = RtSigFrame { pretcode: a.restorer, ..RtSigFrame::default() };
    f.uc.uc_flags = frame::UC_FLAGS;
    // The kernel saves the task's raw sas_ss_flags here (0 until set).
    f.uc.uc_stack = StackT { ss_sp: ts.altstack.sp, ss_flags: ts.altstack.flags, _pad: 0, ss_size: ts.altstack.size };
    let mc = &mut f.uc.uc_mcontext;
    mc.gprs = SIGCONTEXT_GPRS.map(|r| ctx.gpr[r]);
    mc.rip = ctx.rip;
    // The CPU sets RF in the flags image it saves for a fault (not for a
    // trap such as int3); faults bt-run detects itself must show it too.
    let rf = if !forced && is_sync_info(sig, info) && sig != libc::SIGTRAP { 0x10000 } else { 0 };
    mc.eflags = ctx.rflags | rf;
    mc.cs = 0x33;
    mc.ss = 0x2b;
    let mut info = *info;
    if sig == libc::SIGSYS && is_forced_info(sig, &info) {
        // A filter's trap: the kernel names the address after the system
        // call instruction, which bt-run made from its own code; the
        // guest's is where the guest resumes.
        let mut si = SigInfo::from_bytes(&info);
        si.set_addr(ctx.rip);
        info = si.to_bytes();
    }
    if !forced && is_sync_info(sig, &info) {
        // A fault: it becomes the thread's last exception, which the kernel
        // shows in every later frame too (thread.trap_nr, error_code and,
        // for page faults only, cr2).
        let (mut trapno, mut err) = trap_of(sig, &info);
        let mut si = SigInfo::from_bytes(&info);
        if si.carried_trapno != 0 {
            (trapno, err) = (si.carried_trapno, si.carried_err);
        }
        (si.carried_err, si.carried_trapno) = (0, 0);
        info = si.to_bytes();
        ts.fault.err = err;
        ts.fault.trapno = trapno;
        if trapno == 14 {
            ts.fault.cr2 = si.addr();
        }
    }
    mc.err = ts.fault.err;
    mc.trapno = ts.fault.trapno;
    mc.oldmask = mask_now;
    mc.cr2 = ts.fault.cr2;
    mc.fpstate = fp;
    f.uc.uc_sigmask = mask_now;
    f.info = info;
    let fits = !(nested || entering) || ts.on_altstack(frame);
    if !fits
        || sys::write_guest(GuestAddr(fp), &image)
            .and_then(|_| sys::write_guest(GuestAddr(frame), frame::as_bytes(&f)))
            .is_err()
    {
        return force_sigsegv(actions, ts, xstate, ctx, sig);
    }
    // Handler state.
    let mut block = a.mask;
    if a.flags & SA_NODEFER == 0 {
        block |= 1u64 << (sig - 1);
    }
    ts.set_mask(mask_now | block);
    if a.flags & SA_RESETHAND != 0 && sig != libc::SIGILL && sig != libc::SIGTRAP {
        // Only the handler is reset (the kernel keeps the flags and mask).
        actions.table[sig as usize].handler = libc::SIG_DFL as u64;
        actions.install_host(sig);
    }
    // signal_delivered: an auto-disarming alternate stack is reset by any
    // delivery, on it or not.
    if ts.altstack.flags & SS_AUTODISARM != 0 {
        ts.altstack = AltStack { sp: 0, flags: SS_DISABLE as u32, size: 0 };
    }
    ctx.gpr[reg::RDI] = sig as u64;
    ctx.gpr[reg::RSI] = frame + offset_of!(RtSigFrame, info) as u64;
    ctx.gpr[reg::RDX] = frame + offset_of!(RtSigFrame, uc) as u64;
    ctx.gpr[reg::RAX] = 0;
    ctx.gpr[reg::RSP] = frame;
    ctx.rip = a.handler;
    ctx.rflags &= !(0x400 | 0x10000 | 0x100); // DF, RF, TF
    // The handler starts with the initial FPU state, as the kernel's do.
    ctx.xsave[512..576].fill(0);
    ctx.xsave[0..2].copy_from_slice(&0x037fu16.to_le_bytes());
    ctx.xsave[24..28].copy_from_slice(&0x1f80u32.to_le_bytes());
    let _ = a.flags & (SA_SIGINFO | SA_RESTART);
    Ok(())
}

/// The kernel's force_sigsegv after a frame for `sig` could not be set up:
/// the signal is lost, the interrupted state stays as it was, and SIGSEGV
/// (SI_KERNEL) is forced: unblocked, its handler reset to the default if
/// ignored, delivered like any fault. A failure while delivering SIGSEGV
/// itself is fatal.
fn force_sigsegv(
    actions: &mut Actions,
    ts: &mut ThreadSignals,
    xs: sys::UserXstate,
    ctx: &mut GuestContext,
    sig: i32,
) -> Result<(), i32> {
    if sig == libc::SIGSEGV {
        return Err(libc::SIGSEGV);
    }
    let segv = &mut actions.table[libc::SIGSEGV as usize];
    if segv.handler == libc::SIG_IGN as u64 {
        segv.handler = libc::SIG_DFL as u64;
        actions.install_host(libc::SIGSEGV);
    }
    ts.set_mask(ts.mask() & !sigbit(libc::SIGSEGV));
    let info = SigInfo::new(libc::SIGSEGV, SI_KERNEL).to_bytes();
    deliver_as(actions, ts, xs, ctx, libc::SIGSEGV, &info, true)
}

/// rt_sigreturn: restore the guest state saved in the frame at `rsp`
/// (the ucontext, just above the popped return address).
pub fn sigreturn(ts: &mut ThreadSignals, xs: sys::UserXstate, ctx: &mut GuestContext) -> Result<(), i32> {
    let mut bytes = [0u8; std::mem::size_of::<UContext>()];
    sys::read_guest(GuestAddr(ctx.gpr[reg::RSP]), &mut bytes).map_err(|_| libc::SIGSEGV)?;
    let uc: UContext = frame::read(&bytes).expect("a whole ucontext");
    let mc = &uc.uc_mcontext;
    for (r, v) in SIGCONTEXT_GPRS.iter().zip(mc.gprs) {
        ctx.gpr[*r] = v;
    }
    ctx.rip = mc.rip;
    // Only the user-modifiable flags come back (as the kernel's FIX_EFLAGS).
    let user = 0x0004_0DD5u64 | 0x4_0000 | 0x20_0000 | 0x100;
    ctx.rflags = (ctx.rflags & !user) | (mc.eflags & user) | 0x2;
    let fp = mc.fpstate;
    if fp != 0 {
        let xs = xs.size.min(ctx.xsave.len());
        let mut img = vec![0u8; xs];
        sys::read_guest(GuestAddr(fp), &mut img).map_err(|_| libc::SIGSEGV)?;
        // Keep the image loadable: known components only, standard
        // format, reserved header bytes zero, MXCSR reserved bits clear.
        let bv = u64::from_le_bytes(img[512..520].try_into().expect("8")) & sys::trampolines::XSAVE_MASK as u64;
        img[512..520].copy_from_slice(&bv.to_le_bytes());
        img[520..576].fill(0);
        let mxcsr = u32::from_le_bytes(img[24..28].try_into().expect("4")) & 0xffff;
        img[24..28].copy_from_slice(&mxcsr.to_le_bytes());
        ctx.xsave[..xs].copy_from_slice(&img);
    }
    ts.set_mask(uc.uc_sigmask);
    // Restoring the alternate stack settings (uc_stack) as the kernel's
    // restore_altstack does: a sigaltstack call on the restored stack
    // pointer whose failure is ignored.
    let StackT { ss_sp, ss_flags, ss_size, .. } = uc.uc_stack;
    let mode = ss_flags & !SS_AUTODISARM;
    let unchanged = ts.altstack.sp == ss_sp && ts.altstack.size == ss_size && ts.altstack.flags == ss_flags;
    if ts.on_altstack(ctx.gpr[reg::RSP]) || unchanged || ![0, SS_DISABLE as u32, SS_ONSTACK as u32].contains(&mode) {
        // Refused (EPERM, EINVAL) or nothing to do.
    } else if mode == SS_DISABLE as u32 {
        ts.altstack = AltStack { sp: 0, flags: ss_flags, size: 0 };
    } else if ss_size >= MINSIGSTKSZ {
        ts.altstack = AltStack { sp: ss_sp, flags: ss_flags, size: ss_size };
    }
    Ok(())
}

/// A signal the kernel forces on the thread (`force_sig_info`): a fault,
/// or a seccomp filter's SIGSYS (si_code SYS_SECCOMP). Blocked or ignored,
/// it takes its default action.
pub fn is_forced_info(sig: i32, info: &[u8; 128]) -> bool {
    const SYS_SECCOMP: i32 = 1;
    is_sync_info(sig, info) || (sig == libc::SIGSYS && SigInfo::from_bytes(info).code == SYS_SECCOMP)
}

pub fn is_sync_info(sig: i32, info: &[u8; 128]) -> bool {
    let code = SigInfo::from_bytes(info).code;
    matches!(sig, libc::SIGSEGV | libc::SIGBUS | libc::SIGFPE | libc::SIGILL | libc::SIGTRAP) && code > 0
}

/// (trapno, error code) the kernel reports in sigcontext for a fault.
fn trap_of(sig: i32, info: &[u8; 128]) -> (u64, u64) {
    if !is_sync_info(sig, info) {
        return (0, 0);
    }
    match sig {
        libc::SIGSEGV => (14, 4 | 2),
        libc::SIGFPE => (0, 0),
        libc::SIGILL => (6, 0),
        libc::SIGTRAP => (3, 0),
        _ => (0, 0),
    }
}

/// Signals whose default action ends the process (with or without a core
/// dump): all but those ignored and those that stop or continue it.
pub fn default_terminates(sig: i32) -> bool {
    !default_ignores(sig) && !matches!(sig, libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU)
}

/// Signals whose default action is to do nothing.
pub fn default_ignores(sig: i32) -> bool {
    matches!(sig, libc::SIGCHLD | libc::SIGURG | libc::SIGWINCH | libc::SIGCONT)
}

/// A siginfo for a fault bt-run detects itself (illegal instruction, fetch
/// from non-executable memory).
pub fn fault_info(sig: i32, code: i32, addr: u64) -> [u8; 128] {
    let mut i = SigInfo::new(sig, code);
    i.set_addr(addr);
    i.to_bytes()
}
