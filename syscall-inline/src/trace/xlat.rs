//! Symbolic constants (strace's "xlat" tables, x86-64 values) and the two
//! ways strace prints them: as OR-ed flags and as one value of a set.

/// A table of (value, name), in the order strace tries them.
pub type Xlat = &'static [(u64, &'static str)];

/// C's `%#llx`: `0` for zero (Rust's `{:#x}` would give `0x0`), else `0x…`.
pub fn hex(v: u64) -> String {
    if v == 0 { "0".to_string() } else { format!("{v:#x}") }
}

/// strace's `printflags_ex` (abbreviated style): names of the set flags in
/// table order joined by `|`, unknown bits as `|0x…`; a value with no known
/// flag as `0x… /* DFLT */`; zero as the table's zero name, or `0`.
pub fn flags(v: u64, x: Xlat, dflt: Option<&str>) -> String {
    let mut left = v;
    let mut parts: Vec<String> = Vec::new();
    for &(val, name) in x {
        if !(left != 0 || parts.is_empty()) {
            break;
        }
        if left == val || (val != 0 && left & val == val) {
            parts.push(name.to_string());
            left &= !val;
            if left == 0 {
                break;
            }
        }
    }
    if !parts.is_empty() {
        if left != 0 {
            parts.push(format!("{left:#x}"));
        }
        return parts.join("|");
    }
    if left != 0 {
        return match dflt {
            Some(d) => format!("{left:#x} /* {d} */"),
            None => format!("{left:#x}"),
        };
    }
    if dflt.is_some() { "0".to_string() } else { String::new() }
}

/// The name of `v` in `x`, if any.
pub fn lookup(v: u64, x: Xlat) -> Option<&'static str> {
    x.iter().find(|&&(val, _)| val == v).map(|&(_, n)| n)
}

/// strace's `printxval`: the name, or `0x… /* DFLT */`.
pub fn xval(v: u64, x: Xlat, dflt: &str) -> String {
    match lookup(v, x) {
        Some(n) => n.to_string(),
        None => format!("{} /* {dflt} */", hex(v)),
    }
}

/// strace's `printxval_d`: the name, or a signed decimal `N /* DFLT */`.
pub fn xval_d(v: i64, x: Xlat, dflt: &str) -> String {
    match lookup(v as u64, x) {
        Some(n) => n.to_string(),
        None => format!("{v} /* {dflt} */"),
    }
}

// --- signals --------------------------------------------------------------

#[rustfmt::skip]
static SIGNALS: [&str; 33] = [
    "0", "SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGBUS", "SIGFPE", "SIGKILL",
    "SIGUSR1", "SIGSEGV", "SIGUSR2", "SIGPIPE", "SIGALRM", "SIGTERM", "SIGSTKFLT", "SIGCHLD",
    "SIGCONT", "SIGSTOP", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGURG", "SIGXCPU", "SIGXFSZ",
    "SIGVTALRM", "SIGPROF", "SIGWINCH", "SIGIO", "SIGPWR", "SIGSYS", "SIGRTMIN",
];
const SIGRTMIN: u32 = 32;
const SIGRTMAX: u32 = 64;

/// strace's name of signal `sig`: `SIGINT`, `SIGRTMIN`, `SIGRT_1`..`SIGRT_32`.
pub fn signame(sig: i32) -> Option<String> {
    let s = u32::try_from(sig).ok().filter(|&s| s > 0)?;
    if let Some(n) = SIGNALS.get(s as usize) {
        return Some(n.to_string());
    }
    (SIGRTMIN..=SIGRTMAX).contains(&s).then(|| format!("SIGRT_{}", s - SIGRTMIN))
}

/// A signal argument: its name, or the number.
pub fn signal(sig: i32) -> String {
    signame(sig).unwrap_or_else(|| sig.to_string())
}

/// Signal number -> number, accepting `SIGINT`, `INT`, `SIGRTMIN+2`, `SIGRT_2`
/// (case-insensitive) or a number.
pub fn signal_by_name(s: &str) -> Option<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return (1..=SIGRTMAX as i32).contains(&n).then_some(n);
    }
    let up = s.to_ascii_uppercase();
    let bare = up.strip_prefix("SIG").unwrap_or(&up);
    if let Some(i) = SIGNALS.iter().skip(1).position(|n| n.get(3..) == Some(bare)) {
        return Some(i as i32 + 1);
    }
    let rt = |rest: &str| rest.parse::<u32>().ok().filter(|&k| SIGRTMIN + k <= SIGRTMAX).map(|k| (SIGRTMIN + k) as i32);
    if let Some(rest) = bare.strip_prefix("RTMIN+") {
        return rt(rest);
    }
    bare.strip_prefix("RT_").and_then(rt)
}

