//! The dispatcher: find or translate the block for the guest pc, link the
//! exit that brought us here, run the block, and act on why it came back.
//!
//! It keeps no state across cache executions beyond what is in the
//! `Runtime`: everything about the guest is in its `GuestContext`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use translator::abi::{ExitReason, GuestContext, IC_KINDS, NO_SITE, reg};
use translator::cache::{BlockId, CacheFull, CodeCache, ExitId};
use translator::context_box::ContextBox;
use translator::translate::{InlineAnswer, InlineSyscalls, MAX_INSN_LEN, StepKind, TranslateOptions, step_kind};
use translator::{CachePc, GuestAddr};

use crate::loader::LoadedProgram;
use crate::memory::{Brk, CodeGuard, ExecMap, GuestRange, PAGE, page_down, page_up};
use crate::observe::{Observers, SyscallStats};
use crate::signals::{self, ThreadSignals};
use crate::sys;
use crate::sys::answers::Answers;
use crate::sys::frame::SigInfo;
use syscall_inline::{Abi, GateConfig};

/// Options that shape a run (and are passed on to re-executed children).
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub stats: bool,
    pub stats_json: bool,
    /// `-c`/`-C`: the statistics are strace -c's table (with `stats`).
    pub summary: bool,
    /// `-c -e trace=SET`: the calls the table counts.
    pub summary_only: Option<syscall_inline::TraceSet>,
    /// `-o FILE`: where statistics and trace lines go (default: bt-run's
    /// stderr). Opened by `own_fds::init` before the guest runs.
    pub output: Option<PathBuf>,
    pub far_cache: bool,
    /// `--perf-map[=insns]`: name the code cache for `perf` (`perf_map`).
    pub perf_map: Option<crate::perf_map::Detail>,
    pub no_follow: bool,
    /// `--no-inline`: forward even the calls bt-run could answer itself.
    pub no_inline: bool,
    pub cache_size: usize,
    /// `--code-offset`: bytes of the cache left empty before the first
    /// block (see `CodeCache::offset_code`).
    pub code_offset: usize,
    /// Tracing, deny policy and embedding hook.
    pub observers: Observers,
    /// Arguments that reproduce these options on a re-executed bt-run.
    pub inherit: Vec<OsString>,
    /// `--isolate`: the seccomp backstop (`isolate`), installed before the
    /// guest runs (on whenever a deny policy is).
    pub isolate: bool,
    /// The address ranges older images' filters name (`--isolated=`).
    pub isolated_from: crate::isolate::Inherited,
    /// `--exec-line=`: the first half of the trace line of the execve
    /// that started this image (printed with `= 0` when it runs).
    pub exec_line: Option<String>,
}

/// How a guest run ended, when it did not end the process itself.
#[derive(Debug)]
pub enum GuestExit {
    /// exit_group(status).
    Exited(i32),
    /// exit(status) of this thread only.
    ThreadExited(i32),
    /// The guest must die by this signal (default action).
    Killed(i32),
    /// An instruction the guest has no SIGILL handler for.
    Illegal { pc: GuestAddr, bytes: Vec<u8> },
    /// bt-run itself cannot continue.
    Fatal(String),
}

/// Counters for `--stats` that are not the cache's own, for one process
/// image: the shared table's, or a vfork child's own (it runs in our memory
/// but is a process of its own).
#[derive(Clone, Debug, Default)]
pub struct RunStats {
    pub dispatches: u64,
    pub signals_delivered: u64,
    pub threads_started: u64,
    /// The syscall layer's counts of the calls that reached it.
    pub syscalls: SyscallStats,
    /// Syscalls forwarded by the gates of threads that have exited.
    pub fast_forwards: u64,
    /// Indirect-branch lookups by kind of site (`SiteKind`), of threads
    /// that have exited, and those that missed (dispatcher entries).
    pub site_lookups: [u64; 3],
    pub site_table: [u64; 3],
    pub site_misses: [u64; 3],
    /// Syscalls answered by the gates of threads that have exited.
    pub inline_served: u64,
}

/// Process-wide state that threads share, behind one lock: the dispatcher
/// takes it to find, translate and link blocks and releases it before
/// entering the cache.
pub struct Shared {
    pub cache: Box<CodeCache>,
    pub exec: ExecMap,
    pub guard: CodeGuard,
    pub brk: Brk,
    pub actions: signals::Actions,
    /// The process's statistics (a vfork child keeps its own instead).
    pub stats: RunStats,
    /// Guest threads alive (the cache is only flushed while this is 1).
    pub threads: usize,
    /// `--perf-map`: names of the cache's blocks for `perf`.
    pub perf_map: Option<crate::perf_map::PerfMap>,
}

/// The process: shared state plus what never changes after start-up.
pub struct Process {
    pub shared: Mutex<Shared>,
    pub opts: Options,
    /// The guest program as /proc/self/exe should show it.
    pub exe_path: PathBuf,
    /// bt-run itself, for re-executing on execve.
    pub self_exe: PathBuf,
    /// Read by the gates through `GuestContext::sys_table`.
    pub sys_table: Box<[u8; syscall_inline::GATE_TABLE_LEN]>,
    /// The same with every forwarded call sent to the runtime instead: a
    /// thread's gate uses it while the kernel's signal mask lags behind the
    /// guest's, so the runtime installs the mask before the call.
    pub sys_table_sync: Box<[u8; syscall_inline::GATE_TABLE_LEN]>,
    /// `sys_table` for a process that has used ptrace: its waits go to
    /// the runtime (see `ptrace_view::wait4`).
    pub sys_table_tracer: Box<[u8; syscall_inline::GATE_TABLE_LEN]>,
    /// Host ranges the guest may not map over (cache, tables, brk reserve).
    pub reserved: Vec<(u64, u64)>,
    /// The extended state in signal frames, as the kernel sizes it.
    pub xstate: sys::UserXstate,
    cache_range: (u64, u64),
    /// The guard gap below the initial guest stack.
    stack_guard: GuestRange,
    /// Where the guest's argv strings are (what /proc/self/cmdline shows).
    pub cmdline: std::sync::atomic::AtomicU64,
    pub cmdline_end: std::sync::atomic::AtomicU64,
    /// The process-wide in-process answers (pid, ids), indexed by syscall
    /// number; each thread's context points here (a vfork child at its own
    /// copy, since it shares our memory but not our pid).
    pub answers: &'static Answers,
    /// With `--isolate`: what the seccomp filter allows where (installed by
    /// `start` just before the guest runs).
    pub isolation: Option<crate::isolate::Plan>,
}

/// One guest thread: its registers and signal state, and the process.
pub struct Thread {
    pub ctx: ContextBox,
    pub sig: Box<ThreadSignals>,
    pub p: &'static Process,
    /// Is this the thread bt-run started with?
    pub main: bool,
    /// A vfork child shares memory with its parent but not its signal
    /// dispositions: it gets its own copy here instead of the shared table.
    pub own_actions: Option<Box<signals::Actions>>,
    /// A vfork child is a process image of its own for `--stats` too: it
    /// counts here instead of in the shared table.
    pub own_stats: Option<Box<RunStats>>,
    /// The syscall that just returned (its table and number), while a
    /// signal may be waiting (the signal's SA_RESTART decides whether it
    /// runs again after the handler).
    pub interrupted: Option<(Abi, u64)>,
    /// The execve being made (table, number, arguments), for its trace
    /// line in the new image.
    pub exec_call: Option<(Abi, u64, [u64; 6])>,
}

/// Size of the region reserved for the emulated break.
const BRK_RESERVE: u64 = 1 << 30;

/// EFLAGS.TF, the trap flag.
const TF: u64 = 0x100;
/// The flags `popf` may change in user mode (CF PF AF ZF SF TF DF OF NT AC
/// ID; IF and IOPL stay).
const POPF_USER: u64 = 0x0004_0DD5 | 0x4000 | 0x20_0000;
/// si_code of a single-step trap.
const TRAP_TRACE: i32 = 2;
/// si_code of a trap after a system call a tracer single-stepped.
const TRAP_BRKPT: i32 = 1;
/// si_code of a signal the kernel raises (int3's SIGTRAP).
const SI_KERNEL: i32 = 0x80;
pub const DEFAULT_CACHE_SIZE: usize = 256 << 20;

