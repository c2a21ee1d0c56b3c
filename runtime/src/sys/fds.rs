//! Descriptor and resource-limit calls for bt-run's own descriptors (see
//! `crate::own_fds`), and the guest calls the runtime makes on the guest's
//! behalf around them.

use std::io;
use std::sync::atomic::AtomicI32;

/// The lowest of bt-run's descriptors (i32::MAX: none), kept by
/// `crate::own_fds`. The gate compares descriptor arguments with it.
pub static FD_FLOOR: AtomicI32 = AtomicI32::new(i32::MAX);

use super::forward_guest_call;

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r) }
}

/// This process's id (a vfork child's own, unlike a cached one).
pub fn getpid() -> i32 {
    // SAFETY: getpid has no preconditions.
    unsafe { libc::getpid() }
}

/// fstat of `fd` (None if it fails).
pub fn fstat(fd: i32) -> Option<libc::stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fstat writes one `struct stat` into `st`, read only on success.
    if unsafe { libc::fstat(fd, st.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: fstat succeeded, so `st` is initialized.
    Some(unsafe { st.assume_init() })
}

/// The device and inode `fd` refers to.
pub fn identity(fd: i32) -> Option<(u64, u64)> {
    fstat(fd).map(|st| (st.st_dev, st.st_ino))
}

/// Is `fd` open in this process's descriptor table?
pub fn is_open(fd: i32) -> bool {
    // SAFETY: F_GETFD only reads the descriptor's flags.
    fd >= 0 && unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0
}

/// Set or clear close-on-exec on `fd`.
pub fn set_cloexec(fd: i32, on: bool) -> io::Result<()> {
    let flags = if on { libc::FD_CLOEXEC } else { 0 };
    // SAFETY: F_SETFD changes only the descriptor's own flags.
    check(unsafe { libc::fcntl(fd, libc::F_SETFD, flags) }).map(|_| ())
}

/// A close-on-exec duplicate of `fd` on the lowest free number >= `min`
/// (below the soft RLIMIT_NOFILE, as the kernel requires).
pub fn dup_from(fd: i32, min: i32) -> io::Result<i32> {
    // SAFETY: F_DUPFD_CLOEXEC creates a new descriptor, which the caller owns.
    check(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, min) })
}

/// Make `target` (which the caller knows to be free) a close-on-exec
/// duplicate of `fd`.
pub fn dup_onto(fd: i32, target: i32) -> io::Result<()> {
    // SAFETY: dup3 onto a number the caller checked is not open, so no
    // descriptor of anyone else is replaced.
    check(unsafe { libc::dup3(fd, target, libc::O_CLOEXEC) }).map(|_| ())
}

/// Is `fd` a file of a proc filesystem (wherever it is mounted)?
pub fn is_procfs(fd: i32) -> bool {
    let mut st = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: fstatfs writes one struct statfs into `st` and nothing else.
    unsafe { libc::fstatfs(fd, st.as_mut_ptr()) == 0 && st.assume_init().f_type == libc::PROC_SUPER_MAGIC }
}

/// Make guest descriptor `target` a duplicate of `fd` (close-on-exec as
/// `cloexec` says), replacing what `target` was in one step.
pub fn replace(fd: i32, target: i32, cloexec: bool) -> bool {
    let flags = if cloexec { libc::O_CLOEXEC } else { 0 };
    // SAFETY: dup3 onto a descriptor the guest just opened and the caller
    // is replacing on its behalf.
    unsafe { libc::dup3(fd, target, flags) >= 0 }
}

/// Close one of bt-run's own descriptors.
pub fn close(fd: i32) {
    // SAFETY: the caller owns `fd` and forgets it.
    unsafe { libc::close(fd) };
}

/// This process's RLIMIT_NOFILE (soft, hard).
pub fn nofile_limit() -> (u64, u64) {
    let mut r = libc::rlimit { rlim_cur: 1024, rlim_max: 1024 };
    // SAFETY: getrlimit writes one struct rlimit.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) };
    (r.rlim_cur, r.rlim_max)
}

/// Set this process's RLIMIT_NOFILE.
pub fn set_nofile_limit(soft: u64, hard: u64) -> io::Result<()> {
    let r = libc::rlimit { rlim_cur: soft, rlim_max: hard };
    // SAFETY: setrlimit reads one struct rlimit.
    check(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) }).map(|_| ())
}

/// Write all of `buf` to `fd` (one write(2) unless the kernel takes less),
/// retrying calls a signal interrupted.
pub fn write_all(fd: i32, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        // SAFETY: writing from a valid buffer.
        let n = unsafe { libc::write(fd, buf.as_ptr() as *const libc::c_void, buf.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        buf = &buf[n as usize..];
    }
    Ok(())
}

/// The guest's close_range over [first, last], which the caller made sure
/// holds none of bt-run's own descriptors.
pub fn guest_close_range(first: u64, last: u64, flags: u64) -> i64 {
    // SAFETY: only guest descriptors are closed (or marked close-on-exec).
    forward_guest_call(libc::SYS_close_range as u64, [first, last, flags, 0, 0, 0])
}

/// The guest's getdents/getdents64 (`nr`) into its own buffer.
pub fn guest_getdents(nr: u64, fd: u64, buf: u64, len: u64) -> i64 {
    debug_assert!([libc::SYS_getdents as u64, libc::SYS_getdents64 as u64].contains(&nr));
    // SAFETY: the kernel writes at most `len` bytes into guest memory at
    // `buf` (EFAULT if it is not the guest's to write).
    forward_guest_call(nr, [fd, buf, len, 0, 0, 0])
}

/// The guest's dup2/dup3 (`nr`, arguments `a`), whose target the caller
/// made sure is not one of bt-run's own descriptors.
pub fn guest_dup(nr: u64, a: [u64; 6]) -> i64 {
    debug_assert!([libc::SYS_dup2 as u64, libc::SYS_dup3 as u64].contains(&nr));
    // SAFETY: replaces a guest descriptor only.
    forward_guest_call(nr, a)
}

/// The guest's setrlimit/prlimit64 (`nr`, arguments `a`).
pub fn guest_rlimit(nr: u64, a: [u64; 6]) -> i64 {
    debug_assert!([libc::SYS_setrlimit as u64, libc::SYS_prlimit64 as u64].contains(&nr));
    // SAFETY: the kernel reads and writes rlimit structs in guest memory;
    // a lowered limit leaves open descriptors (bt-run's too) alone, and a
    // raised one is followed by `own_fds::limits_changed`.
    forward_guest_call(nr, a)
}