/// strace's `sprintsigmask_n`: a sigset of `bytes` bytes (≤ 8) given as its
/// little-endian bytes: `[INT TERM]`, `~[KILL STOP RTMIN RT_1]`, `[]`.
pub fn sigset(mask_bytes: &[u8]) -> String {
    let bytes = mask_bytes.len().min(8);
    let words = bytes.div_ceil(4);
    let mut raw = [0u8; 8];
    raw[..bytes].copy_from_slice(&mask_bytes[..bytes]);
    let mut mask = u64::from_le_bytes(raw);
    let nbits = words * 32;
    if nbits < 64 {
        mask &= (1u64 << nbits) - 1;
    }
    let mut out = String::new();
    if nbits > 0 && mask.count_ones() as usize >= nbits * 2 / 3 {
        mask = !mask & if nbits < 64 { (1u64 << nbits) - 1 } else { u64::MAX };
        out.push('~');
    }
    out.push('[');
    let mut first = true;
    for bit in 0..nbits {
        if mask & (1 << bit) == 0 {
            continue;
        }
        if !first {
            out.push(' ');
        }
        first = false;
        let sig = bit as u32 + 1;
        if let Some(n) = SIGNALS.get(sig as usize) {
            out.push_str(n.get(3..).unwrap_or(n));
        } else {
            out.push_str(&format!("RT_{}", sig - SIGRTMIN));
        }
    }
    out.push(']');
    out
}

// --- files ------------------------------------------------------------------

#[rustfmt::skip]
pub static OPEN_ACCESS: Xlat = &[(0, "O_RDONLY"), (1, "O_WRONLY"), (2, "O_RDWR"), (3, "O_ACCMODE")];
#[rustfmt::skip]
pub static OPEN_FLAGS: Xlat = &[
    (0o100, "O_CREAT"), (0o200, "O_EXCL"), (0o400, "O_NOCTTY"), (0o1000, "O_TRUNC"),
    (0o2000, "O_APPEND"), (0o4000, "O_NONBLOCK"), (0o4010000, "O_SYNC"), (0o4000000, "__O_SYNC"),
    (0o10000, "O_DSYNC"), (0o40000, "O_DIRECT"), (0o100000, "O_LARGEFILE"), (0o400000, "O_NOFOLLOW"),
    (0o1000000, "O_NOATIME"), (0o2000000, "O_CLOEXEC"), (0o10000000, "O_PATH"),
    (0o20200000, "O_TMPFILE"), (0o20000000, "__O_TMPFILE"), (0o200000, "O_DIRECTORY"),
    (0o20000, "FASYNC"),
];
pub const O_CREAT: u64 = 0o100;
pub const O_TMPFILE_BIT: u64 = 0o20000000;

/// open(2) flags: access mode, then the other flags.
pub fn open_flags(v: u64) -> String {
    let v = v & 0xffff_ffff;
    let mut s = lookup(v & 3, OPEN_ACCESS).unwrap_or("O_RDONLY").to_string();
    let mut rest = v & !3;
    for &(val, name) in OPEN_FLAGS {
        if rest != 0 && rest & val == val {
            s.push('|');
            s.push_str(name);
            rest &= !val;
        }
    }
    if rest != 0 {
        s.push_str(&format!("|{rest:#x}"));
    }
    s
}

/// `O_CLOEXEC|O_NONBLOCK`-style flags without an access mode (pipe2, dup3,
/// eventfd2, epoll_create1, signalfd4, timerfd_create, inotify_init1).
pub fn fd_flags(v: u64) -> String {
    flags(v & 0xffff_ffff, OPEN_FLAGS, Some("O_???"))
}

/// `%#03o`: `0644`, `000`, `022`.
pub fn octal_mode(m: u64) -> String {
    format!("{:0>3}", format!("0{m:o}"))
}

#[rustfmt::skip]
pub static MODE_TYPES: Xlat = &[
    (0o140000, "S_IFSOCK"), (0o120000, "S_IFLNK"), (0o100000, "S_IFREG"), (0o60000, "S_IFBLK"),
    (0o40000, "S_IFDIR"), (0o20000, "S_IFCHR"), (0o10000, "S_IFIFO"),
];

/// strace's `print_symbolic_mode_t`: `S_IFREG|0644`, `S_IFDIR|S_ISVTX|0777`.
pub fn symbolic_mode(mode: u32) -> String {
    let m = mode as u64;
    let fmt = m & 0o170000;
    let ifmt = if fmt != 0 { lookup(fmt, MODE_TYPES) } else { Some("") };
    let Some(ifmt) = ifmt else {
        return octal_mode(m);
    };
    let mut s = String::from(ifmt);
    if !ifmt.is_empty() {
        s.push('|');
    }
    for (bit, name) in [(0o4000, "S_ISUID|"), (0o2000, "S_ISGID|"), (0o1000, "S_ISVTX|")] {
        if m & bit != 0 {
            s.push_str(name);
        }
    }
    let perm = m & !(0o170000 | 0o7000);
    s.push_str(&octal_mode(perm));
    s
}

#[rustfmt::skip]
pub static AT_FLAGS: Xlat = &[
    (0x100, "AT_SYMLINK_NOFOLLOW"), (0x200, "AT_REMOVEDIR"), (0x400, "AT_SYMLINK_FOLLOW"),
    (0x800, "AT_NO_AUTOMOUNT"), (0x1000, "AT_EMPTY_PATH"), (0x8000, "AT_RECURSIVE"),
];
#[rustfmt::skip]
pub static FACCESSAT_FLAGS: Xlat = &[(0x100, "AT_SYMLINK_NOFOLLOW"), (0x200, "AT_EACCESS"), (0x1000, "AT_EMPTY_PATH")];
#[rustfmt::skip]
pub static STATX_SYNC: Xlat =
    &[(0, "AT_STATX_SYNC_AS_STAT"), (0x2000, "AT_STATX_FORCE_SYNC"), (0x4000, "AT_STATX_DONT_SYNC")];
