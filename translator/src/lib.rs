//! bt-run's translator: decode guest x86-64 code with iced-x86, rewrite the
//! instructions that cannot run as they are (control flow, rip-relative
//! operands, `syscall`), emit blocks into the code cache and link them.

//!
//! Unsafe code lives in `cache::mem` (the executable mappings of the code
//! cache) and `context_box` (a thread context's mapping) behind safe
//! functions; the lint below holds the rest to safe Rust.

#![deny(unsafe_code)]

pub mod abi;
pub mod addr;
pub mod cache;
#[allow(unsafe_code)]
pub mod context_box;
pub mod emit;
pub mod facts;
pub mod translate;

pub use addr::{CachePc, GuestAddr};
