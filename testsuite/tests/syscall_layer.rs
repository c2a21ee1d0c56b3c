//! The in-process privileged-call layer (syscall-inline + the runtime's gate
//! and slow path): per-syscall statistics, strace-style tracing, in-process
//! answers (getpid, gettid, get[e]{u,g}id) and the vDSO clocks against the
//! kernel's answers, blocked signals delivered at the unblock, the deny
//! policy, and `--no-inline`.
//!
//! Oracles: the guest programs' own arguments (how many calls they make),
//! native runs of the same programs, strace (its traces, its `-c` counts and
//! its fault injection as the native twin of `--deny`), and kernel-side
//! sources the guests read themselves (/proc, fork's return value...).
//! The guests are testsuite/guests/sl_*.c, in the four variants of build.rs.
//! strace must be installed (`apt-get install -y strace`).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use testsuite::*;

const T: Duration = Duration::from_secs(60);

/// Defines one test per guest variant, each calling `$body(variant)`.
macro_rules! per_variant {
    ($(#[$attr:meta])* $name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[test]
            $(#[$attr])*
            fn gcc() {
                ($body)("gcc")
            }
            #[test]
            $(#[$attr])*
            fn musl() {
                ($body)("musl")
            }
            #[test]
            $(#[$attr])*
            fn pie() {
                ($body)("pie")
            }
            #[test]
            $(#[$attr])*
            fn dynamic() {
                ($body)("dyn")
            }
        }
    };
}

fn strace() -> String {
    require_tool("strace", "strace").to_string_lossy().into_owned()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn read_text(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}

fn ok(out: &Outcome, what: &str) {
    assert!(!out.timed_out, "{what}: timed out\n--- stderr ---\n{}", out.stderr_str());
    assert_eq!(
        out.status,
        Status::Exited(0),
        "{what}: wrong status\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.stdout_str(),
        out.stderr_str()
    );
}

// ---------------------------------------------------------------------------
// --stats=json: counts equal what the program made
// ---------------------------------------------------------------------------

/// Per-syscall counts of one process image.
#[derive(Clone, Debug, Default, PartialEq)]
struct Counts {
    inline: u64,
    forwarded: u64,
    failed: BTreeMap<String, u64>,
}

impl Counts {
    fn total(&self) -> u64 {
        self.inline + self.forwarded
    }
    fn failures(&self) -> u64 {
        self.failed.values().sum()
    }
}

/// The `--stats=json` objects written to `file` (one a line, one per process image).
fn stats_objects(file: &Path) -> Vec<Json> {
    read_text(file)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| Json::parse(l).unwrap_or_else(|e| panic!("--stats=json wrote a line that is not JSON ({e}): {l}")))
        .collect()
}

fn syscall_counts(obj: &Json) -> BTreeMap<String, Counts> {
    let calls = obj.get("syscalls").unwrap_or_else(|| panic!("no \"syscalls\" member in {obj:?}"));
    calls
        .members()
        .iter()
        .map(|(name, c)| {
            let num = |k: &str| {
                c.get(k).and_then(Json::as_u64).unwrap_or_else(|| panic!("{name}: no integer \"{k}\" in {c:?}"))
            };
            let failed = c
                .get("failed")
                .unwrap_or_else(|| panic!("{name}: no \"failed\" in {c:?}"))
                .members()
                .iter()
                .map(|(e, n)| (e.clone(), n.as_u64().unwrap_or_else(|| panic!("{name}: failed.{e} is not an integer"))))
                .collect();
            (name.clone(), Counts { inline: num("inline"), forwarded: num("forwarded"), failed })
        })
        .collect()
}

/// Runs sl_counts under `bt-run OPTS --stats=json -o FILE` and returns the
/// counts of its one process image; checks the program saw every call
/// answer as expected.
fn counted_run(v: &str, opts: &[&str], n: [u64; 6]) -> BTreeMap<String, Counts> {
    let dir = temp_dir("sl_counts");
    let file = dir.join("stats.json");
    let file_s = file.to_string_lossy().into_owned();
    let prog = guest("sl_counts", v);
    let args: Vec<String> = n.iter().map(|x| x.to_string()).collect();
    let cmd =
        Cmd::new(&[prog.as_str()]).arg(&args[0]).arg(&args[1]).arg(&args[2]).arg(&args[3]).arg(&args[4]).arg(&args[5]);
    let mut all = vec!["--stats=json", "-o", file_s.as_str()];
    all.extend_from_slice(opts);
    let out = run_bt_opts(&all, &cmd, T);
    ok(&out, "sl_counts under bt-run");
    let want =
        format!("getpid={} gettid={} write={} enoent={} ebadf={} badwrite={}\n", n[0], n[1], n[2], n[3], n[4], n[5]);
    assert_eq!(out.stdout_str(), want, "sl_counts did not see the answers it expected under bt-run {all:?}");
    let objs = stats_objects(&file);
    assert_eq!(objs.len(), 1, "one process image, so one statistics object; got:\n{}", read_text(&file));
    let program = objs[0].get("program").and_then(Json::as_str).unwrap_or("");
    assert!(program.ends_with(&format!("sl_counts.{v}")), "\"program\" should name the guest, got {program:?}");
    syscall_counts(&objs[0])
}

fn get(c: &BTreeMap<String, Counts>, name: &str) -> Counts {
    c.get(name).cloned().unwrap_or_default()
}

fn diff_counts(a: &Counts, base: &Counts) -> Counts {
    let mut failed = BTreeMap::new();
    for (e, n) in &a.failed {
        let d = n - base.failed.get(e).copied().unwrap_or(0);
        if d != 0 {
            failed.insert(e.clone(), d);
        }
    }
    Counts { inline: a.inline - base.inline, forwarded: a.forwarded - base.forwarded, failed }
}

/// `strace -f -c` of a native run: syscall -> (calls, errors).
fn strace_summary(cmd: &Cmd) -> BTreeMap<String, (u64, u64)> {
    let dir = temp_dir("strace_c");
    let file = dir.join("summary");
    let st = strace();
    let file_s = file.to_string_lossy().into_owned();
    let out = run_native_prefixed(&[st.as_str(), "-f", "-c", "-o", file_s.as_str()], cmd);
    ok(&out, "native run under strace -c");
    parse_summary(&read_text(&file))
}

/// strace -c's table: syscall -> (calls, errors).
fn parse_summary(text: &str) -> BTreeMap<String, (u64, u64)> {
    let mut m = BTreeMap::new();
    // (Trace lines, and bt-run's line after the table, are not the table's.)
    for line in text.lines().filter(|l| trace_pid(l).is_none() && !l.starts_with("bt-run:")) {
        let f: Vec<&str> = line.split_whitespace().collect();
        // % time, seconds, usecs/call, calls, [errors], syscall
        if f.len() < 5 || f[0].starts_with('-') || f[0] == "%" || f.last() == Some(&"total") {
            continue;
        }
        let calls = f[3].parse::<u64>().unwrap_or_else(|_| panic!("cannot read strace -c line {line:?}"));
        let errors = if f.len() == 6 {
            f[4].parse::<u64>().unwrap_or_else(|_| panic!("cannot read strace -c line {line:?}"))
        } else {
            0
        };
        m.insert(f[f.len() - 1].to_string(), (calls, errors));
    }
    m
}

per_variant!(summary_counts_calls_and_errors_as_strace_c, |v: &str| {
    let prog = guest("sl_counts", v);
    let mut cmd = Cmd::new(&[prog.as_str()]);
    for a in COUNT_ARGS {
        cmd = cmd.arg(a.to_string());
    }
    let mut native = strace_summary(&cmd);
    assert!(native.get("openat").is_some_and(|&(c, e)| c >= e && e > 0), "strace -c saw no failing openat: {native:?}");
    for spelling in ["-c", "--summary-only"] {
        let dir = temp_dir("summary");
        let file = dir.join("summary");
        let file_s = file.to_string_lossy().into_owned();
        let out = run_bt_opts(&[spelling, "-o", file_s.as_str()], &cmd, T);
        ok(&out, "bt-run -c");
        let text = read_text(&file);
        assert!(!text.lines().any(|l| trace_pid(l).is_some()), "-c prints no trace lines:\n{text}");
        assert!(text.contains("% time     seconds  usecs/call     calls    errors syscall\n"), "{text}");
        assert!(text.contains("answered in-process"), "{text}");
        let mut bt = parse_summary(&text);
        // bt-run refuses rseq (ENOSYS) by design.
        for m in [&mut native, &mut bt] {
            m.remove("rseq");
        }
        assert_eq!(bt, native, "bt-run -c against strace -c:\n{text}");
    }
});

// -C: the trace lines and the table; -e trace=SET limits both, as in strace.
per_variant!(summary_with_trace_lines_and_a_set, |v: &str| {
    let prog = guest("sl_counts", v);
    let mut cmd = Cmd::new(&[prog.as_str()]);
    for a in COUNT_ARGS {
        cmd = cmd.arg(a.to_string());
    }
    let dir = temp_dir("summary");
    let file = dir.join("summary");
    let file_s = file.to_string_lossy().into_owned();
    let out = run_bt_opts(&["-C", "-e", "trace=write,close", "-o", file_s.as_str()], &cmd, T);
    ok(&out, "bt-run -C");
    let text = read_text(&file);
    let traced =
        text.lines().filter(|l| trace_pid(l).is_some_and(|(_, rest)| !rest.starts_with("+++ "))).count() as u64;
    let table = parse_summary(&text);
    assert_eq!(table.keys().collect::<Vec<_>>(), ["close", "write"], "{text}");
    assert_eq!(traced, table.values().map(|c| c.0).sum::<u64>(), "a trace line per counted call:\n{text}");
    // close(-1) fails each time (the dynamic loader's own close does not).
    assert_eq!(table["close"].1, COUNT_ARGS[4], "{text}");
    assert!(table["close"].0 >= COUNT_ARGS[4], "{text}");
});

/// `--stats` counts the indirect-branch lookups translated code makes, by
/// kind of site: between two runs of `sl_sites` that differ by K loop
/// iterations, each kind (ret, indirect jmp, indirect call) grows by K
/// (give or take a few: libc's string routines take address-dependent
/// paths, and addresses are random); misses never exceed lookups.
fn site_counts(v: &str, n: u64) -> BTreeMap<String, u64> {
    let dir = temp_dir("sl_sites");
    let file = dir.join("stats.json");
    let file_s = file.to_string_lossy().into_owned();
    let prog = guest("sl_sites", v);
    let cmd = Cmd::new(&[prog.as_str()]).arg(n.to_string());
    let out = run_bt_opts(&["--stats=json", "-o", file_s.as_str()], &cmd, T);
    ok(&out, "sl_sites under bt-run");
    assert_eq!(out.stdout_str(), run_native(&cmd).stdout_str(), "sl_sites prints what it prints natively");
    let objs = stats_objects(&file);
    assert_eq!(objs.len(), 1, "one statistics object:\n{}", read_text(&file));
    let mut m = BTreeMap::new();
    for kind in ["ret", "indirect_jmp", "indirect_call"] {
        for what in ["lookups", "table_lookups", "misses"] {
            let key = format!("{kind}_{what}");
            let v = objs[0]
                .get(&key)
                .and_then(Json::as_u64)
                .unwrap_or_else(|| panic!("no {key} in the statistics:\n{}", read_text(&file)));
            m.insert(key, v);
        }
    }
    m
}

per_variant!(stats_count_lookups_per_kind_of_site, |v: &str| {
    let a = site_counts(v, 1000);
    let b = site_counts(v, 3000);
    for kind in ["ret", "indirect_jmp", "indirect_call"] {
        let l = format!("{kind}_lookups");
        let grew = b[&l] as i64 - a[&l] as i64;
        assert!(
            (grew - 2000).abs() <= 4,
            "{kind}: one lookup per iteration, but {grew} more for 2000 more ({a:?} vs {b:?})"
        );
        for m in [&a, &b] {
            assert!(m[&format!("{kind}_misses")] <= m[&l], "{kind}: misses are lookups that missed: {m:?}");
            assert!(
                m[&format!("{kind}_table_lookups")] <= m[&l],
                "{kind}: table lookups are lookups the inline cache did not answer: {m:?}"
            );
        }
    }
});

// Two hot targets with the same home slot in the indirect-branch table
// (functions 64 KiB apart, reached by turns from one indirect `jmp`, which
// has no inline cache) both stay in the table: the lookups hit instead of
// missing by turns.
per_variant!(indirect_targets_sharing_a_slot_both_hit, |v: &str| {
    let dir = temp_dir("sl_sites");
    let file = dir.join("stats.json");
    let file_s = file.to_string_lossy().into_owned();
    let prog = guest("sl_sites", v);
    let cmd = Cmd::new(&[prog.as_str(), "collide", "200000"]);
    let native = run_native(&cmd);
    assert_eq!(native.status, Status::Exited(0), "sl_sites collide natively (3: the functions were not 64 KiB apart)");
    let out = run_bt_opts(&["--stats=json", "-o", file_s.as_str()], &cmd, T);
    ok(&out, "sl_sites collide under bt-run");
    assert_eq!(out.stdout_str(), native.stdout_str());
    let objs = stats_objects(&file);
    let get = |k: &str| objs[0].get(k).and_then(Json::as_u64).unwrap_or_else(|| panic!("no {k}"));
    assert!(get("indirect_jmp_table_lookups") >= 200_000, "{}", read_text(&file));
    assert!(get("indirect_jmp_misses") < 1000, "the two targets missed by turns:\n{}", read_text(&file));
});

// An indirect call site with K targets called in turn: its inline cache
// answers `IC_ENTRIES` (3) of them without the table (re-arming changes
// which, not how many); the rest go to the table. The program's output
// is the native one.
per_variant!(inline_caches_answer_calls_to_few_targets, |v: &str| {
    let prog = guest("sl_sites", v);
    let n: u64 = 300_000;
    for k in [1u64, 2, 3, 4, 6] {
        let dir = temp_dir("sl_sites");
        let file = dir.join("stats.json");
        let file_s = file.to_string_lossy().into_owned();
        let cmd = Cmd::new(&[prog.as_str(), "poly", &k.to_string(), &n.to_string()]);
        let native = run_native(&cmd);
        assert_eq!(native.status, Status::Exited(0), "sl_sites poly {k} natively");
        let out = run_bt_opts(&["--stats=json", "-o", file_s.as_str()], &cmd, T);
        ok(&out, "sl_sites poly under bt-run");
        assert_eq!(out.stdout_str(), native.stdout_str(), "sl_sites poly {k}");
        let objs = stats_objects(&file);
        let get = |key: &str| objs[0].get(key).and_then(Json::as_u64).unwrap_or_else(|| panic!("no {key}"));
        let (calls, table) = (get("indirect_call_lookups"), get("indirect_call_table_lookups"));
        assert!(calls >= n, "{k} targets: {calls} call lookups for {n} calls");
        let beyond = n * k.saturating_sub(3) / k;
        match k {
            1..=3 => assert!(table < 1000, "{k} targets: the inline cache holds them all, but {table} table lookups"),
            _ => assert!(
                table.abs_diff(beyond) < 1000,
                "{k} targets: all but three ({beyond} calls) go to the table, but {table} table lookups"
            ),
        }
        assert!(get("inline_cache_entries_filled") >= k.min(3), "{}", read_text(&file));
    }
});

// Jumps through a rip-relative pointer (PLT stubs, GOT jumps) have one
// target each: their inline caches answer them, so the loop's jumps never
// reach the table (in the variants where strlen is called through such a
// jump at all).
per_variant!(got_jumps_are_answered_by_inline_caches, |v: &str| {
    let prog = guest("sl_sites", v);
    let run = |n: u64| {
        let dir = temp_dir("sl_sites");
        let file = dir.join("stats.json");
        let file_s = file.to_string_lossy().into_owned();
        let cmd = Cmd::new(&[prog.as_str(), "plt", &n.to_string()]);
        let out = run_bt_opts(&["--stats=json", "-o", file_s.as_str()], &cmd, T);
        ok(&out, "sl_sites plt under bt-run");
        assert_eq!(out.stdout_str(), run_native(&cmd).stdout_str(), "sl_sites plt {n}");
        let objs = stats_objects(&file);
        let get = |key: &str| objs[0].get(key).and_then(Json::as_u64).unwrap_or_else(|| panic!("no {key}"));
        (get("indirect_jmp_lookups"), get("indirect_jmp_table_lookups"))
    };
    let (a, b) = (run(1000), run(101_000));
    // (Start-up may take a lookup or two more in one run than the other.)
    let jumps = b.0.saturating_sub(a.0);
    let table = b.1.saturating_sub(a.1);
    if jumps >= 90_000 {
        assert!(table < 1000, "{jumps} more jumps through the PLT, {table} more of them looked up in the table");
    } else {
        println!("{v}: strlen is not called through a jump here ({jumps} more indirect jumps for 100000 calls)");
    }
});

// Code written at run time and called through one site by turns (so the
// site's inline cache jumps straight to its translations), then rewritten
// between rounds: every round runs the new code, as natively.
per_variant!(rewritten_code_behind_an_inline_cache_runs_anew, |v: &str| {
    let prog = guest("sl_sites", v);
    let cmd = Cmd::new(&[prog.as_str(), "jit", "2000"]);
    let native = run_native(&cmd);
    assert_eq!(native.status, Status::Exited(0), "sl_sites jit natively");
    let out = run_bt(&cmd, T);
    ok(&out, "sl_sites jit under bt-run");
    assert_eq!(out.stdout_str(), native.stdout_str());
    assert_eq!(out.stdout_str().lines().count(), 6, "six rounds");
});

const COUNT_ARGS: [u64; 6] = [1000, 700, 300, 200, 150, 100];
const ZERO_ARGS: [u64; 6] = [0; 6];

per_variant!(stats_counts_equal_calls_made, |v: &str| {
    let base = counted_run(v, &[], ZERO_ARGS);
    let run = counted_run(v, &[], COUNT_ARGS);
    let [n_getpid, n_gettid, n_write, n_enoent, n_ebadf, n_badwrite] = COUNT_ARGS;
    let d = |name: &str| diff_counts(&get(&run, name), &get(&base, name));
    let errs = |pairs: &[(&str, u64)]| pairs.iter().map(|(e, n)| (e.to_string(), *n)).collect::<BTreeMap<_, _>>();
    assert_eq!(
        d("getpid"),
        Counts { inline: n_getpid, forwarded: 0, failed: errs(&[]) },
        "getpid: answered in-process, once per call"
    );
    assert_eq!(
        d("gettid"),
        Counts { inline: n_gettid, forwarded: 0, failed: errs(&[]) },
        "gettid: answered in-process, once per call"
    );
    assert_eq!(
        d("write"),
        Counts { inline: 0, forwarded: n_write + n_badwrite, failed: errs(&[("EBADF", n_badwrite)]) },
        "write: forwarded; the writes to fd -1 failed with EBADF"
    );
    assert_eq!(
        d("openat"),
        Counts { inline: 0, forwarded: n_enoent, failed: errs(&[("ENOENT", n_enoent)]) },
        "openat of a missing file"
    );
    assert_eq!(d("close"), Counts { inline: 0, forwarded: n_ebadf, failed: errs(&[("EBADF", n_ebadf)]) }, "close(-1)");

    // The totals are the kernel's own count of a native run (strace -c).
    let prog = guest("sl_counts", v);
    let mut cmd = Cmd::new(&[prog.as_str()]);
    for a in COUNT_ARGS {
        cmd = cmd.arg(a.to_string());
    }
    let native = strace_summary(&cmd);
    for name in ["getpid", "gettid", "write", "openat", "close"] {
        let c = get(&run, name);
        let (calls, errors) = native.get(name).copied().unwrap_or((0, 0));
        assert_eq!(
            (c.total(), c.failures()),
            (calls, errors),
            "{name}: bt-run's (calls, failures) differ from strace -c of the native run"
        );
    }
});

per_variant!(stats_no_inline_forwards_everything, |v: &str| {
    let base = counted_run(v, &["--no-inline"], ZERO_ARGS);
    let run = counted_run(v, &["--no-inline"], COUNT_ARGS);
    for (name, n) in [("getpid", COUNT_ARGS[0]), ("gettid", COUNT_ARGS[1])] {
        let d = diff_counts(&get(&run, name), &get(&base, name));
        assert_eq!(
            d,
            Counts { inline: 0, forwarded: n, failed: BTreeMap::new() },
            "{name} under --no-inline: every call reaches the kernel"
        );
    }
    for (name, c) in &run {
        if matches!(name.as_str(), "getpid" | "gettid" | "getuid" | "geteuid" | "getgid" | "getegid") {
            assert_eq!(c.inline, 0, "{name} was answered in-process under --no-inline");
        }
    }
});

/// The text table (`--stats`, no JSON) shows the same per-call numbers as
/// the JSON of an identical run.
#[test]
fn stats_text_table_matches_json() {
    let v = "gcc";
    let json = counted_run(v, &[], COUNT_ARGS);
    let dir = temp_dir("stats_text");
    let file = dir.join("stats.txt");
    let file_s = file.to_string_lossy().into_owned();
    let prog = guest("sl_counts", v);
    let mut cmd = Cmd::new(&[prog.as_str()]);
    for a in COUNT_ARGS {
        cmd = cmd.arg(a.to_string());
    }
    let out = run_bt_opts(&["--stats", "-o", file_s.as_str()], &cmd, T);
    ok(&out, "sl_counts under bt-run --stats");
    let text = read_text(&file);
    for name in ["getpid", "gettid", "write", "openat", "close"] {
        let c = get(&json, name);
        let row: Vec<&str> = text
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|f| f.first() == Some(&name))
            .unwrap_or_else(|| panic!("no row for {name} in the --stats table:\n{text}"));
        let nums: Vec<u64> =
            row[1..5].iter().map(|x| x.parse().unwrap_or_else(|_| panic!("bad row {row:?}"))).collect();
        assert_eq!(
            nums,
            vec![c.total(), c.inline, c.forwarded, c.failures()],
            "{name}: text row {row:?} vs JSON {c:?}\n{text}"
        );
        let errs: Vec<String> = c.failed.iter().map(|(e, n)| format!("{e}:{n}")).collect();
        assert_eq!(row[5..].to_vec(), errs.iter().map(String::as_str).collect::<Vec<_>>(), "{name}: errors column");
    }
}

/// sl_procstats: the parent makes A getppid calls, a forked child B
/// sched_yield calls, a vfork child C umask calls. Each process's record
/// counts the calls that process made (no more, no less), and the records
/// add up to the kernel's count of the native run (strace -f -c).
fn procstats(v: &str, opts: &[&str]) {
    let (a, b, c) = (40u64, 50u64, 60u64);
    let dir = temp_dir("procstats");
    let file = dir.join("stats.json");
    let file_s = file.to_string_lossy().into_owned();
    let prog = guest("sl_procstats", v);
    let cmd = Cmd::new(&[prog.as_str()]).arg(a.to_string()).arg(b.to_string()).arg(c.to_string());
    let mut all = vec!["--stats=json", "-o", file_s.as_str()];
    all.extend_from_slice(opts);
    let out = run_bt_opts(&all, &cmd, T);
    ok(&out, "sl_procstats under bt-run");
    let text = out.stdout_str();
    let pid_of = |role: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(role).and_then(|r| r.strip_prefix(' ')).and_then(|p| p.parse().ok()))
            .unwrap_or_else(|| panic!("sl_procstats did not report its {role} pid:\n{text}"))
    };
    let objs = stats_objects(&file);
    let record = |role: &str| -> BTreeMap<String, Counts> {
        let pid = pid_of(role);
        let mine: Vec<&Json> = objs.iter().filter(|o| o.get("pid").and_then(Json::as_u64) == Some(pid)).collect();
        assert_eq!(
            mine.len(),
            1,
            "one statistics record for the {role} (pid {pid}); all records:\n{}",
            read_text(&file)
        );
        syscall_counts(mine[0])
    };
    let want = [("parent", [a, 0, 0]), ("fork", [0, b, 0]), ("vfork", [0, 0, c])];
    let mut problems = Vec::new();
    for (role, n) in want {
        let r = record(role);
        for (name, k) in ["getppid", "sched_yield", "umask"].iter().zip(n) {
            let got = get(&r, name).total();
            if got != k {
                problems.push(format!("{role}: {name} counted {got}, the {role} made {k}"));
            }
        }
    }
    let native = strace_summary(&cmd);
    // The calls that made the children are the parent's alone.
    for name in ["getppid", "sched_yield", "umask", "clone", "fork", "vfork"] {
        let sum: u64 = objs.iter().map(|o| get(&syscall_counts(o), name).total()).sum();
        let (calls, _) = native.get(name).copied().unwrap_or((0, 0));
        if sum != calls {
            problems
                .push(format!("{name}: the records add up to {sum}, strace -f -c of the native run counts {calls}"));
        }
    }
    assert!(
        problems.is_empty(),
        "per-process statistics:\n  {}\n--- records ---\n{}",
        problems.join("\n  "),
        read_text(&file)
    );
}

per_variant!(stats_per_process_fork_vfork, |v: &str| procstats(v, &[]));

// ---------------------------------------------------------------------------
// --trace: the same lines as strace
// ---------------------------------------------------------------------------

/// Normalizes one trace line of strace (`PID call(...)   = ret`) or bt-run
/// (`[pid N] call(...) = ret`): no pid prefix, every 0x... address as 0xX,
/// no column padding before `=`. None for strace's `+++`/`---` lines.
fn normalize_trace_line(line: &str) -> Option<String> {
    let mut l = line.trim_end();
    if let Some(rest) = l.strip_prefix("[pid ") {
        l = rest.split_once("] ").map(|(_, r)| r).unwrap_or(rest);
    } else if let Some((pid, rest)) = l.split_once(' ')
        && !pid.is_empty()
        && pid.bytes().all(|b| b.is_ascii_digit())
    {
        l = rest;
    }
    let l = l.trim_start();
    if l.starts_with("+++") || l.starts_with("---") || l.is_empty() {
        return None;
    }
    // Addresses.
    let b = l.as_bytes();
    let mut out = String::with_capacity(l.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'0' && b.get(i + 1) == Some(&b'x') && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit) {
            out.push_str("0xX");
            i += 2;
            while i < b.len() && b[i].is_ascii_hexdigit() {
                i += 1;
            }
        } else {
            let ch = l[i..].chars().next().unwrap_or('?');
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    // Padding before the result.
    if let Some(pos) = out.rfind(" = ") {
        let (call, ret) = out.split_at(pos);
        return Some(format!("{} ={}", call.trim_end(), &ret[2..]));
    }
    Some(out)
}

fn normalized_trace(text: &str) -> Vec<String> {
    text.lines().filter_map(normalize_trace_line).collect()
}

fn assert_same_lines(what: &str, native: &[String], bt: &[String]) {
    if native == bt {
        return;
    }
    let i = native.iter().zip(bt).position(|(a, b)| a != b).unwrap_or(native.len().min(bt.len()));
    panic!(
        "{what}: strace has {} lines, bt-run {}; first difference at line {}:\n  strace: {}\n  bt-run: {}\n--- strace ---\n{}\n--- bt-run ---\n{}",
        native.len(),
        bt.len(),
        i + 1,
        native.get(i).map(String::as_str).unwrap_or("<end>"),
        bt.get(i).map(String::as_str).unwrap_or("<end>"),
        native.join("\n"),
        bt.join("\n")
    );
}

/// Runs `prog ARGS` in a fresh directory under `strace -f -o F -e trace=SET`
/// and under `bt-run --trace=SET -o F2`, and returns both normalized traces
/// after checking both runs printed the same (unless the output shows pids)
/// and ended the same.
fn traces(prog: &str, args: &[&str], set: &str) -> (Vec<String>, Vec<String>) {
    traces_opt(prog, args, set, true)
}

fn traces_opt(prog: &str, args: &[&str], set: &str, same_stdout: bool) -> (Vec<String>, Vec<String>) {
    traces_spelled(prog, args, set, same_stdout, &[&format!("--trace={set}")], &[])
}

/// As `traces_opt`, with bt-run's trace option spelled `bt_trace`, and
/// `extra` options given to both strace and bt-run.
fn traces_spelled(
    prog: &str,
    args: &[&str],
    set: &str,
    same_stdout: bool,
    bt_trace: &[&str],
    extra: &[&str],
) -> (Vec<String>, Vec<String>) {
    let st = strace();
    let nd = temp_dir("trace-strace");
    let nf = nd.join("strace.out");
    let nf_s = nf.to_string_lossy().into_owned();
    let mut cmd = Cmd::new(&[prog]);
    for a in args {
        cmd = cmd.arg(a);
    }
    let trace_arg = format!("trace={set}");
    let mut strace_args = vec![st.as_str(), "-f", "-o", nf_s.as_str(), "-e", trace_arg.as_str()];
    strace_args.extend(extra);
    let native = run_native_prefixed(&strace_args, &cmd.clone().cwd(nd.path()));
    ok(&native, "native run under strace");
    let bd = temp_dir("trace-bt");
    let bf = bd.join("bt.out");
    let bf_s = bf.to_string_lossy().into_owned();
    let mut opts = bt_trace.to_vec();
    opts.extend(extra);
    opts.extend(["-o", bf_s.as_str()]);
    let bt = run_bt_opts(&opts, &cmd.cwd(bd.path()), T);
    ok(&bt, "bt-run --trace");
    if same_stdout {
        assert_eq!(bt.stdout_str(), native.stdout_str(), "stdout of the traced runs");
    }
    assert_eq!(bt.stderr_str(), native.stderr_str(), "stderr of the traced runs (trace lines went to -o)");
    (normalized_trace(&read_text(&nf)), normalized_trace(&read_text(&bf)))
}

per_variant!(strace_spelling_of_the_trace_set_traces_the_same, |v: &str| {
    // strace's `-e trace=SET` and bare `-e SET`, as strace has them.
    let prog = guest("sl_trace", v);
    for spelling in
        [&["-e", "trace=open,openat,write"][..], &["-e", "open,openat,write"], &["-etrace=open,openat,write"]]
    {
        let (native, bt) = traces_spelled(&prog, &[], "open,openat,write", true, spelling, &[]);
        assert!(native.iter().any(|l| l.starts_with("write(")), "strace saw no write: the test is broken");
        assert_same_lines(&spelling.join(" "), &native, &bt);
    }
});

per_variant!(string_limit_cuts_strings_as_strace_s, |v: &str| {
    let prog = guest("sl_trace", v);
    for size in ["0", "5", "200"] {
        let (native, bt) =
            traces_spelled(&prog, &[], "write,openat,open", true, &["-e", "trace=write,openat,open"], &["-s", size]);
        assert!(native.iter().any(|l| l.starts_with("write(")), "strace saw no write: the test is broken");
        assert_same_lines(&format!("-s {size}"), &native, &bt);
    }
    // The default (32) cuts what -s 200 does not: the test can fail.
    let (cut, _) = traces_spelled(&prog, &[], "write", true, &["-e", "trace=write"], &[]);
    let (whole, _) = traces_spelled(&prog, &[], "write", true, &["-e", "trace=write"], &["-s", "200"]);
    assert_ne!(cut, whole, "sl_trace writes nothing longer than 32 bytes: the test cannot tell -s apart");
});

/// Runs `prog ARGS` under `strace -ff -o DIR/out -e trace=SET` and under
/// `bt-run -ff -o DIR/out -e trace=SET`, each in a directory of its own, and
/// returns each one's files: their normalized lines, one entry per file
/// with a line, sorted (pids differ between the runs). Checks that
/// bt-run's lines carry no pid (the file names it) and each file is named
/// FILE.TID.
fn ff_traces(prog: &str, args: &[&str], set: &str) -> (Vec<String>, Vec<String>) {
    let st = strace();
    let mut cmd = Cmd::new(&[prog]);
    for a in args {
        cmd = cmd.arg(a);
    }
    let trace_arg = format!("trace={set}");
    let files = |dir: &Path, bt: bool| -> Vec<String> {
        let mut per_file = Vec::new();
        for e in std::fs::read_dir(dir).expect("read_dir") {
            let path = e.expect("dir entry").path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let Some(tid) = name.strip_prefix("out.") else { continue };
            assert!(tid.bytes().all(|b| b.is_ascii_digit()), "not FILE.TID: {name}");
            let text = read_text(&path);
            if bt {
                assert!(!text.contains("[pid "), "-ff lines name no pid: {name}:\n{text}");
            }
            // (The parent's pid differs between the runs.)
            let mut lines: Vec<String> = normalized_trace(&text)
                .into_iter()
                .map(|l| if l.starts_with("getppid() = ") { "getppid() = PPID".to_string() } else { l })
                .collect();
            // Each file ends with the thread's `+++ exited with N +++`.
            lines.extend(text.lines().last().filter(|l| l.starts_with("+++ ")).map(str::to_string));
            if !lines.is_empty() {
                per_file.push(lines.join("\n"));
            }
        }
        per_file.sort();
        per_file
    };
    let nd = temp_dir("ff-strace");
    let nf = nd.join("out").to_string_lossy().into_owned();
    let native = run_native_prefixed(&[st.as_str(), "-ff", "-o", &nf, "-e", &trace_arg], &cmd.clone().cwd(nd.path()));
    ok(&native, "native run under strace -ff");
    let bd = temp_dir("ff-bt");
    let bf = bd.join("out").to_string_lossy().into_owned();
    let bt = run_bt_opts(&["-ff", "-o", &bf, "-e", &trace_arg], &cmd.cwd(bd.path()), T);
    ok(&bt, "bt-run -ff");
    assert_eq!(bt.stdout_str().lines().count(), native.stdout_str().lines().count(), "stdout of the -ff runs");
    assert_eq!(bt.stderr_str(), native.stderr_str(), "stderr of the -ff runs");
    (files(nd.path(), false), files(bd.path(), true))
}

per_variant!(output_separately_writes_each_process_and_thread_its_file_as_strace_ff, |v: &str| {
    // A parent, a forked child and a vfork child, each with calls of its own.
    let (native, bt) = ff_traces(&guest("sl_procstats", v), &["3", "2", "4"], "getppid,sched_yield,umask");
    assert_eq!(native.len(), 3, "strace -ff wrote a file per process: {native:?}");
    assert_same_lines("-ff, processes", &native, &bt);
    // Four threads that end with exit, and the process with exit_group.
    let (native, bt) = ff_traces(&guest("threads", v), &[], "exit,exit_group");
    assert_eq!(native.len(), 5, "strace -ff wrote a file per thread: {native:?}");
    assert_same_lines("-ff, threads", &native, &bt);
});

/// A successful execve has its line, `= 0`, printed once the new program
/// runs: the first one (bt-run's loader starts the program, as strace's
/// execve does) and those the program makes, in a forked child and in
/// place.
#[test]
fn execve_lines_as_strace() {
    let script = &format!("{BUSYBOX} echo a; exec {BUSYBOX} echo b");
    let (native, bt) = traces(BUSYBOX, &["sh", "-c", script], "execve,write");
    assert_eq!(native.iter().filter(|l| l.starts_with("execve(")).count(), 3, "strace: {native:#?}");
    assert_same_lines("execve", &native, &bt);
    // A script: the line names the script and its own argv, not the
    // interpreter's.
    let d = temp_dir("exec-script");
    write_file(d.path(), "script", format!("#!{BUSYBOX} sh\necho from the script\n").as_bytes());
    let script = d.join("script").to_string_lossy().into_owned();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    let (native, bt) = traces(&script, &["an arg"], "execve,write");
    assert!(
        native
            .first()
            .is_some_and(|l| l.starts_with(&format!("execve(\"{script}\", [")) && l.contains(", \"an arg\"], ")),
        "strace: {native:#?}"
    );
    assert_same_lines("execve of a script", &native, &bt);
}

/// An execve whose trace line is longer than one argument may be (a large
/// -s and long arguments) still runs its program, without the line.
#[test]
fn a_long_execve_line_does_not_fail_the_exec() {
    let script = "a=$(head -c 50000 /dev/zero | tr '\\0' a); exec /bin/echo \"$a\" \"$a\" \"$a\"";
    let cmd = Cmd::new(&["/bin/bash", "-c", script]);
    let native = run_native(&cmd);
    let bt = run_bt_opts(&["-s", "100000", "-e", "trace=execve", "-o", "/dev/null"], &cmd, T);
    assert_eq!(bt.status, native.status, "{}", bt.stderr_str());
    assert_eq!(bt.stdout.len(), 150_003, "three 50,000-byte arguments echoed");
    assert_eq!(bt.stdout, native.stdout);
}

/// Lines name their thread as strace -f does: `1234  ` (left-aligned in
/// five columns) in a `-o` file, `[pid  1234] ` on stderr.
#[test]
fn pid_prefixes_as_strace() {
    let st = strace();
    let d = temp_dir("prefixes");
    let cmd = Cmd::new(&[BUSYBOX, "sh", "-c", "echo a; busybox echo b"]).cwd(d.path());
    let file = |name: &str| d.join(name).to_string_lossy().into_owned();
    let (nf, bf) = (file("strace.out"), file("bt.out"));
    ok(&run_native_prefixed(&[st.as_str(), "-f", "-o", &nf, "-e", "trace=write"], &cmd), "strace -f -o");
    ok(&run_bt_opts(&["-e", "trace=write", "-o", &bf], &cmd, T), "bt-run -o");
    for (who, path) in [("strace", &nf), ("bt-run", &bf)] {
        let text = read_text(Path::new(path));
        let writes: Vec<&str> = text.lines().filter(|l| l.contains(" write(")).collect();
        assert_eq!(writes.len(), 2, "{who}: {text}");
        for l in writes {
            let pid = l.split(' ').next().unwrap_or("");
            assert!(pid.parse::<u32>().is_ok() && l.starts_with(&format!("{pid:<5} ")), "{who}: {l:?}");
        }
    }
    let bt = run_bt_opts(&["-e", "trace=write"], &cmd, T);
    let stderr = bt.stderr_str();
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains(" write(")).collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    for l in lines {
        let (pid, _) = trace_pid(l).unwrap_or_else(|| panic!("{l:?}"));
        assert!(l.starts_with(&format!("[pid {pid:>5}] ")), "{l:?}");
    }
}

/// Each process's last line is strace's `+++ exited with N +++` (or
/// `+++ killed by SIG +++` for a death bt-run gives, as by a fault), and
/// `-qq` leaves them out, as in strace.
#[test]
fn exit_lines_as_strace_and_qq_leaves_them_out() {
    let crash = guest("crash", "gcc");
    let script = &format!("busybox true; busybox sh -c 'exit 3'; ulimit -c 0; exec {crash} rodata");
    let d = temp_dir("exit-lines");
    let ends = |quiet: &[&str]| -> Vec<String> {
        let out = d.join(format!("trace{}", quiet.len())).to_string_lossy().into_owned();
        let mut opts = vec!["-e", "trace=exit_group", "-o", &out];
        opts.extend(quiet);
        let cmd = Cmd::new(&[BUSYBOX, "sh", "-c", script]).cwd(d.path()).any_status();
        let bt = run_bt_opts(&opts, &cmd, T);
        assert_eq!(bt.status, Status::Signaled { signal: libc::SIGSEGV, core_dumped: false }, "{}", bt.stderr_str());
        read_text(Path::new(&out))
            .lines()
            .filter_map(|l| trace_pid(l).and_then(|(_, rest)| rest.strip_prefix("+++ ")).map(str::to_string))
            .collect()
    };
    let mut got = ends(&[]);
    got.sort();
    assert_eq!(got, ["exited with 0 +++", "exited with 3 +++", "killed by SIGSEGV +++"]);
    assert_eq!(ends(&["-qq"]), Vec::<String>::new());
}

/// A `-T` line without its ` <S.UUUUUU>` ending, and whether it had one.
fn without_time(line: &str) -> (String, bool) {
    if let Some(at) = line.rfind(" <")
        && let Some(t) = line[at + 2..].strip_suffix('>')
        && let Some((s, us)) = t.split_once('.')
        && !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_digit())
        && us.len() == 6
        && us.bytes().all(|b| b.is_ascii_digit())
    {
        return (line[..at].to_string(), true);
    }
    (line.to_string(), false)
}

