//! Isolation's backstop: a seccomp filter, installed before the guest runs,
//! that lets a system call reach the kernel only from where bt-run makes it
//! and only as the run's syscall table allows (see docs/design.md,
//! "Isolation: the seccomp backstop").
//!
//! The rules, for the instruction pointer the kernel reports (the address
//! after the `syscall` or `int $0x80`):
//! - in the code cache: trap (translated code never holds a system call
//!   instruction, so one there is native code that escaped translation);
//! - at the gate's forward site: only numbers the layer would let through
//!   and bt-run need not serve itself (`gate_numbers`), x86-64 ABI, or -1
//!   (a call a tracer skipped); anything else traps (the table, or the
//!   context's pointer to it, was changed behind bt-run);
//! - at the gate's rt_sigprocmask site: that call only;
//! - at the sites where the runtime makes a guest's call (`bt_safe_insn`,
//!   `bt_int80_insn`): the numbers the policy denies get the policy's
//!   answer (its errno, or a trap for `kill`), except the numbers the runtime
//!   makes there on behalf of another call the policy may allow;
//! - anywhere else (bt-run's own code): allowed.
//!
//! A trap is reported by the host signal handler (`trapped`) as one line,
//! then the process dies by SIGSYS.
//!
//! A filter outlives execve, and the next image of bt-run is placed at a
//! new random base, so the addresses an older image's filter names go
//! stale. They are handed to the exec'd bt-run (`--isolated=`), which
//! re-executes itself if any of them falls on its own code or the vDSO
//! (`stale_rules_hit_me`): the invariant is that no rule of an older
//! image's filter covers an executable address of the running image.

use std::fmt::Write as _;

/// Where the code cache's execute view lies under isolation (and where a
/// position-independent guest program is loaded, so the cache can be near
/// it): [256 MiB, 16 TiB), which also holds the cache near a program linked
/// at a fixed low address (0x400000). The filter's cache rule outlives this image, and
/// at execve the kernel places the next image's code (bt-run, a static
/// PIE, and the vDSO) in its mmap area: top-down from `mmap_base`, which
/// is below the stack by the stack limit's gap (at most 5/6 of the 128 TiB
/// address space) and up to 1 TiB of randomness, so never below ~20 TiB;
/// or bottom-up from 42.7 TiB (`TASK_UNMAPPED_BASE`) in the legacy layout.
/// So no image's startup code, which runs before any check of bt-run's,
/// can fall under an older image's cache rule (a trap there would kill it
/// silently, before its SIGSYS handler exists).
pub const EXEC_SAFE_BAND: (u64, u64) = (0x1000_0000, 0x1000_0000_0000);

use syscall_inline::{DenyAction, GATE_TABLE_LEN};

/// `SECCOMP_RET_DATA` values of bt-run's traps (its `si_errno`).
pub const TRAP_CACHE: u16 = 0xb7a1;
pub const TRAP_GATE: u16 = 0xb7a2;
pub const TRAP_DENIED: u16 = 0xb7a3;

const RET_ALLOW: u32 = 0x7fff_0000;
const RET_TRAP: u32 = 0x0003_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
// struct seccomp_data: nr, arch, instruction_pointer, args[6].
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_IP_LO: u32 = 8;
const OFF_IP_HI: u32 = 12;
// Classic BPF opcodes.
const LD_W_ABS: u16 = 0x20;
const JEQ_K: u16 = 0x15;
const JGT_K: u16 = 0x25;
const JGE_K: u16 = 0x35;
const JA: u16 = 0x05;
const RET_K: u16 = 0x06;

