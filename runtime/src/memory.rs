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
    /// Mark [start, end) guest-executable with guest protection `prot`.
    pub fn add(&mut self, start: u64, end: u64, prot: i32) {
        if start >= end {
            return;
        }
        self.remove(start, end);
        self.ranges.insert(start, (end, prot));
    }

    /// The guest protection of the executable range containing `addr`.
    pub fn prot_at(&self, addr: u64) -> Option<i32> {
        let (_, &(e, prot)) = self.ranges.range(..=addr).next_back()?;
        (addr < e).then_some(prot)
    }

    /// Forget [start, end); returns whether anything was removed.
    pub fn remove(&mut self, start: u64, end: u64) -> bool {
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

    /// Does [start, end) overlap any executable range?
    pub fn overlaps(&self, start: u64, end: u64) -> bool {
        self.ranges.range(..end).next_back().is_some_and(|(_, (e, _))| *e > start)
    }

    /// The ranges the guest may also write, in order.
    pub fn writable_ranges(&self) -> Vec<(u64, u64)> {
        self.ranges.iter().filter(|(_, (_, p))| p & libc::PROT_WRITE != 0).map(|(&s, &(e, _))| (s, e)).collect()
    }

    /// End of the contiguous executable extent that contains `pc`.
    pub fn extent_end(&self, pc: GuestAddr) -> Option<u64> {
        let (_, &(e, _)) = self.ranges.range(..=pc.get()).next_back()?;
        if e <= pc.get() {
            return None;
        }
        let mut end = e;
        while let Some(&(next, _)) = self.ranges.get(&end) {
            end = next;
        }
        Some(end)
    }
}

/// Pages of guest code that the guest may also write (JIT buffers, RWX
/// mappings) and that have translations: bt-run keeps their host mapping
/// read-only, so a guest write faults and the translations are dropped
/// before the write goes through (see `signals`).
#[derive(Default, Clone)]
pub struct CodeGuard {
    pub pages: std::collections::BTreeSet<u64>,
}

impl CodeGuard {
    /// Forget protected pages in [start, end) (the guest re-protected,
    /// remapped or unmapped them, so their host protection is new).
    pub fn forget(&mut self, start: u64, end: u64) {
        let v: Vec<u64> = self.pages.range(page_down(start)..end).copied().collect();
        for p in v {
            self.pages.remove(&p);
        }
    }

    pub fn contains(&self, addr: u64) -> bool {
        self.pages.contains(&page_down(addr))
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
        m.add(0x1000, 0x5000, 5);
        m.add(0x5000, 0x6000, 5);
        assert_eq!(m.extent_end(GuestAddr(0x1000)), Some(0x6000));
        assert!(m.remove(0x2000, 0x3000));
        assert_eq!(m.extent_end(GuestAddr(0x1000)), Some(0x2000));
        assert_eq!(m.extent_end(GuestAddr(0x2000)), None);
        assert_eq!(m.extent_end(GuestAddr(0x3000)), Some(0x6000));
        assert!(m.overlaps(0x2fff, 0x3001));
        assert!(!m.overlaps(0x2000, 0x3000));
        assert!(!m.remove(0x2000, 0x3000));
    }
}