per_variant!(syscall_times_end_the_lines_as_strace_t, |v: &str| {
    let prog = guest("sl_trace", v);
    let set = "open,openat,write,mmap";
    let (native, bt) = traces_spelled(&prog, &[], set, true, &["-e", &format!("trace={set}")], &["-T"]);
    for (who, lines) in [("strace", &native), ("bt-run", &bt)] {
        for l in lines.iter() {
            assert!(without_time(l).1 || l.ends_with("= ?"), "{who}: no time on {l:?}");
        }
    }
    let plain = |t: &[String]| t.iter().map(|l| without_time(l).0).collect::<Vec<_>>();
    assert_same_lines("-T, times taken off", &plain(&native), &plain(&bt));
});

/// A stamped line without the stamp `opt` (-t, -tt, -ttt, -r) gives it,
/// or None if it has no such stamp.
fn without_stamp(line: &str, opt: &str) -> Option<String> {
    let (stamp, rest) = line.trim_start().split_once(' ')?;
    let digits = |s: &str, n: Option<usize>| {
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && n.is_none_or(|n| s.len() == n)
    };
    let hms = |s: &str| {
        let f: Vec<&str> = s.split(':').collect();
        f.len() == 3 && f.iter().all(|x| digits(x, Some(2)))
    };
    let ok = match (opt, stamp.split_once('.')) {
        ("-t", None) => hms(stamp),
        ("-tt", Some((a, us))) => hms(a) && digits(us, Some(6)),
        ("-ttt" | "-r", Some((s, us))) => digits(s, None) && digits(us, Some(6)),
        _ => false,
    };
    ok.then(|| rest.to_string())
}

