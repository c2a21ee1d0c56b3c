//! Unsafe OS glue for the runtime, behind safe functions: the assembly
//! trampolines, the per-thread GS/FS setup, checked copies to and from guest
//! memory, guest calls, calls with bt-run's own buffers (`calls`), process
//! creation (`process`), the host signal handler's entry (`handler`), host
//! signal dispositions and the kernel's frame types (`frame`). It calls
//! nothing in the runtime above it except what it is handed. Everything
//! above it is safe Rust (the crate denies `unsafe_code` outside here and
//! `loader::map`).

pub mod answers;
pub mod calls;
pub mod fds;
pub mod frame;
pub mod handler;
pub mod mask;
pub mod nullfds;
pub mod process;
pub mod ptrace;
pub mod seccomp;
pub mod sockdiag;
pub mod trampolines;

use std::io;

use translator::GuestAddr;
use translator::abi::GuestContext;

pub const ARCH_SET_GS: u64 = 0x1001;
pub const ARCH_SET_FS: u64 = 0x1002;
pub const ARCH_GET_FS: u64 = 0x1003;
pub const ARCH_GET_GS: u64 = 0x1004;

/// HWCAP2 bit saying user space may use rd/wr{fs,gs}base.
const HWCAP2_FSGSBASE: u64 = 1 << 1;

/// XCR0 bit of AMX tile data: the one feature the kernel leaves out of a
/// task's state until the process asks for it (`ARCH_REQ_XCOMP_PERM`) and
/// then uses it (XFEATURE_MASK_USER_DYNAMIC).
const XFEATURE_MASK_XTILE_DATA: u64 = 1 << 18;

/// The extended state the kernel puts in this process's signal frames: its
/// `fpstate->user_xfeatures` and `user_size` for a task that has not been
/// given dynamic (AMX tile data) state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserXstate {
    /// The features named in `fx_sw_bytes.xfeatures`.
    pub features: u64,
    /// Bytes of the standard-format XSAVE image (`fx_sw_bytes.xstate_size`).
    pub size: usize,
    /// Where the PKRU component lies in the image, when it is one of the
    /// features (a host with protection keys): bt-run's own saves leave
    /// it out (`trampolines::XSAVE_MASK`), the kernel's frames have it.
    pub pkru_at: Option<usize>,
}

/// XCR0 bit of PKRU, the protection-key rights register.
pub const XFEATURE_MASK_PKRU: u64 = 1 << 9;

impl UserXstate {
    /// Read from the CPU: the kernel enables in XCR0 exactly the user
    /// features it supports, and a task's default state is all of them but
    /// the dynamic ones; the image's size in standard format is the end of
    /// its highest component (CPUID 0xD.i: EAX size, EBX offset). CPUID
    /// 0xD.0:EBX is not it: it counts every feature enabled in XCR0,
    /// AMX tile data included.
    pub fn of_host() -> UserXstate {
        // SAFETY: XGETBV(0) is available whenever XSAVE is (which the
        // trampolines already require) and has no side effects.
        let xcr0 = unsafe { std::arch::x86_64::_xgetbv(0) };
        UserXstate::of(xcr0 & !XFEATURE_MASK_XTILE_DATA, |i| {
            let r = std::arch::x86_64::__cpuid_count(0xD, i);
            (r.eax, r.ebx)
        })
    }

    /// For `features`, with `component(i)` giving component i's (size,
    /// offset) as CPUID 0xD.i does.
    pub fn of(features: u64, component: impl Fn(u32) -> (u32, u32)) -> UserXstate {
        // The legacy area and the XSAVE header always come first.
        let mut size = 576usize;
        for i in 2..63 {
            if features & (1 << i) != 0 {
                let (len, off) = component(i);
                size = size.max(off as usize + len as usize);
            }
        }
        let pkru_at = (features & XFEATURE_MASK_PKRU != 0).then(|| component(9).1 as usize);
        UserXstate { features, size, pkru_at }
    }
}

