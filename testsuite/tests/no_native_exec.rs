//! Invariant 1 of DESIGN.md: guest code never runs natively. The `selfmaps`
//! guest prints the permissions of the /proc/self/maps line containing its own
//! `main`. Natively that mapping is executable ("r-xp"); under bt-run the
//! guest's code must be mapped without host execute permission.

use std::time::Duration;
use testsuite::*;

fn well_formed(perms: &str) -> bool {
    let b = perms.as_bytes();
    b.len() == 4
        && matches!(b[0], b'r' | b'-')
        && matches!(b[1], b'w' | b'-')
        && matches!(b[2], b'x' | b'-')
        && matches!(b[3], b'p' | b's')
}

fn check(variant: &str) {
    let cmd = Cmd::new(&[guest("selfmaps", variant)]);
    let native = run_native(&cmd);
    let nperms = native.stdout_str().trim().to_string();
    assert_eq!(native.status, Status::Exited(0), "native selfmaps failed: {}", native.stderr_str());
    assert!(
        well_formed(&nperms) && nperms.contains('x'),
        "natively the mapping containing main should be executable, got {nperms:?} \
         (the check would not be able to fail)"
    );

    let bt = run_bt(&cmd, Duration::from_secs(60));
    let perms = bt.stdout_str().trim().to_string();
    assert!(
        !bt.timed_out && bt.status == Status::Exited(0) && well_formed(&perms),
        "selfmaps under bt-run did not report a mapping: {}, stdout {:?}, stderr {:?}",
        bt.status,
        bt.stdout_str(),
        bt.stderr_str()
    );
    assert!(
        !perms.contains('x'),
        "under bt-run the guest's code is mapped host-executable ({perms}): guest code could run natively"
    );
}

#[test]
fn selfmaps_gcc() {
    check("gcc");
}

#[test]
fn selfmaps_musl() {
    check("musl");
}

#[test]
fn selfmaps_static_pie() {
    check("pie");
}

#[test]
fn selfmaps_dynamic() {
    check("dyn");
}
