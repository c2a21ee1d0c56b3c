//! strace's `-yy`: what a guest descriptor refers to, with the details -y
//! leaves out, in strace's words:
//! - sockets by protocol and addresses, as the kernel's socket diagnostics
//!   report them: `TCP:[127.0.0.1:5000->127.0.0.1:41234]`,
//!   `UDPv6:[[::1]:53]`, `UNIX-STREAM:[1234->1235]`,
//!   `UNIX:[1236,"/run/x.sock"]`, `NETLINK:[ROUTE:812]`, or the protocol
//!   and inode (`TCP:[1237]`) when the kernel has nothing more;
//! - devices with their numbers: `/dev/null<char 1:3>`;
//! - pidfds by their process: `pid:1234`.
//!
//! The socket's protocol name is the kernel's (sockfs's
//! `system.sockprotoname`), as strace reads it, so the families and
//! protocols bt-run does not know still print as strace prints them.

use crate::sys::sockdiag::{self, Diag};

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_DUMP: u16 = 0x300;
/// (Not in the libc crate.)
const IPPROTO_L2TP: i32 = 115;

/// `path`, what /proc/self/fd names for the guest's `fd`, with -yy's details.
pub fn describe(fd: i32, path: &str) -> String {
    if let Some(inode) = path.strip_prefix("socket:[").and_then(|r| r.strip_suffix(']')).and_then(|n| n.parse().ok()) {
        if let Some(known) = cached(inode) {
            return known;
        }
        return match sockdiag::proto_name(fd) {
            Some(proto) => match crate::own_fds::privately(|place| socket(&proto, inode, place)) {
                Some(details) => {
                    remember(inode, &details);
                    details
                }
                None => format!("{proto}:[{inode}]"),
            },
            None => path.to_string(),
        };
    }
    if path == "anon_inode:[pidfd]"
        && let Some(pid) = pidfd_pid(fd)
    {
        return format!("pid:{pid}");
    }
    match sockdiag::device_numbers(fd) {
        Some((chr, major, minor)) => format!("{path}<{} {major}:{minor}>", if chr { "char" } else { "block" }),
        None => path.to_string(),
    }
}

/// Sockets' details by inode, as strace keeps them: found once, shown
/// from then on (a peer that has gone since still shows, as in strace).
/// 1024 entries, each inode in one place; a lock held elsewhere (in
/// another thread, or in the parent at a fork) means no cache this time.
static CACHE: std::sync::Mutex<Vec<(u32, String)>> = std::sync::Mutex::new(Vec::new());
const CACHE_SLOTS: usize = 1024;

fn cached(inode: u32) -> Option<String> {
    let c = CACHE.try_lock().ok()?;
    c.get(inode as usize % CACHE_SLOTS).filter(|(i, _)| *i == inode).map(|(_, s)| s.clone())
}

fn remember(inode: u32, details: &str) {
    if let Ok(mut c) = CACHE.try_lock() {
        if c.is_empty() {
            c.resize(CACHE_SLOTS, (0, String::new()));
        }
        c[inode as usize % CACHE_SLOTS] = (inode, details.to_string());
    }
}

/// The process a pidfd refers to (its `Pid:` in /proc/self/fdinfo).
fn pidfd_pid(fd: i32) -> Option<i64> {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).ok()?;
    info.lines().find_map(|l| l.strip_prefix("Pid:")).and_then(|v| v.trim().parse().ok())
}