/// One classic BPF instruction (`struct sock_filter`).
#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SockFilter {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// Where bt-run makes system calls and what each site may make.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// The code cache's execute view, [start, end).
    pub cache: (u64, u64),
    /// Address after the gate's forwarding `syscall`.
    pub gate_ip: u64,
    /// Address after the gate's own rt_sigprocmask `syscall`.
    pub sigmask_ip: u64,
    /// Address after `bt_safe_insn`'s `syscall`.
    pub safe_ip: u64,
    /// Address after `bt_int80_insn`'s `int $0x80`.
    pub int80_ip: u64,
    /// The x86-64 numbers the gate's forward may make (ascending).
    pub forward: Vec<u32>,
    /// Denied x86-64 and i386 numbers with the policy's action.
    pub deny64: Vec<(u32, DenyAction)>,
    pub deny32: Vec<(u32, DenyAction)>,
}

impl Plan {
    /// The address ranges this plan's rules name (what goes stale at exec).
    pub fn ranges(&self) -> Vec<(u64, u64)> {
        let mut v = vec![self.cache];
        for ip in [self.gate_ip, self.sigmask_ip, self.safe_ip, self.int80_ip] {
            v.push((ip, ip + 1));
        }
        v
    }
}

/// The x86-64 numbers the gate's forward may make (ascending): those the
/// layer would let through (not denied) and that bt-run need not serve
/// itself, so that running them raw changes nothing of bt-run's (rows
/// `Forward`, `Inline`, whose kernel answer is the same, and the
/// `ProcSelf` and `Ids` services, which only keep bt-run's view exact)
/// and whose addresses the gate can check (`syscall_inline::confine`: not
/// page ranges or structures the runtime copies), and numbers no row names (the kernel answers ENOSYS). It is more than the
/// table forwards, because a tracer may change the number at the gate's
/// syscall-entry stop as it could natively; what it may not do is turn a
/// call into a denied one, or into one whose service keeps bt-run's own
/// state (mappings, signals, threads, exec, its descriptors).
pub fn gate_numbers(denied: impl Fn(u64) -> bool) -> Vec<u32> {
    use syscall_inline::confine::{self, Check};
    use syscall_inline::{Disposition, Service};
    (0..GATE_TABLE_LEN as u32)
        .filter(|&nr| !denied(nr as u64))
        .filter(|&nr| {
            syscall_inline::lookup(nr as u64).is_none_or(|row| {
                matches!(
                    row.disposition,
                    Disposition::Forward | Disposition::Inline | Disposition::Runtime(Service::ProcSelf | Service::Ids)
                ) && matches!(confine::check(row), Check::None | Check::Direct(_) | Check::Service)
            })
        })
        .collect()
}

/// The numbers the runtime itself makes at `bt_safe_insn` for a call of
/// another number (execve and execveat become bt-run's execveat; the
/// guest's wait calls become wait4/waitid into bt-run's buffers): a policy
/// that denies one of these but allows the call it serves must not be
/// overruled by the filter.
pub const SAFE_SITE_SUBSTITUTES: [u32; 3] =
    [libc::SYS_execveat as u32, libc::SYS_wait4 as u32, libc::SYS_waitid as u32];

enum Target {
    Next,
    Label(usize),
}

struct Insn {
    code: u16,
    k: u32,
    jt: Target,
    jf: Target,
    ja: Option<usize>,
}

/// A tiny classic-BPF assembler with forward labels.
struct Asm {
    insns: Vec<Insn>,
    labels: Vec<Option<usize>>,
}

