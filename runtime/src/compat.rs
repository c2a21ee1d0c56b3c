//! i386 system calls: `int $0x80` in the 64-bit guest.
//!
//! Natively the kernel makes such a call from its 32-bit (compat) table:
//! eax is the number, ebx, ecx, edx, esi, edi, ebp the arguments, all
//! truncated to 32 bits; every register but rax (the result, sign-extended)
//! and the flags come back unchanged. The translator ends a block at every
//! `int $0x80` and the dispatcher brings it here, so the call goes through
//! the same layer as a `syscall` (hook, `--trace`, `--deny`, `--stats`),
//! with the i386 table of syscall-inline (`syscall_inline::SYSCALLS_I386`).
//!
//! Most calls are then made by executing a real `int $0x80` with the
//! guest's arguments (`sys::forward_i386`), so the kernel's compat code
//! answers them exactly as natively (32-bit layouts, mappings placed below
//! 4 GiB, ...). The table's `Runtime` rows are served here: what bt-run
//! must own for any call (memory protection, the break, the signal mask,
//! exec, process creation, /proc/self/exe), mapped onto the same code as
//! the x86-64 calls. Signal handlers installed by i386 calls would need ia32
//! signal frames, which bt-run does not build: those calls fail with ENOSYS.

use translator::GuestAddr;
use translator::abi::reg;

use crate::dispatch::{GuestExit, Thread};
use crate::memory::{GuestRange, PAGE, page_up};
use crate::sys;
use crate::syscalls::{Served, err, host_prot, is_self_exe, read_cstr};
use syscall_inline::{Abi, Service, Syscall};

/// i386 numbers the runtime makes itself (as named in the i386 table).
pub(crate) const NR_MREMAP: u64 = 163;
const NR_MMAP2: u64 = 192;
const NR_FSTAT: u64 = 108;
const NR_OLDFSTAT: u64 = 28;
const NR_FSTAT64: u64 = 197;
const NR_SHMAT: u64 = 397;
/// The i386 numbers the runtime makes with `int $0x80` for a guest call of
/// another number (a stat of /proc/self/exe by descriptor, the old mmap as
/// mmap2): isolation's filter leaves them to the layer's decision.
pub(crate) const INT80_SUBSTITUTES: [u32; 4] =
    [NR_FSTAT as u32, NR_OLDFSTAT as u32, NR_FSTAT64 as u32, NR_MMAP2 as u32];
/// `ipc(SHMAT, ...)`'s call number.
const IPC_SHMAT: u64 = 21;
const SHM_EXEC: u64 = 0o100000;
const CLONE_SETTLS: u64 = 0x80000;
const AT_EMPTY_PATH: u64 = 0x1000;
const AT_SYMLINK_NOFOLLOW: u64 = 0x100;

/// An `int` argument: the low 32 bits, sign-extended (AT_FDCWD is -100).
fn int(v: u64) -> u64 {
    v as u32 as i32 as i64 as u64
}

fn is_error(r: i64) -> bool {
    (-4095..0).contains(&r)
}

impl Thread {
    /// `int $0x80` (the guest is on the next instruction): the i386 call
    /// in eax with ebx, ecx, edx, esi, edi, ebp, each truncated to 32 bits
    /// as the kernel truncates them.
    pub fn int80(&mut self) -> Option<GuestExit> {
        let g = &self.ctx.gpr;
        let nr = g[reg::RAX] & 0xffff_ffff;
        let a = [reg::RBX, reg::RCX, reg::RDX, reg::RSI, reg::RDI, reg::RBP].map(|r| g[r] & 0xffff_ffff);
        self.layer_viewed(Abi::I386, nr, a)
    }

