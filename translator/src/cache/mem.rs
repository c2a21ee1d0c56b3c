//! `CodeMemory`: the code cache's pages, mapped twice from one memfd.
//!
//! The execute view is read+execute and is never writable; the write view is
//! read+write and is never executable. Writes (new blocks, link patches) go
//! through the write view only, so W^X is a property of this type rather than
//! a habit of its callers. This is the translator's only unsafe module.
//!
//! A fork shares the cache with the child copy-on-write, page by page (see
//! `CodeMemory::prepare_fork`): the views are shared mappings, so the
//! kernel's own copy-on-write does not apply, and copying the cache at every
//! fork cost more than the fork itself.

use std::io;

use crate::addr::CachePc;

pub struct CodeMemory {
    /// The execute view (`cow.view`) and how writes reach it.
    cow: Cow,
    size: usize,
    /// Both views are mapped in up to here (`populate`).
    populated: usize,
    /// Where this process started writing (0, or the end of the code at
    /// its last fork): how far ahead to populate grows with what it wrote.
    populate_base: usize,
    /// The kernel refused MADV_POPULATE_* once (older than 5.14): leave
    /// pages to fault in one by one.
    no_populate: bool,
}

/// Memory bt-run writes through one mapping of a memfd and cached code
/// reads or executes through another (`view`), which a fork would leave
/// shared between parent and child: the code cache, and the tables under
/// isolation. From a process's first fork on it writes a *store* of its
/// own instead, and the pages the processes share are copied when written
/// (`prepare_fork`).
struct Cow {
    /// What cached code reads or executes, with protection `prot`.
    view: *mut u8,
    prot: i32,
    /// The writable mapping made with the view (written until the first
    /// fork; kept mapped so that its range stays bt-run's).
    rw: *mut u8,
    /// Where this process writes: `rw`, then its store's writable mapping.
    w: *mut u8,
    /// Two ranges the size of the view, reserved at creation, where from
    /// the first fork on this process's store (a memfd of its own) is
    /// mapped twice: read+write (`store_w`, where it writes) and
    /// inaccessible (`store_x`, with the view's protection only while its
    /// pages are mapped into the view: `alias_store`).
    store_w: *mut u8,
    store_x: *mut u8,
    size: usize,
    /// The memfds' name.
    name: &'static std::ffi::CStr,
    /// One bit per page: the page is shared with another process since a
    /// fork. Nobody writes such a page again; a write to it first makes it
    /// this process's own (`own`).
    shared: Vec<u64>,
    /// Every shared page lies below this offset.
    shared_end: usize,
    /// Store ranges mapped into the view since it was last one mapping.
    pieces: usize,
}

/// How many pieces of stores the view may collect (each page a process
/// takes as its own may be one, split from its neighbours) before the next
/// fork makes it one mapping again.
const MAX_PIECES: usize = 512;

/// A fresh memfd mapped twice where the kernel chooses: read+write and
/// inaccessible.
struct StorePair {
    w: *mut u8,
    x: *mut u8,
    size: usize,
}

impl StorePair {
    fn new(size: usize, name: &std::ffi::CStr) -> io::Result<Self> {
        // SAFETY: memfd_create takes a NUL-terminated name and flags.
        let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let map = |prot| {
            // SAFETY: a new shared mapping of our memfd where the kernel
            // chooses; checked below.
            unsafe { libc::mmap(std::ptr::null_mut(), size, prot, libc::MAP_SHARED, fd, 0) }
        };
        let mut pair = StorePair { w: std::ptr::null_mut(), x: std::ptr::null_mut(), size };
        let mut result = Ok(());
        // SAFETY: fd is the memfd just created.
        if unsafe { libc::ftruncate(fd, size as libc::off_t) } != 0 {
            result = Err(io::Error::last_os_error());
        }
        for (slot, prot) in [(&mut pair.w, libc::PROT_READ | libc::PROT_WRITE), (&mut pair.x, libc::PROT_NONE)] {
            if result.is_ok() {
                let p = map(prot);
                if p == libc::MAP_FAILED {
                    result = Err(io::Error::last_os_error());
                } else {
                    *slot = p.cast();
                }
            }
        }
        // SAFETY: closing our own descriptor; the mappings keep the pages.
        unsafe { libc::close(fd) };
        result.map(|()| pair)
    }

    /// Hand both mappings over (moved elsewhere by the caller).
    fn take(mut self) -> (*mut u8, *mut u8) {
        (std::mem::replace(&mut self.w, std::ptr::null_mut()), std::mem::replace(&mut self.x, std::ptr::null_mut()))
    }
}

impl Drop for StorePair {
    fn drop(&mut self) {
        for p in [self.w, self.x] {
            if !p.is_null() {
                // SAFETY: a mapping made by `new` with this size and not
                // handed over.
                unsafe { libc::munmap(p.cast(), self.size) };
            }
        }
    }
}

/// The child's store, made by the parent before the fork (so that a
/// failure is the fork's: ENOMEM, EMFILE) and taken by the child
/// (`Cow::forked_child`); unmapped when dropped unused.
pub struct ForkStores {
    child: StorePair,
}

const PAGE: usize = 4096;

