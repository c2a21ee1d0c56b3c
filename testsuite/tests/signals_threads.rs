//! Signals and threads with native semantics: the `st_*` guest programs
//! (testsuite/guests/st_*.c, built by build.rs in every variant) and real
//! multi-threaded, signal-using programs (python3, `xz -T2`,
//! `sort --parallel=2`), each run natively and under bt-run and compared:
//! stdout, stderr and exit status or death by signal.
//!
//! The guests print only schedule-independent facts (final counts, "handled
//! by the target thread: true", the order the kernel runs handlers in, ...),
//! so any difference is a bt-run bug. What each guest checks is described at
//! the top of its source file. Debian packages needed beyond scripts/test.sh:
//! python3 (/usr/bin/python3), xz-utils (/usr/bin/xz), coreutils (sort).

use std::process::Command;
use std::time::Duration;
use testsuite::*;

/// Defines one test per variant, each calling `$body(variant)`.
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

/// The glibc variants only (for behaviour that musl does not have natively).
macro_rules! glibc_variants {
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

/// `guest(name, variant) ARGS...` expecting the native run to end with `status`.
fn st(name: &str, variant: &str, args: &[&str], status: Status) {
    let g = guest(name, variant);
    let mut argv = vec![g.as_str()];
    argv.extend_from_slice(args);
    compare(&Cmd::new(&argv).expect(status));
}

fn ok(name: &str, variant: &str, args: &[&str]) {
    st(name, variant, args, Status::Exited(0));
}

// ---- threads ----

per_variant!(hammer_16_threads_mutex_condvar_atomics, |v| ok("st_hammer", v, &[]));

// ---- signal storms (setitimer 1 ms, sigqueue) ----

per_variant!(storm_itimer_into_compute_loops, |v| ok("st_storm", v, &["compute"]));
per_variant!(storm_itimer_into_blocking_reads_eintr, |v| ok("st_storm", v, &["read"]));
per_variant!(storm_itimer_into_blocking_read_sa_restart, |v| ok("st_storm", v, &["restart"]));
per_variant!(storm_itimer_into_four_computing_threads, |v| ok("st_storm", v, &["threads"]));
per_variant!(storm_itimer_into_a_loop_of_indirect_jumps, |v| ok("st_storm", v, &["igoto"]));
per_variant!(storm_3000_queued_realtime_signals_none_lost, |v| ok("st_storm", v, &["rt"]));

// ---- synchronous faults ----

per_variant!(segv_100_faults_recovered_with_siglongjmp, |v| ok("st_faults", v, &["longjmp"]));
per_variant!(handler_skips_faulting_insn_and_edits_registers, |v| ok("st_faults", v, &["skip"]));
per_variant!(stack_overflow_recovered_on_sigaltstack, |v| ok("st_faults", v, &["altstack"]));
per_variant!(thread_stack_overflow_recovered_on_sigaltstack, |v| ok("st_faults", v, &["threadstack"]));
per_variant!(stack_overflow_at_a_call_push_keeps_every_register, |v| ok("st_faults", v, &["callpush"]));
per_variant!(int3_handler_sees_si_code_and_continues, |v| ok("st_faults", v, &["int3"]));
per_variant!(int3_without_handler_dies_of_sigtrap, |v| {
    st("st_faults", v, &["int3default"], Status::signal(libc::SIGTRAP))
});

// ---- signals at the edges (st_edges.c) ----

per_variant!(frame_extended_state_sized_as_the_kernels, |v| ok("st_edges", v, &["frame"]));
per_variant!(frame_on_unwritable_altstack_forces_sigsegv_to_handler, |v| ok("st_edges", v, &["unmapped"]));
per_variant!(frame_on_unwritable_altstack_with_sigsegv_ignored_dies, |v| {
    st("st_edges", v, &["ignored"], Status::signal(libc::SIGSEGV))
});
per_variant!(frame_on_minsigstksz_altstack, |v| ok("st_edges", v, &["small"]));
per_variant!(frame_overflowing_nested_altstack_dies_of_sigsegv, |v| {
    st("st_edges", v, &["nested"], Status::signal(libc::SIGSEGV))
});
per_variant!(fetch_fault_inside_an_instruction_reports_it, |v| ok("st_edges", v, &["crossing"]));
per_variant!(signal_pending_at_sigreturn_restarts_no_call, |v| ok("st_edges", v, &["eintr"]));

// ---- handlers reset to the default (st_reset.c) ----

per_variant!(reset_handler_default_kills_on_raise, |v| {
    st("st_reset", v, &["raise"], Status::signal(libc::SIGUSR1))
});
per_variant!(reset_handler_default_kills_in_blocking_read, |v| {
    st("st_reset", v, &["alarm"], Status::signal(libc::SIGALRM))
});
per_variant!(reset_handler_default_sigpipe_kills_the_writer, |v| {
    st("st_reset", v, &["pipe"], Status::signal(libc::SIGPIPE))
});
per_variant!(reset_handler_pending_kept_and_discarded_as_natively, |v| ok("st_reset", v, &["pending"]));
per_variant!(reset_handler_default_ignored_interrupts_nothing, |v| ok("st_reset", v, &["ignored"]));
per_variant!(reset_handler_ten_thousand_times, |v| ok("st_reset", v, &["loop"]));

// ---- SIGSYS from the program's own seccomp filter (st_sigsys.c) ----

per_variant!(seccomp_trap_handler_sees_call_and_sets_result, |v| ok("st_sigsys", v, &["handled"]));
per_variant!(seccomp_trap_while_sigsys_blocked_dies, |v| {
    st("st_sigsys", v, &["blocked"], Status::signal(libc::SIGSYS))
});
per_variant!(seccomp_trap_while_sigsys_ignored_dies, |v| {
    st("st_sigsys", v, &["ignored"], Status::signal(libc::SIGSYS))
});
per_variant!(sent_sigsys_stays_pending_while_blocked, |v| ok("st_sigsys", v, &["sent"]));

// ---- EFLAGS.TF: single-stepping (st_step.c) ----

per_variant!(single_step_popf_pushf_syscall_traps, |v| ok("st_step", v, &["basic"]));
per_variant!(single_step_through_branches_calls_loops, |v| ok("st_step", v, &["loop"]));
per_variant!(single_step_started_by_sigreturn, |v| ok("st_step", v, &["sigreturn"]));
per_variant!(single_step_handler_not_stepped, |v| ok("st_step", v, &["nested"]));
per_variant!(single_step_mov_ss_holds_the_trap_off, |v| ok("st_step", v, &["movss"]));
per_variant!(single_step_without_handler_dies_of_sigtrap, |v| {
    st("st_step", v, &["default"], Status::signal(libc::SIGTRAP))
});

// ---- vector state in the signal frame ----

// AVX-512 hosts only (it says so and checks nothing more elsewhere).
per_variant!(avx512_state_survives_syscalls_signals_threads, |v| {
    if !std::arch::is_x86_feature_detected!("avx512f") {
        println!("note: this host lacks avx512f: the AVX-512 state checks of st_avx512 did not run");
    }
    ok("st_avx512", v, &[])
});

per_variant!(vector_regs_in_ucontext_fault, |v| ok("st_vector", v, &["fault"]));
per_variant!(vector_regs_in_ucontext_fault_sse_only, |v| ok("st_vector", v, &["fault", "sse"]));
per_variant!(vector_regs_in_ucontext_tgkill, |v| ok("st_vector", v, &["raise"]));
per_variant!(vector_regs_in_ucontext_tgkill_sse_only, |v| ok("st_vector", v, &["raise", "sse"]));
per_variant!(vector_regs_survive_async_signals, |v| ok("st_vector", v, &["async"]));
per_variant!(vector_regs_survive_async_signals_sse_only, |v| ok("st_vector", v, &["async", "sse"]));

// ---- processes ----

per_variant!(sigchld_waitpid_stop_cont_default_actions, |v| ok("st_children", v, &[]));

// ---- signals and threads ----

per_variant!(pthread_kill_runs_handler_in_target_thread, |v| ok("st_threadsig", v, &["kill"]));
per_variant!(process_signal_goes_to_the_unblocking_thread, |v| ok("st_threadsig", v, &["mask"]));
per_variant!(posix_timers_thread_id_and_process_directed, |v| ok("st_threadsig", v, &["timer"]));
per_variant!(thread_segv_kills_whole_process, |v| { st("st_threadsig", v, &["fatal"], Status::signal(libc::SIGSEGV)) });
per_variant!(thread_sigterm_default_kills_whole_process, |v| {
    st("st_threadsig", v, &["fatalterm"], Status::signal(libc::SIGTERM))
});
per_variant!(thread_abort_kills_whole_process, |v| {
    st("st_threadsig", v, &["fatalabort"], Status::signal(libc::SIGABRT))
});

// ---- exit vs exit_group ----

per_variant!(main_thread_sys_exit_others_go_on, |v| st("st_exit", v, &["mainexit"], Status::Exited(7)));
// musl's pthread_join waits for pthread_exit's own bookkeeping, so a raw
// SYS_exit from a musl thread hangs natively: glibc variants only.
glibc_variants!(thread_sys_exit_wakes_pthread_join, |v| ok("st_exit", v, &["threadexit"]));
per_variant!(thread_exit_group_ends_process, |v| st("st_exit", v, &["exitgroup"], Status::Exited(3)));
per_variant!(thread_exit_runs_atexit_and_flushes, |v| st("st_exit", v, &["exitthread"], Status::Exited(4)));
per_variant!(process_ends_with_its_last_thread, |v| st("st_exit", v, &["lastexit"], Status::Exited(9)));

// ---- waiting for signals ----

per_variant!(unblocked_pending_signals_run_in_kernel_order, |v| ok("st_wait", v, &["order"]));
per_variant!(sigsuspend, |v| ok("st_wait", v, &["suspend"]));
per_variant!(sigwaitinfo_sigtimedwait_signalfd_siginfo, |v| ok("st_wait", v, &["waitinfo"]));
per_variant!(blocking_calls_eintr_with_and_without_sa_restart, |v| ok("st_wait", v, &["eintr"]));

// ---- sigaction flags, siginfo fields, default actions ----

per_variant!(sa_nodefer_resethand_siginfo_fields, |v| ok("st_flags", v, &[]));

// ---- real programs ----

const PYTHON: &str = "/usr/bin/python3";
const XZ: &str = "/usr/bin/xz";
const SORT: &str = "/usr/bin/sort";

fn need(path: &str, package: &str) {
    assert!(
        std::path::Path::new(path).is_file(),
        "{path} is needed by this test: install the Debian package `{package}` (apt-get install -y {package})"
    );
}

/// Threads, locks and a condition variable; signal.signal with os.kill, from
/// another thread, setitimer into time.sleep (resumed, PEP 475) and into a
/// busy loop (exception from the handler); sigwait / pthread_sigmask /
/// pthread_kill; subprocess (exit codes, a child killed by a signal, pipes).
const PY_SCRIPT: &str = r#"
import os, signal, subprocess, sys, threading, time

lock = threading.Lock()
total = 0
def work(k):
    global total
    for i in range(3000):
        with lock:
            total += k
ts = [threading.Thread(target=work, args=(k,)) for k in range(8)]
for t in ts: t.start()
for t in ts: t.join()
print("threads: total", total)

cond = threading.Condition()
items, consumed = [], []
def producer(base):
    for i in range(500):
        with cond:
            items.append(base + i)
            cond.notify()
def consumer():
    while True:
        with cond:
            while not items:
                cond.wait()
            x = items.pop(0)
        if x < 0:
            return
        consumed.append(x)
cs = [threading.Thread(target=consumer) for _ in range(3)]
ps = [threading.Thread(target=producer, args=(b,)) for b in (0, 10000, 20000)]
for t in cs + ps: t.start()
for t in ps: t.join()
with cond:
    items.extend([-1, -1, -1])
    cond.notify_all()
for t in cs: t.join()
print("condition: consumed", len(consumed), "sum", sum(consumed))

got = []
def handler(signum, frame):
    got.append(signal.Signals(signum).name)
signal.signal(signal.SIGUSR1, handler)
signal.signal(signal.SIGUSR2, handler)
os.kill(os.getpid(), signal.SIGUSR1)
print("os.kill:", got)
woken = threading.Event()
def sender():
    # until the main thread has woken up: a kill that lands before pause() would be missed
    while not woken.wait(0.05):
        os.kill(os.getpid(), signal.SIGUSR2)
t = threading.Thread(target=sender)
t.start()
signal.pause()
woken.set()
t.join()
print("from a thread, main in pause():", got[:2])
del got[1:]
main_id = threading.get_ident()
t = threading.Thread(target=lambda: signal.pthread_kill(main_id, signal.SIGUSR1))
t.start(); t.join()
time.sleep(0.01)
print("pthread_kill to main:", got)

ticks = []
signal.signal(signal.SIGALRM, lambda s, f: ticks.append(1))
signal.setitimer(signal.ITIMER_REAL, 0.01, 0.01)
t0 = time.monotonic()
time.sleep(0.2)
signal.setitimer(signal.ITIMER_REAL, 0)
print("sleep resumed after ticks:", len(ticks) > 0, "slept long enough:", time.monotonic() - t0 >= 0.2)

class Stop(Exception):
    pass
def raiser(s, f):
    raise Stop()
signal.signal(signal.SIGALRM, raiser)
signal.setitimer(signal.ITIMER_REAL, 0.05)
n = 0
try:
    while True:
        n += 1
except Stop:
    print("busy loop interrupted by the handler's exception:", n > 0)

signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
os.kill(os.getpid(), signal.SIGUSR1)
print("pending:", sorted(s.name for s in signal.sigpending()))
print("sigwait:", signal.Signals(signal.sigwait({signal.SIGUSR1})).name)
signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})