per_variant!(stamps_start_the_lines_as_strace_t_and_r, |v: &str| {
    let prog = guest("sl_trace", v);
    let set = "open,openat,write";
    for opt in ["-t", "-tt", "-ttt", "-r"] {
        let (native, bt) = traces_spelled(&prog, &[], set, true, &["-e", &format!("trace={set}")], &[opt]);
        let strip = |who: &str, t: &[String]| -> Vec<String> {
            t.iter()
                .map(|l| without_stamp(l, opt).unwrap_or_else(|| panic!("{who} {opt}: no stamp on {l:?}")))
                .filter(|l| !l.starts_with("+++") && !l.starts_with("---"))
                .collect()
        };
        assert_same_lines(&format!("{opt}, stamps taken off"), &strip("strace", &native), &strip("bt-run", &bt));
    }
});

/// A `-y` line with what differs between two runs made neutral: the runs'
/// own directories (`trace-strace...`, `trace-bt...`) as DIR, and pipe and
/// socket inode numbers as N.
fn neutral_fd_paths(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..=open]);
        rest = &rest[open + 1..];
        let Some(close) = rest.find('>') else { break };
        let inside = &rest[..close];
        let neutral = if let Some(at) = inside.find("trace-strace").or_else(|| inside.find("trace-bt")) {
            let end = inside[at..].find('/').map_or(inside.len(), |e| at + e);
            format!("DIR{}", &inside[end..])
        } else if let Some(kind) = ["pipe:[", "socket:["].into_iter().find(|k| inside.starts_with(k)) {
            format!("{kind}N]")
        } else {
            inside.to_string()
        };
        out.push_str(&neutral);
        rest = &rest[close..];
    }
    out.push_str(rest);
    out
}

