//! strace-compatible formatting of guest system calls.
//!
//! A traced call is printed in two halves, as strace does: [`format_entry`]
//! before the call (the name and the arguments the kernel reads) and
//! [`format_exit`] after it (the arguments the kernel wrote, the rest, and
//! the return value). Their concatenation is exactly one strace line
//! without its alignment padding:
//!
//! ```text
//! format_entry -> read(3,
//! format_exit  -> "abc", 4096) = 3
//! ```
//!
//! Decoding reads untrusted guest memory through [`GuestMem`]; it never
//! panics, caps every read, and prints an address where memory is
//! unreadable, as strace does.

mod quote;
mod structs;
pub mod xlat;

use crate::Abi;
use crate::args::{Arg, Ret};
use crate::errno;
use crate::table::Syscall;

pub use quote::{MAX_STRLEN, max_strlen, quote as quote_bytes, set_max_strlen};
pub use xlat::{signal as signal_name, signal_by_name};

/// Read access to the guest's memory.
pub trait GuestMem {
    /// Fill `buf` from guest address `addr`; `Err(errno)` if any of it is
    /// unreadable.
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), i32>;

    /// strace's `-y`: what descriptor `fd` (-100: AT_FDCWD, the working
    /// directory) refers to, as /proc/self/fd shows it; None to print the
    /// number alone.
    fn fd_path(&self, _fd: i32) -> Option<String> {
        None
    }
}

/// A descriptor as `-y` prints it: `3</etc/passwd>`, or the number alone.
fn fd_str(mem: &dyn GuestMem, v: u64) -> String {
    match mem.fd_path(int(v)) {
        Some(p) => format!("{}<{p}>", int(v)),
        None => int(v).to_string(),
    }
}

/// Guest memory that cannot be read (every pointer is printed as an address).
#[derive(Copy, Clone, Debug, Default)]
pub struct NoMem;

impl GuestMem for NoMem {
    fn read(&self, _addr: u64, _buf: &mut [u8]) -> Result<(), i32> {
        Err(libc::EFAULT)
    }
}

/// The first half of a strace line: `openat(AT_FDCWD, "/etc/passwd", O_RDONLY`
/// (with a trailing `, ` when arguments printed at exit follow).
pub fn format_entry(nr: u64, args: &[u64; 6], mem: &dyn GuestMem) -> String {
    format_entry_in(Abi::X86_64, nr, args, mem)
}

/// [`format_entry`] for a call of `abi`'s table (i386 arguments are the
/// registers' low 32 bits, which the caller passes).
pub fn format_entry_in(abi: Abi, nr: u64, args: &[u64; 6], mem: &dyn GuestMem) -> String {
    let items = plan(abi, nr, args);
    let cx = Cx { sc: abi.lookup(nr), a: args, ret: None, injected: false, saved: Saved::default(), mem };
    let mut s = match cx.sc {
        Some(sc) => format!("{}(", sc.name),
        None => format!("syscall_{}(", xlat::hex(nr)),
    };
    let split = items.iter().position(|it| it.out).unwrap_or(items.len());
    join_into(&mut s, &items[..split], &cx);
    if split > 0 && split < items.len() && !items[split].glue {
        s.push_str(", ");
    }
    s
}

/// The second half: output arguments, the rest, `)`, and ` = ret`
/// (`= -1 ENOENT (No such file or directory)`, `= ?` for exit_group).
pub fn format_exit(nr: u64, args: &[u64; 6], ret: i64, mem: &dyn GuestMem) -> String {
    exit_half(Abi::X86_64, nr, args, ret, false, mem)
}

/// [`format_exit`] for a call of `abi`'s table.
pub fn format_exit_in(abi: Abi, nr: u64, args: &[u64; 6], ret: i64, mem: &dyn GuestMem) -> String {
    exit_half(abi, nr, args, ret, false, mem)
}

/// The second half for a call that was not made but failed with `errno`
/// (a denied call), as strace prints a fault it injected, without its
/// ` (INJECTED)` mark (the layer adds it to the denials of strace's
/// `-e inject=`, `Observers::injected`): the error is shown even for calls that cannot fail
/// (`getuid() = -1 EPERM (Operation not permitted)`), and output arguments
/// as addresses.
pub fn format_exit_injected(nr: u64, args: &[u64; 6], errno: i32, mem: &dyn GuestMem) -> String {
    exit_half(Abi::X86_64, nr, args, -(errno as i64), true, mem)
}

