//! How a process that runs under bt-run looks to a tracer (strace, a test
//! harness, a debugger) that runs under bt-run too.
//!
//! The kernel stops a tracee at every system call it makes, with the
//! registers it has. A tracee under bt-run makes bt-run's calls as well as
//! the guest's, some of the guest's are answered without the kernel, and
//! at each of its stops its registers are partly bt-run's. The tracer's
//! bt-run turns that back into what the tracer would see natively:
//!
//! * **Which stops.** A guest call the gate forwards stops at the gate's
//!   `syscall` (found by its address, which the tracee's context records).
//!   A call the runtime serves is bracketed, while the process is traced,
//!   by two marker calls (a getpid with a kind in rdi, at an address the
//!   context also records): the first marker's entry stop is the call's
//!   entry stop and the second's exit stop its exit stop. Every other
//!   system-call stop of a tracee under bt-run (its start-up, its own
//!   calls, the markers' other stops) is resumed by the tracer's `wait4` /
//!   `waitid` without the tracer seeing it.
//! * **Which registers.** At those stops `PTRACE_GETREGS`, `GETREGSET`
//!   (NT_PRSTATUS), `PEEKUSER` and `PTRACE_GET_SYSCALL_INFO` answer with the
//!   guest's registers, read from the tracee's context (found through its
//!   GS base, checked by `VIEW_MAGIC` and its self pointer): rip, rsp,
//!   rcx, r11, flags, the FS and GS bases, orig_rax and the arguments as
//!   the guest made the call. Writes at those stops (`SETREGS`, `SETREGSET`,
//!   `POKEUSER`) go where the guest's registers live: into the context, or
//!   into the real registers at a forwarded call, so a tracer can change or
//!   skip a call (orig_rax = -1) and its result as natively.
//! * **Knowing it is traced.** A process knows it is traced when it starts
//!   with a tracer (`TracerPid` in /proc/self/status), asks to be
//!   (`PTRACE_TRACEME`), is about to exec with one, or when a tracer under
//!   bt-run attaches (it sets the flag in the tracee's memory). A process
//!   traced from its start answers nothing in-process (every call reaches
//!   the kernel or a marker, so each shows up).
//!
//! * **Debuggers.** Breakpoints (int3 written into guest code), single
//!   steps, the exec stop and /proc/PID/auxv: see docs/design.md, "A
//!   tracer's view", which also lists what is not native.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use translator::GuestAddr;

use syscall_inline::Abi;
use translator::abi::{GuestContext, VIEW_MAGIC, reg};

use crate::dispatch::Thread;
use crate::sys::ptrace::{self as pt, TRACED, UserRegs, ur};
use crate::sys::{self, trampolines::SAFE_NOT_STARTED};
use crate::syscalls::err;

/// Whether this process has used ptrace (its waits go to the runtime).
static TRACER: AtomicBool = AtomicBool::new(false);
/// A traced bt-run started by a guest's execve: its first guest thread
/// shows the execve's exit stop before the program's first instruction.
static EXEC_EXIT: AtomicBool = AtomicBool::new(false);

/// rdi of the marker that stands for a call's entry, and of its exit's.
pub const MARK_ENTRY: u64 = 0x6274_7275_6e00_0001;
pub const MARK_EXIT: u64 = 0x6274_7275_6e00_0002;

/// `view_echo` bit of the SIGTRAP that stands for the exec stop.
const EXEC_POINT: u64 = 1 << 8;
const PTRACE_EVENT_EXEC: i32 = 4;

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
/// The kernel's "restart this call" error, shown when bt-run puts the guest
/// back on its `syscall` to deliver a signal first.
const ERESTARTNOINTR: i64 = 513;
/// Flags a tracer may change (the kernel's FLAG_MASK for user_regs).
const FLAG_MASK: u64 = 0x0004_0dd5 | 0x4000 | 0x20_0000 | 0x100;
const REGS_BYTES: usize = pt::USER_REGS_WORDS * 8;

pub fn is_tracer() -> bool {
    TRACER.load(Ordering::Relaxed)
}

pub fn traced() -> bool {
    TRACED.load(Ordering::Relaxed)
}

/// Does the kernel say this process has a tracer now? Remembered if so.
pub fn check_tracer() -> bool {
    let t = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("TracerPid:").map(|v| v.trim() != "0")))
        .unwrap_or(false);
    if t {
        TRACED.store(true, Ordering::Relaxed);
    }
    t
}

/// At start-up: `by_exec`: this bt-run was started by a guest's execve.
pub fn at_start(by_exec: bool) {
    if check_tracer() && by_exec {
        EXEC_EXIT.store(true, Ordering::Relaxed);
    }
}

