//! The system calls the runtime must own (the gate forwards all others):
//! memory calls that would give the guest host-executable pages or touch
//! bt-run's own memory, the break, FS/GS, signals, exec and process creation.

use std::ffi::{CString, OsStr};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use translator::GuestAddr;

use translator::abi::reg;

use crate::dispatch::{GuestExit, Thread};
use crate::memory::{GuestRange, PAGE, page_up};
use crate::observe::{CheckedMem, SyscallStats};
use crate::own_fds;
use crate::signals;
use crate::sys::answers::Answers;
use crate::sys::fds as sysfd;
use crate::sys::trampolines::SAFE_NOT_STARTED;
use crate::sys::{self, ARCH_GET_FS, ARCH_GET_GS, ARCH_SET_FS, ARCH_SET_GS};
use syscall_inline::trace::GuestMem;
use syscall_inline::{Abi, Disposition, Fds, Host, Performed, Service, Syscall};

pub(crate) fn err(e: i32) -> i64 {
    -(e as i64)
}

pub(crate) use syscall_inline::Served;

impl Thread {
    /// Serve the syscall described by the guest registers; the gate already
    /// set rcx/r11 as the CPU would. Some(exit) ends the run.
    pub fn syscall(&mut self) -> Option<GuestExit> {
        let nr = self.ctx.gpr[reg::RAX];
        let a = [
            self.ctx.gpr[reg::RDI],
            self.ctx.gpr[reg::RSI],
            self.ctx.gpr[reg::RDX],
            self.ctx.gpr[reg::R10],
            self.ctx.gpr[reg::R8],
            self.ctx.gpr[reg::R9],
        ];
        self.layer_viewed(Abi::X86_64, nr, a)
    }

    /// One call of `abi`'s table through the syscall layer
    /// (`syscall_inline::layer`: hook, trace, policy, the call, statistics).
    pub(crate) fn layer(&mut self, abi: Abi, nr: u64, a: [u64; 6]) -> Option<GuestExit> {
        let p = self.p;
        p.opts.observers.call(self, abi, nr, a)
    }

    /// Make x86-64 call `nr` as its row says. Err(exit) ends the run.
    fn serve(&mut self, nr: u64, row: Option<&'static Syscall>, a: [u64; 6]) -> Result<(i64, Served), GuestExit> {
        use Served::{Inline, Kernel};
        if let Some(r) = row {
            nullfds_before(r.name, &a);
        }
        let service = row.and_then(Syscall::service);
        if !matches!(service, Some(Service::SignalMask | Service::SignalReturn | Service::SignalAction))
            && self.sig.lagging()
        {
            // The guest blocked signals without the kernel knowing: anything
            // that enters the kernel may block or read the mask. Not
            // rt_sigaction and sigaltstack: the host action they install
            // neither blocks nor depends on the mask (what it flushes when
            // set to ignore, the kernel flushes whether blocked or not), and
            // a signal that arrives meanwhile is handed back as in any lag.
            self.sig.sync();
            self.refresh_gate();
        } else {
            // The gate's rt_sigprocmask switches to the table for a lagging
            // mask but never back (the runtime does, here).
            self.refresh_gate();
        }
        // The kernel (or bt-run for it) may write the call's outputs into
        // guest code pages bt-run keeps read-only: they become writable
        // first, as for a guest store (the gate sends a forwarded call that
        // met one, with EFAULT, here to be made again).
        if let Some(r) = row
            && crate::memory::ANY_GUARDED.load(std::sync::atomic::Ordering::Relaxed)
        {
            self.p.lock().unguard_outputs(r, &a);
        }
        // Forwarded exactly as the gate would (the call came here
        // only to be counted, traced or hooked, or its row says so).
        let forward = |a: [u64; 6]| sys::forward_guest_call(nr, a);
        if let Some(r) = self.isolation_mediates(nr, a) {
            return Ok((r, Kernel));
        }
        let Some(row) = row else { return Ok((forward(a), Kernel)) };
        let Some(service) = service else {
            // Forward and Inline rows: the gate's own work, done here.
            return Ok(match nr as i64 {
                _ if row.tracer_view && crate::ptrace_view::is_tracer() => match nr as i64 {
                    libc::SYS_wait4 => (crate::ptrace_view::wait4(a, &self.p.self_exe), Kernel),
                    libc::SYS_waitid => (crate::ptrace_view::waitid(a, &self.p.self_exe), Kernel),
                    _ => (crate::ptrace_view::pwrite64(a, &self.p.self_exe), Kernel),
                },
                // dup2 and dup3 onto one of bt-run's descriptors move it.
                _ if row.fds == Fds::SteppedAround => (self.dup_tracked(nr, a), Kernel),
                libc::SYS_dup => (self.note_null(forward(a)), Kernel),
                _ if self.p.opts.no_inline || row.disposition != Disposition::Inline => (forward(a), Kernel),
                libc::SYS_gettid => (self.ctx.tid as i64, Inline),
                _ => match Answers::of(&self.ctx) {
                    Some(t) => (t.get(nr) as i64, Inline),
                    None => (forward(a), Kernel),
                },
            });
        };
        Ok(match service {
            Service::Break => (self.sys_brk(a[0]), Inline),
            Service::ThreadArea => (self.sys_arch_prctl(a[0], a[1]), Inline),
            Service::Ptrace => (self.sys_ptrace(a), Kernel),
            Service::Memory => match nr as i64 {
                libc::SYS_mmap => (self.sys_mmap(a), Kernel),
                libc::SYS_munmap => (self.sys_munmap(a[0], a[1]), Kernel),
                libc::SYS_mremap => (self.sys_mremap(Abi::X86_64, a), Kernel),
                libc::SYS_shmat => (self.sys_shmat(a), Kernel),
                // mprotect, pkey_mprotect
                _ => (self.sys_mprotect(nr, a), Kernel),
            },
            Service::Exit if nr as i64 == libc::SYS_exit => return Err(GuestExit::ThreadExited(a[0] as i32)),
            Service::Exit => return Err(GuestExit::Exited(a[0] as i32)),
            Service::Refused => (err(libc::ENOSYS), Inline),
            Service::SignalAction if nr as i64 == libc::SYS_sigaltstack => {
                (self.sig.sigaltstack(a[0], a[1], self.ctx.gpr[reg::RSP]), Inline)
            }
            Service::SignalAction => (self.with_actions(|acts, _, _| acts.sigaction(a[0], a[1], a[2], a[3])), Inline),
            Service::SignalMask => (self.sys_sigprocmask(a), Inline),
            Service::MaskedWait => (self.masked_wait(a, forward), Kernel),
            Service::SignalReturn => match signals::sigreturn(&mut self.sig, self.p.xstate, &mut self.ctx) {
                Ok(()) => {
                    self.refresh_gate();
                    (self.ctx.gpr[reg::RAX] as i64, Inline)
                }
                Err(sig) => return Err(GuestExit::Killed(sig)),
            },
            Service::Exec if nr as i64 == libc::SYS_execveat => {
                self.exec_call = Some((Abi::X86_64, nr, a));
                (self.sys_execve(a[0], GuestAddr(a[1]), GuestAddr(a[2]), GuestAddr(a[3]), a[4], 8), Kernel)
            }
            Service::Exec => {
                self.exec_call = Some((Abi::X86_64, nr, a));
                (
                    self.sys_execve(libc::AT_FDCWD as u64, GuestAddr(a[0]), GuestAddr(a[1]), GuestAddr(a[2]), 0, 8),
                    Kernel,
                )
            }
            Service::NewProcess => match nr as i64 {
                libc::SYS_fork => (self.sys_clone(libc::SIGCHLD as u64, 0, 0, 0, 0), Kernel),
                libc::SYS_vfork => (self.sys_clone(0x4000 | 0x100 | libc::SIGCHLD as u64, 0, 0, 0, 0), Kernel),
                _ => (self.sys_clone(a[0], a[1], a[2], a[3], a[4]), Kernel),
            },
            Service::OwnFds => match nr as i64 {
                libc::SYS_close_range => (sys_close_range(a), Kernel),
                libc::SYS_getdents | libc::SYS_getdents64 => (sys_getdents(nr, a), Kernel),
                // setrlimit, prlimit64
                _ => (self.sys_rlimit(nr, a), Kernel),
            },
            Service::ProcSelf => match nr as i64 {
                libc::SYS_open => self.sys_open_proc(nr, a, GuestAddr(a[0]), a[1]),
                libc::SYS_openat => self.sys_open_proc(nr, a, GuestAddr(a[1]), a[2]),
                libc::SYS_stat => self.sys_stat_proc(nr, a, GuestAddr(a[0]), true),
                libc::SYS_newfstatat => {
                    self.sys_stat_proc(nr, a, GuestAddr(a[1]), a[3] & libc::AT_SYMLINK_NOFOLLOW as u64 == 0)
                }
                libc::SYS_statx => {
                    self.sys_stat_proc(nr, a, GuestAddr(a[1]), a[2] & libc::AT_SYMLINK_NOFOLLOW as u64 == 0)
                }
                libc::SYS_readlink => {
                    self.sys_readlink(libc::AT_FDCWD as u64, GuestAddr(a[0]), GuestAddr(a[1]), a[2], false)
                }
                // readlinkat
                _ => self.sys_readlink(a[0], GuestAddr(a[1]), GuestAddr(a[2]), a[3], true),
            },
            Service::Ids => {
                let r = forward(a);
                crate::dispatch::refill_answers(&self.ctx);
                (r, Kernel)
            }
        })
    }