/// How far ahead of the last write both views are mapped in, in one call
/// each, instead of a page fault per 4 KiB page on each view: as far again
/// as the process has written so far, from `POPULATE_MIN` up to
/// `POPULATE_AHEAD` (a short-lived program, or a forked child, does not pay
/// for pages it never uses).
const POPULATE_AHEAD: usize = 512 << 10;
const POPULATE_MIN: usize = 64 << 10;

// SAFETY: the raw pointers name process-wide mappings owned by this value;
// callers serialise mutation through `&mut self`.
unsafe impl Send for CodeMemory {}
unsafe impl Sync for CodeMemory {}

const GIB: u64 = 1 << 30;

/// A random word from the kernel (getrandom).
fn random_u64() -> io::Result<u64> {
    let mut w = [0u8; 8];
    let mut done = 0;
    while done < w.len() {
        // SAFETY: the buffer is valid and writable for its remaining length.
        let n = unsafe { libc::getrandom(w[done..].as_mut_ptr().cast(), w.len() - done, 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
            continue;
        }
        done += n as usize;
    }
    Ok(u64::from_le_bytes(w))
}

impl CodeMemory {
    /// Map `size` bytes of cache. If `near` is given, try to place the
    /// execute view so that all of it is within ±2 GiB of `near`, so that
    /// rip-relative guest operands stay encodable; otherwise, or if no such
    /// place is free, anywhere. With `within` = [lo, hi), the execute view
    /// lies inside that band whatever else happens (a random free place in
    /// it when none near `near` is), or the call fails.
    pub fn new(size: usize, near: Option<u64>, within: Option<(u64, u64)>) -> io::Result<Self> {
        let (lo, hi) = within.unwrap_or((0x1000_0000, 0x7fff_ffff_0000));
        let fits = |want: u64| want >= lo && want.checked_add(size as u64).is_some_and(|end| end <= hi);
        let align = 2u64 << 20;
        let mut candidates = Vec::new();
        if let Some(near) = near {
            for delta in [GIB as i64, -(GIB as i64), 3 * (GIB as i64) / 2, -3 * (GIB as i64) / 2, (GIB / 2) as i64] {
                candidates.push((near as i64).wrapping_add(delta) as u64 & !(align - 1));
            }
        }
        if within.is_some() {
            // Random places in the band, should nothing near be free.
            let slots = (hi.saturating_sub(lo).saturating_sub(size as u64)) / align;
            for _ in 0..16 {
                if slots > 0 {
                    candidates.push(lo.next_multiple_of(align) + (random_u64()? % slots) * align);
                }
            }
        }
        // SAFETY: memfd_create takes a NUL-terminated name and flags; the
        // result is checked.
        let fd = unsafe { libc::memfd_create(c"bt-run-code-cache".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is the memfd just created.
        if unsafe { libc::ftruncate(fd, size as libc::off_t) } != 0 {
            let e = io::Error::last_os_error();
            // SAFETY: closing our own fd.
            unsafe { libc::close(fd) };
            return Err(e);
        }
        let mut rx = std::ptr::null_mut();
        for want in candidates.into_iter().filter(|&w| fits(w)) {
            // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing
            // mapping; failure is checked.
            let p = unsafe {
                libc::mmap(
                    want as *mut _,
                    size,
                    libc::PROT_READ | libc::PROT_EXEC,
                    libc::MAP_SHARED | libc::MAP_FIXED_NOREPLACE,
                    fd,
                    0,
                )
            };
            if p == want as *mut _ {
                rx = p as *mut u8;
                break;
            }
            if p != libc::MAP_FAILED {
                // A kernel that takes MAP_FIXED_NOREPLACE as a hint put it
                // elsewhere.
                // SAFETY: unmapping the mapping just made.
                unsafe { libc::munmap(p, size) };
            }
        }
        if rx.is_null() && within.is_some() {
            // SAFETY: closing our own fd.
            unsafe { libc::close(fd) };
            return Err(io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                format!("no free place for the code cache between {lo:#x} and {hi:#x}"),
            ));
        }
        if rx.is_null() {
            // SAFETY: a fresh shared mapping of our memfd at a kernel-chosen
            // address; failure is checked.
            let p = unsafe {
                libc::mmap(std::ptr::null_mut(), size, libc::PROT_READ | libc::PROT_EXEC, libc::MAP_SHARED, fd, 0)
            };
            if p == libc::MAP_FAILED {
                let e = io::Error::last_os_error();
                // SAFETY: closing our own fd.
                unsafe { libc::close(fd) };
                return Err(e);
            }
            rx = p as *mut u8;
        }
        // SAFETY: as above, the write view of the same memfd.
        let rw = unsafe {
            libc::mmap(std::ptr::null_mut(), size, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd, 0)
        };
        // SAFETY: the mappings keep the memfd's pages alive; the fd itself is
        // no longer needed.
        unsafe { libc::close(fd) };
        if rw == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            cow: Cow::new(rx, libc::PROT_READ | libc::PROT_EXEC, rw as *mut u8, size, c"bt-run-code-cache")?,
            size,
            populated: 0,
            populate_base: 0,
            no_populate: false,
        })
    }

    pub fn base(&self) -> CachePc {
        CachePc(self.cow.view as u64)
    }

    /// Before fork, in the parent: see `Cow::prepare_fork`; the pages
    /// populated ahead past the code are given back, nobody's from now on.
    pub fn prepare_fork(&mut self, used: usize) -> io::Result<ForkStores> {
        let tail = used.min(self.size).next_multiple_of(PAGE);
        if self.populated > tail {
            // SAFETY: a range of the writable mapping past the code, which
            // only this process uses (a child forked earlier took its own
            // store at its fork) and which it leaves now. Only a hint.
            unsafe { libc::madvise(self.cow.w.add(tail).cast(), self.populated - tail, libc::MADV_REMOVE) };
            self.populated = tail;
        }
        let stores = self.cow.prepare_fork(used)?;
        self.populated = tail;
        self.populate_base = tail;
        Ok(stores)
    }

    /// In the forked child: see `Cow::forked_child`.
    pub fn forked_child(&mut self, stores: ForkStores, used: usize) -> io::Result<()> {
        self.cow.forked_child(stores, used)
    }

    /// After a flush: see `Cow::discard_from`.
    pub fn discard_from(&mut self, from: usize) {
        self.cow.discard_from(from);
    }

    pub fn size(&self) -> usize {
        self.size
    }

    /// Both views and the store's, as (start, end) ranges, for the
    /// guest-mapping guard.
    pub fn ranges(&self) -> [(u64, u64); 4] {
        self.cow.ranges()
    }

    pub fn contains(&self, pc: CachePc) -> bool {
        pc.get() >= self.cow.view as u64 && pc.get() < self.cow.view as u64 + self.size as u64
    }

    /// Map in both views' pages for [off, end) and up to `POPULATE_AHEAD`
    /// beyond (MADV_POPULATE_WRITE on the write view allocates the memfd's
    /// pages, MADV_POPULATE_READ maps them into the execute view): two
    /// calls per stretch instead of two page faults per page. Only a hint;
    /// a kernel without it leaves the pages to their faults.
    fn populate(&mut self, off: usize, end: usize) {
        if end <= self.populated || self.no_populate {
            return;
        }
        let from = self.populated.max(off & !4095);
        let ahead = (end - self.populate_base.min(end)).clamp(POPULATE_MIN, POPULATE_AHEAD);
        let to = (end + ahead).next_multiple_of(4096).min(self.size);
        for (view, advice) in [(self.cow.w, libc::MADV_POPULATE_WRITE), (self.cow.view, libc::MADV_POPULATE_READ)] {
            // SAFETY: [from, to) lies inside the view (to <= size); the
            // advice only faults pages in, it changes no contents.
            if unsafe { libc::madvise(view.add(from).cast(), to - from, advice) } != 0 {
                self.no_populate = true;
                return;
            }
        }
        self.populated = to;
    }

    /// Copy `bytes` to cache offset `off` through the write view.
    pub fn write(&mut self, off: usize, bytes: &[u8]) {
        assert!(off.checked_add(bytes.len()).is_some_and(|e| e <= self.size), "code cache write out of bounds");
        self.cow.own(off, bytes.len());
        self.populate(off, off + bytes.len());
        // SAFETY: bounds checked above; the write view is RW and no Rust
        // reference to these bytes exists.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.cow.w.add(off), bytes.len()) };
    }

    /// Store a 4-byte branch displacement at `off` with one aligned store, so
    /// a thread executing the branch sees either the old or the new target.
    pub fn patch_rel32(&mut self, off: usize, rel: i32) {
        assert!(off.is_multiple_of(4) && off + 4 <= self.size, "misaligned or out-of-bounds patch");
        self.cow.own(off, 4);
        // SAFETY: aligned, in bounds (checked above), and the write view is RW.
        unsafe { std::ptr::write_volatile(self.cow.w.add(off) as *mut i32, rel) };
    }

    /// Store one byte at `off` (a branch displacement both of whose values
    /// are correct for a thread that executes it meanwhile).
    pub fn patch_u8(&mut self, off: usize, v: u8) {
        assert!(off < self.size, "out-of-bounds patch");
        self.cow.own(off, 1);
        // SAFETY: in bounds (checked above), and the write view is RW.
        unsafe { std::ptr::write_volatile(self.cow.w.add(off), v) };
    }

    /// Replace the 2 bytes at `off` with one aligned store. Only while no
    /// other thread runs cached code: an instruction's first bytes change.
    pub fn patch_u16(&mut self, off: usize, v: [u8; 2]) {
        assert!(off.is_multiple_of(2) && off + 2 <= self.size, "misaligned or out-of-bounds patch");
        self.cow.own(off, 2);
        // SAFETY: aligned, in bounds (checked above), and the write view is RW.
        unsafe { std::ptr::write_volatile(self.cow.w.add(off) as *mut [u8; 2], v) };
    }

    /// Store a 4-byte immediate at `off` with one aligned store, so a
    /// thread executing the instruction sees either the old or the new value.
    pub fn patch_u32(&mut self, off: usize, v: u32) {
        assert!(off.is_multiple_of(4) && off + 4 <= self.size, "misaligned or out-of-bounds patch");
        self.cow.own(off, 4);
        // SAFETY: aligned, in bounds (checked above), and the write view is RW.
        unsafe { std::ptr::write_volatile(self.cow.w.add(off) as *mut u32, v) };
    }

    /// Store an 8-byte immediate at `off` with one aligned store, so a
    /// thread executing the instruction sees either the old or the new value.
    pub fn patch_u64(&mut self, off: usize, v: u64) {
        assert!(off.is_multiple_of(8) && off + 8 <= self.size, "misaligned or out-of-bounds patch");
        self.cow.own(off, 8);
        // SAFETY: aligned, in bounds (checked above), and the write view is RW.
        unsafe { std::ptr::write_volatile(self.cow.w.add(off) as *mut u64, v) };
    }

    /// Read back `len` bytes at `off` (for tests and disassembly in errors).
    pub fn read(&self, off: usize, len: usize) -> &[u8] {
        assert!(off.checked_add(len).is_some_and(|e| e <= self.size));
        // SAFETY: in bounds; the execute view is always readable.
        unsafe { std::slice::from_raw_parts(self.cow.view.add(off), len) }
    }
}

