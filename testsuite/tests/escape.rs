//! The escape suite: a hostile guest (`guests/esc.c`) tries one way around
//! the syscall layer per test, under a deny policy (which turns isolation
//! on). Each route ends, if it worked, with exit_group(77) reaching the
//! kernel; every test asserts that it did not, and how it was stopped.
//! Where a route works without isolation, a control run shows it (so the
//! test can fail). See docs/design.md, "Isolation".

use std::time::Duration;
use testsuite::*;

const T: Duration = Duration::from_secs(60);
const DENY: [&str; 2] = ["--deny", "exit_group=kill"];

fn esc(mode: &str) -> Cmd {
    // The static glibc build: the routes read their own memory map.
    Cmd::new(&[guest("esc", "gcc").as_str(), mode]).any_status()
}

fn show(o: &Outcome) -> String {
    format!("status {}, stdout {:?}, stderr {:?}", o.status, o.stdout_str(), o.stderr_str())
}

#[test]
fn native_code_cannot_be_written_into_the_code_cache() {
    // Control: without isolation the route works (the test can fail).
    let open = run_bt(&esc("cache"), T);
    if !forced_isolation() {
        assert_eq!(open.status, Status::Exited(77), "the route should work without isolation: {}", show(&open));
    }
    // The view lies above the split: the kernel is not made to write it
    // (and the filter would trap a system call made from the cache, which
    // `isolate`'s unit tests check).
    let o = run_bt_opts(&["--isolate"], &esc("cache"), T);
    let out = o.stdout_str();
    assert!(out.contains("writable code cache view at"), "{}", show(&o));
    assert!(out.contains("pread into the cache: Bad address\nstill running translated code"), "{}", show(&o));
    assert_eq!(o.status, Status::Exited(4), "{}", show(&o));
}

#[test]
fn a_gate_table_cannot_be_written() {
    // The tables are bt-run's memory, above the program's: the first store
    // into one faults (confined stores), before any call goes through.
    let o = run_bt_opts(&DENY, &esc("table"), T);
    let out = o.stdout_str();
    assert!(
        out.contains("found a gate table"),
        "the guest found no gate table (the route was not tried): {}",
        show(&o)
    );
    assert!(!out.contains("turned to forward-all"), "{}", show(&o));
    assert_eq!(o.status, Status::signal(libc::SIGSEGV), "{}", show(&o));
}

/// Route `mode` works without isolation (exit 77: the test can fail) and
/// under a deny policy dies of SIGSEGV after printing `tried`, never `done`.
fn assert_store_faults(mode: &str, tried: &str, done: &str) {
    if !forced_isolation() {
        let open = run_bt(&esc(mode), T);
        assert_eq!(open.status, Status::Exited(77), "the route should work without isolation: {}", show(&open));
    }
    let o = run_bt_opts(&DENY, &esc(mode), T);
    let out = o.stdout_str();
    assert!(out.contains(tried), "the route was not tried: {}", show(&o));
    assert!(!out.contains(done), "{}", show(&o));
    assert_eq!(o.status, Status::signal(libc::SIGSEGV), "{}", show(&o));
}

#[test]
fn a_store_into_bt_runs_memory_faults() {
    assert_store_faults("heap", "writing at", "wrote into memory");
}

#[test]
fn a_stack_moved_into_bt_runs_memory_faults() {
    assert_store_faults("stack", "pushing on a stack at", "pushed above");
}

/// Route `mode` works without isolation (exit 77: the test can fail) and
/// under isolation ends with exit 0, having printed `tried`.
fn assert_refused(mode: &str, tried: &str) -> Outcome {
    if !forced_isolation() {
        let open = run_bt(&esc(mode), T);
        assert_eq!(open.status, Status::Exited(77), "the route should work without isolation: {}", show(&open));
    }
    let o = run_bt_opts(&["--isolate"], &esc(mode), T);
    assert!(o.stdout_str().contains(tried), "the route was not tried: {}", show(&o));
    assert_eq!(o.status, Status::Exited(0), "{}", show(&o));
    o
}

#[test]
fn the_kernel_writes_nothing_into_bt_runs_memory_for_the_program() {
    let o = assert_refused("kwrite", "kernel writes at");
    let out = o.stdout_str();
    for call in ["read", "pread64", "readv", "recvmsg", "recvmmsg"] {
        assert!(out.contains(&format!("\n{call}: Bad address\n")), "{call}: {}", show(&o));
    }
    // Opened read-only instead: a write through it fails as through any.
    assert!(out.contains("pwrite /proc/self/mem: Bad file descriptor"), "{}", show(&o));
}

#[test]
fn a_page_range_reaching_bt_runs_memory_is_refused_whole() {
    // Natively nothing is mapped at 2^46, and the program's page is zeroed
    // (madvise acts on the mapped part and reports ENOMEM): the control.
    let open = run_native(&esc("krange"));
    assert_eq!(open.status, Status::Exited(77), "{}", show(&open));
    let o = run_bt_opts(&["--isolate"], &esc("krange"), T);
    let out = o.stdout_str();
    assert!(out.contains("madvise over the split: Cannot allocate memory"), "{}", show(&o));
    assert!(out.contains("the page kept its bytes"), "{}", show(&o));
    assert_eq!(o.status, Status::Exited(0), "{}", show(&o));
}

