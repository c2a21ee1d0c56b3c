//! Shared helpers for bt-run tests.
