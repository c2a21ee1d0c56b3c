//! What isolation checks in a guest call's arguments before the kernel sees
//! them.
//!
//! Under isolation the guest's memory lies below a limit and bt-run's above
//! it, and translated stores cannot cross it. A system call must not cross
//! it either: the kernel writes where the guest's arguments point (`read`'s
//! buffer, `recvmsg`'s iovecs, `madvise`'s range) and must never be made to
//! write bt-run's memory for the guest. The rule for each call comes from
//! its row's argument kinds ([`Arg::may_address`]) and, for the calls whose
//! addresses hide inside memory an argument points at, from the list in
//! [`check`].
//!
//! The invariant the checks keep: no call the guest makes reaches the
//! kernel with an address at or above the limit in an argument, in a page
//! range it acts on as a whole, or inside the structures listed here (those
//! reach the kernel as bt-run's private copies, checked, so a second thread
//! cannot change them after the check). A buffer that starts below the
//! limit and runs past it needs no more: the kernel fills it from its start
//! and meets the inaccessible band bt-run keeps above the limit first.

use crate::args::Arg;
use crate::classes::MEM;
use crate::{Disposition, Service, Syscall};

/// How isolation checks one call (x86-64 table; i386 calls take 32-bit
/// arguments, which never reach the limit).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Check {
    /// No argument is an address.
    None,
    /// The arguments in the mask (bit i: argument i) may be addresses:
    /// each must lie outside [limit, 2^47) (values above that are no user
    /// address, as negative numbers passed as `unsigned long`).
    Direct(u8),
    /// A page range `[arg0, arg0 + arg1)` that the call acts on as a whole
    /// (madvise, mlock, msync...): it must end at or below the limit, or the
    /// call fails with ENOMEM as for an unmapped range. Checked by the
    /// runtime.
    Range,
    /// The kernel writes through addresses held in memory an argument
    /// points at (iovecs, a msghdr): the runtime copies those structures,
    /// checks the copies and hands the kernel the copies. Arguments in the
    /// mask are checked as `Direct`.
    Nested(u8),
    /// Refused under isolation with EPERM: the call writes memory bt-run
    /// cannot check (bpf's attributes hold output pointers for each of its
    /// commands) or another process's memory.
    Refused,
    /// The runtime's service checks the call itself (mappings, the program
    /// break, FS/GS, ptrace).
    Service,
}

impl Arg {
    /// Whether the kernel may take this argument as an address in the
    /// caller's memory. `Hex` counts: the table uses it for arguments whose
    /// meaning depends on another (ioctl's and prctl's, semctl's union).
    pub const fn may_address(self) -> bool {
        use Arg::*;
        match self {
            Int | UInt | Long | ULong | Size | Off | Fd | DirFd | Pid | Uid => false,
            OpenFlags | Mode | FileMode | AtFlags | AccessMode | Whence | FcntlCmd | FlockOp | IoctlReq | MmapProt
            | MmapFlags | MremapFlags | MsyncFlags | Madvise | MlockallFlags | Signal | SigHow | ClockId
            | TimerFlags | WaitOptions | CloneFlags | FutexOp | SockDomain | SockType | SockProto | SockFlags
            | MsgFlags | ShutdownHow | FdFlags | Resource | ArchCode | PrctlOp | GrndFlags | MemfdFlags
            | RenameFlags | XattrFlags | SpliceFlags | EpollCtlOp | Fadvise => false,
            Hex | Ptr | Path | Str | BufIn | BufOut | RandOut | PathOut | Argv | Envp | IovIn | IovOut | SigSet
            | SigSetOut | SigAction | SigActionOut | Timespec | TimespecOut | WaitStatus | SockAddr | SockAddrOut
            | SockLenOut | PipeFds | Rlimit | RlimitOut | ArchAddr | FcntlArg | StatOut | SysinfoOut | DirentsOut
            | UtsnameOut | OutPtr => true,
        }
    }
}

/// Which arguments of `s` may be addresses (bit i: argument i).
pub const fn address_mask(s: &Syscall) -> u8 {
    let mut m = 0u8;
    let mut i = 0;
    while i < s.args.len() {
        if s.args[i].may_address() {
            m |= 1 << i;
        }
        i += 1;
    }
    m
}

/// How isolation checks call `s` of the x86-64 table.
pub fn check(s: &Syscall) -> Check {
    if let Disposition::Runtime(Service::Memory | Service::Break | Service::ThreadArea | Service::Ptrace) =
        s.disposition
    {
        return Check::Service;
    }
    match s.nr as i64 {
        // iovecs the kernel fills (vmsplice: from a pipe into them).
        libc::SYS_readv | libc::SYS_preadv | libc::SYS_preadv2 | libc::SYS_process_vm_readv | libc::SYS_vmsplice => {
            return Check::Nested(address_mask(s));
        }
        // A msghdr (or an array of them) whose name, iovecs and control
        // buffer the kernel fills.
        libc::SYS_recvmsg | libc::SYS_recvmmsg => return Check::Nested(address_mask(s)),
        libc::SYS_bpf | libc::SYS_process_vm_writev => return Check::Refused,
        _ => {}
    }
    if s.is(MEM) && s.disposition == Disposition::Forward && matches!(s.args, [Arg::Ptr, Arg::Size, ..]) {
        return Check::Range;
    }
    match address_mask(s) {
        0 => Check::None,
        m => Check::Direct(m),
    }
}

/// Whether `v`, taken as an address, lies in bt-run's part of the user
/// address space under isolation: [limit, 2^47).
pub const fn above(v: u64, limit: u64) -> bool {
    v >= limit && v < 1 << 47
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(nr: i64) -> &'static Syscall {
        crate::lookup(nr as u64).unwrap()
    }

    #[test]
    fn calls_are_checked_by_their_argument_kinds() {
        assert_eq!(check(row(libc::SYS_getppid)), Check::None);
        assert_eq!(check(row(libc::SYS_close)), Check::None);
        assert_eq!(check(row(libc::SYS_read)), Check::Direct(0b10));
        assert_eq!(check(row(libc::SYS_pread64)), Check::Direct(0b10));
        assert_eq!(check(row(libc::SYS_clock_gettime)), Check::Direct(0b10));
        assert_eq!(check(row(libc::SYS_ioctl)), Check::Direct(0b100));
        assert_eq!(check(row(libc::SYS_wait4)), Check::Direct(0b1010));
        assert_eq!(check(row(libc::SYS_readv)), Check::Nested(0b10));
        assert_eq!(check(row(libc::SYS_recvmsg)), Check::Nested(0b10));
        assert_eq!(check(row(libc::SYS_madvise)), Check::Range);
        assert_eq!(check(row(libc::SYS_mlock)), Check::Range);
        assert_eq!(check(row(libc::SYS_mmap)), Check::Service);
        assert_eq!(check(row(libc::SYS_munmap)), Check::Service);
        assert_eq!(check(row(libc::SYS_bpf)), Check::Refused);
    }

    #[test]
    fn only_bt_runs_part_of_the_address_space_is_above() {
        let limit = 1 << 46;
        assert!(!above(limit - 1, limit));
        assert!(above(limit, limit));
        assert!(above((1 << 47) - 1, limit));
        // A negative number passed as an unsigned long (fcntl's F_SETOWN
        // of a process group) is no address.
        assert!(!above(-5i64 as u64, limit));
    }
}