/// Why a process could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("cannot reserve the program break near {near:#x}")]
    Break { near: u64 },
    #[error("cannot map the code cache: {0}")]
    CodeCache(std::io::Error),
    #[error("cannot reserve the inaccessible band above the program's memory (isolation)")]
    Guard,
}

/// What the seccomp filter allows where, for this run's gate table and
/// policy (see `isolate`).
fn isolation_plan(opts: &Options, cache: (u64, u64)) -> crate::isolate::Plan {
    let [gate_ip, sigmask_ip, safe_ip, int80_ip] = sys::trampolines::guest_call_sites();
    let denied = |abi: Abi, skip: &[u32]| -> Vec<(u32, syscall_inline::DenyAction)> {
        abi.table()
            .iter()
            .filter(|row| !skip.contains(&row.nr))
            .filter_map(|row| opts.observers.deny_in(abi, row.nr as u64).map(|a| (row.nr, a)))
            .collect()
    };
    crate::isolate::Plan {
        cache,
        gate_ip,
        sigmask_ip,
        safe_ip,
        int80_ip,
        forward: crate::isolate::gate_numbers(|nr| opts.observers.deny_in(Abi::X86_64, nr).is_some()),
        deny64: denied(Abi::X86_64, &crate::isolate::SAFE_SITE_SUBSTITUTES),
        deny32: denied(Abi::I386, &crate::compat::INT80_SUBSTITUTES),
    }
}

impl Process {
    /// Set up the process for `prog`; it lives for the rest of the run.
    pub fn new(
        prog: &LoadedProgram,
        opts: Options,
        exe_path: PathBuf,
        self_exe: PathBuf,
    ) -> Result<&'static Self, ProcessError> {
        let brk = reserve_brk(prog.brk_start.get())?;
        let near = if opts.far_cache {
            None
        } else {
            Some(prog.regions.iter().find(|r| r.prot & libc::PROT_EXEC != 0).map_or(prog.entry, |r| r.start))
        };
        let cache_size = if opts.cache_size == 0 { DEFAULT_CACHE_SIZE } else { opts.cache_size };
        let sys_table = syscall_inline::gate_table_for(&opts.gate_config());
        let topts = TranslateOptions {
            force_far_riprel: opts.far_cache,
            ibl_table: None,
            inline_syscalls: inline_syscalls(&sys_table),
            single_step: false,
            count_sites: opts.stats,
            ic_kinds: IC_KINDS,
            read_pointer: Some(|at| sys::read_guest_u64(at).ok()),
            read_constant: Some(crate::constants::read_constant),
            entry_regs: None,
            bmi2: std::arch::is_x86_feature_detected!("bmi2"),
            ic_counters: None,
            confine_stores: opts.isolate,
            windowed: false,
        };
        // Under isolation the cache's execute view, which the filter names
        // and which outlives this image in it, lies where no exec'd image's
        // code can (`isolate::EXEC_SAFE_BAND`).
        let within = opts.isolate.then_some(crate::isolate::EXEC_SAFE_BAND);
        let mut cache = Box::new(CodeCache::new(cache_size, near, within, topts).map_err(ProcessError::CodeCache)?);
        cache.offset_code(opts.code_offset);
        let mut exec = ExecMap::default();
        for r in &prog.regions {
            if r.prot & libc::PROT_EXEC != 0 {
                exec.add(GuestRange::new(r.start.get(), r.end.get()), r.prot);
            }
        }
        if let Some((s, e)) = vdso_range() {
            exec.add(GuestRange::new(s, e), libc::PROT_READ | libc::PROT_EXEC);
        }
        crate::constants::reset(&exec);
        let mut reserved = cache.reserved_ranges();
        reserved.push((brk.start, brk.limit));
        if opts.isolate {
            // Everything above the guest's part of the address space, and
            // the inaccessible band just above it that confined stores rely
            // on (see `translator::abi::GUEST_GUARD`).
            reserved.push((crate::guest_space::GUEST_LIMIT, 1 << 47));
            let guard = translator::abi::GUEST_GUARD;
            if sys::calls::reserve(crate::guest_space::GUEST_LIMIT, guard, libc::MAP_NORESERVE, true).is_none() {
                return Err(ProcessError::Guard);
            }
        }
        let cache_range = (cache.base().get(), cache.base().get() + cache_size as u64);
        let answers = Answers::new_leaked();
        let isolation = opts.isolate.then(|| isolation_plan(&opts, cache_range));
        let p = Box::leak(Box::new(Process {
            shared: Mutex::new(Shared {
                cache,
                exec,
                guard: CodeGuard::default(),
                brk,
                actions: signals::Actions::new(),
                stats: RunStats::default(),
                threads: 1,
                perf_map: opts.perf_map.map(crate::perf_map::PerfMap::new),
            }),
            opts,
            exe_path,
            self_exe,
            sys_table_sync: {
                let mut t = sys_table.clone();
                t.iter_mut()
                    .filter(|b| {
                        use syscall_inline::{
                            GATE_ADDR_CHECK, GATE_CLOSE, GATE_FD_CHECK, GATE_FORWARD, GATE_NULL_WRITE, GATE_ZERO_READ,
                        };
                        let b = **b & !GATE_ADDR_CHECK;
                        matches!(b, GATE_FORWARD | GATE_NULL_WRITE | GATE_ZERO_READ | GATE_CLOSE) || b >= GATE_FD_CHECK
                    })
                    .for_each(|b| *b = syscall_inline::GATE_RUNTIME);
                t
            },
            sys_table_tracer: {
                let mut t = sys_table.clone();
                for row in syscall_inline::SYSCALLS.iter().filter(|r| r.tracer_view) {
                    t[row.nr as usize] = syscall_inline::GATE_RUNTIME;
                }
                t
            },
            sys_table,
            reserved,
            xstate: sys::UserXstate::of_host(),
            cache_range,
            stack_guard: GuestRange::new(prog.stack.start.get().saturating_sub(16 << 20), prog.stack.start.get()),
            answers,
            isolation,
            cmdline: Default::default(),
            cmdline_end: Default::default(),
        }));
        let (a, e) = argv_range(prog.stack_pointer.get());
        p.cmdline.store(a, std::sync::atomic::Ordering::Relaxed);
        p.cmdline_end.store(e, std::sync::atomic::Ordering::Relaxed);
        crate::host_signal::install(p);
        if p.isolation.is_some() {
            // From here on the runtime places the guest's new mappings.
            let random = (!crate::loader::map::personality_no_randomize()).then(|| {
                let mut w = [0u8; 8];
                crate::loader::map::fill_random(&mut w).map(|()| u64::from_le_bytes(w)).unwrap_or(0)
            });
            crate::guest_space::enable(random);
            sys::limit_guest_writes(crate::guest_space::GUEST_LIMIT);
        }
        Ok(p)
    }

    /// The shared state, locked.
    pub fn lock(&self) -> MutexGuard<'_, Shared> {
        // A panic aborts the process, so the lock is never poisoned in use.
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The gate table for a thread (`lagging`: its signal mask is ahead of
    /// the kernel's, so every forwarded call goes to the runtime).
    pub fn gate_table(&self, lagging: bool) -> u64 {
        let t = if lagging {
            &self.sys_table_sync
        } else if crate::ptrace_view::is_tracer() {
            &self.sys_table_tracer
        } else {
            &self.sys_table
        };
        t.as_ptr() as u64
    }

    /// Is `addr` in the inaccessible gap below the initial guest stack?
    pub fn in_stack_guard(&self, addr: GuestAddr) -> bool {
        self.stack_guard.contains(addr)
    }

    /// Is `pc` inside the code cache? (Lock-free: the range never moves.)
    pub fn cache_contains(&self, pc: CachePc) -> bool {
        pc.get() >= self.cache_range.0 && pc.get() < self.cache_range.1
    }

    /// Does `r` touch memory bt-run owns?
    pub fn hits_reserved(&self, r: GuestRange) -> bool {
        self.reserved.iter().any(|&(s, e)| r.overlaps(GuestRange::new(s, e)))
    }

    /// The first thread's context, ready to start at the program's entry.
    pub fn main_thread(&'static self, prog: &LoadedProgram) -> Thread {
        let mut ctx = GuestContext::new_boxed();
        ctx.gpr[reg::RSP] = prog.stack_pointer.get();
        ctx.rip = prog.entry.get();
        ctx.rflags = 0x202;
        self.prepare_context(&mut ctx);
        let mut t = Thread {
            ctx,
            sig: ThreadSignals::initial(),
            p: self,
            main: true,
            own_actions: None,
            own_stats: None,
            interrupted: None,
            exec_call: None,
        };
        t.sig.attach(&mut t.ctx);
        t
    }

    /// Fill in the context slots that point at process-wide things.
    pub fn prepare_context(&self, ctx: &mut GuestContext) {
        ctx.sys_table = self.gate_table(false);
        ctx.sys_table_sync = self.sys_table_sync.as_ptr() as u64;
        {
            let sh = self.lock();
            ctx.ibl_table = sh.cache.ibl_table();
            ctx.ibl_probe2 = sh.cache.ibl_probe2();
        }
        ctx.exit_tramp = sys::trampolines::bt_exit_common as *const () as u64;
        ctx.exit_branch = sys::trampolines::bt_exit_branch as *const () as u64;
        ctx.gate_entry = sys::trampolines::bt_gate as *const () as u64;
        ctx.ibl_miss = sys::trampolines::bt_ibl_miss as *const () as u64;
        ctx.self_ptr = ctx as *const GuestContext as u64;
        ctx.answers = self.answers.address();
        ctx.tid = gettid();
        crate::ptrace_view::prepare(ctx);
    }
}

