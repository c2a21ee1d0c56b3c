//! Reading guest memory defensively, and strace's string quoting.
//!
//! Everything here reads untrusted memory through [`GuestMem`]: sizes come
//! from guest registers, so every read is capped, addresses may wrap, and a
//! failed read prints the address instead (as strace does).

use super::GuestMem;

/// strace's default `-s`: strings are cut after this many bytes.
pub const MAX_STRLEN: usize = 32;
/// The `-s` in force (process-wide, set once from the command line).
static STRSIZE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(MAX_STRLEN);

/// strace's `-s N`: cut strings after `n` bytes from now on.
pub fn set_max_strlen(n: usize) {
    STRSIZE.store(n, std::sync::atomic::Ordering::Relaxed);
}

/// The `-s` in force.
pub fn max_strlen() -> usize {
    STRSIZE.load(std::sync::atomic::Ordering::Relaxed)
}
/// strace prints file names up to `PATH_MAX` bytes.
pub const PATH_MAX: usize = 4096;
const PAGE: u64 = 4096;

/// `NULL` for 0, else `0x…` (strace's `printaddr`).
pub fn addr(a: u64) -> String {
    if a == 0 { "NULL".to_string() } else { format!("{a:#x}") }
}

/// Read exactly `len` bytes at `addr`, or None (unreadable, or the range
/// wraps around the address space).
pub fn read_bytes(mem: &dyn GuestMem, addr: u64, len: usize) -> Option<Vec<u8>> {
    if len == 0 {
        return Some(Vec::new());
    }
    addr.checked_add(len as u64 - 1)?;
    let mut buf = vec![0u8; len];
    mem.read(addr, &mut buf).ok()?;
    Some(buf)
}

/// Read a little-endian u64 at `addr`.
pub fn read_u64(mem: &dyn GuestMem, addr: u64) -> Option<u64> {
    let b = read_bytes(mem, addr, 8)?;
    Some(u64::from_le_bytes(b.try_into().ok()?))
}

/// Read a little-endian u32 at `addr`.
pub fn read_u32(mem: &dyn GuestMem, addr: u64) -> Option<u32> {
    let b = read_bytes(mem, addr, 4)?;
    Some(u32::from_le_bytes(b.try_into().ok()?))
}

/// Read up to `max` bytes of a NUL-terminated string, a page at a time
/// (like strace's `umovestr`). Returns the bytes before the NUL and whether
/// the NUL was seen; None if the first byte is unreadable.
pub fn read_cstr(mem: &dyn GuestMem, addr: u64, max: usize) -> Option<(Vec<u8>, bool)> {
    let mut out = Vec::new();
    let mut cur = addr;
    while out.len() < max {
        let to_page = (PAGE - cur % PAGE) as usize;
        let n = to_page.min(max - out.len());
        let Some(chunk) = read_bytes(mem, cur, n) else {
            // The readable part may end inside the page: go byte by byte.
            for i in 0..n as u64 {
                match cur.checked_add(i).and_then(|a| read_bytes(mem, a, 1)) {
                    Some(b) if b[0] == 0 => return Some((out, true)),
                    Some(b) => out.push(b[0]),
                    None if out.is_empty() => return None,
                    None => return Some((out, false)),
                }
            }
            return Some((out, false));
        };
        if let Some(z) = chunk.iter().position(|&b| b == 0) {
            out.extend_from_slice(&chunk[..z]);
            return Some((out, true));
        }
        out.extend_from_slice(&chunk);
        match cur.checked_add(n as u64) {
            Some(next) => cur = next,
            None => break,
        }
    }
    Some((out, false))
}

/// strace's `string_quote`: quote the first `size` bytes of `s` (which may
/// hold one more byte, looked at only to decide whether a NUL follows).
/// With `nul_term`, stop at a NUL. Returns the quoted text and whether the
/// string goes on past what was printed (for the `...` suffix).
pub fn quote(s: &[u8], size: usize, nul_term: bool, force_hex: bool) -> (String, bool) {
    let size = size.min(s.len());
    let mut o = String::with_capacity(size * 2 + 2);
    o.push('"');
    let mut i = 0;
    while i < size {
        let c = s[i];
        if nul_term && c == 0 {
            o.push('"');
            return (o, false);
        }
        if force_hex {
            o.push_str(&format!("\\x{c:02x}"));
            i += 1;
            continue;
        }
        match c {
            b'"' | b'\\' => {
                o.push('\\');
                o.push(c as char);
            }
            0x0c => o.push_str("\\f"),
            b'\n' => o.push_str("\\n"),
            b'\r' => o.push_str("\\r"),
            b'\t' => o.push_str("\\t"),
            0x0b => o.push_str("\\v"),
            0x20..=0x7e => o.push(c as char),
            _ => {
                o.push('\\');
                // Minimal octal digits, unless an octal digit follows.
                let unabbrev = i + 1 < size && (b'0'..=b'7').contains(&s[i + 1]);
                if unabbrev || c >> 6 != 0 {
                    o.push((b'0' + (c >> 6)) as char);
                }
                if unabbrev || c >> 3 != 0 {
                    o.push((b'0' + ((c >> 3) & 7)) as char);
                }
                o.push((b'0' + (c & 7)) as char);
            }
        }
        i += 1;
    }
    o.push('"');
    // All of `size` printed: more follows unless the next byte is the NUL.
    let more = !(nul_term && s.get(size) == Some(&0));
    (o, more)
}