/// [`format_exit_injected`] for a call of `abi`'s table.
pub fn format_exit_injected_in(abi: Abi, nr: u64, args: &[u64; 6], errno: i32, mem: &dyn GuestMem) -> String {
    exit_half(abi, nr, args, -(errno as i64), true, mem)
}

/// What the second half needs of the call's entry: the values of in-out
/// arguments before the kernel changed them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Saved {
    /// A `socklen_t *` argument's value at entry (printed `[IN => OUT]`
    /// when the call changed it, as strace does).
    pub socklen: Option<u32>,
}

/// The in-out values of the call's arguments at its entry.
pub fn saved_at_entry(abi: Abi, nr: u64, args: &[u64; 6], mem: &dyn GuestMem) -> Saved {
    let mut saved = Saved::default();
    if let Some(sc) = abi.lookup(nr)
        && let Some(i) = sc.args.iter().position(|&k| k == Arg::SockLenOut)
        && args[i] != 0
    {
        saved.socklen = quote::read_u32(mem, args[i]);
    }
    saved
}

/// [`format_exit_in`], or [`format_exit_injected_in`] for a denied call
/// (`injected`), with the values `saved` at the call's entry, in its two
/// parts: the output arguments and `)`, and the result after `= ` (strace
/// puts the `=` in column 40 where the line is shorter).
pub fn format_exit_parts_in(
    abi: Abi,
    nr: u64,
    args: &[u64; 6],
    ret: i64,
    injected: bool,
    saved: Saved,
    mem: &dyn GuestMem,
) -> (String, String) {
    let items = plan(abi, nr, args);
    let cx = Cx { sc: abi.lookup(nr), a: args, ret: Some(ret), injected, saved, mem };
    let split = items.iter().position(|it| it.out).unwrap_or(items.len());
    let mut s = String::new();
    join_into(&mut s, &items[split..], &cx);
    s.push(')');
    (s, format_ret(&cx, ret))
}

/// The column strace puts a trace line's `= ` in, unless the call's text
/// reaches it (then one space after).
pub const RESULT_COLUMN: usize = 40;

/// Finish `line`, a trace line up to the call's `)`, with the call's
/// result `= ret`, aligned as strace aligns it.
pub fn push_result(line: &mut String, ret: &str) {
    let col = line.len();
    let pad = if col < RESULT_COLUMN { RESULT_COLUMN - col } else { 1 };
    line.extend(std::iter::repeat_n(' ', pad));
    line.push_str("= ");
    line.push_str(ret);
}

fn exit_half(abi: Abi, nr: u64, args: &[u64; 6], ret: i64, injected: bool, mem: &dyn GuestMem) -> String {
    let (mut s, ret) = format_exit_parts_in(abi, nr, args, ret, injected, Saved::default(), mem);
    s.push_str(" = ");
    s.push_str(&ret);
    s
}

/// One whole line, `[pid N] ` prefix and newline included.
pub fn format_line(pid: u32, nr: u64, args: &[u64; 6], ret: i64, mem: &dyn GuestMem) -> String {
    format!("[pid {pid}] {}{}\n", format_entry(nr, args, mem), format_exit(nr, args, ret, mem))
}

/// Decoding context of one call.
struct Cx<'a> {
    sc: Option<&'static Syscall>,
    a: &'a [u64; 6],
    /// None while printing the entry half.
    ret: Option<i64>,
    /// `ret` is an error bt-run returned instead of making the call.
    injected: bool,
    /// In-out values at the call's entry.
    saved: Saved,
    mem: &'a dyn GuestMem,
}

impl Cx<'_> {
    /// The call returned an error: output arguments are shown as addresses.
    fn failed(&self) -> bool {
        match (self.ret, self.sc) {
            (Some(r), Some(sc)) => (sc.ret != Ret::NoErr || self.injected) && errno::from_ret(r).is_some(),
            (Some(r), None) => errno::from_ret(r).is_some(),
            (None, _) => false,
        }
    }

    fn ret_u(&self) -> u64 {
        self.ret.unwrap_or(0) as u64
    }

    fn name(&self) -> &'static str {
        self.sc.map_or("", |s| s.name)
    }
}