impl Options {
    /// Which calls the gate must send to the runtime for these options.
    pub fn gate_config(&self) -> GateConfig {
        let obs = &self.observers;
        let mut to_runtime = Vec::new();
        if let Some(t) = &obs.trace {
            to_runtime.extend((0..syscall_inline::GATE_TABLE_LEN as u64).filter(|&nr| t.contains(nr)));
        }
        if let Some(p) = &obs.policy {
            to_runtime.extend((0..syscall_inline::GATE_TABLE_LEN as u64).filter(|&nr| p.action(nr).is_some()));
        }
        if self.isolate {
            // Checked by the runtime (`Thread::isolation_mediates`).
            to_runtime.extend([libc::SYS_openat2 as u64, libc::SYS_process_vm_writev as u64]);
        }
        GateConfig {
            inline: !self.no_inline && !crate::ptrace_view::traced(),
            all_to_runtime: self.stats || obs.hook.is_some(),
            to_runtime,
            fd_check: true,
            address_check: self.isolate,
        }
    }
}

/// The calls the translator may answer at the `syscall` site: exactly those
/// the gate table `t` has the gate answer in-process (so none that is
/// traced, denied, counted, hooked or turned off by `--no-inline`, which
/// all make the table send the call elsewhere).
pub fn inline_syscalls(t: &[u8; syscall_inline::GATE_TABLE_LEN]) -> InlineSyscalls {
    const _: () = assert!(syscall_inline::GATE_TABLE_LEN as u64 <= InlineSyscalls::LIMIT);
    let mut s = InlineSyscalls::default();
    for (nr, &b) in t.iter().enumerate() {
        let how = match b {
            syscall_inline::GATE_ANSWER => Some(InlineAnswer::Table),
            syscall_inline::GATE_TID => Some(InlineAnswer::Tid),
            _ => None,
        };
        s.set(nr as u64, how);
    }
    s
}

/// [start, end) of the argv strings of the initial stack at `sp`.
fn argv_range(sp: u64) -> (u64, u64) {
    let word = |a: u64| sys::read_guest_u64(GuestAddr(a)).unwrap_or(0);
    let argc = word(sp);
    if argc == 0 || argc > 1 << 20 {
        return (0, 0);
    }
    let start = word(sp + 8);
    let mut end = word(sp + 8 * argc);
    let mut b = [0u8; 1];
    while sys::read_guest(GuestAddr(end), &mut b).is_ok() && b[0] != 0 {
        end += 1;
    }
    (start, end + 1)
}

pub use crate::sys::gettid;

/// Recompute the in-process answers of the thread's process (after a
/// credential change, or in a new process) from the kernel's current values.
pub fn refill_answers(ctx: &GuestContext) {
    if let Some(a) = Answers::of(ctx) {
        a.refill();
    }
}