    /// Make i386 call `nr`. Err(exit) ends the run.
    pub(crate) fn serve_i386(
        &mut self,
        nr: u64,
        row: Option<&'static Syscall>,
        a: [u64; 6],
    ) -> Result<(i64, Served), GuestExit> {
        use Served::{Inline, Kernel};
        let name = row.map_or("", |r| r.name);
        let service = row.and_then(Syscall::service);
        if service != Some(Service::SignalMask) && self.sig.lagging() {
            // As for x86-64 calls: anything that enters the kernel may block
            // or read the mask, so the kernel's must be the guest's.
            self.sig.sync();
            self.refresh_gate();
        }
        // SAFETY (every `forward_i386` below): the guest's own call, made by
        // the kernel's compat code with the guest's 32-bit arguments; the
        // calls that could touch bt-run's memory, signal handling or threads
        // are served instead.
        let forward = |a: [u64; 6]| sys::forward_i386(nr, a);
        crate::syscalls::nullfds_before(name, &a);
        let Some(service) = service else {
            return Ok(match name {
                // bt-run's own descriptors are stepped around as for x86-64
                // (the arguments mean the same in both ABIs).
                "dup2" => (self.dup_tracked(libc::SYS_dup2 as u64, a), Kernel),
                "dup3" => (self.dup_tracked(libc::SYS_dup3 as u64, a), Kernel),
                "close_range" => (crate::syscalls::sys_close_range(a), Kernel),
                _ => (forward(a), Kernel),
            });
        };
        Ok(match service {
            Service::Exit if name == "exit" => return Err(GuestExit::ThreadExited(a[0] as i32)),
            Service::Exit => return Err(GuestExit::Exited(a[0] as i32)),
            Service::Break => (self.sys_brk(a[0]), Inline),
            Service::Memory => match name {
                "mmap" => (self.sys_old_mmap_i386(a[0]), Kernel),
                "mmap2" => (self.sys_mmap2_i386(a), Kernel),
                "munmap" => (self.sys_munmap(a[0], a[1]), Kernel),
                "mprotect" => (self.sys_mprotect(libc::SYS_mprotect as u64, a), Kernel),
                "pkey_mprotect" => {
                    (self.sys_mprotect(libc::SYS_pkey_mprotect as u64, [a[0], a[1], a[2], int(a[3]), 0, 0]), Kernel)
                }
                "mremap" => (self.sys_mremap(Abi::I386, a), Kernel),
                "shmat" => (self.sys_shmat_i386(a), Kernel),
                _ => (self.sys_ipc_i386(a), Kernel),
            },
            Service::NewProcess => match name {
                "fork" => (self.sys_clone(libc::SIGCHLD as u64, 0, 0, 0, 0), Kernel),
                "vfork" => (self.sys_clone(0x4000 | 0x100 | libc::SIGCHLD as u64, 0, 0, 0, 0), Kernel),
                // i386 order: flags, stack, parent_tid, tls, child_tid. An i386
                // TLS is a segment descriptor (set_thread_area), not an FS base.
                _ if a[0] & CLONE_SETTLS != 0 => (err(libc::ENOSYS), Inline),
                _ => (self.sys_clone(a[0], a[1], a[2], a[4], 0), Kernel),
            },
            Service::Refused => (err(libc::ENOSYS), Inline),
            Service::Exec if name == "execveat" => {
                self.exec_call = Some((Abi::I386, nr, a));
                (self.sys_execve(int(a[0]), GuestAddr(a[1]), GuestAddr(a[2]), GuestAddr(a[3]), a[4], 4), Kernel)
            }
            Service::Exec => {
                self.exec_call = Some((Abi::I386, nr, a));
                (
                    self.sys_execve(libc::AT_FDCWD as u64, GuestAddr(a[0]), GuestAddr(a[1]), GuestAddr(a[2]), 0, 4),
                    Kernel,
                )
            }
            Service::SignalMask => match name {
                "rt_sigprocmask" => (self.sys_sigprocmask(a), Inline),
                "sigprocmask" => (self.sys_old_sigprocmask(a), Inline),
                // sgetmask returns the mask's first word, ssetmask replaces the
                // whole mask with its int argument (sign-extended) and returns
                // the old first word.
                "sgetmask" => (self.sig.mask() as i64, Inline),
                _ => {
                    let old = self.sig.mask();
                    self.set_guest_mask(int(a[0]));
                    (old as i64, Inline)
                }
            },
            Service::SignalAction => (self.sys_sigaltstack_i386(a[0], a[1]), Inline),
            Service::MaskedWait => (self.masked_wait(a, forward), Kernel),
            Service::ProcSelf => match name {
                "open" => self.open_proc_special(GuestAddr(a[0]), a[1], a[2]).unwrap_or_else(|| (forward(a), Kernel)),
                "openat" => self.open_proc_special(GuestAddr(a[1]), a[2], a[3]).unwrap_or_else(|| (forward(a), Kernel)),
                "readlink" => self
                    .readlink_proc_special(GuestAddr(a[0]), GuestAddr(a[1]), a[2], false)
                    .unwrap_or_else(|| (forward(a), Kernel)),
                "readlinkat" => self
                    .readlink_proc_special(GuestAddr(a[1]), GuestAddr(a[2]), a[3], true)
                    .unwrap_or_else(|| (forward(a), Kernel)),
                "oldstat" | "stat" | "stat64" => {
                    let by_fd = match name {
                        "oldstat" => NR_OLDFSTAT,
                        "stat" => NR_FSTAT,
                        _ => NR_FSTAT64,
                    };
                    self.stat_exe_i386(a[0], |fd, _| [fd, a[1], 0, 0, 0, 0], by_fd)
                        .unwrap_or_else(|| (forward(a), Kernel))
                }
                "fstatat64" if a[3] & AT_SYMLINK_NOFOLLOW == 0 => self
                    .stat_exe_i386(a[1], |fd, empty| [fd, empty, a[2], a[3] | AT_EMPTY_PATH, 0, 0], nr)
                    .unwrap_or_else(|| (forward(a), Kernel)),
                "statx" if a[2] & AT_SYMLINK_NOFOLLOW == 0 => self
                    .stat_exe_i386(a[1], |fd, empty| [fd, empty, a[2] | AT_EMPTY_PATH, a[3], a[4], 0], nr)
                    .unwrap_or_else(|| (forward(a), Kernel)),
                _ => (forward(a), Kernel),
            },
            Service::Ids => {
                let r = forward(a);
                crate::dispatch::refill_answers(&self.ctx);
                (r, Kernel)
            }
            // No i386 row names these (ptrace and the FS base are x86-64
            // matters; an i386 signal return is refused).
            Service::ThreadArea | Service::SignalReturn | Service::Ptrace | Service::OwnFds => (forward(a), Kernel),
        })
    }