per_variant!(descriptor_paths_as_strace_y, |v: &str| {
    let prog = guest("sl_trace", v);
    let set = "open,openat,write,close,mmap";
    let (native, bt) = traces_spelled(&prog, &[], set, true, &["-e", &format!("trace={set}")], &["-y"]);
    assert!(
        native.iter().any(|l| l.contains("sl_trace.tmp>")),
        "strace -y named no descriptor: the test is broken\n{}",
        native.join("\n")
    );
    let neutral = |t: &[String]| t.iter().map(|l| neutral_fd_paths(l)).collect::<Vec<_>>();
    assert_same_lines("-y", &neutral(&native), &neutral(&bt));
});

/// A trace line with every run of four or more digits (ports, inodes,
/// pids) as N, and pids of any length (`nl_pid=`, `pid:`, a netlink
/// socket's port in `<NETLINK:[ROUTE:port]>`) too: the
/// traced process has another pid under strace than under bt-run, and on
/// a fresh machine pids have three digits or fewer.
fn without_long_numbers(line: &str) -> String {
    let mut out = String::new();
    let mut digits = String::new();
    for c in line.chars().chain(std::iter::once('\0')) {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let netlink_port = out.rfind("<NETLINK:[").is_some_and(|i| !out[i..].contains(']')) && out.ends_with(':');
        let pid = out.ends_with("nl_pid=") || out.ends_with("pid:") || netlink_port;
        // (An unbound netlink socket's nl_pid=0 stays.)
        let pid = pid && !digits.is_empty() && digits != "0";
        out.push_str(if digits.len() >= 4 || pid { "N" } else { &digits });
        digits.clear();
        if c != '\0' {
            out.push(c);
        }
    }
    out
}

#[test]
fn trace_lines_are_compared_without_pids_of_any_length() {
    assert_eq!(
        without_long_numbers("getsockname(3<socket:[12345]>, {sa_family=AF_NETLINK, nl_pid=313, nl_groups=00000000}"),
        "getsockname(3<socket:[N]>, {sa_family=AF_NETLINK, nl_pid=N, nl_groups=N}"
    );
    assert_eq!(
        without_long_numbers("close(5<anon_inode:[pidfd]<pid:77>>) = 0"),
        "close(5<anon_inode:[pidfd]<pid:N>>) = 0"
    );
    assert_eq!(without_long_numbers("close(3<socket:[1234]>) = 0"), "close(3<socket:[N]>) = 0");
    assert_eq!(without_long_numbers("getsockname(3<NETLINK:[ROUTE:18]>, "), "getsockname(3<NETLINK:[ROUTE:N]>, ");
    assert_eq!(
        without_long_numbers("{sa_family=AF_NETLINK, nl_pid=0, nl_groups=0}"),
        "{sa_family=AF_NETLINK, nl_pid=0, nl_groups=0}"
    );
}

per_variant!(socket_and_device_details_as_strace_yy, |v: &str| {
    let prog = guest("sl_sockets", v);
    let set = "getsockname,close";
    let (native, bt) = traces_spelled(&prog, &[], set, true, &["-e", &format!("trace={set}")], &["-yy"]);
    for kind in ["<TCP:[127.0.0.1:", "<UNIX-STREAM:[", "<NETLINK:[ROUTE:", "</dev/null<char 1:3>>", "<pid:"] {
        assert!(
            native.iter().any(|l| l.contains(kind)),
            "strace -yy showed no {kind}: the test is broken\n{native:#?}"
        );
    }
    let neutral = |t: &[String]| t.iter().map(|l| without_long_numbers(l)).collect::<Vec<_>>();
    assert_same_lines("-yy", &neutral(&native), &neutral(&bt));
    // -y alone names the socket by its inode only.
    let (native, bt) = traces_spelled(&prog, &[], set, true, &["-e", &format!("trace={set}")], &["-y"]);
    assert!(native.iter().any(|l| l.contains("<socket:[")), "strace -y: {native:#?}");
    assert_same_lines("-y", &neutral(&native), &neutral(&bt));
});