impl Cow {
    /// Over `view` (protection `prot`) and `rw`, two shared mappings of one
    /// memfd of `size` bytes, named `name`; reserves the store's ranges.
    fn new(view: *mut u8, prot: i32, rw: *mut u8, size: usize, name: &'static std::ffi::CStr) -> io::Result<Self> {
        let reserve = || {
            // SAFETY: an inaccessible private reservation where the kernel
            // chooses; failure is checked.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    size,
                    libc::PROT_NONE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                    -1,
                    0,
                )
            };
            if p == libc::MAP_FAILED { Err(io::Error::last_os_error()) } else { Ok(p.cast::<u8>()) }
        };
        let mut cow = Cow {
            view,
            prot,
            rw,
            w: rw,
            store_w: std::ptr::null_mut(),
            store_x: std::ptr::null_mut(),
            size,
            name,
            shared: vec![0; size.div_ceil(PAGE).div_ceil(64)],
            shared_end: 0,
            pieces: 0,
        };
        // (Dropped on failure: whatever is mapped so far is unmapped.)
        cow.store_w = reserve()?;
        cow.store_x = reserve()?;
        Ok(cow)
    }

    /// The view, the writable mapping and the store's ranges, as (start,
    /// end), for the guest-mapping guard.
    fn ranges(&self) -> [(u64, u64); 4] {
        let range = |p: *mut u8| (p as u64, p as u64 + self.size as u64);
        [range(self.view), range(self.rw), range(self.store_w), range(self.store_x)]
    }

    /// Before fork, in the parent: what is written so far (below `used`)
    /// is shared from now on, and the parent's next writes go to a store of
    /// its own, past that too; returns the child's store. Done before
    /// the fork so that nothing can fail in the parent once the child
    /// exists; if the fork fails, the pages are only copied when written.
    ///
    /// The invariant, in every process that shares pages: a page any of
    /// them can see is written by at most one of them. Shared pages are
    /// written by none; a write to one first copies it into the writer's
    /// store and maps the copy over the writer's execute view (`own`): the
    /// same bytes, so a thread executing the page meanwhile sees one or
    /// the other. Past the shared code each process writes its own store.
    fn prepare_fork(&mut self, used: usize) -> io::Result<ForkStores> {
        let child = StorePair::new(self.size, self.name)?;
        let mine = StorePair::new(self.size, self.name)?;
        let whole = if self.pieces > MAX_PIECES { Some(StorePair::new(self.size, self.name)?) } else { None };
        let switch = || {
            if let Some(whole) = whole {
                self.make_whole(whole, used)?;
            }
            self.switch_store(mine, used)
        };
        if let Err(e) = switch() {
            panic!("bt-run cannot take a store of its own before a fork: {e}");
        }
        self.share_below(used);
        Ok(ForkStores { child })
    }

    /// Too many pieces of too many memfds in the view: copy what it shows
    /// below `used` into `pair` and map that over it, so that the view
    /// becomes one mapping again (the kernel limits a process's mappings,
    /// 65,530 by default). Only before a fork, followed by `switch_store`:
    /// `pair` is then shared and written by no one, like what it replaces.
    fn make_whole(&mut self, pair: StorePair, used: usize) -> io::Result<()> {
        let tail = used.min(self.size).next_multiple_of(PAGE);
        self.take_store(pair)?;
        // SAFETY: both mappings are `size` bytes and distinct; the store's
        // pages are new.
        unsafe { std::ptr::copy_nonoverlapping(self.view, self.store_w, tail) };
        self.pieces = 0;
        if tail > 0 { self.alias_store(0, tail) } else { Ok(()) }
    }

    /// In the forked child (one thread, no cached code running): the pages
    /// below `used` are shared with the parent, and the child writes a
    /// store of its own (the one the parent made for it).
    fn forked_child(&mut self, stores: ForkStores, used: usize) -> io::Result<()> {
        self.switch_store(stores.child, used)?;
        self.share_below(used);
        Ok(())
    }

    /// Write to `pair` from now on: it replaces the store, and its pages
    /// replace the view's past `used`.
    fn switch_store(&mut self, pair: StorePair, used: usize) -> io::Result<()> {
        let tail = used.min(self.size).next_multiple_of(PAGE);
        self.take_store(pair)?;
        self.w = self.store_w;
        if tail < self.size {
            self.alias_store(tail, self.size - tail)?;
        }
        Ok(())
    }

    /// Move `pair` onto the store's ranges, in place of the store before it
    /// (whose pages the view keeps where it maps them).
    fn take_store(&mut self, pair: StorePair) -> io::Result<()> {
        let (w, x) = pair.take();
        for (from, to) in [(w, self.store_w), (x, self.store_x)] {
            // SAFETY: `from` is a mapping of `size` bytes that nothing else
            // refers to; it replaces the reservation or the store before
            // it, whose pages the execute view keeps where it maps them.
            let r = unsafe {
                libc::mremap(from.cast(), self.size, self.size, libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED, to)
            };
            if r == libc::MAP_FAILED {
                let e = io::Error::last_os_error();
                // SAFETY: not moved, still ours.
                unsafe { libc::munmap(from.cast(), self.size) };
                return Err(e);
            }
        }
        Ok(())
    }

    /// Pages [0, used) are shared, the rest not.
    fn share_below(&mut self, used: usize) {
        let pages = used.min(self.size).div_ceil(PAGE);
        self.shared.fill(0);
        for w in 0..pages / 64 {
            self.shared[w] = u64::MAX;
        }
        if !pages.is_multiple_of(64) {
            self.shared[pages / 64] = (1u64 << (pages % 64)) - 1;
        }
        self.shared_end = pages * PAGE;
    }

    fn is_shared(&self, page: usize) -> bool {
        self.shared[page / 64] >> (page % 64) & 1 != 0
    }

    /// Map the store's pages [off, off + len) over the view.
    fn alias_store(&mut self, off: usize, len: usize) -> io::Result<()> {
        let exec = |prot| {
            // SAFETY: a range of the store's second mapping, which nothing
            // reads or writes through.
            if unsafe { libc::mprotect(self.store_x.add(off).cast(), len, prot) } != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        };
        // The second mapping is executable only while it is the source:
        // the new part of the view is read+execute as it appears, so a
        // thread executing there meanwhile never meets a page it cannot run.
        self.pieces += 1;
        exec(self.prot)?;
        // SAFETY: [off, off + len) lies inside the store's second mapping
        // and the view (both `size` bytes); an old size of 0 makes another
        // mapping of the store's shared pages, with its source's
        // protection, in place of the view's pages, which no one writes.
        let r = unsafe {
            libc::mremap(
                self.store_x.add(off).cast(),
                0,
                len,
                libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
                self.view.add(off).cast::<libc::c_void>(),
            )
        };
        let moved = if r == libc::MAP_FAILED { Err(io::Error::last_os_error()) } else { Ok(()) };
        exec(libc::PROT_NONE)?;
        moved
    }

    /// Before writing [off, off + len): make every shared page in it this
    /// process's own, with the bytes it shows now.
    fn own(&mut self, off: usize, len: usize) {
        if off >= self.shared_end || len == 0 {
            return;
        }
        let (first, end) = (off / PAGE, (off + len).div_ceil(PAGE));
        let mut p = first;
        while p < end {
            if !self.is_shared(p) {
                p += 1;
                continue;
            }
            let mut q = p;
            while q < end && self.is_shared(q) {
                self.shared[q / 64] &= !(1u64 << (q % 64));
                q += 1;
            }
            let (at, n) = (p * PAGE, (q - p) * PAGE);
            // SAFETY: both ranges lie inside their mappings (`size` bytes);
            // the store's pages there are unused (a page is copied there at
            // most once per store) and distinct from the view's (`w` is the
            // store once a page is shared).
            unsafe { std::ptr::copy_nonoverlapping(self.view.add(at), self.w.add(at), n) };
            if let Err(e) = self.alias_store(at, n) {
                panic!("bt-run cannot take the pages it shares since a fork as its own: {e}");
            }
            p = q;
        }
    }

    /// After a flush: nothing from `from` on will be read before it is
    /// written again, so shared pages there become this process's own
    /// without their bytes.
    fn discard_from(&mut self, from: usize) {
        let first = from.min(self.size).next_multiple_of(PAGE);
        if first >= self.shared_end {
            return;
        }
        if let Err(e) = self.alias_store(first, self.shared_end - first) {
            panic!("bt-run cannot take the pages it shares since a fork as its own: {e}");
        }
        for p in first / PAGE..self.shared_end / PAGE {
            self.shared[p / 64] &= !(1u64 << (p % 64));
        }
        self.shared_end = first;
    }
}

