//! Argument and return-value kinds of the syscall table: enough to decode a
//! call the way strace prints it.
//!
//! Each kind says how one register is shown. Kinds marked *output* are
//! filled in by the kernel, so the tracer prints them (and every argument
//! after them) when the call returns; the rest are printed on entry.

/// How one syscall argument is decoded.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Arg {
    // --- plain numbers -------------------------------------------------
    /// `int`: signed decimal of the low 32 bits.
    Int,
    /// `unsigned int`: decimal of the low 32 bits.
    UInt,
    /// `long`: signed decimal.
    Long,
    /// `unsigned long`: decimal.
    ULong,
    /// A number strace shows in hex (`%#lx`: `0`, `0x1f`).
    Hex,
    /// `size_t`: unsigned decimal.
    Size,
    /// `off_t` / `loff_t`: signed decimal.
    Off,
    /// An address the call only passes along: `NULL` or `0x7ffd…`.
    Ptr,
    /// A file descriptor.
    Fd,
    /// A directory fd of the `*at` calls: `AT_FDCWD` or a number.
    DirFd,
    /// A process, thread or group id (signed decimal).
    Pid,
    /// A user or group id: `-1` or unsigned decimal.
    Uid,

    // --- strings and buffers --------------------------------------------
    /// A file name (NUL-terminated, printed whole).
    Path,
    /// A NUL-terminated string, printed up to 32 bytes then `...`.
    Str,
    /// A buffer the call reads; its length is the next argument.
    BufIn,
    /// *Output*: a buffer the call fills; its length is the return value.
    BufOut,
    /// *Output*: a buffer of random bytes (getrandom), printed in `\xNN`.
    RandOut,
    /// *Output*: a file name the call writes (getcwd), length = return value.
    PathOut,
    /// `char *const argv[]`: `["ls", "-l"]`.
    Argv,
    /// `char *const envp[]`: `0x7ffd… /* 35 vars */`.
    Envp,
    /// `const struct iovec *`, count in the next argument.
    IovIn,
    /// *Output*: `struct iovec *` the call fills (readv), count in the next
    /// argument, total length = return value.
    IovOut,

    // --- flags and enumerations -----------------------------------------
    /// open(2) flags: `O_RDONLY|O_CLOEXEC`.
    OpenFlags,
    /// File permission bits in octal: `0644`.
    Mode,
    /// mknod mode: `S_IFIFO|0644`.
    FileMode,
    /// `AT_*` flags: `AT_EMPTY_PATH|AT_SYMLINK_NOFOLLOW`.
    AtFlags,
    /// access(2) mode: `F_OK`, `R_OK|W_OK`.
    AccessMode,
    /// lseek whence: `SEEK_SET`.
    Whence,
    /// fcntl command: `F_SETFD`.
    FcntlCmd,
    /// fcntl's third argument (decoded according to the command).
    FcntlArg,
    /// flock operation: `LOCK_EX|LOCK_NB`.
    FlockOp,
    /// ioctl request: `TCGETS`, or `_IOC(...)`-less hex.
    IoctlReq,
    /// `PROT_*`.
    MmapProt,
    /// `MAP_*`.
    MmapFlags,
    /// `MREMAP_*`.
    MremapFlags,
    /// `MS_*`.
    MsyncFlags,
    /// `MADV_*`.
    Madvise,
    /// `MCL_*`.
    MlockallFlags,
    /// A signal number: `SIGINT`, `SIGRT_2`, `0`.
    Signal,
    /// sigprocmask how: `SIG_BLOCK`.
    SigHow,
    /// `const sigset_t *`, size in the `sigsetsize` argument: `[INT TERM]`.
    SigSet,
    /// *Output*: `sigset_t *` the call fills.
    SigSetOut,
    /// `const struct sigaction *`.
    SigAction,
    /// *Output*: `struct sigaction *` the call fills.
    SigActionOut,
    /// `clockid_t`: `CLOCK_MONOTONIC`.
    ClockId,
    /// `TIMER_ABSTIME`.
    TimerFlags,
    /// `const struct timespec *`: `{tv_sec=1, tv_nsec=0}`.
    Timespec,
    /// *Output*: `struct timespec *` the call fills.
    TimespecOut,
    /// *Output*: `int *wstatus`: `[{WIFEXITED(s) && WEXITSTATUS(s) == 0}]`.
    WaitStatus,
    /// `W*` options: `WNOHANG`.
    WaitOptions,
    /// `CLONE_*` flags (and unshare/setns namespaces).
    CloneFlags,
    /// futex operation: `FUTEX_WAIT_PRIVATE`.
    FutexOp,
    /// `AF_*`.
    SockDomain,
    /// `SOCK_*` type with `SOCK_CLOEXEC|SOCK_NONBLOCK`.
    SockType,
    /// Protocol: `IPPROTO_TCP` for inet sockets, else a number.
    SockProto,
    /// `SOCK_CLOEXEC|SOCK_NONBLOCK` (accept4).
    SockFlags,
    /// `const struct sockaddr *`, length in the next argument.
    SockAddr,
    /// *Output*: `struct sockaddr *` the call fills, length via the next
    /// argument's pointer.
    SockAddrOut,
    /// *Output*: `socklen_t *`: `[16]`.
    SockLenOut,
    /// `MSG_*` flags.
    MsgFlags,
    /// shutdown how: `SHUT_WR`.
    ShutdownHow,
    /// *Output*: `int fds[2]`: `[3, 4]`.
    PipeFds,
    /// `O_CLOEXEC|O_NONBLOCK`-style flags of pipe2, dup3, eventfd2 and co.
    FdFlags,
    /// `RLIMIT_*`.
    Resource,
    /// `const struct rlimit *`: `{rlim_cur=8192*1024, rlim_max=RLIM64_INFINITY}`.
    Rlimit,
    /// *Output*: `struct rlimit *` the call fills.
    RlimitOut,
    /// arch_prctl code: `ARCH_SET_FS`.
    ArchCode,
    /// arch_prctl address (an output `[0x…]` for the GET codes).
    ArchAddr,
    /// prctl option: `PR_SET_NAME`.
    PrctlOp,
    /// `GRND_*`.
    GrndFlags,
    /// `MFD_*`.
    MemfdFlags,
    /// `RENAME_*`.
    RenameFlags,
    /// `XATTR_*`.
    XattrFlags,
    /// `SPLICE_F_*`.
    SpliceFlags,
    /// epoll_ctl op: `EPOLL_CTL_ADD`.
    EpollCtlOp,
    /// posix_fadvise advice: `POSIX_FADV_SEQUENTIAL`.
    Fadvise,
    /// *Output*: `struct stat *`: `{st_mode=S_IFREG|0644, st_size=1234, ...}`.
    StatOut,
    /// *Output*: `struct sysinfo *`: `{uptime=2169, loads=[…], …, mem_unit=1}`.
    SysinfoOut,
    /// *Output*: the directory entries getdents fills, length = return value
    /// (`0x55d0… /* 25 entries */`).
    DirentsOut,
    /// *Output*: `struct utsname *`: `{sysname="Linux", nodename=..., ...}`.
    UtsnameOut,
    /// *Output*: a pointer to something the call fills that is not decoded
    /// (printed as its address when the call returns).
    OutPtr,
}

impl Arg {
    /// Whether the kernel writes through this argument, so it (and every
    /// argument after it) is printed when the call returns.
    pub const fn is_output(self) -> bool {
        use Arg::*;
        matches!(
            self,
            BufOut
                | RandOut
                | PathOut
                | IovOut
                | SigSetOut
                | SigActionOut
                | TimespecOut
                | WaitStatus
                | SockAddrOut
                | SockLenOut
                | PipeFds
                | RlimitOut
                | StatOut
                | UtsnameOut
                | DirentsOut
                | SysinfoOut
                | OutPtr
        )
    }
}

/// How the return value is shown after ` = `.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Ret {
    /// Signed decimal; `-4095..=-1` is an error (the default).
    Dec,
    /// A new file descriptor (decimal).
    Fd,
    /// An address in hex (mmap, brk).
    Hex,
    /// Octal (umask).
    Oct,
    /// Decimal, and the call cannot fail (getpid): never shown as an errno.
    NoErr,
    /// The call does not return (exit_group): `= ?`.
    NoReturn,
}
