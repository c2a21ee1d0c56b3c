//! Process and thread creation: `clone`, `fork`, `vfork`.
//!
//! * A new guest thread (CLONE_VM|CLONE_THREAD) is a new host thread (made
//!   with the host's pthreads, so bt-run's own Rust code has proper TLS) that
//!   runs the dispatcher on a copy of the parent's guest context, with the
//!   kernel's CLONE_PARENT_SETTID / CHILD_SETTID / CHILD_CLEARTID / SETTLS
//!   semantics reproduced: the child writes its tid where asked before any
//!   guest code runs, and its clear-child-tid address is the guest's, so the
//!   kernel clears it and wakes futex waiters when the thread exits.
//! * fork-style clones copy the process; the child keeps translating with a
//!   private copy of the code cache (its pages are shared mappings).
//! * vfork (and CLONE_VM|CLONE_VFORK, as glibc's posix_spawn issues it)
//!   really shares memory: the child runs the dispatcher on a fresh host
//!   stack with its own guest context and its own copy of the signal
//!   dispositions, while the parent thread waits in the kernel until the
//!   child execs or exits. So a child's write into parent memory (how
//!   posix_spawn reports an exec failure) is seen by the parent, as natively.

use std::sync::mpsc;
use translator::GuestAddr;

use translator::abi::{GuestContext, reg};
use translator::context_box::ContextBox;

use crate::dispatch::{GuestExit, Shared, Thread};
use crate::sys;

const CLONE_VM: u64 = 0x100;
const CLONE_VFORK: u64 = 0x4000;
const CLONE_SETTLS: u64 = 0x80000;
const CLONE_PARENT_SETTID: u64 = 0x100000;
const CLONE_CHILD_CLEARTID: u64 = 0x200000;
const CLONE_CHILD_SETTID: u64 = 0x1000000;
const CLONE_THREAD: u64 = 0x10000;
const CLONE_SIGHAND: u64 = 0x800;

/// Host stack for a guest thread's dispatcher (guest code runs on the
/// guest's own stack).
const HOST_THREAD_STACK: usize = 512 * 1024;

use crate::sys::answers::Answers;
use crate::sys::gettid;

impl Thread {
    /// clone/fork/vfork as the guest asked.
    pub fn sys_clone(&mut self, flags: u64, stack: u64, ptid: u64, ctid: u64, tls: u64) -> i64 {
        if flags & CLONE_THREAD != 0 {
            if flags & (CLONE_VM | CLONE_SIGHAND) != (CLONE_VM | CLONE_SIGHAND) {
                return -(libc::EINVAL as i64);
            }
            return self.spawn_thread(flags, stack, ptid, ctid, tls);
        }
        if flags & CLONE_VFORK != 0 {
            return self.vfork(flags | CLONE_VM, stack, ptid, ctid, tls);
        }
        if flags & CLONE_VM != 0 {
            // Sharing memory without being a thread (other than vfork) is
            // not supported.
            return -(libc::EINVAL as i64);
        }
        self.fork(flags, stack, ptid, ctid, tls)
    }

    fn fork(&mut self, flags: u64, stack: u64, ptid: u64, ctid: u64, tls: u64) -> i64 {
        let mut sh = self.p.lock();
        // The cache pages are shared mappings: parent and child share what
        // is there copy-on-write (`CodeMemory::prepare_fork`).
        let snap = match sh.cache.snapshot_for_fork() {
            Ok(s) => s,
            Err(e) => return -(e.raw_os_error().unwrap_or(libc::ENOMEM) as i64),
        };
        let r = if sh.threads > 1 {
            // Other host threads may hold host-libc locks (malloc): let the
            // host libc's fork take them, then do the guest's tid writes.
            // The child continues here with one thread and a copy of
            // memory; our lock guard is released in both after the call.
            let r = sys::process::fork();
            if r < 0 {
                r
            } else {
                let me = if r == 0 { gettid() } else { r as u64 };
                if flags & CLONE_PARENT_SETTID != 0 && r > 0 {
                    let _ = sys::write_guest(GuestAddr(ptid), &(me as u32).to_le_bytes());
                }
                if r == 0 {
                    if flags & CLONE_CHILD_SETTID != 0 {
                        let _ = sys::write_guest(GuestAddr(ctid), &(me as u32).to_le_bytes());
                    }
                    if flags & CLONE_CHILD_CLEARTID != 0 {
                        sys::set_tid_address(ctid);
                    }
                }
                r
            }
        } else {
            // Without a new stack for the host side: the child continues
            // in this very function with a copy of memory.
            sys::process::clone_copy(flags & !CLONE_SETTLS, ptid, ctid)
        };
        drop(sh);
        if r == 0 {
            // One thread now: no write of another thread is in flight.
            crate::own_fds::after_fork(flags & libc::CLONE_FILES as u64 != 0);
            let mut sh = self.p.lock();
            if let Err(e) = sh.cache.adopt_snapshot(snap) {
                crate::own_fds::diag(&format!("bt-run: cannot give the child its own code cache: {e}\n"));
                sys::die_by_signal(libc::SIGKILL);
            }
            sh.threads = 1;
            let Shared { perf_map, cache, .. } = &mut *sh;
            if let Some(m) = perf_map.as_mut() {
                m.after_fork(cache);
            }
            drop(sh);
            crate::signals::set_multi_threaded(false);
            // A new process: its own pid and tid for the in-process answers,
            // and statistics of its own from here on.
            crate::dispatch::refill_answers(&self.ctx);
            self.ctx.tid = gettid();
            self.ctx.fast_forwards = 0;
            self.ctx.inline_served = 0;
            self.with_stats(|s| *s = Default::default());
            if stack != 0 {
                self.ctx.gpr[reg::RSP] = stack;
            }
            if flags & CLONE_SETTLS != 0 {
                self.ctx.guest_fs = tls;
            }
        }
        r
    }