#[rustfmt::skip]
pub static ACCESS_MODES: Xlat = &[(0, "F_OK"), (4, "R_OK"), (2, "W_OK"), (1, "X_OK")];
#[rustfmt::skip]
pub static WHENCE: Xlat = &[(0, "SEEK_SET"), (1, "SEEK_CUR"), (2, "SEEK_END"), (3, "SEEK_DATA"), (4, "SEEK_HOLE")];
#[rustfmt::skip]
pub static FCNTL_CMDS: Xlat = &[
    (0, "F_DUPFD"), (1, "F_GETFD"), (2, "F_SETFD"), (3, "F_GETFL"), (4, "F_SETFL"), (5, "F_GETLK"),
    (6, "F_SETLK"), (7, "F_SETLKW"), (8, "F_SETOWN"), (9, "F_GETOWN"), (10, "F_SETSIG"),
    (11, "F_GETSIG"), (15, "F_SETOWN_EX"), (16, "F_GETOWN_EX"), (17, "F_GETOWNER_UIDS"),
    (36, "F_OFD_GETLK"), (37, "F_OFD_SETLK"), (38, "F_OFD_SETLKW"), (1024, "F_SETLEASE"),
    (1025, "F_GETLEASE"), (1026, "F_NOTIFY"), (1027, "F_DUPFD_QUERY"), (1028, "F_CREATED_QUERY"),
    (1029, "F_CANCELLK"), (1030, "F_DUPFD_CLOEXEC"), (1031, "F_SETPIPE_SZ"), (1032, "F_GETPIPE_SZ"),
    (1033, "F_ADD_SEALS"), (1034, "F_GET_SEALS"), (1035, "F_GET_RW_HINT"), (1036, "F_SET_RW_HINT"),
    (1037, "F_GET_FILE_RW_HINT"), (1038, "F_SET_FILE_RW_HINT"),
];
#[rustfmt::skip]
pub static FD_FLAGS: Xlat = &[(1, "FD_CLOEXEC")];
#[rustfmt::skip]
pub static LOCK_TYPES: Xlat = &[(0, "F_RDLCK"), (1, "F_WRLCK"), (2, "F_UNLCK")];
#[rustfmt::skip]
pub static SEALS: Xlat = &[
    (1, "F_SEAL_SEAL"), (2, "F_SEAL_SHRINK"), (4, "F_SEAL_GROW"), (8, "F_SEAL_WRITE"),
    (0x10, "F_SEAL_FUTURE_WRITE"), (0x20, "F_SEAL_EXEC"),
];
#[rustfmt::skip]
pub static FLOCK_OPS: Xlat = &[(1, "LOCK_SH"), (2, "LOCK_EX"), (8, "LOCK_UN")];
#[rustfmt::skip]
pub static RENAME_FLAGS: Xlat = &[(1, "RENAME_NOREPLACE"), (2, "RENAME_EXCHANGE"), (4, "RENAME_WHITEOUT")];
#[rustfmt::skip]
pub static XATTR_FLAGS: Xlat = &[(1, "XATTR_CREATE"), (2, "XATTR_REPLACE")];
#[rustfmt::skip]
pub static SPLICE_FLAGS: Xlat =
    &[(1, "SPLICE_F_MOVE"), (2, "SPLICE_F_NONBLOCK"), (4, "SPLICE_F_MORE"), (8, "SPLICE_F_GIFT")];
#[rustfmt::skip]
pub static MEMFD_FLAGS: Xlat = &[
    (1, "MFD_CLOEXEC"), (2, "MFD_ALLOW_SEALING"), (4, "MFD_HUGETLB"), (8, "MFD_NOEXEC_SEAL"), (0x10, "MFD_EXEC"),
];
#[rustfmt::skip]
pub static FADVISE: Xlat = &[
    (0, "POSIX_FADV_NORMAL"), (1, "POSIX_FADV_RANDOM"), (2, "POSIX_FADV_SEQUENTIAL"),
    (3, "POSIX_FADV_WILLNEED"), (4, "POSIX_FADV_DONTNEED"), (5, "POSIX_FADV_NOREUSE"),
];
#[rustfmt::skip]
pub static EPOLL_CTL_OPS: Xlat = &[(1, "EPOLL_CTL_ADD"), (2, "EPOLL_CTL_DEL"), (3, "EPOLL_CTL_MOD")];

#[rustfmt::skip]
pub static IOCTLS: Xlat = &[
    (0x5401, "TCGETS"), (0x5402, "TCSETS"), (0x5403, "TCSETSW"), (0x5404, "TCSETSF"),
    (0x5405, "TCGETA"), (0x5406, "TCSETA"), (0x5407, "TCSETAW"), (0x5408, "TCSETAF"),
    (0x5409, "TCSBRK"), (0x540a, "TCXONC"), (0x540b, "TCFLSH"), (0x540c, "TIOCEXCL"),
    (0x540d, "TIOCNXCL"), (0x540e, "TIOCSCTTY"), (0x540f, "TIOCGPGRP"), (0x5410, "TIOCSPGRP"),
    (0x5411, "TIOCOUTQ"), (0x5412, "TIOCSTI"), (0x5413, "TIOCGWINSZ"), (0x5414, "TIOCSWINSZ"),
    (0x5415, "TIOCMGET"), (0x5416, "TIOCMBIS"), (0x5417, "TIOCMBIC"), (0x5418, "TIOCMSET"),
    (0x541b, "FIONREAD"), (0x541c, "TIOCLINUX"), (0x541d, "TIOCCONS"), (0x5420, "TIOCPKT"),
    (0x5421, "FIONBIO"), (0x5422, "TIOCNOTTY"), (0x5423, "TIOCSETD"), (0x5424, "TIOCGETD"),
    (0x5429, "TIOCGSID"), (0x80045430, "TIOCGPTN"), (0x40045431, "TIOCSPTLCK"),
    (0x5450, "FIONCLEX"), (0x5451, "FIOCLEX"), (0x5452, "FIOASYNC"), (0x5460, "FIOQSIZE"),
    (0x80086601, "FS_IOC_GETFLAGS"), (0x40086602, "FS_IOC_SETFLAGS"), (0x8912, "SIOCGIFCONF"),
    (0x8913, "SIOCGIFFLAGS"), (0x8927, "SIOCGIFHWADDR"), (0x8933, "SIOCGIFINDEX"),
];
#[rustfmt::skip]
static IOC_DIRS: Xlat = &[(0, "_IOC_NONE"), (2, "_IOC_READ"), (1, "_IOC_WRITE")];