impl Thread {
    /// Run this guest thread until it exits or must die.
    pub fn run(&mut self) -> GuestExit {
        self.sig.attach(&mut self.ctx);
        self.ctx.self_ptr = &*self.ctx as *const GuestContext as u64;
        if let Err(e) = sys::install_context(&mut self.ctx) {
            return GuestExit::Fatal(format!("cannot set up the thread context: {e}"));
        }
        if let Err(e) = sys::install_host_sigaltstack() {
            return GuestExit::Fatal(format!("cannot set up the signal stack: {e}"));
        }
        if self.main {
            self.with_actions(|a, _, _| {
                a.install_host(libc::SIGSEGV);
                a.install_host(libc::SIGBUS);
                a.install_host(libc::SIGSYS);
            });
            self.view_exec_exit();
        }
        // The exit that brought us back, and the cache generation it is from.
        self.interrupted = None;
        let mut link_from: Option<(ExitId, u64)> = None;
        // A lookup miss that brought us back: the site's first inline-cache
        // entry and the cache generation it is from.
        let mut ibl_from: Option<(ExitId, u64)> = None;
        loop {
            if self.ctx.signal_pending != 0 {
                if let Err(sig) = self.deliver_pending() {
                    return GuestExit::Killed(sig);
                }
                link_from = None;
                ibl_from = None;
            }
            if crate::ptrace_view::invalidations_pending() {
                // A tracer wrote into guest code (a debugger's breakpoint).
                let ranges = crate::ptrace_view::take_invalidations();
                let mut sh = self.p.lock();
                for (s, e) in ranges.unwrap_or_else(|| vec![(0, u64::MAX >> 16)]) {
                    sh.invalidate(GuestRange::new(s, e).pages());
                }
                link_from = None;
                ibl_from = None;
            }
            let pc = GuestAddr(self.ctx.rip);
            if let Some(nr) = vsyscall_nr(pc.get()) {
                // A call into the legacy vsyscall page (old static
                // binaries): the kernel emulates it as the system call
                // followed by a `ret`, and so do we.
                let rsp = self.ctx.gpr[reg::RSP];
                let Ok(ret) = sys::read_guest_u64(GuestAddr(rsp)) else {
                    if let Some(e) = self.sync_fault(libc::SIGSEGV, 1, rsp) {
                        return e;
                    }
                    continue;
                };
                self.ctx.gpr[reg::RAX] = nr;
                // (A call that a pending signal keeps from starting backs up
                // by the size of `syscall`: onto the entry again.)
                self.ctx.rip = pc.get() + 2;
                if let Some(exit) = self.syscall() {
                    return exit;
                }
                if self.ctx.rip != pc.get() {
                    self.ctx.rip = ret;
                    self.ctx.gpr[reg::RSP] = rsp + 8;
                }
                link_from = None;
                ibl_from = None;
                continue;
            }
            // A guest with EFLAGS.TF set runs one instruction per block and
            // takes SIGTRAP (TRAP_TRACE) after each, as natively; the CPU's
            // own trap flag is never set in cached code.
            if self.p.isolation.is_some() && self.ctx.gpr[reg::RSP] >= translator::abi::GUEST_LIMIT {
                // rsp set above the program's memory outside translated code
                // (a new thread's stack, rt_sigreturn, a tracer): the stack
                // would be unmapped there, and confined stores take rsp as
                // below the limit.
                let rsp = self.ctx.gpr[reg::RSP];
                if let Some(e) = self.sync_fault(libc::SIGSEGV, 1, rsp) {
                    return e;
                }
                continue;
            }
            let guest_tf = self.ctx.rflags & TF != 0;
            let stepping = guest_tf || self.ctx.view_step != 0;
            let step = if stepping { self.step_kind(pc) } else { StepKind::Other };
            let target = {
                let mut sh = self.p.lock();
                let block = if stepping { self.step_block_for(&mut sh, pc) } else { self.block_for(&mut sh, pc) };
                let target = match block {
                    Ok(t) => t,
                    Err(BlockErr::Exit(e)) => return e,
                    Err(BlockErr::Fault(code)) => {
                        // A jump to memory the guest cannot execute.
                        drop(sh);
                        if let Some(e) = self.sync_fault(libc::SIGSEGV, code, pc.get()) {
                            return e;
                        }
                        continue;
                    }
                };
                if let Some((id, generation)) = link_from.take()
                    && generation == sh.cache.stats.flushes
                    && !stepping
                {
                    sh.cache.link(id, target);
                }
                if let Some((site, generation)) = ibl_from.take()
                    && !stepping
                {
                    sh.cache.ibl_insert(pc, target);
                    if generation == sh.cache.stats.flushes {
                        sh.cache.ic_fill(site, pc, target);
                    }
                }
                match self.own_stats.as_deref_mut() {
                    Some(own) => own.dispatches += 1,
                    None => sh.stats.dispatches += 1,
                }
                target
            };
            self.interrupted = None;
            // Lookups that miss without naming a site find NO_SITE here.
            self.ctx.exit_id = NO_SITE as u64;
            sys::enter_cache(&mut self.ctx, target.get());
            if self.ctx.exit_reason == ExitReason::BranchStub as u64 {
                // Exits are never dropped under a running thread (the
                // cache is flushed only with one thread, by itself).
                if let Some(t) = self.p.lock().cache.exit_target(ExitId(self.ctx.exit_id as u32)) {
                    self.ctx.rip = t.get();
                    self.ctx.exit_reason = ExitReason::Branch as u64;
                }
            }
            let mut stepped = false;
            if stepping {
                // Exits save the CPU's flags, which never have TF (and a
                // tracer's single step does not show in them).
                if guest_tf && !matches!(step, StepKind::Popf { .. }) {
                    self.ctx.rflags |= TF;
                }
                // The instruction completed if its block left normally (a
                // fault comes back as a signal, before it completes).
                stepped = matches!(
                    ExitReason::from_raw(self.ctx.exit_reason),
                    Some(ExitReason::Branch | ExitReason::IndirectMiss)
                );
                if guest_tf && stepped && step == StepKind::Pushf {
                    let at = self.ctx.gpr[reg::RSP] + 1;
                    let mut b = [0u8; 1];
                    if sys::read_guest(GuestAddr(at), &mut b).is_ok() {
                        let _ = sys::write_guest(GuestAddr(at), &[b[0] | 1]);
                    }
                }
                if guest_tf && step == StepKind::Syscall {
                    self.ctx.gpr[reg::R11] |= TF;
                }
            }
            let left_for_syscall = matches!(ExitReason::from_raw(self.ctx.exit_reason), Some(ExitReason::Syscall));
            match ExitReason::from_raw(self.ctx.exit_reason) {
                Some(ExitReason::Branch) => {
                    link_from = Some((ExitId(self.ctx.exit_id as u32), self.p.lock().cache.stats.flushes));
                }
                Some(ExitReason::BranchStub) => {
                    return GuestExit::Fatal(format!("an exit stub named no exit ({})", self.ctx.exit_id));
                }
                Some(ExitReason::IndirectMiss) => {
                    ibl_from = Some((ExitId(self.ctx.exit_id as u32), self.p.lock().cache.stats.flushes));
                    if self.p.opts.stats {
                        let kind = (self.ctx.site_kind as usize).min(2);
                        self.with_stats(|s| s.site_misses[kind] += 1);
                    }
                }
                Some(ExitReason::Syscall) => {
                    let nr = self.ctx.gpr[reg::RAX];
                    if let Some(exit) = self.syscall() {
                        return exit;
                    }
                    self.interrupted = restartable(Abi::X86_64, nr);
                }
                Some(ExitReason::Int80) => {
                    let nr = self.ctx.gpr[reg::RAX] & 0xffff_ffff;
                    if let Some(exit) = self.int80() {
                        return exit;
                    }
                    self.interrupted = restartable(Abi::I386, nr);
                }
                Some(ExitReason::Signal) => {}
                Some(ExitReason::Breakpoint) => {
                    // int3: SIGTRAP (SI_KERNEL, trap 3) with rip after it,
                    // as natively. A debugger may have written the original
                    // byte back since the block was translated: then the
                    // block goes and the guest runs what is there now.
                    let at = self.ctx.rip - 1;
                    let mut b = [0u8; 1];
                    if sys::read_guest(GuestAddr(at), &mut b).is_ok() && b[0] != 0xcc {
                        self.p.lock().invalidate(GuestRange::sized(at, 1));
                        self.ctx.rip = at;
                    } else if let Some(e) = self.sync_fault(libc::SIGTRAP, SI_KERNEL, 0) {
                        return e;
                    }
                }
                Some(ExitReason::SyscallSignal) => self.interrupted = Some((Abi::X86_64, self.ctx.gate_nr)),
                Some(ExitReason::Illegal) => {
                    // An instruction the CPU itself rejects: SIGILL, as natively.
                    if let Some(e) = self.sync_fault(libc::SIGILL, 2 /* ILL_ILLOPN */, self.ctx.rip) {
                        return e;
                    }
                }
                Some(ExitReason::Unsupported) => {
                    let pc = GuestAddr(self.ctx.rip);
                    if self.sync_fault(libc::SIGILL, 2 /* ILL_ILLOPN */, pc.get()).is_some() {
                        let n = self.p.lock().exec.extent_end(pc).map_or(0, |e| (e.get() - pc.get()).min(16) as usize);
                        let mut bytes = vec![0u8; n];
                        let _ = sys::read_guest(pc, &mut bytes);
                        return GuestExit::Illegal { pc, bytes };
                    }
                }
                Some(ExitReason::TrapFlag) => {
                    // popf of a value with TF: done here, so that the CPU
                    // never steps cached code.
                    if let StepKind::Popf { size, len } = self.step_kind(GuestAddr(self.ctx.rip)) {
                        let rsp = self.ctx.gpr[reg::RSP];
                        let mut v = [0u8; 8];
                        if sys::read_guest(GuestAddr(rsp), &mut v[..size as usize]).is_err() {
                            if let Some(e) = self.sync_fault(libc::SIGSEGV, 1, rsp) {
                                return e;
                            }
                            continue;
                        }
                        let user = if size == 8 { POPF_USER } else { POPF_USER & 0xffff };
                        self.ctx.rflags = (self.ctx.rflags & !user) | (u64::from_le_bytes(v) & user) | 2;
                        self.ctx.gpr[reg::RSP] = rsp + size as u64;
                        self.ctx.rip += len as u64;
                        stepped = stepping;
                    }
                }
                Some(ExitReason::StoreFault) => {
                    // A confined store aimed above the guest's memory, which
                    // natively would be unmapped there: SIGSEGV, MAPERR.
                    let pc = GuestAddr(self.ctx.rip);
                    let (b, n) = self.insn_bytes(pc);
                    let gpr: [u64; 16] = self.ctx.gpr[..16].try_into().expect("16 registers");
                    let addr = translator::translate::confined_store_address(
                        pc,
                        &b[..n],
                        &gpr,
                        self.ctx.guest_fs,
                        self.ctx.guest_gs,
                    )
                    .unwrap_or(translator::abi::GUEST_LIMIT);
                    if let Some(e) = self.sync_fault(libc::SIGSEGV, 1, addr) {
                        return e;
                    }
                }
                Some(ExitReason::StackFault) => {
                    // rsp was set above the guest's memory: the stack is
                    // unmapped there, as a push would find natively.
                    let rsp = self.ctx.gpr[reg::RSP];
                    if let Some(e) = self.sync_fault(libc::SIGSEGV, 1, rsp) {
                        return e;
                    }
                }
                Some(ExitReason::FetchFault) => {
                    // rip is the instruction that could not be fetched whole;
                    // the fault is at its first byte outside executable
                    // memory: ACCERR if that byte is mapped, MAPERR if not.
                    let pc = self.ctx.rip;
                    let addr = self.p.lock().exec.extent_end(GuestAddr(pc)).map_or(pc, GuestAddr::get);
                    let code = if sys::read_guest(GuestAddr(addr), &mut [0u8; 1]).is_ok() { 2 } else { 1 };
                    if let Some(e) = self.sync_fault(libc::SIGSEGV, code, addr) {
                        return e;
                    }
                }
                None => return GuestExit::Fatal(format!("unknown exit reason {}", self.ctx.exit_reason)),
            }
            if stepping {
                // Single-step blocks are never linked or looked up.
                link_from = None;
                ibl_from = None;
            }
            if stepped && !matches!(step, StepKind::Syscall | StepKind::MovSs) {
                // The single-step trap: SIGTRAP, TRAP_TRACE, at the next
                // instruction; trap number 1 (#DB) in the frame.
                self.ctx.view_step = 0;
                let mut si = SigInfo::from_bytes(&signals::fault_info(libc::SIGTRAP, TRAP_TRACE, self.ctx.rip));
                si.carried_trapno = 1;
                let info = si.to_bytes();
                if let Some(e) = self.sync_fault_info(libc::SIGTRAP, &info) {
                    return e;
                }
            } else if self.ctx.view_step != 0 && step == StepKind::Syscall && (stepped || left_for_syscall) {
                // A tracer stepped a `syscall`: the kernel reports the trap
                // as the call returns (TRAP_BRKPT), before the next
                // instruction.
                if let Some(e) = self.tracer_step_trap() {
                    return e;
                }
            }
        }
    }