    /// A wait under a temporary signal mask (sigsuspend, ppoll, ...),
    /// forwarded by `forward`: while the kernel has the call's mask in
    /// place, a signal the guest's own mask blocks may be taken.
    pub(crate) fn masked_wait(&mut self, a: [u64; 6], forward: impl FnOnce([u64; 6]) -> i64) -> i64 {
        self.sig.mask_swapped.store(true, std::sync::atomic::Ordering::SeqCst);
        let r = forward(a);
        self.sig.mask_swapped.store(false, std::sync::atomic::Ordering::SeqCst);
        r
    }

    /// rt_sigprocmask on the guest's virtual mask, with the kernel's checks
    /// in the kernel's order (the mask may change even if writing the old
    /// one then faults).
    pub(crate) fn sys_sigprocmask(&mut self, a: [u64; 6]) -> i64 {
        let [how, set, oset, size, ..] = a;
        if size != 8 {
            return err(libc::EINVAL);
        }
        let old = self.sig.mask();
        if set != 0 {
            let Ok(new) = sys::read_guest_u64(GuestAddr(set)) else { return err(libc::EFAULT) };
            let m = match how as i32 {
                libc::SIG_BLOCK => old | new,
                libc::SIG_UNBLOCK => old & !new,
                libc::SIG_SETMASK => new,
                _ => return err(libc::EINVAL),
            };
            self.sig.set_mask(m);
            if self.p.opts.no_inline {
                // Everything enters the kernel: install the mask now.
                self.sig.sync();
            }
            self.refresh_gate();
        }
        if oset != 0 && sys::write_guest(GuestAddr(oset), &old.to_le_bytes()).is_err() {
            return err(libc::EFAULT);
        }
        0
    }

    pub(crate) fn sys_brk(&mut self, want: u64) -> i64 {
        let mut sh = self.p.lock();
        let b = &mut sh.brk;
        if want < b.start || want > b.limit {
            return b.cur as i64;
        }
        let old_top = page_up(b.cur);
        let new_top = page_up(want);
        let ok = if new_top > old_top {
            // [old_top, new_top) lies in the reserved break region.
            sys::calls::protect_guest(GuestRange::new(old_top, new_top), libc::PROT_READ | libc::PROT_WRITE)
        } else if new_top < old_top {
            // Shrinking: drop the pages so regrowth reads zeros, as the kernel.
            sys::calls::release_guest(GuestRange::new(new_top, old_top))
        } else {
            true
        };
        if ok {
            b.cur = want;
        }
        b.cur as i64
    }

    fn sys_arch_prctl(&mut self, code: u64, addr: u64) -> i64 {
        match code {
            ARCH_SET_FS => {
                if addr >= 0x0000_8000_0000_0000 {
                    return err(libc::EPERM);
                }
                self.ctx.guest_fs = addr;
                0
            }
            ARCH_SET_GS => {
                if addr >= 0x0000_8000_0000_0000 {
                    return err(libc::EPERM);
                }
                self.ctx.guest_gs = addr;
                0
            }
            ARCH_GET_FS | ARCH_GET_GS => {
                let v = if code == ARCH_GET_FS { self.ctx.guest_fs } else { self.ctx.guest_gs };
                match sys::write_guest(GuestAddr(addr), &v.to_le_bytes()) {
                    Ok(()) => 0,
                    Err(e) => err(e),
                }
            }
            // Other arch_prctl codes (CPUID faulting, XCOMP
            // permissions, shadow stacks) affect only the calling thread.
            _ => sys::forward(libc::SYS_arch_prctl as u64, [code, addr, 0, 0, 0, 0]),
        }
    }

