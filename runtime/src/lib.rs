//! bt-run runtime.
