//! Arbitrary bytes -> syscall number, six arguments, a return value and a
//! guest memory image -> `syscall_inline::trace::{format_entry, format_exit,
//! format_line}` (and, for inputs starting with `P`, the policy and
//! `--deny` parsers). Must not panic; the line must be well formed and
//! bounded (see `oracle::check_trace_input`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    bt_run_fuzz::oracle::fuzz_trace(data);
});