/// Ctx field offsets in words.
mod cw {
    use std::mem::offset_of;
    use translator::abi::GuestContext as G;
    pub const GPR: usize = offset_of!(G, gpr) / 8;
    pub const RIP: usize = offset_of!(G, rip) / 8;
    pub const RFLAGS: usize = offset_of!(G, rflags) / 8;
    pub const GUEST_FS: usize = offset_of!(G, guest_fs) / 8;
    pub const GUEST_GS: usize = offset_of!(G, guest_gs) / 8;
    pub const GATE_NEXT: usize = offset_of!(G, gate_next) / 8;
    pub const GATE_FLAGS: usize = offset_of!(G, gate_flags) / 8;
    pub const GATE_RSP: usize = offset_of!(G, gate_rsp) / 8;
    pub const SELF_PTR: usize = offset_of!(G, self_ptr) / 8;
    pub const VIEW_MAGIC: usize = offset_of!(G, view_magic) / 8;
    pub const AFTER_GATE: usize = offset_of!(G, view_after_gate) / 8;
    pub const AFTER_MARKER: usize = offset_of!(G, view_after_marker) / 8;
    pub const VIEW_NR: usize = offset_of!(G, view_nr) / 8;
    pub const VIEW_ARGS: usize = offset_of!(G, view_args) / 8;
    pub const VIEW_ABI: usize = offset_of!(G, view_abi) / 8;
    pub const VIEW_ECHO: usize = offset_of!(G, view_echo) / 8;
    pub const VIEW_STEP: usize = offset_of!(G, view_step) / 8;
}

/// Fill in what a tracer reads from this thread's context.
pub fn prepare(ctx: &mut GuestContext) {
    ctx.view_magic = VIEW_MAGIC;
    ctx.view_after_gate = pt::after_gate();
    ctx.view_after_marker = pt::after_marker();
    ctx.view_nr = u64::MAX;
}

// ---------------------------------------------------------------- tracee

fn arg_regs(abi: Abi) -> [usize; 6] {
    match abi {
        Abi::X86_64 => [reg::RDI, reg::RSI, reg::RDX, reg::R10, reg::R8, reg::R9],
        Abi::I386 => [reg::RBX, reg::RCX, reg::RDX, reg::RSI, reg::RDI, reg::RBP],
    }
}

fn is_exec(abi: Abi, nr: u64) -> bool {
    match abi {
        Abi::X86_64 => nr == libc::SYS_execve as u64 || nr == libc::SYS_execveat as u64,
        Abi::I386 => nr == 11 || nr == 358,
    }
}

fn named(abi: Abi, nr: u64, names: &[&str]) -> bool {
    abi.name(nr).is_some_and(|n| names.contains(&n))
}

impl Thread {
    /// Serve a call through the layer, shown to a tracer as natively if
    /// this process is traced.
    pub(crate) fn layer_viewed(&mut self, abi: Abi, nr: u64, a: [u64; 6]) -> Option<crate::GuestExit> {
        if !(traced() || is_exec(abi, nr) && check_tracer()) {
            return self.layer(abi, nr, a);
        }
        let rip = self.ctx.rip;
        let Some((nr, a)) = self.view_entry(abi, nr, a) else {
            // The tracer skipped the call: rax is what it left there.
            self.view_exit();
            return None;
        };
        let exit = self.layer(abi, nr, a);
        if exit.is_none() {
            let sigreturn = abi == Abi::X86_64 && nr as i64 == libc::SYS_rt_sigreturn;
            let ret = self.ctx.gpr[reg::RAX];
            if !sigreturn && self.ctx.rip == rip.wrapping_sub(2) && ret == nr {
                // Not started: a signal goes first, then the call again.
                self.ctx.gpr[reg::RAX] = (-ERESTARTNOINTR) as u64;
                self.view_exit();
                self.ctx.gpr[reg::RAX] = ret;
            } else if !(ret == 0 && named(abi, nr, &["clone", "clone3", "fork", "vfork"])) {
                // (A new child's return from fork is no stop natively.)
                self.view_exit();
            }
            if self.ctx.view_step != 0 {
                // Single-stepped from the call's entry stop.
                return self.tracer_step_trap();
            }
        }
        exit
    }

    /// The entry stop of call `nr`: the tracer may change the call (its
    /// number and argument registers) or skip it (None; rax holds the
    /// result it left).
    fn view_entry(&mut self, abi: Abi, nr: u64, a: [u64; 6]) -> Option<(u64, [u64; 6])> {
        let rax = self.ctx.gpr[reg::RAX];
        self.ctx.view_nr = nr;
        self.ctx.view_args = a;
        self.ctx.view_abi = (abi == Abi::I386) as u64;
        self.ctx.gpr[reg::RAX] = err(libc::ENOSYS) as u64;
        pt::marker(MARK_ENTRY, &mut self.ctx);
        let new_nr = match abi {
            Abi::X86_64 => self.ctx.view_nr,
            Abi::I386 => self.ctx.view_nr & 0xffff_ffff,
        };
        if self.ctx.view_nr == u64::MAX || (abi == Abi::I386 && new_nr == 0xffff_ffff) {
            return None;
        }
        self.ctx.gpr[reg::RAX] = if new_nr == nr { rax } else { new_nr };
        let mask = if abi == Abi::I386 { 0xffff_ffff } else { u64::MAX };
        Some((new_nr, arg_regs(abi).map(|r| self.ctx.gpr[r] & mask)))
    }

