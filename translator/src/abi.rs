//! The per-thread `GuestContext` shared by Rust and emitted code.
//!
//! Translated code reaches it through the GS base (bt-run owns GS; the guest
//! owns FS), so every field used by emitted code or the hand-written
//! trampolines has a constant offset below, checked against `offset_of!` by
//! the tests at the bottom of this file.

use crate::context_box::ContextBox;

/// Number of general-purpose registers, in hardware encoding order
/// (rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8..r15).
pub const NGPR: usize = 16;

/// Register indices in hardware encoding order.
pub mod reg {
    pub const RAX: usize = 0;
    pub const RCX: usize = 1;
    pub const RDX: usize = 2;
    pub const RBX: usize = 3;
    pub const RSP: usize = 4;
    pub const RBP: usize = 5;
    pub const RSI: usize = 6;
    pub const RDI: usize = 7;
    pub const R8: usize = 8;
    pub const R9: usize = 9;
    pub const R10: usize = 10;
    pub const R11: usize = 11;
    pub const R12: usize = 12;
    pub const R13: usize = 13;
    pub const R14: usize = 14;
    pub const R15: usize = 15;
}

/// Size reserved for the XSAVE image of the guest's extended state.
pub const XSAVE_SIZE: usize = 8192;

/// Why translated code handed control back to the dispatcher.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum ExitReason {
    /// A direct branch reached an unlinked exit stub; `exit_id` names it.
    Branch = 1,
    /// An indirect branch missed the in-cache lookup table.
    IndirectMiss = 2,
    /// A `syscall` whose disposition needs Rust; `rip` is the next guest pc.
    Syscall = 3,
    /// The guest reached an instruction the CPU rejects (#UD).
    Illegal = 4,
    /// A signal became pending while the thread was in the cache.
    Signal = 5,
    /// The guest pc is not (or not entirely) in guest-executable memory.
    FetchFault = 6,
    /// A valid instruction bt-run cannot translate yet (reported as SIGILL
    /// at its address, with a message if the guest does not handle it).
    Unsupported = 7,
    /// A signal became pending while the gate forwarded a syscall; rax holds
    /// the syscall's result and `gate_nr` its number (it may need a restart).
    SyscallSignal = 8,
    /// A `popf` at `rip` is about to set the trap flag: the dispatcher pops
    /// the flags itself and single-steps the guest from then on.
    TrapFlag = 9,
    /// `int $0x80`, an i386 system call: `rip` is the next guest pc, every
    /// register and the flags are the guest's.
    Int80 = 10,
    /// `int3`: `rip` is the next guest pc (where the kernel reports the
    /// trap); the dispatcher raises SIGTRAP, so that a debugger's
    /// breakpoint is seen where it is and taken out when it is removed.
    Breakpoint = 11,
    /// A store at `rip` would write at or above [`GUEST_LIMIT`] (confined
    /// stores, isolation): every register is the guest's; the dispatcher
    /// reports SIGSEGV there as for unmapped memory.
    StoreFault = 12,
    /// The instruction before `rip` left rsp at or above [`GUEST_LIMIT`]
    /// (confined stores): SIGSEGV at `rip`, for the stack's address.
    StackFault = 13,
    /// A direct branch reached an unlinked plain exit stub, which names
    /// the exit by `exit_id` only (`rip` is not yet the guest pc): the
    /// dispatcher takes the target from the exit's record and goes on as
    /// for `Branch`.
    BranchStub = 14,
}

/// Under isolation every guest mapping lies below this (64 TiB) and
/// bt-run's memory above it; confined stores check their address against
/// it (see docs/design.md, "Isolation").
pub const GUEST_LIMIT: u64 = 1 << 46;
/// The inaccessible band just above [`GUEST_LIMIT`] under isolation: a
/// store whose base is below the limit and whose displacement is a disp32
/// (rsp-relative, a pushed word, a string instruction running upward), or
/// a scatter's element (a signed 32-bit index times at most 8 from such a
/// base), faults there rather than reach bt-run's memory.
pub const GUEST_GUARD: u64 = 64 << 30;