impl Asm {
    fn new() -> Self {
        Asm { insns: Vec::new(), labels: Vec::new() }
    }
    fn label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }
    fn bind(&mut self, l: usize) {
        self.labels[l] = Some(self.insns.len());
    }
    fn ld(&mut self, off: u32) {
        self.insns.push(Insn { code: LD_W_ABS, k: off, jt: Target::Next, jf: Target::Next, ja: None });
    }
    fn jmp(&mut self, code: u16, k: u32, jt: Target, jf: Target) {
        self.insns.push(Insn { code, k, jt, jf, ja: None });
    }
    fn ja(&mut self, l: usize) {
        self.insns.push(Insn { code: JA, k: 0, jt: Target::Next, jf: Target::Next, ja: Some(l) });
    }
    fn ret(&mut self, v: u32) {
        self.insns.push(Insn { code: RET_K, k: v, jt: Target::Next, jf: Target::Next, ja: None });
    }
    /// Jump to `to` if the instruction pointer is `ip`.
    fn if_ip(&mut self, ip: u64, to: usize) {
        let skip = self.label();
        self.ld(OFF_IP_LO);
        self.jmp(JEQ_K, ip as u32, Target::Next, Target::Label(skip));
        self.ld(OFF_IP_HI);
        self.jmp(JEQ_K, (ip >> 32) as u32, Target::Next, Target::Label(skip));
        self.ja(to);
        self.bind(skip);
    }
    /// Jump to `to` if the instruction pointer is in [start, end).
    fn if_ip_in(&mut self, (start, end): (u64, u64), to: usize) {
        let (out, above_start, check_end_lo, inside) = (self.label(), self.label(), self.label(), self.label());
        let (s_hi, s_lo, e_hi, e_lo) = ((start >> 32) as u32, start as u32, (end >> 32) as u32, end as u32);
        // ip >= start
        self.ld(OFF_IP_HI);
        self.jmp(JGT_K, s_hi, Target::Label(above_start), Target::Next);
        self.jmp(JEQ_K, s_hi, Target::Next, Target::Label(out));
        self.ld(OFF_IP_LO);
        self.jmp(JGE_K, s_lo, Target::Label(above_start), Target::Label(out));
        // ip < end
        self.bind(above_start);
        self.ld(OFF_IP_HI);
        self.jmp(JGT_K, e_hi, Target::Label(out), Target::Next);
        self.jmp(JEQ_K, e_hi, Target::Label(check_end_lo), Target::Label(inside));
        self.bind(check_end_lo);
        self.ld(OFF_IP_LO);
        self.jmp(JGE_K, e_lo, Target::Label(out), Target::Label(inside));
        self.bind(inside);
        self.ja(to);
        self.bind(out);
    }
    fn finish(self) -> Result<Vec<SockFilter>, String> {
        let mut out = Vec::with_capacity(self.insns.len());
        for (i, ins) in self.insns.iter().enumerate() {
            let rel = |t: &Target| -> Result<u8, String> {
                match *t {
                    Target::Next => Ok(0),
                    Target::Label(l) => {
                        let at = self.labels[l].ok_or("unbound label")?;
                        u8::try_from(at.checked_sub(i + 1).ok_or("backward jump")?)
                            .map_err(|_| "conditional jump too far".to_string())
                    }
                }
            };
            let k = match ins.ja {
                Some(l) => {
                    let at = self.labels[l].ok_or("unbound label")?;
                    at.checked_sub(i + 1).ok_or("backward jump")? as u32
                }
                None => ins.k,
            };
            out.push(SockFilter { code: ins.code, jt: rel(&ins.jt)?, jf: rel(&ins.jf)?, k });
        }
        if out.len() > 4096 {
            return Err(format!("filter of {} instructions is too long", out.len()));
        }
        Ok(out)
    }
}

fn deny_ret(a: DenyAction) -> u32 {
    match a {
        DenyAction::Errno(e) => RET_ERRNO | (e as u32 & 0xffff),
        DenyAction::Kill => RET_TRAP | TRAP_DENIED as u32,
    }
}

