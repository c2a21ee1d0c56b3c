//! Address newtypes: a guest address and a code-cache address are different
//! things and must never be mixed up, so neither is a bare `u64`.

use std::fmt;

/// An address in the guest's view of memory (what the guest program sees).
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(transparent)]
pub struct GuestAddr(pub u64);

/// An address inside the code cache (translated, host-executable code).
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(transparent)]
pub struct CachePc(pub u64);

impl GuestAddr {
    pub const fn new(v: u64) -> Self {
        Self(v)
    }
    pub const fn get(self) -> u64 {
        self.0
    }
    pub const fn add(self, off: u64) -> Self {
        Self(self.0.wrapping_add(off))
    }
}

impl CachePc {
    pub const fn get(self) -> u64 {
        self.0
    }
    pub const fn add(self, off: u64) -> Self {
        Self(self.0.wrapping_add(off))
    }
}

impl fmt::Debug for GuestAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "guest:{:#x}", self.0)
    }
}
impl fmt::Display for GuestAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}
impl fmt::Debug for CachePc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cache:{:#x}", self.0)
    }
}
