//! The path of a guest system call that the gate sends to the runtime.
//!
//! The gate (emitted code in the runtime) forwards or answers the calls
//! its byte table lets it; every other call comes here, to
//! [`Observers::call`], which decides, in order:
//!
//! 1. the embedder's hook (rewrite the arguments, answer, or kill);
//! 2. the trace's entry half (`--trace`);
//! 3. the deny policy (`--deny`, `--policy`): an errno or SIGSYS;
//! 4. bt-run's own descriptors: a call naming one fails with EBADF, as if
//!    it were not open (the row's [`Fds`] rule);
//! 5. the call itself, made by the [`Host`] (the runtime) as the row's
//!    [`Disposition`] says: forwarded, answered in-process, or served by the
//!    runtime part the row's [`Service`] names;
//! 6. the hook's after half, the statistics ([`SyscallStats`]) and the
//!    trace's exit half; the result goes to the guest's rax.
//!
//! The runtime implements [`Host`]: how to make the call and where results
//! and trace lines go. It decides nothing else about the call.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use crate::args::Arg;
use crate::classes::TraceSet;
use crate::policy::{DenyAction, Policy};
use crate::table::{Fds, Syscall};
use crate::trace::{GuestMem, Saved};
use crate::{Abi, GATE_TABLE_LEN, Service};

/// A system call as an embedding hook sees it.
#[derive(Clone, Debug)]
pub struct SyscallEvent {
    pub pid: u32,
    pub tid: u32,
    /// Which table `nr` is in: `X86_64` for `syscall`, `I386` for
    /// `int $0x80`.
    pub abi: Abi,
    pub nr: u64,
    pub name: &'static str,
    /// rdi, rsi, rdx, r10, r8, r9 (i386: ebx, ecx, edx, esi, edi, ebp, their
    /// low 32 bits) — the hook may rewrite them.
    pub args: [u64; 6],
}

/// What a hook wants done with a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookAction {
    /// Carry on (with the possibly rewritten arguments).
    Continue,
    /// Do not perform the call; the guest sees this return value
    /// (a negative errno for a failure).
    Return(i64),
    /// Kill the guest with SIGSYS, as a seccomp kill would.
    Kill,
}

/// An embedder's view of every guest syscall (like a DynamoRIO client's
/// syscall events or zpoline's hook function). Called on the guest thread,
/// in bt-run's context, for every syscall once a hook is installed.
pub trait SyscallHook: Send + Sync {
    /// Before the call: observe, rewrite `ev.args`, or decide its result.
    fn before(&self, ev: &mut SyscallEvent) -> HookAction;
    /// After the call (not called for calls that do not return, like
    /// exit_group, nor for calls `before` answered): observe or rewrite the
    /// result.
    fn after(&self, _ev: &SyscallEvent, _ret: &mut i64) {}
}

/// Did making a call enter the kernel?
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Served {
    Inline,
    Kernel,
}

/// What the host's attempt at a call came to.
#[derive(Debug)]
pub enum Performed<E> {
    /// It returned this value.
    Done(i64, Served),
    /// A signal came first: the call was not made (the host put the guest
    /// back onto its `syscall`; it is made again after the handler).
    NotStarted,
    /// It ended the thread or the process.
    Exit(E),
}

/// What the layer needs from the runtime that embeds it.
pub trait Host {
    /// How the runtime's run ends (a thread's or process's exit, a death).
    type Exit;
    /// The calling thread's id (hook events, trace lines).
    fn tid(&self) -> u32;
    /// Guest memory, read with checks (trace decoding, path arguments).
    fn mem(&self) -> &dyn GuestMem;
    /// The lowest of bt-run's own descriptors (none of the guest's is at
    /// or above it unless bt-run's are).
    fn own_fd_floor(&self) -> i32;
    /// Is `fd` one of bt-run's own descriptors?
    fn is_own_fd(&self, fd: u64) -> bool;
    /// Make call `nr` of `abi` with arguments `a`, as its row says (or
    /// forward it, for a number the table does not know).
    fn perform(&mut self, abi: Abi, nr: u64, row: Option<&'static Syscall>, a: [u64; 6]) -> Performed<Self::Exit>;
    /// The run's end when the layer kills the guest with `sig`.
    fn killed(&self, sig: i32) -> Self::Exit;
    /// Run `f` on the statistics of the caller's process image, if
    /// `--stats` asked for them.
    fn count(&mut self, f: &mut dyn FnMut(&mut SyscallStats));
    /// Write one trace line where the user asked.
    fn write_trace(&mut self, line: &str);
    /// Give the guest the call's result (its rax).
    fn set_result(&mut self, ret: i64);
}

/// Observation and control settings of a run: what is traced, denied and
/// hooked.
#[derive(Clone, Default)]
pub struct Observers {
    pub trace: Option<TraceSet>,
    pub policy: Option<Arc<Policy>>,
    pub hook: Option<Arc<dyn SyscallHook>>,
    /// Time each call the runtime makes (`-c`'s seconds column, `-T`).
    pub timed: bool,
    /// strace's `-T`: end each trace line with the call's time, `<S.UUUUUU>`.
    pub show_times: bool,
    /// strace's `-t`, `-tt`, `-ttt`, `-r`: start each trace line with the
    /// time of the call's entry.
    pub stamps: Stamps,
    /// How each line names the thread it is about, as strace's options
    /// for where lines go have it.
    pub prefix: PidPrefix,
    /// strace's `-e inject=`: the calls whose denials are faults injected
    /// as strace injects them, marked ` (INJECTED)` in trace lines.
    pub injected: Option<TraceSet>,
    /// strace's `-qq`: no `+++ exited with N +++` lines.
    pub quiet_exits: bool,
}

/// How a trace line starts with the thread it is about (strace's
/// `printleader`, strace -f being what bt-run always does).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PidPrefix {
    /// On stderr: `[pid  1234] `, the id right-aligned in five columns.
    #[default]
    Bracketed,
    /// In a `-o` file: `1234  `, left-aligned in five columns.
    Plain,
    /// `-ff`: none, each thread has a file of its own.
    None,
}

