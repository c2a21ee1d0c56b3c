//! The guest's view of its memory that bt-run must keep itself: which ranges
//! the guest believes executable (the host mappings never are), and the
//! program break, emulated over a reserved region.

use std::collections::BTreeMap;

use translator::GuestAddr;

pub const PAGE: u64 = 4096;

pub fn page_down(a: u64) -> u64 {
    a & !(PAGE - 1)
}

pub fn page_up(a: u64) -> u64 {
    a.saturating_add(PAGE - 1) & !(PAGE - 1)
}

/// Guest memory `[start, end)`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct GuestRange {
    pub start: GuestAddr,
    pub end: GuestAddr,
}

impl GuestRange {
    /// All of the address space.
    pub const ALL: GuestRange = GuestRange { start: GuestAddr(0), end: GuestAddr(u64::MAX) };

    pub const fn new(start: u64, end: u64) -> Self {
        GuestRange { start: GuestAddr(start), end: GuestAddr(end) }
    }

    /// `len` bytes from `start` (clamped at the top of the address space).
    pub const fn sized(start: u64, len: u64) -> Self {
        Self::new(start, start.saturating_add(len))
    }

    /// The whole pages this range touches.
    pub fn pages(self) -> Self {
        Self::new(page_down(self.start.get()), page_up(self.end.get()))
    }

    pub const fn len(self) -> u64 {
        self.end.get().saturating_sub(self.start.get())
    }

    pub const fn is_empty(self) -> bool {
        self.len() == 0
    }

    pub const fn contains(self, a: GuestAddr) -> bool {
        a.get() >= self.start.get() && a.get() < self.end.get()
    }

    pub const fn overlaps(self, other: GuestRange) -> bool {
        self.start.get() < other.end.get() && other.start.get() < self.end.get()
    }
}

/// Ranges the guest mapped with PROT_EXEC, keyed by start, non-overlapping,
/// with the guest's full protection (to know which are also writable).
#[derive(Default, Clone)]
pub struct ExecMap {
    ranges: BTreeMap<u64, (u64, i32)>,
}

impl ExecMap {
    /// Mark `r` guest-executable with guest protection `prot`.
    pub fn add(&mut self, r: GuestRange, prot: i32) {
        if r.is_empty() {
            return;
        }
        self.remove(r);
        self.ranges.insert(r.start.get(), (r.end.get(), prot));
    }

    /// The guest protection of the executable range containing `addr`.
    pub fn prot_at(&self, addr: GuestAddr) -> Option<i32> {
        let (_, &(e, prot)) = self.ranges.range(..=addr.get()).next_back()?;
        (addr.get() < e).then_some(prot)
    }

    /// Forget `r`; returns whether anything was removed.
    pub fn remove(&mut self, r: GuestRange) -> bool {
        let (start, end) = (r.start.get(), r.end.get());
        if start >= end {
            return false;
        }
        let hits: Vec<(u64, u64, i32)> = self
            .ranges
            .range(..end)
            .rev()
            .take_while(|(_, (e, _))| *e > start)
            .map(|(s, (e, p))| (*s, *e, *p))
            .collect();
        for &(s, e, p) in &hits {
            self.ranges.remove(&s);
            if s < start {
                self.ranges.insert(s, (start, p));
            }
            if e > end {
                self.ranges.insert(end, (e, p));
            }
        }
        !hits.is_empty()
    }

    /// Does `r` overlap any executable range?
    pub fn overlaps(&self, r: GuestRange) -> bool {
        self.ranges.range(..r.end.get()).next_back().is_some_and(|(_, (e, _))| *e > r.start.get())
    }

    /// The ranges the guest may also write, in order.
    pub fn writable_ranges(&self) -> Vec<(u64, u64)> {
        self.ranges.iter().filter(|(_, (_, p))| p & libc::PROT_WRITE != 0).map(|(&s, &(e, _))| (s, e)).collect()
    }

    /// End of the contiguous executable extent that contains `pc`.
    pub fn extent_end(&self, pc: GuestAddr) -> Option<GuestAddr> {
        let (_, &(e, _)) = self.ranges.range(..=pc.get()).next_back()?;
        if e <= pc.get() {
            return None;
        }
        let mut end = e;
        while let Some(&(next, _)) = self.ranges.get(&end) {
            end = next;
        }
        Some(GuestAddr(end))
    }
}

/// Set once any guest page has been guarded (and never cleared): the
/// gate then hands a forwarded call that failed with EFAULT to the runtime,
/// which makes it again with the guarded pages of its output buffers
/// writable (`Shared::unguard_outputs`), as the kernel could write them.
pub static ANY_GUARDED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Pages of guest code that the guest may also write (JIT buffers, RWX
/// mappings) and that have translations: bt-run keeps their host mapping
/// read-only, so a guest write faults and the translations are dropped
/// before the write goes through (see `signals`).
#[derive(Default, Clone)]
pub struct CodeGuard {
    pub pages: std::collections::BTreeSet<u64>,
}

impl CodeGuard {
    /// Forget protected pages in `r` (the guest re-protected, remapped or
    /// unmapped them, so their host protection is new).
    pub fn forget(&mut self, r: GuestRange) {
        let v: Vec<u64> = self.pages.range(page_down(r.start.get())..r.end.get()).copied().collect();
        for p in v {
            self.pages.remove(&p);
        }
    }

    pub fn contains(&self, addr: GuestAddr) -> bool {
        self.pages.contains(&page_down(addr.get()))
    }
}

/// The emulated program break.
pub struct Brk {
    pub start: u64,
    pub cur: u64,
    /// End of the reserved (PROT_NONE until used) region.
    pub limit: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_map_splits_and_merges() {
        let mut m = ExecMap::default();
        let r = GuestRange::new;
        m.add(r(0x1000, 0x5000), 5);
        m.add(r(0x5000, 0x6000), 5);
        assert_eq!(m.extent_end(GuestAddr(0x1000)), Some(GuestAddr(0x6000)));
        assert!(m.remove(r(0x2000, 0x3000)));
        assert_eq!(m.extent_end(GuestAddr(0x1000)), Some(GuestAddr(0x2000)));
        assert_eq!(m.extent_end(GuestAddr(0x2000)), None);
        assert_eq!(m.extent_end(GuestAddr(0x3000)), Some(GuestAddr(0x6000)));
        assert!(m.overlaps(r(0x2fff, 0x3001)));
        assert!(!m.overlaps(r(0x2000, 0x3000)));
        assert!(!m.remove(r(0x2000, 0x3000)));
    }
}