    /// The exit stop of the call `view_entry` showed (rax is its result).
    fn view_exit(&mut self) {
        pt::marker(MARK_EXIT, &mut self.ctx);
        self.ctx.view_nr = u64::MAX;
    }

    /// In a traced bt-run started by a guest's execve: the execve's exit
    /// stop, before the program's first instruction.
    pub(crate) fn view_exec_exit(&mut self) {
        if EXEC_EXIT.swap(false, Ordering::Relaxed) {
            // The exec stop the kernel made at bt-run's start is held back
            // by the tracer's bt-run and shown here instead, where the
            // program is loaded as the kernel would have loaded it.
            let info =
                crate::sys::frame::SigInfo::new(libc::SIGTRAP, libc::SIGTRAP | PTRACE_EVENT_EXEC << 8).to_bytes();
            self.ctx.view_echo = EXEC_POINT | libc::SIGTRAP as u64;
            sys::echo_signal(libc::SIGTRAP, &info, &mut self.ctx);
            self.ctx.view_echo = 0;
            self.ctx.view_nr = libc::SYS_execve as u64;
            self.ctx.view_abi = 0;
            self.ctx.gpr[reg::RAX] = 0;
            self.view_exit();
        }
    }
}

impl Thread {
    /// A signal bt-run delivers to the guest without the kernel (a fault
    /// it found itself): raised for real first, so that a tracer gets the
    /// signal-delivery stop it would natively (with the guest's registers
    /// and this siginfo). False if the tracer suppressed or replaced it.
    pub(crate) fn echo(&mut self, sig: i32, info: &[u8; 128]) -> bool {
        self.ctx.view_echo = sig as u64;
        sys::echo_signal(sig, info, &mut self.ctx);
        let delivered = self.ctx.view_echo == 0;
        self.ctx.view_echo = 0;
        delivered
    }
}

/// The siginfo of the signal the guest is about to die by, if bt-run
/// found the fault itself (for `sys::die_by_signal_info`).
static FATAL_INFO: Mutex<Option<(i32, [u8; 128])>> = Mutex::new(None);

pub fn set_fatal_info(sig: i32, info: &[u8; 128]) {
    *FATAL_INFO.lock().unwrap_or_else(|e| e.into_inner()) = Some((sig, *info));
}

pub fn take_fatal_info(sig: i32) -> Option<[u8; 128]> {
    FATAL_INFO.lock().unwrap_or_else(|e| e.into_inner()).take().filter(|(s, _)| *s == sig).map(|(_, i)| i)
}

// ---------------------------------------------------------------- tracer

/// A tracee's context as read by its tracer: the words before the XSAVE
/// image, and where they are.
struct Ctx {
    addr: u64,
    w: [u64; pt::CTX_WORDS],
}

impl Ctx {
    fn gpr(&self, r: usize) -> u64 {
        self.w[cw::GPR + r]
    }

    fn write(&self, pid: i32, word: usize, v: u64) -> Result<(), i32> {
        pt::write_mem(pid, self.addr + 8 * word as u64, &v.to_le_bytes())
    }
}

/// What a stop of a tracee is.
enum Stop {
    /// The tracee does not run under bt-run: as the kernel reports it.
    Native,
    /// bt-run's own: its start-up, a call it makes for itself, a marker's
    /// other stop, or a stop outside system calls (signal, event, group).
    Internal(Option<Ctx>),
    /// A guest call the gate forwards.
    Gate(Ctx),
    /// The entry of a call the runtime serves.
    Entry(Ctx),
    /// Its exit.
    Exit(Ctx),
}

struct Seen {
    pid: i32,
    regs: UserRegs,
    op: u8,
    stop: Stop,
}

fn read_ctx(pid: i32, gs: u64) -> Option<Ctx> {
    if gs == 0 || !gs.is_multiple_of(8) {
        return None;
    }
    let mut b = [0u8; pt::CTX_WORDS * 8];
    pt::read_mem(pid, gs, &mut b).ok()?;
    let mut w = [0u64; pt::CTX_WORDS];
    for (i, c) in b.chunks_exact(8).enumerate() {
        w[i] = u64::from_le_bytes(c.try_into().unwrap_or_default());
    }
    (w[cw::VIEW_MAGIC] == VIEW_MAGIC && w[cw::SELF_PTR] == gs).then_some(Ctx { addr: gs, w })
}

/// Is process `pid` running bt-run (`self_exe` mapped executable)? Read
/// from its mappings, which name the files really mapped whatever it says
/// its executable is.
pub fn runs_bt_run(pid: i32, self_exe: &Path) -> bool {
    pid > 0 && exe_base(pid, self_exe).is_some()
}