#[test]
fn an_iovec_changed_after_the_check_does_not_reach_the_kernel() {
    let o = assert_refused("krace", "readvs made");
    assert!(o.stdout_str().contains("wrote elsewhere 0"), "{}", show(&o));
}

#[test]
fn the_tables_cached_code_jumps_through_cannot_be_forged() {
    // Read-only where the program's stores reach (below 2 GiB); bt-run
    // writes them through a second view above the split.
    let o = run_bt_opts(&DENY, &esc("forge"), T);
    let out = o.stdout_str();
    assert!(out.contains("writing bt-run's lookup table (r--s)"), "the guest found no table: {}", show(&o));
    assert!(!out.contains("wrote into"), "{}", show(&o));
    assert_eq!(o.status, Status::signal(libc::SIGSEGV), "{}", show(&o));
}

#[test]
fn int80_exit_group_is_denied_by_the_layer() {
    let o = run_bt_opts(&DENY, &esc("int80"), T);
    assert!(o.stdout_str().contains("int $0x80 exit_group(77)"), "{}", show(&o));
    assert_eq!(o.status, Status::signal(libc::SIGSYS), "{}", show(&o));
}

#[test]
fn jumping_into_bt_runs_code_runs_nothing_of_it_natively() {
    // The target is translated as guest code (bt-run's text is not the
    // guest's to run): it faults, or its `syscall` reaches the layer.
    for mode in ["jump", "sigreturn"] {
        let o = run_bt_opts(&DENY, &esc(mode), T);
        assert!(o.stdout_str().contains("syscall instruction of bt-run's own code"), "{mode}: {}", show(&o));
        assert!(matches!(o.status, Status::Signaled { .. }), "{mode}: {}", show(&o));
    }
}

#[test]
fn an_execd_static_program_making_raw_syscalls_stays_under_the_layer() {
    let o = run_bt_opts(&DENY, &esc("exec"), T);
    assert!(o.stdout_str().contains("raw exit_group(77)"), "the exec'd program did not run: {}", show(&o));
    assert_eq!(o.status, Status::signal(libc::SIGSYS), "{}", show(&o));
}

#[test]
fn the_code_caches_memfd_cannot_be_opened_for_writing() {
    if !forced_isolation() {
        // Control: without isolation they open (as root, which the test
        // command runs as; map_files needs CAP_SYS_ADMIN).
        let open = run_bt(&esc("mapfiles"), T);
        assert_eq!(open.status, Status::Exited(5), "{}", show(&open));
    }
    let o = run_bt_opts(&["--isolate"], &esc("mapfiles"), T);
    assert_eq!(o.status, Status::Exited(0), "{}", show(&o));
    let out = o.stdout_str();
    assert!(out.contains("map_files open refused: Permission denied"), "{}", show(&o));
}

#[test]
fn bt_runs_mappings_cannot_be_mapped_over_or_made_writable() {
    let o = run_bt_opts(&["--isolate"], &esc("mapfixed"), T);
    assert_eq!(o.status, Status::Exited(0), "{}", show(&o));
}

#[test]
fn io_uring_and_writes_into_the_own_process_are_refused() {
    let o = run_bt_opts(&["--isolate"], &esc("iouring"), T);
    assert!(o.stdout_str().contains("io_uring_setup: Function not implemented"), "{}", show(&o));
    let o = run_bt_opts(&["--isolate"], &esc("vmwrite"), T);
    assert!(o.stdout_str().contains("process_vm_writev into itself: Operation not permitted"), "{}", show(&o));
}

#[test]
fn an_image_that_cannot_land_clear_of_older_rules_refuses_to_run() {
    // A stale rule over the whole address space: every re-execution lands
    // on it, and bt-run gives up with one line instead of running under it.
    let o = run_bt_args(&["--isolated=0:1000-7fffffffffff", "--", "/bin/true"], T);
    assert_eq!(o.status, Status::Exited(125), "{}", show(&o));
    let err = o.stderr_str();
    assert!(err.contains("cannot place bt-run clear of an inherited isolation filter"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// (start, end, perms, name) of each line of a /proc/PID/maps text.
fn maps(text: &str) -> Vec<(u64, u64, String, String)> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (s, e) = f.next()?.split_once('-')?;
            let perms = f.next()?.to_string();
            let name = f.nth(3).unwrap_or("").to_string();
            Some((u64::from_str_radix(s, 16).ok()?, u64::from_str_radix(e, 16).ok()?, perms, name))
        })
        .collect()
}