/// The thread's PKRU (the guest's: bt-run never changes it).
pub fn rdpkru() -> u32 {
    let pkru: u32;
    // SAFETY: RDPKRU reads PKRU (ecx must be 0; edx is zeroed) and has no
    // other effect; callers use it only where XCR0 enables PKRU, which
    // the kernel does only with CR4.PKE set.
    unsafe {
        std::arch::asm!("rdpkru", in("ecx") 0u32, out("eax") pkru, out("edx") _, options(nomem, nostack, preserves_flags));
    }
    pkru
}

/// Can this thread use rdfsbase/wrfsbase (the trampolines rely on them)?
pub fn fsgsbase_available() -> bool {
    // SAFETY: getauxval has no preconditions.
    unsafe { libc::getauxval(libc::AT_HWCAP2) & HWCAP2_FSGSBASE != 0 }
}

/// Point this thread's GS base at `ctx` and record the host FS base in it.
/// After this the trampolines can reach `ctx` through GS.
pub fn install_context(ctx: &mut GuestContext) -> io::Result<()> {
    let mut fs: u64 = 0;
    // SAFETY: ARCH_GET_FS writes one u64 to the pointer we pass.
    if unsafe { libc::syscall(libc::SYS_arch_prctl, ARCH_GET_FS, &mut fs as *mut u64) } != 0 {
        return Err(io::Error::last_os_error());
    }
    ctx.host_fs = fs;
    // SAFETY: ARCH_SET_GS only changes this thread's GS base; nothing in
    // bt-run or its libc uses GS on x86-64, and `ctx` outlives the thread's
    // use of the cache (it is owned by the runtime for the whole run).
    if unsafe { libc::syscall(libc::SYS_arch_prctl, ARCH_SET_GS, ctx as *mut GuestContext as u64) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Run guest code at cache address `target` until it exits to the dispatcher.
pub fn enter_cache(ctx: &mut GuestContext, target: u64) {
    // SAFETY: `install_context` pointed GS at `ctx`; `target` is the start of
    // a translated block (or code the dispatcher vouches for); the
    // trampoline saves and restores every host callee-saved register and the
    // host FS base, and returns here through `bt_exit_common`.
    unsafe { trampolines::bt_enter_cache(ctx, target) }
}

/// Copy guest memory at `addr` into `buf`; Err(EFAULT) if any of it is not
/// readable, exactly as the kernel would report a bad user pointer.
///
/// The copy runs in-process; a fault in it is turned into the error by the
/// host SIGSEGV/SIGBUS handler (which the kernel's mask never blocks, see
/// `signals::KERNEL_NEVER_BLOCKED`), as a kernel's exception table does.
pub fn read_guest(addr: GuestAddr, buf: &mut [u8]) -> Result<(), i32> {
    let addr = addr.get();
    if buf.is_empty() {
        return Ok(());
    }
    if addr.checked_add(buf.len() as u64).is_none_or(|e| e > USER_END) {
        return Err(libc::EFAULT);
    }
    // SAFETY: `buf` is ours to write; the source may be anything, and a
    // fault while reading it makes the copy fail instead of crashing.
    match unsafe { trampolines::bt_copy_checked(buf.as_mut_ptr(), addr as *const u8, buf.len()) } {
        0 => Ok(()),
        _ => Err(libc::EFAULT),
    }
}

/// Copy `buf` into guest memory at `addr`; Err(EFAULT) if not writable.
pub fn write_guest(addr: GuestAddr, buf: &[u8]) -> Result<(), i32> {
    let addr = addr.get();
    if buf.is_empty() {
        return Ok(());
    }
    let limit = WRITE_LIMIT.load(std::sync::atomic::Ordering::Relaxed);
    if addr.checked_add(buf.len() as u64).is_none_or(|e| e > limit) {
        return Err(libc::EFAULT);
    }
    // SAFETY: the destination is guest memory the guest asked the kernel
    // (through us) to write; a fault makes the copy fail instead of crashing.
    match unsafe { trampolines::bt_copy_checked(addr as *mut u8, buf.as_ptr(), buf.len()) } {
        0 => Ok(()),
        _ => Err(libc::EFAULT),
    }
}

/// End of the user address space (x86-64, 4-level paging).
const USER_END: u64 = 0x7fff_ffff_f000;

/// `write_guest` writes nothing at or above this: the end of the user
/// address space, or under isolation the end of the program's part of it
/// (`guest_space::GUEST_LIMIT`), so that no write bt-run makes for the
/// program (a signal frame, a tid, a call's output) lands in bt-run's
/// memory.
static WRITE_LIMIT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(USER_END);

/// Isolation: `write_guest` stops at `limit`.
pub fn limit_guest_writes(limit: u64) {
    WRITE_LIMIT.store(limit.min(USER_END), std::sync::atomic::Ordering::Relaxed);
}

pub fn read_guest_u64(addr: GuestAddr) -> Result<u64, i32> {
    let mut b = [0u8; 8];
    read_guest(addr, &mut b)?;
    Ok(u64::from_le_bytes(b))
}

/// What the host kernel does with a signal.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum HostAction {
    /// SIG_DFL or SIG_IGN, passed through as the guest asked.
    Raw(usize),
    /// bt-run's handler, which queues the signal for the guest.
    Ours,
}

/// Install a host disposition for `sig`.
pub fn set_host_action(sig: i32, action: HostAction, flags: i32, mask: u64) -> io::Result<()> {
    // SAFETY: sigaction_t is plain data; zeroed is a valid initial value.
    let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
    match action {
        HostAction::Raw(h) => {
            act.sa_sigaction = h;
            act.sa_flags = 0;
        }
        HostAction::Ours => {
            act.sa_sigaction = trampolines::bt_host_signal_entry as *const () as usize;
            // Our handler runs on bt-run's own alternate stack, always with
            // siginfo, and never with SA_RESTART: a blocking syscall must
            // return (EINTR) so the guest's handler runs while the call is
            // "in progress", as natively; the dispatcher then restarts the
            // call after the handler when the guest asked for SA_RESTART.
            let _ = flags;
            act.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        }
    }
    // SAFETY: the mask is written as the kernel's 64-bit sigset prefix.
    unsafe {
        libc::sigemptyset(&mut act.sa_mask);
        std::ptr::copy_nonoverlapping(&mask as *const u64 as *const u8, &mut act.sa_mask as *mut _ as *mut u8, 8);
    }
    // The raw call, not libc's sigaction: the host libc refuses to let
    // anyone handle its own internal signals (32 and 33), which the guest's
    // libc uses too (thread cancellation, setxid broadcast).
    #[repr(C)]
    struct KSigaction {
        handler: usize,
        flags: u64,
        restorer: usize,
        mask: u64,
    }
    let mut mask_bits = 0u64;
    // SAFETY: reading the first 8 bytes of the sigset built above.
    unsafe {
        std::ptr::copy_nonoverlapping(&act.sa_mask as *const _ as *const u8, &mut mask_bits as *mut u64 as *mut u8, 8)
    };
    let k = KSigaction {
        handler: act.sa_sigaction,
        flags: act.sa_flags as u64 | 0x0400_0000, // SA_RESTORER
        restorer: trampolines::bt_sigreturn as *const () as usize,
        mask: mask_bits,
    };
    // SAFETY: a kernel sigaction struct with a restorer that issues
    // rt_sigreturn; the kernel validates the signal number.
    let r = unsafe { libc::syscall(libc::SYS_rt_sigaction, sig, &k as *const KSigaction, 0usize, 8usize) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The host's current disposition of `sig`: (handler, flags, mask).
pub fn host_action(sig: i32) -> Option<(usize, i32, u64)> {
    // SAFETY: plain data out-parameter.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: querying only.
    if unsafe { libc::sigaction(sig, std::ptr::null(), &mut old) } != 0 {
        return None;
    }
    let mut mask = 0u64;
    // SAFETY: reading the first 8 bytes of the sigset.
    unsafe {
        std::ptr::copy_nonoverlapping(&old.sa_mask as *const _ as *const u8, &mut mask as *mut u64 as *mut u8, 8)
    };
    Some((old.sa_sigaction, old.sa_flags, mask))
}

/// A new private, zero-filled, readable and writable mapping of `size`
/// bytes where the kernel finds room (bt-run's own: stacks).
pub(crate) fn map_anon_rw(size: usize) -> io::Result<*mut libc::c_void> {
    // SAFETY: a new anonymous mapping at a kernel-chosen address; checked.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED { Err(io::Error::last_os_error()) } else { Ok(p) }
}

/// Give this thread an alternate signal stack for bt-run's handlers.
pub fn install_host_sigaltstack() -> io::Result<()> {
    const SIZE: usize = 256 * 1024;
    let p = map_anon_rw(SIZE)?;
    let ss = libc::stack_t { ss_sp: p, ss_flags: 0, ss_size: SIZE };
    // SAFETY: the stack memory is ours and never freed.
    if unsafe { libc::sigaltstack(&ss, std::ptr::null_mut()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The real signal mask of this thread (first 64 signals).
pub fn get_sigmask() -> u64 {
    let mut old = 0u64;
    // SAFETY: rt_sigprocmask with a null new set only reads the mask.
    unsafe {
        syscall_inline::raw::syscall6(libc::SYS_rt_sigprocmask as u64, [0, 0, &mut old as *mut u64 as u64, 8, 0, 0])
    };
    old
}

/// Set the real signal mask of this thread; returns the old one.
pub fn set_sigmask(how: i32, set: u64) -> u64 {
    let mut old = 0u64;
    // SAFETY: both sets are valid 8-byte buffers.
    unsafe {
        syscall_inline::raw::syscall6(
            libc::SYS_rt_sigprocmask as u64,
            [how as u64, &set as *const u64 as u64, &mut old as *mut u64 as u64, 8, 0, 0],
        )
    };
    old
}

/// Make system call `nr` with `a` for the guest, now (no look at pending
/// signals; see `forward_guest_call` for calls that may block).
///
/// Safe for the same reason `write_guest` is: the call is the guest's
/// (decided by its row in the layer's table, or rebuilt by the runtime
/// from the guest's arguments), and what it does to memory is done to the
/// addresses the guest named, as natively. Calls that would change bt-run's
/// own state (its descriptors, mappings, signal handlers, thread state) are
/// never forwarded unchecked: their rows send them to the runtime, which
/// checks their ranges and descriptors first (`Thread::serve`). Keeping
/// bt-run's memory out of the guest's reach is an isolation boundary's job
/// (see docs/design.md, "Where unsafe code lives"), not something a Rust
/// signature can state: the guest can store into any mapped page with a
/// plain `mov` anyway.
/// Calls bt-run makes with pointers of its own go through the typed
/// wrappers in `calls`, never through this.
pub fn forward(nr: u64, a: [u64; 6]) -> i64 {
    // SAFETY: see above: a guest call whose memory effects are the guest's.
    unsafe { syscall_inline::raw::syscall6(nr, a) }
}

/// Would death by `sig` dump core (its default action is a core dump and
/// RLIMIT_CORE allows one)?
pub fn dumps_core(sig: i32) -> bool {
    let core_action = [
        libc::SIGQUIT,
        libc::SIGILL,
        libc::SIGTRAP,
        libc::SIGABRT,
        libc::SIGBUS,
        libc::SIGFPE,
        libc::SIGSEGV,
        libc::SIGXCPU,
        libc::SIGXFSZ,
        libc::SIGSYS,
    ];
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes one `struct rlimit` into `lim`.
    let r = unsafe { libc::getrlimit(libc::RLIMIT_CORE, &mut lim) };
    core_action.contains(&sig) && r == 0 && lim.rlim_cur > 0
}

/// This thread's kernel id.
pub fn gettid() -> u64 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::syscall(libc::SYS_gettid) as u64 }
}

/// This process's id (the kernel's answer, not the guest's cached one).
pub fn getpid() -> i32 {
    // SAFETY: getpid has no preconditions.
    unsafe { libc::getpid() }
}

/// Have the kernel clear (and futex-wake) the u32 at guest address `addr`
/// when this thread exits, as the guest's clone asked.
pub fn set_tid_address(addr: u64) {
    // SAFETY: the kernel only stores the pointer; it writes there (with a
    // checked user copy) when the thread exits.
    unsafe { libc::syscall(libc::SYS_set_tid_address, addr) };
}

/// End the process with `code`, now (no destructors, no flushing: the
/// caller has written what it had to).
pub fn exit_group(code: i32) -> ! {
    // SAFETY: exit_group does not return.
    unsafe { libc::syscall(libc::SYS_exit_group, code) };
    unreachable!("exit_group returned")
}

/// End this thread only, with `code`. Its host and guest stacks must not
/// be used again by anyone: a guest thread's dispatcher calls this at its
/// end, and nothing else refers to its stack.
pub fn exit_thread(code: i32) -> ! {
    // SAFETY: exit does not return; bt-run keeps no reference to a guest
    // thread's host stack once the thread ends (see the caller).
    unsafe { libc::syscall(libc::SYS_exit, code) };
    unreachable!("exit returned")
}

/// Die by `sig` as natively: default disposition, unblocked, raised.
pub fn die_by_signal(sig: i32) -> ! {
    die_by_signal_info(sig, None)
}

/// `die_by_signal` with the siginfo the kernel would have given the
/// signal (a tracer sees it at the signal's stop, a core file records it).
pub fn die_by_signal_info(sig: i32, info: Option<&[u8; 128]>) -> ! {
    let _ = set_host_action(sig, HostAction::Raw(libc::SIG_DFL), 0, 0);
    set_sigmask(libc::SIG_UNBLOCK, 1u64 << (sig - 1));
    // SAFETY: sending this thread a signal whose default action terminates
    // the process; rt_tgsigqueueinfo reads a 128-byte siginfo, and the
    // kernel lets a thread give itself any si_code.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid);
        let queued =
            info.is_some_and(|i| libc::syscall(libc::SYS_rt_tgsigqueueinfo, libc::getpid(), tid, sig, i.as_ptr()) == 0);
        if !queued {
            libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, sig);
        }
    }
    // A signal whose default is to ignore (or stop) does not end us.
    // SAFETY: exiting the process.
    unsafe { libc::_exit(128 + sig) }
}

/// Make /proc/self/{comm,exe,cmdline,environ,auxv} show the guest rather
/// than bt-run, as far as the kernel lets this process: the name always;
/// the rest needs CAP_SYS_RESOURCE (silently left as they are otherwise).
/// `sp` is the guest's initial stack pointer (argc, argv, envp, auxv).
/// Returns where the guest's auxv is (address, bytes with AT_NULL).
pub fn adopt_identity(comm: &[u8], exe: &std::path::Path, sp: u64) -> (u64, u64) {
    let mut name = [0u8; 16];
    let n = comm.len().min(15);
    name[..n].copy_from_slice(&comm[..n]);
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr() as libc::c_ulong, 0, 0, 0) };

    if let Ok(f) = std::fs::File::open(exe) {
        use std::os::fd::AsRawFd;
        // SAFETY: PR_SET_MM_EXE_FILE takes an fd of an executable file.
        unsafe {
            libc::prctl(
                libc::PR_SET_MM,
                libc::PR_SET_MM_EXE_FILE as libc::c_ulong,
                f.as_raw_fd() as libc::c_ulong,
                0,
                0,
            )
        };
    }
    let word = |a: u64| read_guest_u64(GuestAddr(a)).unwrap_or(0);
    let argc = word(sp);
    if argc == 0 || argc > 1 << 20 {
        return (0, 0);
    }
    let strend = |p: u64| -> u64 {
        let mut q = p;
        let mut b = [0u8; 1];
        while read_guest(GuestAddr(q), &mut b).is_ok() && b[0] != 0 {
            q += 1;
        }
        q + 1
    };
    let argv = sp + 8;
    let arg_start = word(argv);
    let arg_end = strend(word(argv + 8 * (argc - 1)));
    let envp = argv + 8 * (argc + 1);
    let mut nenv = 0;
    while word(envp + 8 * nenv) != 0 && nenv < 1 << 20 {
        nenv += 1;
    }
    let (env_start, env_end) =
        if nenv > 0 { (word(envp), strend(word(envp + 8 * (nenv - 1)))) } else { (arg_end, arg_end) };
    let auxv = envp + 8 * (nenv + 1);
    let mut naux = 0;
    while word(auxv + 16 * naux) != 0 && naux < 64 {
        naux += 1;
    }
    let set = |what: libc::c_int, v: u64| {
        // SAFETY: PR_SET_MM_* with addresses inside this process's memory.
        unsafe { libc::prctl(libc::PR_SET_MM, what as libc::c_ulong, v as libc::c_ulong, 0, 0) == 0 }
    };
    // The kernel checks start <= end after each change, so order the
    // updates by where the new range lies relative to the old one.
    for (s, e, sv, ev) in [
        (libc::PR_SET_MM_ARG_START, libc::PR_SET_MM_ARG_END, arg_start, arg_end),
        (libc::PR_SET_MM_ENV_START, libc::PR_SET_MM_ENV_END, env_start, env_end),
    ] {
        if !(set(e, ev) && set(s, sv)) {
            let _ = set(s, sv) && set(e, ev);
        }
    }
    // SAFETY: the guest's auxv array, (naux + 1) pairs including AT_NULL.
    unsafe {
        libc::prctl(
            libc::PR_SET_MM,
            libc::PR_SET_MM_AUXV as libc::c_ulong,
            auxv as libc::c_ulong,
            (16 * (naux + 1)) as libc::c_ulong,
            0,
        )
    };
    (auxv, 16 * (naux + 1))
}