    fn vfork(&mut self, flags: u64, stack: u64, ptid: u64, ctid: u64, tls: u64) -> i64 {
        let mut ctx = self.child_context(flags, stack, tls);
        let child = Box::new(Thread {
            ctx: {
                ctx.gpr[reg::RAX] = 0;
                ctx
            },
            sig: self.sig.inherit(false),
            p: self.p,
            main: false,
            own_actions: Some(Box::new(self.with_actions(|a, _, _| a.clone()))),
            // A process image of its own: its statistics start empty.
            own_stats: Some(Box::default()),
            interrupted: None,
            exec_call: None,
        });
        // The kernel must not change the host FS of the child: the guest's
        // TLS goes in its context instead (done by child_context).
        let kflags = flags & !CLONE_SETTLS;
        let outer = crate::own_fds::vfork_parent_begin();
        // The child runs on a host stack of its own; this thread resumes
        // once the child has exec'd or exited (or never ran).
        let r = sys::process::vfork_on_stack(
            kflags,
            ptid,
            ctid,
            HOST_THREAD_STACK,
            Box::new(move || vfork_child_main(*child)),
        );
        crate::own_fds::vfork_parent_end(outer);
        r
    }

    /// A copy of this thread's context for a new child (thread or vfork).
    fn child_context(&self, flags: u64, stack: u64, tls: u64) -> ContextBox {
        let mut ctx = GuestContext::new_boxed();
        ctx.gpr = self.ctx.gpr;
        ctx.gpr[reg::RAX] = 0;
        if stack != 0 {
            ctx.gpr[reg::RSP] = stack;
        }
        ctx.rip = self.ctx.rip;
        ctx.rflags = self.ctx.rflags;
        ctx.guest_fs = if flags & CLONE_SETTLS != 0 { tls } else { self.ctx.guest_fs };
        ctx.guest_gs = self.ctx.guest_gs;
        ctx.xsave = self.ctx.xsave;
        self.p.prepare_context(&mut ctx);
        // Credentials are per thread in the kernel (glibc makes set*id
        // process-wide by running it in every thread): each thread answers
        // from its own copy, inherited from its creator.
        ctx.answers = Answers::of(&self.ctx).unwrap_or(self.p.answers).copy_leaked().address();
        ctx
    }

    fn spawn_thread(&mut self, flags: u64, stack: u64, ptid: u64, ctid: u64, tls: u64) -> i64 {
        // From now on every mask change is installed at once (see set_mask);
        // the creator's lazy blocks were installed before this call.
        crate::signals::set_multi_threaded(true);
        {
            // The last moment with one thread: lookups translated from now
            // on must tolerate slots replaced under them.
            let mut sh = self.p.lock();
            if sh.threads == 1 && self.own_actions.is_none() {
                sh.cache.go_threaded();
            }
        }
        let ctx = self.child_context(flags, stack, tls);
        let sig = self.sig.inherit(true);
        let p = self.p;
        let (tx, rx) = mpsc::channel::<u64>();
        let spawned = std::thread::Builder::new().stack_size(HOST_THREAD_STACK).spawn(move || {
            // The creator's guest mask, installed for real.
            sig.sync();
            // Before any guest code runs in this thread or, through the
            // parent's wait below, in its creator.
            reclaim_libc_signals(p);
            let tid = gettid();
            if flags & CLONE_PARENT_SETTID != 0 {
                let _ = sys::write_guest(GuestAddr(ptid), &(tid as u32).to_le_bytes());
            }
            if flags & CLONE_CHILD_SETTID != 0 {
                let _ = sys::write_guest(GuestAddr(ctid), &(tid as u32).to_le_bytes());
            }
            if flags & CLONE_CHILD_CLEARTID != 0 {
                // From now on the kernel clears the guest's word at thread
                // exit (this host thread never returns to its libc).
                sys::set_tid_address(ctid);
            }
            let _ = tx.send(tid);
            let mut t = Thread {
                ctx,
                sig,
                p,
                main: false,
                own_actions: None,
                own_stats: None,
                interrupted: None,
                exec_call: None,
            };
            t.ctx.tid = tid;
            let exit = t.run();
            t.finish(exit)
        });
        // The host libc's thread creation may have unblocked its internal
        // signals in this thread (see `reclaim_libc_signals`): the guest's
        // mask is as it was.
        self.sig.sync();
        if let Err(e) = spawned {
            return -(e.raw_os_error().unwrap_or(libc::EAGAIN) as i64);
        }
        self.p.lock().threads += 1;
        self.with_stats(|s| s.threads_started += 1);
        match rx.recv() {
            Ok(tid) => tid as i64,
            Err(_) => -(libc::EAGAIN as i64),
        }
    }

