//! The only unsafe code of this crate: raw `syscall` instructions, and the
//! clock and local time that trace stamps (`-t`, `-r`) read.
//!
//! Results are returned as the kernel gives them (negative errno on failure),
//! which is exactly what the guest must see.

/// `clock_gettime(id)` as (seconds, microseconds); (0, 0) if it fails.
pub fn clock_us(id: libc::clockid_t) -> (i64, i64) {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes only the timespec it is given.
    if unsafe { libc::clock_gettime(id, &mut ts) } != 0 {
        return (0, 0);
    }
    (ts.tv_sec, ts.tv_nsec / 1000)
}

/// The local time of day of `secs` since the epoch: (hour, minute, second).
pub fn local_hms(secs: i64) -> (i32, i32, i32) {
    // SAFETY: an all-zero `tm` is a valid value of the plain C struct.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let t = secs as libc::time_t;
    // SAFETY: both pointers are valid for the call, which writes only `tm`.
    if unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
        return (0, 0, 0);
    }
    (tm.tm_hour, tm.tm_min, tm.tm_sec)
}

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