/// Send this thread `sig` with `info` for real, unblocked for the moment,
/// so that a tracer gets its signal-delivery stop (see
/// `ptrace_view::echo`); the host handler recognises it by
/// `ctx.view_echo` and does nothing. Returns once it has been delivered or
/// the tracer suppressed it.
pub fn echo_signal(sig: i32, info: &[u8; 128], ctx: &mut GuestContext) {
    let old = set_sigmask(libc::SIG_UNBLOCK, 1u64 << (sig - 1));
    // SAFETY: a signal to this thread with a 128-byte siginfo; its host
    // handler is installed (the guest has a handler for it) and returns at
    // once for an echo. `ctx` is passed so the compiler knows the handler
    // may change it (the volatile copy below tells the compiler so).
    unsafe {
        libc::syscall(libc::SYS_rt_tgsigqueueinfo, libc::getpid(), libc::syscall(libc::SYS_gettid), sig, info.as_ptr());
        std::ptr::write_volatile(&mut ctx.view_echo, std::ptr::read_volatile(&ctx.view_echo));
    }
    set_sigmask(libc::SIG_SETMASK, old);
}

/// Put a signal bt-run took but cannot deliver yet (blocked) back into the
/// kernel's queue for this thread, with its siginfo (value, sender).
pub fn requeue_signal(sig: i32, info: &[u8; 128]) {
    // SAFETY: rt_tgsigqueueinfo to our own thread with a 128-byte siginfo;
    // the kernel allows any si_code when a thread signals itself.
    unsafe {
        libc::syscall(libc::SYS_rt_tgsigqueueinfo, libc::getpid(), libc::syscall(libc::SYS_gettid), sig, info.as_ptr());
    }
}