/// What one printed argument shows.
#[derive(Copy, Clone, Debug)]
enum K {
    A(Arg),
    /// Flags of a table only one call uses, with strace's default name.
    Flags(xlat::Xlat, &'static str),
    /// fcntl F_SETFD: `FD_CLOEXEC`.
    FdCloexec,
    /// A signal number (fcntl F_SETSIG, PR_SET_PDEATHSIG).
    Signal,
    Lease,
    Seals,
    Notify,
    StatxFlags,
    FaccessatFlags,
    Bitset,
    /// Output `[N]` read through a pointer (parent_tid, FIONREAD).
    IntRef,
    /// Output `[0x…]` (arch_prctl ARCH_GET_FS).
    AddrRef,
    /// Output `[SIGTERM]` (PR_GET_PDEATHSIG).
    SigRef,
    /// PR_SET_NAME / PR_GET_NAME.
    CommIn,
    CommOut,
    Winsize,
    /// A device number: `makedev(0x1, 0x3)`.
    Dev,
    Clone3,
    Clone3Result,
    Dumpable,
}

#[derive(Copy, Clone, Debug)]
struct Item {
    label: Option<&'static str>,
    idx: usize,
    k: K,
    /// Printed when the call returns (and so is everything after it).
    out: bool,
    /// Printed right after the previous item, without `, `.
    glue: bool,
}

fn it(idx: usize, k: K) -> Item {
    let out = matches!(k, K::A(a) if a.is_output())
        || matches!(k, K::IntRef | K::AddrRef | K::SigRef | K::CommOut | K::Clone3Result);
    Item { label: None, idx, k, out, glue: false }
}

fn named(label: &'static str, idx: usize, k: K) -> Item {
    Item { label: Some(label), ..it(idx, k) }
}

fn join_into(s: &mut String, items: &[Item], cx: &Cx) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 && !item.glue {
            s.push_str(", ");
        }
        if let Some(l) = item.label {
            s.push_str(l);
        }
        s.push_str(&render(item, cx));
    }
}

