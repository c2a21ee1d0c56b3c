//! Linux errno names and messages, as strace prints them.
//!
//! Names are strace's (`src/linux/generic/errnoent.h`), messages are glibc's
//! `strerror` text, which is what strace prints in parentheses:
//! `= -1 ENOENT (No such file or directory)`. The kernel-internal codes
//! 512.. have names but no glibc message ("Unknown error 515"); the four
//! restart codes get strace's own wording and a `?` return value.

/// One errno: number, symbolic name, strerror message ("" = glibc has none).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Errno {
    pub num: i32,
    pub name: &'static str,
    pub msg: &'static str,
}

const fn e(num: i32, name: &'static str, msg: &'static str) -> Errno {
    Errno { num, name, msg }
}

/// Every errno strace names on x86-64, in number order.
#[rustfmt::skip]
pub static ERRNOS: &[Errno] = &[
    e(1, "EPERM", "Operation not permitted"),
    e(2, "ENOENT", "No such file or directory"),
    e(3, "ESRCH", "No such process"),
    e(4, "EINTR", "Interrupted system call"),
    e(5, "EIO", "Input/output error"),
    e(6, "ENXIO", "No such device or address"),
    e(7, "E2BIG", "Argument list too long"),
    e(8, "ENOEXEC", "Exec format error"),
    e(9, "EBADF", "Bad file descriptor"),
    e(10, "ECHILD", "No child processes"),
    e(11, "EAGAIN", "Resource temporarily unavailable"),
    e(12, "ENOMEM", "Cannot allocate memory"),
    e(13, "EACCES", "Permission denied"),
    e(14, "EFAULT", "Bad address"),
    e(15, "ENOTBLK", "Block device required"),
    e(16, "EBUSY", "Device or resource busy"),
    e(17, "EEXIST", "File exists"),
    e(18, "EXDEV", "Invalid cross-device link"),
    e(19, "ENODEV", "No such device"),
    e(20, "ENOTDIR", "Not a directory"),
    e(21, "EISDIR", "Is a directory"),
    e(22, "EINVAL", "Invalid argument"),
    e(23, "ENFILE", "Too many open files in system"),
    e(24, "EMFILE", "Too many open files"),
    e(25, "ENOTTY", "Inappropriate ioctl for device"),
    e(26, "ETXTBSY", "Text file busy"),
    e(27, "EFBIG", "File too large"),
    e(28, "ENOSPC", "No space left on device"),
    e(29, "ESPIPE", "Illegal seek"),
    e(30, "EROFS", "Read-only file system"),
    e(31, "EMLINK", "Too many links"),
    e(32, "EPIPE", "Broken pipe"),
    e(33, "EDOM", "Numerical argument out of domain"),
    e(34, "ERANGE", "Numerical result out of range"),
    e(35, "EDEADLK", "Resource deadlock avoided"),
    e(36, "ENAMETOOLONG", "File name too long"),
    e(37, "ENOLCK", "No locks available"),
    e(38, "ENOSYS", "Function not implemented"),
    e(39, "ENOTEMPTY", "Directory not empty"),
    e(40, "ELOOP", "Too many levels of symbolic links"),
    e(42, "ENOMSG", "No message of desired type"),
    e(43, "EIDRM", "Identifier removed"),
    e(44, "ECHRNG", "Channel number out of range"),
    e(45, "EL2NSYNC", "Level 2 not synchronized"),
    e(46, "EL3HLT", "Level 3 halted"),
    e(47, "EL3RST", "Level 3 reset"),
    e(48, "ELNRNG", "Link number out of range"),
    e(49, "EUNATCH", "Protocol driver not attached"),
    e(50, "ENOCSI", "No CSI structure available"),
    e(51, "EL2HLT", "Level 2 halted"),
    e(52, "EBADE", "Invalid exchange"),
    e(53, "EBADR", "Invalid request descriptor"),
    e(54, "EXFULL", "Exchange full"),
    e(55, "ENOANO", "No anode"),
    e(56, "EBADRQC", "Invalid request code"),
    e(57, "EBADSLT", "Invalid slot"),
    e(59, "EBFONT", "Bad font file format"),
    e(60, "ENOSTR", "Device not a stream"),
    e(61, "ENODATA", "No data available"),
    e(62, "ETIME", "Timer expired"),
    e(63, "ENOSR", "Out of streams resources"),
    e(64, "ENONET", "Machine is not on the network"),
    e(65, "ENOPKG", "Package not installed"),
    e(66, "EREMOTE", "Object is remote"),
    e(67, "ENOLINK", "Link has been severed"),
    e(68, "EADV", "Advertise error"),
    e(69, "ESRMNT", "Srmount error"),
    e(70, "ECOMM", "Communication error on send"),
    e(71, "EPROTO", "Protocol error"),
    e(72, "EMULTIHOP", "Multihop attempted"),
    e(73, "EDOTDOT", "RFS specific error"),
    e(74, "EBADMSG", "Bad message"),
    e(75, "EOVERFLOW", "Value too large for defined data type"),
    e(76, "ENOTUNIQ", "Name not unique on network"),
    e(77, "EBADFD", "File descriptor in bad state"),
    e(78, "EREMCHG", "Remote address changed"),
    e(79, "ELIBACC", "Can not access a needed shared library"),
    e(80, "ELIBBAD", "Accessing a corrupted shared library"),
    e(81, "ELIBSCN", ".lib section in a.out corrupted"),
    e(82, "ELIBMAX", "Attempting to link in too many shared libraries"),
    e(83, "ELIBEXEC", "Cannot exec a shared library directly"),
    e(84, "EILSEQ", "Invalid or incomplete multibyte or wide character"),
    e(85, "ERESTART", "Interrupted system call should be restarted"),
    e(86, "ESTRPIPE", "Streams pipe error"),
    e(87, "EUSERS", "Too many users"),
    e(88, "ENOTSOCK", "Socket operation on non-socket"),
    e(89, "EDESTADDRREQ", "Destination address required"),
    e(90, "EMSGSIZE", "Message too long"),
    e(91, "EPROTOTYPE", "Protocol wrong type for socket"),
    e(92, "ENOPROTOOPT", "Protocol not available"),
    e(93, "EPROTONOSUPPORT", "Protocol not supported"),
    e(94, "ESOCKTNOSUPPORT", "Socket type not supported"),
    e(95, "EOPNOTSUPP", "Operation not supported"),
    e(96, "EPFNOSUPPORT", "Protocol family not supported"),
    e(97, "EAFNOSUPPORT", "Address family not supported by protocol"),
    e(98, "EADDRINUSE", "Address already in use"),
    e(99, "EADDRNOTAVAIL", "Cannot assign requested address"),
    e(100, "ENETDOWN", "Network is down"),
    e(101, "ENETUNREACH", "Network is unreachable"),
    e(102, "ENETRESET", "Network dropped connection on reset"),
    e(103, "ECONNABORTED", "Software caused connection abort"),
    e(104, "ECONNRESET", "Connection reset by peer"),
    e(105, "ENOBUFS", "No buffer space available"),
    e(106, "EISCONN", "Transport endpoint is already connected"),
    e(107, "ENOTCONN", "Transport endpoint is not connected"),
    e(108, "ESHUTDOWN", "Cannot send after transport endpoint shutdown"),
    e(109, "ETOOMANYREFS", "Too many references: cannot splice"),
    e(110, "ETIMEDOUT", "Connection timed out"),
    e(111, "ECONNREFUSED", "Connection refused"),
    e(112, "EHOSTDOWN", "Host is down"),
    e(113, "EHOSTUNREACH", "No route to host"),
    e(114, "EALREADY", "Operation already in progress"),
    e(115, "EINPROGRESS", "Operation now in progress"),
    e(116, "ESTALE", "Stale file handle"),
    e(117, "EUCLEAN", "Structure needs cleaning"),
    e(118, "ENOTNAM", "Not a XENIX named type file"),
    e(119, "ENAVAIL", "No XENIX semaphores available"),
    e(120, "EISNAM", "Is a named type file"),
    e(121, "EREMOTEIO", "Remote I/O error"),
    e(122, "EDQUOT", "Disk quota exceeded"),
    e(123, "ENOMEDIUM", "No medium found"),
    e(124, "EMEDIUMTYPE", "Wrong medium type"),
    e(125, "ECANCELED", "Operation canceled"),
    e(126, "ENOKEY", "Required key not available"),
    e(127, "EKEYEXPIRED", "Key has expired"),
    e(128, "EKEYREVOKED", "Key has been revoked"),
    e(129, "EKEYREJECTED", "Key was rejected by service"),
    e(130, "EOWNERDEAD", "Owner died"),
    e(131, "ENOTRECOVERABLE", "State not recoverable"),
    e(132, "ERFKILL", "Operation not possible due to RF-kill"),
    e(133, "EHWPOISON", "Memory page has hardware error"),
    e(512, "ERESTARTSYS", ""),
    e(513, "ERESTARTNOINTR", ""),
    e(514, "ERESTARTNOHAND", ""),
    e(515, "ENOIOCTLCMD", ""),
    e(516, "ERESTART_RESTARTBLOCK", ""),
    e(517, "EPROBE_DEFER", ""),
    e(518, "EOPENSTALE", ""),
    e(521, "EBADHANDLE", ""),
    e(522, "ENOTSYNC", ""),
    e(523, "EBADCOOKIE", ""),
    e(524, "ENOTSUPP", ""),
    e(525, "ETOOSMALL", ""),
    e(526, "ESERVERFAULT", ""),
    e(527, "EBADTYPE", ""),
    e(528, "EJUKEBOX", ""),
    e(529, "EIOCBQUEUED", ""),
    e(530, "ERECALLCONFLICT", ""),
];