impl PidPrefix {
    /// The prefix for thread `tid`.
    pub fn of(self, tid: u32) -> String {
        match self {
            PidPrefix::Bracketed => format!("[pid {tid:>5}] "),
            PidPrefix::Plain => format!("{tid:<5} "),
            PidPrefix::None => String::new(),
        }
    }
}

/// How a thread or process ended, for strace's last line about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// exit or exit_group with this status.
    Exited(i32),
    /// Death by a signal, with a core dump or not.
    Killed { sig: i32, core: bool },
}

/// How trace lines are stamped with the time of the call's entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Stamps {
    #[default]
    None,
    /// `-t`: local time of day, `HH:MM:SS`.
    Seconds,
    /// `-tt`: with microseconds, `HH:MM:SS.UUUUUU`.
    Micros,
    /// `-ttt`: seconds since the epoch, `S.UUUUUU`.
    Epoch,
    /// `-r`: since the previous call's entry (of any thread), `S.UUUUUU`.
    Relative,
}

/// The previous stamped entry's monotonic time, in µs (for `-r`).
static LAST_ENTRY_US: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Stamps {
    /// The stamp for a call entering now, with its trailing space.
    fn now(self) -> String {
        let clock = crate::raw::clock_us;
        let time_of_day = |s: i64| {
            let (h, m, s) = crate::raw::local_hms(s);
            format!("{h:02}:{m:02}:{s:02}")
        };
        match self {
            Stamps::None => String::new(),
            Stamps::Seconds => format!("{} ", time_of_day(clock(libc::CLOCK_REALTIME).0)),
            Stamps::Micros => {
                let (s, us) = clock(libc::CLOCK_REALTIME);
                format!("{}.{us:06} ", time_of_day(s))
            }
            Stamps::Epoch => {
                let (s, us) = clock(libc::CLOCK_REALTIME);
                format!("{s}.{us:06} ")
            }
            Stamps::Relative => {
                let (s, us) = clock(libc::CLOCK_MONOTONIC);
                let now = s as u64 * 1_000_000 + us as u64;
                let last = LAST_ENTRY_US.swap(now, std::sync::atomic::Ordering::Relaxed);
                let d = if last == 0 { 0 } else { now.saturating_sub(last) };
                format!("{:6}.{:06} ", d / 1_000_000, d % 1_000_000)
            }
        }
    }
}

impl std::fmt::Debug for Observers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observers")
            .field("trace", &self.trace.is_some())
            .field("policy", &self.policy.is_some())
            .field("hook", &self.hook.is_some())
            .finish()
    }
}

fn err(e: i32) -> i64 {
    -(e as i64)
}

impl Observers {
    pub fn traces(&self, nr: u64) -> bool {
        self.traces_in(Abi::X86_64, nr)
    }

    /// strace's last line for thread `tid`, which is ending:
    /// `+++ exited with 0 +++`, `+++ killed by SIGSEGV (core dumped) +++`.
    /// None when nothing is traced, or under `-qq`.
    pub fn end_line(&self, tid: u32, end: End) -> Option<String> {
        if self.trace.is_none() || self.quiet_exits {
            return None;
        }
        let what = match end {
            End::Exited(status) => format!("exited with {}", status & 0xff),
            End::Killed { sig, core } => format!(
                "killed by {}{}",
                crate::trace::xlat::signame(sig).unwrap_or_else(|| sig.to_string()),
                if core { " (core dumped)" } else { "" }
            ),
        };
        let pid = self.prefix.of(tid);
        Some(format!("{pid}{}+++ {what} +++\n", self.stamps.now()))
    }

    /// The trace line of a successful execve, `entry` being its first
    /// half as the old image formatted it, printed by the new image.
    pub fn exec_line(&self, tid: u32, entry: &str) -> Option<String> {
        self.trace.as_ref()?;
        let mut line = self.prefix.of(tid);
        line.push_str(&self.stamps.now());
        line.push_str(entry);
        line.push(')');
        crate::trace::push_result(&mut line, "0");
        line.push('\n');
        Some(line)
    }

    pub fn traces_in(&self, abi: Abi, nr: u64) -> bool {
        self.trace.as_ref().is_some_and(|t| t.contains_in(abi, nr))
    }