/// The arguments strace shows for this call, in order. Depends only on the
/// registers, so the entry and exit halves agree on where they split.
fn plan(abi: Abi, nr: u64, a: &[u64; 6]) -> Vec<Item> {
    let i386 = abi == Abi::I386;
    let Some(sc) = abi.lookup(nr) else {
        return (0..6).map(|i| it(i, K::A(Arg::Hex))).collect();
    };
    let mut v: Vec<Item> = sc.args.iter().enumerate().map(|(i, &k)| it(i, K::A(k))).collect();
    let cmd32 = a[1] & 0xffff_ffff;
    match sc.name {
        // The mode is shown only when the flags create a file.
        "open" | "openat" if a[v.len() - 2] & (xlat::O_CREAT | xlat::O_TMPFILE_BIT) == 0 => {
            v.pop();
        }
        "mq_open" if a[1] & xlat::O_CREAT == 0 => v.truncate(2),
        "fcntl" | "fcntl64" => {
            v.truncate(2);
            let third = match cmd32 {
                1 | 3 | 9 | 11 | 1025 | 1032 | 1034 | 1035 | 1037 => None,
                0 | 1030 | 1031 | 1027 => Some(K::A(Arg::Int)),
                2 => Some(K::FdCloexec),
                4 => Some(K::A(Arg::OpenFlags)),
                8 => Some(K::A(Arg::Pid)),
                10 => Some(K::Signal),
                1024 => Some(K::Lease),
                1026 => Some(K::Notify),
                1033 => Some(K::Seals),
                6 | 7 | 37 | 38 | 15 => Some(K::A(Arg::Ptr)),
                5 | 36 | 16 | 17 | 1036 | 1038 => Some(K::A(Arg::OutPtr)),
                _ => Some(K::A(Arg::Hex)),
            };
            v.extend(third.map(|k| it(2, k)));
        }
        // (i386 `futex` takes a 32-bit timespec, shown as its address.)
        "futex" | "futex_time64" => {
            let ts_kind = if sc.name == "futex" && i386 { Arg::Ptr } else { Arg::Timespec };
            let (val, ts, ua2, v3) = (it(2, K::A(Arg::UInt)), it(3, K::A(ts_kind)), it(4, K::A(Arg::Ptr)), 5);
            let val2 = it(3, K::A(Arg::UInt));
            v.truncate(2);
            match cmd32 & 127 {
                0 => v.extend([val, ts]),
                6 | 13 => v.push(ts),
                9 => v.extend([val, ts, it(v3, K::Bitset)]),
                10 => v.extend([val, it(v3, K::Bitset)]),
                3 => v.extend([val, val2, ua2]),
                4 | 12 => v.extend([val, val2, ua2, it(v3, K::A(Arg::UInt))]),
                11 => v.extend([val, ts, ua2]),
                1 | 2 => v.push(val),
                7 | 8 => {}
                _ => v.extend([val, it(3, K::A(Arg::Ptr)), ua2, it(v3, K::A(Arg::Hex))]),
            }
        }
        "clone" => {
            let f = a[0] & !0xff;
            // i386 passes tls before child_tidptr (CLONE_BACKWARDS).
            let (ctid, tls) = if i386 { (4, 3) } else { (3, 4) };
            v = vec![named("child_stack=", 1, K::A(Arg::Ptr)), named("flags=", 0, K::A(Arg::CloneFlags))];
            if f & (xlat::CLONE_PARENT_SETTID | xlat::CLONE_PIDFD) != 0 {
                v.push(named("parent_tid=", 2, K::IntRef));
            }
            if f & xlat::CLONE_SETTLS != 0 {
                v.push(named("tls=", tls, K::A(Arg::Ptr)));
            }
            if f & (xlat::CLONE_CHILD_SETTID | xlat::CLONE_CHILD_CLEARTID) != 0 {
                v.push(named("child_tidptr=", ctid, K::A(Arg::Ptr)));
            }
        }
        "clone3" => {
            v = vec![it(0, K::Clone3), Item { glue: true, ..it(0, K::Clone3Result) }, it(1, K::A(Arg::Size))];
        }
        "arch_prctl" => match a[0] & 0xffff_ffff {
            0x1003 | 0x1004 => v[1] = it(1, K::AddrRef),
            0x1011 => v.truncate(1),
            0x1021 | 0x1022 | 0x1024 => v[1] = it(1, K::A(Arg::OutPtr)),
            _ => v[1] = it(1, K::A(Arg::Hex)),
        },
        "ioctl" => {
            let req = a[1] & 0xffff_ffff;
            v[2] = match req {
                0x5413 => it(2, K::Winsize).with_out(),
                0x5414 => it(2, K::Winsize),
                0x541b | 0x5411 | 0x80045430 | 0x540f | 0x5429 => it(2, K::IntRef),
                _ if xlat::lookup(req, xlat::IOCTLS).is_some() && xlat::ioctl_reads(req) => it(2, K::A(Arg::OutPtr)),
                _ if xlat::lookup(req, xlat::IOCTLS).is_some() => it(2, K::A(Arg::Ptr)),
                _ => it(2, K::A(Arg::Hex)),
            };
        }
        "prctl" => {
            let hex = |i| it(i, K::A(Arg::Hex));
            v.truncate(1);
            match a[0] & 0xffff_ffff {
                3 | 7 | 21 | 13 | 30 | 31 | 32 => {}
                15 => v.push(it(1, K::CommIn)),
                16 => v.push(it(1, K::CommOut)),
                1 => v.push(it(1, K::Signal)),
                2 => v.push(it(1, K::SigRef)),
                4 => v.push(it(1, K::Dumpable)),
                8 | 36 => v.push(it(1, K::A(Arg::ULong))),
                37 => v.push(it(1, K::IntRef)),
                38 | 41 | 57 => v.extend([it(1, K::A(Arg::ULong)), hex(2), hex(3), hex(4)]),
                23 | 24 => v.push(it(1, K::A(Arg::ULong))),
                _ => v.extend([hex(1), hex(2), hex(3), hex(4)]),
            }
        }
        "faccessat2" => v[3] = it(3, K::FaccessatFlags),
        "close_range" => {
            static CLOSE_RANGE: xlat::Xlat = &[(2, "CLOSE_RANGE_UNSHARE"), (4, "CLOSE_RANGE_CLOEXEC")];
            v[2] = it(2, K::Flags(CLOSE_RANGE, "CLOSE_RANGE_???"));
        }
        // new_address only matters with MREMAP_MAYMOVE and FIXED/DONTUNMAP.
        "mremap" if !(a[3] & 6 != 0 && a[3] & 1 != 0) => {
            v.pop();
        }
        "mknod" | "mknodat" => {
            let m = v.len() - 2;
            match a[m] & 0o170000 {
                0o20000 | 0o60000 => v[m + 1] = it(m + 1, K::Dev),
                _ => {
                    v.pop();
                }
            }
        }
        "statx" => v[2] = it(2, K::StatxFlags),
        _ => {}
    }
    v
}

impl Item {
    fn with_out(self) -> Item {
        Item { out: true, ..self }
    }
}

/// `int` / `unsigned`: the low 32 bits of a register.
fn int(v: u64) -> i32 {
    v as u32 as i32
}