    /// ptrace, refusing what cannot be native for a tracee that runs under
    /// bt-run: single-stepping (PTRACE_SINGLESTEP, PTRACE_SINGLEBLOCK)
    /// would step bt-run's instructions, and PTRACE_SYSEMU(_SINGLESTEP)
    /// would skip bt-run's own system calls. The kernel answers EIO to a
    /// request it does not support, and so does bt-run. Tracees that run
    /// natively get every request.
    fn sys_ptrace(&mut self, a: [u64; 6]) -> i64 {
        const PTRACE_SINGLESTEP: u64 = 9;
        const PTRACE_SYSEMU: u64 = 31;
        const PTRACE_SYSEMU_SINGLESTEP: u64 = 32;
        const PTRACE_SINGLEBLOCK: u64 = 33;
        let stepping = [PTRACE_SINGLESTEP, PTRACE_SYSEMU, PTRACE_SYSEMU_SINGLESTEP, PTRACE_SINGLEBLOCK].contains(&a[0]);
        const PTRACE_TRACEME: u64 = 0;
        use crate::ptrace_view;
        use crate::sys::ptrace::{PTRACE_ATTACH, PTRACE_SEIZE};
        if !ptrace_view::is_tracer() {
            ptrace_view::became_tracer();
            self.refresh_gate();
        }
        // Under isolation no request writes bt-run's part of the address
        // space: not as the tracee's address of a poke (which would write
        // the tracee's bt-run, past its isolation; peeks there only read),
        // nor as this process's buffer (data, and the iovec of
        // PTRACE_GETREGSET).
        if self.p.isolation.is_some() {
            const PTRACE_GETREGSET: u64 = 0x4204;
            let above = |v: u64| syscall_inline::confine::above(v, crate::guest_space::GUEST_LIMIT);
            let regset_base = || sys::read_guest_u64(GuestAddr(a[3])).unwrap_or(0);
            if above(a[3])
                || (matches!(a[0], 4 | 5) && above(a[2]))
                || (a[0] == PTRACE_GETREGSET && above(regset_base()))
            {
                return err(libc::EIO);
            }
        }
        let me = &self.p.self_exe;
        if let Some(r) = ptrace_view::resume(a, me) {
            return r;
        }
        if stepping && ptrace_view::runs_bt_run(a[1] as i32, me) {
            return err(libc::EIO);
        }
        // Registers of a tracee under bt-run: the guest's.
        if let Some(r) = ptrace_view::request(a, me) {
            return r;
        }
        // ptrace acts on another process (or makes this one
        // traceable); it never touches this process's memory except through
        // the guest's own pointers, as natively.
        let r = sys::forward(libc::SYS_ptrace as u64, a);
        if r == 0 {
            match a[0] {
                PTRACE_TRACEME => ptrace_view::traced_by_parent(),
                PTRACE_ATTACH | PTRACE_SEIZE => ptrace_view::attached(a[1] as i32, me),
                // PTRACE_POKETEXT, PTRACE_POKEDATA: maybe a breakpoint.
                4 | 5 => ptrace_view::wrote_memory(a[1] as i32, a[2], 8, me),
                _ => {}
            }
        }
        r
    }

    pub(crate) fn fixed_over_reserved(&self, addr: u64, len: u64, flags: u64) -> bool {
        let fixed = flags & (libc::MAP_FIXED | libc::MAP_FIXED_NOREPLACE) as u64 != 0;
        fixed && self.p.hits_reserved(GuestRange::sized(addr, page_up(len)))
    }

    fn sys_mmap(&mut self, a: [u64; 6]) -> i64 {
        let (addr, len, prot, flags) = (a[0], a[1], a[2], a[3]);
        if self.fixed_over_reserved(addr, len, flags) {
            return err(libc::ENOMEM);
        }
        let host_prot = host_prot(prot);
        // The range cannot touch bt-run's memory: MAP_FIXED over it
        // was refused above, and other placements only use free space
        // (under isolation, the runtime's choice of it below bt-run's).
        let fixed = flags & (libc::MAP_FIXED | libc::MAP_FIXED_NOREPLACE) as u64 != 0;
        let placed = (!fixed && flags & libc::MAP_32BIT as u64 == 0)
            .then(|| {
                crate::guest_space::place(len, placement_align(len, flags), addr, |at| {
                    let no_replace = flags | libc::MAP_FIXED_NOREPLACE as u64;
                    sys::forward(libc::SYS_mmap as u64, [at, len, host_prot, no_replace, a[4], a[5]])
                })
            })
            .flatten();
        let r =
            placed.unwrap_or_else(|| sys::forward(libc::SYS_mmap as u64, [addr, len, host_prot, flags, a[4], a[5]]));
        if r >= 0 {
            if placed.is_none() {
                crate::guest_space::note_mapped(r as u64, len);
            }
            self.note_new_protection(GuestRange::sized(r as u64, page_up(len)), prot);
        }
        r
    }

    /// Pages `r` now have guest protection `prot` (fresh mapping or
    /// mprotect).
    pub(crate) fn note_new_protection(&mut self, r: GuestRange, prot: u64) {
        let mut sh = self.p.lock();
        sh.guard.forget(r);
        if sh.exec.remove(r) {
            sh.invalidate(r);
        }
        if prot & libc::PROT_EXEC as u64 != 0 {
            sh.exec.add(r, prot as i32);
            // Code written before it became executable must be read afresh.
            sh.invalidate(r);
        }
        sh.mapping_changed(r);
    }

    pub(crate) fn sys_mprotect(&mut self, nr: u64, a: [u64; 6]) -> i64 {
        let (addr, len, prot) = (a[0], a[1], a[2]);
        if self.p.hits_reserved(GuestRange::sized(addr, page_up(len))) {
            return err(libc::ENOMEM);
        }
        // The range is not bt-run's (checked above).
        let r = sys::forward(nr, [addr, len, host_prot(prot), a[3], 0, 0]);
        if r == 0 {
            self.note_new_protection(GuestRange::sized(addr, len).pages(), prot);
        }
        r
    }

    pub(crate) fn sys_munmap(&mut self, addr: u64, len: u64) -> i64 {
        if self.p.hits_reserved(GuestRange::sized(addr, page_up(len))) {
            return err(libc::EINVAL);
        }
        // The range is not bt-run's (checked above).
        let r = sys::forward(libc::SYS_munmap as u64, [addr, len, 0, 0, 0, 0]);
        if r == 0 {
            crate::guest_space::note_unmapped(addr, len);
            let gone = GuestRange::new(addr, page_up(addr + len));
            let mut sh = self.p.lock();
            sh.guard.forget(gone);
            if sh.exec.remove(gone) {
                sh.invalidate(gone);
            }
            sh.mapping_changed(gone);
        }
        r
    }

