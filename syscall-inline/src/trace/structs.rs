//! Structures strace decodes, read from guest memory (x86-64 layouts).
//!
//! Each printer takes the guest address and falls back to printing the
//! address (`NULL` or `0x…`) when the memory cannot be read, as strace's
//! `umove_or_printaddr` does.

use super::GuestMem;
use super::quote::{addr, printstr, printstrn, quote, read_bytes, read_u32, read_u64};
use super::xlat::{self, hex};

/// strace prints at most this many array elements (its `-s` default).
const MAX_ELEMS: u64 = 32;

fn u64_at(b: &[u8], off: usize) -> u64 {
    b.get(off..off + 8).and_then(|s| s.try_into().ok()).map_or(0, u64::from_le_bytes)
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4).and_then(|s| s.try_into().ok()).map_or(0, u32::from_le_bytes)
}

fn u16_at(b: &[u8], off: usize) -> u16 {
    b.get(off..off + 2).and_then(|s| s.try_into().ok()).map_or(0, u16::from_le_bytes)
}

/// `struct stat` (abbreviated, as strace without -v):
/// `{st_mode=S_IFREG|0644, st_size=1234, ...}`.
pub fn stat(mem: &dyn GuestMem, a: u64) -> String {
    let Some(b) = read_bytes(mem, a, 144).filter(|_| a != 0) else {
        return addr(a);
    };
    let mode = u32_at(&b, 24);
    let tail = match mode & 0o170000 {
        0o20000 | 0o60000 => format!("st_rdev={}", makedev(u64_at(&b, 40))),
        _ => format!("st_size={}", u64_at(&b, 48)),
    };
    format!("{{st_mode={}, {tail}, ...}}", xlat::symbolic_mode(mode))
}

/// A device number as glibc encodes it: `makedev(0x88, 0)`.
pub fn makedev(dev: u64) -> String {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    format!("makedev({}, {})", hex(major), hex(minor))
}

/// `struct timespec`: `{tv_sec=1, tv_nsec=500}`.
pub fn timespec(mem: &dyn GuestMem, a: u64) -> String {
    match read_bytes(mem, a, 16).filter(|_| a != 0) {
        Some(b) => format!("{{tv_sec={}, tv_nsec={}}}", u64_at(&b, 0) as i64, u64_at(&b, 8)),
        None => addr(a),
    }
}

fn rlim(v: u64) -> String {
    if v == u64::MAX {
        "RLIM64_INFINITY".to_string()
    } else if v > 1024 && v & 1023 == 0 {
        format!("{}*1024", v / 1024)
    } else {
        v.to_string()
    }
}

/// `struct rlimit`: `{rlim_cur=8192*1024, rlim_max=RLIM64_INFINITY}`.
pub fn rlimit(mem: &dyn GuestMem, a: u64) -> String {
    match read_bytes(mem, a, 16).filter(|_| a != 0) {
        Some(b) => format!("{{rlim_cur={}, rlim_max={}}}", rlim(u64_at(&b, 0)), rlim(u64_at(&b, 8))),
        None => addr(a),
    }
}

/// A `sigset_t` of `len` bytes; strace insists on the kernel's 8.
pub fn sigset(mem: &dyn GuestMem, a: u64, len: u64) -> String {
    if a == 0 || len != 8 {
        return addr(a);
    }
    match read_bytes(mem, a, 8) {
        Some(b) => xlat::sigset(&b),
        None => addr(a),
    }
}

/// The kernel's `struct sigaction` (handler, flags, restorer, mask):
/// `{sa_handler=SIG_IGN, sa_mask=[], sa_flags=SA_RESTORER, sa_restorer=0x…}`.
pub fn sigaction(mem: &dyn GuestMem, a: u64) -> String {
    let Some(b) = read_bytes(mem, a, 32).filter(|_| a != 0) else {
        return addr(a);
    };
    let (handler, fl, restorer) = (u64_at(&b, 0), u64_at(&b, 8), u64_at(&b, 16));
    let h = xlat::lookup(handler, xlat::SA_HANDLERS).map_or_else(|| addr(handler), str::to_string);
    let mut s = format!(
        "{{sa_handler={h}, sa_mask={}, sa_flags={}",
        xlat::sigset(&b[24..32]),
        xlat::flags(fl, xlat::SA_FLAGS, Some("SA_???"))
    );
    if fl & xlat::SA_RESTORER != 0 {
        s.push_str(&format!(", sa_restorer={}", addr(restorer)));
    }
    s.push('}');
    s
}

