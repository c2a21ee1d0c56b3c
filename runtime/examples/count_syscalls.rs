//! Run a program under bt-run with a hook that counts its system calls by
//! name and refuses to let it open files under a given directory.
//!
//!   cargo run --release -p runtime --example count_syscalls -- /secret /bin/cat /secret/x
//!
//! Prints the counts to stderr when the guest exits.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use runtime::embed::Guest;
use runtime::observe::{HookAction, SyscallEvent, SyscallHook};

struct Counter {
    forbidden: Vec<u8>,
    counts: Mutex<BTreeMap<&'static str, u64>>,
}

impl Counter {
    fn report(&self) {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        for (name, n) in counts.iter() {
            eprintln!("hook: {name} {n}");
        }
    }
}

/// The NUL-terminated string at guest address `addr` (the guest shares our
/// address space, but its pointers are untrusted, so read with a bound).
fn guest_str(addr: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 1];
    let at = |i: usize| runtime::GuestAddr(addr + i as u64);
    while out.len() < 4096 && runtime::sys::read_guest(at(out.len()), &mut buf).is_ok() && buf[0] != 0 {
        out.push(buf[0]);
    }
    out
}

impl SyscallHook for Counter {
    fn before(&self, ev: &mut SyscallEvent) -> HookAction {
        *self.counts.lock().unwrap_or_else(|e| e.into_inner()).entry(ev.name).or_default() += 1;
        if ev.name == "exit_group" {
            self.report();
        }
        if ev.name == "openat" && guest_str(ev.args[1]).starts_with(&self.forbidden) {
            return HookAction::Return(-(libc::EACCES as i64));
        }
        HookAction::Continue
    }
}

fn main() {
    let mut args = std::env::args_os().skip(1);
    let (Some(dir), Some(prog)) = (args.next(), args.next()) else {
        eprintln!("usage: count_syscalls FORBIDDEN_DIR PROG [ARGS...]");
        std::process::exit(2);
    };
    let hook = Arc::new(Counter { forbidden: dir.into_encoded_bytes(), counts: Mutex::new(BTreeMap::new()) });
    Guest::new(prog).args(args).no_follow().hook(hook).run()
}