/// An ioctl request: its name, or `_IOC(_IOC_READ, 0x12, 0x34, 0x8)`.
pub fn ioctl_req(v: u64) -> String {
    let code = v & 0xffff_ffff;
    if let Some(n) = lookup(code, IOCTLS) {
        return n.to_string();
    }
    format!(
        "_IOC({}, {}, {}, {})",
        flags(code >> 30, IOC_DIRS, Some("_IOC_???")),
        hex((code >> 8) & 0xff),
        hex(code & 0xff),
        hex((code >> 16) & 0x3fff)
    )
}

/// Whether ioctl request `code` passes data back to the caller.
pub fn ioctl_reads(code: u64) -> bool {
    matches!(code & 0xffff_ffff, 0x5401 | 0x5405 | 0x540f | 0x5411 | 0x5413 | 0x5415 | 0x541b | 0x5429)
        || (code >> 30) & 2 != 0
}

// --- memory -------------------------------------------------------------------

#[rustfmt::skip]
pub static MMAP_PROT: Xlat = &[
    (0, "PROT_NONE"), (1, "PROT_READ"), (2, "PROT_WRITE"), (4, "PROT_EXEC"), (8, "PROT_SEM"),
    (0x01000000, "PROT_GROWSDOWN"), (0x02000000, "PROT_GROWSUP"),
];
#[rustfmt::skip]
pub static MMAP_FLAGS: Xlat = &[
    (1, "MAP_SHARED"), (2, "MAP_PRIVATE"), (3, "MAP_SHARED_VALIDATE"), (8, "MAP_DROPPABLE"),
    (0x10, "MAP_FIXED"), (0x20, "MAP_ANONYMOUS"), (0x40, "MAP_32BIT"), (0x80, "MAP_ABOVE4G"),
    (0x4000, "MAP_NORESERVE"), (0x8000, "MAP_POPULATE"), (0x10000, "MAP_NONBLOCK"),
    (0x100, "MAP_GROWSDOWN"), (0x800, "MAP_DENYWRITE"), (0x1000, "MAP_EXECUTABLE"), (0, "MAP_FILE"),
    (0x2000, "MAP_LOCKED"), (0x20000, "MAP_STACK"), (0x40000, "MAP_HUGETLB"), (0x80000, "MAP_SYNC"),
    (0x4000000, "MAP_UNINITIALIZED"), (0x100000, "MAP_FIXED_NOREPLACE"),
];

/// mmap flags: the mapping type, other flags, then `26<<MAP_HUGE_SHIFT`.
pub fn mmap_flags(v: u64) -> String {
    let mut s = match lookup(v & 0xf, MMAP_FLAGS) {
        Some(n) => n.to_string(),
        None => format!("{:#x} /* MAP_??? */", v & 0xf),
    };
    let mut rest = v & !0xf;
    let huge = rest & (0x3f << 26);
    rest &= !(0x3f << 26);
    if rest != 0 {
        s.push('|');
        s.push_str(&flags(rest, MMAP_FLAGS, None));
    }
    if huge != 0 {
        s.push_str(&format!("|{}<<MAP_HUGE_SHIFT", huge >> 26));
    }
    s
}

#[rustfmt::skip]
pub static MREMAP_FLAGS: Xlat = &[(1, "MREMAP_MAYMOVE"), (2, "MREMAP_FIXED"), (4, "MREMAP_DONTUNMAP")];
#[rustfmt::skip]
pub static MSYNC_FLAGS: Xlat = &[(1, "MS_ASYNC"), (2, "MS_INVALIDATE"), (4, "MS_SYNC")];
#[rustfmt::skip]
pub static MLOCKALL_FLAGS: Xlat = &[(1, "MCL_CURRENT"), (2, "MCL_FUTURE"), (4, "MCL_ONFAULT")];
#[rustfmt::skip]
pub static MADVISE: Xlat = &[
    (0, "MADV_NORMAL"), (1, "MADV_RANDOM"), (2, "MADV_SEQUENTIAL"), (3, "MADV_WILLNEED"),
    (4, "MADV_DONTNEED"), (8, "MADV_FREE"), (9, "MADV_REMOVE"), (10, "MADV_DONTFORK"),
    (11, "MADV_DOFORK"), (12, "MADV_MERGEABLE"), (13, "MADV_UNMERGEABLE"), (14, "MADV_HUGEPAGE"),
    (15, "MADV_NOHUGEPAGE"), (16, "MADV_DONTDUMP"), (17, "MADV_DODUMP"), (18, "MADV_WIPEONFORK"),
    (19, "MADV_KEEPONFORK"), (20, "MADV_COLD"), (21, "MADV_PAGEOUT"), (22, "MADV_POPULATE_READ"),
    (23, "MADV_POPULATE_WRITE"), (24, "MADV_DONTNEED_LOCKED"), (25, "MADV_COLLAPSE"),
    (100, "MADV_HWPOISON"), (101, "MADV_SOFT_OFFLINE"), (102, "MADV_GUARD_INSTALL"),
    (103, "MADV_GUARD_REMOVE"),
];