/// A socket's details, by the kernel's name of its protocol.
fn socket(proto: &str, inode: u32, place: Place) -> Option<String> {
    let inet = |family: i32, protocol: i32| inet(proto, family as u8, protocol as u8, inode, place);
    match proto {
        "TCP" => inet(libc::AF_INET, libc::IPPROTO_TCP),
        "UDP" => inet(libc::AF_INET, libc::IPPROTO_UDP),
        "UDPLITE" => inet(libc::AF_INET, libc::IPPROTO_UDPLITE),
        "DCCP" => inet(libc::AF_INET, libc::IPPROTO_DCCP),
        "SCTP" => inet(libc::AF_INET, libc::IPPROTO_SCTP),
        "L2TP/IP" => inet(libc::AF_INET, IPPROTO_L2TP),
        "PING" => inet(libc::AF_INET, libc::IPPROTO_ICMP),
        "RAW" => inet(libc::AF_INET, libc::IPPROTO_RAW),
        "TCPv6" => inet(libc::AF_INET6, libc::IPPROTO_TCP),
        "UDPv6" => inet(libc::AF_INET6, libc::IPPROTO_UDP),
        "UDPLITEv6" => inet(libc::AF_INET6, libc::IPPROTO_UDPLITE),
        "DCCPv6" => inet(libc::AF_INET6, libc::IPPROTO_DCCP),
        "SCTPv6" => inet(libc::AF_INET6, libc::IPPROTO_SCTP),
        "L2TP/IPv6" => inet(libc::AF_INET6, IPPROTO_L2TP),
        "PINGv6" => inet(libc::AF_INET6, libc::IPPROTO_ICMP),
        "RAWv6" => inet(libc::AF_INET6, libc::IPPROTO_RAW),
        "NETLINK" => netlink(proto, inode, place),
        p if p == "UNIX" || p.starts_with("UNIX-") => unix(proto, inode, place),
        _ => None,
    }
}

/// Places a descriptor out of the guest's reach for as long as a lookup
/// lasts (`own_fds::privately`).
type Place<'a> = &'a dyn Fn(i32) -> std::io::Result<i32>;