/// Allow the number in the accumulator if it is in one of `runs`
/// (ascending, disjoint), else trap: a binary search down to a few runs,
/// then a chain (nr above the run: the next; in it: allowed; below: a gap).
fn number_search(a: &mut Asm, runs: &[(u32, u32)]) {
    if runs.len() > 4 {
        let mid = runs.len() / 2;
        let (left, right) = (a.label(), a.label());
        // Above the left half's last number: the right half (a long jump,
        // for halves longer than a conditional jump reaches).
        a.jmp(JGT_K, runs[mid - 1].1, Target::Next, Target::Label(left));
        a.ja(right);
        a.bind(left);
        number_search(a, &runs[..mid]);
        a.bind(right);
        number_search(a, &runs[mid..]);
        return;
    }
    for &(lo, hi) in runs {
        let (next, ok, bad) = (a.label(), a.label(), a.label());
        a.jmp(JGT_K, hi, Target::Label(next), Target::Next);
        a.jmp(JGE_K, lo, Target::Label(ok), Target::Label(bad));
        a.bind(ok);
        a.ret(RET_ALLOW);
        a.bind(bad);
        a.ret(RET_TRAP | TRAP_GATE as u32);
        a.bind(next);
    }
    a.ret(RET_TRAP | TRAP_GATE as u32);
}

/// The filter program for `plan`.
pub fn program(plan: &Plan) -> Result<Vec<SockFilter>, String> {
    let mut a = Asm::new();
    let (not_x86, i386, allow, trap_cache, gate, sigmask, safe, int80) =
        (a.label(), a.label(), a.label(), a.label(), a.label(), a.label(), a.label(), a.label());
    // The gate's forward first: most calls come from there.
    a.ld(OFF_ARCH);
    a.jmp(JEQ_K, AUDIT_ARCH_X86_64, Target::Next, Target::Label(not_x86));
    a.if_ip(plan.gate_ip, gate);
    a.if_ip(plan.sigmask_ip, sigmask);
    a.if_ip(plan.safe_ip, safe);
    a.if_ip_in(plan.cache, trap_cache);
    a.ret(RET_ALLOW);
    a.bind(not_x86);
    a.jmp(JEQ_K, AUDIT_ARCH_I386, Target::Label(i386), Target::Label(allow));
    a.bind(i386);
    a.if_ip(plan.int80_ip, int80);
    a.if_ip_in(plan.cache, trap_cache);
    a.bind(allow);
    a.ret(RET_ALLOW);
    a.bind(trap_cache);
    a.ret(RET_TRAP | TRAP_CACHE as u32);

    // The gate's forward: -1 (skipped by a tracer), then the numbers, as
    // ranges.
    a.bind(gate);
    a.ld(OFF_NR);
    let not_skipped = a.label();
    a.jmp(JEQ_K, u32::MAX, Target::Next, Target::Label(not_skipped));
    a.ret(RET_ALLOW);
    a.bind(not_skipped);
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for &nr in &plan.forward {
        match runs.last_mut() {
            Some((_, hi)) if *hi + 1 == nr => *hi = nr,
            _ => runs.push((nr, nr)),
        }
    }
    number_search(&mut a, &runs);

    a.bind(sigmask);
    a.ld(OFF_NR);
    let bad = a.label();
    a.jmp(JEQ_K, libc::SYS_rt_sigprocmask as u32, Target::Next, Target::Label(bad));
    a.ret(RET_ALLOW);
    a.bind(bad);
    a.ret(RET_TRAP | TRAP_GATE as u32);

    for (site, denies) in [(safe, &plan.deny64), (int80, &plan.deny32)] {
        a.bind(site);
        a.ld(OFF_NR);
        for &(nr, act) in denies.iter() {
            let skip = a.label();
            a.jmp(JEQ_K, nr, Target::Next, Target::Label(skip));
            a.ret(deny_ret(act));
            a.bind(skip);
        }
        a.ret(RET_ALLOW);
    }
    a.finish()
}

/// What `program` decides for a call, computed the way the kernel runs it
/// (for tests: a classic-BPF interpreter over the few opcodes used).
pub fn run(prog: &[SockFilter], nr: u32, arch: u32, ip: u64) -> u32 {
    let word = |off: u32| -> u32 {
        match off {
            OFF_NR => nr,
            OFF_ARCH => arch,
            OFF_IP_LO => ip as u32,
            OFF_IP_HI => (ip >> 32) as u32,
            _ => 0,
        }
    };
    let (mut pc, mut acc) = (0usize, 0u32);
    loop {
        let i = prog[pc];
        pc += 1;
        match i.code {
            LD_W_ABS => acc = word(i.k),
            JA => pc += i.k as usize,
            RET_K => return i.k,
            JEQ_K | JGT_K | JGE_K => {
                let taken = match i.code {
                    JEQ_K => acc == i.k,
                    JGT_K => acc > i.k,
                    _ => acc >= i.k,
                };
                pc += if taken { i.jt } else { i.jf } as usize;
            }
            c => panic!("opcode {c:#x}"),
        }
    }
}

