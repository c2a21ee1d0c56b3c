//! `--stats`: what the run cost, printed at exit (or before exec) as an
//! aligned table on bt-run's stderr or in the `-o` file, or as one JSON
//! object per process image.

use std::fmt::Write as _;

use crate::dispatch::{Process, RunStats};
use translator::abi::SiteKind;

/// Render and write the report of the calling thread's process image: the
/// shared statistics, or `own` (a vfork child's). `forwarded`, `inline`:
/// the calling thread's gate counters, not yet added to the totals. The
/// cache counters are those of the cache the process image used (a vfork
/// child shares its parent's, a forked child starts from a copy).
/// `lookups`: the calling thread's indirect-branch lookups by kind, and
/// those of them that went on to the table.
pub fn report(p: &Process, own: Option<&RunStats>, forwarded: u64, inline: u64, lookups: [[u64; 3]; 2]) {
    let sh = p.lock();
    let c = &sh.cache.stats;
    let s = own.unwrap_or(&sh.stats);
    let mut rows: Vec<(String, u64)> = [
        ("blocks translated", c.blocks),
        ("guest bytes translated", c.guest_bytes),
        ("cache bytes emitted", c.cache_bytes),
        ("links", c.links),
        ("cache flushes", c.flushes),
        ("indirect lookups inserted", c.ibl_inserts),
        ("inline cache entries filled", c.ic_fills),
        ("inline caches re-armed", c.ic_rearms),
        ("jump tables translated", c.jump_tables),
        ("jump tables shared", c.jump_tables_shared),
        ("blocks revived unchanged", c.revived),
        ("dispatcher entries", s.dispatches),
        ("syscalls forwarded by the gate", s.fast_forwards + forwarded),
        ("syscalls answered by the gate", s.inline_served + inline),
        ("syscalls served by the runtime", s.syscalls.served),
        ("signals delivered", s.signals_delivered),
        ("threads started", s.threads_started),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    // Indirect branches by kind of site: lookups made by translated code,
    // how many the site's inline cache did not answer, and how many missed
    // the table too (each a dispatcher entry).
    for kind in SiteKind::ALL {
        let k = kind as usize;
        rows.push((format!("{} lookups", kind.label()), s.site_lookups[k] + lookups[0][k]));
        rows.push((format!("{} table lookups", kind.label()), s.site_table[k] + lookups[1][k]));
        rows.push((format!("{} misses", kind.label()), s.site_misses[k]));
    }
    let mut out = String::new();
    let key = |k: &str| k.replace(' ', "_");
    if p.opts.summary {
        s.syscalls.write_strace_summary(&mut out, p.opts.summary_only.as_ref());
    } else if p.opts.stats_json {
        let _ = write!(out, "{{\"pid\":{},\"program\":{:?}", std::process::id(), p.exe_path.display().to_string());
        for (k, v) in &rows {
            let _ = write!(out, ",\"{}\":{}", key(k), v);
        }
        s.syscalls.write_json(&mut out);
        out.push_str("}\n");
    } else {
        let _ = writeln!(out, "bt-run statistics: pid {} ({})", std::process::id(), p.exe_path.display());
        let w = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
        for (k, v) in &rows {
            let _ = writeln!(out, "  {k:<w$}  {v:>12}");
        }
        s.syscalls.write_text(&mut out);
    }
    drop(sh);
    crate::observe::emit(&out);
}