/// `cat FILE` with `injection` natively under strace and under bt-run:
/// the same output, errors and status.
fn assert_injects_as_strace(injection: &str, message: &str) {
    let st = strace();
    let d = temp_dir("inject");
    write_file(d.path(), "f", b"not to be read\n");
    let cmd = Cmd::new(&[BUSYBOX, "cat", "f"]).cwd(d.path()).any_status();
    let native = run_native_prefixed(&[st.as_str(), "-f", "-o", "/dev/null", "-e", injection], &cmd);
    assert!(native.stderr_str().contains(message), "strace's injection did not fail the open: {}", native.stderr_str());
    assert_eq!(native.status, Status::Exited(1), "{}", native.stderr_str());
    let bt = run_bt_opts(&["-e", injection], &cmd, T);
    assert_eq!(
        (bt.status, bt.stdout_str(), bt.stderr_str()),
        (native.status, native.stdout_str(), native.stderr_str()),
        "bt-run -e {injection} against strace -e {injection}"
    );
}

#[test]
fn strace_injections_fail_calls_as_strace_does() {
    assert_injects_as_strace("inject=open,openat:error=EACCES", "Permission denied");
    assert_injects_as_strace("inject=openat,open:error=2", "No such file or directory");
    // fault's error is ENOSYS unless given.
    assert_injects_as_strace("fault=open,openat", "Function not implemented");
}

/// Trace lines of injected faults carry strace's ` (INJECTED)` mark, in
/// the program an execve starts too; `--deny`'s do not (strace has no such
/// denial).
#[test]
fn injected_faults_are_marked_in_trace_lines_as_strace_marks_them() {
    let script = &format!("cat f; exec {BUSYBOX} sh -c 'cat g; true'");
    for inject in ["inject=openat,open:error=EACCES", "fault=openat,open:error=EPERM"] {
        let (native, bt) = traces_spelled(
            BUSYBOX,
            &["sh", "-c", script],
            "openat,open",
            true,
            &["-e", "trace=openat,open", "-e", inject],
            &["-e", inject],
        );
        let marked = native.iter().filter(|l| l.ends_with(" (INJECTED)")).count();
        assert!(marked >= 2, "strace marked {marked} lines: the test is broken\n{native:#?}");
        assert_same_lines(inject, &native, &bt);
    }
    let d = temp_dir("deny-marks");
    let out = d.join("trace.out").to_string_lossy().into_owned();
    let cmd = Cmd::new(&[BUSYBOX, "sh", "-c", script]).cwd(d.path());
    let bt = run_bt_opts(
        &["-e", "trace=openat,open", "--deny", "openat=EACCES", "--deny", "open=EACCES", "-o", &out],
        &cmd,
        T,
    );
    ok(&bt, "bt-run --deny");
    let denied = normalized_trace(&read_text(Path::new(&out)));
    assert!(denied.iter().any(|l| l.ends_with("(Permission denied)")), "--deny: {denied:#?}");
    assert!(!denied.iter().any(|l| l.contains("INJECTED")), "--deny lines are not strace's injections: {denied:#?}");
}

per_variant!(trace_lines_match_strace, |v: &str| {
    let prog = guest("sl_trace", v);
    // musl's open() is the open system call, glibc's is openat.
    let (native, bt) = traces(&prog, &[], "open,openat,write,mmap");
    assert!(
        native.iter().any(|l| (l.starts_with("openat(AT_FDCWD, \"/nonexistent-bt-run-sl_trace/missing\"")
            || l.starts_with("open(\"/nonexistent-bt-run-sl_trace/missing\""))
            && l.ends_with("ENOENT (No such file or directory)")),
        "strace did not show the failing open: the test is broken\n{}",
        native.join("\n")
    );
    assert_same_lines("open,openat,write,mmap", &native, &bt);
});

// Each trace line names the process that made the call: parent, forked
// child, vfork child (the pids sl_procstats prints), as strace -f does.
per_variant!(trace_lines_name_the_calling_process, |v: &str| {
    let prog = guest("sl_procstats", v);
    let dir = temp_dir("trace_pids");
    let file = dir.join("trace");
    let file_s = file.to_string_lossy().into_owned();
    let cmd = Cmd::new(&[prog.as_str(), "3", "4", "5"]);
    let out = run_bt_opts(&["--trace=getppid,sched_yield,umask", "-o", file_s.as_str()], &cmd, T);
    ok(&out, "sl_procstats under bt-run --trace");
    let text = out.stdout_str();
    let pid_of = |role: &str| -> String {
        text.lines()
            .find_map(|l| l.strip_prefix(role).and_then(|r| r.strip_prefix(' ')).map(str::to_string))
            .unwrap_or_else(|| panic!("no {role} pid in:\n{text}"))
    };
    let trace = read_text(&file);
    let mut seen = BTreeMap::new();
    let mut ended = std::collections::BTreeSet::new();
    for line in trace.lines() {
        let (pid, call) = trace_pid(line).unwrap_or_else(|| panic!("trace line without a pid: {line:?}"));
        if call == "+++ exited with 0 +++" {
            // strace's last line of each process.
            ended.insert(pid.to_string());
            continue;
        }
        let name = call.split('(').next().unwrap_or("");
        *seen.entry((name.to_string(), pid.to_string())).or_insert(0u32) += 1;
    }
    let want: BTreeMap<(String, String), u32> = [
        (("getppid".to_string(), pid_of("parent")), 3),
        (("sched_yield".to_string(), pid_of("fork")), 4),
        (("umask".to_string(), pid_of("vfork")), 5),
    ]
    .into_iter()
    .collect();
    assert_eq!(seen, want, "(call, pid) -> lines\n{trace}");
    let pids: std::collections::BTreeSet<String> = ["parent", "fork", "vfork"].into_iter().map(pid_of).collect();
    assert_eq!(ended, pids, "each process's `+++ exited with 0 +++`:\n{trace}");
    let (native, bt) = traces_opt(&prog, &["3", "4", "5"], "getppid,sched_yield,umask", false);
    // getppid's value is a pid: same shape, different number.
    let strip = |v: Vec<String>| -> Vec<String> {
        v.into_iter().map(|l| if l.starts_with("getppid()") { "getppid() = N".into() } else { l }).collect()
    };
    assert_same_lines("getppid,sched_yield,umask", &strip(native), &strip(bt));
});

#[test]
fn trace_normalization() {
    assert_eq!(
        normalize_trace_line("1234  mmap(NULL, 8192, PROT_READ, MAP_PRIVATE, -1, 0) = 0x7f00deadb000").as_deref(),
        Some("mmap(NULL, 8192, PROT_READ, MAP_PRIVATE, -1, 0) = 0xX")
    );
    assert_eq!(
        normalize_trace_line("[pid 99] write(3, \"\", 0) = 0").as_deref(),
        normalize_trace_line("99 write(3, \"\", 0)                   = 0").as_deref()
    );
    assert_eq!(normalize_trace_line("99 +++ exited with 0 +++"), None);
}

// ---------------------------------------------------------------------------
// In-process answers equal the kernel's
// ---------------------------------------------------------------------------

/// sl_ids MODE natively and under bt-run with `opts`: identical output, and
/// every check inside passed (the native status is required to be 0).
fn ids(v: &str, mode: &str, opts: &[&str]) -> Outcome {
    let prog = guest("sl_ids", v);
    let native = compare_opts(&Cmd::new(&[prog.as_str(), mode]), opts);
    let text = native.stdout_str();
    assert!(text.contains("failures: 0\n"), "native checks failed (test or environment problem):\n{text}");
    assert!(!text.contains("MISMATCH"), "{text}");
    native
}

fn root_part_ran(out: &Outcome) {
    let text = out.stdout_str();
    if is_root() {
        assert!(
            text.contains("running as root: credential checks\n"),
            "running as root, the credential checks must run:\n{text}"
        );
        assert!(text.contains(": ok\n"), "{text}");
    } else {
        assert!(text.contains("not root: credential checks skipped\n"), "{text}");
    }
}

per_variant!(ids_fork_vfork_spawn_threads, |v: &str| {
    let out = ids(v, "pids", &[]);
    let text = out.stdout_str();
    for who in [
        "main",
        "fork child",
        "fork grandchild",
        "vfork child",
        "spawned child",
        "thread 2",
        "child forked by a thread",
        "child with a thread, second thread",
    ] {
        assert!(text.contains(&format!("{who}: getpid == /proc/self: ok")), "no check of {who}:\n{text}");
    }
    // `mov eax, NR; syscall` is answered where the translated syscall is.
    for who in ["main", "fork child", "vfork child", "thread 2", "child with a thread, second thread"] {
        assert!(
            text.contains(&format!("{who}: gettid (constant number) == /proc/thread-self: ok")),
            "no check of {who}:\n{text}"
        );
    }
});

per_variant!(ids_fork_vfork_spawn_threads_no_inline, |v: &str| {
    ids(v, "pids", &["--no-inline"]);
});

// --stats sends every call through the runtime's slow path (not the gate).
per_variant!(ids_fork_vfork_spawn_threads_slow_path, |v: &str| {
    ids(v, "pids", &["--stats", "-o", "/dev/null"]);
});

per_variant!(creds_after_dropping_privileges, |v: &str| {
    let out = ids(v, "creds", &[]);
    root_part_ran(&out);
    if is_root() {
        assert!(
            out.stdout_str().contains("after setresgid/setresuid: uid=2001 euid=2002 gid=1001 egid=1002\n"),
            "{}",
            out.stdout_str()
        );
    }
});

per_variant!(creds_after_dropping_privileges_no_inline, |v: &str| {
    root_part_ran(&ids(v, "creds", &["--no-inline"]));
});

// The kernel keeps credentials per thread: a raw setresuid in one thread
// leaves the other threads' ids alone.
per_variant!(creds_are_per_thread, |v: &str| {
    root_part_ran(&ids(v, "thread-creds", &[]));
});

// libc's set*id in a threaded process changes every thread (glibc signals
// each thread with SIGSETXID = 33, musl with its synccall signal).
per_variant!(creds_libc_setxid_with_threads, |v: &str| {
    root_part_ran(&ids(v, "setxid", &[]));
});

// ---------------------------------------------------------------------------
// Clocks
// ---------------------------------------------------------------------------

const CLOCK_SAMPLES: u64 = 3000;
const CPUTIME_CALLS: u64 = 60;

fn clock_cmd(v: &str) -> Cmd {
    Cmd::new(&[guest("sl_clock", v)]).arg(CLOCK_SAMPLES.to_string()).arg(CPUTIME_CALLS.to_string())
}

// Monotonic and realtime through libc lie between two raw kernel reads less
// than 1 ms apart, never go backwards; process CPU time never runs ahead.
per_variant!(clock_libc_equals_kernel, |v: &str| {
    compare(&clock_cmd(v));
});

per_variant!(clock_libc_equals_kernel_no_inline, |v: &str| {
    compare_opts(&clock_cmd(v), &["--no-inline"]);
});

fn count_lines_with(lines: &[String], pat: &str) -> u64 {
    lines.iter().filter(|l| l.starts_with("clock_gettime(") && l.contains(pat)).count() as u64
}

