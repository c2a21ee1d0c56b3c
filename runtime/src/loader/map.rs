//! Host OS glue of the loader and its only unsafe code: reserving and mapping
//! guest segments and the guest stack (never with host PROT_EXEC), plus the
//! few host queries the loader needs (auxv values, ids, rlimit, randomness,
//! exec permission).

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use translator::GuestAddr;

use super::Region;
use super::elf::{ElfKind, LoadPlan, PAGE_SIZE, page_down, page_up};

/// Largest p_align honoured when choosing an ET_DYN base (larger ones are
/// treated as page alignment rather than reserving absurd slack).
const MAX_HONOURED_ALIGN: u64 = 1 << 30;

/// A mapping failure, as the reason of a "PATH: reason" message.
#[derive(Debug)]
pub(crate) struct MapError(pub String);

impl MapError {
    fn os(what: &str, err: io::Error) -> Self {
        MapError(format!("{what}: {err}"))
    }
}

/// The host protection for a guest protection: never PROT_EXEC (guest code
/// only runs translated); execute-only becomes readable so the translator
/// can decode it.
pub(crate) fn host_prot(guest: i32) -> i32 {
    let mut p = guest & (libc::PROT_READ | libc::PROT_WRITE);
    if guest & libc::PROT_EXEC != 0 {
        p |= libc::PROT_READ;
    }
    p
}

fn mmap(addr: u64, len: u64, prot: i32, flags: i32, fd: i32, off: u64) -> io::Result<u64> {
    debug_assert_eq!(prot & libc::PROT_EXEC, 0, "guest memory must never be host-executable");
    let off = libc::off_t::try_from(off).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let len = usize::try_from(len).map_err(|_| io::Error::from_raw_os_error(libc::ENOMEM))?;
    // SAFETY: every caller either lets the kernel choose the address, uses
    // MAP_FIXED_NOREPLACE (never replaces anything), or uses MAP_FIXED only
    // inside a range this module reserved and still owns (an `Owned` guard),
    // so no memory Rust or bt-run relies on is replaced.
    let r = unsafe { libc::mmap(addr as *mut libc::c_void, len, prot & !libc::PROT_EXEC, flags, fd, off) };
    if r == libc::MAP_FAILED { Err(io::Error::last_os_error()) } else { Ok(r as u64) }
}

/// Unmaps a range this module mapped and owns.
fn munmap_owned(addr: u64, len: u64) {
    if len == 0 {
        return;
    }
    // SAFETY: callers pass only ranges reserved by this module that no
    // reference points into (guest memory is never borrowed by Rust code).
    unsafe { libc::munmap(addr as *mut libc::c_void, len as usize) };
}