    /// What stepping the instruction at `pc` involves (Other if unreadable:
    /// the block will fault).
    fn step_kind(&self, pc: GuestAddr) -> StepKind {
        let (b, n) = self.insn_bytes(pc);
        if n == 0 {
            return StepKind::Other;
        }
        step_kind(pc, &b[..n])
    }

    /// The guest-executable bytes at `pc`, at most one instruction's worth,
    /// and how many (0 if unreadable).
    fn insn_bytes(&self, pc: GuestAddr) -> ([u8; 15], usize) {
        let n = self.p.lock().exec.extent_end(pc).map_or(0, |e| (e.get() - pc.get()).min(15) as usize);
        let mut b = [0u8; 15];
        if n == 0 || sys::read_guest(pc, &mut b[..n]).is_err() {
            return (b, 0);
        }
        (b, n)
    }

    /// Run `f` on this thread's signal dispositions (the shared table, or a
    /// vfork child's own copy), its signal state and its context.
    pub fn with_actions<R>(
        &mut self,
        f: impl FnOnce(&mut signals::Actions, &mut ThreadSignals, &mut GuestContext) -> R,
    ) -> R {
        match self.own_actions.as_mut() {
            Some(a) => f(a, &mut self.sig, &mut self.ctx),
            None => {
                let mut sh = self.p.lock();
                f(&mut sh.actions, &mut self.sig, &mut self.ctx)
            }
        }
    }

    /// Run `f` on the statistics of this thread's process image (the shared
    /// table, or a vfork child's own).
    pub fn with_stats<R>(&mut self, f: impl FnOnce(&mut RunStats) -> R) -> R {
        match self.own_stats.as_deref_mut() {
            Some(s) => f(s),
            None => f(&mut self.p.lock().stats),
        }
    }

    /// Deliver what the host handler queued for this thread.
    fn deliver_pending(&mut self) -> Result<(), i32> {
        self.ctx.signal_pending = 0;
        let interrupted = self.interrupted.take();
        let queued = self.sig.take();
        if queued.is_empty() {
            self.sig.settle();
            return Ok(());
        }
        let xs = self.p.xstate;
        let n = queued.len() as u64;
        // As the kernel: the lowest-numbered deliverable signal is handled
        // first and its frame wraps the interrupted state (deciding a
        // syscall restart by its SA_RESTART); each further one that the
        // handler's mask does not block is pushed on top (so it runs first);
        // the rest go back to the kernel, pending until a sigreturn or
        // sigprocmask unblocks them. A signal that arrived during a call that
        // swaps the mask (sigsuspend, ppoll, ...) was deliverable under the
        // temporary mask, so the first one is delivered whatever the mask.
        let swapped_mask = interrupted.is_some_and(|(abi, nr)| {
            abi.lookup(nr).is_some_and(|row| row.service() == Some(syscall_inline::Service::MaskedWait))
        });
        self.with_actions(|a, ts, ctx| {
            let mut first = true;
            for (sig, info) in queued {
                let blocked = ts.mask() & signals::sigbit(sig) != 0;
                if blocked && !(first && swapped_mask) && !signals::is_forced_info(sig, &info) {
                    sys::requeue_signal(sig, &info);
                    continue;
                }
                if first {
                    if let Some((abi, nr)) = interrupted {
                        signals::restart_if_asked(a, ctx, abi, nr, sig);
                    }
                    first = false;
                }
                signals::deliver(a, ts, xs, ctx, sig, &info)?;
            }
            Ok::<(), i32>(())
        })?;
        self.with_stats(|s| s.signals_delivered += n);
        // Lift the host handler's temporary blocks: the kernel may now hand
        // over the next signal.
        self.sig.settle();
        self.refresh_gate();
        Ok(())
    }

    /// Point the gate at the table that matches the signal mask's state:
    /// while the kernel's mask lags behind the guest's, every call that
    /// would go to the kernel comes to the runtime first.
    pub fn refresh_gate(&mut self) {
        self.ctx.sys_table = self.p.gate_table(self.sig.lagging());
    }

    /// The trap that ends a tracer's single step over a system call.
    pub(crate) fn tracer_step_trap(&mut self) -> Option<GuestExit> {
        self.ctx.view_step = 0;
        self.sync_fault(libc::SIGTRAP, TRAP_BRKPT, self.ctx.rip)
    }

    /// Deliver a fault bt-run detected itself to the guest's handler, or
    /// return how the guest dies.
    fn sync_fault(&mut self, sig: i32, code: i32, addr: u64) -> Option<GuestExit> {
        self.sync_fault_info(sig, &signals::fault_info(sig, code, addr))
    }

    /// `sync_fault` with a complete siginfo.
    fn sync_fault_info(&mut self, sig: i32, info: &[u8; 128]) -> Option<GuestExit> {
        let xs = self.p.xstate;
        if crate::ptrace_view::traced() && !self.echo(sig, info) {
            // The tracer suppressed it: the guest goes on at its rip (a
            // fault faults again).
            return None;
        }
        let fatal = self.with_actions(|a, ts, _| !a.has_handler(sig) || ts.mask() & signals::sigbit(sig) != 0);
        if fatal {
            crate::ptrace_view::set_fatal_info(sig, info);
            return Some(GuestExit::Killed(sig));
        }
        self.with_actions(|a, ts, ctx| signals::deliver(a, ts, xs, ctx, sig, info).err().map(GuestExit::Killed))
    }

    /// The single-instruction block for `pc` (see `block_for`).
    fn step_block_for(&mut self, sh: &mut Shared, pc: GuestAddr) -> Result<CachePc, BlockErr> {
        let mut buf = [0u8; MAX_INSN_LEN];
        let bytes = guest_code_at(sh, pc, &mut buf)?;
        install(sh, pc, bytes, CodeCache::translate_step)
    }