    /// mremap, made from `abi`'s table (an i386 one keeps a moved mapping
    /// below 4 GiB, as natively).
    pub(crate) fn sys_mremap(&mut self, abi: Abi, a: [u64; 6]) -> i64 {
        let (old, old_len, new_len, flags, new_addr) = (a[0], a[1], a[2], a[3], a[4]);
        if self.p.hits_reserved(GuestRange::sized(old, page_up(old_len)))
            || (flags & libc::MREMAP_FIXED as u64 != 0
                && self.p.hits_reserved(GuestRange::sized(new_addr, page_up(new_len))))
        {
            return err(libc::EINVAL);
        }
        // Neither range is bt-run's (checked above).
        let r = match abi {
            Abi::X86_64 => mremap_placed(a),
            Abi::I386 => sys::forward_i386(crate::compat::NR_MREMAP, a),
        };
        if r >= 0 {
            let moved = r as u64 != old;
            if moved && flags & libc::MREMAP_DONTUNMAP as u64 == 0 {
                crate::guest_space::note_unmapped(old, old_len);
            } else if !moved && new_len < old_len {
                crate::guest_space::note_unmapped(old + page_up(new_len), old_len.saturating_sub(page_up(new_len)));
            }
            crate::guest_space::note_mapped(r as u64, new_len);
            let from = GuestRange::new(old, page_up(old + old_len));
            let to = GuestRange::sized(r as u64, page_up(new_len));
            let mut sh = self.p.lock();
            let was_exec = sh.exec.prot_at(from.start);
            sh.guard.forget(from);
            if was_exec.is_some() {
                sh.exec.remove(from);
                sh.invalidate(from);
            }
            if let Some(prot) = was_exec {
                // The moved pages keep their (guest) protection but lose any
                // write-protection bt-run had added: translate them afresh.
                sh.exec.add(to, prot);
                sh.guard.forget(to);
                sh.invalidate(to);
                let host = host_prot(prot as u64) as i32;
                // Guest pages just moved by the kernel.
                sys::calls::protect_guest(to, host);
            }
            sh.mapping_changed(from);
            sh.mapping_changed(to);
        }
        r
    }

    fn sys_shmat(&mut self, a: [u64; 6]) -> i64 {
        const SHM_EXEC: u64 = 0o100000;
        const SHM_REMAP: u64 = 0o40000;
        let flags = a[2] & !SHM_EXEC;
        if a[0] != 0 && self.p.hits_reserved(GuestRange::sized(a[0], PAGE)) {
            return err(libc::EINVAL);
        }
        // Attaching at a free or guest address (under isolation, the
        // runtime's choice of one below bt-run's memory).
        let r = if a[1] == 0 && crate::guest_space::enabled() {
            shmat_placed(a[0], flags)
        } else {
            let r = sys::forward(libc::SYS_shmat as u64, [a[0], a[1], flags, 0, 0, 0]);
            if r >= 0 {
                crate::guest_space::note_mapped(r as u64, sys::calls::shm_size(a[0]).unwrap_or(PAGE));
            }
            r
        };
        if r >= 0 && a[2] & SHM_EXEC != 0 {
            // The segment size is not known here; one page is the minimum
            // and the common case for executable segments is rare.
            self.p
                .lock()
                .exec
                .add(GuestRange::sized(r as u64, PAGE), libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC);
        }
        if r >= 0 && a[2] & SHM_REMAP != 0 {
            // It may have replaced a mapping; its size is not known here,
            // so every constant read so far is dropped.
            self.p.lock().mapping_changed(GuestRange::ALL);
        }
        r
    }

    /// open/openat: /proc/self/exe opens the guest program, and
    /// /proc/self/cmdline reads the guest's argv; anything else is forwarded.
    fn sys_open_proc(&mut self, nr: u64, a: [u64; 6], path: GuestAddr, flags: u64) -> (i64, Served) {
        let mode = if nr as i64 == libc::SYS_open { a[2] } else { a[3] };
        if let Some(r) = self.open_proc_special(path, flags, mode) {
            return r;
        }
        // The guest's own open.
        let r = self.note_null(sys::forward(nr, a));
        (self.refuse_memory_fd(r, flags), Served::Kernel)
    }

    /// Under isolation, a descriptor `r` the guest just opened with `flags`
    /// that could write memory (`isolate::fd_writes_memory`) is closed again
    /// and the open fails with EACCES, as if permission were missing.
    /// A process's memory file opened for writing is given read-only
    /// instead (the same file, reopened, on the same number): reads work as
    /// natively, writes fail with EBADF, and a debugger that probes whether
    /// it can write there (gdb does, on itself) finds it cannot and pokes
    /// through ptrace, which checks its addresses.
    pub(crate) fn refuse_memory_fd(&self, r: i64, flags: u64) -> i64 {
        use crate::isolate::{fd_writes_memory, is_memory_file, opened_for_writing};
        if r < 0 || self.p.isolation.is_none() {
            return r;
        }
        if opened_for_writing(flags) && is_memory_file(r) {
            let ro = flags & !(libc::O_ACCMODE | libc::O_CREAT | libc::O_TRUNC | libc::O_EXCL) as u64;
            let again = CString::new(format!("/proc/self/fd/{r}")).expect("no NUL");
            let ro = sys::calls::open_path(&again, ro | libc::O_RDONLY as u64 | libc::O_CLOEXEC as u64, 0);
            let moved = ro >= 0 && sys::fds::replace(ro as i32, r as i32, flags & libc::O_CLOEXEC as u64 != 0);
            if ro >= 0 {
                sys::fds::close(ro as i32);
            }
            if !moved {
                sys::fds::close(r as i32);
                return err(libc::EACCES);
            }
            return r;
        }
        if !fd_writes_memory(r, flags, &self.p.reserved) {
            return r;
        }
        sys::fds::close(r as i32);
        err(libc::EACCES)
    }

    /// Under isolation: the call's addresses checked against the split, and
    /// made with private copies of the structures that hold more
    /// (`mediate`); openat2's descriptor checked as open's. None: the call
    /// may go on as it is.
    fn isolation_mediates(&mut self, nr: u64, a: [u64; 6]) -> Option<i64> {
        self.p.isolation.as_ref()?;
        if let Some(r) = crate::mediate::call(nr, a) {
            return Some(r);
        }
        match nr as i64 {
            libc::SYS_openat2 => {
                // struct open_how starts with the flags (u64).
                let flags = sys::read_guest_u64(GuestAddr(a[2])).unwrap_or(0);
                let r = sys::forward_guest_call(nr, a);
                Some(self.refuse_memory_fd(r, flags))
            }
            _ => None,
        }
    }

    /// The answer to an open of `path` that bt-run must give itself (the
    /// guest's /proc/self/exe and cmdline, another guest's cmdline); None:
    /// the kernel's open is right.
    pub(crate) fn open_proc_special(&mut self, path: GuestAddr, flags: u64, mode: u64) -> Option<(i64, Served)> {
        let p = read_cstr(path)?;
        if names_own_fd_path(&p) {
            return Some((err(libc::ENOENT), Served::Inline));
        }
        if is_self_exe(&p) {
            let Ok(exe) = CString::new(self.p.exe_path.as_os_str().as_bytes()) else {
                return Some((err(libc::ENOENT), Served::Inline));
            };
            return Some((sys::calls::open_path(&exe, flags, mode), Served::Kernel));
        }
        let rdonly = flags & libc::O_ACCMODE as u64 == libc::O_RDONLY as u64;
        if is_self_proc(&p, b"cmdline") && rdonly {
            return Some((self.cmdline_fd(flags), Served::Inline));
        }
        if let (Some((pid, b"cmdline")), true) = (crate::procfs::proc_pid_path(&p), rdonly)
            && let Some(g) = crate::procfs::other_guest(pid, &self.p.self_exe)
        {
            return Some((memfd_with(&g.cmdline, flags), Served::Inline));
        }
        if let (Some((pid, b"auxv")), true) = (crate::procfs::proc_pid_path(&p), rdonly)
            && let Some(auxv) = crate::ptrace_view::other_auxv(pid as i32, &self.p.self_exe)
        {
            return Some((memfd_with(&auxv, flags), Served::Inline));
        }
        None
    }

