//! What the kernel says about a guest's socket or device descriptor, for
//! strace's `-yy` (`crate::fd_details` formats it): the socket's protocol
//! name (the `system.sockprotoname` attribute of sockfs), the answers of a
//! NETLINK_SOCK_DIAG socket to a request, and a device's numbers.
//!
//! The diag socket is bt-run's: it is moved to a number out of the guest's
//! reach (by the caller's `place`) before it is used, and checked to be the
//! socket it opened, so no request is ever written to a descriptor of the
//! guest's.

use std::io;

const NETLINK_SOCK_DIAG: i32 = 4;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_HDRLEN: usize = 16;

/// The kernel's name of the protocol of socket `fd` ("TCP", "UNIX-STREAM",
/// ...), or None if `fd` is not a socket.
pub fn proto_name(fd: i32) -> Option<String> {
    let mut buf = [0u8; 64];
    // SAFETY: fgetxattr writes at most `buf.len()` bytes into `buf`.
    let n = unsafe { libc::fgetxattr(fd, c"system.sockprotoname".as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n <= 0 {
        return None;
    }
    let name = &buf[..n as usize];
    let name = name.split(|&b| b == 0).next().unwrap_or(name);
    Some(String::from_utf8_lossy(name).into_owned())
}

/// A character (true) or block (false) device's major and minor numbers.
pub fn device_numbers(fd: i32) -> Option<(bool, u32, u32)> {
    let st = super::fds::fstat(fd)?;
    let kind = st.st_mode & libc::S_IFMT;
    if kind != libc::S_IFCHR && kind != libc::S_IFBLK {
        return None;
    }
    Some((kind == libc::S_IFCHR, libc::major(st.st_rdev), libc::minor(st.st_rdev)))
}

/// A NETLINK_SOCK_DIAG socket of bt-run's, closed on drop.
pub struct Diag {
    fd: i32,
}

impl Diag {
    /// Open one and let `place` move it out of the guest's reach: `place`
    /// returns the new number of a copy (the original is closed here).
    pub fn open(place: impl Fn(i32) -> io::Result<i32>) -> io::Result<Diag> {
        // SAFETY: socket creates a new descriptor, which this function owns.
        let low = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, NETLINK_SOCK_DIAG) };
        if low < 0 {
            return Err(io::Error::last_os_error());
        }
        let placed = place(low);
        // SAFETY: `low` is the descriptor socket returned above.
        unsafe { libc::close(low) };
        let d = Diag { fd: placed? };
        // The number was the guest's to close and reuse until it was
        // copied: make sure the copy is a diag socket.
        if d.int_opt(libc::SO_DOMAIN) != Some(libc::AF_NETLINK)
            || d.int_opt(libc::SO_PROTOCOL) != Some(NETLINK_SOCK_DIAG)
        {
            return Err(io::Error::from_raw_os_error(libc::EAGAIN));
        }
        Ok(d)
    }

    fn int_opt(&self, opt: i32) -> Option<i32> {
        let mut v: i32 = 0;
        let mut len = std::mem::size_of::<i32>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `v`.
        let r = unsafe { libc::getsockopt(self.fd, libc::SOL_SOCKET, opt, (&raw mut v).cast(), &mut len) };
        (r == 0).then_some(v)
    }

    /// Send one request (`body` after a netlink header of type `ty` and
    /// `flags`) and collect the payloads of the answers until the kernel's
    /// last (NLMSG_DONE, or the one answer of a request without
    /// NLM_F_DUMP). Stops early once `found` accepts a payload.
    pub fn query(&self, ty: u16, flags: u16, body: &[u8], mut found: impl FnMut(&[u8]) -> bool) -> io::Result<()> {
        let mut req = Vec::with_capacity(NLMSG_HDRLEN + body.len());
        req.extend_from_slice(&((NLMSG_HDRLEN + body.len()) as u32).to_ne_bytes());
        req.extend_from_slice(&ty.to_ne_bytes());
        req.extend_from_slice(&flags.to_ne_bytes());
        req.extend_from_slice(&1u32.to_ne_bytes()); // sequence
        req.extend_from_slice(&0u32.to_ne_bytes()); // port: the kernel
        req.extend_from_slice(body);
        // SAFETY: a sockaddr_nl of zeros but the family names the kernel.
        let mut to: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        to.nl_family = libc::AF_NETLINK as u16;
        loop {
            // SAFETY: sendto reads `req` and `to`, both alive and sized.
            let r = unsafe {
                libc::sendto(
                    self.fd,
                    req.as_ptr().cast(),
                    req.len(),
                    0,
                    (&raw const to).cast(),
                    std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
                )
            };
            if r >= 0 {
                break;
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        let dump = flags & 0x300 != 0;
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            // SAFETY: recv writes at most `buf.len()` bytes into `buf`.
            let n = unsafe { libc::recv(self.fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let mut msgs = &buf[..n as usize];
            while msgs.len() >= NLMSG_HDRLEN {
                let len = u32::from_ne_bytes(msgs[0..4].try_into().unwrap_or_default()) as usize;
                let ty = u16::from_ne_bytes(msgs[4..6].try_into().unwrap_or_default());
                if len < NLMSG_HDRLEN || len > msgs.len() {
                    return Err(io::Error::from_raw_os_error(libc::EPROTO));
                }
                match ty {
                    NLMSG_DONE => return Ok(()),
                    NLMSG_ERROR => return Err(io::Error::from_raw_os_error(libc::ENOENT)),
                    _ => {
                        if found(&msgs[NLMSG_HDRLEN..len]) || !dump {
                            return Ok(());
                        }
                    }
                }
                msgs = &msgs[((len + 3) & !3).min(msgs.len())..];
            }
        }
    }
}

impl Drop for Diag {
    fn drop(&mut self) {
        // SAFETY: the descriptor is this Diag's own.
        unsafe { libc::close(self.fd) };
    }
}
