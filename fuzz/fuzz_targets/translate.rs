//! Arbitrary bytes -> guest pc, cache address, first exit id, options and
//! guest code -> `translator::translate::translate_block`. Must not panic;
//! the emitted code must decode, stay inside the block except through
//! `jmp qword ptr gs:[..]`, and keep rip-relative operands pointing at the
//! same guest addresses (see `oracle::check_translation`).
//!
//! `BT_FUZZ_SKIP_KNOWN=1` skips inputs that hit already-reported bugs
//! (`oracle::known_issue`), so a long run keeps looking for new ones.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn skip_known() -> bool {
    static S: OnceLock<bool> = OnceLock::new();
    *S.get_or_init(|| std::env::var_os("BT_FUZZ_SKIP_KNOWN").is_some_and(|v| v == "1"))
}

fuzz_target!(|data: &[u8]| {
    if skip_known() && bt_run_fuzz::oracle::known_issue(data).is_some() {
        return;
    }
    bt_run_fuzz::oracle::fuzz_translate(data);
});
