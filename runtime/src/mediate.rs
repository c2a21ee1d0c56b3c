//! Under isolation: the guest's system calls checked against the split
//! before the kernel sees them (`syscall_inline::confine` says how, per
//! call), so the kernel never writes bt-run's memory for the guest.
//!
//! The gate checks the address arguments of the calls it makes itself
//! (`GATE_ADDR_CHECK`); everything else comes here: calls the runtime
//! serves, page ranges, and calls whose addresses lie inside memory an
//! argument points at. Those (iovecs, message headers) are copied into
//! bt-run's memory, checked there and handed to the kernel as the copy, so
//! a second thread that changes the guest's structure after the check
//! changes nothing the kernel reads.

use syscall_inline::confine::{self, Check};

use crate::guest_space::GUEST_LIMIT;
use crate::sys;
use translator::addr::GuestAddr;

fn err(e: i32) -> i64 {
    -(e as i64)
}

/// The kernel's bound on iovec counts (`UIO_MAXIOV`): a longer array is
/// refused with EINVAL before the kernel reads any of it.
const UIO_MAXIOV: u64 = 1024;

/// The guest's call `nr` with arguments `a`, checked: Some(result) when the
/// call is refused or made here, None when it may be made as it is.
pub fn call(nr: u64, a: [u64; 6]) -> Option<i64> {
    let row = syscall_inline::lookup(nr)?;
    let check = confine::check(row);
    let mask = match check {
        Check::Direct(m) | Check::Nested(m) => m,
        Check::None | Check::Range | Check::Refused | Check::Service => 0,
    };
    if (0..6).any(|i| mask & 1 << i != 0 && confine::above(a[i], GUEST_LIMIT)) {
        return Some(err(libc::EFAULT));
    }
    match check {
        Check::Refused => Some(err(libc::EPERM)),
        Check::Range => (!range_ok(a[0], a[1])).then(|| err(libc::ENOMEM)),
        Check::Nested(_) => Some(nested(nr, a)),
        Check::None | Check::Direct(_) | Check::Service => None,
    }
}

/// May a call act on the pages of [start, start + len)? Not if any of
/// them lies at or above the limit. A range whose end wraps around is left
/// to the kernel, which refuses it before acting on any page.
fn range_ok(start: u64, len: u64) -> bool {
    let Some(end) = start.checked_add(len).and_then(|e| e.checked_add(4095)) else { return true };
    start < GUEST_LIMIT && end & !4095 <= GUEST_LIMIT
}

/// A private copy of the guest's iovec array at `at` (`n` entries), each
/// base checked: Err(errno) if the array cannot be read or names bt-run's
/// memory.
fn iovecs(at: u64, n: u64) -> Result<Vec<libc::iovec>, i32> {
    let mut raw = vec![0u8; n as usize * 16];
    sys::read_guest(GuestAddr(at), &mut raw)?;
    let mut v = Vec::with_capacity(n as usize);
    for e in raw.chunks_exact(16) {
        let base = u64::from_le_bytes(e[..8].try_into().expect("8 bytes"));
        let len = u64::from_le_bytes(e[8..].try_into().expect("8 bytes"));
        if confine::above(base, GUEST_LIMIT) {
            return Err(libc::EFAULT);
        }
        v.push(libc::iovec { iov_base: base as *mut libc::c_void, iov_len: len as usize });
    }
    Ok(v)
}

/// A guest `struct msghdr` (56 bytes) and the private copy of its iovecs.
struct Msg {
    hdr: libc::msghdr,
    _iov: Vec<libc::iovec>,
}