/// Start of `self_exe`'s first mapping in process `pid` (0 for this one).
fn exe_base(pid: i32, self_exe: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let maps =
        if pid == 0 { std::fs::read("/proc/self/maps") } else { std::fs::read(format!("/proc/{pid}/maps")) }.ok()?;
    let me = self_exe.as_os_str().as_bytes();
    maps.split(|&b| b == b'\n').find_map(|l| {
        let l = l.strip_suffix(b" (deleted)").unwrap_or(l);
        if !l.ends_with(me) || l.len() <= me.len() || l[l.len() - me.len() - 1] != b' ' {
            return None;
        }
        let s = std::str::from_utf8(l).ok()?;
        let mut f = s.split_whitespace();
        let range = f.next()?;
        let (_, offset) = (f.next()?, f.next()?);
        (u64::from_str_radix(offset, 16).ok()? == 0).then(|| u64::from_str_radix(range.split('-').next()?, 16).ok())?
    })
}

/// Where this process's static at `local` is in bt-run process `pid` (the
/// same executable: the same offset from its start).
fn remote_addr(pid: i32, local: u64, self_exe: &Path) -> Option<u64> {
    let (mine, theirs) = (exe_base(0, self_exe)?, exe_base(pid, self_exe)?);
    Some(local.wrapping_sub(mine).wrapping_add(theirs))
}

fn look(pid: i32, self_exe: &Path) -> Result<Seen, i32> {
    let regs = pt::get_regs(pid)?;
    let op = pt::syscall_info(pid).map_or(pt::OP_NONE, |(b, _)| b[0]);
    let stop = match read_ctx(pid, regs[ur::GS_BASE]) {
        Some(c) => {
            let rip = regs[ur::RIP];
            if rip == c.w[cw::AFTER_GATE] {
                Stop::Gate(c)
            } else if rip == c.w[cw::AFTER_MARKER] && op == pt::OP_ENTRY && regs[ur::RDI] == MARK_ENTRY {
                Stop::Entry(c)
            } else if rip == c.w[cw::AFTER_MARKER] && op == pt::OP_EXIT && regs[ur::RDI] == MARK_EXIT {
                Stop::Exit(c)
            } else {
                Stop::Internal(Some(c))
            }
        }
        None if runs_bt_run(pid, self_exe) => Stop::Internal(None),
        None => Stop::Native,
    };
    Ok(Seen { pid, regs, op, stop })
}

/// The registers the tracer is shown.
fn view_regs(s: &Seen) -> UserRegs {
    let mut r = s.regs;
    match &s.stop {
        Stop::Native | Stop::Internal(None) => {}
        Stop::Gate(c) => {
            let next = c.w[cw::GATE_NEXT];
            let flags = c.w[cw::GATE_FLAGS];
            r[ur::RIP] = next;
            r[ur::RCX] = next;
            r[ur::R11] = flags;
            r[ur::EFLAGS] = flags;
            r[ur::RSP] = c.w[cw::GATE_RSP];
            r[ur::GS_BASE] = c.w[cw::GUEST_GS];
        }
        Stop::Entry(c) | Stop::Exit(c) | Stop::Internal(Some(c)) => {
            for (i, &u) in ur::OF_GPR.iter().enumerate() {
                r[u] = c.gpr(i);
            }
            r[ur::RIP] = c.w[cw::RIP];
            r[ur::EFLAGS] = c.w[cw::RFLAGS];
            r[ur::FS_BASE] = c.w[cw::GUEST_FS];
            r[ur::GS_BASE] = c.w[cw::GUEST_GS];
            r[ur::ORIG_RAX] = c.w[cw::VIEW_NR];
        }
    }
    r
}

/// The `ptrace_syscall_info` the tracer is shown (`n`: its size).
fn view_info(s: &Seen, b: &mut [u8; pt::SYSCALL_INFO_SIZE], n: &mut usize) {
    let put = |b: &mut [u8; pt::SYSCALL_INFO_SIZE], at: usize, v: u64| b[at..at + 8].copy_from_slice(&v.to_le_bytes());
    match &s.stop {
        Stop::Native | Stop::Internal(None) => {}
        Stop::Gate(c) => {
            put(b, 8, c.w[cw::GATE_NEXT]);
            put(b, 16, c.w[cw::GATE_RSP]);
        }
        Stop::Internal(Some(c)) => {
            put(b, 8, c.w[cw::RIP]);
            put(b, 16, c.gpr(reg::RSP));
        }
        Stop::Entry(c) | Stop::Exit(c) => {
            let arch = if c.w[cw::VIEW_ABI] == 1 { AUDIT_ARCH_I386 } else { AUDIT_ARCH_X86_64 };
            b[4..8].copy_from_slice(&arch.to_le_bytes());
            put(b, 8, c.w[cw::RIP]);
            put(b, 16, c.gpr(reg::RSP));
            if let Stop::Entry(_) = s.stop {
                b[0] = pt::OP_ENTRY;
                put(b, 24, c.w[cw::VIEW_NR]);
                for i in 0..6 {
                    put(b, 32 + 8 * i, c.w[cw::VIEW_ARGS + i]);
                }
                *n = 80;
            } else {
                let rval = c.gpr(reg::RAX);
                b[0] = pt::OP_EXIT;
                put(b, 24, rval);
                b[32] = (-4095..0).contains(&(rval as i64)) as u8;
                b[33..].fill(0);
                *n = 33;
            }
        }
    }
}