fn render(item: &Item, cx: &Cx) -> String {
    let v = cx.a.get(item.idx).copied().unwrap_or(0);
    let mem = cx.mem;
    let failed = cx.failed();
    let q = quote::addr;
    match item.k {
        K::A(k) => render_arg(k, item.idx, v, cx),
        K::Flags(table, dflt) => xlat::flags(v & 0xffff_ffff, table, Some(dflt)),
        K::FdCloexec => xlat::flags(v, xlat::FD_FLAGS, Some("FD_???")),
        K::Signal => {
            if cx.name() == "prctl" && v > 128 {
                v.to_string()
            } else {
                xlat::signal(int(v))
            }
        }
        K::Lease => xlat::xval(v & 0xffff_ffff, xlat::LOCK_TYPES, "F_???"),
        K::Seals => xlat::flags(v & 0xffff_ffff, xlat::SEALS, Some("F_SEAL_???")),
        K::Notify => xlat::flags(
            v & 0xffff_ffff,
            &[
                (1, "DN_ACCESS"),
                (2, "DN_MODIFY"),
                (4, "DN_CREATE"),
                (8, "DN_DELETE"),
                (0x10, "DN_RENAME"),
                (0x20, "DN_ATTRIB"),
                (0x80000000, "DN_MULTISHOT"),
            ],
            Some("DN_???"),
        ),
        K::StatxFlags => {
            let v = v & 0xffff_ffff;
            let mut s = xlat::flags(v & 0x6000, xlat::STATX_SYNC, Some("AT_STATX_???"));
            if v & !0x6000 != 0 {
                s.push('|');
                s.push_str(&xlat::flags(v & !0x6000, xlat::AT_FLAGS, None));
            }
            s
        }
        K::FaccessatFlags => xlat::flags(v & 0xffff_ffff, xlat::FACCESSAT_FLAGS, Some("AT_???")),
        K::Bitset => match v & 0xffff_ffff {
            0xffff_ffff => "FUTEX_BITSET_MATCH_ANY".to_string(),
            b => xlat::hex(b),
        },
        K::IntRef if failed => q(v),
        K::IntRef => structs::int_ref(mem, v, true),
        K::AddrRef if failed => q(v),
        K::AddrRef => structs::addr_ref(mem, v),
        K::SigRef if failed => q(v),
        K::SigRef => match quote::read_u32(mem, v).filter(|_| v != 0) {
            Some(s) => format!("[{}]", xlat::signal(s as i32)),
            None => q(v),
        },
        K::CommIn => quote::printstr_ex(mem, v, 15, true, false),
        K::CommOut if failed => q(v),
        K::CommOut => quote::printstr_ex(mem, v, 16, true, false),
        K::Winsize if failed => q(v),
        K::Winsize => structs::winsize(mem, v),
        K::Dev => structs::makedev(v & 0xffff_ffff),
        K::Dumpable => {
            xlat::xval(v, &[(0, "SUID_DUMP_DISABLE"), (1, "SUID_DUMP_USER"), (2, "SUID_DUMP_ROOT")], "SUID_DUMP_???")
        }
        K::Clone3 => clone3(mem, v, cx.a[1]),
        K::Clone3Result => clone3_result(mem, v, cx.a[1], failed),
    }
}

