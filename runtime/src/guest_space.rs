//! Where guest mappings go under isolation: every one lies below
//! [`GUEST_LIMIT`], and bt-run's own writable memory (its heap, stacks,
//! thread contexts, the code cache's write view) above it, where the
//! kernel puts bt-run's mappings (top-down from the top of the address
//! space). The split is what lets a translated store be confined by one
//! compare against a constant.
//!
//! The kernel would put a guest mapping whose address it chooses next to
//! bt-run's, so under isolation the runtime chooses instead, for every call
//! that lets the kernel choose (mmap without MAP_FIXED, mremap that may
//! move, shmat at 0), as the kernel's top-down allocator does: the highest
//! free range below a random base, first fit, from a map of what is mapped
//! below the limit. The map is only a guide: each placement is made with
//! MAP_FIXED_NOREPLACE (or MREMAP_FIXED into a range checked free), and a
//! range the map thought free but the kernel did not (a mapping bt-run did
//! not see made, a stack grown down) reloads it from /proc/self/maps.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::isolate::EXEC_SAFE_BAND;

/// Every guest mapping lies below this under isolation (64 TiB; the
/// user address space of 4-level paging is 128 TiB).
pub const GUEST_LIMIT: u64 = translator::abi::GUEST_LIMIT;

/// Where the loader puts the interpreter and the initial stack, and below
/// whose top the runtime's placements start: above the band of programs
/// and code caches (so the two never meet), below the limit.
pub const GUEST_BAND: (u64, u64) = (EXEC_SAFE_BAND.1, GUEST_LIMIT);

/// The lowest address a placement uses (as the kernel's allocator stops at
/// mmap_min_addr; the first 4 GiB are left to MAP_32BIT and to programs
/// linked low).
const LOW: u64 = 1 << 32;

/// Randomness of the placements' starting point, as the kernel's for
/// mmap_base (2^28 pages).
const RANDOM_SPAN: u64 = 1 << 40;

const PAGE: u64 = 4096;

/// What is mapped below [`GUEST_LIMIT`], and where placements start.
#[derive(Debug, Clone)]
pub struct GuestSpace {
    /// start -> end of disjoint mapped ranges.
    used: BTreeMap<u64, u64>,
    /// Placements are made top-down from here first, then from the limit.
    base: u64,
}

impl GuestSpace {
    /// An empty map with placements starting below `base`.
    pub fn new(base: u64) -> Self {
        Self { used: BTreeMap::new(), base: base.clamp(LOW, GUEST_LIMIT) & !(PAGE - 1) }
    }

    /// The process's mappings below the limit, from /proc/self/maps.
    pub fn load(&mut self) {
        let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else { return };
        self.used.clear();
        for line in maps.lines() {
            let Some((s, e)) = line.split_whitespace().next().and_then(|r| r.split_once('-')) else { continue };
            let (Ok(s), Ok(e)) = (u64::from_str_radix(s, 16), u64::from_str_radix(e, 16)) else { continue };
            if s < GUEST_LIMIT {
                self.add(s, e.min(GUEST_LIMIT));
            }
        }
    }

    /// [start, end) is mapped now.
    pub fn add(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        self.remove(start, end);
        self.used.insert(start, end);
    }

    /// [start, end) is unmapped now.
    pub fn remove(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        let overlapping: Vec<(u64, u64)> =
            self.used.range(..end).rev().take_while(|&(_, &e)| e > start).map(|(&s, &e)| (s, e)).collect();
        for (s, e) in overlapping {
            self.used.remove(&s);
            if s < start {
                self.used.insert(s, start);
            }
            if e > end {
                self.used.insert(end, e);
            }
        }
    }

    /// Is [start, start + len) free and below the limit?
    pub fn is_free(&self, start: u64, len: u64) -> bool {
        let Some(end) = start.checked_add(len) else { return false };
        start >= LOW && end <= GUEST_LIMIT && self.used.range(..end).next_back().is_none_or(|(_, &e)| e <= start)
    }

    /// The highest free `len` bytes aligned to `align` (a power of two,
    /// at least a page) below the base, else below the limit.
    pub fn find(&self, len: u64, align: u64) -> Option<u64> {
        if len == 0 || len > GUEST_LIMIT - LOW {
            return None;
        }
        self.find_below(self.base, LOW, len, align).or_else(|| self.find_below(GUEST_LIMIT, self.base, len, align))
    }

    /// Top-down first fit in [floor, top).
    fn find_below(&self, top: u64, floor: u64, len: u64, align: u64) -> Option<u64> {
        let fits = |lo: u64, hi: u64| -> Option<u64> {
            let at = hi.checked_sub(len)? & !(align - 1);
            (at >= lo.max(floor)).then_some(at)
        };
        let mut hi = top;
        for (&s, &e) in self.used.range(..top).rev() {
            if e < hi
                && let Some(at) = fits(e, hi)
            {
                return Some(at);
            }
            hi = hi.min(s);
            if hi <= floor {
                return None;
            }
        }
        fits(floor, hi)
    }
}

/// The process's map, present under isolation only.
static SPACE: Mutex<Option<GuestSpace>> = Mutex::new(None);