#[test]
fn an_older_images_cache_rule_never_covers_a_newer_images_code() {
    // The filter's rule on the code cache outlives its image; the next
    // image's startup code runs before bt-run can look, so the cache (and a
    // position-independent program, for the cache to be near it) lies in a
    // band where the kernel never puts an exec'd image's code. Two images:
    // the shell's maps, then the maps of the program it execs.
    let cmd = Cmd::new(&["/bin/sh", "-c", "cat /proc/$$/maps; echo ====; exec /bin/cat /proc/self/maps"]);
    let o = run_bt_opts(&["--isolate"], &cmd, T);
    assert_eq!(o.status, Status::Exited(0), "{}", show(&o));
    let out = o.stdout_str();
    let (first, second) = out.split_once("====\n").expect("two maps");
    let (first, second) = (maps(first), maps(second));
    let band = (0x1000_0000u64, 0x1000_0000_0000u64);
    for m in [&first, &second] {
        // One executable view: after a fork, pieces of it map different
        // memfds (the pages a process took as its own), end to end.
        let cache: Vec<_> = m.iter().filter(|r| r.3.contains("bt-run-code-cache") && r.2.contains('x')).collect();
        assert!(!cache.is_empty(), "no executable cache view: {m:?}");
        assert!(cache.windows(2).all(|w| w[0].1 == w[1].0), "one executable cache view expected: {cache:?}");
        let view = (cache[0].0, cache[cache.len() - 1].1);
        assert!(band.0 <= view.0 && view.1 <= band.1, "cache outside the band: {view:?}");
        let sh = m
            .iter()
            .find(|r| r.3.starts_with("/usr/bin/") && (r.3.ends_with("sh") || r.3.ends_with("/cat")))
            .expect("the program's mapping");
        assert!(band.0 <= sh.0 && sh.1 <= band.1, "program outside the band: {sh:?}");
    }
    let pieces: Vec<_> = first.iter().filter(|r| r.3.contains("bt-run-code-cache") && r.2.contains('x')).collect();
    let old_cache = (pieces[0].0, pieces[pieces.len() - 1].1);
    for r in second.iter().filter(|r| r.2.contains('x') && !r.3.contains("bt-run-code-cache")) {
        assert!(r.1 <= old_cache.0 || r.0 >= old_cache.1, "{r:?} under the older image's cache rule {old_cache:?}");
        assert!(r.0 >= band.1, "native code in the band: {r:?}");
    }
}

#[test]
fn an_exec_chain_under_isolation_matches_native() {
    // Each exec stacks a filter and hands its ranges on; the output is the
    // program's.
    let cmd = Cmd::new(&[
        "/bin/busybox",
        "sh",
        "-c",
        "exec /bin/busybox sh -c 'exec /bin/busybox sh -c \"grep -c ^Seccomp_filters /proc/self/status; echo \\$((6*7))\"'",
    ]);
    let native = run_native(&cmd);
    let o = run_bt_opts(&["--isolate"], &cmd, T);
    assert_eq!(o.status, native.status, "{}", show(&o));
    assert_eq!(o.stdout_str(), native.stdout_str(), "{}", show(&o));
}

#[test]
fn a_path_flipped_by_a_second_thread_does_not_open_a_cache_alias() {
    // The check is made on the descriptor the kernel opened, not on the
    // path the layer read, so no timing of the flip gets past it.
    if !forced_isolation() {
        let open = run_bt(&esc("race"), T);
        assert_eq!(open.status, Status::Exited(5), "the race should win without isolation: {}", show(&open));
    }
    let o = run_bt_opts(&["--isolate"], &esc("race"), T);
    assert_eq!(o.status, Status::Exited(0), "{}", show(&o));
    assert!(o.stdout_str().contains("opens made, writable cache aliases 0"), "{}", show(&o));
}

/// Under isolation all of the program's memory lies below 2^46 and bt-run's
/// above (`guest_space`): every way the program gets memory, in every
/// build, lands low, and no file the program maps shows above the line.
#[test]
fn the_programs_memory_lies_below_the_split() {
    let bt = bt_run_path();
    let own = std::fs::canonicalize(&bt).unwrap_or(bt);
    for v in ["gcc", "musl", "pie", "dyn"] {
        let cmd = Cmd::new(&[guest("split", v)]);
        // Control: natively the kernel puts some of it high (the test can fail).
        let native = run_native(&cmd);
        assert!(native.stdout_str().contains(" high "), "{v}: native run had nothing high: {}", show(&native));
        let o = run_bt_opts(&["--isolate"], &cmd, T);
        assert_eq!(o.status, Status::Exited(0), "{v}: {}", show(&o));
        let out = o.stdout_str();
        for want in
            ["stack", "break", "malloc-large", "mmap-4m", "mmap-high-hint", "mremap-moved", "shmat", "thread-stack"]
        {
            assert!(out.lines().any(|l| l == format!("{want} low")), "{v}: {want} not low: {}", show(&o));
        }
        assert!(!out.contains(" high "), "{v}: memory above the split: {}", show(&o));
        assert!(out.contains("mremap-moved moved, contents kept"), "{v}: {}", show(&o));
        for l in out.lines().filter_map(|l| l.strip_prefix("file-high ")) {
            let bt_runs = std::path::Path::new(l) == own || l.starts_with("/memfd:bt-run-");
            assert!(bt_runs, "{v}: a file of the program's above the split: {l}: {}", show(&o));
        }
    }
}