fn mprotect(addr: u64, len: u64, prot: i32) -> io::Result<()> {
    // SAFETY: only called on pages of a segment this module just mapped and
    // owns; changing their protection cannot invalidate Rust references
    // because none point into guest memory.
    let r = unsafe { libc::mprotect(addr as *mut libc::c_void, len as usize, prot & !libc::PROT_EXEC) };
    if r == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// A range of address space the loader reserved; unmapped on drop unless
/// released with `keep`.
struct Owned {
    start: u64,
    len: u64,
}

impl Owned {
    fn keep(self) {
        std::mem::forget(self);
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        munmap_owned(self.start, self.len);
    }
}

/// The mapped segments of one ELF file. Until [`MappedImage::commit`] the
/// whole span stays reserved and is unmapped if this is dropped.
pub(crate) struct MappedImage {
    /// Load bias: guest address = link-time address + bias (wrapping).
    pub bias: u64,
    /// Segment regions with the guest's protections, sorted, disjoint.
    pub regions: Vec<Region>,
    owned: Owned,
}

impl MappedImage {
    /// Gives up ownership: the holes between segments are unmapped (as the
    /// kernel leaves them) and the segments stay mapped for good.
    pub fn commit(self) -> Vec<Region> {
        let mut cursor = self.owned.start;
        for r in &self.regions {
            munmap_owned(cursor, r.start.get().saturating_sub(cursor));
            cursor = r.end.get();
        }
        let end = self.owned.start + self.owned.len;
        munmap_owned(cursor, end.saturating_sub(cursor));
        self.owned.keep();
        self.regions
    }
}

/// Reserves the span of `plan` and maps each PT_LOAD from `file`. A
/// position-independent image goes where the kernel puts mappings, or with
/// `within` = [lo, hi) at a random base in that band when one is free.
pub(crate) fn map_image(file: &File, plan: &LoadPlan, within: Option<(u64, u64)>) -> Result<MappedImage, MapError> {
    let span = plan.span();
    let reserve_flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
    let owned = match plan.kind {
        ElfKind::Exec => {
            let want = plan.min_vaddr;
            let got =
                mmap(want, span, libc::PROT_NONE, reserve_flags | libc::MAP_FIXED_NOREPLACE, -1, 0).map_err(|e| {
                    let range = format!("{want:#x}-{:#x}", want + span);
                    match e.raw_os_error() {
                        Some(libc::EEXIST) => MapError(format!(
                            "cannot map the program at its fixed address range {range}: \
                             it is already in use by bt-run"
                        )),
                        Some(libc::EPERM) => {
                            MapError(format!("cannot map the program at {range}: below vm.mmap_min_addr"))
                        }
                        _ => MapError::os(&format!("cannot reserve {range}"), e),
                    }
                })?;
            let owned = Owned { start: got, len: span };
            if got != want {
                // Kernels before 4.17 treat MAP_FIXED_NOREPLACE as a hint.
                return Err(MapError(format!("cannot map the program at its fixed address {want:#x}: range in use")));
            }
            owned
        }
        ElfKind::Dyn => {
            let align = if plan.max_align <= MAX_HONOURED_ALIGN { plan.max_align } else { PAGE_SIZE };
            let slack = align - PAGE_SIZE;
            let total = span.checked_add(slack).ok_or_else(|| MapError("span too large".into()))?;
            let got = match within.map(|band| reserve_in_band(band, total, reserve_flags)).transpose()?.flatten() {
                Some(got) => got,
                None if within.is_some() => return Err(MapError("no free place for the program in its band".into())),
                None => mmap(0, total, libc::PROT_NONE, reserve_flags, -1, 0)
                    .map_err(|e| MapError::os(&format!("cannot reserve {span:#x} bytes"), e))?,
            };
            let base = got.next_multiple_of(align);
            munmap_owned(got, base - got);
            munmap_owned(base + span, got + total - (base + span));
            Owned { start: base, len: span }
        }
    };
    let bias = owned.start.wrapping_sub(plan.min_vaddr);
    let mut regions: Vec<Region> = Vec::with_capacity(plan.segments.len());
    for seg in &plan.segments {
        let guest_prot = seg.guest_prot();
        let prot = host_prot(guest_prot);
        let at = |v: u64| v.wrapping_add(bias);
        // parse() guaranteed these do not overflow and lie inside the span.
        let start = at(page_down(seg.vaddr));
        let file_end_addr = seg.vaddr + seg.filesz;
        let mem_end = at(page_up(seg.vaddr + seg.memsz).unwrap_or(plan.max_vaddr));
        let mut anon_start = start;
        if seg.filesz > 0 {
            let file_map_end = at(page_up(file_end_addr).unwrap_or(plan.max_vaddr));
            let zero_tail = seg.memsz > seg.filesz && file_end_addr % PAGE_SIZE != 0;
            let first_prot = if zero_tail { prot | libc::PROT_READ | libc::PROT_WRITE } else { prot };
            let len = file_map_end - start;
            let flags = libc::MAP_PRIVATE | libc::MAP_FIXED;
            mmap(start, len, first_prot, flags, file.as_raw_fd(), page_down(seg.offset))
                .map_err(|e| MapError::os(&format!("cannot map segment at {start:#x}"), e))?;
            if zero_tail {
                let from = at(file_end_addr);
                // SAFETY: [from, file_map_end) is inside the private, writable
                // mapping created just above, owned by `owned` and not
                // referenced by anything else.
                unsafe { std::ptr::write_bytes(from as *mut u8, 0, (file_map_end - from) as usize) };
                if first_prot != prot {
                    mprotect(start, len, prot).map_err(|e| MapError::os(&format!("cannot protect {start:#x}"), e))?;
                }
            }
            anon_start = file_map_end;
        }
        if mem_end > anon_start {
            let flags = libc::MAP_PRIVATE | libc::MAP_FIXED | libc::MAP_ANONYMOUS;
            mmap(anon_start, mem_end - anon_start, prot, flags, -1, 0)
                .map_err(|e| MapError::os(&format!("cannot map bss at {anon_start:#x}"), e))?;
        }
        // A segment may begin in the page where the previous one ends: that
        // page now holds the later mapping, so the earlier region stops there.
        if let Some(prev) = regions.last_mut()
            && prev.end.get() > start
        {
            prev.end = GuestAddr::new(start);
            if prev.end <= prev.start {
                regions.pop();
            }
        }
        regions.push(Region { start: GuestAddr::new(start), end: GuestAddr::new(mem_end), prot: guest_prot });
    }
    Ok(MappedImage { bias, regions, owned })
}

/// Inaccessible gap kept below the guest stack, like the kernel's stack
/// guard gap, so that an overflowing guest faults instead of writing into
/// whatever happens to be mapped below (bt-run's own memory included).
const STACK_GUARD_GAP: u64 = 16 << 20;

/// The guest's initial stack mapping (with its guard gap below it);
/// unmapped on drop unless committed.
pub(crate) struct StackMapping {
    owned: Owned,
}

impl StackMapping {
    /// Maps `size` bytes of anonymous read-write memory wherever the kernel
    /// puts it, or at a random place in `within` = [lo, hi), above an
    /// inaccessible guard gap.
    pub fn new(size: u64, within: Option<(u64, u64)>) -> Result<Self, MapError> {
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
        let len = size + STACK_GUARD_GAP;
        let start = match within.map(|band| reserve_in_band(band, len, flags)).transpose()?.flatten() {
            Some(start) => start,
            None if within.is_some() => return Err(MapError("no free place for the stack in its band".into())),
            None => mmap(0, len, libc::PROT_NONE, flags, -1, 0).map_err(|e| MapError::os("cannot map the stack", e))?,
        };
        let owned = Owned { start, len: size + STACK_GUARD_GAP };
        // SAFETY: the range is the upper part of the mapping just made, which
        // `owned` now owns.
        if unsafe {
            libc::mprotect((start + STACK_GUARD_GAP) as *mut _, size as usize, libc::PROT_READ | libc::PROT_WRITE)
        } != 0
        {
            return Err(MapError::os("cannot map the stack", std::io::Error::last_os_error()));
        }
        Ok(StackMapping { owned })
    }

    pub fn start(&self) -> GuestAddr {
        GuestAddr::new(self.owned.start + STACK_GUARD_GAP)
    }

    pub fn end(&self) -> GuestAddr {
        GuestAddr::new(self.owned.start + self.owned.len)
    }

    /// Copies `image` so that it ends exactly at the top of the stack.
    pub fn write_top(&mut self, image: &[u8]) -> Result<(), MapError> {
        if image.len() as u64 > self.owned.len - STACK_GUARD_GAP {
            return Err(MapError("argument list too long for the stack".into()));
        }
        let dst = self.owned.start + self.owned.len - image.len() as u64;
        // SAFETY: [dst, dst + image.len()) lies inside this read-write
        // mapping, which `self` owns exclusively (&mut self) and which
        // cannot overlap `image` (a Rust allocation).
        unsafe { std::ptr::copy_nonoverlapping(image.as_ptr(), dst as *mut u8, image.len()) };
        Ok(())
    }

    pub fn commit(self) {
        self.owned.keep();
    }
}

/// A value of bt-run's own auxiliary vector (0 if absent).
pub(crate) fn host_auxval(kind: libc::c_ulong) -> u64 {
    // SAFETY: getauxval only reads the process's saved auxv.
    unsafe { libc::getauxval(kind) }
}

/// Real and effective user and group ids: (uid, euid, gid, egid).
pub(crate) fn host_ids() -> (u64, u64, u64, u64) {
    // SAFETY: these calls have no preconditions and cannot fail.
    unsafe {
        (u64::from(libc::getuid()), u64::from(libc::geteuid()), u64::from(libc::getgid()), u64::from(libc::getegid()))
    }
}

/// Soft RLIMIT_STACK, None when unlimited.
pub(crate) fn stack_rlimit() -> Option<u64> {
    let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `rl` is a valid, writable rlimit.
    let r = unsafe { libc::getrlimit(libc::RLIMIT_STACK, &mut rl) };
    if r != 0 || rl.rlim_cur == libc::RLIM_INFINITY { None } else { Some(rl.rlim_cur) }
}

/// `len` bytes reserved at a random page in [lo, hi), or None when the
/// tries found no free place.
fn reserve_in_band((lo, hi): (u64, u64), len: u64, flags: i32) -> Result<Option<u64>, MapError> {
    let pages = hi.saturating_sub(lo).saturating_sub(len) / PAGE_SIZE;
    if pages == 0 {
        return Ok(None);
    }
    for _ in 0..16 {
        let mut w = [0u8; 8];
        fill_random(&mut w)?;
        let want = lo.next_multiple_of(PAGE_SIZE) + (u64::from_le_bytes(w) % pages) * PAGE_SIZE;
        match mmap(want, len, libc::PROT_NONE, flags | libc::MAP_FIXED_NOREPLACE, -1, 0) {
            Ok(got) if got == want => return Ok(Some(got)),
            // Kernels before 4.17 take MAP_FIXED_NOREPLACE as a hint.
            Ok(got) => munmap_owned(got, len),
            Err(_) => {}
        }
    }
    Ok(None)
}

/// Fills `buf` from the kernel's random source (getrandom).
pub(crate) fn fill_random(buf: &mut [u8]) -> Result<(), MapError> {
    let mut done = 0;
    while done < buf.len() {
        let rest = &mut buf[done..];
        // SAFETY: `rest` is a valid writable buffer of rest.len() bytes.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(MapError::os("getrandom", e));
        }
        done += n as usize;
    }
    Ok(())
}

