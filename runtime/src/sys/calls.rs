//! System calls the runtime makes with memory of its own (a status word, a
//! path, argument arrays) or on regions it manages for the guest (the break,
//! guarded code pages, reservations). Each takes Rust types, so the pointers
//! it hands the kernel are valid for the call by construction.

use std::ffi::{CStr, CString};

use super::forward_guest_call;
use crate::memory::GuestRange;

/// Change the host protection of guest pages `r` (code
/// bt-run write-protects, the break as it grows and shrinks, pages the guest
/// moved). Callers pass page-aligned guest ranges only: the break region,
/// pages of the guest's own executable mappings, or a range the kernel just
/// gave the guest. True on success.
pub fn protect_guest(r: GuestRange, prot: i32) -> bool {
    // SAFETY: the range is guest memory (see above); changing its protection
    // affects no memory bt-run's code refers to.
    unsafe { libc::mprotect(r.start.get() as *mut _, r.len() as usize, prot) == 0 }
}

/// Give guest pages `r` back to the kernel and make them
/// inaccessible (a shrinking break: regrowth reads zeros, as natively).
/// Callers pass the break region's pages only. True on success.
pub fn release_guest(r: GuestRange) -> bool {
    let (start, len) = (r.start.get() as *mut libc::c_void, r.len() as usize);
    // SAFETY: as `protect_guest`: the guest gave this memory back.
    unsafe {
        libc::madvise(start, len, libc::MADV_DONTNEED);
        libc::mprotect(start, len, libc::PROT_NONE) == 0
    }
}

/// Reserve `size` bytes of address space, inaccessible and uncommitted, at
/// exactly `at` if that space is free (`exact`) or, if not `exact`, at or
/// near `at` wherever the kernel finds room. `flags` are extra mmap flags
/// (MAP_NORESERVE, ...). The reservation's start, or None.
pub fn reserve(at: u64, size: u64, flags: i32, exact: bool) -> Option<u64> {
    let mut flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | flags;
    if exact {
        flags |= libc::MAP_FIXED_NOREPLACE;
    }
    // SAFETY: a new anonymous mapping: MAP_FIXED_NOREPLACE fails rather than
    // replace anything, and without it the address is only a hint.
    let p = unsafe { libc::mmap(at as *mut _, size as usize, libc::PROT_NONE, flags, -1, 0) };
    if p == libc::MAP_FAILED {
        return None;
    }
    if exact && p as u64 != at {
        // A kernel older than MAP_FIXED_NOREPLACE takes it as a hint.
        // SAFETY: the mapping just made, unused.
        unsafe { libc::munmap(p, size as usize) };
        return None;
    }
    Some(p as u64)
}

/// Undo a `reserve` of [at, at + size) that was not used.
pub fn release_reservation(at: u64, size: u64) {
    // SAFETY: the caller's own reservation, inaccessible and unused.
    unsafe { libc::munmap(at as *mut _, size as usize) };
}

/// The size of System V shared memory segment `id` (IPC_STAT), or -errno.
pub fn shm_size(id: u64) -> Result<u64, i64> {
    // SAFETY: plain data, all-zero is valid; written by the kernel.
    let mut ds: libc::shmid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: `ds` is a valid, writable shmid_ds for the call.
    let r = unsafe { libc::shmctl(id as i32, libc::IPC_STAT, &mut ds) };
    if r < 0 {
        Err(-(std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EINVAL) as i64))
    } else {
        Ok(ds.shm_segsz as u64)
    }
}

/// openat(AT_FDCWD, `path`, `flags`, `mode`) for the guest, with a path of
/// bt-run's (the real executable behind /proc/self/exe): fd or -errno.
pub fn open_path(path: &CStr, flags: u64, mode: u64) -> i64 {
    super::forward(libc::SYS_openat as u64, [libc::AT_FDCWD as u64, path.as_ptr() as u64, flags, mode, 0, 0])
}

/// execveat for the guest with strings bt-run built (the guest's, possibly
/// with bt-run's own arguments in front): returns only on failure (-errno,
/// or `SAFE_NOT_STARTED` if a signal is pending).
pub fn execveat(dirfd: u64, file: &CStr, argv: &[CString], envp: &[CString], flags: u64) -> i64 {
    let nul_ended = |v: &[CString]| -> Vec<*const libc::c_char> {
        v.iter().map(|s| s.as_ptr()).chain(std::iter::once(std::ptr::null())).collect()
    };
    let (ap, ep) = (nul_ended(argv), nul_ended(envp));
    forward_guest_call(
        libc::SYS_execveat as u64,
        [dirfd, file.as_ptr() as u64, ap.as_ptr() as u64, ep.as_ptr() as u64, flags, 0],
    )
}

/// A memfd holding `bytes`, positioned at 0 (what an open of a file bt-run
/// synthesizes returns): fd or -errno.
pub fn memfd_with(bytes: &[u8], cloexec: bool) -> i64 {
    let flags = if cloexec { libc::MFD_CLOEXEC } else { 0 };
    // SAFETY: a NUL-terminated name; the new descriptor is ours.
    let fd = unsafe { libc::memfd_create(c"proc".as_ptr(), flags) };
    if fd < 0 {
        return -(std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EMFILE) as i64);
    }
    let mut done = 0;
    while done < bytes.len() {
        // SAFETY: writes from a live slice into our own descriptor.
        let n = unsafe { libc::write(fd, bytes[done..].as_ptr() as *const _, bytes.len() - done) };
        if n <= 0 {
            break;
        }
        done += n as usize;
    }
    // SAFETY: rewinds our own descriptor.
    unsafe { libc::lseek(fd, 0, libc::SEEK_SET) };
    fd as i64
}

/// access(`path`, X_OK): Ok, or the errno.
pub fn access_exec(path: &CStr) -> Result<(), i32> {
    // SAFETY: a NUL-terminated path.
    if unsafe { libc::access(path.as_ptr(), libc::X_OK) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EACCES))
    }
}

/// The guest's wait4(pid, _, options, rusage) with the status written into
/// bt-run's word instead of the guest's: (result, status). The rusage
/// pointer is the guest's, checked by the kernel.
pub fn wait4_status(pid: u64, options: u64, rusage: u64) -> (i64, i32) {
    let mut st: i32 = 0;
    let r = forward_guest_call(libc::SYS_wait4 as u64, [pid, &mut st as *mut i32 as u64, options, rusage, 0, 0]);
    (r, st)
}

/// The guest's waitid(idtype, id, _, options, rusage) with the siginfo
/// written into bt-run's buffer: (result, siginfo).
pub fn waitid_info(idtype: u64, id: u64, options: u64, rusage: u64) -> (i64, [u8; 128]) {
    let mut info = [0u8; 128];
    let r = forward_guest_call(libc::SYS_waitid as u64, [idtype, id, info.as_mut_ptr() as u64, options, rusage, 0]);
    (r, info)
}
