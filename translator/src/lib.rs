//! bt-run's translator: decode guest x86-64 code with iced-x86, rewrite the
//! instructions that cannot run as they are (control flow, rip-relative
//! operands, `syscall`), emit blocks into the code cache and link them.

pub mod abi;
pub mod addr;
pub mod cache;
pub mod emit;
pub mod facts;
pub mod translate;

pub use addr::{CachePc, GuestAddr};