/// Names accepted when parsing that are aliases of a number above.
static ALIASES: &[(&str, i32)] = &[("EWOULDBLOCK", 11), ("EDEADLOCK", 35), ("ENOTSUP", 95)];

/// Highest errno value the kernel returns (`MAX_ERRNO`): a raw result in
/// `-4095..=-1` is an error.
pub const MAX_ERRNO: u64 = 4095;

/// The row for errno `num`, if strace names it.
pub fn lookup(num: i32) -> Option<&'static Errno> {
    ERRNOS.binary_search_by_key(&num, |e| e.num).ok().map(|i| &ERRNOS[i])
}

/// Symbolic name of errno `num` ("ENOENT"), if any.
pub fn name(num: i32) -> Option<&'static str> {
    lookup(num).map(|e| e.name)
}

/// strerror text for `num`, as glibc gives it ("Unknown error N" if none).
pub fn message(num: i32) -> String {
    match lookup(num) {
        Some(e) if !e.msg.is_empty() => e.msg.to_string(),
        _ => format!("Unknown error {num}"),
    }
}

/// Errno number for a name ("EACCES", case-sensitive as in C; aliases such
/// as EWOULDBLOCK accepted).
pub fn by_name(name: &str) -> Option<i32> {
    ERRNOS
        .iter()
        .find(|e| e.name == name)
        .map(|e| e.num)
        .or_else(|| ALIASES.iter().find(|(n, _)| *n == name).map(|&(_, v)| v))
}

