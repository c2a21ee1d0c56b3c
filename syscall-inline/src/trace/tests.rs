//! Tests of the formatter against lines strace 6.1 really printed (padding
//! before ` = ` removed), with the guest memory those calls saw rebuilt in
//! a fake [`GuestMem`]; plus a live comparison when strace is installed.

use super::*;

/// Guest memory made of a few readable regions.
#[derive(Default)]
pub(super) struct Mem(Vec<(u64, Vec<u8>)>);

impl Mem {
    pub(super) fn at(mut self, addr: u64, bytes: &[u8]) -> Self {
        self.0.push((addr, bytes.to_vec()));
        self
    }
    pub(super) fn u64s(self, addr: u64, words: &[u64]) -> Self {
        let b: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        self.at(addr, &b)
    }
}

impl GuestMem for Mem {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), i32> {
        for (base, data) in &self.0 {
            if addr >= *base && addr - base <= data.len() as u64 {
                let off = (addr - base) as usize;
                if let Some(src) = data.get(off..off + buf.len()) {
                    buf.copy_from_slice(src);
                    return Ok(());
                }
            }
        }
        Err(libc::EFAULT)
    }
}

pub(super) fn nr(name: &str) -> u64 {
    crate::SYSCALLS.iter().find(|s| s.name == name).unwrap().nr as u64
}

pub(super) fn line(name: &str, a: &[u64], ret: i64, mem: &Mem) -> String {
    let mut args = [0u64; 6];
    args[..a.len()].copy_from_slice(a);
    let n = nr(name);
    format_entry(n, &args, mem) + &format_exit(n, &args, ret, mem)
}

pub(super) const P: u64 = 0x7fff_0000_1000; // a guest address with data
pub(super) const Q: u64 = 0x7fff_0000_2000;
pub(super) const R: u64 = 0x7fff_0000_3000;

pub(super) fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

pub(super) fn stat_buf(mode: u32, size: u64) -> Vec<u8> {
    let mut b = vec![0u8; 144];
    b[24..28].copy_from_slice(&mode.to_le_bytes());
    b[48..56].copy_from_slice(&size.to_le_bytes());
    b
}

pub(super) const ENOENT: i64 = -2;
pub(super) const NONE: Mem = Mem(Vec::new());