impl Drop for Cow {
    fn drop(&mut self) {
        for p in [self.view, self.rw, self.store_w, self.store_x] {
            if !p.is_null() {
                // SAFETY: mappings of `size` bytes made for this value and
                // not used after drop.
                unsafe { libc::munmap(p.cast(), self.size) };
            }
        }
    }
}

/// A table bt-run writes and cached code reads (the indirect-branch
/// table, jump tables, inline-cache counters). Plain: one private
/// read-write mapping. `protected` (isolation): a memfd mapped twice, read
/// only where cached code reads it (below 2 GiB, where the program's
/// stores could reach) and writable only through a second view the kernel
/// places with bt-run's memory, like the code cache's two views (and
/// shared copy-on-write after a fork, like them: `Cow`).
pub struct DataTable {
    /// The view cached code reads.
    ptr: *mut u8,
    size: usize,
    /// Protected: the two views (`cow.view` is `ptr`).
    cow: Option<Cow>,
}

// SAFETY: owned mapping; mutation goes through &mut self.
unsafe impl Send for DataTable {}
unsafe impl Sync for DataTable {}

impl DataTable {
    /// A zeroed table; with `low`, preferably below 2 GiB (MAP_32BIT) so
    /// emitted code can address it with a 32-bit displacement.
    pub fn new(size: usize, low: bool, protected: bool) -> io::Result<Self> {
        if protected {
            return Self::two_views(size, low);
        }
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
        let mut p = libc::MAP_FAILED;
        if low {
            // SAFETY: anonymous private mapping; failure checked.
            p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    size,
                    libc::PROT_READ | libc::PROT_WRITE,
                    flags | libc::MAP_32BIT,
                    -1,
                    0,
                )
            };
        }
        if p == libc::MAP_FAILED {
            // SAFETY: anonymous private mapping; failure checked.
            p = unsafe { libc::mmap(std::ptr::null_mut(), size, libc::PROT_READ | libc::PROT_WRITE, flags, -1, 0) };
        }
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Self { ptr: p as *mut u8, size, cow: None })
    }

    fn two_views(size: usize, low: bool) -> io::Result<Self> {
        // SAFETY: memfd_create takes a NUL-terminated name and flags.
        let fd = unsafe { libc::memfd_create(c"bt-run-table".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let map = |prot: i32, extra: i32| {
            // SAFETY: a new shared mapping of our memfd where the kernel
            // chooses; checked by the caller.
            unsafe { libc::mmap(std::ptr::null_mut(), size, prot, libc::MAP_SHARED | extra, fd, 0) }
        };
        // SAFETY: fd is the memfd just created.
        let sized = unsafe { libc::ftruncate(fd, size as libc::off_t) } == 0;
        let mut ro = libc::MAP_FAILED;
        if sized && low {
            ro = map(libc::PROT_READ, libc::MAP_32BIT);
        }
        if sized && ro == libc::MAP_FAILED {
            ro = map(libc::PROT_READ, 0);
        }
        let rw = if ro == libc::MAP_FAILED { libc::MAP_FAILED } else { map(libc::PROT_READ | libc::PROT_WRITE, 0) };
        let e = io::Error::last_os_error();
        // SAFETY: the mappings keep the memfd's pages; the fd is ours.
        unsafe { libc::close(fd) };
        if rw == libc::MAP_FAILED {
            if ro != libc::MAP_FAILED {
                // SAFETY: the view just made, unused.
                unsafe { libc::munmap(ro, size) };
            }
            return Err(e);
        }
        Ok(Self {
            ptr: ro as *mut u8,
            size,
            cow: Some(Cow::new(ro.cast(), libc::PROT_READ, rw.cast(), size, c"bt-run-table")?),
        })
    }

    /// Map in every page of the table (both views) in one call each, for a
    /// table about to be written whole: a page populated costs less than a
    /// page faulted in (2.4 against 3.7 us on a Zen 3 VM). Only a hint.
    pub fn populate(&mut self) {
        // SAFETY: both views are `size` bytes long; the advice only faults
        // pages in and changes no contents.
        unsafe {
            libc::madvise(self.w().cast(), self.size, libc::MADV_POPULATE_WRITE);
            if self.cow.is_some() {
                libc::madvise(self.ptr.cast(), self.size, libc::MADV_POPULATE_READ);
            }
        }
    }

    pub fn addr(&self) -> u64 {
        self.ptr as u64
    }

    pub fn range(&self) -> (u64, u64) {
        (self.ptr as u64, self.ptr as u64 + self.size as u64)
    }

    /// Its ranges (the view, and if protected the other mapping and the
    /// store's), for the guest-mapping guard.
    pub fn ranges(&self) -> Vec<(u64, u64)> {
        match &self.cow {
            Some(c) => c.ranges().to_vec(),
            None => vec![self.range()],
        }
    }

    /// Where bt-run writes it.
    fn w(&self) -> *mut u8 {
        self.cow.as_ref().map_or(self.ptr, |c| c.w)
    }

    /// Before fork, in the parent: see `Cow::prepare_fork` (None for a
    /// plain table, which the kernel copies on write by itself).
    pub fn prepare_fork(&mut self, used: usize) -> io::Result<Option<ForkStores>> {
        self.cow.as_mut().map(|c| c.prepare_fork(used)).transpose()
    }

    /// In the forked child: see `Cow::forked_child`.
    pub fn forked_child(&mut self, stores: ForkStores, used: usize) -> io::Result<()> {
        match self.cow.as_mut() {
            Some(c) => c.forked_child(stores, used),
            None => Ok(()),
        }
    }

    /// Store word `i` with release ordering: stores made this way become
    /// visible to other threads in program order (and are never merged or
    /// dropped by the compiler), for tables read lock-free by cached code.
    pub fn store_word(&mut self, i: usize, v: u64) {
        assert!(i < self.size / 8);
        if let Some(c) = self.cow.as_mut() {
            c.own(i * 8, 8);
        }
        // SAFETY: in bounds and 8-aligned (page-aligned mapping); the word is
        // only ever accessed as a whole, by us and by cached code's loads.
        let w = unsafe { std::sync::atomic::AtomicU64::from_ptr((self.w() as *mut u64).add(i)) };
        w.store(v, std::sync::atomic::Ordering::Release);
    }

    /// Word `i`, as cached code reads it.
    pub fn word(&self, i: usize) -> u64 {
        assert!(i < self.size / 8);
        // SAFETY: in bounds and 8-aligned; the view is always readable and
        // the word only ever accessed as a whole.
        let w = unsafe { std::sync::atomic::AtomicU64::from_ptr((self.ptr as *mut u64).add(i)) };
        w.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Nothing in the table will be read again before it is written (a
    /// flush): pages shared since a fork become this process's own without
    /// being copied.
    pub fn discard(&mut self) {
        if let Some(c) = self.cow.as_mut() {
            c.discard_from(0);
        }
    }

    /// Every word `v` (what was there is not read again: shared pages are
    /// not copied first).
    pub fn fill(&mut self, v: u64) {
        self.discard();
        // SAFETY: the writable mapping is page aligned, `size` bytes long,
        // and exclusively borrowed through &mut self; after `discard_from`
        // it is what the view shows.
        unsafe { std::slice::from_raw_parts_mut(self.w() as *mut u64, self.size / 8) }.fill(v);
    }
}

impl Drop for DataTable {
    fn drop(&mut self) {
        if self.cow.is_none() {
            // SAFETY: mapped by `new` with this size (a protected table's
            // mappings are its `Cow`'s).
            unsafe { libc::munmap(self.ptr as *mut _, self.size) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execute_view_stays_in_the_band_asked() {
        let band = (0x0100_0000_0000, 0x1000_0000_0000);
        // Near an address outside the band: a random place inside it.
        let m = CodeMemory::new(1 << 20, Some(0x7f00_0000_0000), Some(band)).unwrap();
        let (s, e) = m.ranges()[0];
        assert!(band.0 <= s && e <= band.1, "{s:#x}-{e:#x}");
        // Near an address inside it: near.
        let near = s + (8 << 30);
        let n = CodeMemory::new(1 << 20, Some(near), Some(band)).unwrap();
        let (s2, e2) = n.ranges()[0];
        assert!(band.0 <= s2 && e2 <= band.1 && s2.abs_diff(near) < (2 << 30), "{s2:#x} not near {near:#x}");
        // A band too small for it: an error, not a place outside.
        assert!(CodeMemory::new(4 << 20, None, Some((0x0100_0000_0000, 0x0100_0020_0000))).is_err());
    }

    /// The fork invariant (`prepare_fork`): after a fork, a write of the
    /// parent or the child, to code from before the fork or past it, is
    /// seen by the writer and never by the other, across two generations.
    #[test]
    fn parent_and_child_never_see_each_others_writes_after_a_fork() {
        fork_and_write(false);
    }

    /// The same at a fork that makes the view one mapping again first.
    #[test]
    fn parent_and_child_never_see_each_others_writes_after_a_fork_that_makes_the_view_whole() {
        fork_and_write(true);
    }

    fn fork_and_write(whole: bool) {
        const OLD: usize = 5 * PAGE + 100;
        let mut m = CodeMemory::new(1 << 20, None, None).unwrap();
        m.write(0, &[0x11; OLD]);
        if whole {
            // Forks that failed: each maps a piece into the view.
            for _ in 0..=MAX_PIECES {
                drop(m.prepare_fork(OLD).unwrap());
            }
            assert!(m.cow.pieces > MAX_PIECES);
        }
        // Both write the same places, each its own byte, then each checks
        // what it sees once the other has written too.
        // Each also writes a page the other does not (`only`), and checks
        // that it does not see the other's.
        let check = |m: &mut CodeMemory, mine: u8, at: &[usize], only: [usize; 2], go: (i32, i32)| -> bool {
            for &o in at {
                m.patch_u8(o, mine);
            }
            m.patch_u8(only[0], mine);
            m.write(OLD + 10, &[mine; 2 * PAGE]);
            let mut b = [0u8; 1];
            // SAFETY: the test's own pipe descriptors.
            let synced = unsafe {
                libc::write(go.1, b.as_ptr().cast(), 1) == 1 && libc::read(go.0, b.as_mut_ptr().cast(), 1) == 1
            };
            synced
                && at.iter().all(|&o| m.read(o, 1)[0] == mine)
                && m.read(PAGE + 1, 1)[0] == 0x11
                && m.read(only[0], 1)[0] == mine
                && m.read(only[1], 1)[0] == 0x11
                && m.read(OLD + 10, 2 * PAGE).iter().all(|&x| x == mine)
        };
        let mut fds = [0i32; 4];
        // SAFETY: two pipes into a local array.
        assert!(unsafe { libc::pipe(fds.as_mut_ptr()) == 0 && libc::pipe(fds.as_mut_ptr().add(2)) == 0 });
        let at = [8, PAGE + 8, 4 * PAGE + 4095, 5 * PAGE + 50];
        let stores = m.prepare_fork(OLD).unwrap();
        // SAFETY: the child only makes system calls and touches this
        // test's memory, then leaves with _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let mut ok = m.forked_child(stores, OLD).is_ok()
                && check(&mut m, 0xC1, &at, [2 * PAGE + 16, 3 * PAGE + 16], (fds[0], fds[3]));
            // A grandchild of its own, from a child with pages of both kinds.
            if ok {
                let s2 = m.prepare_fork(OLD + 10 + 2 * PAGE).unwrap();
                // SAFETY: as above.
                let g = unsafe { libc::fork() };
                if g == 0 {
                    let ok = m.forked_child(s2, OLD + 10 + 2 * PAGE).is_ok() && {
                        m.patch_u8(PAGE + 8, 0xC2);
                        m.read(PAGE + 8, 1)[0] == 0xC2 && m.read(8, 1)[0] == 0xC1
                    };
                    // SAFETY: leaving the grandchild.
                    unsafe { libc::_exit(if ok { 0 } else { 1 }) };
                }
                let mut st = -1;
                // SAFETY: waiting for our own child.
                ok = g > 0 && unsafe { libc::waitpid(g, &mut st, 0) } == g && st == 0 && m.read(PAGE + 8, 1)[0] == 0xC1;
                drop(s2);
            }
            // SAFETY: leaving the forked test process.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        drop(stores);
        assert!(
            check(&mut m, 0xA1, &at, [3 * PAGE + 16, 2 * PAGE + 16], (fds[2], fds[1])),
            "the parent sees the child's writes, or not its own"
        );
        let mut st = -1;
        // SAFETY: waiting for our own child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut st, 0) }, pid);
        assert_eq!(st, 0, "the child saw the parent's writes, or not its own");
    }

    /// The same for a protected table, with a word stored and the whole
    /// table filled on either side.
    #[test]
    fn a_protected_table_is_shared_copy_on_write_after_a_fork() {
        const WORDS: usize = 4 * PAGE / 8;
        let mut t = DataTable::new(4 * PAGE, false, true).unwrap();
        t.fill(7);
        let mut fds = [0i32; 4];
        // SAFETY: two pipes into a local array.
        assert!(unsafe { libc::pipe(fds.as_mut_ptr()) == 0 && libc::pipe(fds.as_mut_ptr().add(2)) == 0 });
        let sync = |go: (i32, i32)| {
            let mut b = [0u8; 1];
            // SAFETY: the test's own pipe descriptors.
            unsafe { libc::write(go.1, b.as_ptr().cast(), 1) == 1 && libc::read(go.0, b.as_mut_ptr().cast(), 1) == 1 }
        };
        let stores = t.prepare_fork(4 * PAGE).unwrap().expect("a protected table has stores");
        // SAFETY: the child only makes system calls and touches this
        // test's memory, then leaves with _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let ok = t.forked_child(stores, 4 * PAGE).is_ok() && {
                t.store_word(WORDS / 2, 0xC);
                t.fill(9);
                t.store_word(1, 0xC1);
                sync((fds[0], fds[3])) && t.word(1) == 0xC1 && t.word(WORDS / 2) == 9 && t.word(WORDS - 1) == 9
            };
            // SAFETY: leaving the forked test process.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        drop(stores);
        t.store_word(1, 0xA1);
        assert!(sync((fds[2], fds[1])));
        assert_eq!((t.word(1), t.word(0), t.word(WORDS / 2), t.word(WORDS - 1)), (0xA1, 7, 7, 7));
        let mut st = -1;
        // SAFETY: waiting for our own child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut st, 0) }, pid);
        assert_eq!(st, 0, "the child saw the parent's writes, or not its own");
    }

    /// Forks that each take one page as its own (here: forks that fail,
    /// which leave the pages marked shared) keep the execute view to a
    /// bounded number of mappings, with its bytes.
    #[test]
    fn the_execute_view_stays_a_bounded_number_of_mappings_over_many_forks() {
        // Enough pages that every round's is a new one: without the bound
        // the view would be about 3,000 mappings at the end.
        const PAGES: usize = 6 * MAX_PIECES;
        let mut m = CodeMemory::new(PAGES * PAGE, None, None).unwrap();
        for p in 0..PAGES {
            m.write(p * PAGE, &[p as u8; PAGE]);
        }
        let mappings = |m: &CodeMemory| {
            let (s, e) = m.ranges()[0];
            let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
            maps.lines()
                .filter_map(|l| {
                    let (a, b) = l.split_whitespace().next()?.split_once('-')?;
                    Some((u64::from_str_radix(a, 16).ok()?, u64::from_str_radix(b, 16).ok()?))
                })
                .filter(|&(a, b)| a < e && s < b)
                .count()
        };
        let mut most = 0;
        for round in 0..3 * MAX_PIECES {
            drop(m.prepare_fork(PAGES * PAGE).unwrap());
            // Every other page, so that the pieces never merge.
            let p = (round * 2) % PAGES;
            m.patch_u8(p * PAGE + 1, (round % 251) as u8);
            assert_eq!(m.read(p * PAGE + 1, 1)[0], (round % 251) as u8);
            assert_eq!(m.read(p * PAGE + 2, 1)[0], p as u8);
            if round % 32 == 31 {
                most = most.max(mappings(&m));
            }
        }
        assert!(most <= 2 * MAX_PIECES + 4, "{most} mappings");
        for p in 0..PAGES {
            assert_eq!(m.read(p * PAGE + 2, 1)[0], p as u8);
        }
    }

    #[test]
    fn views_share_pages_and_rx_is_not_writable() {
        let mut m = CodeMemory::new(1 << 20, None, None).unwrap();
        m.write(8, &[1, 2, 3, 4]);
        assert_eq!(m.read(8, 4), &[1, 2, 3, 4]);
        m.patch_rel32(8, -2);
        assert_eq!(m.read(8, 4), &(-2i32).to_le_bytes());
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let rx = format!("{:x}-", m.base().get());
        let line = maps.lines().find(|l| l.starts_with(&rx)).unwrap();
        assert!(line.contains(" r-xs "), "{line}");
    }
}