impl ExitReason {
    pub fn from_raw(v: u64) -> Option<Self> {
        Some(match v {
            1 => Self::Branch,
            2 => Self::IndirectMiss,
            3 => Self::Syscall,
            4 => Self::Illegal,
            5 => Self::Signal,
            6 => Self::FetchFault,
            7 => Self::Unsupported,
            8 => Self::SyscallSignal,
            9 => Self::TrapFlag,
            10 => Self::Int80,
            11 => Self::Breakpoint,
            12 => Self::StoreFault,
            13 => Self::StackFault,
            14 => Self::BranchStub,
            _ => return None,
        })
    }
}

/// The guest's register file plus the slots emitted code and trampolines use.
/// One per guest thread; GS base points at it while the thread runs.
#[repr(C, align(64))]
pub struct GuestContext {
    pub gpr: [u64; NGPR],
    pub rip: u64,
    pub rflags: u64,
    pub guest_fs: u64,
    pub guest_gs: u64,
    pub host_fs: u64,
    /// Host stack pointer saved by the cache entry trampoline.
    pub host_rsp: u64,
    /// Cache address the entry trampoline jumps to.
    pub entry_target: u64,
    pub exit_reason: u64,
    /// Which exit stub left the cache (for linking), or which inline-cache
    /// site a lookup miss comes from. `NO_SITE` whenever cached code runs
    /// (the dispatcher sets it before every entry), so a lookup that does
    /// not name its site (a return, a table lookup) leaves with `NO_SITE`
    /// without a store of its own.
    pub exit_id: u64,
    pub spill_rcx: u64,
    pub spill_rdx: u64,
    pub spill_rax: u64,
    /// Guest value of the scratch register used for far rip-relative operands.
    pub spill_scratch: u64,
    pub ibl_target: u64,
    pub ibl_jump: u64,
    /// Base of the in-cache indirect-branch table (indirect entries, one
    /// `u64` per slot).
    pub ibl_table: u64,
    /// Base of the 512-byte syscall disposition table read by the gate.
    pub sys_table: u64,
    pub gate_ret: u64,
    pub gate_next: u64,
    pub gate_flags: u64,
    pub gate_rsp: u64,
    /// 1 while a signal waits for delivery at the next safe point, else 0
    /// (never another value). Translated lookups add twice it to the slot
    /// index they probe: a target is only ever in its home slot or the next,
    /// so with a signal pending both probes miss and the thread leaves for
    /// the dispatcher at its next indirect branch, with no test on the hit
    /// path.
    pub signal_pending: u64,
    /// Address of this context (for trampolines that need a plain pointer).
    pub self_ptr: u64,
    /// Host address of the common exit trampoline (reached via `jmp gs:[..]`).
    pub exit_tramp: u64,
    /// Host address of the syscall gate.
    pub gate_entry: u64,
    /// Cache address of the lookups' shared second probe (see
    /// `CodeCache::ibl_probe2`), where a block's indirect entry goes when
    /// the target is not the block.
    pub ibl_probe2: u64,
    /// Count of syscalls forwarded by the gate's fast path.
    pub fast_forwards: u64,
    /// Count of in-cache indirect lookups that missed.
    pub ibl_misses: u64,
    /// Host address of the shared lookup-miss exit (see `bt_ibl_miss`).
    pub ibl_miss: u64,
    /// The runtime's per-thread signal state (opaque to emitted code).
    pub thread_sig: u64,
    /// Answers for in-process syscalls, indexed by number (see the gate).
    pub answers: u64,
    /// This thread's kernel tid (the gate answers gettid with it).
    pub tid: u64,
    /// Count of syscalls the gate answered in-process.
    pub inline_served: u64,
    /// The number of the syscall the gate is executing (for restarts).
    pub gate_nr: u64,
    /// What a tracer of this process is shown (see the runtime's
    /// `ptrace_view`): `VIEW_MAGIC` once the context is set up, the host
    /// addresses just after the gate's `syscall` and the marker's, and the
    /// call the runtime is serving (number, arguments, 1 for an i386 call).
    pub view_magic: u64,
    pub view_after_gate: u64,
    pub view_after_marker: u64,
    pub view_nr: u64,
    pub view_args: [u64; 6],
    pub view_abi: u64,
    /// A signal bt-run raised for real only so that a tracer sees it (the
    /// host handler clears it and does nothing else).
    pub view_echo: u64,
    /// Nonzero while a tracer single-steps this thread (PTRACE_SINGLESTEP):
    /// the dispatcher steps it as for EFLAGS.TF, without the guest's flags
    /// showing it, and clears it at the trap.
    pub view_step: u64,
    /// `--stats`: indirect-branch lookups made by translated code, by kind
    /// of site (`SiteKind`), and the kind of the last one (a miss that
    /// reaches the dispatcher is counted there by it).
    pub site_lookups: [u64; 3],
    pub site_kind: u64,
    /// Of `site_lookups`, those that went on to the indirect-branch table
    /// (the site's inline cache did not hold the target).
    pub site_table: [u64; 3],
    /// The gate table to use while the kernel's signal mask lags behind
    /// the guest's (the runtime's; the gate switches to it when its own
    /// `rt_sigprocmask` blocks lazily). 0: the gate leaves that to the
    /// runtime.
    pub sys_table_sync: u64,
    /// Host address of the exit of plain direct-branch stubs, which carry
    /// only their exit id (see `bt_exit_branch`).
    pub exit_branch: u64,
    pub _pad: [u64; 8],
    /// XSAVE image of the guest's x87/SSE/AVX state while it is not loaded.
    pub xsave: [u8; XSAVE_SIZE],
    pub _tail: [u8; CONTEXT_TAIL],
    /// A confined store's check keeps its scratch register's guest value
    /// here and reloads it indexed by the store address's bits 46-61
    /// (`off::STORE_PROBE`): the last 8 bytes of the context's pages, after
    /// which its mapping has `STORE_PROBE_HOLE` bytes that fault
    /// (`ContextBox`), so the reload faults for any index but 0.
    pub store_probe: u64,
}