#[test]
fn strace_lines_from_cat() {
    let m = Mem::default().at(P, &cstr("/nonexistent"));
    assert_eq!(
        line("openat", &[-100i64 as u64, P, 0], ENOENT, &m),
        r#"openat(AT_FDCWD, "/nonexistent", O_RDONLY) = -1 ENOENT (No such file or directory)"#
    );
    let m = Mem::default().at(P, &cstr("/etc/ld.so.cache"));
    assert_eq!(
        line("openat", &[-100i64 as u64, P, 0o2000000], 3, &m),
        r#"openat(AT_FDCWD, "/etc/ld.so.cache", O_RDONLY|O_CLOEXEC) = 3"#
    );
    let m = Mem::default().at(P, b"hello\n");
    assert_eq!(line("write", &[1, P, 6], 6, &m), r#"write(1, "hello\n", 6) = 6"#);
    assert_eq!(
        line("mmap", &[0, 8192, 3, 0x22, u64::MAX, 0], 0x7f72db2f3000, &NONE),
        "mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f72db2f3000"
    );
    assert_eq!(
        line("mmap", &[0x7f72db12e000, 1400832, 5, 0x812, 3, 0x26000], 0x7f72db12e000, &NONE),
        "mmap(0x7f72db12e000, 1400832, PROT_READ|PROT_EXEC, MAP_PRIVATE|MAP_FIXED|MAP_DENYWRITE, 3, 0x26000) = 0x7f72db12e000"
    );
    let m = Mem::default().at(P, b"\0").at(Q, &stat_buf(0o100644, 33811));
    assert_eq!(
        line("newfstatat", &[3, P, Q, 0x1000], 0, &m),
        r#"newfstatat(3, "", {st_mode=S_IFREG|0644, st_size=33811, ...}, AT_EMPTY_PATH) = 0"#
    );
    let m = Mem::default().at(P, &cstr("/tmp")).at(Q, &stat_buf(0o41777, 4096));
    assert_eq!(
        line("newfstatat", &[-100i64 as u64, P, Q, 0], 0, &m),
        r#"newfstatat(AT_FDCWD, "/tmp", {st_mode=S_IFDIR|S_ISVTX|0777, st_size=4096, ...}, 0) = 0"#
    );
    let m = Mem::default().at(P, &cstr("/root/.cargo/bin/ls"));
    assert_eq!(
        line("newfstatat", &[-100i64 as u64, P, 0x7fff0be3fdd0, 0], ENOENT, &m),
        r#"newfstatat(AT_FDCWD, "/root/.cargo/bin/ls", 0x7fff0be3fdd0, 0) = -1 ENOENT (No such file or directory)"#
    );
    let mut elf = b"\x7fELF\x02\x01\x01\x03\0\0\0\0\0\0\0\0\x03\0>\0\x01\0\0\0\x10t\x02\0\0\0\0\0".to_vec();
    elf.resize(832, 7);
    let m = Mem::default().at(P, &elf);
    assert_eq!(
        line("read", &[3, P, 832], 832, &m),
        r#"read(3, "\177ELF\2\1\1\3\0\0\0\0\0\0\0\0\3\0>\0\1\0\0\0\20t\2\0\0\0\0\0"..., 832) = 832"#
    );
    let mut ph = Vec::new();
    for w in [6u32, 4, 64, 0, 64, 0, 64, 0] {
        ph.extend_from_slice(&w.to_le_bytes());
    }
    ph.resize(784, 0);
    let m = Mem::default().at(P, &ph);
    assert_eq!(
        line("pread64", &[3, P, 784, 64], 784, &m),
        r#"pread64(3, "\6\0\0\0\4\0\0\0@\0\0\0\0\0\0\0@\0\0\0\0\0\0\0@\0\0\0\0\0\0\0"..., 784, 64) = 784"#
    );
    assert_eq!(line("read", &[3, P, 4096], 0, &Mem::default().at(P, b"")), r#"read(3, "", 4096) = 0"#);
    let m = Mem::default().at(P, &cstr("/etc/ld.so.preload"));
    assert_eq!(
        line("access", &[P, 4], ENOENT, &m),
        r#"access("/etc/ld.so.preload", R_OK) = -1 ENOENT (No such file or directory)"#
    );
    assert_eq!(line("brk", &[0], 0x55796461a000, &NONE), "brk(NULL) = 0x55796461a000");
    assert_eq!(line("close", &[3], 0, &NONE), "close(3) = 0");
    assert_eq!(line("exit_group", &[1], 0, &NONE), "exit_group(1) = ?");
    assert_eq!(line("arch_prctl", &[0x1002, 0x7f72db105740], 0, &NONE), "arch_prctl(ARCH_SET_FS, 0x7f72db105740) = 0");
    assert_eq!(line("set_tid_address", &[0x7f72db105a10], 22278, &NONE), "set_tid_address(0x7f72db105a10) = 22278");
    assert_eq!(line("set_robust_list", &[0x7f72db105a20, 24], 0, &NONE), "set_robust_list(0x7f72db105a20, 24) = 0");
    assert_eq!(
        line("rseq", &[0x7f72db106060, 0x20, 0, 0x53053053], 0, &NONE),
        "rseq(0x7f72db106060, 0x20, 0, 0x53053053) = 0"
    );
    assert_eq!(
        line("mprotect", &[0x7f72db2d7000, 16384, 1], 0, &NONE),
        "mprotect(0x7f72db2d7000, 16384, PROT_READ) = 0"
    );
    assert_eq!(line("munmap", &[0x7f72db2ea000, 33811], 0, &NONE), "munmap(0x7f72db2ea000, 33811) = 0");
    let m = Mem::default().u64s(Q, &[8192 * 1024, u64::MAX]);
    assert_eq!(
        line("prlimit64", &[0, 3, 0, Q], 0, &m),
        "prlimit64(0, RLIMIT_STACK, NULL, {rlim_cur=8192*1024, rlim_max=RLIM64_INFINITY}) = 0"
    );
    let m = Mem::default().at(P, b"\x98\xdc\xe5\xd8\x13\xf4\x63\x24");
    assert_eq!(
        line("getrandom", &[P, 8, 1], 8, &m),
        r#"getrandom("\x98\xdc\xe5\xd8\x13\xf4\x63\x24", 8, GRND_NONBLOCK) = 8"#
    );
    assert_eq!(
        line("futex", &[0x7f72db2dca4c, 0x81, 2147483647], 0, &NONE),
        "futex(0x7f72db2dca4c, FUTEX_WAKE_PRIVATE, 2147483647) = 0"
    );
    // execve: argv decoded, envp counted.
    let env: Vec<u64> = (0..35).map(|i| R + 0x100 + i).chain([0]).collect();
    let m = Mem::default()
        .at(P, &cstr("/usr/bin/cat"))
        .u64s(Q, &[Q + 0x100, Q + 0x110, 0])
        .at(Q + 0x100, &cstr("cat"))
        .at(Q + 0x110, &cstr("/nonexistent"))
        .u64s(R, &env);
    assert_eq!(
        line("execve", &[P, Q, R], 0, &m),
        format!(r#"execve("/usr/bin/cat", ["cat", "/nonexistent"], {R:#x} /* 35 vars */) = 0"#)
    );
}

#[test]
fn strace_lines_from_sh() {
    let mut act = Vec::new();
    for w in [0x564b575a5dc0u64, 0x04000000, 0x7f07f5fac050, !(3u64 << 31)] {
        act.extend_from_slice(&w.to_le_bytes());
    }
    let m = Mem::default().at(P, &act);
    assert_eq!(
        line("rt_sigaction", &[2, P, 0, 8], 0, &m),
        "rt_sigaction(SIGINT, {sa_handler=0x564b575a5dc0, sa_mask=~[RTMIN RT_1], sa_flags=SA_RESTORER, sa_restorer=0x7f07f5fac050}, NULL, 8) = 0"
    );
    let m = Mem::default().at(Q, &[0u8; 32]);
    assert_eq!(
        line("rt_sigaction", &[2, 0, Q, 8], 0, &m),
        "rt_sigaction(SIGINT, NULL, {sa_handler=SIG_DFL, sa_mask=[], sa_flags=0}, 8) = 0"
    );
    let m = Mem::default().u64s(P, &[0]).u64s(Q, &[!(3u64 << 31) & !(1 << 8) & !(1 << 18)]);
    assert_eq!(
        line("rt_sigprocmask", &[2, P, Q, 8], 0, &m),
        "rt_sigprocmask(SIG_SETMASK, [], ~[KILL STOP RTMIN RT_1], 8) = 0"
    );
    let m = Mem::default().u64s(P, &[!(3u64 << 31)]);
    assert_eq!(line("rt_sigprocmask", &[2, P, 0, 8], 0, &m), "rt_sigprocmask(SIG_SETMASK, ~[RTMIN RT_1], NULL, 8) = 0");
    let m = Mem::default().at(P, &[0, 0, 0, 0]);
    assert_eq!(
        line("wait4", &[u64::MAX, P, 0, 0], 22287, &m),
        "wait4(-1, [{WIFEXITED(s) && WEXITSTATUS(s) == 0}], 0, NULL) = 22287"
    );
    assert_eq!(
        line("wait4", &[u64::MAX, 0x7fff0be3fd5c, 1, 0], -10, &NONE),
        "wait4(-1, 0x7fff0be3fd5c, WNOHANG, NULL) = -1 ECHILD (No child processes)"
    );
    let m = Mem::default().at(P, &cstr("/dev/null"));
    assert_eq!(
        line("openat", &[-100i64 as u64, P, 0o1101, 0o666], 3, &m),
        r#"openat(AT_FDCWD, "/dev/null", O_WRONLY|O_CREAT|O_TRUNC, 0666) = 3"#
    );
    assert_eq!(line("fcntl", &[1, 0, 10], 11, &NONE), "fcntl(1, F_DUPFD, 10) = 11");
    assert_eq!(line("fcntl", &[11, 2, 1], 0, &NONE), "fcntl(11, F_SETFD, FD_CLOEXEC) = 0");
    assert_eq!(line("dup2", &[3, 1], 1, &NONE), "dup2(3, 1) = 1");
    assert_eq!(line("vfork", &[], 22287, &NONE), "vfork() = 22287");
    assert_eq!(line("kill", &[22286, 0], 0, &NONE), "kill(22286, 0) = 0");
    assert_eq!(line("getuid", &[], 0, &NONE), "getuid() = 0");
}

/// Lines strace 6.1 printed for a C program calling syscall(2) directly.
#[test]
fn strace_lines_from_raw_calls() {
    let m = Mem::default().at(P, b"tab\there \"q\" \\ \x1b[0m\x01\x027\0\0");
    assert_eq!(line("write", &[1, P, 24], 24, &m), r#"write(1, "tab\there \"q\" \\ \33[0m\1\0027\0\0", 24) = 24"#);
    let m = Mem::default().at(P, b"0123456789012345678901234567890123456789\n");
    assert_eq!(line("write", &[1, P, 41], 41, &m), r#"write(1, "01234567890123456789012345678901"..., 41) = 41"#);
    let m = Mem::default().at(P, &[3, 0, 0, 0, 4, 0, 0, 0]);
    assert_eq!(line("pipe2", &[P, 0o2004000], 0, &m), "pipe2([3, 4], O_NONBLOCK|O_CLOEXEC) = 0");
    assert_eq!(line("dup3", &[3, 10, 0o2000000], 10, &NONE), "dup3(3, 10, O_CLOEXEC) = 10");
    assert_eq!(line("lseek", &[0, 0xfffffffb, 1], 0, &NONE), "lseek(0, 4294967291, SEEK_CUR) = 0");
    let m = Mem::default().at(P, &cstr("/tmp"));
    assert_eq!(
        line("openat", &[-100i64 as u64, P, 0o2204000], 5, &m),
        r#"openat(AT_FDCWD, "/tmp", O_RDONLY|O_NONBLOCK|O_CLOEXEC|O_DIRECTORY) = 5"#
    );
    let m = Mem::default().at(P, &cstr("rel/x"));
    assert_eq!(
        line("openat", &[5, P, 0o2302, 0o600], ENOENT, &m),
        r#"openat(5, "rel/x", O_RDWR|O_CREAT|O_EXCL|O_APPEND, 0600) = -1 ENOENT (No such file or directory)"#
    );
    let m = Mem::default().at(P, &cstr("/nonexistent/d"));
    assert_eq!(
        line("mkdir", &[P, 0o755], ENOENT, &m),
        r#"mkdir("/nonexistent/d", 0755) = -1 ENOENT (No such file or directory)"#
    );
    assert_eq!(
        line("unlinkat", &[-100i64 as u64, P, 0x200], ENOENT, &m),
        r#"unlinkat(AT_FDCWD, "/nonexistent/d", AT_REMOVEDIR) = -1 ENOENT (No such file or directory)"#
    );
    let m = Mem::default().at(P, &cstr("/etc"));
    assert_eq!(
        line("faccessat2", &[-100i64 as u64, P, 3, 0x200], 0, &m),
        r#"faccessat2(AT_FDCWD, "/etc", W_OK|X_OK, AT_EACCESS) = 0"#
    );
    assert_eq!(line("kill", &[0, 115], -22, &NONE), "kill(0, 115) = -1 EINVAL (Invalid argument)");
    assert_eq!(
        line("tgkill", &[1234567, 1234567, 36], -3, &NONE),
        "tgkill(1234567, 1234567, SIGRT_4) = -1 ESRCH (No such process)"
    );
    assert_eq!(line("rt_sigprocmask", &[0, 0, 0, 8], 0, &NONE), "rt_sigprocmask(SIG_BLOCK, NULL, NULL, 8) = 0");
    let m = Mem::default().u64s(P, &[1 << 1 | 1 << 9 | 1 << 33]);
    assert_eq!(
        line("rt_sigprocmask", &[1, P, 0, 8], 0, &m),
        "rt_sigprocmask(SIG_UNBLOCK, [INT USR1 RT_2], NULL, 8) = 0"
    );
    assert_eq!(
        line("rt_sigprocmask", &[1, P, 0, 7], -22, &m),
        format!("rt_sigprocmask(SIG_UNBLOCK, {P:#x}, NULL, 7) = -1 EINVAL (Invalid argument)")
    );
    let m = Mem::default().u64s(P, &[0, 1000]);
    assert_eq!(line("nanosleep", &[P, 0], 0, &m), "nanosleep({tv_sec=0, tv_nsec=1000}, NULL) = 0");
    assert_eq!(
        line("clock_nanosleep", &[1, 0, P, 0], 0, &m),
        "clock_nanosleep(CLOCK_MONOTONIC, 0, {tv_sec=0, tv_nsec=1000}, NULL) = 0"
    );
    assert_eq!(
        line("mmap", &[0, 4096, 0, 0xc021, u64::MAX, 0], 0x7f6357961000, &NONE),
        "mmap(NULL, 4096, PROT_NONE, MAP_SHARED|MAP_ANONYMOUS|MAP_NORESERVE|MAP_POPULATE, -1, 0) = 0x7f6357961000"
    );
    assert_eq!(
        line("mmap", &[0x10000, 4096, 0x11, 0x40000002, 99, 4096], -9, &NONE),
        "mmap(0x10000, 4096, PROT_READ|0x10, MAP_PRIVATE|16<<MAP_HUGE_SHIFT, 99, 0x1000) = -1 EBADF (Bad file descriptor)"
    );
    assert_eq!(
        line("madvise", &[0, 4096, 4], -12, &NONE),
        "madvise(NULL, 4096, MADV_DONTNEED) = -1 ENOMEM (Cannot allocate memory)"
    );
    assert_eq!(
        line("mremap", &[0x10000, 4096, 8192, 1], -14, &NONE),
        "mremap(0x10000, 4096, 8192, MREMAP_MAYMOVE) = -1 EFAULT (Bad address)"
    );
    assert_eq!(line("socket", &[1, 0o2000001, 0], 6, &NONE), "socket(AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC, 0) = 6");
    let mut un = vec![1u8, 0];
    un.extend_from_slice(b"/nonexistent/sock");
    un.resize(110, 0);
    let m = Mem::default().at(P, &un);
    assert_eq!(
        line("connect", &[6, P, 110], ENOENT, &m),
        r#"connect(6, {sa_family=AF_UNIX, sun_path="/nonexistent/sock"}, 110) = -1 ENOENT (No such file or directory)"#
    );
    assert_eq!(line("socket", &[2, 2, 17], 7, &NONE), "socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP) = 7");
    let m = Mem::default().at(P, b"q").at(Q, &[2, 0, 0, 53, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(
        line("sendto", &[7, P, 1, 0x40, Q, 16], 1, &m),
        r#"sendto(7, "q", 1, MSG_DONTWAIT, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("127.0.0.1")}, 16) = 1"#
    );
    let m = Mem::default().u64s(P, &[Q, 2, R, 3]).at(Q, b"ab").at(R, b"cd\n");
    assert_eq!(
        line("writev", &[1, P, 2], 5, &m),
        r#"writev(1, [{iov_base="ab", iov_len=2}, {iov_base="cd\n", iov_len=3}], 2) = 5"#
    );
    assert_eq!(line("fcntl", &[1, 1], 0, &NONE), "fcntl(1, F_GETFD) = 0");
    assert_eq!(line("fcntl", &[10, 1], 1, &NONE), "fcntl(10, F_GETFD) = 0x1 (flags FD_CLOEXEC)");
    assert_eq!(line("fcntl", &[1, 3], 0x8001, &NONE), "fcntl(1, F_GETFL) = 0x8001 (flags O_WRONLY|O_LARGEFILE)");
    assert_eq!(line("fcntl", &[1, 4, 0o2001], 0, &NONE), "fcntl(1, F_SETFL, O_WRONLY|O_APPEND) = 0");
    assert_eq!(line("ioctl", &[99, 0x5401, 0], -9, &NONE), "ioctl(99, TCGETS, NULL) = -1 EBADF (Bad file descriptor)");
    assert_eq!(
        line("ioctl", &[99, 0xc0086601, 0x1234], -9, &NONE),
        "ioctl(99, _IOC(_IOC_READ|_IOC_WRITE, 0x66, 0x1, 0x8), 0x1234) = -1 EBADF (Bad file descriptor)"
    );
    assert_eq!(
        line("futex", &[0x7fffd9c04f00, 0x189, 77, 0, 0, 0xffffffff], -11, &NONE),
        "futex(0x7fffd9c04f00, FUTEX_WAIT_BITSET_PRIVATE|FUTEX_CLOCK_REALTIME, 77, NULL, FUTEX_BITSET_MATCH_ANY) = -1 EAGAIN (Resource temporarily unavailable)"
    );
    let m = Mem::default().u64s(P, &[0, 1000]);
    assert_eq!(
        line("futex", &[0x7fffd9c04f00, 0x80, 77, P], -11, &m),
        "futex(0x7fffd9c04f00, FUTEX_WAIT_PRIVATE, 77, {tv_sec=0, tv_nsec=1000}) = -1 EAGAIN (Resource temporarily unavailable)"
    );
    let m = Mem::default().at(P, &cstr("myname"));
    assert_eq!(line("prctl", &[15, P, 0, 0, 0], 0, &m), r#"prctl(PR_SET_NAME, "myname") = 0"#);
    assert_eq!(line("prctl", &[38, 1, 0, 0, 0], 0, &NONE), "prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) = 0");
    assert_eq!(
        line("prctl", &[0x12345, 1, 2, 3, 4], -22, &NONE),
        "prctl(0x12345 /* PR_??? */, 0x1, 0x2, 0x3, 0x4) = -1 EINVAL (Invalid argument)"
    );
    assert_eq!(
        line("arch_prctl", &[0x3001, 0], -22, &NONE),
        "arch_prctl(0x3001 /* ARCH_??? */, 0) = -1 EINVAL (Invalid argument)"
    );
    let m = Mem::default().at(P, &cstr("/tmp/gold"));
    assert_eq!(line("getcwd", &[P, 64], 10, &m), r#"getcwd("/tmp/gold", 64) = 10"#);
    let m = Mem::default().at(P, &cstr("/proc/self/fd/99"));
    assert_eq!(
        line("readlink", &[P, 0x7fffd9c04f10, 64], ENOENT, &m),
        r#"readlink("/proc/self/fd/99", 0x7fffd9c04f10, 64) = -1 ENOENT (No such file or directory)"#
    );
    assert_eq!(line("umask", &[0o22], 0o22, &NONE), "umask(022) = 022");
    assert_eq!(line("setuid", &[0xffffffff], -22, &NONE), "setuid(-1) = -1 EINVAL (Invalid argument)");
    let m = Mem::default().at(P, &cstr("/nonexistent"));
    assert_eq!(
        line("chown", &[P, 0xffffffff, 5], ENOENT, &m),
        r#"chown("/nonexistent", -1, 5) = -1 ENOENT (No such file or directory)"#
    );
    let m = Mem::default().at(P, &cstr("/nonexistent/fifo"));
    assert_eq!(
        line("mknod", &[P, 0o10644, 0], ENOENT, &m),
        r#"mknod("/nonexistent/fifo", S_IFIFO|0644) = -1 ENOENT (No such file or directory)"#
    );
    assert_eq!(
        line("timerfd_create", &[7, 0x80800], 8, &NONE),
        "timerfd_create(CLOCK_BOOTTIME, TFD_CLOEXEC|TFD_NONBLOCK) = 8"
    );
    assert_eq!(line("eventfd2", &[3, 0x80801], 9, &NONE), "eventfd2(3, EFD_SEMAPHORE|EFD_CLOEXEC|EFD_NONBLOCK) = 9");
    assert_eq!(line("getrlimit", &[7, 0], -14, &NONE), "getrlimit(RLIMIT_NOFILE, NULL) = -1 EFAULT (Bad address)");
    assert_eq!(
        line("setrlimit", &[99, 0], -14, &NONE),
        "setrlimit(0x63 /* RLIMIT_??? */, NULL) = -1 EFAULT (Bad address)"
    );
    assert_eq!(line("flock", &[99, 6], -9, &NONE), "flock(99, LOCK_EX|LOCK_NB) = -1 EBADF (Bad file descriptor)");
    assert_eq!(
        line("wait4", &[999999, 0, 0x40000001, 0], -10, &NONE),
        "wait4(999999, NULL, WNOHANG|__WALL, NULL) = -1 ECHILD (No child processes)"
    );
    assert_eq!(line("shutdown", &[99, 2], -9, &NONE), "shutdown(99, SHUT_RDWR) = -1 EBADF (Bad file descriptor)");
    assert_eq!(
        line("rt_sigaction", &[12, 0, 0, 9], -22, &NONE),
        "rt_sigaction(SIGUSR2, NULL, NULL, 9) = -1 EINVAL (Invalid argument)"
    );
    assert_eq!(line("sched_yield", &[], 0, &NONE), "sched_yield() = 0");
    assert_eq!(line("getpid", &[], 5534, &NONE), "getpid() = 5534");
    let args = [1, 2, 3, 4, 5, 6];
    assert_eq!(
        format_entry(500, &args, &NONE) + &format_exit(500, &args, -38, &NONE),
        "syscall_0x1f4(0x1, 0x2, 0x3, 0x4, 0x5, 0x6) = -1 ENOSYS (Function not implemented)"
    );
    assert_eq!(line("close", &[99], -9, &NONE), "close(99) = -1 EBADF (Bad file descriptor)");
    let m = Mem::default()
        .at(P, &cstr("/nonexistent/prog"))
        .u64s(Q, &[Q + 0x100, Q + 0x110, Q + 0x120, 0])
        .at(Q + 0x100, &cstr("prog"))
        .at(Q + 0x110, &cstr("-x"))
        .at(Q + 0x120, &cstr("a very long argument that is longer than 32"))
        .u64s(R, &[R + 0x100, 0]);
    assert_eq!(
        line("execve", &[P, Q, R], ENOENT, &m),
        format!(
            r#"execve("/nonexistent/prog", ["prog", "-x", "a very long argument that is lon"...], {R:#x} /* 1 var */) = -1 ENOENT (No such file or directory)"#
        )
    );
    assert_eq!(line("exit_group", &[3], 0, &NONE), "exit_group(3) = ?");
}