/// Apply the registers a tracer set (`new`, against the `view` it was
/// shown) where the guest's registers live.
fn apply(s: &Seen, view: &UserRegs, new: &UserRegs) -> Result<(), i32> {
    let changed = |i: usize| new[i] != view[i];
    if new == view && !matches!(s.stop, Stop::Native) {
        // Written back unchanged (debuggers do): nothing to do anywhere.
        return Ok(());
    }
    match &s.stop {
        Stop::Native => pt::set_regs(s.pid, new),
        // Outside a system call orig_rax only says whether the interrupted
        // call restarts, and the guest has none in progress there: setting
        // it (debuggers set -1) changes nothing. Anything else would write
        // into bt-run's own registers.
        Stop::Internal(Some(c)) if c.w[cw::VIEW_ECHO] != 0 => write_ctx(s.pid, c, view, new),
        Stop::Internal(_) if (0..pt::USER_REGS_WORDS).all(|i| i == ur::ORIG_RAX || !changed(i)) => Ok(()),
        Stop::Internal(_) => Err(libc::EIO),
        Stop::Gate(c) => {
            // The call is made with the real registers: all but those
            // bt-run's gate holds for the guest go straight there.
            if changed(ur::RIP) {
                return Err(libc::EIO);
            }
            let mut real = *new;
            for i in [ur::RIP, ur::RCX, ur::R11, ur::EFLAGS, ur::RSP, ur::GS_BASE] {
                real[i] = s.regs[i];
            }
            pt::set_regs(s.pid, &real)?;
            if changed(ur::RSP) {
                c.write(s.pid, cw::GATE_RSP, new[ur::RSP])?;
            }
            if changed(ur::EFLAGS) {
                c.write(s.pid, cw::GATE_FLAGS, (view[ur::EFLAGS] & !FLAG_MASK) | (new[ur::EFLAGS] & FLAG_MASK))?;
            }
            if changed(ur::GS_BASE) {
                c.write(s.pid, cw::GUEST_GS, new[ur::GS_BASE])?;
            }
            Ok(())
        }
        Stop::Entry(c) | Stop::Exit(c) => write_ctx(s.pid, c, view, new),
    }
}

/// Where the tracee's guest registers live while it is in the runtime (at
/// a marker's stop, or stopped in a signal bt-run raised for its tracer):
/// write the changed ones there.
fn write_ctx(pid: i32, c: &Ctx, view: &UserRegs, new: &UserRegs) -> Result<(), i32> {
    let changed = |i: usize| new[i] != view[i];
    // Segment selectors are not the guest's to change here.
    if [17, 20, 23, 24, 25, 26].iter().any(|&i| changed(i)) {
        return Err(libc::EIO);
    }
    for (r, &u) in ur::OF_GPR.iter().enumerate() {
        if changed(u) {
            c.write(pid, cw::GPR + r, new[u])?;
        }
    }
    let fields =
        [(ur::RIP, cw::RIP), (ur::ORIG_RAX, cw::VIEW_NR), (ur::FS_BASE, cw::GUEST_FS), (ur::GS_BASE, cw::GUEST_GS)];
    for (u, w) in fields {
        if changed(u) {
            c.write(pid, w, new[u])?;
        }
    }
    if changed(ur::EFLAGS) {
        c.write(pid, cw::RFLAGS, (view[ur::EFLAGS] & !FLAG_MASK) | (new[ur::EFLAGS] & FLAG_MASK))?;
    }
    Ok(())
}

fn regs_bytes(r: &UserRegs) -> [u8; REGS_BYTES] {
    let mut b = [0u8; REGS_BYTES];
    for (i, v) in r.iter().enumerate() {
        b[8 * i..8 * i + 8].copy_from_slice(&v.to_le_bytes());
    }
    b
}

fn regs_from(b: &[u8; REGS_BYTES]) -> UserRegs {
    let mut r = [0u64; pt::USER_REGS_WORDS];
    for (i, c) in b.chunks_exact(8).enumerate() {
        r[i] = u64::from_le_bytes(c.try_into().unwrap_or_default());
    }
    r
}

fn status(r: Result<(), i32>) -> i64 {
    r.map_or_else(err, |()| 0)
}