fn render_arg(k: Arg, idx: usize, v: u64, cx: &Cx) -> String {
    use Arg::*;
    let mem = cx.mem;
    let failed = cx.failed();
    let next = cx.a.get(idx + 1).copied().unwrap_or(0);
    let q = quote::addr;
    // Output arguments of a failed call: only the address.
    if k.is_output() && failed && !matches!(k, OutPtr) {
        return q(v);
    }
    match k {
        Int => int(v).to_string(),
        Fd => fd_str(mem, v),
        UInt => (v as u32).to_string(),
        Long | Off => (v as i64).to_string(),
        ULong | Size => v.to_string(),
        Hex => xlat::hex(v),
        Ptr | OutPtr => q(v),
        DirFd if int(v) == -100 => match mem.fd_path(-100) {
            Some(p) => format!("AT_FDCWD<{p}>"),
            None => "AT_FDCWD".to_string(),
        },
        DirFd => fd_str(mem, v),
        Pid => int(v).to_string(),
        Uid if v as u32 == u32::MAX => "-1".to_string(),
        Uid => (v as u32).to_string(),
        Path => quote::printpath(mem, v),
        Str => quote::printstr(mem, v),
        BufIn => quote::printstrn(mem, v, next),
        BufOut => quote::printstrn(mem, v, cx.ret_u()),
        RandOut => quote::printstr_ex(mem, v, cx.ret_u(), false, true),
        PathOut => quote::printpathn(mem, v, cx.ret_u()),
        Argv => structs::argv(mem, v),
        Envp => structs::envp(mem, v),
        IovIn => structs::iovec(mem, v, next, u64::MAX, false),
        IovOut => structs::iovec(mem, v, next, cx.ret_u(), false),
        OpenFlags => xlat::open_flags(v),
        Mode => xlat::octal_mode(v & 0xffff),
        FileMode => xlat::symbolic_mode(v as u16 as u32),
        AtFlags => xlat::flags(v & 0xffff_ffff, xlat::AT_FLAGS, Some("AT_???")),
        AccessMode => xlat::flags(v & 0xffff_ffff, xlat::ACCESS_MODES, Some("?_OK")),
        Whence => xlat::xval(v & 0xffff_ffff, xlat::WHENCE, "SEEK_???"),
        FcntlCmd => xlat::xval(v & 0xffff_ffff, xlat::FCNTL_CMDS, "F_???"),
        FcntlArg => xlat::hex(v),
        FlockOp => xlat::flags(
            v & 0xffff_ffff,
            &[(1, "LOCK_SH"), (2, "LOCK_EX"), (4, "LOCK_NB"), (8, "LOCK_UN")],
            Some("LOCK_???"),
        ),
        IoctlReq => xlat::ioctl_req(v),
        MmapProt => xlat::flags(v, xlat::MMAP_PROT, Some("PROT_???")),
        MmapFlags => xlat::mmap_flags(v),
        MremapFlags => xlat::flags(v, xlat::MREMAP_FLAGS, Some("MREMAP_???")),
        MsyncFlags => xlat::flags(v, xlat::MSYNC_FLAGS, Some("MS_???")),
        Madvise => xlat::xval(v & 0xffff_ffff, xlat::MADVISE, "MADV_???"),
        MlockallFlags => xlat::flags(v, xlat::MLOCKALL_FLAGS, Some("MCL_???")),
        Signal => xlat::signal(int(v)),
        SigHow => xlat::xval(v & 0xffff_ffff, xlat::SIGPROCMASK_HOW, "SIG_???"),
        SigSet | SigSetOut => structs::sigset(mem, v, sigsetsize(idx, cx)),
        SigAction | SigActionOut => structs::sigaction(mem, v),
        ClockId => clockid(int(v)),
        TimerFlags => xlat::flags(v & 0xffff_ffff, xlat::TIMER_FLAGS, Some("TIMER_???")),
        Timespec | TimespecOut => structs::timespec(mem, v),
        WaitStatus if cx.ret == Some(0) => q(v),
        WaitStatus => structs::wait_status(mem, v),
        WaitOptions => xlat::flags(v & 0xffff_ffff, xlat::WAIT_OPTIONS, Some("W???")),
        CloneFlags if cx.name() == "clone" => xlat::clone_flags(v),
        CloneFlags => xlat::flags(v & 0xffff_ffff, xlat::CLONE_FLAGS, Some("CLONE_???")),
        FutexOp => xlat::futex_op(v),
        SockDomain => xlat::xval(v & 0xffff_ffff, xlat::ADDR_FAMILIES, "AF_???"),
        SockType => xlat::sock_type(v),
        SockProto => match cx.a[0] & 0xffff_ffff {
            2 | 10 => xlat::xval(v & 0xffff_ffff, xlat::INET_PROTOS, "IPPROTO_???"),
            _ => int(v).to_string(),
        },
        SockFlags => xlat::flags(v & 0xffff_ffff, xlat::SOCK_FLAGS, Some("SOCK_???")),
        SockAddr => structs::sockaddr(mem, v, next & 0xffff_ffff),
        SockAddrOut => match quote::read_u32(mem, next).filter(|_| next != 0 && v != 0) {
            Some(len) => structs::sockaddr(mem, v, len as u64),
            None => q(v),
        },
        SockLenOut => match (cx.saved.socklen, quote::read_u32(mem, v)) {
            (Some(was), Some(now)) if was != now && v != 0 => format!("[{was} => {now}]"),
            _ => structs::int_ref(mem, v, false),
        },
        MsgFlags => xlat::flags(v & 0xffff_ffff, xlat::MSG_FLAGS, Some("MSG_???")),
        ShutdownHow => xlat::xval(v & 0xffff_ffff, xlat::SHUTDOWN_HOW, "SHUT_???"),
        PipeFds => structs::int_pair(mem, v),
        FdFlags => fd_flags(cx.name(), v),
        Resource => xlat::xval(v & 0xffff_ffff, xlat::RESOURCES, "RLIMIT_???"),
        Rlimit | RlimitOut => structs::rlimit(mem, v),
        ArchCode => xlat::xval(v & 0xffff_ffff, xlat::ARCH_CODES, "ARCH_???"),
        ArchAddr => xlat::hex(v),
        PrctlOp => xlat::xval(v & 0xffff_ffff, xlat::PRCTL_OPS, "PR_???"),
        GrndFlags => xlat::flags(v & 0xffff_ffff, xlat::GRND_FLAGS, Some("GRND_???")),
        MemfdFlags => xlat::flags(v & 0xffff_ffff, xlat::MEMFD_FLAGS, Some("MFD_???")),
        RenameFlags => xlat::flags(v & 0xffff_ffff, xlat::RENAME_FLAGS, Some("RENAME_???")),
        XattrFlags => xlat::flags(v & 0xffff_ffff, xlat::XATTR_FLAGS, Some("XATTR_???")),
        SpliceFlags => xlat::flags(v & 0xffff_ffff, xlat::SPLICE_FLAGS, Some("SPLICE_F_???")),
        Fadvise => xlat::xval(v & 0xffff_ffff, xlat::FADVISE, "POSIX_FADV_???"),
        EpollCtlOp => xlat::xval(v & 0xffff_ffff, xlat::EPOLL_CTL_OPS, "EPOLL_CTL_???"),
        StatOut => structs::stat(mem, v),
        UtsnameOut => structs::utsname(mem, v),
        SysinfoOut => structs::sysinfo(mem, v),
        DirentsOut if cx.ret_u() > next & 0xffff_ffff => q(v),
        DirentsOut => structs::dirents(mem, v, cx.ret_u(), if cx.name() == "getdents" { 18 } else { 19 }),
    }
}