    /// The cache code for guest `pc`, translating it if needed.
    fn block_for(&mut self, sh: &mut Shared, pc: GuestAddr) -> Result<CachePc, BlockErr> {
        if let Some((_, c)) = sh.cache.lookup(pc) {
            return Ok(c);
        }
        // Most blocks are a few dozen bytes: the guest's code is copied a
        // window at a time, and a block that reaches the window's end stops
        // short of it (`TranslateOptions::windowed`).
        let mut buf = [0u8; FETCH_WINDOW];
        let bytes = guest_code_at(sh, pc, &mut buf)?;
        if let Some((id, c)) = sh.cache.revive(pc, bytes) {
            let glen = sh.cache.block(id).guest_len as u64;
            sh.guard_code(GuestRange::sized(pc.get(), glen.max(1)));
            return Ok(c);
        }
        // Code the guest can also write (JIT output) may be invalidated
        // without changing: keep its bytes to revive its translation.
        let writable = sh.exec.prot_at(pc).is_some_and(|p| p & libc::PROT_WRITE != 0);
        // This thread enters the block next: its registers are the guesses
        // a guarded jump table checks.
        if self.ctx.rip == pc.get() {
            sh.cache.entry_hint = Some(self.ctx.gpr);
        }
        sh.cache.fetch_windowed = bytes.len() == FETCH_WINDOW;
        install(sh, pc, bytes, if writable { CodeCache::translate_revivable } else { CodeCache::translate })
    }
}

/// How much guest code `block_for` copies to translate a block from.
const FETCH_WINDOW: usize = 512;

/// The call that just returned, as a signal delivered now sees it: one
/// that may be restarted after the handler (`signals::restart_if_asked`),
/// or none after a signal return, whose rax is the frame's and which the
/// kernel marks as no call (orig_ax = -1 in restore_sigcontext).
fn restartable(abi: Abi, nr: u64) -> Option<(Abi, u64)> {
    let sigreturn = abi.lookup(nr).is_some_and(|row| row.service() == Some(syscall_inline::Service::SignalReturn));
    (!sigreturn).then_some((abi, nr))
}

/// Why there is no block to run.
enum BlockErr {
    /// The guest pc is not executable: SIGSEGV with this si_code.
    Fault(i32),
    Exit(GuestExit),
}

impl Shared {
    /// Write-protect the host pages of guest code in `r` that the guest can
    /// also write, so that changing translated code is noticed.
    pub fn guard_code(&mut self, r: GuestRange) {
        let mut page = page_down(r.start.get());
        while page < r.end.get() {
            if let Some(prot) = self.exec.prot_at(GuestAddr(page))
                && prot & libc::PROT_WRITE != 0
                && !self.guard.contains(GuestAddr(page))
            {
                // A guest page (executable in the guest's view): dropping
                // write access only makes guest writes fault, which the
                // host handler turns back into writes.
                if sys::calls::protect_guest(GuestRange::sized(page, PAGE), libc::PROT_READ) {
                    self.guard.pages.insert(page);
                    crate::memory::ANY_GUARDED.store(true, std::sync::atomic::Ordering::Relaxed);
                }
            }
            page += PAGE;
        }
    }

    /// Before the kernel writes the output buffers of call `row` with
    /// arguments `a` for the guest: the guarded pages in them are made
    /// writable again (their translations dropped), as a guest store would.
    /// Buffers: an output argument with the size argument after it
    /// (BufOut, RandOut, PathOut, DirentsOut), a struct stat (StatOut),
    /// and the buffers of an output iovec array with its count after it
    /// (IovOut, at most IOV_MAX entries, read from guest memory).
    pub fn unguard_outputs(&mut self, row: &syscall_inline::Syscall, a: &[u64; 6]) {
        use syscall_inline::Arg;
        const STAT_SIZE: u64 = 144;
        const IOV_MAX: u64 = 1024;
        if self.guard.pages.is_empty() {
            return;
        }
        let mut ranges = Vec::new();
        for (i, kind) in row.args.iter().enumerate() {
            let next = a.get(i + 1).copied().unwrap_or(0);
            match kind {
                Arg::BufOut | Arg::RandOut | Arg::PathOut | Arg::DirentsOut => ranges.push((a[i], next)),
                Arg::StatOut => ranges.push((a[i], STAT_SIZE)),
                Arg::IovOut => {
                    for k in 0..next.min(IOV_MAX) {
                        let mut iov = [0u8; 16];
                        if sys::read_guest(GuestAddr(a[i].wrapping_add(16 * k)), &mut iov).is_err() {
                            break;
                        }
                        let w = |o: usize| u64::from_le_bytes(iov[o..o + 8].try_into().expect("8 bytes"));
                        ranges.push((w(0), w(8)));
                    }
                }
                _ => {}
            }
        }
        for (start, len) in ranges {
            let end = start.saturating_add(len);
            let pages: Vec<u64> = self.guard.pages.range(page_down(start)..end).copied().collect();
            for page in pages {
                self.unguard_for_write(GuestAddr(page));
            }
        }
    }

    /// A guest write hit guarded code page `page`: drop its translations and
    /// give the write access back (guest protection minus execute).
    pub fn unguard_for_write(&mut self, page: GuestAddr) -> bool {
        let page = page.get();
        if !self.guard.pages.remove(&page) {
            return false;
        }
        self.cache.invalidate(GuestAddr(page), GuestAddr(page + PAGE), false);
        let prot = self.exec.prot_at(GuestAddr(page)).unwrap_or(libc::PROT_READ | libc::PROT_WRITE) & !libc::PROT_EXEC;
        // The guest's own protection of its page.
        sys::calls::protect_guest(GuestRange::sized(page, PAGE), prot | libc::PROT_READ)
    }

    /// The mapping or protection of guest memory `r` changed (after the
    /// executable ranges are updated): translations that read constants
    /// from it go (`constants`).
    pub fn mapping_changed(&mut self, r: GuestRange) {
        crate::constants::exec_changed(&self.exec);
        crate::constants::mappings_changed(r);
        self.cache.invalidate_data(r.start, r.end, self.threads == 1);
    }

    /// Guest code in `r` changed or went away: drop translations.
    pub fn invalidate(&mut self, r: GuestRange) {
        if self.cache.overlaps(r.start, r.end) {
            self.cache.invalidate(r.start, r.end, self.threads == 1);
        }
    }
}

/// Reserve the region the emulated break grows into, right where the kernel
/// would have put the break.
fn reserve_brk(start: u64) -> Result<Brk, ProcessError> {
    let start = page_up(start);
    let mut size = BRK_RESERVE;
    while size >= (64 << 20) {
        // A PROT_NONE NORESERVE region costs nothing until used.
        if sys::calls::reserve(start, size, libc::MAP_NORESERVE, true).is_some() {
            return Ok(Brk { start, cur: start, limit: start + size });
        }
        size /= 2;
    }
    // The space after the program is taken (a PIE placed among other
    // mappings): the break goes wherever there is room, as the kernel's
    // randomized break may too.
    let Some(p) = sys::calls::reserve(start, BRK_RESERVE, libc::MAP_NORESERVE, false) else {
        return Err(ProcessError::Break { near: start });
    };
    let start = p;
    Ok(Brk { start, cur: start, limit: start + BRK_RESERVE })
}

/// The vDSO's mapped range, which the guest executes (translated) too.
fn vdso_range() -> Option<(u64, u64)> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let m = maps.lines().filter_map(crate::procfs::maps_line).find(|m| m.name == "[vdso]")?;
    Some((m.start, m.end))
}

/// The system call behind an entry of the legacy vsyscall page.
fn vsyscall_nr(pc: u64) -> Option<u64> {
    match pc {
        0xffff_ffff_ff60_0000 => Some(libc::SYS_gettimeofday as u64),
        0xffff_ffff_ff60_0400 => Some(libc::SYS_time as u64),
        0xffff_ffff_ff60_0800 => Some(libc::SYS_getcpu as u64),
        _ => None,
    }
}