    pub fn deny(&self, nr: u64) -> Option<DenyAction> {
        self.deny_in(Abi::X86_64, nr)
    }

    pub fn deny_in(&self, abi: Abi, nr: u64) -> Option<DenyAction> {
        self.policy.as_ref().and_then(|p| p.action_in(abi, nr))
    }

    /// One call of `abi`'s table through the layer (see the module's
    /// documentation for the order of decisions). The guest is on the
    /// instruction after its `syscall` (or `int $0x80`). Some(exit) ends
    /// the thread or the run.
    pub fn call<H: Host>(&self, host: &mut H, abi: Abi, nr: u64, mut a: [u64; 6]) -> Option<H::Exit> {
        let row = abi.lookup(nr);
        let mut event = None;
        if let Some(hook) = &self.hook {
            let mut ev = SyscallEvent {
                pid: std::process::id(),
                tid: host.tid(),
                abi,
                nr,
                name: row.map_or("?", |r| r.name),
                args: a,
            };
            match hook.before(&mut ev) {
                HookAction::Continue => a = ev.args,
                HookAction::Return(v) => {
                    let call = Call {
                        abi,
                        nr,
                        row,
                        a,
                        entry: None,
                        saved: Saved::default(),
                        ns: 0,
                        show_time: self.show_times,
                        prefix: self.prefix,
                        injected: false,
                    };
                    return call.finish(host, Performed::Done(v, Served::Inline), false);
                }
                HookAction::Kill => return Some(host.killed(libc::SIGSYS)),
            }
            event = Some((hook, ev));
        }
        let entry =
            self.traces_in(abi, nr).then(|| self.stamps.now() + &crate::format_entry_in(abi, nr, &a, host.mem()));
        let saved =
            if entry.is_some() { crate::trace::saved_at_entry(abi, nr, &a, host.mem()) } else { Saved::default() };
        let mut call = Call {
            abi,
            nr,
            row,
            a,
            entry,
            saved,
            ns: 0,
            show_time: self.show_times,
            prefix: self.prefix,
            injected: false,
        };
        if let Some(action) = self.deny_in(abi, nr) {
            call.injected = self.injected.as_ref().is_some_and(|t| t.contains_in(abi, nr));
            return match action {
                // Traced as strace shows the faults it injects.
                DenyAction::Errno(e) => call.finish(host, Performed::Done(err(e), Served::Inline), true),
                DenyAction::Kill => {
                    call.trace(host, None, false);
                    Some(host.killed(libc::SIGSYS))
                }
            };
        }
        if row.is_some_and(|r| names_own_fd(host, r, &a)) {
            // As if bt-run's descriptor were not open.
            return call.finish(host, Performed::Done(err(libc::EBADF), Served::Inline), false);
        }
        let start = self.timed.then(std::time::Instant::now);
        let mut result = host.perform(abi, nr, row, a);
        if matches!(result, Performed::NotStarted) {
            return None;
        }
        call.ns = start.map_or(0, |t| t.elapsed().as_nanos() as u64);
        if let (Some((hook, ev)), Performed::Done(ret, _)) = (&event, &mut result) {
            hook.after(ev, ret);
        }
        call.finish(host, result, false)
    }
}

/// Does the call name one of bt-run's own descriptors (which the guest
/// must not be able to use)?
fn names_own_fd<H: Host>(host: &H, row: &Syscall, a: &[u64; 6]) -> bool {
    let floor = host.own_fd_floor();
    if a.iter().all(|&x| (x as u32 as i32) < floor) {
        return false;
    }
    match row.fds {
        Fds::SteppedAround => false,
        Fds::MappedFile => a[3] & libc::MAP_ANONYMOUS as u64 == 0 && host.is_own_fd(a[4]),
        Fds::Checked => {
            let mask = crate::fd_arg_mask(row);
            (0..row.args.len()).filter(|&i| mask & (1 << i) != 0 && host.is_own_fd(a[i])).any(|i| {
                // The kernel ignores the directory of an absolute path.
                let mut first = [0u8; 1];
                let absolute = row.args[i] == Arg::DirFd
                    && row.args.get(i + 1) == Some(&Arg::Path)
                    && host.mem().read(a[i + 1], &mut first).is_ok()
                    && first[0] == b'/';
                !absolute
            })
        }
    }
}

/// A call on its way through the layer.
struct Call {
    abi: Abi,
    nr: u64,
    row: Option<&'static Syscall>,
    a: [u64; 6],
    /// The trace line's entry half, when the call is traced.
    entry: Option<String>,
    /// In-out argument values at entry, for the trace line's second half.
    saved: Saved,
    /// Nanoseconds the call took to perform, when timed.
    ns: u64,
    /// End the trace line with `ns` (`-T`).
    show_time: bool,
    /// How the line names the thread (`Observers::prefix`).
    prefix: PidPrefix,
    /// A denial shown as strace's injected fault (`Observers::injected`).
    injected: bool,
}

impl Call {
    fn service(&self) -> Option<Service> {
        self.row.and_then(Syscall::service)
    }