/// Padding that makes `GuestContext` end on a page, with `store_probe` its
/// last 8 bytes.
const CONTEXT_TAIL: usize =
    (off::XSAVE as usize + XSAVE_SIZE + 8).next_multiple_of(4096) - (off::XSAVE as usize + XSAVE_SIZE + 8);

/// Inaccessible bytes after a context (`ContextBox`): a store probe's
/// index (16 bits) times 8.
pub const STORE_PROBE_HOLE: usize = 8 << 16;

pub mod off {
    //! Byte offsets of `GuestContext` fields, as emitted code uses them.
    pub const GPR: i32 = 0;
    pub const RIP: i32 = 128;
    pub const RFLAGS: i32 = 136;
    pub const GUEST_FS: i32 = 144;
    pub const GUEST_GS: i32 = 152;
    pub const HOST_FS: i32 = 160;
    pub const HOST_RSP: i32 = 168;
    pub const ENTRY_TARGET: i32 = 176;
    pub const EXIT_REASON: i32 = 184;
    pub const EXIT_ID: i32 = 192;
    pub const SPILL_RCX: i32 = 200;
    pub const SPILL_RDX: i32 = 208;
    pub const SPILL_RAX: i32 = 216;
    pub const SPILL_SCRATCH: i32 = 224;
    pub const IBL_TARGET: i32 = 232;
    pub const IBL_JUMP: i32 = 240;
    pub const IBL_TABLE: i32 = 248;
    pub const SYS_TABLE: i32 = 256;
    pub const GATE_RET: i32 = 264;
    pub const GATE_NEXT: i32 = 272;
    pub const GATE_FLAGS: i32 = 280;
    pub const GATE_RSP: i32 = 288;
    pub const SIGNAL_PENDING: i32 = 296;
    pub const SELF_PTR: i32 = 304;
    pub const EXIT_TRAMP: i32 = 312;
    pub const GATE_ENTRY: i32 = 320;
    pub const IBL_PROBE2: i32 = 328;
    pub const FAST_FORWARDS: i32 = 336;
    pub const IBL_MISSES: i32 = 344;
    pub const IBL_MISS: i32 = 352;
    pub const THREAD_SIG: i32 = 360;
    pub const ANSWERS: i32 = 368;
    pub const TID: i32 = 376;
    pub const INLINE_SERVED: i32 = 384;
    pub const GATE_NR: i32 = 392;
    pub const SITE_LOOKUPS: i32 = 504;
    pub const SITE_KIND: i32 = 528;
    pub const SITE_TABLE: i32 = 536;
    pub const SYS_TABLE_SYNC: i32 = 560;
    pub const EXIT_BRANCH: i32 = 568;
    pub const XSAVE: i32 = 640;
    pub const STORE_PROBE: i32 = (std::mem::size_of::<super::GuestContext>() - 8) as i32;