/// `int *wstatus`: `[{WIFEXITED(s) && WEXITSTATUS(s) == 0}]`.
pub fn wait_status(mem: &dyn GuestMem, a: u64) -> String {
    let Some(st) = read_u32(mem, a).filter(|_| a != 0) else {
        return addr(a);
    };
    let mut st = st;
    let sig_name = |s: u32| xlat::signal(s as i32);
    let body = if st & 0xff == 0x7f {
        let sig = (st >> 8) & 0xff;
        let s = format!(
            "{{WIFSTOPPED(s) && WSTOPSIG(s) == {}{}}}",
            sig_name(sig & 0x7f),
            if sig & 0x80 != 0 { " | 0x80" } else { "" }
        );
        st &= !((sig << 8) | 0x7f);
        s
    } else if st & 0x7f != 0 && st != 0xffff {
        let sig = st & 0x7f;
        let core = st & 0x80 != 0;
        let s = format!(
            "{{WIFSIGNALED(s) && WTERMSIG(s) == {}{}}}",
            sig_name(sig),
            if core { " && WCOREDUMP(s)" } else { "" }
        );
        st &= !(sig | 0x80);
        s
    } else if st & 0x7f == 0 {
        let code = (st >> 8) & 0xff;
        st &= !(code << 8);
        format!("{{WIFEXITED(s) && WEXITSTATUS(s) == {code}}}")
    } else {
        st = 0;
        "{WIFCONTINUED(s)}".to_string()
    };
    let mut out = format!("[{body}");
    if st != 0 {
        let event = st >> 16;
        if event != 0 {
            out.push_str(&format!("|{}<<16", hex(event as u64)));
            st &= 0xffff;
        }
        if st != 0 {
            out.push_str(&format!("|{}", hex(st as u64)));
        }
    }
    out.push(']');
    out
}

/// `char *const argv[]`: `["ls", "-l"]`, cut after 32 entries.
pub fn argv(mem: &dyn GuestMem, a: u64) -> String {
    if a == 0 {
        return "NULL".to_string();
    }
    let mut out = String::new();
    for n in 0u64.. {
        let cur = n.checked_mul(8).and_then(|o| a.checked_add(o));
        let Some(word) = cur.and_then(|c| read_u64(mem, c)) else {
            if n == 0 {
                return addr(a);
            }
            out.push_str(&format!(", ... /* {} */", addr(cur.unwrap_or(0))));
            break;
        };
        if n == 0 {
            out.push('[');
        }
        if word == 0 {
            break;
        }
        if n != 0 {
            out.push_str(", ");
        }
        if n + 1 > MAX_ELEMS {
            out.push_str("...");
            break;
        }
        out.push_str(&printstr(mem, word));
    }
    out.push(']');
    out
}

/// `char *const envp[]` as strace abbreviates it: `0x7ffd… /* 35 vars */`.
pub fn envp(mem: &dyn GuestMem, a: u64) -> String {
    if a == 0 {
        return "NULL".to_string();
    }
    // Count up to a bound: the guest controls how long the array is.
    const CAP: u64 = 1 << 16;
    let mut n = 0u64;
    let mut unterminated = false;
    while n < CAP {
        let Some(cur) = a.checked_add(n * 8) else {
            unterminated = true;
            break;
        };
        match read_u64(mem, cur) {
            None if n == 0 => return addr(a),
            None | Some(0) => break,
            Some(_) => n += 1,
        }
    }
    format!(
        "{} /* {n} var{}{} */",
        addr(a),
        if n == 1 { "" } else { "s" },
        if unterminated { ", unterminated" } else { "" }
    )
}

