//! i386 calls (`int $0x80`): the lines strace prints with its i386 table
//! for a 64-bit process (names by i386 number, 32-bit arguments, i386
//! argument orders), as recorded from strace 6.1 on the project's machine.

use super::tests::{ENOENT, Mem, NONE, cstr};
use super::*;

const L: u64 = 0x4000_1000; // a guest address below 4 GiB

fn line(nr: u64, a: &[u64], ret: i64, mem: &Mem) -> String {
    let mut args = [0u64; 6];
    args[..a.len()].copy_from_slice(a);
    format!("{}{}", format_entry_in(Abi::I386, nr, &args, mem), format_exit_in(Abi::I386, nr, &args, ret, mem))
}

#[test]
fn i386_lines_like_strace() {
    let m = Mem::default().at(L, &cstr("/tmp/created.txt"));
    assert_eq!(line(20, &[], 10216, &NONE), "getpid() = 10216");
    assert_eq!(line(5, &[L, 0o101, 0o644], 3, &m), r#"open("/tmp/created.txt", O_WRONLY|O_CREAT, 0644) = 3"#);
    assert_eq!(
        line(5, &[L, 0, 0o644], ENOENT, &m),
        r#"open("/tmp/created.txt", O_RDONLY) = -1 ENOENT (No such file or directory)"#
    );
    assert_eq!(line(6, &[3], 0, &NONE), "close(3) = 0");
    let w = Mem::default().at(L, b"hello via int80\n");
    assert_eq!(line(4, &[1, L, 16], 16, &w), r#"write(1, "hello via int80\n", 16) = 16"#);
    assert_eq!(line(4, &[1, 0x10, 5], -14, &NONE), "write(1, 0x10, 5) = -1 EFAULT (Bad address)");
    // Numbers the i386 table does not name, and its holes.
    assert_eq!(line(9999, &[], -38, &NONE), "syscall_0x270f(0, 0, 0, 0, 0, 0) = -1 ENOSYS (Function not implemented)");
    assert_eq!(line(223, &[1], -38, &NONE), "syscall_0xdf(0x1, 0, 0, 0, 0, 0) = -1 ENOSYS (Function not implemented)");
    // mmap2 returns an address; exit_group does not return.
    assert_eq!(
        line(192, &[0, 8192, 3, 0x22, 0xffff_ffff, 0], 0xf7f3_4000, &NONE),
        "mmap2(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0xf7f34000"
    );
    assert_eq!(line(91, &[0xf7f3_4000, 8192], 0, &NONE), "munmap(0xf7f34000, 8192) = 0");
    assert_eq!(line(252, &[0], 0, &NONE), "exit_group(0) = ?");
    // A 32-bit int argument is negative (AT_FDCWD, -1).
    assert_eq!(line(295, &[0xffff_ff9c, L, 0], 4, &m), r#"openat(AT_FDCWD, "/tmp/created.txt", O_RDONLY) = 4"#);
    assert_eq!(line(19, &[3, 0xffff_fff6, 2], 90, &NONE), "lseek(3, -10, SEEK_END) = 90");
}

#[test]
fn i386_argument_orders() {
    // clone(flags, stack, parent_tid, tls, child_tid): i386 has tls before
    // child_tid.
    let flags = 0x01200011; // CLONE_CHILD_SETTID|CLONE_CHILD_CLEARTID|SIGCHLD
    assert_eq!(
        line(120, &[flags, 0, 0, 0x5000, 0x804_a000], 1234, &NONE),
        "clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x804a000) = 1234"
    );
    // The x86-64 clone reads child_tid from the fourth register.
    assert_eq!(
        format!(
            "{}{}",
            format_entry(56, &[flags, 0, 0, 0x804_a000, 0x5000, 0], &NONE),
            format_exit(56, &[flags, 0, 0, 0x804_a000, 0x5000, 0], 1234, &NONE)
        ),
        "clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x804a000) = 1234"
    );
    // futex takes a 32-bit timespec (shown as its address), futex_time64 a
    // 64-bit one.
    let ts = Mem::default().at(L, &[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(line(240, &[0x5000, 0x80, 7, L], 0, &ts), "futex(0x5000, FUTEX_WAIT_PRIVATE, 7, 0x40001000) = 0");
    assert_eq!(
        line(422, &[0x5000, 0x80, 7, L], 0, &ts),
        "futex_time64(0x5000, FUTEX_WAIT_PRIVATE, 7, {tv_sec=1, tv_nsec=0}) = 0"
    );
    // fcntl64 is decoded as fcntl.
    assert_eq!(line(221, &[3, 1], 1, &NONE), "fcntl64(3, F_GETFD) = 0x1 (flags FD_CLOEXEC)");
}

#[test]
fn i386_denied_calls_show_the_injected_error() {
    let m = Mem::default().at(L, &cstr("i80-denied.tmp"));
    let a = [L, 0o101, 0o600, 0, 0, 0];
    assert_eq!(
        format!(
            "{}{}",
            format_entry_in(Abi::I386, 5, &a, &m),
            format_exit_injected_in(Abi::I386, 5, &a, libc::EPERM, &m)
        ),
        r#"open("i80-denied.tmp", O_WRONLY|O_CREAT, 0600) = -1 EPERM (Operation not permitted)"#
    );
    assert_eq!(
        format_exit_injected_in(Abi::I386, 20, &[0; 6], libc::EPERM, &NONE),
        ") = -1 EPERM (Operation not permitted)"
    );
}
