//! The dispatcher: find or translate the block for the guest pc, link the
//! exit that brought us here, run the block, and act on why it came back.
//!
//! It keeps no state across cache executions beyond what is in the
//! `Runtime`: everything about the guest is in its `GuestContext`.

use std::ffi::OsString;
use std::path::PathBuf;

use translator::abi::{ExitReason, GuestContext, reg};
use translator::cache::{CodeCache, ExitId};
use translator::translate::{MAX_BLOCK_INSNS, MAX_INSN_LEN, TranslateOptions};
use translator::{CachePc, GuestAddr};

use crate::loader::LoadedProgram;
use crate::memory::{Brk, ExecMap, PAGE, page_up};
use crate::signals::{self, Signals};
use crate::sys;

/// Options that shape a run (and are passed on to re-executed children).
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub stats: bool,
    pub stats_json: bool,
    pub stats_file: Option<PathBuf>,
    pub far_cache: bool,
    pub no_follow: bool,
    pub cache_size: usize,
    /// Arguments that reproduce these options on a re-executed bt-run.
    pub inherit: Vec<OsString>,
}

/// How a guest run ended, when it did not end the process itself.
#[derive(Debug)]
pub enum GuestExit {
    /// exit_group(status) (or exit of the last thread).
    Exited(i32),
    /// The guest must die by this signal (default action).
    Killed(i32),
    /// An instruction the guest has no SIGILL handler for.
    Illegal { pc: GuestAddr, bytes: Vec<u8> },
    /// bt-run itself cannot continue.
    Fatal(String),
}

/// Counters for `--stats` that are not the cache's own.
#[derive(Copy, Clone, Debug, Default)]
pub struct RunStats {
    pub dispatches: u64,
    pub slow_syscalls: u64,
    pub signals_delivered: u64,
}

pub struct Runtime {
    pub ctx: Box<GuestContext>,
    pub cache: Box<CodeCache>,
    pub exec: ExecMap,
    pub brk: Brk,
    pub signals: Signals,
    pub opts: Options,
    /// The guest program as /proc/self/exe should show it.
    pub exe_path: PathBuf,
    /// bt-run itself, for re-executing on execve.
    pub self_exe: PathBuf,
    pub stats: RunStats,
    pub syscall_counts: Vec<u64>,
    /// Read by the gate through `GuestContext::sys_table`; owned here.
    _sys_table: Box<[u8; syscall_inline::GATE_TABLE_LEN]>,
    /// Host ranges the guest may not map over (cache, tables, brk reserve).
    pub reserved: Vec<(u64, u64)>,
}

/// Size of the region reserved for the emulated break.
const BRK_RESERVE: u64 = 1 << 30;
pub const DEFAULT_CACHE_SIZE: usize = 256 << 20;

impl Runtime {
    pub fn new(prog: &LoadedProgram, opts: Options, exe_path: PathBuf, self_exe: PathBuf) -> Result<Self, String> {
        let brk = reserve_brk(prog.brk_start.get())?;
        let near = if opts.far_cache { None } else { Some(prog.regions.iter().find(|r| r.prot & libc::PROT_EXEC != 0).map_or(prog.entry, |r| r.start)) };
        let cache_size = if opts.cache_size == 0 { DEFAULT_CACHE_SIZE } else { opts.cache_size };
        let topts = TranslateOptions { force_far_riprel: opts.far_cache };
        let mut cache = Box::new(CodeCache::new(cache_size, near, topts).map_err(|e| format!("cannot map the code cache: {e}"))?);
        if opts.far_cache {
            // Make sure "far" really is far for this program.
            let _ = &mut cache;
        }
        let mut exec = ExecMap::default();
        for r in &prog.regions {
            if r.prot & libc::PROT_EXEC != 0 {
                exec.add(r.start.get(), r.end.get());
            }
        }
        if let Some((s, e)) = vdso_range() {
            exec.add(s, e);
        }
        let mut reserved = cache.reserved_ranges();
        reserved.push((brk.start, brk.limit));
        let mut ctx = GuestContext::new_boxed();
        ctx.gpr[reg::RSP] = prog.stack_pointer.get();
        ctx.rip = prog.entry.get();
        ctx.rflags = 0x202;
        let sys_table = syscall_inline::gate_table();
        ctx.sys_table = sys_table.as_ptr() as u64;
        ctx.ibl_table = cache.ibl_table();
        ctx.exit_tramp = sys::trampolines::bt_exit_common as *const () as u64;
        ctx.gate_entry = sys::trampolines::bt_gate as *const () as u64;
        ctx.ibl_entry = sys::trampolines::bt_ibl as *const () as u64;
        ctx.ibl_miss = sys::trampolines::bt_ibl_miss as *const () as u64;
        Ok(Self {
            ctx,
            cache,
            exec,
            brk,
            signals: Signals::new(),
            opts,
            exe_path,
            self_exe,
            stats: RunStats::default(),
            syscall_counts: vec![0; syscall_inline::GATE_TABLE_LEN],
            _sys_table: sys_table,
            reserved,
        })
    }