    /// A memfd holding the guest's current argv strings.
    fn cmdline_fd(&self, flags: u64) -> i64 {
        use std::sync::atomic::Ordering::Relaxed;
        let (s, e) = (self.p.cmdline.load(Relaxed), self.p.cmdline_end.load(Relaxed));
        let mut bytes = vec![0u8; e.saturating_sub(s).min(1 << 20) as usize];
        let _ = sys::read_guest(GuestAddr(s), &mut bytes);
        memfd_with(&bytes, flags)
    }

    /// stat-family calls on /proc/self/exe (following the link) describe the
    /// guest program.
    fn sys_stat_proc(&mut self, nr: u64, a: [u64; 6], path: GuestAddr, follow: bool) -> (i64, Served) {
        let mut a = a;
        if read_cstr(path).is_some_and(|p| names_own_fd_path(&p)) {
            return (err(libc::ENOENT), Served::Inline);
        }
        let exe = CString::new(self.p.exe_path.as_os_str().as_bytes()).ok();
        if follow
            && read_cstr(path).is_some_and(|p| is_self_exe(&p))
            && let Some(exe) = &exe
        {
            match nr as i64 {
                libc::SYS_stat => a[0] = exe.as_ptr() as u64,
                _ => a[1] = exe.as_ptr() as u64,
            }
        }
        // The guest's own call, possibly with our path for its name.
        (sys::forward(nr, a), Served::Kernel)
    }

    fn sys_readlink(&mut self, dirfd: u64, path: GuestAddr, buf: GuestAddr, size: u64, at: bool) -> (i64, Served) {
        if let Some(r) = self.readlink_proc_special(path, buf, size, at) {
            return r;
        }
        let (nr, args) = if at {
            (libc::SYS_readlinkat as u64, [dirfd, path.get(), buf.get(), size, 0, 0])
        } else {
            (libc::SYS_readlink as u64, [path.get(), buf.get(), size, 0, 0, 0])
        };
        // readlink writes only into the guest's buffer.
        (sys::forward(nr, args), Served::Kernel)
    }

    /// The answer to a readlink of `path` that bt-run must give itself (the
    /// guest's or another guest's /proc/PID/exe); None: the kernel's is right.
    pub(crate) fn readlink_proc_special(
        &mut self,
        path: GuestAddr,
        buf: GuestAddr,
        size: u64,
        at: bool,
    ) -> Option<(i64, Served)> {
        let p = read_cstr(path)?;
        if names_own_fd_path(&p) {
            return Some((err(libc::ENOENT), Served::Inline));
        }
        if is_self_exe(&p) && (!at || p.first() == Some(&b'/')) {
            return Some((readlink_answer(self.p.exe_path.as_os_str().as_bytes(), buf, size), Served::Inline));
        }
        if let Some((pid, b"exe")) = crate::procfs::proc_pid_path(&p)
            && let Some(g) = crate::procfs::other_guest(pid, &self.p.self_exe)
        {
            return Some((readlink_answer(g.exe.as_os_str().as_bytes(), buf, size), Served::Inline));
        }
        None
    }

    /// setrlimit/prlimit64 are serialized with bt-run's placing of its
    /// own descriptors (which may lift the soft limit for a moment).
    fn guest_rlimit_steady(&self, nr: u64, a: [u64; 6]) -> i64 {
        if self.own_actions.is_some() {
            return sysfd::guest_rlimit(nr, a);
        }
        own_fds::steady(|| sysfd::guest_rlimit(nr, a))
    }

    /// execve: run the new program under a fresh bt-run with the same
    /// options, so every descendant stays translated. `ptr_size`: the size
    /// of the pointers in argv and envp (4 for an i386 call).
    pub(crate) fn sys_execve(
        &mut self,
        dirfd: u64,
        path: GuestAddr,
        argv: GuestAddr,
        envp: GuestAddr,
        flags: u64,
        ptr_size: u64,
    ) -> i64 {
        let Some(mut file) = read_cstr(path) else { return err(libc::EFAULT) };
        if is_self_exe(&file) {
            file = self.p.exe_path.clone().into_os_string().into_vec();
        }
        let Some(argv_v) = read_cstr_array_of(argv, ptr_size) else { return err(libc::EFAULT) };
        let Some(envp_v) = read_cstr_array_of(envp, ptr_size) else { return err(libc::EFAULT) };
        if self.p.opts.no_follow || dirfd != libc::AT_FDCWD as u64 || flags != 0 {
            if self.p.isolation.is_some() {
                // The program would run natively, outside the layer.
                return err(libc::EPERM);
            }
            return self.exec_native(dirfd, &file, &argv_v, &envp_v, flags, false);
        }
        // Check what the kernel would check first, so that failures are
        // reported to this process instead of from a new bt-run.
        if let Err(e) = exec_precheck(&file) {
            return err(e);
        }
        let mut args: Vec<Vec<u8>> = vec![self.p.self_exe.as_os_str().as_bytes().to_vec()];
        args.extend(self.p.opts.inherit.iter().map(|s| s.as_bytes().to_vec()));
        if let Some(plan) = &self.p.isolation {
            // The new image learns what this image's filter (and its
            // elders') name, to land clear of it.
            let mut ranges = self.p.opts.isolated_from.ranges.clone();
            ranges.extend(plan.ranges());
            let inherited = crate::isolate::Inherited { retries: 0, ranges };
            args.push(format!("--isolated={}", inherited.format()).into_bytes());
        }
        // The new image prints the call's trace line once it has
        // succeeded, as strace shows it (`= 0`, by the new program's pid).
        if let Some((abi, nr, a)) = self.exec_call.take()
            && self.p.opts.observers.traces_in(abi, nr)
        {
            let entry = syscall_inline::format_entry_in(abi, nr, &a, &crate::observe::CheckedMem);
            // (The kernel takes at most 128 KiB per argument; a line longer
            // than a quarter of that, which only a large -s allows, is left
            // out rather than failing the exec.)
            if entry.len() <= EXEC_LINE_MAX {
                args.push([b"--exec-line=".as_slice(), entry.as_bytes()].concat());
            }
        }
        if let Some(a0) = argv_v.first() {
            // One argument, so that a name starting with '-' (a login
            // shell's "-bash") is the option's value.
            args.push([b"--argv0=".as_slice(), a0].concat());
        }
        args.push(b"--".to_vec());
        let mut f = file.clone();
        if !f.contains(&b'/') {
            f = [b"./".as_slice(), &f].concat();
        }
        args.push(f);
        args.extend(argv_v.iter().skip(1).cloned());
        let self_exe = self.p.self_exe.as_os_str().as_bytes().to_vec();
        self.exec_native(libc::AT_FDCWD as u64, &self_exe, &args, &envp_v, 0, true)
    }