// --- processes and signals ----------------------------------------------------

#[rustfmt::skip]
pub static CLONE_FLAGS: Xlat = &[
    (0x100, "CLONE_VM"), (0x200, "CLONE_FS"), (0x400, "CLONE_FILES"), (0x800, "CLONE_SIGHAND"),
    (0x1000, "CLONE_PIDFD"), (0x2000, "CLONE_PTRACE"), (0x4000, "CLONE_VFORK"),
    (0x8000, "CLONE_PARENT"), (0x10000, "CLONE_THREAD"), (0x20000, "CLONE_NEWNS"),
    (0x40000, "CLONE_SYSVSEM"), (0x80000, "CLONE_SETTLS"), (0x100000, "CLONE_PARENT_SETTID"),
    (0x200000, "CLONE_CHILD_CLEARTID"), (0x800000, "CLONE_UNTRACED"),
    (0x1000000, "CLONE_CHILD_SETTID"), (0x2000000, "CLONE_NEWCGROUP"), (0x4000000, "CLONE_NEWUTS"),
    (0x8000000, "CLONE_NEWIPC"), (0x10000000, "CLONE_NEWUSER"), (0x20000000, "CLONE_NEWPID"),
    (0x40000000, "CLONE_NEWNET"), (0x80000000, "CLONE_IO"), (0x80, "CLONE_NEWTIME"),
];
pub const CLONE_PIDFD: u64 = 0x1000;
pub const CLONE_SETTLS: u64 = 0x80000;
pub const CLONE_PARENT_SETTID: u64 = 0x100000;
pub const CLONE_CHILD_CLEARTID: u64 = 0x200000;
pub const CLONE_CHILD_SETTID: u64 = 0x1000000;

/// clone(2)'s flags word: `CLONE_VM|...|SIGCHLD` (the low byte is the exit
/// signal).
pub fn clone_flags(v: u64) -> String {
    let sig = (v & 0xff) as i32;
    let f = v & !0xff;
    if f == 0 {
        return signal(sig);
    }
    // Without the CLONE_NEWTIME alias, which shares bits with CSIGNAL.
    let mut s = flags(f, &CLONE_FLAGS[..CLONE_FLAGS.len() - 1], Some("CLONE_???"));
    if sig != 0 {
        s.push('|');
        s.push_str(&signal(sig));
    }
    s
}

#[rustfmt::skip]
pub static WAIT_OPTIONS: Xlat = &[
    (1, "WNOHANG"), (2, "WUNTRACED"), (4, "WEXITED"), (8, "WCONTINUED"), (0x01000000, "WNOWAIT"),
    (0x80000000, "__WCLONE"), (0x40000000, "__WALL"), (0x20000000, "__WNOTHREAD"),
];
#[rustfmt::skip]
pub static SIGPROCMASK_HOW: Xlat = &[(0, "SIG_BLOCK"), (1, "SIG_UNBLOCK"), (2, "SIG_SETMASK")];
#[rustfmt::skip]
pub static SA_HANDLERS: Xlat = &[(u64::MAX, "SIG_ERR"), (0, "SIG_DFL"), (1, "SIG_IGN")];
#[rustfmt::skip]
pub static SA_FLAGS: Xlat = &[
    (0x04000000, "SA_RESTORER"), (0x08000000, "SA_ONSTACK"), (0x10000000, "SA_RESTART"),
    (0x20000000, "SA_INTERRUPT"), (0x40000000, "SA_NODEFER"), (0x80000000, "SA_RESETHAND"),
    (4, "SA_SIGINFO"), (1, "SA_NOCLDSTOP"), (2, "SA_NOCLDWAIT"),
];
pub const SA_RESTORER: u64 = 0x04000000;
#[rustfmt::skip]
pub static FUTEX_OPS: Xlat = &[
    (0, "FUTEX_WAIT"), (1, "FUTEX_WAKE"), (2, "FUTEX_FD"), (3, "FUTEX_REQUEUE"),
    (4, "FUTEX_CMP_REQUEUE"), (5, "FUTEX_WAKE_OP"), (6, "FUTEX_LOCK_PI"), (7, "FUTEX_UNLOCK_PI"),
    (8, "FUTEX_TRYLOCK_PI"), (9, "FUTEX_WAIT_BITSET"), (10, "FUTEX_WAKE_BITSET"),
    (11, "FUTEX_WAIT_REQUEUE_PI"), (12, "FUTEX_CMP_REQUEUE_PI"), (13, "FUTEX_LOCK_PI2"),
];

