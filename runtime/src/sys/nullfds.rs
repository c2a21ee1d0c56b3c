//! Which of the guest's descriptors are /dev/null opened for writing and
//! /dev/zero opened for reading, so that the gate answers `write` and
//! `read` on them without entering the kernel (see docs/design.md,
//! "In-process answers on descriptors").
//!
//! The invariant: a bit is set only while its descriptor certainly refers
//! to /dev/null with write access (`NULL_FDS`), or to /dev/zero with read
//! access (`ZERO_FDS`), in this process's descriptor table. Bits
//! are set after an open the runtime served returned such a descriptor
//! (and at start for inherited ones), and cleared *before* every call that
//! could close or replace the number (close in the gate, dup2/dup3 in the
//! gate, close_range in the runtime), so a racing thread that still sees
//! the bit writes to a descriptor that the kernel would also have written
//! to at that instant. Anything that could change the table without bt-run
//! seeing each change (another process or thread sharing the table but not
//! this memory, io_uring) turns the answers off for good.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Descriptors below this are tracked.
pub const TRACKED: u32 = 1024;

/// One bit per descriptor below `TRACKED`; read by the gate.
pub static NULL_FDS: [AtomicU64; (TRACKED / 64) as usize] = [const { AtomicU64::new(0) }; (TRACKED / 64) as usize];

/// The same for /dev/zero open for reading; read by the gate.
pub static ZERO_FDS: [AtomicU64; (TRACKED / 64) as usize] = [const { AtomicU64::new(0) }; (TRACKED / 64) as usize];

static OFF: AtomicBool = AtomicBool::new(false);

/// Is this the memory device `minor` (1:3 /dev/null, 1:5 /dev/zero)?
fn is_mem_dev(mode: u32, rdev: u64, minor: u32) -> bool {
    mode & libc::S_IFMT == libc::S_IFCHR && libc::major(rdev) == 1 && libc::minor(rdev) == minor
}

/// After the kernel opened `fd` for the guest (in a process that owns its
/// descriptor table): remember it if it is /dev/null open for writing.
pub fn opened(fd: i64) {
    if fd < 0 || fd >= TRACKED as i64 || OFF.load(Ordering::Acquire) {
        return;
    }
    let fd = fd as i32;
    // SAFETY: fstat and F_GETFL only read the descriptor's state into our
    // own buffer.
    let (st, fl) = unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(fd, &mut st) != 0 {
            return;
        }
        (st, libc::fcntl(fd, libc::F_GETFL))
    };
    let usable = fl >= 0 && fl & libc::O_PATH == 0;
    let writable = usable && matches!(fl & libc::O_ACCMODE, libc::O_WRONLY | libc::O_RDWR);
    let readable = usable && matches!(fl & libc::O_ACCMODE, libc::O_RDONLY | libc::O_RDWR);
    if writable && is_mem_dev(st.st_mode, st.st_rdev, 3) {
        NULL_FDS[fd as usize / 64].fetch_or(1 << (fd % 64), Ordering::AcqRel);
    }
    if readable && is_mem_dev(st.st_mode, st.st_rdev, 5) {
        ZERO_FDS[fd as usize / 64].fetch_or(1 << (fd % 64), Ordering::AcqRel);
    }
}

/// Before a call that may close or replace `fd`.
pub fn forget(fd: u64) {
    let fd = fd as u32;
    if fd < TRACKED {
        NULL_FDS[fd as usize / 64].fetch_and(!(1 << (fd % 64)), Ordering::AcqRel);
        ZERO_FDS[fd as usize / 64].fetch_and(!(1 << (fd % 64)), Ordering::AcqRel);
    }
}

/// Before a call that may close every descriptor in [first, last].
pub fn forget_range(first: u64, last: u64) {
    let (first, last) = (first as u32, last.min(u32::MAX as u64) as u32);
    for fd in first..=last.min(TRACKED - 1) {
        forget(fd as u64);
    }
}

/// From now on, no descriptor is answered for (the table can change where
/// bt-run does not see it).
pub fn turn_off() {
    OFF.store(true, Ordering::Release);
    for w in NULL_FDS.iter().chain(&ZERO_FDS) {
        w.store(0, Ordering::Release);
    }
}

/// At start: the descriptors this process inherited (except `skip`,
/// bt-run's own).
pub fn scan_inherited(skip: impl Fn(i32) -> bool) {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else { return };
    // (The listing's own descriptor is a directory: never remembered.)
    for e in dir.flatten() {
        if let Some(fd) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok())
            && !skip(fd)
        {
            opened(fd as i64);
        }
    }
}

/// Is `fd` remembered as /dev/null (for tests and statistics)?
pub fn is_null(fd: u64) -> bool {
    fd < TRACKED as u64 && NULL_FDS[fd as usize / 64].load(Ordering::Acquire) & (1 << (fd % 64)) != 0
}

/// Is `fd` remembered as /dev/zero (for tests and statistics)?
pub fn is_zero(fd: u64) -> bool {
    fd < TRACKED as u64 && ZERO_FDS[fd as usize / 64].load(Ordering::Acquire) & (1 << (fd % 64)) != 0
}