    /// Run the guest until it exits or must die.
    pub fn run(&mut self) -> GuestExit {
        if let Err(e) = sys::install_context(&mut self.ctx) {
            return GuestExit::Fatal(format!("cannot set up the thread context: {e}"));
        }
        if let Err(e) = sys::install_host_sigaltstack() {
            return GuestExit::Fatal(format!("cannot set up the signal stack: {e}"));
        }
        signals::publish(&mut *self.ctx, &mut *self.cache);
        // The exit that brought us back, and the cache generation it is from.
        let mut link_from: Option<(ExitId, u64)> = None;
        let mut ibl_from = false;
        loop {
            if self.ctx.signal_pending != 0 {
                if let Err(sig) = self.signals.deliver_pending(&mut self.ctx) {
                    return GuestExit::Killed(sig);
                }
                self.stats.signals_delivered += 1;
                link_from = None;
                ibl_from = false;
            }
            let pc = GuestAddr(self.ctx.rip);
            let target = match self.block_for(pc) {
                Ok(t) => t,
                Err(exit) => {
                    if let Some(e) = exit {
                        return e;
                    }
                    continue;
                }
            };
            if let Some((id, generation)) = link_from.take() {
                if generation == self.cache.stats.flushes {
                    self.cache.link(id, target);
                }
            }
            if std::mem::take(&mut ibl_from) {
                self.cache.ibl_insert(pc, target);
            }
            self.stats.dispatches += 1;
            sys::enter_cache(&mut self.ctx, target.get());
            match ExitReason::from_raw(self.ctx.exit_reason) {
                Some(ExitReason::Branch) => link_from = Some((ExitId(self.ctx.exit_id as u32), self.cache.stats.flushes)),
                Some(ExitReason::IndirectMiss) => ibl_from = true,
                Some(ExitReason::Syscall) => {
                    self.stats.slow_syscalls += 1;
                    if let Some(exit) = self.syscall() {
                        return exit;
                    }
                }
                Some(ExitReason::Signal) => {}
                Some(ExitReason::Illegal) => {
                    let pc = GuestAddr(self.ctx.rip);
                    if let Some(e) = self.sync_fault(libc::SIGILL, 2 /* ILL_ILLOPN */, pc.get()) {
                        let mut bytes = vec![0u8; 16];
                        let n = self.exec.extent_end(pc).map_or(0, |e| (e - pc.get()).min(16) as usize);
                        bytes.truncate(n);
                        let _ = sys::read_guest(pc.get(), &mut bytes);
                        let _ = e;
                        return GuestExit::Illegal { pc, bytes };
                    }
                }
                Some(ExitReason::FetchFault) => {
                    let pc = self.ctx.rip;
                    if let Some(e) = self.sync_fault(libc::SIGSEGV, 2 /* SEGV_ACCERR */, pc) {
                        return e;
                    }
                }
                None => return GuestExit::Fatal(format!("unknown exit reason {}", self.ctx.exit_reason)),
            }
        }
    }