    /// The guest's mask becomes `m` (as rt_sigprocmask sets it).
    fn set_guest_mask(&mut self, m: u64) {
        self.sig.set_mask(m);
        if self.p.opts.no_inline {
            self.sig.sync();
        }
        self.refresh_gate();
    }

    /// mmap2: as x86-64 mmap, made by the i386 call (which places the
    /// mapping below 4 GiB), PROT_EXEC kept in the guest's view only.
    fn sys_mmap2_i386(&mut self, a: [u64; 6]) -> i64 {
        let (addr, len, prot, flags) = (a[0], a[1], a[2], a[3]);
        if self.fixed_over_reserved(addr, len, flags) {
            return err(libc::ENOMEM);
        }
        // SAFETY: the range cannot touch bt-run's memory: MAP_FIXED over it
        // was refused above, and other placements only use free space.
        let r = sys::forward_i386(NR_MMAP2, [addr, len, host_prot(prot), flags, a[4], a[5]]);
        if !is_error(r) {
            let s = r as u64;
            self.note_new_protection(GuestRange::sized(s, page_up(len)), prot);
        }
        r
    }

    /// The old one-argument mmap: its arguments in a structure of six
    /// 32-bit words, the offset in bytes (page-aligned).
    fn sys_old_mmap_i386(&mut self, args: u64) -> i64 {
        let mut b = [0u8; 24];
        if sys::read_guest(GuestAddr(args), &mut b).is_err() {
            return err(libc::EFAULT);
        }
        let w: [u64; 6] =
            std::array::from_fn(|i| u32::from_le_bytes(b[4 * i..4 * i + 4].try_into().expect("4 bytes")) as u64);
        if w[5] & (crate::memory::PAGE - 1) != 0 {
            return err(libc::EINVAL);
        }
        self.sys_mmap2_i386([w[0], w[1], w[2], w[3], w[4], w[5] / crate::memory::PAGE])
    }

    /// shmat: SHM_EXEC kept in the guest's view only, as x86-64 shmat.
    fn sys_shmat_i386(&mut self, a: [u64; 6]) -> i64 {
        if a[1] != 0 && self.p.hits_reserved(GuestRange::sized(a[1], PAGE)) {
            return err(libc::EINVAL);
        }
        // SAFETY: attaching at a free or guest address.
        let r = sys::forward_i386(NR_SHMAT, [a[0], a[1], a[2] & !SHM_EXEC, 0, 0, 0]);
        if !is_error(r) && a[2] & SHM_EXEC != 0 {
            self.note_shm_exec(r as u64);
        }
        r
    }