// CLOCK_PROCESS_CPUTIME_ID reaches the kernel (the program's raw calls and
// the libc ones the vDSO passes on), CLOCK_MONOTONIC through libc does not.
per_variant!(clock_cputime_goes_to_kernel, |v: &str| {
    let prog = guest("sl_clock", v);
    let (native, bt) = traces(&prog, &[&CLOCK_SAMPLES.to_string(), &CPUTIME_CALLS.to_string()], "clock_gettime");
    let (n_cpu, b_cpu) =
        (count_lines_with(&native, "CLOCK_PROCESS_CPUTIME_ID"), count_lines_with(&bt, "CLOCK_PROCESS_CPUTIME_ID"));
    assert_eq!(n_cpu, 2 * CPUTIME_CALLS, "strace: libc's CLOCK_PROCESS_CPUTIME_ID reads are system calls natively");
    assert_eq!(b_cpu, n_cpu, "bt-run: CLOCK_PROCESS_CPUTIME_ID system calls seen by --trace");
    for (who, lines) in [("strace", &native), ("bt-run", &bt)] {
        let mono = count_lines_with(lines, "CLOCK_MONOTONIC");
        // Two raw reads per sample (three tries' worth would mean libc's
        // read entered the kernel too).
        assert!(
            mono >= 2 * CLOCK_SAMPLES && mono.is_multiple_of(2) && mono < 3 * CLOCK_SAMPLES,
            "{who}: {mono} CLOCK_MONOTONIC system calls for {CLOCK_SAMPLES} samples of (raw, libc, raw)"
        );
    }
});

// ---------------------------------------------------------------------------
// Blocked signals
// ---------------------------------------------------------------------------

fn sigmask(v: &str, mode: &str, opts: &[&str]) {
    let prog = guest("sl_sigmask", v);
    compare_opts(&Cmd::new(&[prog.as_str(), mode]), opts);
}

per_variant!(sigmask_delivered_at_unblock, |v: &str| sigmask(v, "unblock", &[]));
per_variant!(sigmask_delivered_at_unblock_no_inline, |v: &str| sigmask(v, "unblock", &["--no-inline"]));
per_variant!(sigmask_delivery_order, |v: &str| sigmask(v, "order", &[]));
per_variant!(bad_pointers_to_calls_served_in_process_fail_with_efault, |v: &str| sigmask(v, "efault", &[]));
per_variant!(sigmask_lazy_blocking_observed_as_native, |v: &str| sigmask(v, "lazy", &[]));
per_variant!(sigmask_lazy_blocking_observed_as_native_with_stats, |v: &str| sigmask(
    v,
    "lazy",
    &["--stats", "-o", "/dev/null"]
));
per_variant!(sigmask_realtime_signals_queue, |v: &str| sigmask(v, "rt-queue", &[]));
per_variant!(sigmask_changed_during_a_signal_storm, |v: &str| sigmask(v, "storm", &[]));
per_variant!(signal_handler_runs_during_blocking_syscall, |v: &str| sigmask(v, "blocked-syscall", &[]));

// pthread_cancel is a signal libc reserves (glibc 32, musl 33): it must reach
// the guest's handler, also for threads blocked in a system call.
per_variant!(pthread_cancel_blocked_threads, |v: &str| {
    compare(&Cmd::new(&[guest("sl_cancel", v)]));
});

// ---------------------------------------------------------------------------
// --deny and --policy: compared with strace's fault injection natively
// ---------------------------------------------------------------------------

/// `strace -f -o /dev/null -e trace=CALLS -e inject=... ` as the native prefix.
fn inject_prefix(injections: &[&str]) -> Vec<String> {
    let mut v = vec![strace(), "-f".into(), "-o".into(), "/dev/null".into()];
    let calls: Vec<&str> = injections.iter().map(|i| i.split(':').next().unwrap_or(i)).collect();
    v.push("-e".into());
    v.push(format!("trace={}", calls.join(",")));
    for i in injections {
        v.push("-e".into());
        v.push(format!("inject={i}"));
    }
    v
}

fn deny_cmd(v: &str) -> Cmd {
    Cmd::new(&[guest("sl_deny", v).as_str(), "/etc/passwd"])
}

fn compare_deny(cmd: &Cmd, injections: &[&str], opts: &[&str]) -> Outcome {
    let prefix = inject_prefix(injections);
    let prefix: Vec<&str> = prefix.iter().map(String::as_str).collect();
    compare_prefixed(cmd, &prefix, opts)
}

// The dynamic variant's ld.so cannot open libc either: both runs fail the
// same way (exit 127 and ld.so's message).
per_variant!(deny_openat_eacces, |v: &str| {
    let cmd = deny_cmd(v).any_status();
    let native = compare_deny(&cmd, &["openat:error=EACCES"], &["--deny", "openat=EACCES"]);
    if v != "dyn" {
        let text = native.stdout_str();
        let msg = std::io::Error::from_raw_os_error(libc::EACCES).to_string();
        let msg = msg.split(" (os error").next().unwrap_or(&msg);
        assert!(text.contains(&format!("openat: failed, errno {} ({msg})\n", libc::EACCES)), "{text}");
        assert!(text.contains("getpid: ok\n") && text.contains("done\n"), "{text}");
    } else {
        assert_eq!(native.status, Status::Exited(127), "{}", native.stderr_str());
    }
});

per_variant!(deny_default_errno_and_numbers, |v: &str| {
    // --deny NAME fails with EPERM; errnos by name or number; the in-process
    // calls (getuid, gettid) are denied too. (The dynamic variant's ld.so
    // gives up when close fails: both runs must fail alike.)
    let cmd = if v == "dyn" { deny_cmd(v).any_status() } else { deny_cmd(v) };
    compare_deny(
        &cmd,
        &["getuid:error=EPERM", "gettid:error=EINVAL", "close:error=ENOTTY", "getppid:error=ESRCH"],
        &["--deny", "getuid", "--deny", "gettid=22", "--deny=close=enotty", "--deny", "getppid=ESRCH"],
    );
});

per_variant!(deny_getpid_kill, |v: &str| {
    let cmd = deny_cmd(v).expect(Status::signal(libc::SIGSYS));
    let native = compare_deny(&cmd, &["getpid:signal=SIGSYS"], &["--deny", "getpid=kill"]);
    assert_eq!(native.status, Status::signal(31));
});

per_variant!(deny_gettid_kill, |v: &str| {
    let cmd = deny_cmd(v).expect(Status::signal(libc::SIGSYS));
    compare_deny(&cmd, &["gettid:signal=SIGSYS"], &["--deny", "gettid=kill"]);
});

// A denied call traced: the line strace prints for an injected error,
// without its " (INJECTED)" mark.
per_variant!(deny_traced_like_strace_injection, |v: &str| {
    let st = strace();
    let dir = temp_dir("deny_trace");
    let nf = dir.join("strace.out");
    let bf = dir.join("bt.out");
    let (nf_s, bf_s) = (nf.to_string_lossy().into_owned(), bf.to_string_lossy().into_owned());
    let cmd = deny_cmd(v).any_status();
    let native = run_native_prefixed(
        &[
            st.as_str(),
            "-f",
            "-o",
            nf_s.as_str(),
            "-e",
            "trace=openat,getuid",
            "-e",
            "inject=openat:error=EACCES",
            "-e",
            "inject=getuid:error=EPERM",
        ],
        &cmd,
    );
    let bt = run_bt_opts(
        &["--deny", "openat=EACCES", "--deny", "getuid", "--trace=openat,getuid", "-o", bf_s.as_str()],
        &cmd,
        T,
    );
    assert_eq!((bt.status, bt.stdout_str()), (native.status, native.stdout_str()), "denied run vs strace injection");
    let n: Vec<String> = normalized_trace(&read_text(&nf).replace(" (INJECTED)", ""));
    let b = normalized_trace(&read_text(&bf));
    assert!(n.iter().any(|l| l.contains("EACCES")), "strace shows no injected error: test broken\n{}", n.join("\n"));
    assert_same_lines("denied calls", &n, &b);
});

const POLICY: &str = "\
# bt-run policy for the sl_deny guest
deny openat=EACCES        # no files

deny getpid=kill
allow getpid              # later rules win: getpid is allowed after all
   deny gettid
deny close=EBADF
deny close=ENOTTY         # the later rule wins
allow write
";

per_variant!(policy_file, |v: &str| {
    let dir = temp_dir("policy");
    let pf = dir.join("policy.txt");
    std::fs::write(&pf, POLICY).unwrap_or_else(|e| panic!("cannot write {}: {e}", pf.display()));
    let pf_s = pf.to_string_lossy().into_owned();
    let cmd = deny_cmd(v).any_status();
    let native = compare_deny(
        &cmd,
        &["openat:error=EACCES", "gettid:error=EPERM", "close:error=ENOTTY"],
        &["--policy", pf_s.as_str()],
    );
    if v != "dyn" {
        let text = native.stdout_str();
        assert!(text.contains("getpid: ok\n") && text.contains("write: ok\n") && text.contains("done\n"), "{text}");
    }
});

// The rules stay in force in programs the guest starts with execve.
#[test]
fn deny_survives_execve() {
    let prog = guest("sl_deny", "gcc");
    let cmd = Cmd::new(&[BUSYBOX, "sh", "-c", &format!("{prog} /etc/passwd; echo sh: $?")]);
    compare_deny(
        &cmd,
        &["openat:error=EACCES", "getuid:error=EPERM"],
        &["--deny", "openat=EACCES", "--deny", "getuid"],
    );
}

/// One line on stderr starting with "bt-run:", exit 2, and the program did
/// not run (it would print to stdout).
fn usage_error(args: &[&str], what: &str) {
    let out = run_bt_args(args, T);
    let err = out.stderr_str();
    assert!(!out.timed_out, "{what}: timed out");
    assert!(!err.contains("panicked"), "{what}: bt-run panicked:\n{err}");
    assert_eq!(out.status, Status::Exited(2), "{what}: exit status; stderr {err:?}");
    assert!(
        err.starts_with("bt-run:") && err.ends_with('\n') && err.matches('\n').count() == 1,
        "{what}: want one line starting with \"bt-run:\", got {err:?}"
    );
    assert!(out.stdout.is_empty(), "{what}: the program ran: {:?}", out.stdout_str());
}

#[test]
fn bad_deny_specs_are_usage_errors() {
    let prog = guest("sl_deny", "gcc");
    for spec in [
        "nosuchcall",
        "openat=EBOGUS",
        "openat=",
        "=EPERM",
        "",
        "openat=0",
        "openat=4096",
        "openat=-1",
        "openat=kil",
        "openat=EACCES=1",
        "9999",
    ] {
        usage_error(&["--deny", spec, prog.as_str(), "/etc/passwd"], &format!("--deny {spec:?}"));
        usage_error(&[&format!("--deny={spec}"), prog.as_str(), "/etc/passwd"], &format!("--deny={spec}"));
    }
}

