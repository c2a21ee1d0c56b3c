//! Installing isolation's seccomp filter (`isolate::program`), and the
//! re-execution that moves a new image clear of an older image's rules.

use std::io;

use crate::isolate::SockFilter;

#[repr(C)]
struct SockFprog {
    len: u16,
    filter: *const SockFilter,
}

const SECCOMP_SET_MODE_FILTER: u64 = 1;
const SECCOMP_FILTER_FLAG_TSYNC: u64 = 1;

/// Set no_new_privs and attach `prog` to every thread of the process. The
/// filter stays for the life of the process and its descendants.
pub fn install(prog: &[SockFilter]) -> io::Result<()> {
    let len = u16::try_from(prog.len()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: PR_SET_NO_NEW_PRIVS takes plain integers.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let fprog = SockFprog { len, filter: prog.as_ptr() };
    // SAFETY: the kernel copies the program (`len` instructions at
    // `filter`, both live for the call) and keeps its own copy.
    let r = unsafe {
        libc::syscall(libc::SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &fprog as *const SockFprog)
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Execute bt-run's own file again with `args` and this environment
/// (returns only on failure).
pub fn reexec(args: &[std::ffi::OsString]) -> io::Error {
    use std::os::unix::ffi::OsStrExt;
    let cs: Vec<std::ffi::CString> =
        args.iter().filter_map(|a| std::ffi::CString::new(a.as_bytes().to_vec()).ok()).collect();
    if cs.len() != args.len() {
        return io::Error::from_raw_os_error(libc::EINVAL);
    }
    let mut argv: Vec<*const libc::c_char> = cs.iter().map(|c| c.as_ptr()).collect();
    argv.push(std::ptr::null());
    // SAFETY: NUL-terminated strings and a NULL-terminated array, alive for
    // the call; `environ` is this process's environment.
    unsafe {
        unsafe extern "C" {
            static environ: *const *const libc::c_char;
        }
        libc::execve(c"/proc/self/exe".as_ptr(), argv.as_ptr(), environ);
    }
    io::Error::last_os_error()
}