    /// Offset of general-purpose register `r` (hardware order).
    pub const fn gpr(r: usize) -> i32 {
        GPR + 8 * r as i32
    }
}

/// The kinds of indirect-branch sites `--stats` counts separately.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SiteKind {
    Ret = 0,
    Jmp = 1,
    Call = 2,
}

impl SiteKind {
    pub const ALL: [SiteKind; 3] = [SiteKind::Ret, SiteKind::Jmp, SiteKind::Call];

    pub fn label(self) -> &'static str {
        match self {
            SiteKind::Ret => "ret",
            SiteKind::Jmp => "indirect jmp",
            SiteKind::Call => "indirect call",
        }
    }
}

/// `GuestContext::view_magic` of a context a tracer may read ("bt-run
/// view", with the context's layout version in the low byte).
pub const VIEW_MAGIC: u64 = 0x6274_2d72_756e_7601;

/// log2 of the number of IBL home slots; the hash is the low 16 bits of the
/// pc, which `movzx` extracts without touching flags. A slot holds the
/// address of a block's indirect entry (or of the shared empty entry); the
/// block checks that it is the target itself (see `INDIRECT_ENTRY`). A pc
/// lives in its home slot or the one after it (two probes), so the table
/// has one slot more; and two more that only ever hold the empty entry, for
/// a thread with a signal pending, whose lookups probe two slots further on
/// (see `GuestContext::signal_pending`).
pub const IBL_BITS: u32 = 16;
pub const IBL_SLOTS: usize = 1 << IBL_BITS;
pub const IBL_TABLE_SLOTS: usize = IBL_SLOTS + 3;

/// Every block's code starts with its indirect entry, where indirect-branch
/// lookups land (rcx = guest target, rdx free, the guest's rcx and rdx in
/// `SPILL_RCX`/`SPILL_RDX`):
///
/// ```text
/// +0   mov rdx, -pc                  ; 48 BA imm64: this block's guest pc, negated
/// +10  lea rcx, [rcx + rdx]          ; target - pc, flags untouched
/// +14  jrcxz +32
/// +16  not rdx
/// +19  lea rcx, [rcx + rdx + 1]      ; the target again
/// +24  jmp gs:[IBL_PROBE2]           ; not this block: the second probe
/// +32  mov rcx, gs:[SPILL_RCX]       ; INDIRECT_HIT: it is this block
/// +41  mov rdx, gs:[SPILL_RDX]
/// ```
///
/// (after `INDIRECT_ENTRY` bytes of padding that never run) and goes on at
/// its (direct) entry, `BLOCK_ENTRY` bytes in, 16-byte aligned, where
/// exits, inline caches and the dispatcher come in.
pub const BLOCK_ENTRY: u32 = 64;
/// Offset of the indirect entry in a block's code.
pub const INDIRECT_ENTRY: u32 = BLOCK_ENTRY - 50;
/// Offset, from an indirect entry, of the part that restores rcx and rdx
/// once the target is known to be the block's.
pub const INDIRECT_HIT: u64 = 32;
/// Offset, from an indirect entry, of its `-pc` (the imm64 of `mov rdx`).
pub const INDIRECT_PC_AT: usize = 2;
/// From a block's (direct) entry back to its indirect entry.
pub const IBL_ENTRY_BACK: u64 = (BLOCK_ENTRY - INDIRECT_ENTRY) as u64;