/// The ranges older images' filters name, as `--isolated=` carries them:
/// `RETRIES:START-END,START-END,...` (hex).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Inherited {
    /// How many times this exec has been retried to land clear of them.
    pub retries: u32,
    pub ranges: Vec<(u64, u64)>,
}

impl Inherited {
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("invalid --isolated '{s}'");
        let (n, list) = s.split_once(':').ok_or_else(bad)?;
        let retries = n.parse().map_err(|_| bad())?;
        let mut ranges = Vec::new();
        for r in list.split(',').filter(|r| !r.is_empty()) {
            let (a, b) = r.split_once('-').ok_or_else(bad)?;
            let a = u64::from_str_radix(a, 16).map_err(|_| bad())?;
            let b = u64::from_str_radix(b, 16).map_err(|_| bad())?;
            if a >= b {
                return Err(bad());
            }
            ranges.push((a, b));
        }
        Ok(Inherited { retries, ranges })
    }

    pub fn format(&self) -> String {
        let mut s = format!("{}:", self.retries);
        for (i, (a, b)) in self.ranges.iter().enumerate() {
            let _ = write!(s, "{}{a:x}-{b:x}", if i > 0 { "," } else { "" });
        }
        s
    }
}

/// The executable mappings of this process (its code and the vDSO), from
/// /proc/self/maps.
pub fn executable_ranges() -> std::io::Result<Vec<(u64, u64)>> {
    let maps = std::fs::read_to_string("/proc/self/maps")?;
    Ok(maps.lines().filter_map(crate::procfs::maps_line).filter(|m| m.executable()).map(|m| (m.start, m.end)).collect())
}

/// Does any stale rule cover an address in `exec`? A site rule names the
/// address after an instruction, so a range's end counts too.
pub fn stale_rules_hit(stale: &[(u64, u64)], exec: &[(u64, u64)]) -> bool {
    stale.iter().any(|&(s, e)| exec.iter().any(|&(a, b)| s <= b && a <= e))
}

/// At the start of an exec'd bt-run (before anything else): if an older
/// image's filter names an address of this image's code or vDSO, execute
/// bt-run again (a new random base) with the retry counted in `args`.
/// Returns only when this image is clear of every inherited rule, or with
/// the reason it cannot be.
pub fn settle_after_exec(args: &[std::ffi::OsString]) -> Result<(), String> {
    const PREFIX: &str = "--isolated=";
    const MAX_RETRIES: u32 = 32;
    let end = args.iter().position(|a| a == "--").unwrap_or(args.len());
    let Some(at) = args[..end].iter().position(|a| a.to_string_lossy().starts_with(PREFIX)) else {
        return Ok(());
    };
    let mut inherited = Inherited::parse(&args[at].to_string_lossy()[PREFIX.len()..])?;
    let exec = executable_ranges().map_err(|e| format!("cannot read /proc/self/maps: {e}"))?;
    // A site rule on one of this image's own sites was made by the same
    // bt-run at the same base (page-aligned bases, and the sites within one
    // page of each other, leave no other way), with the same options: it
    // says what this image's own rule will say. (Without address
    // randomization, every image of a chain lands there.)
    let own = crate::sys::trampolines::guest_call_sites();
    let stale: Vec<(u64, u64)> =
        inherited.ranges.iter().copied().filter(|&(s, e)| !(e == s + 1 && own.contains(&s))).collect();
    if !stale_rules_hit(&stale, &exec) {
        return Ok(());
    }
    if inherited.retries >= MAX_RETRIES {
        return Err(format!(
            "cannot place bt-run clear of an inherited isolation filter after {MAX_RETRIES} tries (is address space layout randomization off?)"
        ));
    }
    inherited.retries += 1;
    let mut again = args.to_vec();
    again[at] = format!("{PREFIX}{}", inherited.format()).into();
    let e = crate::sys::seccomp::reexec(&again);
    Err(format!("cannot execute bt-run again: {e}"))
}