    /// Count, trace and deliver the result (`denied`: an error returned
    /// instead of making the call).
    fn finish<H: Host>(self, host: &mut H, result: Performed<H::Exit>, denied: bool) -> Option<H::Exit> {
        match result {
            Performed::Done(ret, served) => {
                // A forked child comes back from its parent's call with 0:
                // the call is the parent's (counted and traced there), as
                // strace -f shows it.
                let forked_child = ret == 0 && served == Served::Kernel && self.service() == Some(Service::NewProcess);
                if !forked_child {
                    host.count(&mut |s| {
                        s.record(self.abi, self.nr, served, Some(ret));
                        s.add_time(self.abi, self.nr, self.ns);
                    });
                    self.trace(host, Some(ret), denied);
                }
                // A signal return restored every register itself.
                if self.service() != Some(Service::SignalReturn) {
                    host.set_result(ret);
                }
                None
            }
            Performed::NotStarted => None,
            Performed::Exit(exit) => {
                host.count(&mut |s| s.record(self.abi, self.nr, Served::Inline, None));
                self.trace(host, None, false);
                Some(exit)
            }
        }
    }

    /// Write the trace line of a call that returned `ret` (None: does not
    /// return, printed as `= ?`; `denied`: `ret` is the error a denied call
    /// failed with, shown even for calls that cannot fail, as strace shows
    /// an injected fault).
    fn trace<H: Host>(&self, host: &mut H, ret: Option<i64>, denied: bool) {
        let Some(entry) = &self.entry else { return };
        let (abi, nr, a, mem) = (self.abi, self.nr, &self.a, host.mem());
        let (tail, result) = match ret {
            Some(r) => {
                let (tail, mut result) =
                    crate::trace::format_exit_parts_in(abi, nr, a, r, denied && r < 0, self.saved, mem);
                if denied && self.injected {
                    result.push_str(" (INJECTED)");
                }
                (tail, result)
            }
            None => (")".to_string(), "?".to_string()),
        };
        // strace counts the columns from the start of the line, its
        // `[pid N] ` included.
        let mut line = self.prefix.of(host.tid());
        line.push_str(entry);
        line.push_str(&tail);
        crate::trace::push_result(&mut line, &result);
        if self.show_time && ret.is_some() {
            let _ = write!(line, " <{}.{:06}>", self.ns / 1_000_000_000, self.ns / 1000 % 1_000_000);
        }
        line.push('\n');
        host.write_trace(&line);
    }
}

/// Per-syscall counts for `--stats`.
#[derive(Clone, Debug, Default)]
pub struct CallStats {
    /// Answered without entering the kernel.
    pub inline: u64,
    /// Passed to the kernel.
    pub forwarded: u64,
    /// Calls that returned an error, by errno.
    pub failed: BTreeMap<i32, u64>,
    /// Calls that did not return (exit, exit_group, a successful execve).
    pub no_return: u64,
    /// Nanoseconds spent performing them, when timed (`Observers::timed`).
    pub ns: u64,
}

/// The layer's statistics of the calls that reached the runtime, per ABI
/// and call (the gate's own forwards and answers are counted by the
/// runtime, per thread, and shown beside them).
#[derive(Clone, Debug)]
pub struct SyscallStats {
    /// Calls that went through [`Observers::call`].
    pub served: u64,
    calls: [Vec<CallStats>; 2],
}

impl Default for SyscallStats {
    fn default() -> Self {
        SyscallStats { served: 0, calls: std::array::from_fn(|_| vec![CallStats::default(); GATE_TABLE_LEN]) }
    }
}

impl SyscallStats {
    /// The counts of `abi`'s calls, indexed by number.
    pub fn calls(&self, abi: Abi) -> &[CallStats] {
        &self.calls[abi.index()]
    }

    /// Count one call (`ret` None: it did not return).
    pub fn record(&mut self, abi: Abi, nr: u64, served: Served, ret: Option<i64>) {
        if ret.is_some() {
            self.served += 1;
        }
        let Some(c) = self.calls[abi.index()].get_mut(nr as usize) else { return };
        match served {
            Served::Inline => c.inline += 1,
            Served::Kernel => c.forwarded += 1,
        }
        if ret.is_none() {
            c.no_return += 1;
        }
        if let Some(r) = ret.filter(|r| (-4095..0).contains(r)) {
            *c.failed.entry(-r as i32).or_default() += 1;
        }
    }

    /// Add `ns` nanoseconds to the time of `abi`'s call `nr`.
    pub fn add_time(&mut self, abi: Abi, nr: u64, ns: u64) {
        if let Some(c) = self.calls[abi.index()].get_mut(nr as usize) {
            c.ns += ns;
        }
    }