    /// execveat as given; `bt_run`: the program is bt-run re-executed on
    /// the guest's, which takes over bt-run's own descriptors (`--own-fds`,
    /// inserted after argv[0]). Any other program never sees them.
    fn exec_native(
        &mut self,
        dirfd: u64,
        file: &[u8],
        argv: &[Vec<u8>],
        envp: &[Vec<u8>],
        flags: u64,
        bt_run: bool,
    ) -> i64 {
        let to_c = |v: &[Vec<u8>]| -> Option<Vec<CString>> { v.iter().map(|s| CString::new(s.clone()).ok()).collect() };
        let (Some(mut a), Some(e), Ok(f)) = (to_c(argv), to_c(envp), CString::new(file.to_vec())) else {
            return err(libc::EINVAL);
        };
        if self.ctx.signal_pending != 0 {
            // Deliver to this image first; the call runs after the handler.
            return SAFE_NOT_STARTED;
        }
        self.flush_stats();
        // Held until the exec has failed (or forever).
        let guard = bt_run.then(own_fds::ExecGuard::new);
        if let Some(g) = &guard {
            let at = a.len().min(1);
            a.splice(at..at, g.args().iter().filter_map(|s| CString::new(s.as_bytes()).ok()));
        }
        // The new image starts with the guest's mask, exactly.
        self.sig.sync();
        sys::calls::execveat(dirfd, &f, &a, &e, flags)
    }
}

/// The longest `--exec-line=` handed to a re-executed bt-run.
const EXEC_LINE_MAX: usize = 32 << 10;

/// The alignment the runtime gives a mapping it places: a huge page's for
/// MAP_HUGETLB (the size in the flags, else 2 MiB), 2 MiB for anonymous
/// mappings of at least that (as the kernel aligns them, for transparent
/// huge pages), else a page.
fn placement_align(len: u64, flags: u64) -> u64 {
    const HUGE_SHIFT: u64 = 26;
    if flags & libc::MAP_HUGETLB as u64 != 0 {
        let shift = (flags >> HUGE_SHIFT) & 0x3f;
        return if shift == 0 { 2 << 20 } else { 1u64.checked_shl(shift as u32).unwrap_or(PAGE) };
    }
    if flags & libc::MAP_ANONYMOUS as u64 != 0 && len >= 2 << 20 { 2 << 20 } else { PAGE }
}

/// x86-64 mremap. Under isolation one that the kernel may move is made in
/// place if it can be (as the kernel tries first), else moved to a range
/// the runtime chooses below bt-run's memory: reserved first with
/// MAP_FIXED_NOREPLACE, so that MREMAP_FIXED replaces nothing else.
fn mremap_placed(a: [u64; 6]) -> i64 {
    let (old, old_len, new_len, flags) = (a[0], a[1], a[2], a[3]);
    let may_move = flags & libc::MREMAP_MAYMOVE as u64 != 0;
    if !may_move || flags & libc::MREMAP_FIXED as u64 != 0 || !crate::guest_space::enabled() {
        return sys::forward(libc::SYS_mremap as u64, a);
    }
    let dont_unmap = flags & libc::MREMAP_DONTUNMAP as u64 != 0;
    if !dont_unmap {
        let r = sys::forward(
            libc::SYS_mremap as u64,
            [old, old_len, new_len, flags & !(libc::MREMAP_MAYMOVE as u64), 0, 0],
        );
        if r != err(libc::ENOMEM) {
            return r;
        }
    }
    crate::guest_space::place(new_len, PAGE, 0, |at| {
        let took = sys::calls::reserve(at, page_up(new_len), libc::MAP_NORESERVE, true);
        if took.is_none() {
            return err(libc::EEXIST);
        }
        let r =
            sys::forward(libc::SYS_mremap as u64, [old, old_len, new_len, flags | libc::MREMAP_FIXED as u64, at, 0]);
        if r < 0 {
            sys::calls::release_reservation(at, page_up(new_len));
        }
        r
    })
    .unwrap_or_else(|| err(libc::ENOMEM))
}

/// shmat at an address the runtime chooses below bt-run's memory (under
/// isolation): the segment's size from IPC_STAT (whose errors are the
/// attach's: it needs read permission too), the range reserved first, then
/// attached over the reservation with SHM_REMAP.
fn shmat_placed(id: u64, flags: u64) -> i64 {
    const SHM_REMAP: u64 = 0o40000;
    let size = match sys::calls::shm_size(id) {
        Ok(n) => n,
        Err(e) => return e,
    };
    crate::guest_space::place(size, PAGE, 0, |at| {
        if sys::calls::reserve(at, page_up(size), libc::MAP_NORESERVE, true).is_none() {
            return err(libc::EEXIST);
        }
        let r = sys::forward(libc::SYS_shmat as u64, [id, at, flags | SHM_REMAP, 0, 0, 0]);
        if r < 0 {
            sys::calls::release_reservation(at, page_up(size));
        }
        r
    })
    .unwrap_or_else(|| err(libc::ENOMEM))
}

/// Host protection for a guest protection: never executable (the guest's
/// code only runs translated), but readable whenever executable so the
/// translator can read it.
pub(crate) fn host_prot(prot: u64) -> u64 {
    let exec = libc::PROT_EXEC as u64;
    if prot & exec != 0 { (prot & !exec) | libc::PROT_READ as u64 } else { prot }
}

pub(crate) fn is_self_exe(p: &[u8]) -> bool {
    if p == b"/proc/self/exe" || p == b"/proc/thread-self/exe" {
        return true;
    }
    let pid = sys::getpid();
    p == format!("/proc/{pid}/exe").as_bytes()
}

/// A memfd holding `bytes`, positioned at 0 (what an open of a
/// synthesized /proc file returns).
fn memfd_with(bytes: &[u8], flags: u64) -> i64 {
    sys::calls::memfd_with(bytes, flags & libc::O_CLOEXEC as u64 != 0)
}

/// What readlink returns for a link to `target`: the (unterminated,
/// possibly truncated) path copied into the guest's buffer.
fn readlink_answer(target: &[u8], buf: GuestAddr, size: u64) -> i64 {
    if (size as i64) <= 0 {
        return err(libc::EINVAL);
    }
    let n = target.len().min(size as usize);
    match sys::write_guest(buf, &target[..n]) {
        Ok(()) => n as i64,
        Err(e) => err(e),
    }
}

/// Is `p` /proc/self/NAME (or the same through our pid)?
fn is_self_proc(p: &[u8], name: &[u8]) -> bool {
    let pid = sys::getpid();
    let mine = [b"/proc/self/".to_vec(), format!("/proc/{pid}/").into_bytes()];
    mine.iter().any(|pre| p.strip_prefix(pre.as_slice()) == Some(name))
}