r = subprocess.run([sys.executable, "-c", "import sys; print(sum(range(100))); sys.exit(3)"],
                   capture_output=True, text=True)
print("python child:", r.stdout.strip(), r.returncode)
r = subprocess.run(["/bin/busybox", "sh", "-c", "echo from sh; kill -TERM $$"], capture_output=True, text=True)
print("sh killing itself:", r.stdout.strip(), r.returncode)
p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
p.send_signal(signal.SIGKILL)
print("SIGKILLed child:", p.wait())
p = subprocess.Popen(["/bin/busybox", "cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
out, _ = p.communicate(b"0123456789" * 20000)
print("cat through pipes:", len(out), p.returncode)
chld = []
signal.signal(signal.SIGCHLD, lambda s, f: chld.append(s))
r = subprocess.run(["/bin/busybox", "true"])
time.sleep(0.01)
print("SIGCHLD handler ran:", len(chld) > 0, "status", r.returncode)
"#;

#[test]
fn python_threads_signals_subprocess() {
    need(PYTHON, "python3");
    compare(&Cmd::new(&[PYTHON, "-c", PY_SCRIPT]).timeout(Duration::from_secs(300)));
}

/// Writes `input` (about 4 MB of text) into `dir`.
fn text_input(dir: &std::path::Path) {
    write_file(dir, "input", pseudo_random_text(71, 100_000));
}

#[test]
fn xz_two_threads_compress() {
    need(XZ, "xz-utils");
    let cmd = Cmd::new(&[XZ, "-T2", "-3", "--block-size=262144", "-c", "input"]).timeout(Duration::from_secs(300));
    compare_in_dirs(&cmd, text_input);
}

#[test]
fn xz_two_threads_decompress_and_list() {
    need(XZ, "xz-utils");
    let setup = |dir: &std::path::Path| {
        text_input(dir);
        // The compressed input is made natively, outside the comparison.
        let st = Command::new(XZ)
            .args(["-T2", "-3", "--block-size=262144", "-k", "input"])
            .current_dir(dir)
            .status()
            .unwrap_or_else(|e| panic!("cannot run {XZ}: {e}"));
        assert!(st.success(), "native xz failed to prepare input.xz");
    };
    let timeout = Duration::from_secs(300);
    compare_in_dirs(&Cmd::new(&[XZ, "-T2", "-dc", "input.xz"]).timeout(timeout), setup);
    compare_in_dirs(&Cmd::new(&[XZ, "-T2", "-t", "-v", "input.xz"]).timeout(timeout), setup);
    compare_in_dirs(&Cmd::new(&[XZ, "-l", "input.xz"]).timeout(timeout), setup);
}

#[test]
fn sort_parallel_two_threads() {
    need(SORT, "coreutils");
    let setup = |dir: &std::path::Path| write_file(dir, "input", pseudo_random_text(72, 200_000));
    let timeout = Duration::from_secs(300);
    // A small buffer makes sort spill to temporary files and merge them.
    compare_in_dirs(&Cmd::new(&[SORT, "--parallel=2", "-S", "1M", "-T", ".", "input"]).timeout(timeout), setup);
    compare_in_dirs(&Cmd::new(&[SORT, "--parallel=2", "-k2,2", "-n", "-s", "input"]).timeout(timeout), setup);
    compare_in_dirs(&Cmd::new(&[SORT, "--parallel=2", "-u", "-r", "input"]).timeout(timeout), setup);
}

// ---- a guest that traces its child (st_ptrace.c) ----

per_variant!(ptrace_harness_peek_poke_siginfo_exit_event, |v| ok("st_ptrace", v, &["harness"]));

/// Stepping a tracee that runs under bt-run, or emulating its system calls,
/// cannot be native (it would step or skip bt-run's own code): bt-run
/// refuses those requests with EIO, as the kernel refuses a request it does
/// not support, and everything else stays as natively.
fn ptrace_refused(v: &str) {
    let g = guest("st_ptrace", v);
    let cmd = Cmd::new(&[g.as_str(), "refused"]);
    let native = run_native(&cmd);
    let bt = run_bt(&cmd, Duration::from_secs(60));
    assert_eq!(native.status, Status::Exited(0), "native: {}", native.stderr_str());
    assert_eq!(bt.status, Status::Exited(0), "bt-run: {}", bt.stderr_str());
    let (n, b) = (native.stdout_str(), bt.stdout_str());
    for req in ["PTRACE_SYSEMU", "PTRACE_SINGLESTEP"] {
        assert!(n.contains(&format!("{req}: 0 errno 0")), "natively {req} succeeds:\n{n}");
        assert!(b.contains(&format!("{req}: -1 errno {}", libc::EIO)), "bt-run refuses {req} with EIO:\n{b}");
    }
    let rest = |s: &str| s.lines().filter(|l| !l.starts_with("PTRACE_")).map(String::from).collect::<Vec<_>>();
    assert_eq!(rest(&n), rest(&b), "everything else as natively");
    assert!(bt.stderr.is_empty(), "no message from bt-run: {}", bt.stderr_str());
}

per_variant!(ptrace_stepping_a_bt_run_tracee_is_refused_with_eio, ptrace_refused);

/// A tracer following its child's system calls (PTRACE_SYSCALL) sees the
/// same stops, numbers, arguments, results and registers as natively, and
/// its changes (the call's number, an argument, the result, skipping the
/// call) act on the child as natively: for calls the gate forwards, calls
/// the runtime serves and an `int $0x80` alike.
fn ptrace_syscalls(v: &str) {
    let g = guest("st_ptrace", v);
    let native = compare(&Cmd::new(&[g.as_str(), "syscalls"]).expect(Status::Exited(0)));
    let out = native.stdout_str();
    // What the comparison covers, natively: every stop's registers agree
    // with the kernel's description, and every change took effect.
    assert!(!out.contains("disagree") && !out.contains("unexpected"), "native run:\n{out}");
    assert!(
        out.contains("child: a is its pid 1, b 777, c 42, d 0, e 43, f 778, g -1, h is its parent 1"),
        "native run:\n{out}"
    );
    assert!(out.contains("entry i386 nr 64") && out.contains("child exited 3"), "native run:\n{out}");
}

per_variant!(ptrace_syscall_stops_registers_and_changes_as_natively, ptrace_syscalls);

/// A fault bt-run finds itself (a jump to a page without execute
/// permission) reaches a tracer as natively: a signal-delivery stop with
/// the guest's rip and the kernel's siginfo, which the tracer can suppress
/// (the jump faults again) or let through to the guest's handler.
fn ptrace_fault(v: &str) {
    let g = guest("st_ptrace", v);
    let native = compare(&Cmd::new(&[g.as_str(), "fault"]).expect(Status::Exited(0)));
    let out = native.stdout_str();
    assert!(
        out.contains("round 1: stopped 1 by Segmentation fault, rip at the page 1, si_code 2, si_addr at the page 1"),
        "native run:\n{out}"
    );
    assert!(out.contains("child: handler ran") && out.contains("child exited 1 status 5"), "native run:\n{out}");
}

per_variant!(ptrace_fault_stop_suppress_and_deliver_as_natively, ptrace_fault);

/// A debugger's breakpoint on a tracee under bt-run, in code bt-run has
/// already translated: each call stops at the int3 as natively, and
/// putting the byte back, moving rip back, single-stepping and putting the
/// int3 in again work as natively.
fn ptrace_breakpoint(v: &str) {
    let g = guest("st_ptrace", v);
    let native = compare(&Cmd::new(&[g.as_str(), "breakpoint"]).expect(Status::Exited(0)));
    let out = native.stdout_str();
    for hit in 0..3 {
        assert!(
            out.contains(&format!(
                "hit {hit}: Trace/breakpoint trap, rip just after the int3 1, si_code 0x80, argument {hit}"
            )),
            "native run:\n{out}"
        );
    }
    assert!(
        out.matches("stepped: Trace/breakpoint trap, one instruction on 1, si_code 2").count() == 3,
        "native run:\n{out}"
    );
    assert!(out.contains("child: sum 43") && out.contains("child exited 0"), "native run:\n{out}");
}

per_variant!(ptrace_breakpoints_and_single_steps_as_natively, ptrace_breakpoint);
