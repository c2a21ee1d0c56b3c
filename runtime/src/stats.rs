//! `--stats`: what the run cost, printed at exit (or before exec) as an
//! aligned table on stderr, to `-o FILE`, or as JSON.

use std::fmt::Write as _;
use std::io::Write as _;

use crate::dispatch::Process;

/// Render and write the report; errors writing it are reported, not fatal.
/// `fast_forwards`: the calling thread's gate count (other threads' counts
/// are added to the shared total when they exit).
pub fn report(p: &Process, fast_forwards: u64) {
    let sh = p.lock();
    let c = &sh.cache.stats;
    let s = &sh.stats;
    let rows: Vec<(&str, u64)> = vec![
        ("blocks translated", c.blocks),
        ("guest bytes translated", c.guest_bytes),
        ("cache bytes emitted", c.cache_bytes),
        ("links", c.links),
        ("cache flushes", c.flushes),
        ("indirect lookups inserted", c.ibl_inserts),
        ("dispatcher entries", s.dispatches),
        ("syscalls forwarded by the gate", sh.fast_forwards + fast_forwards),
        ("syscalls served by the runtime", s.slow_syscalls),
        ("signals delivered", s.signals_delivered),
        ("threads started", s.threads_started),
    ];
    let mut calls: Vec<(&str, u64)> = sh
        .syscall_counts
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(nr, n)| (syscall_inline::name(nr as u64).unwrap_or("?"), *n))
        .collect();
    calls.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut out = String::new();
    if p.opts.stats_json {
        out.push('{');
        for (i, (k, v)) in rows.iter().enumerate() {
            let _ = write!(out, "{}\"{}\":{}", if i > 0 { "," } else { "" }, k.replace(' ', "_"), v);
        }
        out.push_str(",\"runtime_syscalls\":{");
        for (i, (k, v)) in calls.iter().enumerate() {
            let _ = write!(out, "{}\"{}\":{}", if i > 0 { "," } else { "" }, k, v);
        }
        out.push_str("}}\n");
    } else {
        let _ = writeln!(out, "bt-run statistics (pid {})", std::process::id());
        let w = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
        for (k, v) in &rows {
            let _ = writeln!(out, "  {k:<w$}  {v:>12}");
        }
        if !calls.is_empty() {
            let _ = writeln!(out, "  runtime-served syscalls:");
            for (k, v) in &calls {
                let _ = writeln!(out, "    {k:<w$}{v:>12}", w = w - 2);
            }
        }
    }
    let res = match &p.opts.stats_file {
        Some(p) => std::fs::OpenOptions::new().create(true).append(true).open(p).and_then(|mut f| f.write_all(out.as_bytes())),
        None => std::io::stderr().write_all(out.as_bytes()),
    };
    if let Err(e) = res {
        eprintln!("bt-run: cannot write statistics: {e}");
    }
}