/// A futex op: `FUTEX_WAIT_BITSET_PRIVATE|FUTEX_CLOCK_REALTIME`.
pub fn futex_op(op: u64) -> String {
    let op = op & 0xffff_ffff;
    let cmd = op & 127;
    let (private, realtime) = (op & 128 != 0, op & 256 != 0);
    let known_rt = matches!(cmd, 0 | 9 | 11);
    match lookup(cmd, FUTEX_OPS) {
        Some(n) if op & !(127 | 128 | 256) == 0 && (!realtime || known_rt) => {
            let mut s = n.to_string();
            if private {
                s.push_str(if cmd == 2 { "|FUTEX_PRIVATE_FLAG" } else { "_PRIVATE" });
            }
            if realtime {
                s.push_str("|FUTEX_CLOCK_REALTIME");
            }
            s
        }
        _ => format!("{op:#x} /* FUTEX_??? */"),
    }
}

#[rustfmt::skip]
pub static RESOURCES: Xlat = &[
    (0, "RLIMIT_CPU"), (1, "RLIMIT_FSIZE"), (2, "RLIMIT_DATA"), (3, "RLIMIT_STACK"),
    (4, "RLIMIT_CORE"), (5, "RLIMIT_RSS"), (6, "RLIMIT_NPROC"), (7, "RLIMIT_NOFILE"),
    (8, "RLIMIT_MEMLOCK"), (9, "RLIMIT_AS"), (10, "RLIMIT_LOCKS"), (11, "RLIMIT_SIGPENDING"),
    (12, "RLIMIT_MSGQUEUE"), (13, "RLIMIT_NICE"), (14, "RLIMIT_RTPRIO"), (15, "RLIMIT_RTTIME"),
];
#[rustfmt::skip]
pub static ARCH_CODES: Xlat = &[
    (0x1001, "ARCH_SET_GS"), (0x1002, "ARCH_SET_FS"), (0x1003, "ARCH_GET_FS"), (0x1004, "ARCH_GET_GS"),
    (0x1011, "ARCH_GET_CPUID"), (0x1012, "ARCH_SET_CPUID"), (0x1021, "ARCH_GET_XCOMP_SUPP"),
    (0x1022, "ARCH_GET_XCOMP_PERM"), (0x1023, "ARCH_REQ_XCOMP_PERM"),
    (0x1024, "ARCH_GET_XCOMP_GUEST_PERM"), (0x1025, "ARCH_REQ_XCOMP_GUEST_PERM"),
    (0x2001, "ARCH_MAP_VDSO_X32"), (0x2002, "ARCH_MAP_VDSO_32"), (0x2003, "ARCH_MAP_VDSO_64"),
    (0x4001, "ARCH_GET_UNTAG_MASK"), (0x4002, "ARCH_ENABLE_TAGGED_ADDR"),
    (0x4003, "ARCH_GET_MAX_TAG_BITS"), (0x4004, "ARCH_FORCE_TAGGED_SVA"),
    (0x5001, "ARCH_SHSTK_ENABLE"), (0x5002, "ARCH_SHSTK_DISABLE"), (0x5003, "ARCH_SHSTK_LOCK"),
    (0x5004, "ARCH_SHSTK_UNLOCK"), (0x5005, "ARCH_SHSTK_STATUS"),
];
#[rustfmt::skip]
pub static PRCTL_OPS: Xlat = &[
    (1, "PR_SET_PDEATHSIG"), (2, "PR_GET_PDEATHSIG"), (3, "PR_GET_DUMPABLE"), (4, "PR_SET_DUMPABLE"),
    (7, "PR_GET_KEEPCAPS"), (8, "PR_SET_KEEPCAPS"), (15, "PR_SET_NAME"), (16, "PR_GET_NAME"),
    (21, "PR_GET_SECCOMP"), (22, "PR_SET_SECCOMP"), (23, "PR_CAPBSET_READ"), (24, "PR_CAPBSET_DROP"),
    (36, "PR_SET_CHILD_SUBREAPER"), (37, "PR_GET_CHILD_SUBREAPER"), (38, "PR_SET_NO_NEW_PRIVS"),
    (39, "PR_GET_NO_NEW_PRIVS"), (40, "PR_GET_TID_ADDRESS"), (41, "PR_SET_THP_DISABLE"),
    (42, "PR_GET_THP_DISABLE"), (47, "PR_CAP_AMBIENT"), (0x53564d41, "PR_SET_VMA"),
    (0x59616d61, "PR_SET_PTRACER"),
];
#[rustfmt::skip]
pub static GRND_FLAGS: Xlat = &[(1, "GRND_NONBLOCK"), (2, "GRND_RANDOM"), (4, "GRND_INSECURE")];
#[rustfmt::skip]
pub static CLOCKS: Xlat = &[
    (0, "CLOCK_REALTIME"), (1, "CLOCK_MONOTONIC"), (2, "CLOCK_PROCESS_CPUTIME_ID"),
    (3, "CLOCK_THREAD_CPUTIME_ID"), (4, "CLOCK_MONOTONIC_RAW"), (5, "CLOCK_REALTIME_COARSE"),
    (6, "CLOCK_MONOTONIC_COARSE"), (7, "CLOCK_BOOTTIME"), (8, "CLOCK_REALTIME_ALARM"),
    (9, "CLOCK_BOOTTIME_ALARM"), (10, "CLOCK_SGI_CYCLE"), (11, "CLOCK_TAI"),
];
#[rustfmt::skip]
pub static TIMER_FLAGS: Xlat = &[(1, "TIMER_ABSTIME")];

// --- sockets --------------------------------------------------------------------