/// Whether the kernel would let this process execute `path` (X_OK with the
/// effective ids, as execve checks).
pub(crate) fn may_execute(path: &Path) -> io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::ENOENT))?;
    // SAFETY: `c` is a valid NUL-terminated string for the call's duration.
    let r = unsafe { libc::faccessat(libc::AT_FDCWD, c.as_ptr(), libc::X_OK, libc::AT_EACCESS) };
    if r == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// Whether `file` lives on a filesystem mounted noexec.
pub(crate) fn on_noexec_mount(file: &File) -> bool {
    // SAFETY: statvfs is plain data; all-zero is a valid value.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: the fd is open for the call's duration and `st` is writable.
    let r = unsafe { libc::fstatvfs(file.as_raw_fd(), &mut st) };
    r == 0 && st.f_flag & libc::ST_NOEXEC != 0
}

/// Whether address-space randomization is off for this process
/// (personality ADDR_NO_RANDOMIZE, e.g. under `setarch -R`).
pub(crate) fn personality_no_randomize() -> bool {
    // SAFETY: 0xffffffff only queries the personality.
    let p = unsafe { libc::personality(0xffff_ffff) };
    p != -1 && p & libc::ADDR_NO_RANDOMIZE != 0
}

/// Test support: unmaps the regions of a loaded program.
///
/// Only sound while no guest code runs and nothing else uses those pages,
/// which holds in the loader's tests.
#[cfg(test)]
pub(crate) fn unmap_for_tests(regions: &[Region]) {
    for r in regions {
        munmap_owned(r.start.get(), r.end.get() - r.start.get());
    }
}