/// A copy of the guest-executable bytes at `pc`, as many as fit in `buf`
/// and lie in one executable range; a fault if `pc` is not
/// guest-executable (ACCERR if mapped at all, MAPERR if not). The
/// translator reads the copy, so a guest thread that changes or unmaps the
/// code meanwhile cannot make bt-run fault (the write guard then drops the
/// translation).
fn guest_code_at<'b>(sh: &Shared, pc: GuestAddr, buf: &'b mut [u8]) -> Result<&'b [u8], BlockErr> {
    let Some(end) = sh.exec.extent_end(pc) else {
        let mut b = [0u8; 1];
        return Err(BlockErr::Fault(if sys::read_guest(pc, &mut b).is_ok() { 2 } else { 1 }));
    };
    let len = (end.get() - pc.get()).min(buf.len() as u64) as usize;
    // Page by page, up to the first that cannot be read (past the end of a
    // mapped file, or unmapped by another thread meanwhile): the
    // translation then ends there, as it does at the end of the range.
    let mut got = 0;
    while got < len {
        let at = pc.get() + got as u64;
        let n = ((page_down(at) + PAGE - at) as usize).min(len - got);
        if sys::read_guest(GuestAddr(at), &mut buf[got..got + n]).is_err() {
            break;
        }
        got += n;
    }
    if got == 0 {
        return Err(BlockErr::Fault(1));
    }
    Ok(&buf[..got])
}

/// Translate with `translate` and guard the guest code it read; a full
/// cache is flushed and the translation retried, unless other threads may
/// be running cached code (it cannot be thrown away under them).
/// A translation entry point of the cache (`translate` or a variant).
type TranslateFn = fn(&mut CodeCache, GuestAddr, &[u8]) -> Result<(BlockId, CachePc), CacheFull>;