/// The `sigsetsize` of a sigset argument: the first `Size` after it.
fn sigsetsize(idx: usize, cx: &Cx) -> u64 {
    cx.sc
        .and_then(|sc| sc.args.iter().enumerate().skip(idx + 1).find(|(_, k)| **k == Arg::Size))
        .map_or(8, |(i, _)| cx.a[i])
}

/// `O_CLOEXEC`-style flags under the name each call's header gives them.
fn fd_flags(name: &str, v: u64) -> String {
    static EFD: xlat::Xlat = &[(1, "EFD_SEMAPHORE"), (0o2000000, "EFD_CLOEXEC"), (0o4000, "EFD_NONBLOCK")];
    static EPOLL: xlat::Xlat = &[(0o2000000, "EPOLL_CLOEXEC")];
    static SFD: xlat::Xlat = &[(0o2000000, "SFD_CLOEXEC"), (0o4000, "SFD_NONBLOCK")];
    static TFD: xlat::Xlat = &[(0o2000000, "TFD_CLOEXEC"), (0o4000, "TFD_NONBLOCK")];
    static IN: xlat::Xlat = &[(0o2000000, "IN_CLOEXEC"), (0o4000, "IN_NONBLOCK")];
    let (table, dflt) = match name {
        "eventfd2" => (EFD, "EFD_???"),
        "epoll_create1" => (EPOLL, "EPOLL_???"),
        "signalfd4" => (SFD, "SFD_???"),
        "timerfd_create" => (TFD, "TFD_???"),
        "inotify_init1" => (IN, "IN_???"),
        _ => return xlat::fd_flags(v),
    };
    xlat::flags(v & 0xffff_ffff, table, Some(dflt))
}

/// strace's clock names, including CPU clocks (`MAKE_PROCESS_CPUCLOCK(0,
/// CPUCLOCK_SCHED)`) and dynamic clocks (`FD_TO_CLOCKID(3)`), as current
/// strace prints them (strace 6.1 printed these as `0x… /* CLOCK_??? */`).
fn clockid(id: i32) -> String {
    if id < 0 {
        if id & 7 == 3 {
            return format!("FD_TO_CLOCKID({})", !(id >> 3) as u32 as i32);
        }
        static CPUCLOCKS: xlat::Xlat = &[(0, "CPUCLOCK_PROF"), (1, "CPUCLOCK_VIRT"), (2, "CPUCLOCK_SCHED")];
        let kind = if id & 4 != 0 { "THREAD" } else { "PROCESS" };
        let which = xlat::xval((id & 7) as u64, CPUCLOCKS, "CPUCLOCK_???");
        return format!("MAKE_{kind}_CPUCLOCK({}, {which})", !(id >> 3));
    }
    xlat::xval(id as u64, xlat::CLOCKS, "CLOCK_???")
}