/// Under isolation, must the guest be refused descriptor `fd`, just opened
/// for it with `flags`? Yes if it is a writable alias of one of `reserved`
/// (bt-run's ranges: the code cache's memfd, reached through
/// /proc/self/map_files or a /proc/self/fd link), matched by device and
/// inode against /proc/self/maps. Read-only and O_PATH descriptors write
/// nothing. (A process's memory file is `is_memory_file`.)
pub fn fd_writes_memory(fd: i64, flags: u64, reserved: &[(u64, u64)]) -> bool {
    use std::os::unix::fs::MetadataExt;
    if !opened_for_writing(flags) {
        return false;
    }
    let Ok(md) = std::fs::metadata(format!("/proc/self/fd/{fd}")) else { return false };
    let (dev, ino) = (md.dev(), md.ino());
    let want = format!("{:02x}:{:02x}", libc::major(dev), libc::minor(dev));
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else { return false };
    maps.lines()
        .filter_map(crate::procfs::maps_line)
        .any(|m| m.dev == want && m.inode == ino && reserved.iter().any(|&(s, e)| m.start < e && s < m.end))
}

/// Do open flags `flags` allow writing through the descriptor?
pub fn opened_for_writing(flags: u64) -> bool {
    flags & libc::O_ACCMODE as u64 != libc::O_RDONLY as u64 && flags & libc::O_PATH as u64 == 0
}

/// Is descriptor `fd` a process's memory file (/proc/PID/mem,
/// /proc/PID/task/TID/mem, wherever proc is mounted)? Writes through one
/// go past page protections and past the split, into bt-run's memory or
/// another bt-run process's.
pub fn is_memory_file(fd: i64) -> bool {
    crate::sys::fds::is_procfs(fd as i32)
        && std::fs::read_link(format!("/proc/self/fd/{fd}")).is_ok_and(|p| p.file_name() == Some("mem".as_ref()))
}