    /// ipc: its SHMAT (`ipc(SHMAT, shmid, shmflg, &raddr, shmaddr)`) as
    /// shmat; every other operation as it is.
    fn sys_ipc_i386(&mut self, a: [u64; 6]) -> i64 {
        let shmat = a[0] & 0xffff == IPC_SHMAT;
        if shmat && a[4] != 0 && self.p.hits_reserved(GuestRange::sized(a[4], PAGE)) {
            return err(libc::EINVAL);
        }
        let mut b = a;
        if shmat {
            b[2] &= !SHM_EXEC;
        }
        // SAFETY: as shmat above; other operations touch no memory of bt-run.
        let r = sys::forward_i386(117, b);
        if shmat && r == 0 && a[2] & SHM_EXEC != 0 {
            let mut w = [0u8; 4];
            if sys::read_guest(GuestAddr(a[3]), &mut w).is_ok() {
                self.note_shm_exec(u32::from_le_bytes(w) as u64);
            }
        }
        r
    }

    fn note_shm_exec(&mut self, at: u64) {
        // The segment size is not known here; one page, as for x86-64 shmat.
        let mut sh = self.p.lock();
        sh.exec.add(GuestRange::sized(at, PAGE), libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC);
        sh.mapping_changed(GuestRange::ALL);
    }

    /// The old sigprocmask: the first 32 signals of the (virtual) mask,
    /// through 32-bit sets, with the kernel's checks in its order.
    fn sys_old_sigprocmask(&mut self, a: [u64; 6]) -> i64 {
        let [how, set, oset, ..] = a;
        let old = self.sig.mask();
        if set != 0 {
            let mut b = [0u8; 4];
            if sys::read_guest(GuestAddr(set), &mut b).is_err() {
                return err(libc::EFAULT);
            }
            let new = u32::from_le_bytes(b) as u64;
            let m = match int(how) as i32 {
                libc::SIG_BLOCK => old | new,
                libc::SIG_UNBLOCK => old & !new,
                libc::SIG_SETMASK => (old & !0xffff_ffff) | new,
                _ => return err(libc::EINVAL),
            };
            self.set_guest_mask(m);
        }
        if oset != 0 && sys::write_guest(GuestAddr(oset), &(old as u32).to_le_bytes()).is_err() {
            return err(libc::EFAULT);
        }
        0
    }

    /// sigaltstack with the i386 `stack_t` (ss_sp, ss_flags, ss_size: three
    /// 32-bit words) on the guest's virtual alternate stack.
    fn sys_sigaltstack_i386(&mut self, ss: u64, old: u64) -> i64 {
        let mut new64 = None;
        if ss != 0 {
            let mut b = [0u8; 12];
            if sys::read_guest(GuestAddr(ss), &mut b).is_err() {
                return err(libc::EFAULT);
            }
            let mut n = [0u8; 24];
            n[0..4].copy_from_slice(&b[0..4]);
            n[8..12].copy_from_slice(&b[4..8]);
            n[16..20].copy_from_slice(&b[8..12]);
            new64 = Some(n);
        }
        let rsp = self.ctx.gpr[reg::RSP];
        let old64 = self.sig.altstack_image(rsp);
        let r = self.sig.set_altstack(new64, rsp);
        if r == 0 && old != 0 {
            let mut b = [0u8; 12];
            b[0..4].copy_from_slice(&old64[0..4]);
            b[4..8].copy_from_slice(&old64[8..12]);
            b[8..12].copy_from_slice(&old64[16..20]);
            if sys::write_guest(GuestAddr(old), &b).is_err() {
                return err(libc::EFAULT);
            }
        }
        r
    }

    /// A stat-family call of /proc/self/exe (following the link) describes
    /// the guest program: the same i386 call (`by_fd`) made on a descriptor
    /// of the program, with the arguments `args(fd, empty)` builds (`empty`:
    /// an empty string in the guest's memory, the end of its path, for
    /// AT_EMPTY_PATH). None: not /proc/self/exe, the kernel's answer is right.
    fn stat_exe_i386(&mut self, path: u64, args: impl Fn(u64, u64) -> [u64; 6], by_fd: u64) -> Option<(i64, Served)> {
        let p = read_cstr(GuestAddr(path))?;
        if !is_self_exe(&p) {
            return None;
        }
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::OpenOptionsExt;
        // An O_PATH descriptor of the guest program, closed when dropped.
        let exe = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
            .open(&self.p.exe_path)
        {
            Ok(f) => f,
            Err(e) => {
                return Some((err(e.raw_os_error().unwrap_or(libc::ENOENT)), Served::Kernel));
            }
        };
        // SAFETY: a stat of our own descriptor into the guest's buffer.
        let r = sys::forward_i386(by_fd, args(exe.as_raw_fd() as u64, path + p.len() as u64));
        Some((r, Served::Kernel))
    }
}
