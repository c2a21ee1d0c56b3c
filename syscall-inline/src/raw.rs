//! The only unsafe code of this crate: raw `syscall` instructions.
//!
//! Results are returned as the kernel gives them (negative errno on failure),
//! which is exactly what the guest must see.

/// Issue system call `nr` with six arguments and return the raw result.
///
/// # Safety
/// The caller must ensure the call is sound for this process: pointer
/// arguments valid for what the kernel will read or write, and no effect
/// (unmapping, exiting a thread) that invalidates state Rust relies on.
#[inline]
pub unsafe fn syscall6(nr: u64, a: [u64; 6]) -> i64 {
    let ret: i64;
    // SAFETY: the `syscall` instruction clobbers only rcx and r11 (declared)
    // and rax (the result); the caller vouches for the arguments.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") nr as i64 => ret,
            in("rdi") a[0], in("rsi") a[1], in("rdx") a[2],
            in("r10") a[3], in("r8") a[4], in("r9") a[5],
            lateout("rcx") _, lateout("r11") _,
            options(nostack)
        );
    }
    ret
}