/// The one line bt-run writes when its filter trapped a call: None if the
/// SIGSYS is not one of bt-run's (a guest's own filter, or a signal sent).
pub fn trap_report(data: u16, nr: u64, arch: u32, ip: u64, plan: &Plan) -> Option<String> {
    let name = if arch == AUDIT_ARCH_I386 {
        syscall_inline::Abi::I386.lookup(nr).map(|s| s.name)
    } else {
        syscall_inline::name(nr)
    };
    let call = match name {
        Some(n) => format!("{n} ({nr})"),
        None => format!("{nr}"),
    };
    let in_cache = ip >= plan.cache.0 && ip < plan.cache.1;
    let why = match data {
        TRAP_CACHE if in_cache => "made by native code in the code cache (an escape from translation)",
        TRAP_GATE if ip == plan.gate_ip || ip == plan.sigmask_ip => {
            "at the gate, which the run's syscall table does not let through (its table was changed)"
        }
        TRAP_DENIED if ip == plan.safe_ip || ip == plan.int80_ip => "denied by the policy reached the kernel's door",
        _ => return None,
    };
    Some(format!("bt-run: isolation: system call {call} at {ip:#x} {why}; killed\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan {
            cache: (0x7f12_3400_0000, 0x7f12_4400_0000),
            gate_ip: 0x5555_0000_1234,
            sigmask_ip: 0x5555_0000_1300,
            safe_ip: 0x5555_0000_1400,
            int80_ip: 0x5555_0000_1500,
            forward: vec![0, 1, 2, 3, 5, 8, 9, 10, 200, 201],
            deny64: vec![(231, DenyAction::Kill), (39, DenyAction::Errno(13))],
            deny32: vec![(252, DenyAction::Kill)],
        }
    }

    const X64: u32 = AUDIT_ARCH_X86_64;
    const I32: u32 = AUDIT_ARCH_I386;

    #[test]
    fn code_cache_traps_everything() {
        let p = plan();
        let f = program(&p).unwrap();
        for ip in [p.cache.0, p.cache.0 + 1, p.cache.1 - 1, 0x7f12_3fff_ffff] {
            for arch in [X64, I32] {
                assert_eq!(run(&f, 1, arch, ip), RET_TRAP | TRAP_CACHE as u32, "{ip:#x}");
            }
        }
        for ip in [p.cache.0 - 1, p.cache.1, 0x7f13_3400_0000, 0x7e12_3400_0000, 0x3400_0000] {
            assert_eq!(run(&f, 1, X64, ip), RET_ALLOW, "{ip:#x}");
        }
    }

    #[test]
    fn cache_range_across_a_4gib_boundary() {
        let mut p = plan();
        p.cache = (0x7f12_ffff_f000, 0x7f13_0000_1000);
        let f = program(&p).unwrap();
        for ip in [0x7f12_ffff_f000, 0x7f12_ffff_ffff, 0x7f13_0000_0000, 0x7f13_0000_0fff] {
            assert_eq!(run(&f, 0, X64, ip), RET_TRAP | TRAP_CACHE as u32, "{ip:#x}");
        }
        for ip in [0x7f12_ffff_efff, 0x7f13_0000_1000, 0x7f12_0000_0000, 0x7f13_ffff_f000] {
            assert_eq!(run(&f, 0, X64, ip), RET_ALLOW, "{ip:#x}");
        }
    }

    #[test]
    fn gate_site_lets_through_only_forwarded_numbers() {
        let p = plan();
        let f = program(&p).unwrap();
        for nr in 0..600 {
            let want = if p.forward.contains(&nr) { RET_ALLOW } else { RET_TRAP | TRAP_GATE as u32 };
            assert_eq!(run(&f, nr, X64, p.gate_ip), want, "nr {nr}");
        }
        // A call a tracer skipped (-1) enters no kernel code.
        assert_eq!(run(&f, u32::MAX, X64, p.gate_ip), RET_ALLOW);
        // x32 numbers and the i386 ABI are never forwarded there.
        assert_eq!(run(&f, 0x4000_0001, X64, p.gate_ip), RET_TRAP | TRAP_GATE as u32);
        // Only the exact address (one byte off is bt-run's own code).
        assert_eq!(run(&f, 231, X64, p.gate_ip + 1), RET_ALLOW);
        assert_eq!(run(&f, 231, X64, p.gate_ip + (1 << 32)), RET_ALLOW);
    }

    #[test]
    fn sigmask_site_makes_only_rt_sigprocmask() {
        let p = plan();
        let f = program(&p).unwrap();
        assert_eq!(run(&f, 14, X64, p.sigmask_ip), RET_ALLOW);
        assert_eq!(run(&f, 231, X64, p.sigmask_ip), RET_TRAP | TRAP_GATE as u32);
    }

    #[test]
    fn guest_call_sites_apply_the_policy() {
        let p = plan();
        let f = program(&p).unwrap();
        assert_eq!(run(&f, 231, X64, p.safe_ip), RET_TRAP | TRAP_DENIED as u32);
        assert_eq!(run(&f, 39, X64, p.safe_ip), RET_ERRNO | 13);
        assert_eq!(run(&f, 60, X64, p.safe_ip), RET_ALLOW);
        assert_eq!(run(&f, 252, I32, p.int80_ip), RET_TRAP | TRAP_DENIED as u32);
        assert_eq!(run(&f, 231, I32, p.int80_ip), RET_ALLOW);
        // Each ABI's rules at its own site only.
        assert_eq!(run(&f, 252, X64, p.int80_ip), RET_ALLOW);
        assert_eq!(run(&f, 231, I32, p.safe_ip), RET_ALLOW);
        // Elsewhere: bt-run's own calls.
        assert_eq!(run(&f, 231, X64, 0x5555_0000_2000), RET_ALLOW);
    }

    #[test]
    fn a_full_table_fits() {
        let mut p = plan();
        // Every other number forwarded: the most runs there can be.
        p.forward = (0..512).step_by(2).collect();
        p.deny64 = (0..400).map(|n| (n, DenyAction::Errno(1))).collect();
        let f = program(&p).unwrap();
        assert_eq!(run(&f, 4, X64, p.gate_ip), RET_ALLOW);
        assert_eq!(run(&f, 5, X64, p.gate_ip), RET_TRAP | TRAP_GATE as u32);
        assert_eq!(run(&f, 399, X64, p.safe_ip), RET_ERRNO | 1);
    }

    #[test]
    fn inherited_ranges_round_trip_and_reject_garbage() {
        let i = Inherited { retries: 3, ranges: vec![(0x1000, 0x2000), (0x7fff_0000_1234, 0x7fff_0000_1235)] };
        assert_eq!(Inherited::parse(&i.format()).unwrap(), i);
        assert_eq!(Inherited::parse("0:").unwrap(), Inherited::default());
        for bad in ["", "x:", "1:10", "1:20-10", "1:zz-30"] {
            assert!(Inherited::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn stale_rules_are_found_on_executable_ranges() {
        let exec = [(0x1000, 0x3000)];
        assert!(stale_rules_hit(&[(0x2000, 0x2001)], &exec));
        // A site rule names the address after the instruction: the end counts.
        assert!(stale_rules_hit(&[(0x3000, 0x3001)], &exec));
        assert!(stale_rules_hit(&[(0x0, 0x1000)], &exec));
        assert!(!stale_rules_hit(&[(0x3001, 0x4000)], &exec));
        assert!(!stale_rules_hit(&[], &exec));
    }

    #[test]
    fn the_gate_may_make_what_the_layer_allows_and_bt_run_need_not_serve() {
        let denied = |nr: u64| nr == libc::SYS_getppid as u64;
        let g = gate_numbers(denied);
        for (nr, want) in [
            (libc::SYS_read, true),
            (libc::SYS_getpid, true),
            (libc::SYS_openat, true),
            (libc::SYS_setuid, true),
            (libc::SYS_getppid, false),
            (libc::SYS_mmap, false),
            (libc::SYS_rt_sigaction, false),
            (libc::SYS_clone, false),
            (libc::SYS_execve, false),
            (libc::SYS_exit_group, false),
            (libc::SYS_rt_sigreturn, false),
            (libc::SYS_close_range, false),
            (libc::SYS_ptrace, false),
            (libc::SYS_madvise, false),
            (libc::SYS_readv, false),
            (libc::SYS_recvmsg, false),
            (libc::SYS_bpf, false),
            (libc::SYS_pread64, true),
        ] {
            assert_eq!(g.contains(&(nr as u32)), want, "{nr}");
        }
        assert!(g.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn reports_name_only_bt_runs_own_traps() {
        let p = plan();
        let r = trap_report(TRAP_CACHE, 231, X64, p.cache.0 + 0x10, &p).unwrap();
        assert!(r.starts_with("bt-run: isolation: system call exit_group (231) at 0x7f1234000010"), "{r}");
        assert_eq!(r.lines().count(), 1);
        assert!(trap_report(TRAP_GATE, 231, X64, p.gate_ip, &p).is_some());
        // Data of bt-run's but an address its filter does not name: a guest's.
        assert!(trap_report(TRAP_CACHE, 231, X64, 0x1000, &p).is_none());
        assert!(trap_report(7, 231, X64, p.cache.0, &p).is_none());
    }
}