/// A tracer's ptrace request: Some(result) when it reads or writes the
/// registers of a tracee under bt-run (answered from the guest's view),
/// None when the kernel's own answer is the native one.
pub fn request(a: [u64; 6], self_exe: &Path) -> Option<i64> {
    let (req, pid, addr, data) = (a[0], a[1] as i32, a[2], a[3]);
    let regs_word = addr % 8 == 0 && addr < REGS_BYTES as u64;
    match req {
        pt::PTRACE_GETREGS | pt::PTRACE_SETREGS | pt::PTRACE_GET_SYSCALL_INFO => {}
        pt::PTRACE_PEEKUSER | pt::PTRACE_POKEUSER if regs_word => {}
        pt::PTRACE_GETREGSET | pt::PTRACE_SETREGSET if addr == pt::NT_PRSTATUS => {}
        _ => return None,
    }
    // Not stopped, not ours: the kernel's error is the native one.
    let seen = look(pid, self_exe).ok()?;
    if matches!(seen.stop, Stop::Native) {
        return None;
    }
    let view = view_regs(&seen);
    let iov = || -> Result<(u64, usize), i32> {
        Ok((
            sys::read_guest_u64(GuestAddr(data))?,
            sys::read_guest_u64(GuestAddr(data + 8))?.min(REGS_BYTES as u64) as usize,
        ))
    };
    Some(match req {
        pt::PTRACE_GETREGS => status(sys::write_guest(GuestAddr(data), &regs_bytes(&view))),
        pt::PTRACE_PEEKUSER => status(sys::write_guest(GuestAddr(data), &view[addr as usize / 8].to_le_bytes())),
        pt::PTRACE_GETREGSET => status(iov().and_then(|(base, len)| {
            sys::write_guest(GuestAddr(base), &regs_bytes(&view)[..len])?;
            sys::write_guest(GuestAddr(data + 8), &(len as u64).to_le_bytes())
        })),
        pt::PTRACE_GET_SYSCALL_INFO => match pt::syscall_info(pid) {
            Ok((mut b, mut n)) => {
                view_info(&seen, &mut b, &mut n);
                let copy = n.min(addr as usize);
                match sys::write_guest(GuestAddr(data), &b[..copy]) {
                    Ok(()) => n as i64,
                    Err(e) => err(e),
                }
            }
            Err(e) => err(e),
        },
        pt::PTRACE_SETREGS => {
            let mut b = [0u8; REGS_BYTES];
            status(sys::read_guest(GuestAddr(data), &mut b).and_then(|()| apply(&seen, &view, &regs_from(&b))))
        }
        pt::PTRACE_SETREGSET => status(iov().and_then(|(base, len)| {
            let mut b = regs_bytes(&view);
            sys::read_guest(GuestAddr(base), &mut b[..len])?;
            apply(&seen, &view, &regs_from(&b))
        })),
        pt::PTRACE_POKEUSER => {
            let mut new = view;
            new[addr as usize / 8] = data;
            status(apply(&seen, &view, &new))
        }
        _ => return None,
    })
}

/// Whether this tracer has single-stepped a tracee under bt-run (from
/// then on its other resume requests clear the step request).
static STEPPED: AtomicBool = AtomicBool::new(false);

/// A request that resumes a stopped tracee, for a tracee under bt-run:
/// PTRACE_SINGLESTEP becomes a step request in its context (the
/// dispatcher steps the guest, not bt-run) and a PTRACE_CONT; other
/// resumes clear a step request a signal stop may have left. Some(result)
/// when answered here.
pub fn resume(a: [u64; 6], self_exe: &Path) -> Option<i64> {
    const PTRACE_CONT: u64 = 7;
    const PTRACE_SINGLESTEP: u64 = 9;
    let (req, pid) = (a[0], a[1] as i32);
    if req != PTRACE_SINGLESTEP && !STEPPED.load(Ordering::Relaxed) {
        return None;
    }
    let seen = look(pid, self_exe).ok()?;
    let c = match &seen.stop {
        Stop::Native => return None,
        Stop::Entry(c) | Stop::Exit(c) => c,
        Stop::Internal(Some(c)) if c.w[cw::VIEW_ECHO] != 0 => c,
        // In bt-run's own code or in translated code: stepping there would
        // step bt-run; nothing to clear either.
        _ if req == PTRACE_SINGLESTEP => return Some(err(libc::EIO)),
        _ => return None,
    };
    let step = (req == PTRACE_SINGLESTEP) as u64;
    if c.w[cw::VIEW_STEP] != step
        && let Err(e) = c.write(pid, cw::VIEW_STEP, step)
    {
        return Some(err(e));
    }
    if req != PTRACE_SINGLESTEP {
        return None;
    }
    STEPPED.store(true, Ordering::Relaxed);
    // SAFETY: resumes another process, as the guest asked.
    Some(sys::forward(libc::SYS_ptrace as u64, [PTRACE_CONT, a[1], 0, a[3], 0, 0]))
}

/// Invalidation requests a tracer under bt-run leaves in a tracee under
/// bt-run after writing into its memory (a debugger's breakpoint): ranges
/// in a ring, and the number written so far. The tracee's dispatcher
/// drops the translations of each range before it runs guest code again.
pub struct Invalidations {
    pub written: std::sync::atomic::AtomicU64,
    pub ranges: [[std::sync::atomic::AtomicU64; 2]; INVAL_SLOTS],
}
pub const INVAL_SLOTS: usize = 16;
pub static INVALIDATIONS: Invalidations = Invalidations {
    written: std::sync::atomic::AtomicU64::new(0),
    ranges: [const { [const { std::sync::atomic::AtomicU64::new(0) }; 2] }; INVAL_SLOTS],
};
/// How many of `INVALIDATIONS` this process has carried out.
static INVAL_DONE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Has a tracer written into this process's memory since the last
/// `take_invalidations`?
pub fn invalidations_pending() -> bool {
    INVALIDATIONS.written.load(Ordering::Relaxed) != INVAL_DONE.load(Ordering::Relaxed)
}