    /// Deliver a fault bt-run detected itself to the guest's handler, or
    /// return how the guest dies.
    fn sync_fault(&mut self, sig: i32, code: i32, addr: u64) -> Option<GuestExit> {
        if !self.signals.has_handler(sig) || sys::get_sigmask() & (1u64 << (sig - 1)) != 0 {
            return Some(GuestExit::Killed(sig));
        }
        let info = signals::fault_info(sig, code, addr);
        match self.signals.deliver(&mut self.ctx, sig, &info) {
            Ok(()) => None,
            Err(s) => Some(GuestExit::Killed(s)),
        }
    }

    /// The cache code for guest `pc`, translating it if needed. Err(None)
    /// means the dispatcher should look again (state changed); Err(Some)
    /// ends the run.
    fn block_for(&mut self, pc: GuestAddr) -> Result<CachePc, Option<GuestExit>> {
        if let Some((_, c)) = self.cache.lookup(pc) {
            return Ok(c);
        }
        let len = match self.exec.extent_end(pc) {
            Some(end) => (end - pc.get()).min((MAX_BLOCK_INSNS * MAX_INSN_LEN) as u64) as usize,
            None => {
                // Jump to memory the guest cannot execute: SIGSEGV at pc.
                return Err(self.sync_fault(libc::SIGSEGV, if self.is_mapped(pc.get()) { 2 } else { 1 }, pc.get()));
            }
        };
        // SAFETY: [pc, pc+len) lies in a guest-executable range, which bt-run
        // always maps readable, and nothing unmaps it during translation.
        let bytes = unsafe { sys::guest_code(pc.get(), len) };
        match self.cache.translate(pc, bytes) {
            Ok((_, c)) => Ok(c),
            Err(_full) => {
                self.cache.flush();
                match self.cache.translate(pc, bytes) {
                    Ok((_, c)) => Ok(c),
                    Err(e) => Err(Some(GuestExit::Fatal(e.to_string()))),
                }
            }
        }
    }

    fn is_mapped(&self, addr: u64) -> bool {
        let mut b = [0u8; 1];
        sys::read_guest(addr, &mut b).is_ok()
    }

    /// Guest code in [start, end) changed or went away: drop translations.
    pub fn invalidate(&mut self, start: u64, end: u64) {
        if self.cache.overlaps(GuestAddr(start), GuestAddr(end)) {
            self.cache.flush();
        }
    }

    /// Does [start, end) touch memory bt-run owns?
    pub fn hits_reserved(&self, start: u64, end: u64) -> bool {
        self.reserved.iter().any(|&(s, e)| start < e && s < end)
    }
}

/// Reserve the region the emulated break grows into, right where the kernel
/// would have put the break.
fn reserve_brk(start: u64) -> Result<Brk, String> {
    let start = page_up(start);
    let mut size = BRK_RESERVE;
    while size >= 16 * PAGE {
        // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping; a
        // PROT_NONE NORESERVE region costs nothing until used.
        let p = unsafe {
            libc::mmap(
                start as *mut _,
                size as usize,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_FIXED_NOREPLACE,
                -1,
                0,
            )
        };
        if p != libc::MAP_FAILED {
            return Ok(Brk { start, cur: start, limit: start + size });
        }
        size /= 2;
    }
    Err(format!("cannot reserve the program break at {start:#x}"))
}

/// The vDSO's mapped range, which the guest executes (translated) too.
fn vdso_range() -> Option<(u64, u64)> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let line = maps.lines().find(|l| l.ends_with("[vdso]"))?;
    let range = line.split_whitespace().next()?;
    let (a, b) = range.split_once('-')?;
    Some((u64::from_str_radix(a, 16).ok()?, u64::from_str_radix(b, 16).ok()?))
}