/// A private copy of the guest's msghdr at `at`, its name, control buffer
/// and iovec bases checked.
fn msghdr(at: u64) -> Result<Msg, i32> {
    let mut raw = [0u8; 56];
    sys::read_guest(GuestAddr(at), &mut raw)?;
    let word = |o: usize| u64::from_le_bytes(raw[o..o + 8].try_into().expect("8 bytes"));
    let (name, namelen, iov, iovlen, control, controllen) =
        (word(0), word(8) as u32, word(16), word(24), word(32), word(40));
    if confine::above(name, GUEST_LIMIT) || confine::above(control, GUEST_LIMIT) {
        return Err(libc::EFAULT);
    }
    // More than UIO_MAXIOV: the kernel refuses it (EMSGSIZE) unread.
    let mut copy = if iovlen <= UIO_MAXIOV { iovecs(iov, iovlen)? } else { Vec::new() };
    let hdr = libc::msghdr {
        msg_name: name as *mut libc::c_void,
        msg_namelen: namelen,
        msg_iov: if iovlen <= UIO_MAXIOV { copy.as_mut_ptr() } else { iov as *mut libc::iovec },
        msg_iovlen: iovlen as usize,
        msg_control: control as *mut libc::c_void,
        msg_controllen: controllen as usize,
        msg_flags: 0,
    };
    Ok(Msg { hdr, _iov: copy })
}

/// What the kernel writes back into a msghdr after a receive: the name and
/// control lengths and the flags, written to the guest's header at `at`.
fn msghdr_back(at: u64, h: &libc::msghdr) -> Result<(), i32> {
    sys::write_guest(GuestAddr(at + 8), &h.msg_namelen.to_le_bytes())?;
    sys::write_guest(GuestAddr(at + 40), &(h.msg_controllen as u64).to_le_bytes())?;
    sys::write_guest(GuestAddr(at + 48), &h.msg_flags.to_le_bytes())
}

/// A call whose addresses lie inside memory an argument points at, made
/// with checked private copies.
fn nested(nr: u64, mut a: [u64; 6]) -> i64 {
    match nr as i64 {
        libc::SYS_recvmsg => {
            let mut m = match msghdr(a[1]) {
                Ok(m) => m,
                Err(e) => return err(e),
            };
            let guest = a[1];
            a[1] = &raw mut m.hdr as u64;
            let r = sys::forward_guest_call(nr, a);
            if r >= 0
                && let Err(e) = msghdr_back(guest, &m.hdr)
            {
                return err(e);
            }
            r
        }
        libc::SYS_recvmmsg => {
            // The kernel takes at most UIO_MAXIOV headers of 64 bytes
            // (a msghdr and the received length).
            let (guest, n) = (a[1], a[2].min(UIO_MAXIOV));
            let mut msgs = Vec::with_capacity(n as usize);
            for i in 0..n {
                match msghdr(guest + 64 * i) {
                    Ok(m) => msgs.push(m),
                    Err(e) => return err(e),
                }
            }
            let mut vec: Vec<libc::mmsghdr> =
                msgs.iter().map(|m| libc::mmsghdr { msg_hdr: m.hdr, msg_len: 0 }).collect();
            a[1] = vec.as_mut_ptr() as u64;
            let r = sys::forward_guest_call(nr, a);
            for (i, m) in vec.iter().enumerate().take(r.max(0) as usize) {
                let at = guest + 64 * i as u64;
                if let Err(e) = msghdr_back(at, &m.msg_hdr)
                    .and_then(|()| sys::write_guest(GuestAddr(at + 56), &m.msg_len.to_le_bytes()))
                {
                    return err(e);
                }
            }
            r
        }
        // readv, preadv, preadv2, vmsplice: the iovecs in arguments 1 and
        // 2; process_vm_readv: the local ones (the remote ones name the
        // other process's memory, which the kernel only reads).
        _ => {
            if a[2] > UIO_MAXIOV {
                return sys::forward_guest_call(nr, a);
            }
            let mut v = match iovecs(a[1], a[2]) {
                Ok(v) => v,
                Err(e) => return err(e),
            };
            a[1] = v.as_mut_ptr() as u64;
            sys::forward_guest_call(nr, a)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_may_not_reach_the_limit() {
        assert!(range_ok(GUEST_LIMIT - 8192, 8192));
        assert!(range_ok(GUEST_LIMIT - 8192, 8191));
        assert!(!range_ok(GUEST_LIMIT - 8192, 8193));
        assert!(!range_ok(GUEST_LIMIT - 4096, 1 << 40));
        assert!(!range_ok(GUEST_LIMIT, 0));
        assert!(range_ok(0x1000, 0));
        // Wrapping around: the kernel refuses it itself.
        assert!(range_ok(u64::MAX - 4095, 8192));
    }
}
