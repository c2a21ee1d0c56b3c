//! bt-run in-process privileged-call layer.