fn install(sh: &mut Shared, pc: GuestAddr, bytes: &[u8], translate: TranslateFn) -> Result<CachePc, BlockErr> {
    let (id, c) = match translate(&mut sh.cache, pc, bytes) {
        Ok(t) => t,
        Err(full) if sh.threads > 1 => {
            return Err(BlockErr::Exit(GuestExit::Fatal(format!("{full} (raise --cache-size)"))));
        }
        Err(_) => {
            sh.cache.flush();
            translate(&mut sh.cache, pc, bytes).map_err(|e| BlockErr::Exit(GuestExit::Fatal(e.to_string())))?
        }
    };
    let glen = sh.cache.block(id).guest_len as u64;
    sh.guard_code(GuestRange::sized(pc.get(), glen.max(1)));
    if let Some(m) = sh.perf_map.as_mut() {
        m.block(&sh.cache, id, Some(bytes));
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::sync::Arc;

    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    use syscall_inline::policy::{Policy, PolicyRule};
    use syscall_inline::{DenyAction, TraceSet};

    use crate::observe::{HookAction, SyscallEvent, SyscallHook};

    const GETPID: u64 = libc::SYS_getpid as u64;
    const GETTID: u64 = libc::SYS_gettid as u64;

    fn inline_set(opts: &Options) -> InlineSyscalls {
        inline_syscalls(&syscall_inline::gate_table_for(&opts.gate_config()))
    }

    #[test]
    fn only_unobserved_answers_are_inlined() {
        let plain = inline_set(&Options::default());
        let answered: Vec<u64> = plain.iter().map(|(nr, _)| nr).collect();
        let ids = [
            libc::SYS_getpid,
            libc::SYS_getuid,
            libc::SYS_getgid,
            libc::SYS_geteuid,
            libc::SYS_getegid,
            libc::SYS_gettid,
        ];
        assert_eq!(answered, ids.map(|n| n as u64));
        assert_eq!(plain.get(GETTID), Some(InlineAnswer::Tid));
        assert_eq!(plain.get(GETPID), Some(InlineAnswer::Table));
        assert!(plain.len() <= InlineSyscalls::MAX_CHECKED);

        assert!(inline_set(&Options { no_inline: true, ..Default::default() }).is_empty());
        assert!(inline_set(&Options { stats: true, ..Default::default() }).is_empty());
        struct Hook;
        impl SyscallHook for Hook {
            fn before(&self, _: &mut SyscallEvent) -> HookAction {
                HookAction::Continue
            }
        }
        let mut o = Options::default();
        o.observers.hook = Some(Arc::new(Hook));
        assert!(inline_set(&o).is_empty(), "a hook sees every call");
        let mut o = Options::default();
        o.observers.trace = Some(TraceSet::parse("getpid").unwrap());
        let s = inline_set(&o);
        assert_eq!(s.get(GETPID), None);
        assert_eq!(s.get(GETTID), Some(InlineAnswer::Tid));
        let mut o = Options::default();
        o.observers.policy = Some(Arc::new(Policy::new(&[PolicyRule::Deny {
            call: syscall_inline::Call::x86_64(GETTID),
            action: DenyAction::Errno(libc::EPERM),
        }])));
        let s = inline_set(&o);
        assert_eq!(s.get(GETTID), None);
        assert_eq!(s.get(GETPID), Some(InlineAnswer::Table));
    }

    /// Translated guest code run in this thread with the real trampolines
    /// and gate: one cache answers syscalls at the site, the other leaves
    /// them all to the gate.
    struct Rig {
        inline: CodeCache,
        gate: CodeCache,
        table: Box<[u8; syscall_inline::GATE_TABLE_LEN]>,
        answers: Box<[u64; syscall_inline::GATE_TABLE_LEN]>,
        ctx: &'static mut GuestContext,
        next_pc: u64,
    }

    /// Where a run stopped: registers, flags, guest pc, exit reason.
    #[derive(Debug, PartialEq, Eq)]
    struct Outcome {
        gpr: [u64; 16],
        rflags: u64,
        rip: u64,
        reason: u64,
    }

    const END: u64 = 0x7000_0000;

    impl Rig {
        fn new() -> Rig {
            let table = syscall_inline::gate_table();
            let set = inline_syscalls(&table);
            assert!(!set.is_empty());
            let inline = TranslateOptions { inline_syscalls: set, ..Default::default() };
            let gate = TranslateOptions::default();
            let ctx = GuestContext::new_boxed().leak();
            sys::install_context(ctx).expect("GS base for this test thread");
            Rig {
                inline: CodeCache::new(8 << 20, None, None, inline).expect("code cache"),
                gate: CodeCache::new(8 << 20, None, None, gate).expect("code cache"),
                table,
                answers: Box::new([0; syscall_inline::GATE_TABLE_LEN]),
                ctx,
                next_pc: 0x1000_0000,
            }
        }

        /// Run `code` (placed at a fresh guest pc; it must end by jumping to
        /// END) from `gpr`/`flags` through `cache`, following direct exits
        /// like the dispatcher, until it reaches END or leaves otherwise.
        fn run(&mut self, inline: bool, pc: u64, code: &[u8], gpr: [u64; 16], flags: u64, tid: u64) -> Outcome {
            let cache = if inline { &mut self.inline } else { &mut self.gate };
            let ctx = &mut *self.ctx;
            ctx.sys_table = self.table.as_ptr() as u64;
            ctx.answers = self.answers.as_ptr() as u64;
            ctx.tid = tid;
            ctx.ibl_table = cache.ibl_table();
            ctx.ibl_probe2 = cache.ibl_probe2();
            ctx.exit_tramp = sys::trampolines::bt_exit_common as *const () as u64;
            ctx.exit_branch = sys::trampolines::bt_exit_branch as *const () as u64;
            ctx.gate_entry = sys::trampolines::bt_gate as *const () as u64;
            ctx.ibl_miss = sys::trampolines::bt_ibl_miss as *const () as u64;
            ctx.guest_fs = ctx.host_fs;
            ctx.signal_pending = 0;
            ctx.gpr = gpr;
            ctx.rflags = flags;
            ctx.rip = pc;
            loop {
                let at = ctx.rip;
                let c = match cache.lookup(GuestAddr(at)) {
                    Some((_, c)) => c,
                    None => {
                        let off = at
                            .checked_sub(pc)
                            .filter(|&o| o < code.len() as u64)
                            .expect("guest pc inside the test code");
                        cache.translate(GuestAddr(at), &code[off as usize..]).expect("room in the test cache").1
                    }
                };
                sys::enter_cache(ctx, c.get());
                if ctx.exit_reason == ExitReason::BranchStub as u64 {
                    ctx.rip = cache.exit_target(ExitId(ctx.exit_id as u32)).expect("the stub's exit").get();
                    ctx.exit_reason = ExitReason::Branch as u64;
                }
                if ctx.exit_reason != ExitReason::Branch as u64 || ctx.rip == END {
                    return Outcome { gpr: ctx.gpr, rflags: ctx.rflags, rip: ctx.rip, reason: ctx.exit_reason };
                }
            }
        }

        /// The same guest code and state through both caches.
        fn both(&mut self, code: &[u8], gpr: [u64; 16], flags: u64, tid: u64) -> (Outcome, Outcome) {
            let pc = self.next_pc;
            self.next_pc += 0x100;
            let gate = self.run(false, pc, code, gpr, flags, tid);
            let inline = self.run(true, pc, code, gpr, flags, tid);
            (gate, inline)
        }
    }

    /// `code` followed by `jmp END`, for guest address `pc`.
    fn with_jmp_end(code: &[u8], pc: u64) -> Vec<u8> {
        let mut v = code.to_vec();
        let after = pc + v.len() as u64 + 5;
        v.push(0xE9);
        v.extend_from_slice(&((END as i64 - after as i64) as i32).to_le_bytes());
        v
    }

    /// Syscall numbers whose gate path is harmless with any arguments:
    /// the in-process answers, and calls the gate forwards or hands to the
    /// runtime without running them here (the test stops at that exit).
    fn numbers() -> impl Strategy<Value = u64> {
        let answered = [39u64, 102, 104, 107, 108, 186];
        prop_oneof![
            4 => proptest::sample::select(answered.to_vec()),
            1 => Just(libc::SYS_getppid as u64),
            1 => Just(libc::SYS_sched_yield as u64),
            1 => Just(libc::SYS_mmap as u64),  // runtime exit
            1 => Just(1000u64),                // ENOSYS from the kernel
            1 => proptest::sample::select(answered.to_vec()).prop_map(|n| n | (1 << 32)), // not these for the gate
        ]
    }

    /// The inline answer leaves exactly the state the gate's answer does
    /// (rax, rcx = next pc, r11 = rflags, every other register, flags, the
    /// exit taken), for constant numbers (`mov eax, imm32; syscall`) and
    /// numbers only known at run time (`syscall` with rax set before).
    #[test]
    fn inline_answers_match_the_gate() {
        if !sys::fsgsbase_available() {
            eprintln!("skipped: no FSGSBASE");
            return;
        }
        let rig = RefCell::new(Rig::new());
        let counts = RefCell::new([0u32; 2]);
        let strategy = (numbers(), any::<[u64; 16]>(), 0u64..0x1000, any::<u64>(), any::<u64>(), any::<bool>());
        let mut runner = TestRunner::new(Config { cases: 256, failure_persistence: None, ..Config::default() });
        runner
            .run(&strategy, |(nr, mut gpr, flag_bits, answer, tid, constant)| {
                let mut rig = rig.borrow_mut();
                let rig = &mut *rig;
                // Arithmetic flags and DF, as the guest may have them; IF and
                // bit 1 are always set in user mode.
                let flags = (flag_bits & 0xCD5) | 0x202;
                if let Some(a) = rig.answers.get_mut((nr & 0x1ff) as usize) {
                    *a = answer;
                }
                let pc = rig.next_pc;
                let body: Vec<u8> = if constant && nr <= u32::MAX as u64 {
                    let mut b = vec![0xB8]; // mov eax, imm32
                    b.extend_from_slice(&(nr as u32).to_le_bytes());
                    b.extend_from_slice(&[0x0F, 0x05]);
                    b
                } else {
                    gpr[reg::RAX] = nr;
                    vec![0x0F, 0x05]
                };
                let code = with_jmp_end(&body, pc);
                let (gate, inline) = rig.both(&code, gpr, flags, tid);
                prop_assert_eq!(&gate, &inline, "nr {:#x}, constant {}", nr, constant);
                let answered = inline_syscalls(&rig.table).get(nr);
                counts.borrow_mut()[usize::from(answered.is_some())] += 1;
                if answered.is_some() {
                    prop_assert_eq!(inline.reason, ExitReason::Branch as u64);
                    prop_assert_eq!(inline.rip, END);
                    let want = if nr == GETTID { tid } else { answer };
                    prop_assert_eq!(inline.gpr[reg::RAX], want);
                    prop_assert_eq!(inline.gpr[reg::RCX], pc + body.len() as u64, "rcx = next guest pc");
                    prop_assert_eq!(inline.gpr[reg::R11], flags, "r11 = rflags");
                    prop_assert_eq!(inline.rflags, flags);
                    for r in (0..16).filter(|&r| ![reg::RAX, reg::RCX, reg::R11].contains(&r)) {
                        prop_assert_eq!(inline.gpr[r], gpr[r], "register {} untouched", r);
                    }
                }
                Ok(())
            })
            .unwrap();
        let [other, answered] = *counts.borrow();
        assert!(answered > 0 && other > 0, "both kinds of calls ran: {answered} answered, {other} not");
    }

    /// With descriptor checks in the gate table, a forwarded call whose
    /// descriptor argument (its low 32 bits, signed, as the kernel reads
    /// it) is at or above `own_fds::FD_FLOOR` goes to the runtime; others
    /// are forwarded as before.
    #[test]
    fn gate_sends_calls_naming_high_descriptors_to_the_runtime() {
        use std::sync::atomic::Ordering;
        if !sys::fsgsbase_available() {
            eprintln!("skipped: no FSGSBASE");
            return;
        }
        let mut rig = Rig::new();
        rig.table = syscall_inline::gate_table_for(&GateConfig { inline: true, fd_check: true, ..Default::default() });
        crate::own_fds::FD_FLOOR.store(5000, Ordering::SeqCst);
        let fcntl = libc::SYS_fcntl as u64;
        // (dup2 and dup3 go to the runtime anyway while the gate answers
        // writes to /dev/null: sendfile is a call with two descriptors.)
        let sendfile = libc::SYS_sendfile as u64;
        let epoll_ctl = libc::SYS_epoll_ctl as u64;
        // (nr, rdi, rsi, rdx, to the runtime?)
        let cases: [(u64, u64, u64, u64, bool); 9] = [
            (fcntl, 4999, libc::F_GETFD as u64, 0, false),
            (fcntl, 5000, libc::F_GETFD as u64, 0, true),
            (fcntl, 70000, libc::F_GETFD as u64, 0, true),
            (fcntl, (-100i64) as u64, libc::F_GETFD as u64, 0, false),
            (fcntl, 0xffff_ffff_0000_1388, libc::F_GETFD as u64, 0, true),
            (fcntl, 0x1388_0000_0000_0fff, libc::F_GETFD as u64, 0, false),
            (sendfile, 4999, 4998, 0, false),
            (sendfile, 4999, 5001, 0, true),
            (epoll_ctl, 4999, 1, 5002, true),
        ];
        for (nr, rdi, rsi, rdx, runtime) in cases {
            let mut gpr = [0u64; 16];
            gpr[reg::RAX] = nr;
            gpr[reg::RDI] = rdi;
            gpr[reg::RSI] = rsi;
            gpr[reg::RDX] = rdx;
            let pc = rig.next_pc;
            rig.next_pc += 0x100;
            let code = with_jmp_end(&[0x0F, 0x05], pc);
            let out = rig.run(false, pc, &code, gpr, 0x202, 1);
            if runtime {
                assert_eq!(
                    out.reason,
                    ExitReason::Syscall as u64,
                    "nr {nr} rdi {rdi:#x} rsi {rsi} rdx {rdx}: to the runtime"
                );
                assert_eq!(out.gpr[reg::RAX], nr, "the call was not made");
            } else {
                assert_eq!(
                    (out.reason, out.rip),
                    (ExitReason::Branch as u64, END),
                    "nr {nr} rdi {rdi:#x} rsi {rsi}: forwarded"
                );
                assert_eq!(
                    out.gpr[reg::RAX] as i64,
                    -(libc::EBADF as i64),
                    "nr {nr} rdi {rdi:#x}: the kernel's answer"
                );
            }
        }
        crate::own_fds::FD_FLOOR.store(i32::MAX, Ordering::SeqCst);
    }
}
