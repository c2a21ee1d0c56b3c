//! Every C guest program (testsuite/guests/*.c), in every variant built by
//! build.rs (gcc static, musl static, gcc static-pie, gcc dynamic), run
//! natively and under bt-run and compared, including exit codes and deaths by
//! signal. (selfmaps is checked separately in no_native_exec.rs.)

use testsuite::*;

/// Defines one test per variant, each calling `$body(variant)`.
macro_rules! per_variant {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[test]
            fn gcc() {
                ($body)("gcc")
            }
            #[test]
            fn musl() {
                ($body)("musl")
            }
            #[test]
            fn pie() {
                ($body)("pie")
            }
            #[test]
            fn dynamic() {
                ($body)("dyn")
            }
        }
    };
}

/// Runs guest `name` with `args`, requiring exit 0.
fn plain(name: &str, variant: &str, args: &[&str]) {
    let g = guest(name, variant);
    let mut argv = vec![g.as_str()];
    argv.extend_from_slice(args);
    assert_same(&argv);
}

per_variant!(recursion, |v| plain("recursion", v, &[]));
per_variant!(setjmp, |v| plain("setjmp", v, &[]));
per_variant!(qsort, |v| plain("qsort", v, &[]));
per_variant!(switch, |v| plain("switch", v, &[]));
per_variant!(rodata_calls, |v| plain("rodata_calls", v, &[]));
per_variant!(guarded_tables, |v| plain("guarded_tables", v, &[]));
per_variant!(ic_phases, |v| plain("ic_phases", v, &[]));
per_variant!(x87, |v| plain("x87", v, &[]));
per_variant!(sse_fp, |v| plain("sse_fp", v, &[]));
per_variant!(avx2_fp, |v| plain("avx2_fp", v, &[]));
per_variant!(strings, |v| plain("strings", v, &[]));
per_variant!(tls, |v| plain("tls", v, &[]));
per_variant!(threads, |v| plain("threads", v, &[]));
per_variant!(signals, |v| plain("signals", v, &[]));
per_variant!(memory, |v| plain("memory", v, &[]));
per_variant!(procs, |v| plain("procs", v, &[]));
per_variant!(cow_fork, |v| plain("cow_fork", v, &[]));
per_variant!(vsyscall_page, |v| plain("vsyscall", v, &[]));
per_variant!(gs_base_virtual, |v| plain("gs_base", v, &[]));
per_variant!(bench_fib, |v| plain("bench_fib", v, &["27"]));
per_variant!(bench_qsort, |v| plain("bench_qsort", v, &["100000"]));
per_variant!(bench_nbody, |v| plain("bench_nbody", v, &["20000"]));

per_variant!(auxv_argv_envp, |v| {
    let g = guest("auxv", v);
    let cmd = Cmd::new(&[g.as_str(), "first", "with space", "", "ünïcödé", "--flag=x", "-"])
        .env("BT_GUEST_VAR", "value=with=equals")
        .env("EMPTY_VAR", "");
    compare(&cmd);
});

per_variant!(filter_stdin, |v| {
    let g = guest("filter", v);
    let mut input = pseudo_random_text(31, 40_000).into_bytes();
    input.extend_from_slice(&pseudo_random_bytes(32, 100_000));
    input.extend_from_slice(b"\nlast line without newline");
    assert_same_with_stdin(&[g.as_str()], &input);
    assert_same_with_stdin(&[g.as_str()], b"");
});

per_variant!(exit_codes, |v| {
    let g = guest("exitcode", v);
    for (code, how, expected) in [
        ("0", "exit", 0),
        ("1", "exit", 1),
        ("42", "exit", 42),
        ("42", "return", 42),
        ("42", "_exit", 42),
        ("255", "return", 255),
        ("256", "exit", 0),
        ("-1", "_exit", 255),
    ] {
        compare(&Cmd::new(&[g.as_str(), code, how]).expect(Status::Exited(expected)));
    }
    compare(&Cmd::new(&[g.as_str()]).expect(Status::Exited(2)));
});

per_variant!(segv_null_write, |v| {
    compare(&Cmd::new(&[guest("segv", v)]).expect(Status::signal(libc::SIGSEGV)));
});

per_variant!(abort_sigabrt, |v| {
    compare(&Cmd::new(&[guest("abort", v)]).expect(Status::signal(libc::SIGABRT)));
});

/// `crash MODE` must die of `sig`, natively and under bt-run.
fn crash(variant: &str, mode: &str, sig: i32) {
    compare(&Cmd::new(&[guest("crash", variant).as_str(), mode]).expect(Status::signal(sig)));
}

per_variant!(crash_rodata_write, |v| crash(v, "rodata", libc::SIGSEGV));
per_variant!(crash_stack_overflow, |v| crash(v, "stackoverflow", libc::SIGSEGV));
per_variant!(crash_ud2_sigill, |v| crash(v, "trap", libc::SIGILL));
per_variant!(crash_div0_sigfpe, |v| crash(v, "div0", libc::SIGFPE));
per_variant!(crash_raise_sigterm, |v| crash(v, "term", libc::SIGTERM));
per_variant!(crash_kill_sigkill, |v| crash(v, "kill", libc::SIGKILL));
per_variant!(crash_jump_to_unmapped, |v| crash(v, "badjump", libc::SIGSEGV));

/// `ic_phases` changes the targets of its one call site with each phase:
/// the site's inline cache is re-armed for the new targets (counted in
/// `--stats`), and the results stay the native ones.
#[test]
fn ic_phases_rearms_its_inline_cache() {
    let dir = TempDir::new("ic_phases_rearms");
    let g = guest("ic_phases", "gcc");
    let native = run_native(&Cmd::new(&[g.as_str()]));
    let stats = dir.join("stats.json");
    let stats_s = stats.to_string_lossy().into_owned();
    let bt = run_bt_args(&["--stats=json", "-o", stats_s.as_str(), g.as_str()], std::time::Duration::from_secs(60));
    assert_eq!(bt.status, Status::Exited(0), "bt-run failed:\n{}", bt.stderr_str());
    assert_eq!(bt.stdout, native.stdout, "stdout differs from native");
    let text = std::fs::read_to_string(&stats).unwrap_or_else(|e| panic!("no stats file {stats_s}: {e}"));
    let record = Json::parse(text.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    let rearmed = record.get("inline_caches_re-armed").and_then(Json::as_u64);
    assert!(rearmed.is_some_and(|n| n >= 1), "the phases re-armed no inline cache: {text}");
}