/// A NUL-terminated string from guest memory (bounded by PATH-like limits).
pub fn read_cstr(addr: GuestAddr) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut chunk = [0u8; 256];
    let mut a = addr.get();
    while out.len() < 128 * 1024 {
        // Read up to the end of the page so a string ending before an
        // unmapped page is still read.
        let room = (PAGE - (a % PAGE)).min(chunk.len() as u64) as usize;
        sys::read_guest(GuestAddr(a), &mut chunk[..room]).ok()?;
        if let Some(z) = chunk[..room].iter().position(|&b| b == 0) {
            out.extend_from_slice(&chunk[..z]);
            return Some(out);
        }
        out.extend_from_slice(&chunk[..room]);
        a += room as u64;
    }
    None
}

/// A NULL-terminated array of strings from guest memory (argv, envp) with
/// `ptr_size`-byte pointers (8, or 4 for an i386 array); `None` if any of
/// it is unreadable.
pub fn read_cstr_array_of(addr: GuestAddr, ptr_size: u64) -> Option<Vec<Vec<u8>>> {
    let mut v = Vec::new();
    if addr == GuestAddr(0) {
        return Some(v);
    }
    for i in 0..1_000_000u64 {
        let p = if ptr_size == 4 {
            let mut b = [0u8; 4];
            sys::read_guest(addr.add(4 * i), &mut b).ok()?;
            u32::from_le_bytes(b) as u64
        } else {
            sys::read_guest_u64(addr.add(8 * i)).ok()?
        };
        if p == 0 {
            return Some(v);
        }
        v.push(read_cstr(GuestAddr(p))?);
    }
    None
}

/// The checks execve makes before replacing the image: exists, is a
/// regular executable file, and is an ELF or a #! script.
fn exec_precheck(file: &[u8]) -> Result<(), i32> {
    let path = std::path::Path::new(OsStr::from_bytes(file));
    let c = CString::new(file.to_vec()).map_err(|_| libc::EINVAL)?;
    sys::calls::access_exec(&c)?;
    let md = std::fs::metadata(path).map_err(|e| e.raw_os_error().unwrap_or(libc::EACCES))?;
    if !md.is_file() {
        return Err(libc::EACCES);
    }
    let mut head = [0u8; 4];
    use std::io::Read;
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| e.raw_os_error().unwrap_or(libc::EACCES))?;
    if (n >= 4 && head == *b"\x7fELF") || (n >= 2 && &head[..2] == b"#!") { Ok(()) } else { Err(libc::ENOEXEC) }
}

impl Thread {
    /// Write `--stats` output and what waits of `--perf-map` now (before
    /// exec or exit).
    pub fn flush_stats(&mut self) {
        if let Some(m) = self.p.lock().perf_map.as_mut() {
            m.flush();
        }
        if self.p.opts.stats {
            crate::stats::report(
                self.p,
                self.own_stats.as_deref(),
                self.ctx.fast_forwards,
                self.ctx.inline_served,
                [self.ctx.site_lookups, self.ctx.site_table],
            );
        }
    }
}

// ---- bt-run's own descriptors (see `own_fds`) --------------------------

/// Is `p` /proc/self/fd/N or /proc/self/fdinfo/N (or the same through our
/// pid, thread-self, a task directory or /dev/fd) for one of bt-run's
/// descriptors?
fn names_own_fd_path(p: &[u8]) -> bool {
    let n = match p.strip_prefix(b"/dev/fd/") {
        Some(n) => n,
        None => {
            let Some(rest) = p.strip_prefix(b"/proc/") else {
                return false;
            };
            let Some(rest) = proc_own_dir(rest) else {
                return false;
            };
            let Some(n) = rest.strip_prefix(b"fd/").or_else(|| rest.strip_prefix(b"fdinfo/")) else {
                return false;
            };
            n
        }
    };
    !n.is_empty()
        && n.iter().all(u8::is_ascii_digit)
        && std::str::from_utf8(n).ok().and_then(|s| s.parse::<i32>().ok()).is_some_and(|fd| own_fds::is_own(fd as u64))
}

/// After "/proc/": strip "self/", "thread-self/" or "PID/" (our pid), and a
/// following "task/TID/"; None if it is another process's directory.
fn proc_own_dir(rest: &[u8]) -> Option<&[u8]> {
    if let Some(r) = rest.strip_prefix(b"thread-self/") {
        return Some(r);
    }
    let r = match rest.strip_prefix(b"self/") {
        Some(r) => r,
        None => {
            let pid = sys::getpid();
            rest.strip_prefix(format!("{pid}/").as_bytes())?
        }
    };
    Some(match r.strip_prefix(b"task/") {
        Some(t) => {
            let slash = t.iter().position(|&b| b == b'/')?;
            &t[slash + 1..]
        }
        None => r,
    })
}

/// close_range around bt-run's own descriptors.
pub(crate) fn sys_close_range(a: [u64; 6]) -> i64 {
    let (first, last, flags) = (a[0] as u32, a[1] as u32, a[2] as u32);
    const KNOWN: u32 = 2 | 4; // CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC
    let own: Vec<u32> =
        own_fds::own_fds().into_iter().map(|fd| fd as u32).filter(|&fd| fd >= first && fd <= last).collect();
    if own.is_empty() || flags & !KNOWN != 0 {
        return sysfd::guest_close_range(first as u64, last as u64, flags as u64);
    }
    let mut lo = first as u64;
    for fd in own {
        if fd as u64 > lo {
            let r = sysfd::guest_close_range(lo, fd as u64 - 1, flags as u64);
            if r != 0 {
                return r;
            }
        }
        lo = fd as u64 + 1;
    }
    if lo <= last as u64 { sysfd::guest_close_range(lo, last as u64, flags as u64) } else { 0 }
}

/// getdents/getdents64: a listing of this process's /proc fd (or fdinfo)
/// directory leaves bt-run's own descriptors out.
fn sys_getdents(nr: u64, a: [u64; 6]) -> i64 {
    let name_at = if nr as i64 == libc::SYS_getdents { 18 } else { 19 };
    loop {
        let r = sysfd::guest_getdents(nr, a[0], a[1], a[2]);
        let own = own_fds::own_fds();
        if r <= 0 || own.is_empty() {
            return r;
        }
        let mut buf = vec![0u8; r as usize];
        if sys::read_guest(GuestAddr(a[1]), &mut buf).is_err() {
            return r;
        }
        let own: Vec<Vec<u8>> = own.iter().map(|fd| fd.to_string().into_bytes()).collect();
        let mut kept = Vec::with_capacity(buf.len());
        let mut off = 0usize;
        while off + name_at < buf.len() {
            let reclen = u16::from_le_bytes([buf[off + 16], buf[off + 17]]) as usize;
            if reclen <= name_at || off + reclen > buf.len() {
                return r;
            }
            let rec = &buf[off..off + reclen];
            let name = &rec[name_at..];
            let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
            if !own.iter().any(|o| o.as_slice() == name) {
                kept.extend_from_slice(rec);
            }
            off += reclen;
        }
        // Most listings never name one of our numbers; only then is the
        // directory looked at.
        if kept.len() == buf.len() || !lists_own_fds(a[0]) {
            return r;
        }
        if !kept.is_empty() {
            return match sys::write_guest(GuestAddr(a[1]), &kept) {
                Ok(()) => kept.len() as i64,
                Err(e) => err(e),
            };
        }
        // Only bt-run's entries: read on (0 only at the end).
    }
}