fn diag(place: Place) -> Option<Diag> {
    Diag::open(place).ok()
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u16_be_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

/// An inet socket: `PROTO:[SRC:PORT]`, or `PROTO:[SRC:PORT->DST:PORT]` once
/// it has a peer (IPv6 addresses in brackets), from a dump of the family's
/// sockets of `protocol` (struct inet_diag_req_v2 / inet_diag_msg).
fn inet(proto: &str, family: u8, protocol: u8, inode: u32, place: Place) -> Option<String> {
    let mut req = vec![family, protocol, 0, 0];
    req.extend_from_slice(&u32::MAX.to_ne_bytes()); // every state
    req.extend_from_slice(&[0; 48]); // struct inet_diag_sockid
    let mut found = None;
    diag(place)?
        .query(SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, &req, |m| {
            if m.len() < 72 || u32_at(m, 68) != Some(inode) || m[0] != family {
                return false;
            }
            let addr = |at: usize| -> String {
                if family == libc::AF_INET6 as u8 {
                    let a: [u8; 16] = m[at..at + 16].try_into().unwrap_or_default();
                    format!("[{}]", std::net::Ipv6Addr::from(a))
                } else {
                    let a: [u8; 4] = m[at..at + 4].try_into().unwrap_or_default();
                    std::net::Ipv4Addr::from(a).to_string()
                }
            };
            let (sport, dport) = (u16_be_at(m, 4).unwrap_or(0), u16_be_at(m, 6).unwrap_or(0));
            let len = if family == libc::AF_INET6 as u8 { 16 } else { 4 };
            let src = format!("{}:{sport}", addr(8));
            found = Some(if dport != 0 || m[24..24 + len].iter().any(|&b| b != 0) {
                format!("{proto}:[{src}->{}:{dport}]", addr(24))
            } else {
                format!("{proto}:[{src}]")
            });
            true
        })
        .ok()?;
    found
}

/// A unix socket: `PROTO:[INODE->PEER,"PATH"]`, each part when there is one
/// (an abstract name as `@"NAME"`), from the kernel's answer for the inode
/// (struct unix_diag_req / unix_diag_msg and its attributes). None when it
/// has neither a peer nor a name.
fn unix(proto: &str, inode: u32, place: Place) -> Option<String> {
    const UDIAG_SHOW_NAME: u32 = 1;
    const UDIAG_SHOW_PEER: u32 = 4;
    const UNIX_DIAG_NAME: u16 = 0;
    const UNIX_DIAG_PEER: u16 = 2;
    let mut req = vec![libc::AF_UNIX as u8, 0, 0, 0];
    req.extend_from_slice(&u32::MAX.to_ne_bytes()); // every state
    req.extend_from_slice(&inode.to_ne_bytes());
    req.extend_from_slice(&(UDIAG_SHOW_NAME | UDIAG_SHOW_PEER).to_ne_bytes());
    req.extend_from_slice(&u32::MAX.to_ne_bytes()); // no cookie
    req.extend_from_slice(&u32::MAX.to_ne_bytes());
    let mut peer = 0u32;
    let mut name: Option<Vec<u8>> = None;
    let mut matched = false;
    diag(place)?
        .query(SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, &req, |m| {
            if m.len() < 16 || m[0] != libc::AF_UNIX as u8 || u32_at(m, 4) != Some(inode) {
                return false;
            }
            matched = true;
            let mut attrs = &m[16..];
            while attrs.len() >= 4 {
                let len = u16::from_ne_bytes([attrs[0], attrs[1]]) as usize;
                let ty = u16::from_ne_bytes([attrs[2], attrs[3]]);
                if len < 4 || len > attrs.len() {
                    break;
                }
                let data = &attrs[4..len];
                match ty {
                    UNIX_DIAG_NAME if name.is_none() => name = Some(data.to_vec()),
                    UNIX_DIAG_PEER => peer = u32_at(data, 0).unwrap_or(0),
                    _ => {}
                }
                attrs = &attrs[((len + 3) & !3).min(attrs.len())..];
            }
            true
        })
        .ok()?;
    let name = name.filter(|n| !n.is_empty());
    if !matched || (peer == 0 && name.is_none()) {
        return None;
    }
    let mut s = format!("{proto}:[{inode}");
    if peer != 0 {
        s.push_str(&format!("->{peer}"));
    }
    if let Some(n) = name {
        let quote = |b: &[u8]| syscall_inline::trace::quote_bytes(b, b.len(), true, false).0;
        match n.split_first() {
            Some((0, rest)) => s.push_str(&format!(",@{}", quote(rest))),
            _ => s.push_str(&format!(",{}", quote(&n))),
        }
    }
    s.push(']');
    Some(s)
}

/// A netlink socket: `NETLINK:[FAMILY:PORTID]`, from a dump of all netlink
/// sockets (struct netlink_diag_req / netlink_diag_msg).
fn netlink(proto: &str, inode: u32, place: Place) -> Option<String> {
    const NDIAG_PROTO_ALL: u8 = 255;
    const FAMILIES: [&str; 23] = [
        "ROUTE",
        "UNUSED",
        "USERSOCK",
        "FIREWALL",
        "SOCK_DIAG",
        "NFLOG",
        "XFRM",
        "SELINUX",
        "ISCSI",
        "AUDIT",
        "FIB_LOOKUP",
        "CONNECTOR",
        "NETFILTER",
        "IP6_FW",
        "DNRTMSG",
        "KOBJECT_UEVENT",
        "GENERIC",
        "",
        "SCSITRANSPORT",
        "ECRYPTFS",
        "RDMA",
        "CRYPTO",
        "SMC",
    ];
    let mut req = vec![libc::AF_NETLINK as u8, NDIAG_PROTO_ALL, 0, 0];
    req.extend_from_slice(&[0; 16]); // inode, show, cookie
    let mut found = None;
    diag(place)?
        .query(SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, &req, |m| {
            if m.len() < 28 || m[0] != libc::AF_NETLINK as u8 || u32_at(m, 16) != Some(inode) {
                return false;
            }
            let portid = u32_at(m, 4).unwrap_or(0);
            found = Some(match FAMILIES.get(m[2] as usize).filter(|f| !f.is_empty()) {
                Some(f) => format!("{proto}:[{f}:{portid}]"),
                None => format!("{proto}:[{}]", m[2]),
            });
            true
        })
        .ok()?;
    found
}