/// Put a process-directed signal back into the kernel's queue for the whole
/// process (the kernel picks a thread that does not block it). False if the
/// kernel refuses (it only lets the thread-group leader re-send a kill()'s
/// siginfo to the process).
pub fn requeue_signal_to_process(sig: i32, info: &[u8; 128]) -> bool {
    // SAFETY: rt_sigqueueinfo to our own process with a 128-byte siginfo.
    unsafe { libc::syscall(libc::SYS_rt_sigqueueinfo, libc::getpid(), sig, info.as_ptr()) == 0 }
}

/// Make guest system call `nr` with `a`, unless a signal is pending for
/// this thread: then it is not made and `trampolines::SAFE_NOT_STARTED`
/// comes back (the caller puts the guest back on its `syscall`
/// instruction). Safe as `forward` is.
pub fn forward_guest_call(nr: u64, a: [u64; 6]) -> i64 {
    // SAFETY: as `forward`; the GS base is this thread's context (set up
    // before any guest call), which the trampoline reads the pending flag from.
    unsafe { trampolines::bt_safe_syscall(nr, &a) }
}

/// Make i386 system call `nr` (`int $0x80`, the kernel's compat table) for
/// the guest with `a` in ebx, ecx, edx, esi, edi, ebp, unless a signal is
/// pending for this thread (then `trampolines::SAFE_NOT_STARTED`, as
/// `forward_guest_call`). The result is rax as the kernel leaves it
/// (sign-extended). Safe as `forward` is.
pub fn forward_i386(nr: u64, a: [u64; 6]) -> i64 {
    // SAFETY: as `forward`; the GS base is this thread's context.
    unsafe { trampolines::bt_safe_int80(nr, &a) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CPUID 0xD.i (size, offset) of a Sapphire Rapids host: AVX, the
    /// three AVX-512 components, PKRU, AMX tile config and tile data.
    fn sapphire_rapids(i: u32) -> (u32, u32) {
        match i {
            2 => (256, 576),
            5 => (64, 1088),
            6 => (512, 1152),
            7 => (1024, 1664),
            9 => (8, 2688),
            17 => (64, 2752),
            18 => (8192, 2816),
            _ => (0, 0),
        }
    }

    #[test]
    fn amx_tile_data_is_not_in_the_default_frame() {
        // XCR0 of such a host (no PKU), minus tile data as of_host does.
        let x = UserXstate::of(0x600e7 & !XFEATURE_MASK_XTILE_DATA, sapphire_rapids);
        assert_eq!(x, UserXstate { features: 0x200e7, size: 2816, pkru_at: None });
        // With protection keys, PKRU lies where CPUID says.
        assert_eq!(UserXstate::of(0x2e7, sapphire_rapids).pkru_at, Some(2688));
        // Granted and used, tile data ends the image.
        assert_eq!(UserXstate::of(0x600e7, sapphire_rapids).size, 11008);
        // AVX only: the legacy area, the header and the upper ymm halves.
        assert_eq!(UserXstate::of(0x7, sapphire_rapids).size, 832);
        assert_eq!(UserXstate::of(0x3, sapphire_rapids).size, 576);
    }

    #[test]
    fn host_frame_size_matches_cpuid_without_dynamic_features() {
        // SAFETY: as in UserXstate::of_host.
        let xcr0 = unsafe { std::arch::x86_64::_xgetbv(0) };
        let x = UserXstate::of_host();
        let enabled = std::arch::x86_64::__cpuid_count(0xD, 0).ebx as usize;
        if xcr0 & XFEATURE_MASK_XTILE_DATA == 0 {
            assert_eq!(x.size, enabled);
            assert_eq!(x.features, xcr0);
        } else {
            println!("host enables AMX tile data: the default frame leaves it out");
            assert!(x.size < enabled);
            assert_eq!(x.features, xcr0 & !XFEATURE_MASK_XTILE_DATA);
        }
    }
}