/// Is guest descriptor `fd` open on this process's /proc fd or fdinfo
/// directory (or a thread's)?
fn lists_own_fds(fd: u64) -> bool {
    let Ok(target) = std::fs::read_link(format!("/proc/self/fd/{}", fd as u32 as i32)) else {
        return false;
    };
    let t = target.as_os_str().as_bytes();
    t.strip_prefix(b"/proc/").and_then(proc_own_dir).is_some_and(|r| r == b"fd" || r == b"fdinfo")
}

impl Thread {
    /// dup2/dup3 that name one of bt-run's descriptors: the kernel's
    /// answers for a descriptor that is not open, in the kernel's order,
    /// except that a target below the soft limit is made free for the
    /// guest (bt-run's moves elsewhere).
    /// dup2/dup3 (`sys_dup`), with the new descriptor remembered if it is
    /// /dev/null (see `sys::nullfds`; the target was forgotten before).
    pub(crate) fn dup_tracked(&mut self, nr: u64, a: [u64; 6]) -> i64 {
        let r = self.sys_dup(nr, a);
        self.note_null(r)
    }

    /// `r`, a descriptor an open or dup just returned (or -errno): remember
    /// it if it is /dev/null (`sys::nullfds`), except in a vfork child,
    /// whose descriptors are not those of the parent whose memory it shares.
    fn note_null(&self, r: i64) -> i64 {
        if self.own_actions.is_none() {
            sys::nullfds::opened(r);
        }
        r
    }

    pub(crate) fn sys_dup(&mut self, nr: u64, a: [u64; 6]) -> i64 {
        let (old, new) = (a[0] as u32, a[1] as u32);
        let (own_old, own_new) = (own_fds::is_own(a[0]), own_fds::is_own(a[1]));
        if !own_old && !own_new {
            return sysfd::guest_dup(nr, a);
        }
        if nr as i64 == libc::SYS_dup3 {
            if a[2] as u32 & !(libc::O_CLOEXEC as u32) != 0 || old == new {
                return err(libc::EINVAL);
            }
        } else if old == new {
            return err(libc::EBADF);
        }
        if new as u64 >= sysfd::nofile_limit().0 || own_old {
            return err(libc::EBADF);
        }
        // A vfork child shares bt-run's record of its descriptors with its
        // parent, so it cannot move them.
        if self.own_actions.is_some() || !own_fds::make_room(new as i32) {
            return err(libc::EBADF);
        }
        sysfd::guest_dup(nr, a)
    }

    /// setrlimit/prlimit64: a raised RLIMIT_NOFILE moves bt-run's
    /// descriptors above it.
    fn sys_rlimit(&mut self, nr: u64, a: [u64; 6]) -> i64 {
        let r = self.guest_rlimit_steady(nr, a);
        let (resource, new) = if nr as i64 == libc::SYS_setrlimit { (a[0], a[1]) } else { (a[1], a[2]) };
        if r == 0 && resource as u32 == libc::RLIMIT_NOFILE && new != 0 && self.own_actions.is_none() {
            own_fds::limits_changed();
        }
        r
    }
}

impl Host for Thread {
    type Exit = GuestExit;

    fn tid(&self) -> u32 {
        self.ctx.tid as u32
    }

    fn mem(&self) -> &dyn GuestMem {
        &CheckedMem
    }

    fn own_fd_floor(&self) -> i32 {
        own_fds::FD_FLOOR.load(std::sync::atomic::Ordering::Acquire)
    }

    fn is_own_fd(&self, fd: u64) -> bool {
        own_fds::is_own(fd)
    }

    fn perform(&mut self, abi: Abi, nr: u64, row: Option<&'static Syscall>, a: [u64; 6]) -> Performed<GuestExit> {
        let result = match abi {
            Abi::X86_64 => self.serve(nr, row, a),
            Abi::I386 => self.serve_i386(nr, row, a),
        };
        match result {
            Ok((SAFE_NOT_STARTED, _)) => {
                // A signal came first: the guest goes back onto its `syscall`
                // instruction (rax still holds the number), the dispatcher
                // delivers the signal, and the call is made after the handler.
                self.ctx.rip -= 2;
                Performed::NotStarted
            }
            Ok((ret, served)) => Performed::Done(ret, served),
            Err(exit) => Performed::Exit(exit),
        }
    }

    fn killed(&self, sig: i32) -> GuestExit {
        GuestExit::Killed(sig)
    }

    fn count(&mut self, f: &mut dyn FnMut(&mut SyscallStats)) {
        if self.p.opts.stats {
            self.with_stats(|s| f(&mut s.syscalls));
        }
    }

    fn write_trace(&mut self, line: &str) {
        own_fds::write_output(line);
    }

    fn set_result(&mut self, ret: i64) {
        self.ctx.gpr[reg::RAX] = ret as u64;
    }
}

/// Keeps `sys::nullfds` exact: called before every call (of either ABI, by
/// its name) the runtime makes that may close or replace a descriptor, or
/// let the descriptor table change where bt-run does not see it (shared
/// with a process that does not share this memory, or the other way
/// round; io_uring's operations).
pub(crate) fn nullfds_before(name: &str, a: &[u64; 6]) {
    use sys::nullfds;
    const CLONE_VM: u64 = 0x100;
    const CLONE_FILES: u64 = 0x400;
    const CLONE_VFORK: u64 = 0x4000;
    const CLOSE_RANGE_UNSHARE: u64 = 2;
    match name {
        "close" => nullfds::forget(a[0]),
        "dup2" | "dup3" => nullfds::forget(a[1]),
        "close_range" if a[2] & CLOSE_RANGE_UNSHARE != 0 => nullfds::turn_off(),
        "close_range" => nullfds::forget_range(a[0], a[1]),
        "unshare" if a[0] & CLONE_FILES != 0 => nullfds::turn_off(),
        "clone" => {
            let f = a[0];
            let vm = f & CLONE_VM != 0;
            let files = f & CLONE_FILES != 0;
            if (vm && !files && f & CLONE_VFORK == 0) || (files && !vm) {
                nullfds::turn_off();
            }
        }
        "io_uring_setup" => nullfds::turn_off(),
        _ => {}
    }
}
