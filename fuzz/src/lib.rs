//! Oracles for bt-run's fuzz targets. The checking code lives in
//! `testsuite/src/equiv/oracle.rs` so that the normal (stable) test command
//! replays `fuzz/corpus/*` through exactly the same checks
//! (`testsuite/tests/equivalence.rs`, test `fuzz_corpus_*`).

#[path = "../../testsuite/src/equiv/oracle.rs"]
pub mod oracle;