/// `struct iovec[cnt]`, element data cut to `data_size` bytes in total
/// (`u64::MAX` for no limit) or, with `addrs_only`, shown as addresses.
pub fn iovec(mem: &dyn GuestMem, a: u64, cnt: u64, data_size: u64, addrs_only: bool) -> String {
    if a == 0 {
        return "NULL".to_string();
    }
    if cnt == 0 {
        return "[]".to_string();
    }
    if cnt.checked_mul(16).and_then(|s| a.checked_add(s)).is_none() {
        return addr(a);
    }
    let mut left = data_size;
    let mut out = String::new();
    for i in 0..cnt {
        let cur = a + i * 16;
        if i != 0 {
            out.push_str(", ");
        }
        let Some(b) = read_bytes(mem, cur, 16) else {
            if i == 0 {
                return addr(a);
            }
            out.push_str(&format!("... /* {} */", addr(cur)));
            break;
        };
        if i == 0 {
            out.push('[');
        }
        if i >= MAX_ELEMS {
            out.push_str("...");
            break;
        }
        let (base, len) = (u64_at(&b, 0), u64_at(&b, 8));
        let n = len.min(left);
        if left != u64::MAX {
            left -= n;
        }
        let data = if addrs_only { addr(base) } else { printstrn(mem, base, n) };
        out.push_str(&format!("{{iov_base={data}, iov_len={len}}}"));
    }
    out.push(']');
    out
}

/// `int fds[2]` written by pipe/socketpair: `[3, 4]`.
pub fn int_pair(mem: &dyn GuestMem, a: u64) -> String {
    match read_bytes(mem, a, 8).filter(|_| a != 0) {
        Some(b) => format!("[{}, {}]", u32_at(&b, 0) as i32, u32_at(&b, 4) as i32),
        None => addr(a),
    }
}

/// `int *` / `socklen_t *` shown as `[N]`.
pub fn int_ref(mem: &dyn GuestMem, a: u64, signed: bool) -> String {
    match read_u32(mem, a).filter(|_| a != 0) {
        Some(v) if signed => format!("[{}]", v as i32),
        Some(v) => format!("[{v}]"),
        None => addr(a),
    }
}

/// `unsigned long *` shown as `[0x…]` (arch_prctl's ARCH_GET_FS).
pub fn addr_ref(mem: &dyn GuestMem, a: u64) -> String {
    match read_u64(mem, a).filter(|_| a != 0) {
        Some(v) => format!("[{}]", addr(v)),
        None => addr(a),
    }
}

/// `struct utsname` (abbreviated): `{sysname="Linux", nodename="box", ...}`.
pub fn utsname(mem: &dyn GuestMem, a: u64) -> String {
    let Some(b) = read_bytes(mem, a, 65 * 6).filter(|_| a != 0) else {
        return addr(a);
    };
    let field = |i: usize| {
        let f = &b[i * 65..i * 65 + 65];
        let (q, more) = quote(f, 64, true, false);
        if more { q + "..." } else { q }
    };
    format!("{{sysname={}, nodename={}, ...}}", field(0), field(1))
}

/// `struct winsize`: `{ws_row=24, ws_col=80, ws_xpixel=0, ws_ypixel=0}`.
pub fn winsize(mem: &dyn GuestMem, a: u64) -> String {
    match read_bytes(mem, a, 8).filter(|_| a != 0) {
        Some(b) => format!(
            "{{ws_row={}, ws_col={}, ws_xpixel={}, ws_ypixel={}}}",
            u16_at(&b, 0),
            u16_at(&b, 2),
            u16_at(&b, 4),
            u16_at(&b, 6)
        ),
        None => addr(a),
    }
}

