//! Guest memory whose contents cannot change without a system call bt-run
//! sees, so that the translator may treat a pointer read from it as a
//! constant (`TranslateOptions::read_constant`): an indirect jump or call
//! through a GOT slot of a library linked with `-z now` (read-only after
//! RELRO), or through a table in `.rodata`, becomes a direct one.
//!
//! The invariant: the 8 bytes lie in one private, file-backed mapping that
//! is read-only on the host and that the guest cannot write either (not a
//! guest-writable executable range, whose host pages bt-run may have made
//! read-only itself to catch writes). Such memory changes only through
//! mmap, mprotect, munmap or mremap (which bt-run serves, and which drop
//! the translations that read constants from the range:
//! `CodeCache::invalidate_data`). Not covered, as for translated code
//! itself: writes through /proc/self/mem or ptrace, which ignore page
//! protections, and `madvise(MADV_DONTNEED)` of a page the dynamic linker
//! had relocated, which brings back the file's bytes.

use std::sync::Mutex;

use translator::GuestAddr;

use crate::memory::{ExecMap, GuestRange};

struct View {
    /// `eligible` was read at least once.
    read: bool,
    /// Private, file-backed, host read-only ranges, sorted, as last read.
    eligible: Vec<(u64, u64)>,
    /// Ranges whose mappings or protections changed since (an answer about
    /// them reads /proc/self/maps again).
    dirty: Vec<(u64, u64)>,
    /// Guest-executable ranges the guest may write (their host protection
    /// says nothing about the guest's).
    guest_writable_code: Vec<(u64, u64)>,
}

static VIEW: Mutex<View> =
    Mutex::new(View { read: false, eligible: Vec::new(), dirty: Vec::new(), guest_writable_code: Vec::new() });

/// More changed ranges than this are kept as "everything changed".
const MAX_DIRTY: usize = 32;

fn view() -> std::sync::MutexGuard<'static, View> {
    VIEW.lock().unwrap_or_else(|e| e.into_inner())
}

/// The mappings or protections of `r` changed.
pub fn mappings_changed(r: GuestRange) {
    let (start, end) = (r.start.get(), r.end.get());
    let mut v = view();
    if v.dirty.len() >= MAX_DIRTY {
        v.dirty.clear();
        v.dirty.push((0, u64::MAX));
    } else {
        v.dirty.push((start, end));
    }
}

/// A new process image: nothing read so far holds.
pub fn reset(exec: &ExecMap) {
    let mut v = view();
    v.read = false;
    v.dirty.clear();
    v.guest_writable_code = exec.writable_ranges();
}

/// The guest's executable ranges changed: remember which it may write.
pub fn exec_changed(exec: &ExecMap) {
    view().guest_writable_code = exec.writable_ranges();
}

/// The 8-byte value at `at`, if it is a constant in the sense above.
pub fn read_constant(at: GuestAddr) -> Option<u64> {
    let (s, e) = (at.get(), at.get().checked_add(8)?);
    let mut v = view();
    if !v.read || v.dirty.iter().any(|&(a, b)| a < e && s < b) {
        v.eligible = read_eligible();
        v.dirty.clear();
        v.read = true;
    }
    let i = v.eligible.partition_point(|&(_, end)| end <= s);
    let inside = v.eligible.get(i).is_some_and(|&(start, end)| start <= s && e <= end);
    if !inside || v.guest_writable_code.iter().any(|&(a, b)| a < e && s < b) {
        return None;
    }
    crate::sys::read_guest_u64(GuestAddr(s)).ok()
}

fn read_eligible() -> Vec<(u64, u64)> {
    let Ok(text) = std::fs::read_to_string("/proc/self/maps") else { return Vec::new() };
    let mut v: Vec<(u64, u64)> = text.lines().filter_map(eligible_line).collect();
    v.sort_unstable();
    v
}

/// [start, end) of a /proc/self/maps line that maps a file privately and
/// read-only.
fn eligible_line(line: &str) -> Option<(u64, u64)> {
    let m = crate::procfs::maps_line(line)?;
    (m.perms == "r--p" && m.inode != 0).then_some((m.start, m.end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_private_read_only_file_mappings_are_eligible() {
        let lib = "7f0000001000-7f0000003000 r--p 00155000 08:01 4242   /usr/lib/libx.so";
        assert_eq!(eligible_line(lib), Some((0x7f0000001000, 0x7f0000003000)));
        for other in [
            "7f0000001000-7f0000003000 rw-p 00155000 08:01 4242   /usr/lib/libx.so",
            "7f0000001000-7f0000003000 r--s 00000000 08:01 4242   /dev/shm/x",
            "7f0000001000-7f0000003000 r--p 00000000 00:00 0",
            "7f0000001000-7f0000003000 r-xp 00000000 08:01 4242   /usr/lib/libx.so",
        ] {
            assert_eq!(eligible_line(other), None, "{other}");
        }
    }

    #[test]
    fn read_only_file_data_is_constant_and_writable_data_is_not() {
        // This test binary's own read-only data (a string literal) is in a
        // private, read-only file mapping; a stack variable is not.
        static TEXT: &[u8; 16] = b"0123456789abcdef";
        let at = GuestAddr(TEXT.as_ptr() as u64);
        mappings_changed(GuestRange::ALL);
        assert_eq!(read_constant(at), Some(u64::from_le_bytes(TEXT[..8].try_into().unwrap())));
        let local = [7u64; 2];
        assert_eq!(read_constant(GuestAddr(local.as_ptr() as u64)), None);
    }
}
