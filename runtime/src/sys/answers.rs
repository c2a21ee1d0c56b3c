//! The tables of in-process syscall answers (getpid, getuid, ...), indexed
//! by syscall number: what the gate and translated code answer from
//! (`GuestContext::answers` holds a table's address, read as plain 8-byte
//! words at `8 * nr`). A table lives for the rest of the run once made
//! (contexts point at it), so tables are leaked, and written only as
//! whole atomic words.

use std::sync::atomic::{AtomicU64, Ordering};

use translator::abi::GuestContext;

const LEN: usize = syscall_inline::GATE_TABLE_LEN;

/// One table: the answer of call `nr` at index `nr`.
#[repr(transparent)]
pub struct Answers([AtomicU64; LEN]);

impl Answers {
    /// A table of the kernel's current values, for the rest of the run.
    pub fn new_leaked() -> &'static Answers {
        let a: &'static Answers = Box::leak(Box::new(Answers(std::array::from_fn(|_| AtomicU64::new(0)))));
        a.refill();
        a
    }

    /// A copy of this table, for the rest of the run (a new thread's, whose
    /// credentials the kernel keeps apart; a vfork child's, whose pid is
    /// its own).
    pub fn copy_leaked(&self) -> &'static Answers {
        Box::leak(Box::new(Answers(std::array::from_fn(|i| AtomicU64::new(self.0[i].load(Ordering::Relaxed))))))
    }

    /// The table `ctx` answers from (None before one is set).
    pub fn of(ctx: &GuestContext) -> Option<&'static Answers> {
        // SAFETY: the runtime only ever stores the address of a leaked
        // `Answers` (`address`) in `ctx.answers`, or leaves it 0; leaked
        // tables are never freed, and their words are atomics.
        unsafe { (ctx.answers as *const Answers).as_ref() }
    }

    /// The address to store in `GuestContext::answers`.
    pub fn address(&'static self) -> u64 {
        self as *const Answers as u64
    }

    /// The answer of call `nr`.
    pub fn get(&self, nr: u64) -> u64 {
        self.0.get(nr as usize).map_or(0, |w| w.load(Ordering::Relaxed))
    }

    /// (Re)read the answers from the kernel (after fork, set*id, ...).
    pub fn refill(&self) {
        // SAFETY: plain getters with no preconditions.
        let vals = unsafe {
            [
                (libc::SYS_getpid, libc::getpid() as u64),
                (libc::SYS_getuid, libc::getuid() as u64),
                (libc::SYS_geteuid, libc::geteuid() as u64),
                (libc::SYS_getgid, libc::getgid() as u64),
                (libc::SYS_getegid, libc::getegid() as u64),
            ]
        };
        for (nr, v) in vals {
            self.0[nr as usize].store(v, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_context_reads_the_table_it_points_at() {
        let a = Answers::new_leaked();
        assert_eq!(a.get(libc::SYS_getpid as u64), std::process::id() as u64);
        let mut ctx = GuestContext::new_boxed();
        assert!(Answers::of(&ctx).is_none());
        ctx.answers = a.address();
        let b = Answers::of(&ctx).expect("set");
        assert_eq!(b.get(libc::SYS_getpid as u64), std::process::id() as u64);
        // The translated code's view: word nr of the table.
        // SAFETY: reading a live, leaked table as the gate does.
        let word = unsafe { *((ctx.answers + 8 * libc::SYS_getuid as u64) as *const u64) };
        // SAFETY: getuid has no preconditions.
        assert_eq!(word, unsafe { libc::getuid() } as u64);
        let c = b.copy_leaked();
        assert_ne!(c.address(), b.address());
        assert_eq!(c.get(libc::SYS_getgid as u64), b.get(libc::SYS_getgid as u64));
    }
}