/// Turn placement on (isolation), loading the map; `random` picks the base
/// (None: no randomization, as under `setarch -R`).
pub fn enable(random: Option<u64>) {
    let below = GUEST_LIMIT - (8 << 30);
    let base = match random {
        Some(r) => below - (r % (RANDOM_SPAN / PAGE)) * PAGE,
        None => below,
    };
    let mut s = GuestSpace::new(base);
    s.load();
    *lock() = Some(s);
}

fn lock() -> std::sync::MutexGuard<'static, Option<GuestSpace>> {
    // A panic aborts the process, so the lock is never poisoned in use.
    SPACE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Is placement on (isolation)?
pub fn enabled() -> bool {
    lock().is_some()
}

/// Place `len` bytes: `make(addr)` maps them at `addr` without replacing
/// anything (-EEXIST if taken), returning the result or -errno. `hint` is
/// tried first if it is free. None when placement is off (the caller lets
/// the kernel choose); Some(-ENOMEM) when no range is free.
pub fn place(len: u64, align: u64, hint: u64, mut make: impl FnMut(u64) -> i64) -> Option<i64> {
    if len == 0 {
        return None;
    }
    let mut guard = lock();
    let space = guard.as_mut()?;
    let len = len.checked_next_multiple_of(PAGE)?;
    let hint = hint.checked_next_multiple_of(PAGE).unwrap_or(0);
    for attempt in 0..3 {
        let at = if hint != 0 && space.is_free(hint, len) {
            hint
        } else {
            match space.find(len, align.max(PAGE)) {
                Some(at) => at,
                None => return Some(-(libc::ENOMEM as i64)),
            }
        };
        let r = make(at);
        if r == -(libc::EEXIST as i64) && attempt < 2 {
            // Something bt-run did not see is there: look again.
            space.load();
            continue;
        }
        if r >= 0 {
            space.add(r as u64, r as u64 + len);
        }
        return Some(r);
    }
    Some(-(libc::ENOMEM as i64))
}

/// [start, start + len) was mapped (by a fixed placement).
pub fn note_mapped(start: u64, len: u64) {
    if let Some(s) = lock().as_mut() {
        s.add(start, start.saturating_add(len.next_multiple_of(PAGE)));
    }
}

/// [start, start + len) was unmapped.
pub fn note_unmapped(start: u64, len: u64) {
    if let Some(s) = lock().as_mut() {
        s.remove(start, start.saturating_add(len.next_multiple_of(PAGE)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: u64 = 1 << 30;

    #[test]
    fn placements_go_top_down_below_the_base_and_skip_what_is_used() {
        let mut s = GuestSpace::new(100 * G);
        s.add(99 * G, 100 * G);
        assert_eq!(s.find(G, PAGE), Some(98 * G));
        s.add(98 * G + PAGE, 99 * G);
        // The free range ends at 98G + 4K now.
        assert_eq!(s.find(2 * PAGE, PAGE), Some(98 * G - PAGE));
        assert_eq!(s.find(PAGE, PAGE), Some(98 * G));
        s.add(98 * G - 2 * PAGE, 98 * G);
        // [98G, 98G + 4K) is too small for 8K: below what was just used.
        assert_eq!(s.find(2 * PAGE, PAGE), Some(98 * G - 4 * PAGE));
        assert_eq!(s.find(PAGE, PAGE), Some(98 * G));
        // Alignment.
        let at = s.find(3 << 20, 2 << 20).unwrap();
        assert_eq!(at % (2 << 20), 0);
        assert!(at + (3 << 20) <= 98 * G);
    }

    #[test]
    fn a_full_range_below_the_base_goes_on_above_it() {
        let mut s = GuestSpace::new(LOW + 4 * PAGE);
        s.add(LOW, LOW + 4 * PAGE);
        let at = s.find(PAGE, PAGE).unwrap();
        assert_eq!(at, GUEST_LIMIT - PAGE);
        s.add(LOW + 4 * PAGE, GUEST_LIMIT);
        assert_eq!(s.find(PAGE, PAGE), None);
    }

    #[test]
    fn removal_splits_and_frees() {
        let mut s = GuestSpace::new(10 * G);
        s.add(5 * G, 8 * G);
        s.remove(6 * G, 7 * G);
        assert!(s.is_free(6 * G, G));
        assert!(!s.is_free(6 * G - PAGE, 2 * PAGE));
        assert!(!s.is_free(7 * G - PAGE, 2 * PAGE));
        s.add(9 * G, 10 * G);
        s.add(8 * G, 9 * G);
        assert_eq!(s.find(G, PAGE), Some(6 * G));
        // Adding over existing ranges replaces them.
        s.add(4 * G, 11 * G);
        assert_eq!(s.used.len(), 1);
        assert!(!s.is_free(10 * G, PAGE));
        assert!(!s.is_free(GUEST_LIMIT, PAGE), "nothing is free above the limit");
    }

    #[test]
    fn the_loaded_map_has_this_process_below_the_limit() {
        let mut s = GuestSpace::new(GUEST_LIMIT - G);
        s.load();
        // A mapping made by the kernel where it likes (top-down) is above
        // the limit on x86-64 (4-level paging): the test process's own.
        let v = vec![0u8; 1 << 20];
        let a = v.as_ptr() as u64;
        if a < GUEST_LIMIT {
            assert!(!s.is_free(a & !(PAGE - 1), PAGE));
        }
        let at = s.find(G, PAGE).unwrap();
        assert!(at + G <= GUEST_LIMIT - G);
    }
}
