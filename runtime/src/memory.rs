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

/// Ranges the guest mapped with PROT_EXEC, keyed by start, non-overlapping.
#[derive(Default)]
pub struct ExecMap {
    ranges: BTreeMap<u64, u64>,
}

impl ExecMap {
    /// Mark [start, end) guest-executable.
    pub fn add(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        self.remove(start, end);
        self.ranges.insert(start, end);
    }

    /// Forget [start, end); returns whether anything was removed.
    pub fn remove(&mut self, start: u64, end: u64) -> bool {
        if start >= end {
            return false;
        }
        let hits: Vec<(u64, u64)> = self
            .ranges
            .range(..end)
            .rev()
            .take_while(|(_, e)| **e > start)
            .map(|(s, e)| (*s, *e))
            .collect();
        for &(s, e) in &hits {
            self.ranges.remove(&s);
            if s < start {
                self.ranges.insert(s, start);
            }
            if e > end {
                self.ranges.insert(end, e);
            }
        }
        !hits.is_empty()
    }

    /// Does [start, end) overlap any executable range?
    pub fn overlaps(&self, start: u64, end: u64) -> bool {
        self.ranges.range(..end).next_back().is_some_and(|(_, e)| *e > start)
    }

    /// End of the contiguous executable extent that contains `pc`.
    pub fn extent_end(&self, pc: GuestAddr) -> Option<u64> {
        let (_, &e) = self.ranges.range(..=pc.get()).next_back()?;
        if e <= pc.get() {
            return None;
        }
        let mut end = e;
        while let Some(&next) = self.ranges.get(&end) {
            end = next;
        }
        Some(end)
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
        m.add(0x1000, 0x5000);
        m.add(0x5000, 0x6000);
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
