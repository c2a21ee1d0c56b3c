//! A `GuestContext` in a mapping of its own, followed by
//! `STORE_PROBE_HOLE` inaccessible bytes: the hole a confined store's check
//! reaches when the store's address is at or above `GUEST_LIMIT` (see
//! `GuestContext::store_probe`). The context's pages are readable and
//! writable; the hole is mapped `PROT_NONE`, so no other mapping is ever
//! placed there.

use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

use crate::abi::{GuestContext, STORE_PROBE_HOLE};

/// An owned context, like `Box<GuestContext>`, in its own mapping.
pub struct ContextBox(NonNull<GuestContext>);

// SAFETY: it owns its context exclusively, as a Box would.
unsafe impl Send for ContextBox {}
// SAFETY: shared access is through &GuestContext only.
unsafe impl Sync for ContextBox {}

const LEN: usize = size_of::<GuestContext>() + STORE_PROBE_HOLE;

impl ContextBox {
    /// `ctx` moved into a new mapping. Aborts like an allocation failure
    /// when the address space is exhausted.
    pub fn new(ctx: GuestContext) -> Self {
        // SAFETY: a new private anonymous reservation where the kernel
        // chooses; failure checked.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                LEN,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        let layout = std::alloc::Layout::new::<GuestContext>();
        if p == libc::MAP_FAILED {
            std::alloc::handle_alloc_error(layout);
        }
        // SAFETY: the context's pages at the start of the reservation.
        if unsafe { libc::mprotect(p, size_of::<GuestContext>(), libc::PROT_READ | libc::PROT_WRITE) } != 0 {
            std::alloc::handle_alloc_error(layout);
        }
        let c = p as *mut GuestContext;
        // SAFETY: page-aligned (so aligned for GuestContext), writable,
        // size_of::<GuestContext>() bytes, not yet initialized.
        unsafe { c.write(ctx) };
        Self(NonNull::new(c).expect("mmap does not return 0 here"))
    }

    /// Never unmapped: for a context that lives as long as the process.
    pub fn leak(self) -> &'static mut GuestContext {
        let p = self.0.as_ptr();
        std::mem::forget(self);
        // SAFETY: initialized by `new`, never unmapped now, and this is
        // the only reference.
        unsafe { &mut *p }
    }
}

impl Deref for ContextBox {
    type Target = GuestContext;
    fn deref(&self) -> &GuestContext {
        // SAFETY: initialized by `new`, mapped until drop.
        unsafe { self.0.as_ref() }
    }
}

impl DerefMut for ContextBox {
    fn deref_mut(&mut self) -> &mut GuestContext {
        // SAFETY: initialized by `new`, mapped until drop, &mut self.
        unsafe { self.0.as_mut() }
    }
}

impl Drop for ContextBox {
    fn drop(&mut self) {
        // GuestContext is plain data: nothing to drop but the mapping.
        // SAFETY: the mapping `new` made, with its length.
        unsafe { libc::munmap(self.0.as_ptr() as *mut _, LEN) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::off;

    #[test]
    fn the_store_probe_ends_the_contexts_pages_and_the_hole_follows() {
        let mut b = GuestContext::new_boxed();
        b.store_probe = 7;
        let base = &*b as *const GuestContext as u64;
        assert_eq!(base % 4096, 0);
        let probe = base + off::STORE_PROBE as u64;
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let prot = |a: u64| {
            maps.lines()
                .find(|l| {
                    let (r, _) = l.split_once(' ').unwrap();
                    let (lo, hi) = r.split_once('-').unwrap();
                    (u64::from_str_radix(lo, 16).unwrap()..u64::from_str_radix(hi, 16).unwrap()).contains(&a)
                })
                .map(|l| l.split(' ').nth(1).unwrap().to_string())
        };
        assert_eq!(prot(base).as_deref(), Some("rw-p"));
        assert_eq!(prot(probe).as_deref(), Some("rw-p"));
        assert_eq!(prot(probe + 8).as_deref(), Some("---p"));
        assert_eq!(prot(probe + 8 * 0xffff).as_deref(), Some("---p"));
        assert_eq!(b.store_probe, 7);
    }
}