#[test]
fn bad_policy_files_are_usage_errors() {
    let prog = guest("sl_deny", "gcc");
    let dir = temp_dir("bad_policy");
    usage_error(&["--policy", "/nonexistent-bt-run/policy", prog.as_str(), "x"], "missing policy file");
    usage_error(&["--deny"], "--deny without a value");
    usage_error(&["--policy"], "--policy without a value");
    // (policy text, the line the message must name)
    let bad = [
        ("deny openat\nblock read\n", 2),
        ("# c\n\ndeny nosuch=EPERM\n", 3),
        ("allow read=EPERM\n", 1),
        ("deny\n", 1),
        ("# ok\ndeny openat=EACCES\ndeny openat=EWHAT  # bad errno\n", 3),
    ];
    for (i, (text, line)) in bad.iter().enumerate() {
        let pf = dir.join(format!("p{i}"));
        std::fs::write(&pf, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", pf.display()));
        let pf_s = pf.to_string_lossy().into_owned();
        let what = format!("policy file {text:?}");
        usage_error(&["--policy", pf_s.as_str(), prog.as_str(), "x"], &what);
        let out = run_bt_args(&["--policy", pf_s.as_str(), prog.as_str(), "x"], T);
        assert!(
            out.stderr_str().contains(&format!("line {line}")),
            "{what}: the message should name line {line}: {:?}",
            out.stderr_str()
        );
    }
}

// ---------------------------------------------------------------------------
// --no-inline changes nothing the program can see
// ---------------------------------------------------------------------------

per_variant!(no_inline_same_output, |v: &str| {
    let counts = guest("sl_counts", v);
    compare_opts(&Cmd::new(&[counts.as_str(), "100", "100", "10", "10", "10", "10"]), &["--no-inline"]);
    compare_opts(&deny_cmd(v), &["--no-inline"]);
    let dir = temp_dir("noinline");
    compare_opts(&Cmd::new(&[guest("sl_trace", v).as_str()]).cwd(dir.path()), &["--no-inline"]);
});

// ---------------------------------------------------------------------------
// int $0x80: i386 system calls from 64-bit code go through the layer
// ---------------------------------------------------------------------------

/// sl_int80 MODE ARGS natively and under `bt-run OPTS`, each in a fresh
/// directory: same status, stdout, stderr, and the same files left behind
/// (name and contents).
fn int80_compare(v: &str, args: &[&str], opts: &[&str], status: Status) -> Outcome {
    let prog = guest("sl_int80", v);
    let mut cmd = Cmd::new(&[prog.as_str()]).expect(status);
    for a in args {
        cmd = cmd.arg(a);
    }
    let nd = temp_dir("int80-native");
    let bd = temp_dir("int80-bt");
    let native = run_native(&cmd.clone().cwd(nd.path()));
    assert!(
        !native.timed_out && native.status == status,
        "native sl_int80 {args:?}: {} (a test or environment problem)\n{}",
        native.status,
        native.stderr_str()
    );
    let bt = run_bt_opts(opts, &cmd.cwd(bd.path()), T);
    assert!(!bt.timed_out, "bt-run {opts:?} sl_int80 {args:?} timed out");
    let mut problems: Vec<String> =
        [diff("stdout", &native.stdout, &bt.stdout), diff("stderr", &native.stderr, &bt.stderr)]
            .into_iter()
            .flatten()
            .collect();
    if bt.status != native.status {
        problems.push(format!("status: native {}, bt-run {}", native.status, bt.status));
    }
    assert!(
        problems.is_empty(),
        "bt-run {opts:?} sl_int80.{v} {args:?} differs from native:\n  {}",
        problems.join("\n  ")
    );
    let files = |d: &Path| -> BTreeMap<String, Vec<u8>> {
        std::fs::read_dir(d)
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", d.display()))
            .map(|e| e.expect("directory entry").path())
            .map(|p| {
                (
                    p.file_name().unwrap_or_default().to_string_lossy().into_owned(),
                    std::fs::read(&p).unwrap_or_default(),
                )
            })
            .collect()
    };
    assert_eq!(files(bd.path()), files(nd.path()), "files written by sl_int80.{v} {args:?} under bt-run vs native");
    native
}

// The tour: write/open/openat/read/close with 32-bit arguments, bad and
// truncated pointers, unknown numbers, every register but rax kept (and
// the flags), brk, mmap2 below 4 GiB with code run from it (an int $0x80
// inside generated code), the old mmap, sigprocmask, sgetmask/ssetmask and
// sigaltstack on the virtual signal state, a blocking read interrupted by
// a handler (restarted with SA_RESTART, EINTR without), fork + i386 exit +
// waitpid, execve with 32-bit argv/envp, exit_group.
per_variant!(int80_calls_as_native, |v: &str| {
    let native = int80_compare(v, &["calls"], &[], Status::Exited(7));
    let text = native.stdout_str();
    for want in [
        "write: 22\n",
        "write from a bad pointer: -1 EFAULT (rax 0xfffffffffffffff2)\n",
        "getpid: other registers kept, flags before 0x203 after 0x203\n",
        "code in it: getpid yes\n",
        "SIGUSR1 blocked: yes\n",
        "child: exited 3\n",
        "exec child: argc 3, argv[2] \"second arg\", I80_ENV=from i386 execve\n",
        "x86-64 sigaltstack sees it: yes\n",
        "same as stat64 of the program: yes\n",
        "statx ino is the program's: yes\n",
        "open /proc/self/exe opens the program: yes\n",
        "readlink /proc/self/exe is the program: yes\n",
        "read interrupted by a handler with SA_RESTART: 1\n",
        "read interrupted by a handler without SA_RESTART: -1 EINTR (rax 0xfffffffffffffffc)\n",
    ] {
        assert!(text.contains(want), "the native run did not print {want:?} (test broken?):\n{text}");
    }
    // The same with every x86-64 call in the runtime too (statistics on).
    int80_compare(v, &["calls"], &["--stats", "-o", "/dev/null"], Status::Exited(7));
});

// `sysenter` in 64-bit code: natively #UD on this (AMD) machine, SIGILL at
// the instruction; bt-run never executes it and must raise the same.
per_variant!(sysenter_as_native, |v: &str| {
    let native = int80_compare(v, &["sysenter"], &[], Status::Exited(0));
    assert!(native.stdout_str().contains("rip at sysenter: yes"), "{}", native.stdout_str());
});

/// getpid's value is a pid: same shape, different number.
fn strip_pids(v: Vec<String>) -> Vec<String> {
    v.into_iter().map(|l| if l.starts_with("getpid() = ") { "getpid() = N".into() } else { l }).collect()
}

// strace decodes int $0x80 calls with its i386 table (and prints no
// personality marker by default): bt-run's lines are the same.
per_variant!(int80_trace_matches_strace, |v: &str| {
    let prog = guest("sl_int80", v);
    let (native, bt) = traces(&prog, &["trace"], "getpid,write,open,close,mmap2,munmap,exit_group");
    for want in [
        "open(\"i80-trace.tmp\", O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0600) = 3",
        "mmap2(NULL, 8192, PROT_READ|PROT_WRITE",
        "syscall_0xX(0, 0, 0, 0, 0, 0) = -1 ENOSYS",
    ] {
        assert!(
            native.iter().any(|l| l.starts_with(want)),
            "strace shows no {want:?}: the test is broken\n{}",
            native.join("\n")
        );
    }
    assert_same_lines("i386 calls", &strip_pids(native), &strip_pids(bt));
});

/// `strace -f -c` of a native run, per personality: (x86-64, i386) maps of
/// syscall -> (calls, errors).
type StraceCounts = BTreeMap<String, (u64, u64)>;
fn strace_summary_per_abi(cmd: &Cmd) -> (StraceCounts, StraceCounts) {
    let dir = temp_dir("strace_c_abi");
    let file = dir.join("summary");
    let st = strace();
    let file_s = file.to_string_lossy().into_owned();
    let out = run_native_prefixed(&[st.as_str(), "-f", "-c", "-o", file_s.as_str()], cmd);
    ok(&out, "native run under strace -c");
    let text = read_text(&file);
    let (mut x86_64, mut i386) = (BTreeMap::new(), BTreeMap::new());
    let mut in_i386 = false;
    for line in text.lines() {
        if line.starts_with("System call usage summary for 32 bit mode") {
            in_i386 = true;
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 5 || f[0].starts_with('-') || f[0] == "%" || f.last() == Some(&"total") {
            continue;
        }
        let calls = f[3].parse::<u64>().unwrap_or_else(|_| panic!("cannot read strace -c line {line:?}"));
        let errors = if f.len() == 6 {
            f[4].parse::<u64>().unwrap_or_else(|_| panic!("cannot read strace -c line {line:?}"))
        } else {
            0
        };
        let m = if in_i386 { &mut i386 } else { &mut x86_64 };
        m.insert(f[f.len() - 1].to_string(), (calls, errors));
    }
    (x86_64, i386)
}

// --stats counts int $0x80 calls by their i386 names, apart from the
// x86-64 ones (as strace -c does), with their failures; the numbers equal
// the calls made and strace -c's 32-bit table of the native run.
per_variant!(int80_stats_count_i386_calls, |v: &str| {
    let n = 40u64;
    let dir = temp_dir("int80_stats");
    let file = dir.join("stats.json");
    let file_s = file.to_string_lossy().into_owned();
    let prog = guest("sl_int80", v);
    let cmd = Cmd::new(&[prog.as_str(), "count", &n.to_string()]);
    let out = run_bt_opts(&["--stats=json", "-o", file_s.as_str()], &cmd, T);
    ok(&out, "sl_int80 count under bt-run --stats=json");
    let objs = stats_objects(&file);
    assert_eq!(objs.len(), 1, "{}", read_text(&file));
    let calls = objs[0].get("syscalls_i386").unwrap_or_else(|| panic!("no \"syscalls_i386\" in {}", read_text(&file)));
    let i386 = syscall_counts(&Json::Obj(vec![("syscalls".to_string(), calls.clone())]));
    let errs = |pairs: &[(&str, u64)]| pairs.iter().map(|(e, k)| (e.to_string(), *k)).collect::<BTreeMap<_, _>>();
    let want: BTreeMap<String, Counts> = [
        ("getpid", Counts { inline: 0, forwarded: n, failed: errs(&[]) }),
        ("write", Counts { inline: 0, forwarded: 2 * n, failed: errs(&[("EFAULT", n)]) }),
        ("close", Counts { inline: 0, forwarded: n, failed: errs(&[("EBADF", n)]) }),
        ("open", Counts { inline: 0, forwarded: 1, failed: errs(&[("ENOENT", 1)]) }),
    ]
    .into_iter()
    .map(|(k, c)| (k.to_string(), c))
    .collect();
    assert_eq!(i386, want, "i386 calls counted by --stats=json");
    // The x86-64 table has none of them under these names' i386 numbers:
    // getpid was only ever made with int $0x80.
    let x86_64 = syscall_counts(&objs[0]);
    assert_eq!(get(&x86_64, "getpid").total(), 0, "no x86-64 getpid was made: {x86_64:?}");
    let (_, native) = strace_summary_per_abi(&cmd);
    for (name, c) in &i386 {
        assert_eq!(
            native.get(name).copied(),
            Some((c.total(), c.failures())),
            "{name}: bt-run's i386 (calls, failures) vs strace -c's 32-bit table"
        );
    }
    // The text table has them in a section of their own.
    let out = run_bt_opts(&["--stats", "-o", file_s.as_str()], &cmd, T);
    ok(&out, "sl_int80 count under bt-run --stats");
    let text = read_text(&file);
    let (_, i386_part) =
        text.split_once("i386 system calls (int $0x80):").unwrap_or_else(|| panic!("no i386 section:\n{text}"));
    let row = i386_part.lines().map(|l| l.split_whitespace().collect::<Vec<_>>()).find(|f| f.first() == Some(&"write"));
    assert_eq!(row.map(|r| r[1..5].join(" ")), Some(format!("{} 0 {} {n}", 2 * n, 2 * n)), "{text}");
});

fn int80_deny_cmd(v: &str, dir: &Path) -> Cmd {
    Cmd::new(&[guest("sl_int80", v).as_str(), "deny"]).cwd(dir).any_status()
}

// --deny open --deny openat: the i386 open and openat are denied too (a
// name selects the call in each table, as strace's fault injection does,
// which is the native twin): they fail with EPERM and create nothing.
per_variant!(int80_deny_open, |v: &str| {
    let nd = temp_dir("int80_deny_native");
    let bd = temp_dir("int80_deny_bt");
    let prefix = inject_prefix(&["open:error=EPERM", "openat:error=EPERM"]);
    let prefix: Vec<&str> = prefix.iter().map(String::as_str).collect();
    let native = run_native_prefixed(&prefix, &int80_deny_cmd(v, nd.path()));
    let bt = run_bt_opts(&["--deny", "open", "--deny", "openat"], &int80_deny_cmd(v, bd.path()), T);
    assert_eq!(
        (bt.status, bt.stdout_str(), bt.stderr_str()),
        (native.status, native.stdout_str(), native.stderr_str()),
        "denied run vs strace injection"
    );
    if v != "dyn" {
        let text = native.stdout_str();
        for want in ["i386 open: -1 EPERM", "i386 openat: -1 EPERM", "i80-denied.tmp exists: no", "mmap2: mapped"] {
            assert!(text.contains(want), "{want:?} missing:\n{text}");
        }
    } else {
        // ld.so cannot open libc either: both runs end the same way.
        assert_eq!(native.status, Status::Exited(127), "{}", native.stderr_str());
    }
    for d in [&nd, &bd] {
        assert!(!d.join("i80-denied.tmp").exists(), "a denied open created the file in {}", d.path().display());
    }
    // Without the policy the file is created (the denial did it).
    let free = temp_dir("int80_deny_free");
    let out = run_bt(&int80_deny_cmd(v, free.path()), T);
    ok(&out, "sl_int80 deny without a policy");
    assert!(free.join("i80-denied.tmp").exists() && out.stdout_str().contains("i386 open: 3"), "{}", out.stdout_str());
});

// A name only the i386 table has, denied with kill: SIGSYS at the call.
per_variant!(int80_deny_kill, |v: &str| {
    let dir = temp_dir("int80_kill");
    let cmd = int80_deny_cmd(v, dir.path()).expect(Status::signal(libc::SIGSYS));
    let native = compare_deny(&cmd, &["mmap2:signal=SIGSYS"], &["--deny", "mmap2=kill"]);
    assert!(native.stdout_str().ends_with("calling mmap2\n"), "{}", native.stdout_str());
});

// A denied i386 call traced: strace's line for the injected fault.
#[test]
fn int80_deny_traced_like_strace_injection() {
    for v in ["gcc", "pie"] {
        let st = strace();
        let dir = temp_dir("int80_deny_trace");
        let nf = dir.join("strace.out");
        let bf = dir.join("bt.out");
        let (nf_s, bf_s) = (nf.to_string_lossy().into_owned(), bf.to_string_lossy().into_owned());
        let nd = temp_dir("int80_deny_trace_native");
        let bd = temp_dir("int80_deny_trace_bt");
        let native = run_native_prefixed(
            &[st.as_str(), "-f", "-o", nf_s.as_str(), "-e", "trace=open,openat", "-e", "inject=open:error=EACCES"],
            &int80_deny_cmd(v, nd.path()),
        );
        let bt = run_bt_opts(
            &["--deny", "open=EACCES", "--trace=open,openat", "-o", bf_s.as_str()],
            &int80_deny_cmd(v, bd.path()),
            T,
        );
        assert_eq!(
            (bt.status, bt.stdout_str()),
            (native.status, native.stdout_str()),
            "denied run vs strace injection"
        );
        let n = normalized_trace(&read_text(&nf).replace(" (INJECTED)", ""));
        let b = normalized_trace(&read_text(&bf));
        assert!(
            n.iter().any(|l| l == "open(\"i80-denied.tmp\", O_WRONLY|O_CREAT, 0600) = -1 EACCES (Permission denied)"),
            "strace: test broken\n{}",
            n.join("\n")
        );
        assert_same_lines("denied i386 open", &n, &b);
    }
}

// An i386 rt_sigaction that installs a handler would need ia32 signal
// frames, which bt-run does not build: it fails with ENOSYS and changes
// nothing (natively the handler is installed). A documented difference,
// checked so that such a call never reaches the kernel, where it would
// replace bt-run's own host handler.
#[test]
fn int80_signal_handlers_are_refused() {
    for v in ["gcc", "pie"] {
        let cmd = Cmd::new(&[guest("sl_int80", v).as_str(), "sigaction"]);
        let native = run_native(&cmd);
        ok(&native, "sl_int80 sigaction natively");
        assert!(native.stdout_str().starts_with("i386 rt_sigaction(SIGUSR1, handler): 0\n"), "{}", native.stdout_str());
        let out = run_bt(&cmd, T);
        ok(&out, "sl_int80 sigaction under bt-run");
        assert_eq!(
            out.stdout_str(),
            "i386 rt_sigaction(SIGUSR1, handler): -1 ENOSYS (rax 0xffffffffffffffda)\nx86-64 sigaction sees: SIG_DFL\n"
        );
    }
}

// ---------------------------------------------------------------------------
// strace running under bt-run, tracing programs that run under bt-run too

/// `strace -ff` of `argv` (natively, or with strace itself under bt-run):
/// each traced process's lines, normalized for what differs between any two
/// runs (addresses, pids, sizes, random bytes, CPU times), sorted by
/// process. bt-run's one documented difference, rseq answered ENOSYS, is
/// checked and then left out.
fn strace_ff(argv: &[&str], under_bt: bool) -> Vec<String> {
    let dir = temp_dir("strace_ff");
    let prefix = dir.path().join("t").to_string_lossy().into_owned();
    let st = strace();
    let mut full = vec![st.as_str(), "-ff", "-o", prefix.as_str()];
    full.extend_from_slice(argv);
    let cmd = Cmd::new(&full);
    let out = if under_bt { run_bt(&cmd, Duration::from_secs(120)) } else { run_native(&cmd) };
    ok(&out, if under_bt { "strace under bt-run" } else { "strace" });
    let mut per_process = Vec::new();
    for e in std::fs::read_dir(dir.path()).expect("strace output directory") {
        let text = read_text(&e.expect("directory entry").path());
        let mut lines = Vec::new();
        for line in text.lines() {
            if line.starts_with("rseq(") {
                if under_bt {
                    assert!(line.ends_with("= -1 ENOSYS (Function not implemented)"), "rseq under bt-run: {line}");
                }
                continue;
            }
            lines.push(normalize_ff_line(line));
        }
        sigchld_after_wait(&mut lines);
        per_process.push(lines.join("\n"));
    }
    per_process.sort();
    per_process
}

/// A child's SIGCHLD can reach a parent blocked in wait4 before the call
/// returns (it is interrupted and restarted) or just after, natively as
/// under bt-run, depending on timing: write both orders as the second, with
/// rt_sigreturn's result (the interrupted call's, or wait4's) left out.
fn sigchld_after_wait(lines: &mut [String]) {
    for i in 0..lines.len().saturating_sub(2) {
        let is_sigchld = lines[i].starts_with("--- SIGCHLD ");
        if is_sigchld && lines[i + 1].starts_with("rt_sigreturn(") && lines[i + 2].starts_with("wait4(") {
            lines[i..i + 3].rotate_left(2);
        }
    }
    for i in 1..lines.len() {
        if lines[i].starts_with("rt_sigreturn(")
            && lines[i - 1].starts_with("--- SIGCHLD ")
            && let Some(p) = lines[i].rfind(" = ")
        {
            lines[i].truncate(p);
        }
    }
}

fn normalize_ff_line(line: &str) -> String {
    let mut out = String::new();
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"0x") {
            let j = (i + 2..b.len()).find(|&j| !b[j].is_ascii_hexdigit()).unwrap_or(b.len());
            out.push_str("ADDR");
            i = j;
        } else if b[i].is_ascii_digit() {
            let j = (i..b.len()).find(|&j| !b[j].is_ascii_digit()).unwrap_or(b.len());
            out.push_str(if j - i >= 3 { "N" } else { &line[i..j] });
            i = j;
        } else {
            let c = line[i..].chars().next().unwrap_or(' ');
            out.push(c);
            i += c.len_utf8();
        }
    }
    // strace pads the call to put its result in column 40; addresses of
    // other lengths (under isolation the program lies elsewhere) move it.
    if let Some(p) = out.rfind(" = ") {
        out = format!("{} = {}", out[..p].trim_end(), &out[p + 3..]);
    }
    // Random bytes, and CPU times (bt-run's start-up is counted there).
    if let Some(p) = out.find("getrandom(\"")
        && let Some(q) = out[p + 11..].find('"')
    {
        out.replace_range(p + 11..p + 11 + q, "R");
    }
    if let Some(p) = out.find(", si_utime=")
        && let Some(q) = out[p..].find('}')
    {
        out.replace_range(p..p + q, ", si_times");
    }
    out
}

