//! Arbitrary bytes -> `runtime::loader::elf::LoadPlan::parse` (and
//! `parse_with`, and the `#!` parser). Must not panic; an accepted plan must
//! satisfy its documented invariants (see `oracle::check_elf_input`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    bt_run_fuzz::oracle::fuzz_elf(data);
});