    /// strace -c's table of the calls that returned (strace counts a call
    /// at its return): % time, seconds, usecs/call, calls, errors,
    /// syscall, by time spent and then calls, a table per ABI that has
    /// any, and a line with bt-run's split between calls answered
    /// in-process and forwarded to the kernel.
    /// `only`: the calls `-e trace=` selected, as strace -c counts only those.
    pub fn write_strace_summary(&self, out: &mut String, only: Option<&TraceSet>) {
        let rule = "------ ----------- ----------- --------- --------- ----------------";
        for abi in Abi::ALL {
            let made = self.calls(abi).iter().enumerate().filter(|(nr, c)| {
                c.inline + c.forwarded > c.no_return && only.is_none_or(|t| t.contains_in(abi, *nr as u64))
            });
            let (mut inline, mut forwarded) = (0, 0);
            let mut rows: Vec<(&str, u64, u64, u64)> = Vec::new();
            for (nr, c) in made {
                inline += c.inline - c.no_return;
                forwarded += c.forwarded;
                let name = abi.name(nr as u64).unwrap_or("?");
                rows.push((name, c.inline + c.forwarded - c.no_return, c.failed.values().sum(), c.ns));
            }
            if rows.is_empty() {
                continue;
            }
            if abi == Abi::I386 {
                out.push_str("System call usage summary for 32 bit mode:\n");
            }
            rows.sort_by(|a, b| b.3.cmp(&a.3).then(b.1.cmp(&a.1)).then(a.0.cmp(b.0)));
            let total_ns: u64 = rows.iter().map(|r| r.3).sum();
            let _ = writeln!(out, "% time     seconds  usecs/call     calls    errors syscall\n{rule}");
            let line = |out: &mut String, name: &str, calls: u64, errors: u64, ns: u64| {
                let pct = match total_ns {
                    _ if name == "total" => 100.0,
                    0 => 0.0,
                    t => 100.0 * ns as f64 / t as f64,
                };
                let errs = if errors == 0 { String::new() } else { errors.to_string() };
                let _ = writeln!(
                    out,
                    "{pct:6.2} {:11.6} {:11} {calls:9} {errs:>9} {name}",
                    ns as f64 / 1e9,
                    ns / 1000 / calls.max(1)
                );
            };
            for &(name, calls, errors, ns) in &rows {
                line(out, name, calls, errors, ns);
            }
            let _ = writeln!(out, "{rule}");
            let (calls, errors) = rows.iter().fold((0, 0), |(c, e), r| (c + r.1, e + r.2));
            line(out, "total", calls, errors, total_ns);
            let _ = writeln!(out, "bt-run: {inline} calls answered in-process, {forwarded} forwarded to the kernel");
        }
    }

    /// The calls of `abi` made at least once, with their names.
    fn made(&self, abi: Abi) -> Vec<(&'static str, &CallStats)> {
        self.calls(abi)
            .iter()
            .enumerate()
            .filter(|(_, c)| c.inline + c.forwarded > 0)
            .map(|(nr, c)| (abi.name(nr as u64).unwrap_or("?"), c))
            .collect()
    }

    /// The per-call tables of the text report (x86-64 calls, then the
    /// i386 ones, which strace -c also counts apart), busiest first.
    pub fn write_text(&self, out: &mut String) {
        for abi in Abi::ALL {
            let mut calls = self.made(abi);
            if calls.is_empty() {
                continue;
            }
            let title = if abi == Abi::I386 { "\n  i386 system calls (int $0x80):\n" } else { "\n" };
            let _ = writeln!(
                out,
                "{title}  {:<20} {:>10} {:>10} {:>10} {:>10}  errors",
                "syscall", "calls", "in-proc", "forwarded", "failed"
            );
            calls.sort_by(|a, b| (b.1.inline + b.1.forwarded).cmp(&(a.1.inline + a.1.forwarded)).then(a.0.cmp(b.0)));
            for (name, c) in calls {
                let failed: u64 = c.failed.values().sum();
                let errs: Vec<String> =
                    c.failed.iter().map(|(e, n)| format!("{}:{n}", crate::errno::name(*e).unwrap_or("?"))).collect();
                let _ = writeln!(
                    out,
                    "  {name:<20} {:>10} {:>10} {:>10} {:>10}  {}",
                    c.inline + c.forwarded,
                    c.inline,
                    c.forwarded,
                    failed,
                    errs.join(" ")
                );
            }
        }
    }