/// strace -ff of programs that load libraries, fork, exec and wait, and
/// take a signal, run natively and with strace under bt-run: the same calls
/// with the same arguments and results, process by process.
#[test]
fn strace_under_bt_run_sees_the_native_calls() {
    let sh = require_tool("sh", "dash").to_string_lossy().into_owned();
    for argv in
        [vec!["/bin/echo", "hi"], vec![sh.as_str(), "-c", "echo a; /bin/true; trap 'echo b' USR2; kill -USR2 $$"]]
    {
        let native = strace_ff(&argv, false);
        let bt = strace_ff(&argv, true);
        assert!(native.iter().any(|p| p.lines().count() > 20), "native strace saw the calls: {native:?}");
        assert_eq!(native.len(), bt.len(), "processes traced for {argv:?}");
        for (n, b) in native.iter().zip(&bt) {
            if n != b {
                let d: Vec<String> = n
                    .lines()
                    .zip(b.lines())
                    .filter(|(x, y)| x != y)
                    .take(10)
                    .map(|(x, y)| format!("native: {x}\nbt-run: {y}"))
                    .collect();
                panic!(
                    "strace of {argv:?} differs ({} vs {} lines):\n{}",
                    n.lines().count(),
                    b.lines().count(),
                    d.join("\n")
                );
            }
        }
    }
}

/// gdb running a program under bt-run (itself under bt-run): a pending
/// breakpoint in a shared library resolves when the library loads, the
/// stop, backtrace, registers, `next`, `stepi` and `continue` as natively
/// (addresses aside: bt-run places the program elsewhere).
#[test]
fn gdb_under_bt_run_debugs_as_natively() {
    let gdb = require_tool("gdb", "gdb").to_string_lossy().into_owned();
    let dir = temp_dir("gdb");
    let cmds = dir.path().join("cmds");
    std::fs::write(
        &cmds,
        "set debuginfod enabled off\nset breakpoint pending on\nset pagination off\nbreak write\nrun\nbt 1\n\
         info registers rdi rdx\nnext\nstepi\ncontinue\n",
    )
    .expect("gdb commands");
    let cmds = cmds.to_string_lossy().into_owned();
    let cmd = Cmd::new(&[gdb.as_str(), "-nx", "-batch", "-x", cmds.as_str(), "--args", "/bin/echo", "hi"])
        .env("DEBUGINFOD_URLS", "");
    let native = run_native(&cmd);
    let bt = run_bt(&cmd, Duration::from_secs(120));
    ok(&native, "gdb");
    ok(&bt, "gdb under bt-run");
    let norm = |o: &Outcome| -> String {
        let text = format!("{}{}", o.stdout_str(), o.stderr_str());
        text.lines()
            .filter(|l| !l.contains("libthread_db") && !l.starts_with("[Thread debugging"))
            .map(normalize_ff_line)
            .collect::<Vec<_>>()
            .join("\n")
    };
    let (n, b) = (norm(&native), norm(&bt));
    assert!(n.contains("Breakpoint 1,") && n.contains("exited normally"), "native gdb:\n{n}");
    assert_eq!(n, b, "gdb's session under bt-run differs from the native one");
}

// write(2) on /dev/null answered in the gate (`sys::nullfds`): each result
// (counts, EFAULT for bad ranges, EBADF for read-only, O_PATH and closed
// descriptors, a number replaced by dup2, inherited across exec, left alone
// by a vfork child) as the kernel gives it natively.
per_variant!(null_writes_answered_as_the_kernel_does, |v: &str| {
    let out = compare(&Cmd::new(&[guest("sl_nullfd", v).as_str()]));
    let text = out.stdout_str();
    assert!(text.contains("O_WRONLY: 5 bytes") && text.contains("pipe got \"hello\""), "{text}");
    assert!(text.contains("inherited: 5 bytes"), "the exec'd child did not run: {text}");
});

per_variant!(zero_reads_answered_as_the_kernel_does, |v: &str| {
    let out = compare(&Cmd::new(&[guest("sl_zerofd", v).as_str()]));
    let text = out.stdout_str();
    assert!(text.contains("O_RDONLY: 100 bytes") && text.contains("pipe gave \"hello\""), "{text}");
    assert!(text.contains("inherited: 100 bytes"), "the exec'd child did not run: {text}");
    assert!(text.contains("changed code returns 7"), "{text}");
});

per_variant!(zero_reads_no_inline, |v: &str| {
    compare_opts(&Cmd::new(&[guest("sl_zerofd", v).as_str()]), &["--no-inline"]);
});

per_variant!(null_writes_no_inline, |v: &str| {
    compare_opts(&Cmd::new(&[guest("sl_nullfd", v).as_str()]), &["--no-inline"]);
});