/// The guest ranges a tracer wrote since the last call (None: more than
/// the ring holds: everything).
pub fn take_invalidations() -> Option<Vec<(u64, u64)>> {
    let written = INVALIDATIONS.written.load(Ordering::Acquire);
    let done = INVAL_DONE.swap(written, Ordering::AcqRel);
    if written == done {
        return Some(Vec::new());
    }
    if written - done > INVAL_SLOTS as u64 {
        return None;
    }
    Some(
        (done..written)
            .map(|i| {
                let r = &INVALIDATIONS.ranges[i as usize % INVAL_SLOTS];
                (r[0].load(Ordering::Relaxed), r[1].load(Ordering::Relaxed))
            })
            .collect(),
    )
}

/// After this tracer wrote `len` bytes at `addr` in process `pid`: if
/// that runs bt-run, ask it to drop translations of that code.
pub fn wrote_memory(pid: i32, addr: u64, len: u64, self_exe: &Path) {
    let Some(written) = remote_addr(pid, &INVALIDATIONS.written as *const _ as u64, self_exe) else { return };
    let remote = |p: *const std::sync::atomic::AtomicU64| {
        (p as u64).wrapping_sub(&INVALIDATIONS.written as *const _ as u64).wrapping_add(written)
    };
    let mut w = [0u8; 8];
    if pt::read_mem(pid, written, &mut w).is_err() {
        return;
    }
    let n = u64::from_le_bytes(w);
    let slot = &INVALIDATIONS.ranges[n as usize % INVAL_SLOTS];
    let _ = pt::write_mem(pid, remote(&slot[0]), &addr.to_le_bytes());
    let _ = pt::write_mem(pid, remote(&slot[1]), &addr.saturating_add(len).to_le_bytes());
    let _ = pt::write_mem(pid, written, &(n + 1).to_le_bytes());
}

/// pwrite64 in a tracer: a write through /proc/PID/mem (how debuggers
/// write a tracee's memory) into a tracee under bt-run is followed by
/// `wrote_memory`.
pub fn pwrite64(a: [u64; 6], self_exe: &Path) -> i64 {
    // SAFETY: the guest's call, as the gate would make it.
    let r = sys::forward_guest_call(libc::SYS_pwrite64 as u64, a);
    if r > 0
        && let Some(pid) = mem_file_pid(a[0] as i32)
    {
        wrote_memory(pid, a[3], r as u64, self_exe);
    }
    r
}

/// The process whose memory descriptor `fd` is (/proc/PID/mem or
/// /proc/PID/task/TID/mem).
fn mem_file_pid(fd: i32) -> Option<i32> {
    let target = std::fs::read_link(format!("/proc/self/fd/{fd}")).ok()?;
    let s = target.to_str()?.strip_prefix("/proc/")?.strip_suffix("/mem")?;
    s.split('/').next()?.parse().ok()
}

/// Where this process's guest auxv is (address, bytes), for other bt-run
/// processes that open /proc/PID/auxv of this one (a debugger finds the
/// program's and its interpreter's addresses there).
static GUEST_AUXV: [std::sync::atomic::AtomicU64; 2] = [const { std::sync::atomic::AtomicU64::new(0) }; 2];

pub fn publish_auxv((addr, len): (u64, u64)) {
    GUEST_AUXV[0].store(addr, Ordering::Relaxed);
    GUEST_AUXV[1].store(len, Ordering::Relaxed);
}

/// The guest auxv of bt-run process `pid` (read from its memory).
pub fn other_auxv(pid: i32, self_exe: &Path) -> Option<Vec<u8>> {
    let mut w = [0u8; 16];
    pt::read_mem(pid, remote_addr(pid, GUEST_AUXV.as_ptr() as u64, self_exe)?, &mut w).ok()?;
    let addr = u64::from_le_bytes(w[..8].try_into().ok()?);
    let len = u64::from_le_bytes(w[8..].try_into().ok()?);
    if addr == 0 || len == 0 || len > 4096 {
        return None;
    }
    let mut b = vec![0u8; len as usize];
    pt::read_mem(pid, addr, &mut b).ok()?;
    Some(b)
}

/// After a successful PTRACE_ATTACH or PTRACE_SEIZE of `pid`: if it runs
/// bt-run, tell it it is traced (its flag, at the same offset from its
/// executable's start as ours).
pub fn attached(pid: i32, self_exe: &Path) {
    if let Some(at) = remote_addr(pid, &TRACED as *const AtomicBool as u64, self_exe) {
        let _ = pt::write_mem(pid, at, &[1]);
    }
}

/// At this process's first ptrace request.
pub fn became_tracer() {
    TRACER.store(true, Ordering::Relaxed);
}