/// The kernel-internal restart codes strace prints as `= ? NAME (text)`.
pub fn restart_text(num: i32) -> Option<(&'static str, &'static str)> {
    Some(match num {
        512 => ("ERESTARTSYS", "To be restarted if SA_RESTART is set"),
        513 => ("ERESTARTNOINTR", "To be restarted"),
        514 => ("ERESTARTNOHAND", "To be restarted if no handler"),
        516 => ("ERESTART_RESTARTBLOCK", "Interrupted by signal"),
        _ => return None,
    })
}

/// If the raw syscall result `ret` is an error, its errno.
pub fn from_ret(ret: i64) -> Option<i32> {
    let u = ret as u64;
    (u >= MAX_ERRNO.wrapping_neg()).then(|| (u.wrapping_neg()) as i32)
}

/// strace's text for a failed call with errno `num`, after the ` = `:
/// `-1 ENOENT (No such file or directory)`, `? ERESTARTSYS (To be restarted
/// if SA_RESTART is set)`, or `-1 (errno 41)` for an unnamed number.
pub fn strace_error(num: i32) -> String {
    if let Some((n, t)) = restart_text(num) {
        return format!("? {n} ({t})");
    }
    match name(num) {
        Some(n) => format!("-1 {n} ({})", message(num)),
        None => format!("-1 (errno {num})"),
    }
}

/// An error bt-run returned itself (a denied call): always strace's `-1`
/// form, also for the kernel's internal restart codes.
pub fn injected_error(num: i32) -> String {
    match name(num) {
        Some(n) => format!("-1 {n} ({})", message(num)),
        None => format!("-1 (errno {num})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_unique() {
        for w in ERRNOS.windows(2) {
            assert!(w[0].num < w[1].num);
        }
    }

    #[test]
    fn names_and_messages_match_libc() {
        assert_eq!(name(libc::ENOENT), Some("ENOENT"));
        assert_eq!(name(libc::EAGAIN), Some("EAGAIN"));
        assert_eq!(name(libc::EHWPOISON), Some("EHWPOISON"));
        assert_eq!(name(41), None);
        assert_eq!(by_name("EWOULDBLOCK"), Some(libc::EAGAIN));
        assert_eq!(by_name("ENOTSUP"), Some(libc::EOPNOTSUPP));
        assert_eq!(by_name("EACCES"), Some(libc::EACCES));
        assert_eq!(by_name("eacces"), None);
        // Every message is the C library's strerror text (std's io::Error
        // renders it, followed by " (os error N)").
        for e in ERRNOS {
            let std_text = std::io::Error::from_raw_os_error(e.num).to_string();
            let suffix = format!(" (os error {})", e.num);
            assert_eq!(message(e.num), std_text.strip_suffix(&suffix).unwrap(), "errno {}", e.num);
        }
    }

    #[test]
    fn strace_error_forms() {
        assert_eq!(strace_error(2), "-1 ENOENT (No such file or directory)");
        assert_eq!(strace_error(512), "? ERESTARTSYS (To be restarted if SA_RESTART is set)");
        assert_eq!(strace_error(516), "? ERESTART_RESTARTBLOCK (Interrupted by signal)");
        assert_eq!(strace_error(515), "-1 ENOIOCTLCMD (Unknown error 515)");
        assert_eq!(strace_error(41), "-1 (errno 41)");
        assert_eq!(strace_error(4095), "-1 (errno 4095)");
        assert_eq!(from_ret(-2), Some(2));
        assert_eq!(from_ret(-4095), Some(4095));
        assert_eq!(from_ret(-4096), None);
        assert_eq!(from_ret(0), None);
        assert_eq!(from_ret(i64::MIN), None);
    }
}
