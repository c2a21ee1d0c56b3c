//! Decoders beyond the recorded strace lines, the live comparison with an
//! installed strace, and robustness against arbitrary registers and memory.

use super::tests::{ENOENT, Mem, NONE, P, Q, cstr, line};
use super::*;

#[test]
fn entry_exit_split() {
    let m = Mem::default().at(P, b"abc");
    let args = [3, P, 4096, 0, 0, 0];
    assert_eq!(format_entry(0, &args, &m), "read(3, ");
    assert_eq!(format_exit(0, &args, 3, &m), r#""abc", 4096) = 3"#);
    let w = [1, P, 3, 0, 0, 0];
    assert_eq!(format_entry(1, &w, &m), r#"write(1, "abc", 3"#);
    assert_eq!(format_exit(1, &w, 3, &m), ") = 3");
    // A call whose first argument is an output.
    let p = [P, 0, 0, 0, 0, 0];
    let fds = Mem::default().at(P, &[5, 0, 0, 0, 6, 0, 0, 0]);
    assert_eq!(format_entry(22, &p, &fds), "pipe(");
    assert_eq!(format_exit(22, &p, 0, &fds), "pipe([5, 6]) = 0".trim_start_matches("pipe("));
    assert_eq!(format_line(42, 231, &[0; 6], 0, &NONE), "[pid 42] exit_group(0) = ?\n");
    assert_eq!(format_line(7, 39, &[0; 6], -1, &NONE), "[pid 7] getpid() = -1\n");
}

#[test]
fn injected_errors_show_even_for_calls_that_cannot_fail() {
    // A denied getuid (strace: `getuid() = -1 EPERM (Operation not
    // permitted) (INJECTED)`), while a real -1 stays a value.
    assert_eq!(format_exit_injected(102, &[0; 6], libc::EPERM, &NONE), ") = -1 EPERM (Operation not permitted)");
    assert_eq!(format_exit(102, &[0; 6], -1, &NONE), ") = -1");
    // Calls that can fail look as with a real failure; outputs are addresses.
    let m = Mem::default().at(P, b"abc");
    let args = [3, P, 4096, 0, 0, 0];
    assert_eq!(format_exit_injected(0, &args, libc::EACCES, &m), format_exit(0, &args, -(libc::EACCES as i64), &m));
    assert_eq!(
        format_exit_injected(0, &args, libc::EACCES, &m),
        format!("{}, 4096) = -1 EACCES (Permission denied)", xlat::hex(P))
    );
    // A denied call that never returns when made did return: no `?`.
    assert_eq!(format_exit_injected(231, &[0; 6], libc::EPERM, &NONE), ") = -1 EPERM (Operation not permitted)");
    assert_eq!(format_exit(231, &[0; 6], 0, &NONE), ") = ?");
}

#[test]
fn more_decoders() {
    // clone as glibc's fork does it.
    let flags = 0x01200011;
    assert_eq!(
        line("clone", &[flags, 0, 0, 0x7f0000000a10, 0], 1234, &NONE),
        "clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7f0000000a10) = 1234"
    );
    let thread = 0x3d0f00;
    let m = Mem::default().at(P, &4321u32.to_le_bytes());
    assert_eq!(
        line("clone", &[thread, 0x7f00dead0000, P, P, 0x7f00beef0000], 4321, &m),
        format!(
            "clone(child_stack=0x7f00dead0000, flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM|CLONE_SETTLS|CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID, parent_tid=[4321], tls=0x7f00beef0000, child_tidptr={P:#x}) = 4321"
        )
    );
    // As strace 6.1 printed glibc's pthread_create.
    let tid = 0x7f1238a25990;
    let m = Mem::default()
        .u64s(P, &[0x3d0f00, 0, tid, tid, 0, 0x7f1238225000, 0x7fff80, 0x7f1238a256c0, 0, 0, 0])
        .at(tid, &17505u32.to_le_bytes());
    assert_eq!(
        line("clone3", &[P, 88], 17505, &m),
        "clone3({flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM|CLONE_SETTLS|CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID, child_tid=0x7f1238a25990, parent_tid=0x7f1238a25990, exit_signal=0, stack=0x7f1238225000, stack_size=0x7fff80, tls=0x7f1238a256c0} => {parent_tid=[17505]}, 88) = 17505"
    );
    let m = Mem::default().u64s(P, &[u64::MAX]).u64s(Q, &[0]);
    assert_eq!(line("rt_sigprocmask", &[0, P, Q, 8], 0, &m), "rt_sigprocmask(SIG_BLOCK, ~[], [], 8) = 0");
    assert_eq!(line("fadvise64", &[3, 0, 0, 2], 0, &NONE), "fadvise64(3, 0, 0, POSIX_FADV_SEQUENTIAL) = 0");
    let m = Mem::default().u64s(P, &[0x4111, 0, 0, 0, 17, 0, 0, 0]);
    assert_eq!(
        line("clone3", &[P, 64], 99, &m),
        "clone3({flags=CLONE_VM|CLONE_VFORK|0x11, exit_signal=SIGCHLD, stack=NULL, stack_size=0}, 64) = 99"
    );
    assert_eq!(line("clone3", &[P, 8], -22, &m), format!("clone3({P:#x}, 8) = -1 EINVAL (Invalid argument)"));
    // Restart codes and unnamed errnos.
    assert_eq!(line("pause", &[], -514, &NONE), "pause() = ? ERESTARTNOHAND (To be restarted if no handler)");
    assert_eq!(
        line("read", &[0, P, 9], -512, &NONE),
        format!("read(0, {P:#x}, 9) = ? ERESTARTSYS (To be restarted if SA_RESTART is set)")
    );
    assert_eq!(line("close", &[1], -41, &NONE), "close(1) = -1 (errno 41)");
    // Memory the guest cannot read: addresses, never a panic.
    assert_eq!(
        line("openat", &[-100i64 as u64, 0xdead, 0], ENOENT, &NONE),
        "openat(AT_FDCWD, 0xdead, O_RDONLY) = -1 ENOENT (No such file or directory)"
    );
    assert_eq!(line("write", &[1, 0, 5], -14, &NONE), "write(1, NULL, 5) = -1 EFAULT (Bad address)");
    // Long paths are printed whole, other strings cut at 32.
    let long = "/a".repeat(40);
    let m = Mem::default().at(P, &cstr(&long));
    assert_eq!(line("chdir", &[P], 0, &m), format!("chdir(\"{long}\") = 0"));
    let m = Mem::default().at(P, &cstr("a-name-longer-than-thirty-two-bytes"));
    assert_eq!(
        line("memfd_create", &[P, 1], 3, &m),
        r#"memfd_create("a-name-longer-than-thirty-two-by"..., MFD_CLOEXEC) = 3"#
    );
    let m = Mem::default().at(P, &cstr("/x"));
    assert_eq!(
        line("mknodat", &[-100i64 as u64, P, 0o20600, 0x103], 0, &m),
        r#"mknodat(AT_FDCWD, "/x", S_IFCHR|0600, makedev(0x1, 0x3)) = 0"#
    );
    let m = Mem::default().u64s(P, &[5, 7]);
    assert_eq!(line("clock_gettime", &[1, P], 0, &m), "clock_gettime(CLOCK_MONOTONIC, {tv_sec=5, tv_nsec=7}) = 0");
    assert_eq!(
        line("clock_gettime", &[-6i64 as u64, 0], -14, &NONE),
        "clock_gettime(MAKE_PROCESS_CPUCLOCK(0, CPUCLOCK_SCHED), NULL) = -1 EFAULT (Bad address)"
    );
    let mut uts = vec![0u8; 65 * 6];
    uts[..5].copy_from_slice(b"Linux");
    uts[65..68].copy_from_slice(b"box");
    let m = Mem::default().at(P, &uts);
    assert_eq!(line("uname", &[P], 0, &m), r#"uname({sysname="Linux", nodename="box", ...}) = 0"#);
    let m = Mem::default().u64s(P, &[0x7f00aaaa0000]);
    assert_eq!(line("arch_prctl", &[0x1003, P], 0, &m), "arch_prctl(ARCH_GET_FS, [0x7f00aaaa0000]) = 0");
    let m = Mem::default().at(P, &[24, 0, 80, 0, 0, 0, 0, 0]);
    assert_eq!(
        line("ioctl", &[1, 0x5413, P], 0, &m),
        "ioctl(1, TIOCGWINSZ, {ws_row=24, ws_col=80, ws_xpixel=0, ws_ypixel=0}) = 0"
    );
    let m = Mem::default().u64s(P, &[Q, 8]).at(Q, b"abcdefgh");
    assert_eq!(line("readv", &[0, P, 1], 3, &m), r#"readv(0, [{iov_base="abc", iov_len=8}], 1) = 3"#);
    let m = Mem::default().at(P, &[0x7f, 0x09, 0, 0]);
    assert_eq!(
        line("wait4", &[u64::MAX, P, 2, 0], 9, &m),
        "wait4(-1, [{WIFSTOPPED(s) && WSTOPSIG(s) == SIGKILL}], WUNTRACED, NULL) = 9"
    );
    let m = Mem::default().at(P, &[0x8b, 0, 0, 0]);
    assert_eq!(
        line("wait4", &[u64::MAX, P, 0, 0], 9, &m),
        "wait4(-1, [{WIFSIGNALED(s) && WTERMSIG(s) == SIGSEGV && WCOREDUMP(s)}], 0, NULL) = 9"
    );
    let mut d = Vec::new();
    for name in [".", "..", "file"] {
        let mut e = vec![0u8; 24];
        e[16..18].copy_from_slice(&24u16.to_le_bytes());
        e[19..19 + name.len()].copy_from_slice(name.as_bytes());
        d.extend(e);
    }
    let m = Mem::default().at(P, &d);
    assert_eq!(
        line("getdents64", &[3, P, 32768], 72, &m),
        format!("getdents64(3, {P:#x} /* 3 entries */, 32768) = 72")
    );
    assert_eq!(line("getdents64", &[3, P, 32768], 0, &m), format!("getdents64(3, {P:#x} /* 0 entries */, 32768) = 0"));
    assert_eq!(
        line("getdents64", &[3, P, 32768], 96, &m),
        format!("getdents64(3, {P:#x} /* 3+ entries */, 32768) = 96")
    );
    assert_eq!(
        line("mremap", &[0x10000, 4096, 8192, 3, 0x20000], 0x20000, &NONE),
        "mremap(0x10000, 4096, 8192, MREMAP_MAYMOVE|MREMAP_FIXED, 0x20000) = 0x20000"
    );
    let mut sa6 = vec![10u8, 0, 0, 80, 0, 0, 0, 0];
    sa6.extend_from_slice(&std::net::Ipv6Addr::LOCALHOST.octets());
    sa6.extend_from_slice(&[0; 4]);
    let m = Mem::default().at(P, &sa6);
    assert_eq!(
        line("bind", &[3, P, 28], 0, &m),
        r#"bind(3, {sa_family=AF_INET6, sin6_port=htons(80), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "::1", &sin6_addr), sin6_scope_id=0}, 28) = 0"#
    );
}

/// Run the real strace when it is installed and compare lines whose
/// arguments we know.
#[test]
fn live_strace_comparison() {
    let out = std::env::temp_dir().join(format!("syscall-inline-strace-{}.txt", std::process::id()));
    let status = std::process::Command::new("strace")
        .args(["-o", out.to_str().unwrap(), "-e", "trace=openat,write,close,exit_group", "cat", "/nonexistent"])
        .env("LC_ALL", "C")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    let Ok(_) = status else {
        eprintln!("strace not installed: skipping the live comparison");
        return;
    };
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    let _ = std::fs::remove_file(&out);
    if !text.contains("exit_group(") {
        eprintln!("strace could not trace here (ptrace not permitted?): skipping");
        return;
    }
    // strace aligns " = " at column 40; we print one space.
    let lines: Vec<String> = text
        .lines()
        .map(|l| match l.rsplit_once(" = ") {
            Some((head, tail)) => format!("{} = {tail}", head.trim_end()),
            None => l.to_string(),
        })
        .collect();
    let ours = [
        line("openat", &[-100i64 as u64, P, 0], ENOENT, &Mem::default().at(P, &cstr("/nonexistent"))),
        line("write", &[2, P, 5], 5, &Mem::default().at(P, b"cat: ")),
        line("write", &[2, P, 12], 12, &Mem::default().at(P, b"/nonexistent")),
        line("write", &[2, P, 27], 27, &Mem::default().at(P, b": No such file or directory")),
        line("write", &[2, P, 1], 1, &Mem::default().at(P, b"\n")),
        line("close", &[1], 0, &NONE),
        line("exit_group", &[1], 0, &NONE),
    ];
    for l in ours {
        assert!(lines.contains(&l), "strace printed no line {l:?}; it printed:\n{text}");
    }
}

/// Memory whose bytes are a hash of their address, readable everywhere
/// except in the pages `hole` selects: what a fuzzer would feed us.
struct Noise {
    hole: u64,
    zeros: bool,
}

impl GuestMem for Noise {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), i32> {
        for (i, b) in buf.iter_mut().enumerate() {
            let a = addr.wrapping_add(i as u64);
            if (a >> 12) % 7 == self.hole % 7 {
                return Err(libc::EFAULT);
            }
            let h = a.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17);
            *b = if self.zeros && h & 3 == 0 { 0 } else { h as u8 };
        }
        Ok(())
    }
}

#[test]
fn arbitrary_registers_and_memory_never_panic() {
    let mut x = 0x1234_5678_9abc_def1u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let specials = [0, 1, 2, 8, 0xffff_ffff, u64::MAX, u64::MAX - 7, 1 << 63, 0x7fff_0000_1000, 0xfff, 33, 4096];
    let mut numbers: Vec<u64> = crate::SYSCALLS.iter().map(|s| s.nr as u64).collect();
    numbers.extend([400, 512, 1 << 30, u64::MAX]);
    for round in 0..6 {
        for &nr in &numbers {
            let mut args = [0u64; 6];
            for a in &mut args {
                let r = next();
                *a = if r % 3 == 0 { specials[(r / 3 % specials.len() as u64) as usize] } else { next() >> (r % 64) };
            }
            let ret = match next() % 4 {
                0 => -((next() % 4200) as i64),
                1 => (next() % 5000) as i64,
                2 => next() as i64,
                _ => 0,
            };
            let mem = Noise { hole: next(), zeros: round % 2 == 0 };
            let l = format_line(round, nr, &args, ret, &mem);
            assert!(l.ends_with('\n') && l.contains(" = "), "{l}");
            let _ = format_line(round, nr, &args, ret, &NoMem);
        }
    }
}
