//! bt-run's process runtime: it loads the guest, runs the dispatcher over
//! the code cache, serves the system calls bt-run must own, and virtualizes
//! signals. The command line is defined in `cli` and run by `src/bin/bt-run.rs`.
//!
//! Unsafe code lives in `sys` (system calls, trampolines, kernel structures,
//! the signal handler's entry) and `loader::map` (mapping the guest's image)
//! behind safe functions; everything else is safe Rust, which the lint below
//! holds it to. The one other exception is `signals::ThreadSignals::of`,
//! which follows the context's pointer to its thread's signal state.

#![deny(unsafe_code)]

pub mod cli;
pub mod compat;
pub mod constants;
pub mod dispatch;
pub mod embed;
pub mod fd_details;
pub mod guest_space;
pub mod host_signal;
pub mod isolate;
pub mod loader;
pub mod mediate;
pub mod memory;
pub mod observe;
pub mod own_fds;
pub mod perf_map;
pub mod procfs;
pub mod ptrace_view;
pub mod signals;
pub mod start;
pub mod stats;
#[allow(unsafe_code)]
pub mod sys;
pub mod syscalls;
pub mod thread;

pub use dispatch::{GuestExit, Options, Process, ProcessError, Thread};
pub use start::{Launch, StartError};
pub use translator::GuestAddr;