    /// The per-call members of the JSON report: `,"syscalls":{...}` and
    /// `,"syscalls_i386":{...}`.
    pub fn write_json(&self, out: &mut String) {
        for abi in Abi::ALL {
            let key = match abi {
                Abi::X86_64 => "syscalls".to_string(),
                _ => format!("syscalls_{}", abi.label()),
            };
            let _ = write!(out, ",\"{key}\":{{");
            for (i, (name, c)) in self.made(abi).iter().enumerate() {
                let _ = write!(
                    out,
                    "{}\"{name}\":{{\"inline\":{},\"forwarded\":{},\"failed\":{{",
                    if i > 0 { "," } else { "" },
                    c.inline,
                    c.forwarded
                );
                for (j, (e, n)) in c.failed.iter().enumerate() {
                    let _ = write!(
                        out,
                        "{}\"{}\":{n}",
                        if j > 0 { "," } else { "" },
                        crate::errno::name(*e).unwrap_or("?")
                    );
                }
                out.push_str("}}");
            }
            out.push('}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{PolicyRule, parse_deny};
    use crate::{Disposition, SYSCALLS, SYSCALLS_I386};

    const OWN_FD: u64 = 1000;

    /// A host that records what the layer asks of it.
    #[derive(Default)]
    struct Mock {
        performed: Vec<(Abi, u64, [u64; 6])>,
        result: Option<i64>,
        lines: Vec<String>,
        stats: SyscallStats,
        /// What `perform` answers: None for an exit.
        answer: Option<(i64, Served)>,
        not_started: bool,
    }

    impl GuestMem for Mock {
        fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), i32> {
            // One readable string, "/abs", at 0x1000.
            let s = b"/abs\0";
            let off = addr.checked_sub(0x1000).ok_or(libc::EFAULT)? as usize;
            let src = s.get(off..off + buf.len()).ok_or(libc::EFAULT)?;
            buf.copy_from_slice(src);
            Ok(())
        }
    }

    impl Host for Mock {
        type Exit = i32;
        fn tid(&self) -> u32 {
            7
        }
        fn mem(&self) -> &dyn GuestMem {
            self
        }
        fn own_fd_floor(&self) -> i32 {
            OWN_FD as i32
        }
        fn is_own_fd(&self, fd: u64) -> bool {
            fd == OWN_FD
        }
        fn perform(&mut self, abi: Abi, nr: u64, _row: Option<&'static Syscall>, a: [u64; 6]) -> Performed<i32> {
            self.performed.push((abi, nr, a));
            if self.not_started {
                return Performed::NotStarted;
            }
            match self.answer {
                Some((r, s)) => Performed::Done(r, s),
                None => Performed::Exit(99),
            }
        }
        fn killed(&self, sig: i32) -> i32 {
            -sig
        }
        fn count(&mut self, f: &mut dyn FnMut(&mut SyscallStats)) {
            f(&mut self.stats);
        }
        fn write_trace(&mut self, line: &str) {
            self.lines.push(line.to_string());
        }
        fn set_result(&mut self, ret: i64) {
            self.result = Some(ret);
        }
    }

    fn mock(answer: Option<(i64, Served)>) -> Mock {
        Mock { answer, ..Mock::default() }
    }

    fn nr(name: &str) -> u64 {
        SYSCALLS.iter().find(|s| s.name == name).map(|s| s.nr as u64).expect("a known call")
    }

    fn denying(spec: &str) -> Observers {
        let (call, action) = parse_deny(spec).expect("a valid rule");
        Observers { policy: Some(Arc::new(Policy::new(&[PolicyRule::Deny { call, action }]))), ..Default::default() }
    }

    #[test]
    fn a_plain_call_is_performed_counted_and_returned() {
        let mut h = mock(Some((5, Served::Kernel)));
        let obs = Observers::default();
        assert_eq!(obs.call(&mut h, Abi::X86_64, nr("read"), [3, 0, 5, 0, 0, 0]), None);
        assert_eq!(h.performed, vec![(Abi::X86_64, nr("read"), [3, 0, 5, 0, 0, 0])]);
        assert_eq!(h.result, Some(5));
        assert_eq!(h.stats.served, 1);
        assert_eq!(h.stats.calls(Abi::X86_64)[nr("read") as usize].forwarded, 1);
        assert!(h.lines.is_empty(), "not traced");
        // A failure is counted by its errno.
        let mut h = mock(Some((-(libc::ENOENT as i64), Served::Kernel)));
        obs.call(&mut h, Abi::X86_64, nr("openat"), [0; 6]);
        assert_eq!(h.stats.calls(Abi::X86_64)[nr("openat") as usize].failed.get(&libc::ENOENT), Some(&1));
    }

    #[test]
    fn a_denied_call_is_not_performed() {
        let mut h = mock(Some((0, Served::Kernel)));
        let obs = denying("unlink=EACCES");
        assert_eq!(obs.call(&mut h, Abi::X86_64, nr("unlink"), [0x1000, 0, 0, 0, 0, 0]), None);
        assert!(h.performed.is_empty());
        assert_eq!(h.result, Some(-(libc::EACCES as i64)));
        assert_eq!(h.stats.calls(Abi::X86_64)[nr("unlink") as usize].inline, 1);
        // The same rule denies the i386 call of that name (number 10).
        let mut h = mock(Some((0, Served::Kernel)));
        obs.call(&mut h, Abi::I386, 10, [0; 6]);
        assert!(h.performed.is_empty());
        // Kill: the run ends with SIGSYS and nothing is performed.
        let mut h = mock(Some((0, Served::Kernel)));
        assert_eq!(denying("getppid=kill").call(&mut h, Abi::X86_64, nr("getppid"), [0; 6]), Some(-libc::SIGSYS));
        assert!(h.performed.is_empty() && h.result.is_none());
    }

    #[test]
    fn a_traced_call_writes_one_line_with_both_halves() {
        let obs = Observers { trace: Some(TraceSet::all()), ..Default::default() };
        let mut h = mock(Some((0, Served::Kernel)));
        obs.call(&mut h, Abi::X86_64, nr("close"), [3, 0, 0, 0, 0, 0]);
        // The result in column 40, as strace aligns it.
        assert_eq!(h.lines, vec![format!("{:<40}= 0\n", "[pid     7] close(3)")]);
        // A call that does not return ends with `= ?`.
        let mut h = mock(None);
        assert_eq!(obs.call(&mut h, Abi::X86_64, nr("exit_group"), [1, 0, 0, 0, 0, 0]), Some(99));
        assert_eq!(h.lines, vec![format!("{:<40}= ?\n", "[pid     7] exit_group(1)")]);
        assert_eq!(h.stats.served, 0, "counted as made, not as returned");
        assert_eq!(h.stats.calls(Abi::X86_64)[nr("exit_group") as usize].inline, 1);
        // A denied call shows the error it was given, even one that cannot
        // fail, as strace shows a fault it injected.
        let obs = Observers { trace: Some(TraceSet::all()), ..denying("getuid") };
        let mut h = mock(Some((0, Served::Kernel)));
        obs.call(&mut h, Abi::X86_64, nr("getuid"), [0; 6]);
        assert_eq!(h.lines, vec![format!("{:<40}= -1 EPERM (Operation not permitted)\n", "[pid     7] getuid()")]);
        // A call whose text reaches the column: one space.
        let obs = Observers { trace: Some(TraceSet::all()), ..Default::default() };
        let mut h = mock(Some((0, Served::Kernel)));
        obs.call(&mut h, Abi::X86_64, nr("mmap"), [0, 4096, 3, 0x22, u64::MAX, 0]);
        let line = &h.lines[0];
        assert!(line.len() > 48 && line.ends_with(") = 0\n"), "{line:?}");
    }

    #[test]
    fn own_descriptors_fail_as_if_closed_unless_the_row_steps_around_them() {
        let obs = Observers::default();
        let ebadf = Some(-(libc::EBADF as i64));
        let mut h = mock(Some((0, Served::Kernel)));
        obs.call(&mut h, Abi::X86_64, nr("read"), [OWN_FD, 0, 0, 0, 0, 0]);
        assert!(h.performed.is_empty());
        assert_eq!(h.result, ebadf);
        // A large number that is not bt-run's goes through.
        let mut h = mock(Some((0, Served::Kernel)));
        obs.call(&mut h, Abi::X86_64, nr("read"), [OWN_FD + 1, 0, 0, 0, 0, 0]);
        assert_eq!(h.performed.len(), 1);
        // dup2 onto one is the runtime's to move.
        let mut h = mock(Some((0, Served::Kernel)));
        obs.call(&mut h, Abi::X86_64, nr("dup2"), [1, OWN_FD, 0, 0, 0, 0]);
        assert_eq!(h.performed.len(), 1);
        // The directory of an absolute path is ignored, as by the kernel.
        let mut h = mock(Some((0, Served::Kernel)));
        obs.call(&mut h, Abi::X86_64, nr("openat"), [OWN_FD, 0x1000, 0, 0, 0, 0]);
        assert_eq!(h.performed.len(), 1);
        let mut h = mock(Some((0, Served::Kernel)));
        obs.call(&mut h, Abi::X86_64, nr("openat"), [OWN_FD, 0x1001, 0, 0, 0, 0]);
        assert_eq!(h.result, ebadf, "relative path: the directory counts");
        // mmap: only a file mapping's descriptor counts.
        let anon = libc::MAP_ANONYMOUS as u64;
        let mut h = mock(Some((0, Served::Kernel)));
        obs.call(&mut h, Abi::X86_64, nr("mmap"), [0, 4096, 3, anon, OWN_FD, 0]);
        assert_eq!(h.performed.len(), 1);
        let mut h = mock(Some((0, Served::Kernel)));
        obs.call(&mut h, Abi::X86_64, nr("mmap"), [0, 4096, 3, 2, OWN_FD, 0]);
        assert_eq!(h.result, ebadf);
    }

    #[test]
    fn a_new_processes_child_and_a_signal_return_are_special() {
        let obs = Observers { trace: Some(TraceSet::all()), ..Default::default() };
        // The child's 0 from fork is not its call: neither counted nor traced.
        let mut h = mock(Some((0, Served::Kernel)));
        obs.call(&mut h, Abi::X86_64, nr("fork"), [0; 6]);
        assert!(h.lines.is_empty());
        assert_eq!(h.stats.served, 0);
        assert_eq!(h.result, Some(0));
        // rt_sigreturn set every register itself: rax is left alone.
        let mut h = mock(Some((42, Served::Inline)));
        obs.call(&mut h, Abi::X86_64, nr("rt_sigreturn"), [0; 6]);
        assert_eq!(h.result, None);
        // Not started: nothing more happens (the host rewound the guest).
        let mut h = Mock { not_started: true, ..mock(Some((0, Served::Kernel))) };
        assert_eq!(obs.call(&mut h, Abi::X86_64, nr("read"), [0; 6]), None);
        assert!(h.lines.is_empty() && h.result.is_none() && h.stats.served == 0);
    }

    struct Rewrite;
    impl SyscallHook for Rewrite {
        fn before(&self, ev: &mut SyscallEvent) -> HookAction {
            match ev.name {
                "getppid" => HookAction::Return(-1),
                "kill" => HookAction::Kill,
                _ => {
                    ev.args[0] = 9;
                    HookAction::Continue
                }
            }
        }
        fn after(&self, _ev: &SyscallEvent, ret: &mut i64) {
            *ret += 100;
        }
    }

    #[test]
    fn the_hook_comes_first_and_sees_the_result() {
        let obs = Observers { hook: Some(Arc::new(Rewrite)), ..denying("close") };
        let mut h = mock(Some((1, Served::Kernel)));
        obs.call(&mut h, Abi::X86_64, nr("read"), [3, 0, 0, 0, 0, 0]);
        assert_eq!(h.performed[0].2[0], 9, "rewritten arguments");
        assert_eq!(h.result, Some(101));
        let mut h = mock(Some((1, Served::Kernel)));
        obs.call(&mut h, Abi::X86_64, nr("getppid"), [0; 6]);
        assert!(h.performed.is_empty());
        assert_eq!(h.result, Some(-1));
        let mut h = mock(Some((1, Served::Kernel)));
        assert_eq!(obs.call(&mut h, Abi::X86_64, nr("kill"), [0; 6]), Some(-libc::SIGSYS));
        // The policy still applies to calls the hook lets through.
        let mut h = mock(Some((1, Served::Kernel)));
        obs.call(&mut h, Abi::X86_64, nr("close"), [3, 0, 0, 0, 0, 0]);
        assert_eq!(h.result, Some(-(libc::EPERM as i64)));
    }

    #[test]
    fn rows_say_how_calls_restart() {
        let row = |abi: Abi, name: &str| *abi.table().iter().find(|s| s.name == name).expect("a row");
        let args = [0u64; 6];
        for abi in Abi::ALL {
            assert!(row(abi, "read").restarts(&args), "{abi:?}");
            assert!(!row(abi, "nanosleep").restarts(&args), "{abi:?}");
            assert!(!row(abi, "ppoll").restarts(&args), "{abi:?}");
            let futex = row(abi, "futex");
            assert!(futex.restarts(&[0, 0, 0, 0, 0, 0]), "{abi:?}: an untimed wait restarts");
            assert!(!futex.restarts(&[0, 0, 0, 0x7000, 0, 0]), "{abi:?}: a timed one does not");
        }
        let ipc = row(Abi::I386, "ipc");
        assert!(!ipc.restarts(&[1, 0, 0, 0, 0, 0]), "SEMOP");
        assert!(!ipc.restarts(&[12, 0, 0, 0, 0, 0]), "MSGRCV");
        assert!(ipc.restarts(&[21, 0, 0, 0, 0, 0]), "SHMAT");
        // Every wait under a temporary mask is never restarted, in both tables.
        for s in SYSCALLS.iter().chain(SYSCALLS_I386) {
            if s.service() == Some(Service::MaskedWait) {
                assert!(!s.restarts(&args), "{}", s.name);
            }
        }
    }

    #[test]
    fn rows_name_their_service() {
        let x = |name: &str| SYSCALLS.iter().find(|s| s.name == name).expect("a row").disposition;
        assert_eq!(x("mmap"), Disposition::Runtime(Service::Memory));
        assert_eq!(x("rt_sigsuspend"), Disposition::Runtime(Service::MaskedWait));
        assert_eq!(x("rt_sigreturn"), Disposition::Runtime(Service::SignalReturn));
        assert_eq!(x("read"), Disposition::Forward);
        let tracer: Vec<&str> = SYSCALLS.iter().filter(|s| s.tracer_view).map(|s| s.name).collect();
        assert_eq!(tracer, ["pwrite64", "wait4", "waitid"]);
        // i386 signal handlers and returns are refused, not served.
        let i = |name: &str| SYSCALLS_I386.iter().find(|s| s.name == name).expect("a row").disposition;
        assert_eq!(i("rt_sigaction"), Disposition::Runtime(Service::Refused));
        assert_eq!(i("sigreturn"), Disposition::Runtime(Service::Refused));
        assert_eq!(i("sigsuspend"), Disposition::Runtime(Service::MaskedWait));
        // Every `why` of a runtime row says something.
        for s in SYSCALLS.iter().chain(SYSCALLS_I386) {
            if s.service().is_some() {
                assert!(!s.why.is_empty(), "{}", s.name);
            }
        }
    }

    #[test]
    fn statistics_render_both_tables() {
        let mut s = SyscallStats::default();
        s.record(Abi::X86_64, nr("read"), Served::Kernel, Some(3));
        s.record(Abi::X86_64, nr("read"), Served::Kernel, Some(-(libc::EINTR as i64)));
        s.record(Abi::I386, 20, Served::Inline, Some(1));
        let mut text = String::new();
        s.write_text(&mut text);
        assert!(text.contains("  read                          2          0          2          1  EINTR:1"), "{text}");
        assert!(text.contains("i386 system calls (int $0x80)") && text.contains("  getpid "), "{text}");
        let mut json = String::new();
        s.write_json(&mut json);
        assert_eq!(
            json,
            ",\"syscalls\":{\"read\":{\"inline\":0,\"forwarded\":2,\"failed\":{\"EINTR\":1}}},\
             \"syscalls_i386\":{\"getpid\":{\"inline\":1,\"forwarded\":0,\"failed\":{}}}"
        );
    }
}