    /// strace's last line for this thread (when tracing).
    fn trace_end(&self, end: syscall_inline::layer::End) {
        if let Some(line) = self.p.opts.observers.end_line(gettid() as u32, end) {
            crate::own_fds::write_output(&line);
        }
    }

    /// End this thread (or the process) the way `exit` says.
    pub fn finish(&mut self, exit: GuestExit) -> ! {
        use syscall_inline::layer::End;
        match &exit {
            GuestExit::ThreadExited(code) | GuestExit::Exited(code) => self.trace_end(End::Exited(*code)),
            GuestExit::Killed(sig) => self.trace_end(End::Killed { sig: *sig, core: sys::dumps_core(*sig) }),
            GuestExit::Illegal { .. } => {
                self.trace_end(End::Killed { sig: libc::SIGILL, core: sys::dumps_core(libc::SIGILL) })
            }
            GuestExit::Fatal(_) => {}
        }
        match exit {
            GuestExit::ThreadExited(code) if self.own_actions.is_some() => {
                // A vfork child: a process of its own that shares our memory.
                self.flush_stats();
                sys::exit_group(code)
            }
            GuestExit::ThreadExited(code) => {
                let last = {
                    let mut sh = self.p.lock();
                    sh.threads -= 1;
                    sh.stats.fast_forwards += self.ctx.fast_forwards;
                    for k in 0..3 {
                        sh.stats.site_lookups[k] += std::mem::take(&mut self.ctx.site_lookups[k]);
                        sh.stats.site_table[k] += std::mem::take(&mut self.ctx.site_table[k]);
                    }
                    sh.stats.inline_served += self.ctx.inline_served;
                    self.ctx.fast_forwards = 0;
                    self.ctx.inline_served = 0;
                    sh.threads == 0
                };
                if last {
                    self.flush_stats();
                }
                crate::own_fds::thread_gone();
                // Its guest and host stacks are never touched again.
                sys::exit_thread(code)
            }
            GuestExit::Exited(code) => {
                self.flush_stats();
                sys::exit_group(code)
            }
            GuestExit::Killed(sig) => {
                self.flush_stats();
                sys::die_by_signal_info(sig, crate::ptrace_view::take_fatal_info(sig).as_ref())
            }
            GuestExit::Illegal { pc, bytes } => {
                self.flush_stats();
                let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
                crate::own_fds::diag(&format!(
                    "bt-run: {}: illegal instruction at {pc} (bytes: {})\n",
                    self.p.exe_path.display(),
                    hex.join(" ")
                ));
                sys::die_by_signal(libc::SIGILL)
            }
            GuestExit::Fatal(msg) => {
                crate::own_fds::diag(&format!("bt-run: {msg}\n"));
                sys::exit_group(125)
            }
        }
    }
}

/// The signals the host libc reserves for its own use (glibc: 32 for
/// thread cancellation, 33 for the set*id broadcast). Guest libcs use them
/// too (glibc alike, musl 33 for cancellation), so in a guest process they
/// are the guest's like any other signal.
const HOST_LIBC_SIGNALS: [i32; 2] = [32, 33];

/// Give the guest back its dispositions of the host libc's internal signals.
///
/// The host libc's first thread creation in a process installs its own
/// handler for signal 33 (glibc's `__nptl_setxid_sighandler`, process-wide)
/// and unblocks 32 and 33 in the creating thread. Left so, the next
/// `tgkill(33)` of a threaded guest's set*id runs the host libc's handler
/// on a guest thread instead of the guest's, which dereferences the host
/// libc's (null) pending set*id command and crashes. Every new host thread
/// calls this first (a forked child's libc may do it again); the creator
/// restores its own mask itself.
fn reclaim_libc_signals(p: &crate::dispatch::Process) {
    let mut sh = p.lock();
    for sig in HOST_LIBC_SIGNALS {
        sh.actions.install_host(sig);
    }
}

/// What a vfork child runs, on its own host stack (see
/// `sys::process::vfork_on_stack`).
fn vfork_child_main(mut t: Thread) -> ! {
    crate::own_fds::vfork_child_start();
    // It shares the parent's memory but is a process of its own: give it
    // its own answer table (leaked with the rest of the child).
    let own = Answers::of(&t.ctx).unwrap_or(t.p.answers).copy_leaked();
    own.refill();
    t.ctx.answers = own.address();
    t.ctx.tid = gettid();
    // The parent's guest mask, installed for real (the kernel gave the
    // child the parent's mask, with whatever blocks bt-run had added).
    t.sig.sync();
    let exit = t.run();
    t.finish(exit)
}