#[rustfmt::skip]
pub static ADDR_FAMILIES: Xlat = &[
    (0, "AF_UNSPEC"), (1, "AF_UNIX"), (2, "AF_INET"), (3, "AF_AX25"), (4, "AF_IPX"),
    (5, "AF_APPLETALK"), (6, "AF_NETROM"), (7, "AF_BRIDGE"), (8, "AF_ATMPVC"), (9, "AF_X25"),
    (10, "AF_INET6"), (11, "AF_ROSE"), (12, "AF_DECnet"), (13, "AF_NETBEUI"), (14, "AF_SECURITY"),
    (15, "AF_KEY"), (16, "AF_NETLINK"), (17, "AF_PACKET"), (18, "AF_ASH"), (19, "AF_ECONET"),
    (20, "AF_ATMSVC"), (21, "AF_RDS"), (22, "AF_SNA"), (23, "AF_IRDA"), (24, "AF_PPPOX"),
    (25, "AF_WANPIPE"), (26, "AF_LLC"), (27, "AF_IB"), (28, "AF_MPLS"), (29, "AF_CAN"),
    (30, "AF_TIPC"), (31, "AF_BLUETOOTH"), (32, "AF_IUCV"), (33, "AF_RXRPC"), (34, "AF_ISDN"),
    (35, "AF_PHONET"), (36, "AF_IEEE802154"), (37, "AF_CAIF"), (38, "AF_ALG"), (39, "AF_NFC"),
    (40, "AF_VSOCK"), (41, "AF_KCM"), (42, "AF_QIPCRTR"), (43, "AF_SMC"), (44, "AF_XDP"),
    (45, "AF_MCTP"),
];
#[rustfmt::skip]
pub static SOCK_TYPES: Xlat = &[
    (1, "SOCK_STREAM"), (2, "SOCK_DGRAM"), (3, "SOCK_RAW"), (4, "SOCK_RDM"), (5, "SOCK_SEQPACKET"),
    (6, "SOCK_DCCP"), (10, "SOCK_PACKET"),
];
#[rustfmt::skip]
pub static SOCK_FLAGS: Xlat = &[(0o2000000, "SOCK_CLOEXEC"), (0o4000, "SOCK_NONBLOCK")];
#[rustfmt::skip]
pub static INET_PROTOS: Xlat = &[
    (0, "IPPROTO_IP"), (1, "IPPROTO_ICMP"), (2, "IPPROTO_IGMP"), (4, "IPPROTO_IPIP"), (6, "IPPROTO_TCP"),
    (17, "IPPROTO_UDP"), (41, "IPPROTO_IPV6"), (47, "IPPROTO_GRE"), (58, "IPPROTO_ICMPV6"),
    (132, "IPPROTO_SCTP"), (136, "IPPROTO_UDPLITE"), (255, "IPPROTO_RAW"), (262, "IPPROTO_MPTCP"),
];
#[rustfmt::skip]
pub static MSG_FLAGS: Xlat = &[
    (1, "MSG_OOB"), (2, "MSG_PEEK"), (4, "MSG_DONTROUTE"), (8, "MSG_CTRUNC"), (0x10, "MSG_PROBE"),
    (0x20, "MSG_TRUNC"), (0x40, "MSG_DONTWAIT"), (0x80, "MSG_EOR"), (0x100, "MSG_WAITALL"),
    (0x200, "MSG_FIN"), (0x400, "MSG_SYN"), (0x800, "MSG_CONFIRM"), (0x1000, "MSG_RST"),
    (0x2000, "MSG_ERRQUEUE"), (0x4000, "MSG_NOSIGNAL"), (0x8000, "MSG_MORE"),
    (0x10000, "MSG_WAITFORONE"), (0x20000, "MSG_SENDPAGE_NOPOLICY"), (0x40000, "MSG_BATCH"),
    (0x4000000, "MSG_ZEROCOPY"), (0x20000000, "MSG_FASTOPEN"), (0x40000000, "MSG_CMSG_CLOEXEC"),
];
#[rustfmt::skip]
pub static SHUTDOWN_HOW: Xlat = &[(0, "SHUT_RD"), (1, "SHUT_WR"), (2, "SHUT_RDWR")];

