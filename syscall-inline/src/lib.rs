//! syscall-inline: bt-run's in-process privileged-call layer.
//!
//! Every guest `syscall` arrives here (through the gate in the runtime). The
//! declarative table in `table` says, for each call, whether the gate may
//! forward it to the kernel as it is, or bt-run's runtime must serve it.

pub mod args;
pub mod classes;
pub mod errno;
pub mod policy;
pub mod raw;
pub mod table;
pub mod trace;

pub use args::{Arg, Ret};
pub use classes::TraceSet;
pub use policy::{DenyAction, PolicyRule, parse_deny, parse_policy};
pub use table::{SYSCALLS, Syscall};
pub use trace::{GuestMem, format_entry, format_exit, format_line};

/// What bt-run does with a system call.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Executed by the gate itself with the guest's registers.
    Forward,
    /// Served (or wrapped) by the runtime in Rust.
    Runtime,
}

/// Highest syscall number the gate's table covers (exclusive).
pub const GATE_TABLE_LEN: usize = 512;

/// The table row for `nr`, if the number names a syscall.
pub fn lookup(nr: u64) -> Option<&'static Syscall> {
    // Rows are in number order with gaps, so search.
    SYSCALLS.binary_search_by_key(&nr, |s| s.nr as u64).ok().map(|i| &SYSCALLS[i])
}

/// Name of syscall `nr`, or None for an unknown number.
pub fn name(nr: u64) -> Option<&'static str> {
    lookup(nr).map(|s| s.name)
}

/// The byte table the gate reads: 0 = forward in the gate, 1 = go to Rust.
/// Unknown numbers are forwarded (the kernel answers ENOSYS as natively).
pub fn gate_table() -> Box<[u8; GATE_TABLE_LEN]> {
    let mut t = Box::new([0u8; GATE_TABLE_LEN]);
    for s in SYSCALLS {
        if s.disposition != Disposition::Forward && (s.nr as usize) < GATE_TABLE_LEN {
            t[s.nr as usize] = 1;
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_unique() {
        for w in SYSCALLS.windows(2) {
            assert!(w[0].nr < w[1].nr, "{} before {}", w[0].name, w[1].name);
        }
    }

    #[test]
    fn numbers_match_libc() {
        assert_eq!(name(libc::SYS_read as u64), Some("read"));
        assert_eq!(name(libc::SYS_execve as u64), Some("execve"));
        assert_eq!(name(libc::SYS_rseq as u64), Some("rseq"));
        assert_eq!(name(libc::SYS_clone3 as u64), Some("clone3"));
        assert_eq!(lookup(libc::SYS_brk as u64).unwrap().disposition, Disposition::Runtime);
        assert_eq!(gate_table()[libc::SYS_write as usize], 0);
        assert_eq!(gate_table()[libc::SYS_mmap as usize], 1);
    }
}