/// A socket address of `len` bytes:
/// `{sa_family=AF_INET, sin_port=htons(80), sin_addr=inet_addr("127.0.0.1")}`.
pub fn sockaddr(mem: &dyn GuestMem, a: u64, len: u64) -> String {
    if a == 0 {
        return "NULL".to_string();
    }
    let len = len.min(128) as usize;
    if len < 2 {
        return addr(a);
    }
    let Some(b) = read_bytes(mem, a, len) else {
        return addr(a);
    };
    let fam = u16_at(&b, 0) as u64;
    let mut s = format!("{{sa_family={}", xlat::xval(fam, xlat::ADDR_FAMILIES, "AF_???"));
    let rest = &b[2..];
    match fam {
        _ if rest.is_empty() => {}
        1 => {
            // sun_path: abstract names start with a NUL and are shown as @"…".
            let (abs, path) = if rest[0] == 0 { ("@", &rest[1..]) } else { ("", rest) };
            let end = if abs.is_empty() { path.iter().position(|&c| c == 0).unwrap_or(path.len()) } else { path.len() };
            s.push_str(&format!(", sun_path={abs}{}", quote(path, end, false, false).0));
        }
        2 if b.len() >= 8 => {
            let port = u16::from_be_bytes([b[2], b[3]]);
            s.push_str(&format!(
                ", sin_port=htons({port}), sin_addr=inet_addr(\"{}.{}.{}.{}\")",
                b[4], b[5], b[6], b[7]
            ));
        }
        10 if b.len() >= 24 => {
            let port = u16::from_be_bytes([b[2], b[3]]);
            let flow = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
            let ip: [u8; 16] = b[8..24].try_into().unwrap_or([0; 16]);
            s.push_str(&format!(
                ", sin6_port=htons({port}), sin6_flowinfo=htonl({flow}), inet_pton(AF_INET6, \"{}\", &sin6_addr)",
                std::net::Ipv6Addr::from(ip)
            ));
            if b.len() >= 28 {
                s.push_str(&format!(", sin6_scope_id={}", u32_at(&b, 24)));
            }
        }
        16 if b.len() >= 12 => {
            s.push_str(&format!(", nl_pid={}, nl_groups={:08x}", u32_at(&b, 4), u32_at(&b, 8)));
        }
        _ => {
            let n = rest.len();
            s.push_str(&format!(", sa_data={}", quote(rest, n, false, false).0));
        }
    }
    s.push('}');
    s
}

/// Directory entries (abbreviated as strace does): `0x… /* 25 entries */`,
/// `N+ entries` if part of the buffer could not be read.
pub fn dirents(mem: &dyn GuestMem, a: u64, len: u64, header: u64) -> String {
    let mut count = 0u64;
    let (mut cur, mut left) = (a, len);
    // Every entry is at least `header` bytes; the bound keeps a hostile
    // buffer from costing more than a moment.
    while left >= header && count < 1 << 16 {
        let Some(reclen) = cur.checked_add(16).and_then(|r| read_bytes(mem, r, 2)).filter(|_| cur != 0) else {
            break;
        };
        count += 1;
        let reclen = (u16_at(&reclen, 0) as u64).clamp(header, left);
        left -= reclen;
        match cur.checked_add(reclen) {
            Some(n) => cur = n,
            None => break,
        }
    }
    format!("{} /* {count}{} entries */", addr(a), if left > 0 { "+" } else { "" })
}

/// `struct sysinfo`, every field, as strace prints it.
pub fn sysinfo(mem: &dyn GuestMem, a: u64) -> String {
    let Some(b) = read_bytes(mem, a, 112).filter(|_| a != 0) else {
        return addr(a);
    };
    let u = |o| u64_at(&b, o);
    format!(
        "{{uptime={}, loads=[{}, {}, {}], totalram={}, freeram={}, sharedram={}, bufferram={}, \
         totalswap={}, freeswap={}, procs={}, totalhigh={}, freehigh={}, mem_unit={}}}",
        u(0) as i64,
        u(8),
        u(16),
        u(24),
        u(32),
        u(40),
        u(48),
        u(56),
        u(64),
        u(72),
        u16_at(&b, 80),
        u(88),
        u(96),
        u32_at(&b, 104)
    )
}