/// socket(2)'s type argument: `SOCK_STREAM|SOCK_CLOEXEC`.
pub fn sock_type(v: u64) -> String {
    let v = v & 0xffff_ffff;
    let mut s = xval(v & 0xf, SOCK_TYPES, "SOCK_???");
    let rest = v & !0xf;
    if rest != 0 {
        s.push('|');
        s.push_str(&flags(rest, SOCK_FLAGS, None));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_printing() {
        assert_eq!(open_flags(0), "O_RDONLY");
        assert_eq!(open_flags(0o2000000), "O_RDONLY|O_CLOEXEC");
        assert_eq!(open_flags(0o1101), "O_WRONLY|O_CREAT|O_TRUNC");
        assert_eq!(open_flags(0o4010002), "O_RDWR|O_SYNC");
        assert_eq!(open_flags(0o20200002), "O_RDWR|O_TMPFILE");
        assert_eq!(open_flags(0o200000 | 0o4000 | 0o2000000), "O_RDONLY|O_NONBLOCK|O_CLOEXEC|O_DIRECTORY");
        assert_eq!(open_flags(0x4000_0000), "O_RDONLY|0x40000000");
        assert_eq!(open_flags(3), "O_ACCMODE");
        assert_eq!(flags(0, MMAP_PROT, Some("PROT_???")), "PROT_NONE");
        assert_eq!(flags(3, MMAP_PROT, Some("PROT_???")), "PROT_READ|PROT_WRITE");
        assert_eq!(flags(0x10, MMAP_PROT, Some("PROT_???")), "0x10 /* PROT_??? */");
        assert_eq!(flags(0x11, MMAP_PROT, Some("PROT_???")), "PROT_READ|0x10");
        assert_eq!(mmap_flags(0x22), "MAP_PRIVATE|MAP_ANONYMOUS");
        assert_eq!(mmap_flags(0x812), "MAP_PRIVATE|MAP_FIXED|MAP_DENYWRITE");
        assert_eq!(mmap_flags(0x20), "MAP_FILE|MAP_ANONYMOUS");
        assert_eq!(mmap_flags(0x5), "0x5 /* MAP_??? */");
        assert_eq!(mmap_flags(0x40022 | (21 << 26)), "MAP_PRIVATE|MAP_ANONYMOUS|MAP_HUGETLB|21<<MAP_HUGE_SHIFT");
        assert_eq!(flags(0, AT_FLAGS, Some("AT_???")), "0");
        assert_eq!(flags(0x1000, AT_FLAGS, Some("AT_???")), "AT_EMPTY_PATH");
        assert_eq!(flags(0x1100, AT_FLAGS, Some("AT_???")), "AT_SYMLINK_NOFOLLOW|AT_EMPTY_PATH");
        assert_eq!(flags(0, ACCESS_MODES, Some("?_OK")), "F_OK");
        assert_eq!(flags(6, ACCESS_MODES, Some("?_OK")), "R_OK|W_OK");
        assert_eq!(clone_flags(0x1200011), "CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD");
        assert_eq!(clone_flags(0x11), "SIGCHLD");
        assert_eq!(clone_flags(0x4111), "CLONE_VM|CLONE_VFORK|SIGCHLD");
        assert_eq!(clone_flags(0x400000), "0x400000 /* CLONE_??? */");
        assert_eq!(futex_op(0x81), "FUTEX_WAKE_PRIVATE");
        assert_eq!(futex_op(0x189), "FUTEX_WAIT_BITSET_PRIVATE|FUTEX_CLOCK_REALTIME");
        assert_eq!(futex_op(0x181), "0x181 /* FUTEX_??? */");
        assert_eq!(sock_type(0o2000001), "SOCK_STREAM|SOCK_CLOEXEC");
        assert_eq!(xval(0x1002, ARCH_CODES, "ARCH_???"), "ARCH_SET_FS");
        assert_eq!(xval(0x3001, ARCH_CODES, "ARCH_???"), "0x3001 /* ARCH_??? */");
        assert_eq!(octal_mode(0o644), "0644");
        assert_eq!(octal_mode(0), "000");
        assert_eq!(octal_mode(0o22), "022");
        assert_eq!(octal_mode(0o7), "007");
        assert_eq!(symbolic_mode(0o100644), "S_IFREG|0644");
        assert_eq!(symbolic_mode(0o41777), "S_IFDIR|S_ISVTX|0777");
        assert_eq!(symbolic_mode(0o20620), "S_IFCHR|0620");
        assert_eq!(symbolic_mode(0o644), "0644");
        assert_eq!(symbolic_mode(0o170644), "0170644");
        assert_eq!(ioctl_req(0x5401), "TCGETS");
        assert_eq!(ioctl_req(0xc0086601), "_IOC(_IOC_READ|_IOC_WRITE, 0x66, 0x1, 0x8)");
        assert_eq!(ioctl_req(0x1234), "_IOC(_IOC_NONE, 0x12, 0x34, 0)");
    }

    #[test]
    fn signals() {
        assert_eq!(signal(2), "SIGINT");
        assert_eq!(signal(0), "0");
        assert_eq!(signal(31), "SIGSYS");
        assert_eq!(signal(32), "SIGRTMIN");
        assert_eq!(signal(34), "SIGRT_2");
        assert_eq!(signal(64), "SIGRT_32");
        assert_eq!(signal(65), "65");
        assert_eq!(signal(-1), "-1");
        assert_eq!(signal_by_name("SIGKILL"), Some(9));
        assert_eq!(signal_by_name("term"), Some(15));
        assert_eq!(signal_by_name("SIGRTMIN+3"), Some(35));
        assert_eq!(signal_by_name("SIGRT_3"), Some(35));
        assert_eq!(signal_by_name("SIGRTMIN"), Some(32));
        assert_eq!(signal_by_name("SIGRTMIN+40"), None);
        assert_eq!(signal_by_name("SIGFOO"), None);
        assert_eq!(sigset(&[0; 8]), "[]");
        assert_eq!(sigset(&(1u64 << 1 | 1 << 14).to_le_bytes()), "[INT TERM]");
        // glibc's "all but the two reserved RT signals", as strace shows it.
        assert_eq!(sigset(&(!(3u64 << 31)).to_le_bytes()), "~[RTMIN RT_1]");
        assert_eq!(sigset(&(!(3u64 << 31) & !(1 << 8) & !(1 << 18)).to_le_bytes()), "~[KILL STOP RTMIN RT_1]");
        assert_eq!(sigset(&[0xff; 8]), "~[]");
        assert_eq!(sigset(&[2, 0, 0, 0]), "[INT]");
    }
}