/// The slots guest `pc` may occupy in the indirect-branch table.
pub fn ibl_slots(pc: u64) -> [usize; 2] {
    let home = (pc & (IBL_SLOTS as u64 - 1)) as usize;
    [home, home + 1]
}

/// Guest value reserved to mean "empty IBL slot" (never a valid code address).
pub const IBL_EMPTY: u64 = u64::MAX;

/// Entries in each indirect site's inline cache: guest targets compared
/// with the site's target before the table lookup, each with a direct
/// (linkable) jump to its translation (see `BlockBuilder::emit_lookup`).
/// Three: C++ virtual calls through one site to three classes by turns
/// (`bench/vcall.cpp`) ran 0.34 s with two and 0.305 s with three (medians
/// over 8 code placements, native 0.21 s); python3, perl and qsort the same.
pub const IC_ENTRIES: usize = 3;

/// Indirect sites that get an inline cache, as a mask of `1 << SiteKind`
/// and `IC_GOT_JUMPS`.
/// Measured (docs/design.md, "Inline caches"): worth it at indirect calls,
/// at jumps through a rip-relative pointer (PLT stubs and `-fno-plt` code
/// jumping through the GOT: one target each) and, since sites are re-armed
/// to follow their current targets, at returns (while the process has one
/// thread: `CodeCache::go_threaded`); at other indirect jumps (switches,
/// computed gotos) the entries mostly miss and cost more than they save.
pub const IC_KINDS: u32 = (1 << SiteKind::Call as u32) | (1 << SiteKind::Ret as u32) | IC_GOT_JUMPS;

/// In `IC_KINDS`: `jmp [rip + disp]`.
pub const IC_GOT_JUMPS: u32 = 1 << 3;

/// The target an empty inline-cache entry holds: non-canonical, so no
/// guest branch reaches it except one that faults anyway (and that one
/// takes the entry's exit stub to the dispatcher, which faults it as a
/// lookup miss would).
pub const IC_EMPTY: u64 = 0x8000_0000_0000_0000;

/// `exit_id` of a lookup miss from a site without an inline cache.
pub const NO_SITE: u32 = u32::MAX;

/// In `exit_id`, with the site's first entry: the site's inline cache is
/// full and `IC_REARM_PERIOD`-or-more lookups there went on to the table
/// since it was last (re)filled (see `CodeCache::ic_rearm`).
pub const IC_REARM: u32 = 1 << 30;

/// Guest registers that live in the context's spill slots, not in the CPU,
/// while a translated instruction that can fault runs (recorded per such
/// instruction at translation time: `Translation::spilled`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Spilled {
    /// The guest's rcx is in `SPILL_RCX`.
    pub rcx: bool,
    /// The guest's rdx is in `SPILL_RDX`.
    pub rdx: bool,
    /// This register (a `reg` number) is in `SPILL_SCRATCH`.
    pub scratch: Option<u8>,
    /// The instruction is a confined store's check, the reload of this
    /// register from `GuestContext::store_probe`: its fault means the store
    /// aimed at or above `GUEST_LIMIT`, the `StoreFault` exit.
    pub probe: Option<u8>,
}

impl Spilled {
    pub const RCX: Self = Self { rcx: true, rdx: false, scratch: None, probe: None };
    pub const RCX_RDX: Self = Self { rcx: true, rdx: true, scratch: None, probe: None };