fn clone3(mem: &dyn GuestMem, a: u64, size: u64) -> String {
    const MIN: u64 = 64;
    if size < MIN {
        return quote::addr(a);
    }
    let Some(b) = quote::read_bytes(mem, a, size.min(88) as usize).filter(|_| a != 0) else {
        return quote::addr(a);
    };
    let f = |o: usize| b.get(o..o + 8).and_then(|s| s.try_into().ok()).map_or(0, u64::from_le_bytes);
    let fl = f(0);
    let mut s = format!("{{flags={}", xlat::flags(fl, xlat::CLONE_FLAGS, Some("CLONE_???")));
    if fl & xlat::CLONE_PIDFD != 0 {
        s.push_str(&format!(", pidfd={}", quote::addr(f(8))));
    }
    if fl & (xlat::CLONE_CHILD_SETTID | xlat::CLONE_CHILD_CLEARTID) != 0 {
        s.push_str(&format!(", child_tid={}", quote::addr(f(16))));
    }
    if fl & xlat::CLONE_PARENT_SETTID != 0 {
        s.push_str(&format!(", parent_tid={}", quote::addr(f(24))));
    }
    let sig = f(32);
    let sig = if sig < i32::MAX as u64 { xlat::signal(sig as i32) } else { sig.to_string() };
    s.push_str(&format!(", exit_signal={sig}, stack={}, stack_size={}", quote::addr(f(40)), xlat::hex(f(48))));
    if fl & xlat::CLONE_SETTLS != 0 {
        s.push_str(&format!(", tls={}", quote::addr(f(56))));
    }
    s.push('}');
    s
}

fn clone3_result(mem: &dyn GuestMem, a: u64, size: u64, failed: bool) -> String {
    if failed || size < 64 || a == 0 {
        return String::new();
    }
    let Some(fl) = quote::read_u64(mem, a) else {
        return String::new();
    };
    let mut parts = Vec::new();
    for (bit, off, name) in [(xlat::CLONE_PIDFD, 8, "pidfd"), (xlat::CLONE_PARENT_SETTID, 24, "parent_tid")] {
        if fl & bit != 0 {
            let p = a.checked_add(off).and_then(|o| quote::read_u64(mem, o)).unwrap_or(0);
            parts.push(format!("{name}={}", structs::int_ref(mem, p, true)));
        }
    }
    if parts.is_empty() { String::new() } else { format!(" => {{{}}}", parts.join(", ")) }
}

/// The text after ` = `.
fn format_ret(cx: &Cx, ret: i64) -> String {
    let kind = cx.sc.map_or(Ret::Dec, |s| s.ret);
    if let (true, Some(e)) = (cx.injected, errno::from_ret(ret)) {
        // bt-run returned the error instead of making the call: it did
        // return (even exit_group) and the errno is what the guest got.
        return errno::injected_error(e);
    }
    if kind == Ret::NoReturn {
        return "?".to_string();
    }
    if let (true, Some(e)) = (kind != Ret::NoErr || cx.injected, errno::from_ret(ret)) {
        return errno::strace_error(e);
    }
    let u = ret as u64;
    if cx.sc.is_none() {
        return xlat::hex(u);
    }
    if kind == Ret::Fd {
        return fd_str(cx.mem, u);
    }
    // (i386 fcntl64 returns what fcntl does.)
    let name = if cx.name() == "fcntl64" { "fcntl" } else { cx.name() };
    match (name, cx.a[1] & 0xffff_ffff) {
        ("fcntl", 1) if u != 0 => {
            return format!("{} (flags {})", xlat::hex(u), xlat::flags(u, xlat::FD_FLAGS, None));
        }
        ("fcntl", 3) => return format!("{} (flags {})", xlat::hex(u), xlat::open_flags(u)),
        ("fcntl", 1025) => {
            return match xlat::lookup(u, xlat::LOCK_TYPES) {
                Some(n) => format!("{} ({n})", xlat::hex(u)),
                None => xlat::hex(u),
            };
        }
        ("fcntl", 1034) if u != 0 => {
            return format!("{} (seals {})", xlat::hex(u), xlat::flags(u, xlat::SEALS, None));
        }
        _ => {}
    }
    match kind {
        Ret::Hex => xlat::hex(u),
        Ret::Oct => xlat::octal_mode(u),
        _ => ret.to_string(),
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_extra;
#[cfg(test)]
mod tests_i386;