/// After PTRACE_TRACEME succeeded.
pub fn traced_by_parent() {
    TRACED.store(true, Ordering::Relaxed);
}

/// Exec stops held back (tid, wait status) until the new bt-run has
/// loaded the program.
static HELD_EXEC: Mutex<Vec<(i32, i32)>> = Mutex::new(Vec::new());

fn held_exec() -> std::sync::MutexGuard<'static, Vec<(i32, i32)>> {
    HELD_EXEC.lock().unwrap_or_else(|e| e.into_inner())
}

/// The tracees (by tid) this tracer has been shown a call's entry stop
/// for and not yet its exit stop.
static IN_CALL: Mutex<Vec<i32>> = Mutex::new(Vec::new());

fn in_call() -> std::sync::MutexGuard<'static, Vec<i32>> {
    IN_CALL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Is wait status `st` of `pid` a system-call stop the tracer must not
/// see? If so the tracee is resumed to its next one.
///
/// Stops alternate as natively: an exit stop is shown only after the
/// entry stop it belongs to. That also keeps out the exit stop of the
/// `rt_sigreturn` of a host signal handler that interrupted a tracee just
/// after the gate's or a marker's `syscall`, which lands at that address.
fn hidden(pid: i32, st: &mut i32, self_exe: &Path) -> bool {
    let stopped = *st & 0xff == 0x7f;
    if !stopped {
        // Exited or killed: no call of its stays open, no exec stop held.
        in_call().retain(|&t| t != pid);
        held_exec().retain(|&(t, _)| t != pid);
        return false;
    }
    if (*st >> 8) & 0x7f != libc::SIGTRAP {
        return false;
    }
    let Ok(seen) = look(pid, self_exe) else { return false };
    let exec_event = *st >> 16 == PTRACE_EVENT_EXEC;
    if let Stop::Internal(None) = seen.stop
        && (exec_event || (*st >> 16 == 0 && seen.op == pt::OP_NONE))
    {
        // The exec stop (PTRACE_EVENT_EXEC, or the SIGTRAP after an
        // exec) of a new bt-run: held until the program is loaded.
        held_exec().push((pid, *st));
        return pt::resume(pid).is_ok();
    }
    if let Stop::Internal(Some(c)) = &seen.stop
        && c.w[cw::VIEW_ECHO] & EXEC_POINT != 0
        && seen.op == pt::OP_NONE
    {
        let mut held = held_exec();
        return match held.iter().position(|&(t, _)| t == pid) {
            Some(i) => {
                *st = held.swap_remove(i).1;
                false
            }
            None => pt::resume(pid).is_ok(),
        };
    }
    if *st >> 16 != 0 {
        return false;
    }
    let hide = match (&seen.stop, seen.op) {
        (Stop::Native, _) | (_, pt::OP_NONE) => false,
        (Stop::Internal(_), _) => true,
        (_, pt::OP_ENTRY) => {
            let mut open = in_call();
            if !open.contains(&pid) {
                open.push(pid);
            }
            false
        }
        (_, pt::OP_EXIT) => {
            let mut open = in_call();
            let shown = open.contains(&pid);
            open.retain(|&t| t != pid);
            !shown
        }
        _ => false,
    };
    hide && pt::resume_to_syscall(pid).is_ok()
}

/// wait4 for a guest that may trace processes under bt-run.
pub fn wait4(a: [u64; 6], self_exe: &Path) -> i64 {
    loop {
        // The guest's call, with our status word instead of its pointer.
        let (r, mut st) = sys::calls::wait4_status(a[0], a[2], a[3]);
        if r == SAFE_NOT_STARTED || r < 0 {
            return r;
        }
        if r == 0 {
            // WNOHANG and nothing to report: the status is left alone.
            return 0;
        }
        if hidden(r as i32, &mut st, self_exe) {
            continue;
        }
        if a[1] != 0 && sys::write_guest(GuestAddr(a[1]), &st.to_le_bytes()).is_err() {
            return err(libc::EFAULT);
        }
        return r;
    }
}

/// waitid, likewise.
pub fn waitid(a: [u64; 6], self_exe: &Path) -> i64 {
    const CLD_TRAPPED: i32 = 4;
    loop {
        // The guest's call, with our siginfo buffer.
        let (r, info) = sys::calls::waitid_info(a[0], a[1], a[3], a[4]);
        if r == SAFE_NOT_STARTED || r < 0 {
            return r;
        }
        let word = |at: usize| i32::from_le_bytes(info[at..at + 4].try_into().unwrap_or_default());
        let (code, pid, sig) = (word(8), word(16), word(24));
        if code == CLD_TRAPPED && pid > 0 {
            // waitid reports a ptrace event stop's status without the event.
            let mut st = (sig << 8) | 0x7f;
            if hidden(pid, &mut st, self_exe) {
                continue;
            }
        }
        if a[2] != 0 && sys::write_guest(GuestAddr(a[2]), &info).is_err() {
            return err(libc::EFAULT);
        }
        return r;
    }
}