/// strace's `printstr_ex`: a string at `addr` of `len` bytes (or up to a
/// NUL with `nul_term`), cut at `-s` ([`max_strlen`]) with `...`.
pub fn printstr_ex(mem: &dyn GuestMem, addr_: u64, len: u64, nul_term: bool, force_hex: bool) -> String {
    if addr_ == 0 {
        return "NULL".to_string();
    }
    let max = max_strlen();
    let mut size = (max as u64 + 1).min(len) as usize;
    let buf = if nul_term {
        match read_cstr(mem, addr_, size) {
            Some((mut b, nul)) => {
                if nul {
                    b.push(0);
                }
                b
            }
            None => return addr(addr_),
        }
    } else {
        match read_bytes(mem, addr_, size) {
            Some(b) => b,
            None => return addr(addr_),
        }
    };
    let mut buf = buf;
    if size > max {
        size = max;
    } else {
        // Sentinel past the end: not a NUL.
        buf.resize(size, 0);
        buf.push(0xff);
    }
    let (q, more) = quote(&buf, size, nul_term, force_hex);
    let ellipsis = more && len != 0 && (nul_term || len > max as u64);
    if ellipsis { q + "..." } else { q }
}

/// A buffer of `len` bytes (`printstrn`).
pub fn printstrn(mem: &dyn GuestMem, a: u64, len: u64) -> String {
    printstr_ex(mem, a, len, false, false)
}

/// A NUL-terminated string cut at 32 bytes (`printstr`).
pub fn printstr(mem: &dyn GuestMem, a: u64) -> String {
    printstr_ex(mem, a, u64::MAX, true, false)
}

/// A file name of at most `n` bytes including its NUL (`printpathn`).
pub fn printpathn(mem: &dyn GuestMem, a: u64, n: u64) -> String {
    if a == 0 {
        return "NULL".to_string();
    }
    let n = n.min(PATH_MAX as u64) as usize;
    match read_cstr(mem, a, n) {
        None => addr(a),
        Some((mut b, nul)) => {
            // strace quotes size-1 bytes: the whole name if the NUL was
            // seen, else n-1 bytes followed by "...".
            let size = if nul { b.len() } else { n.saturating_sub(1) };
            if nul {
                b.push(0);
            }
            let (q, more) = quote(&b, size, true, false);
            if more { q + "..." } else { q }
        }
    }
}

/// A file name (`printpath`).
pub fn printpath(mem: &dyn GuestMem, a: u64) -> String {
    printpathn(mem, a, PATH_MAX as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &[u8]) -> String {
        quote(s, s.len(), false, false).0
    }

    #[test]
    fn quoting_like_strace() {
        assert_eq!(q(b"hello\n"), r#""hello\n""#);
        assert_eq!(q(b"a\tb\"c\\d"), r#""a\tb\"c\\d""#);
        assert_eq!(q(b"\r\x0b\x0c"), r#""\r\v\f""#);
        // Minimal octal, three digits when an octal digit follows.
        assert_eq!(q(b"\x7fELF\x02\x01\x01\x03\x00\x00"), r#""\177ELF\2\1\1\3\0\0""#);
        assert_eq!(q(b"\x001"), r#""\0001""#);
        assert_eq!(q(b"\x008"), r#""\08""#);
        assert_eq!(q(b"\xff\xfe"), r#""\377\376""#);
        assert_eq!(q(b"\x1b["), r#""\33[""#);
        assert_eq!(quote(b"\x98\xdc\x63\x24", 4, false, true).0, r#""\x98\xdc\x63\x24""#);
        assert_eq!(q(b""), r#""""#);
    }
}