    pub fn scratch(r: u8) -> Self {
        Self { scratch: Some(r), ..Self::default() }
    }

    /// Put the spilled guest registers back into `ctx.gpr` (which holds the
    /// CPU's registers at the fault).
    pub fn restore(&self, ctx: &mut GuestContext) {
        if self.rcx {
            ctx.gpr[reg::RCX] = ctx.spill_rcx;
        }
        if self.rdx {
            ctx.gpr[reg::RDX] = ctx.spill_rdx;
        }
        if let Some(r) = self.scratch {
            ctx.gpr[r as usize] = ctx.spill_scratch;
        }
        if let Some(r) = self.probe {
            ctx.gpr[r as usize] = ctx.store_probe;
        }
    }
}

impl GuestContext {
    /// A zeroed context in its own mapping (`ContextBox`, with the store
    /// probe's hole after it), with the XSAVE image's legacy area holding
    /// the kernel's initial x87/SSE control state.
    pub fn new_boxed() -> ContextBox {
        // SAFETY-free construction: every field is plain integers.
        let mut b = ContextBox::new(GuestContext {
            gpr: [0; NGPR],
            rip: 0,
            rflags: 0x202,
            guest_fs: 0,
            guest_gs: 0,
            host_fs: 0,
            host_rsp: 0,
            entry_target: 0,
            exit_reason: 0,
            exit_id: 0,
            spill_rcx: 0,
            spill_rdx: 0,
            spill_rax: 0,
            spill_scratch: 0,
            ibl_target: 0,
            ibl_jump: 0,
            ibl_table: 0,
            sys_table: 0,
            gate_ret: 0,
            gate_next: 0,
            gate_flags: 0,
            gate_rsp: 0,
            signal_pending: 0,
            self_ptr: 0,
            exit_tramp: 0,
            gate_entry: 0,
            ibl_probe2: 0,
            fast_forwards: 0,
            ibl_misses: 0,
            ibl_miss: 0,
            thread_sig: 0,
            answers: 0,
            tid: 0,
            inline_served: 0,
            gate_nr: 0,
            view_magic: 0,
            view_after_gate: 0,
            view_after_marker: 0,
            view_nr: 0,
            view_args: [0; 6],
            view_abi: 0,
            view_echo: 0,
            view_step: 0,
            site_lookups: [0; 3],
            site_kind: 0,
            site_table: [0; 3],
            sys_table_sync: 0,
            exit_branch: 0,
            _pad: [0; 8],
            xsave: [0; XSAVE_SIZE],
            _tail: [0; CONTEXT_TAIL],
            store_probe: 0,
        });
        // x87 FCW = 0x37f, MXCSR = 0x1f80, MXCSR_MASK left 0 (xrstor ignores it).
        b.xsave[0..2].copy_from_slice(&0x037fu16.to_le_bytes());
        b.xsave[24..28].copy_from_slice(&0x1f80u32.to_le_bytes());
        b.self_ptr = &*b as *const GuestContext as u64;
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::offset_of;

    #[test]
    fn offsets_match_emitted_constants() {
        assert_eq!(offset_of!(GuestContext, gpr) as i32, off::GPR);
        assert_eq!(offset_of!(GuestContext, rip) as i32, off::RIP);
        assert_eq!(offset_of!(GuestContext, rflags) as i32, off::RFLAGS);
        assert_eq!(offset_of!(GuestContext, guest_fs) as i32, off::GUEST_FS);
        assert_eq!(offset_of!(GuestContext, guest_gs) as i32, off::GUEST_GS);
        assert_eq!(offset_of!(GuestContext, host_fs) as i32, off::HOST_FS);
        assert_eq!(offset_of!(GuestContext, host_rsp) as i32, off::HOST_RSP);
        assert_eq!(offset_of!(GuestContext, entry_target) as i32, off::ENTRY_TARGET);
        assert_eq!(offset_of!(GuestContext, exit_reason) as i32, off::EXIT_REASON);
        assert_eq!(offset_of!(GuestContext, exit_id) as i32, off::EXIT_ID);
        assert_eq!(offset_of!(GuestContext, spill_rcx) as i32, off::SPILL_RCX);
        assert_eq!(offset_of!(GuestContext, spill_rdx) as i32, off::SPILL_RDX);
        assert_eq!(offset_of!(GuestContext, spill_rax) as i32, off::SPILL_RAX);
        assert_eq!(offset_of!(GuestContext, spill_scratch) as i32, off::SPILL_SCRATCH);
        assert_eq!(offset_of!(GuestContext, ibl_target) as i32, off::IBL_TARGET);
        assert_eq!(offset_of!(GuestContext, ibl_jump) as i32, off::IBL_JUMP);
        assert_eq!(offset_of!(GuestContext, ibl_table) as i32, off::IBL_TABLE);
        assert_eq!(offset_of!(GuestContext, sys_table) as i32, off::SYS_TABLE);
        assert_eq!(offset_of!(GuestContext, gate_ret) as i32, off::GATE_RET);
        assert_eq!(offset_of!(GuestContext, gate_next) as i32, off::GATE_NEXT);
        assert_eq!(offset_of!(GuestContext, gate_flags) as i32, off::GATE_FLAGS);
        assert_eq!(offset_of!(GuestContext, gate_rsp) as i32, off::GATE_RSP);
        assert_eq!(offset_of!(GuestContext, signal_pending) as i32, off::SIGNAL_PENDING);
        assert_eq!(offset_of!(GuestContext, self_ptr) as i32, off::SELF_PTR);
        assert_eq!(offset_of!(GuestContext, exit_tramp) as i32, off::EXIT_TRAMP);
        assert_eq!(offset_of!(GuestContext, gate_entry) as i32, off::GATE_ENTRY);
        assert_eq!(offset_of!(GuestContext, ibl_probe2) as i32, off::IBL_PROBE2);
        assert_eq!(offset_of!(GuestContext, fast_forwards) as i32, off::FAST_FORWARDS);
        assert_eq!(offset_of!(GuestContext, ibl_misses) as i32, off::IBL_MISSES);
        assert_eq!(offset_of!(GuestContext, ibl_miss) as i32, off::IBL_MISS);
        assert_eq!(offset_of!(GuestContext, thread_sig) as i32, off::THREAD_SIG);
        assert_eq!(offset_of!(GuestContext, answers) as i32, off::ANSWERS);
        assert_eq!(offset_of!(GuestContext, tid) as i32, off::TID);
        assert_eq!(offset_of!(GuestContext, inline_served) as i32, off::INLINE_SERVED);
        assert_eq!(offset_of!(GuestContext, gate_nr) as i32, off::GATE_NR);
        assert_eq!(offset_of!(GuestContext, site_lookups) as i32, off::SITE_LOOKUPS);
        assert_eq!(offset_of!(GuestContext, site_kind) as i32, off::SITE_KIND);
        assert_eq!(offset_of!(GuestContext, site_table) as i32, off::SITE_TABLE);
        assert_eq!(offset_of!(GuestContext, sys_table_sync) as i32, off::SYS_TABLE_SYNC);
        assert_eq!(offset_of!(GuestContext, exit_branch) as i32, off::EXIT_BRANCH);
        assert_eq!(offset_of!(GuestContext, xsave) as i32, off::XSAVE);
        assert_eq!(off::XSAVE % 64, 0, "XSAVE image must be 64-byte aligned");
        assert_eq!(offset_of!(GuestContext, store_probe) as i32, off::STORE_PROBE);
        assert_eq!(std::mem::size_of::<GuestContext>() % 4096, 0, "the store probe ends a page");
        assert_eq!(std::mem::align_of::<GuestContext>(), 64);
    }
}
