//! Raw access to a process this one traces (its registers, the kernel's
//! description of its system-call stop, its memory) and the marker call a
//! traced bt-run makes so its tracer can see the calls bt-run serves. The
//! policy built on these lives in `crate::ptrace_view`.

use std::sync::atomic::AtomicBool;

use translator::abi::GuestContext;

/// Whether this process has (or may have) a tracer: markers are made, and
/// the gate leaves the calls it would answer itself to the runtime, which
/// shows them to the tracer (a tracer under bt-run sets it in its tracee's
/// memory, see `crate::ptrace_view`).
pub static TRACED: AtomicBool = AtomicBool::new(false);

pub const PTRACE_PEEKUSER: u64 = 3;
pub const PTRACE_POKEUSER: u64 = 6;
pub const PTRACE_GETREGS: u64 = 12;
pub const PTRACE_SETREGS: u64 = 13;
pub const PTRACE_ATTACH: u64 = 16;
pub const PTRACE_SYSCALL: u64 = 24;
pub const PTRACE_GETREGSET: u64 = 0x4204;
pub const PTRACE_SETREGSET: u64 = 0x4205;
pub const PTRACE_SEIZE: u64 = 0x4206;
pub const PTRACE_GET_SYSCALL_INFO: u64 = 0x420e;
pub const NT_PRSTATUS: u64 = 1;

/// `struct user_regs_struct`, as PTRACE_GETREGS fills it.
pub type UserRegs = [u64; USER_REGS_WORDS];
pub const USER_REGS_WORDS: usize = 27;

/// Word indices in `UserRegs`.
pub mod ur {
    pub const R11: usize = 6;
    pub const RAX: usize = 10;
    pub const RCX: usize = 11;
    pub const RDI: usize = 14;
    pub const ORIG_RAX: usize = 15;
    pub const RIP: usize = 16;
    pub const EFLAGS: usize = 18;
    pub const RSP: usize = 19;
    pub const FS_BASE: usize = 21;
    pub const GS_BASE: usize = 22;
    /// The `UserRegs` index of each general-purpose register in hardware
    /// order (rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8 .. r15).
    pub const OF_GPR: [usize; 16] = [10, 11, 12, 5, 19, 4, 13, 14, 9, 8, 7, 6, 3, 2, 1, 0];
}

/// `struct ptrace_syscall_info`: op, arch, instruction and stack pointer,
/// then the entry (nr, args) or exit (rval, is_error) part.
pub const SYSCALL_INFO_SIZE: usize = 88;
pub const OP_NONE: u8 = 0;
pub const OP_ENTRY: u8 = 1;
pub const OP_EXIT: u8 = 2;

fn ptrace(req: u64, pid: i32, addr: u64, data: u64) -> i64 {
    // SAFETY: the requests this module makes read or write another
    // process's registers or memory, or this process's buffers passed as
    // `data`, which the callers size as the request needs.
    unsafe { syscall_inline::raw::syscall6(libc::SYS_ptrace as u64, [req, pid as u64, addr, data, 0, 0]) }
}

fn result(r: i64) -> Result<i64, i32> {
    if (-4095..0).contains(&r) { Err(-r as i32) } else { Ok(r) }
}

/// The registers of stopped tracee `pid`.
pub fn get_regs(pid: i32) -> Result<UserRegs, i32> {
    let mut r: UserRegs = [0; USER_REGS_WORDS];
    result(ptrace(PTRACE_GETREGS, pid, 0, r.as_mut_ptr() as u64))?;
    Ok(r)
}

/// Set the registers of stopped tracee `pid`.
pub fn set_regs(pid: i32, r: &UserRegs) -> Result<(), i32> {
    result(ptrace(PTRACE_SETREGS, pid, 0, r.as_ptr() as u64)).map(|_| ())
}

/// The kernel's description of the stop `pid` is in, and its size.
pub fn syscall_info(pid: i32) -> Result<([u8; SYSCALL_INFO_SIZE], usize), i32> {
    let mut b = [0u8; SYSCALL_INFO_SIZE];
    let n = result(ptrace(PTRACE_GET_SYSCALL_INFO, pid, SYSCALL_INFO_SIZE as u64, b.as_mut_ptr() as u64))?;
    Ok((b, (n as usize).min(SYSCALL_INFO_SIZE)))
}

/// Resume stopped tracee `pid` to its next system-call stop.
pub fn resume_to_syscall(pid: i32) -> Result<(), i32> {
    result(ptrace(PTRACE_SYSCALL, pid, 0, 0)).map(|_| ())
}

/// Resume stopped tracee `pid` (PTRACE_CONT, no signal).
pub fn resume(pid: i32) -> Result<(), i32> {
    result(ptrace(7, pid, 0, 0)).map(|_| ())
}

/// Read `buf.len()` bytes at `addr` in process `pid`.
pub fn read_mem(pid: i32, addr: u64, buf: &mut [u8]) -> Result<(), i32> {
    let local = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    let remote = libc::iovec { iov_base: addr as *mut libc::c_void, iov_len: buf.len() };
    // SAFETY: `local` is our buffer of exactly that length; the kernel
    // checks the other process's range and our right to read it.
    let n = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    if n == buf.len() as isize { Ok(()) } else { Err(libc::EFAULT) }
}

/// Write `buf` at `addr` in process `pid`.
pub fn write_mem(pid: i32, addr: u64, buf: &[u8]) -> Result<(), i32> {
    let local = libc::iovec { iov_base: buf.as_ptr() as *mut libc::c_void, iov_len: buf.len() };
    let remote = libc::iovec { iov_base: addr as *mut libc::c_void, iov_len: buf.len() };
    // SAFETY: `local` is our buffer, only read; the kernel checks the
    // other process's range and our right to write it.
    let n = unsafe { libc::process_vm_writev(pid, &local, 1, &remote, 1, 0) };
    if n == buf.len() as isize { Ok(()) } else { Err(libc::EFAULT) }
}

/// The part of a `GuestContext` a tracer reads: everything before the
/// XSAVE image.
pub const CTX_WORDS: usize = std::mem::offset_of!(GuestContext, xsave) / 8;

/// Make the marker call (`kind` in rdi): a getpid whose two stops the
/// tracer's bt-run recognises by their address.
/// `ctx` is the thread's context, which the tracer may rewrite while the
/// thread is stopped in the marker (passed so the compiler knows).
pub fn marker(kind: u64, ctx: &mut GuestContext) {
    // SAFETY: the trampoline makes one getpid system call and returns; it
    // clobbers only rax, rcx and r11, which the C ABI lets it.
    unsafe { super::trampolines::bt_view_marker(kind, ctx) }
}

/// Host address just after the marker's `syscall` (where its stops are).
pub fn after_marker() -> u64 {
    super::trampolines::bt_view_after_marker as *const () as u64
}

/// Host address just after the gate's `syscall`.
pub fn after_gate() -> u64 {
    super::trampolines::bt_gate_after_syscall as *const () as u64
}
