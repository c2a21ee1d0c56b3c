//! Making processes: the host libc's fork, a fork-style clone, and a vfork
//! child that runs on a host stack of its own while it shares memory with
//! the (suspended) parent.

use std::convert::Infallible;

use super::forward;

const CLONE_VM: u64 = 0x100;
const CLONE_VFORK: u64 = 0x4000;

/// fork through the host libc, which takes its own locks (malloc's) around
/// the call: for a process with more than one host thread. The child's pid,
/// 0 in the child, or -errno. The child has one thread: whatever locks other
/// threads held are the host libc's to reset (it does for its own).
pub fn fork() -> i64 {
    // SAFETY: the child continues here with a copy of memory and the
    // calling thread only; bt-run's callers release their locks in both.
    let r = unsafe { libc::fork() } as i64;
    if r < 0 { -(std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EAGAIN) as i64) } else { r }
}

/// clone(`flags`, no new stack, `ptid`, `ctid`) of a process that copies
/// memory (no CLONE_VM: -EINVAL if asked): the child continues in the caller
/// with a copy of memory, as after fork. The child's pid, 0, or -errno.
pub fn clone_copy(flags: u64, ptid: u64, ctid: u64) -> i64 {
    if flags & CLONE_VM != 0 {
        return -(libc::EINVAL as i64);
    }
    // The parent/child tid words are the guest's (written by the kernel as
    // the guest's own clone would).
    forward(libc::SYS_clone as u64, [flags, 0, ptid, ctid, 0, 0])
}

/// vfork-style clone(`flags`, ...) (CLONE_VM and CLONE_VFORK required:
/// -EINVAL otherwise) whose child runs `child` on a fresh host stack of
/// `stack_size` bytes; the caller waits in the kernel until the child has
/// exec'd or exited, so the two never run at once. The child's pid or
/// -errno (then `child` was dropped without running). The child's stack is
/// never reclaimed: a vfork child ends by exec or exit.
pub fn vfork_on_stack(
    flags: u64,
    ptid: u64,
    ctid: u64,
    stack_size: usize,
    child: Box<dyn FnOnce() -> Infallible>,
) -> i64 {
    if flags & (CLONE_VM | CLONE_VFORK) != (CLONE_VM | CLONE_VFORK) {
        return -(libc::EINVAL as i64);
    }
    let Ok(base) = super::map_anon_rw(stack_size) else {
        return -(libc::ENOMEM as i64);
    };
    let top = base as u64 + stack_size as u64 - 16;
    // A thin pointer to the boxed closure, stored where `bt_raw_clone`'s
    // child finds it (the top of its stack).
    let arg = Box::into_raw(Box::new(child));
    // SAFETY: `top` is 16 bytes below the end of the mapping just made.
    unsafe { *(top as *mut u64) = arg as u64 };
    // SAFETY: the child starts on its own stack in `vfork_child_entry` and
    // never returns into this frame; with CLONE_VFORK the parent resumes
    // here only once the child has exec'd or exited.
    let r = unsafe { super::trampolines::bt_raw_clone(flags, top, ptid, ctid, 0) };
    if r < 0 {
        // SAFETY: the child never ran: the box and the stack are unused.
        unsafe {
            drop(Box::from_raw(arg));
            libc::munmap(base, stack_size);
        }
    }
    r
}

/// Where a vfork child made by `vfork_on_stack` starts (called by
/// `bt_raw_clone` with the word at the top of the child's stack).
pub(super) extern "C" fn vfork_child_entry(arg: u64) -> ! {
    // SAFETY: `vfork_on_stack` boxed the closure for us, and the parent
    // touches it again only if the clone failed (then we do not exist).
    let child = unsafe { Box::from_raw(arg as *mut Box<dyn FnOnce() -> Infallible>) };
    match child() {}
}
