//! Guest basic block -> cache code.
//!
//! A block is decoded until its first control transfer, `syscall` (one the
//! runtime lets the translator answer in place does not end it), `int
//! $0x80` (an i386 system call, left to the runtime), illegal instruction
//! or size cap. Instructions that are position independent are
//! copied byte for byte; rip-relative ones are re-encoded for their new
//! address (or, when the cache is more than 2 GiB away, rewritten through a
//! scratch register); control flow becomes exits to per-block stubs that the
//! linker later patches to jump straight to their targets. Everything added
//! here is flag-neutral, so guest flags flow through untouched.

use iced_x86::{
    Code, ConditionCode, Decoder, DecoderError, DecoderOptions, Encoder, EncodingKind, FlowControl, Instruction,
    InstructionInfoFactory, MemoryOperand, Mnemonic, OpAccess, OpKind, Register,
};

use crate::abi::{
    BLOCK_ENTRY, ExitReason, GUEST_GUARD, GUEST_LIMIT, IBL_EMPTY, IC_EMPTY, IC_ENTRIES, IC_GOT_JUMPS, IC_REARM,
    INDIRECT_ENTRY, INDIRECT_HIT, INDIRECT_PC_AT, NO_SITE, SiteKind, Spilled, off, reg,
};
use crate::addr::{CachePc, GuestAddr};
use crate::emit::{Emitter, Rel32Slot, asm};
use crate::facts::{RegFacts, gpr_index};

/// Upper bound on guest instructions in one block.
pub const MAX_BLOCK_INSNS: usize = 128;
/// Upper bound on the emitted size of one block, stubs included.
pub const MAX_BLOCK_BYTES: usize = 8192;
/// Conditional branches a block goes on past (its not-taken path stays in
/// the block instead of ending at a `jmp` to the fall-through's block): see
/// docs/design.md, "Blocks, exits, links".
pub const MAX_JCC_THROUGH: u32 = 8;
/// Longest guest instruction.
pub const MAX_INSN_LEN: usize = 15;
/// Largest jump table translated as one (entries; see `jump_table`).
pub const MAX_JT_ENTRIES: usize = 512;
/// Most distinct targets of one translated jump table.
pub const MAX_JT_TARGETS: usize = 256;
/// Upper bound on the code a jump table adds to its block (a pad and an
/// exit stub per distinct target).
pub const MAX_JT_BYTES: usize = MAX_JT_TARGETS * 96;

/// How a block is to be translated.
#[derive(Copy, Clone, Debug, Default)]
pub struct TranslateOptions {
    /// Rewrite every rip-relative operand through a scratch register, as if
    /// the cache were far from guest code (used to test the far path).
    pub force_far_riprel: bool,
    /// Address of the indirect-branch table when it lies below 2 GiB, so
    /// lookups can address it directly instead of loading its base.
    pub ibl_table: Option<u32>,
    /// Syscalls to answer at the `syscall` site instead of in the gate (the
    /// runtime derives this from its gate table; empty: every `syscall`
    /// calls the gate).
    pub inline_syscalls: InlineSyscalls,
    /// One guest instruction per block, every indirect branch leaving to
    /// the dispatcher: blocks for a guest that runs with EFLAGS.TF set,
    /// which the dispatcher steps through an instruction at a time.
    pub single_step: bool,
    /// Count indirect-branch lookups per kind of site in the context
    /// (`--stats`; a few flag-free instructions more per lookup).
    pub count_sites: bool,
    /// The kinds of indirect site (bit `1 << SiteKind`) that get an inline
    /// cache before the table lookup (`IC_KINDS` unless a test says
    /// otherwise).
    pub ic_kinds: u32,
    /// Reads 8 bytes of guest memory (None where they cannot be read):
    /// the pointer an indirect branch through a rip-relative operand uses,
    /// read at translation time to fill its first inline-cache entry (a
    /// GOT slot, usually final by then; the entry is only a guess that the
    /// compare checks).
    pub read_pointer: Option<fn(GuestAddr) -> Option<u64>>,
    /// Reads 8 bytes of guest memory that cannot change without a system
    /// call bt-run sees (a private, read-only file mapping: a GOT after
    /// RELRO, a table in .rodata), None otherwise. An indirect branch
    /// through such a pointer becomes a direct one, and the translation
    /// names the pointer in `Translation::constants` (the cache drops it
    /// when that memory's mapping or protection changes).
    pub read_constant: Option<fn(GuestAddr) -> Option<u64>>,
    /// The guest registers (by `abi::reg` number) as the thread that needs
    /// the block enters it: a guess at the values of registers the block
    /// reads before writing (a jump table's base), which the emitted code
    /// checks (`BlockBuilder::jump_table`).
    pub entry_regs: Option<[u64; 16]>,
    /// The host has BMI2 (`shrx`, a shift that leaves the flags alone).
    pub bmi2: bool,
    /// (address below 2 GiB, cells): one 8-byte counter per exit id, for
    /// the inline-cache sites whose first entry has that id. The table path
    /// of such a site counts down its cell and leaves with `IC_REARM` when
    /// it reaches zero. None: no counters.
    pub ic_counters: Option<(u32, u32)>,
    /// Confine guest stores below `GUEST_LIMIT` (isolation): every store
    /// whose address is not known to be below it is checked first, and rsp
    /// after every instruction that may move it far (see `confine`).
    /// Needs BMI2 (`rorx`).
    pub confine_stores: bool,
    /// The bytes to translate end where the fetch stopped copying, not
    /// where the guest's code stops being readable: the block ends with a
    /// plain exit `WINDOW_MARGIN` bytes before their end, so that a jump
    /// table's or a stack check's look ahead stays within them and the
    /// next block is fetched from there.
    pub windowed: bool,
}

/// See `TranslateOptions::windowed`.
pub const WINDOW_MARGIN: usize = 96;

/// Where an in-process syscall answer comes from (both per thread, through
/// the `GuestContext`, so the answer follows fork, vfork, threads and
/// set*id exactly as the gate's does).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum InlineAnswer {
    /// `rax = answers[nr]` (`GuestContext::answers` points at the table).
    Table,
    /// `rax = GuestContext::tid`.
    Tid,
}

/// The syscall numbers (below [`InlineSyscalls::LIMIT`]) that the gate
/// would answer in-process without anything observing the call, and how.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct InlineSyscalls {
    table: [u64; 8],
    tid: [u64; 8],
}

impl InlineSyscalls {
    /// Numbers at or above this are never inlined (the gate's table length).
    pub const LIMIT: u64 = 512;
    /// Most numbers a `syscall` whose number is not a constant is checked
    /// against inline (each check is a `lea` + `jrcxz`); with more, only
    /// constant numbers are answered at the site.
    pub const MAX_CHECKED: usize = 8;

    /// Answer `nr` in-process with `how` (None: call the gate).
    pub fn set(&mut self, nr: u64, how: Option<InlineAnswer>) {
        if nr >= Self::LIMIT {
            return;
        }
        let (w, bit) = ((nr / 64) as usize, 1u64 << (nr % 64));
        self.table[w] &= !bit;
        self.tid[w] &= !bit;
        match how {
            Some(InlineAnswer::Table) => self.table[w] |= bit,
            Some(InlineAnswer::Tid) => self.tid[w] |= bit,
            None => {}
        }
    }

    /// How `nr` (the full value of rax, as the gate compares it) is answered.
    pub fn get(&self, nr: u64) -> Option<InlineAnswer> {
        if nr >= Self::LIMIT {
            return None;
        }
        let (w, bit) = ((nr / 64) as usize, 1u64 << (nr % 64));
        if self.table[w] & bit != 0 {
            Some(InlineAnswer::Table)
        } else if self.tid[w] & bit != 0 {
            Some(InlineAnswer::Tid)
        } else {
            None
        }
    }

    /// Every inlined number with its answer, in number order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, InlineAnswer)> + '_ {
        (0..Self::LIMIT).filter_map(|nr| self.get(nr).map(|h| (nr, h)))
    }

    pub fn is_empty(&self) -> bool {
        self.table.iter().chain(&self.tid).all(|&w| w == 0)
    }

    pub fn len(&self) -> usize {
        self.table.iter().chain(&self.tid).map(|w| w.count_ones() as usize).sum()
    }
}

/// A direct exit of a block: the patchable rel32 in the body and its stub.
#[derive(Copy, Clone, Debug)]
pub struct ExitSite {
    /// Offset of the 4-byte displacement in the block's code.
    pub slot: u32,
    /// Offset of the exit stub in the block's code.
    pub stub: u32,
    /// Guest address this exit continues at.
    pub target: GuestAddr,
    /// For an inline-cache entry: where its target is written when the
    /// entry is filled (see `IcPatch`).
    pub ic: Option<IcPatch>,
}

/// The two 8-aligned imm64 fields of an inline-cache entry, as offsets in
/// the block's code: the negated target in the site's compare and the
/// target in the entry's exit stub.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct IcPatch {
    pub cmp_imm: u32,
    pub stub_imm: u32,
    /// The rel8 of the jump taken when no entry matches, and its value
    /// that leads to the table (it leads to the dispatcher while an entry
    /// is empty).
    pub fall_at: u32,
    pub to_table: u8,
    /// That rel8's value that leads to the dispatcher, to fill an entry
    /// (None when every entry started filled: there is no such path).
    pub to_fill: Option<u8>,
    /// Where the site's table-lookup counter starts (0: none) and its
    /// length: no-ops replace it when the site stops counting.
    pub count_at: u32,
    pub count_len: u8,
    /// A return's site: where its first compare starts, which a `jmp
    /// rel32` to `bypass_to` (its table lookup, or the `pop` before it)
    /// replaces once the process has threads (0: not a return; see
    /// `CodeCache::go_threaded`).
    pub bypass_at: u32,
    pub bypass_to: u32,
    /// How the entry compares (`Compare`), and for `IcForm::Split` where
    /// its second immediate is.
    pub form: IcForm,
    pub cmp_hi: u32,
}

/// The shape of an inline-cache entry's compare and its immediates.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum IcForm {
    /// `mov rdx, -C` (`cmp_imm`: an 8-aligned imm64).
    Wide,
    /// `lea rcx, [rcx + d]` (`cmp_imm`: a 4-aligned imm32, `short_compare`).
    Short,
    /// `lea rcx, [rcx + lo]; rorx rcx, rcx, 32; lea rcx, [rcx + hi]`
    /// (`cmp_imm`, `cmp_hi`: `split_compare`). Only at returns, whose
    /// caches change only while one thread runs (`CodeCache::go_threaded`),
    /// so the two stores need not be one.
    Split,
}

/// What an inline-cache entry's exit stub names for the entry's `target`:
/// the target, or for an empty entry the one address its compare matches
/// (`IC_EMPTY` for a wide compare, `u64::MAX` for a short one,
/// `SPLIT_EMPTY` for a split one: none is a code address).
pub fn stub_target(target: GuestAddr, form: IcForm) -> GuestAddr {
    match form {
        _ if target.get() != IC_EMPTY => target,
        IcForm::Wide => target,
        IcForm::Short => GuestAddr(u64::MAX),
        IcForm::Split => GuestAddr(SPLIT_EMPTY),
    }
}

/// The one address an empty split compare matches: non-canonical.
const SPLIT_EMPTY: u64 = 0x4000_0000_0000_0000;

/// The displacements (lo, hi) of a split compare for target `c`: rcx =
/// rot32(c + lo) + hi is zero exactly when rcx was `c`. lo cancels the
/// low half (leaving K << 32, K the high half or one more), the rotation
/// brings K down, hi = -K cancels it. Empty: (0, -0x4000_0000), which only
/// `SPLIT_EMPTY` matches, whatever lo is; so an entry is filled lo first
/// and emptied hi first, and never matches a canonical address in between.
pub fn split_compare(c: u64) -> (i32, i32) {
    let c = if c == IC_EMPTY { SPLIT_EMPTY } else { c };
    let lo = (c as i32).wrapping_neg();
    let k = c.wrapping_add(lo as i64 as u64).rotate_right(32);
    (lo, (k as i32).wrapping_neg())
}

/// How an inline cache compares its entries with the target.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Compare {
    /// The target is in rcx: `mov rdx, -C; lea rcx, [rcx + rdx]; jrcxz`,
    /// rdx spilled first.
    Wide,
    /// A `ret imm16` whose address is still on the stack, at a site below
    /// 2 GiB (a non-PIE program's, whose returns mostly go below 2 GiB):
    /// `mov rcx, [rsp]; lea rcx, [rcx - C]; jrcxz` per entry, a 32-bit
    /// immediate and no second register. Targets at or above 2 GiB are
    /// left to the table (`CodeCache::ic_fill`).
    ShortRet(u16),
    /// A `ret imm16` elsewhere, with BMI2: the address on the stack, and
    /// `mov rcx, [rsp]; lea rcx, [rcx + lo]; rorx rcx, rcx, 32; lea rcx,
    /// [rcx + hi]; jrcxz` per entry (`split_compare`).
    SplitRet(u16),
}

/// The `lea rcx, [rcx + d]` displacement that makes rcx zero for target
/// `c` in a `Compare::ShortRet` entry: `-c` for a target below 2 GiB; for
/// an empty entry 1, which only `u64::MAX` matches (no code address: a
/// return there faults, and the empty entry's stub names it).
pub fn short_compare(c: u64) -> Option<i32> {
    if c == IC_EMPTY {
        Some(1)
    } else if c < 1 << 31 {
        Some((c as i32).wrapping_neg())
    } else {
        None
    }
}

/// What makes two jump tables the same (`jump_table`): blocks whose tables
/// have equal keys share the first one's table and pads.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct JtKey {
    /// Guest address of the guest's table, and its entries.
    pub table: u64,
    pub entries: u32,
    /// 8: entries are targets; 4: 32-bit offsets from `base`.
    pub scale: u8,
    /// The register the pads set (16: none).
    pub rx: u8,
    pub base: u64,
    /// The guest's `add rX, kb` the pads repeat (length, bytes).
    pub add: (u8, [u8; 4]),
}

/// Room for a block's jump table (below 2 GiB), and the tables that
/// earlier blocks made and that are still valid, by key.
#[derive(Copy, Clone)]
pub struct JtSpace<'a> {
    pub start: u32,
    pub end: u32,
    pub known: &'a dyn Fn(&JtKey) -> Option<u32>,
}

/// A block's jump table: where it is, and (when this block made it rather
/// than sharing an earlier block's) its entries, cache addresses, for the
/// cache to write there.
#[derive(Debug)]
pub struct JumpTable {
    pub key: JtKey,
    pub at: u32,
    pub entries: Option<Vec<u64>>,
    /// Other blocks with an equal key may use it (false for a guarded
    /// table, whose pads and fallback are this block's own).
    pub shareable: bool,
}

/// The result of translating one block at a known cache address.
#[derive(Debug)]
pub struct Translation {
    pub guest: GuestAddr,
    /// Guest bytes covered by the block.
    pub guest_len: u32,
    pub code: Vec<u8>,
    pub exits: Vec<ExitSite>,
    /// (cache offset, guest offset) at the start of each guest instruction.
    pub insn_map: Vec<(u32, u32)>,
    /// Offset of the (direct) entry; the indirect one is `IBL_ENTRY_BACK`
    /// bytes before it.
    pub entry: u32,
    /// (cache offset, registers) of each emitted instruction that can fault
    /// while guest registers are in spill slots, in order: a fault there
    /// takes those registers from the slots (`Spilled::restore`).
    pub spilled: Vec<(u32, Spilled)>,
    /// Guest addresses of the 8-byte constants (`read_constant`) the
    /// translation depends on.
    pub constants: Vec<GuestAddr>,
    /// Its jump table, if it ends in one (`jump_table`).
    pub jump_table: Option<JumpTable>,
    /// The inline-cache sites (first entries' exit ids) that count their
    /// table lookups in `TranslateOptions::ic_counters`.
    pub ic_counted: Vec<u32>,
}

/// A block's indirect entry for guest `pc` (the layout is in
/// `BLOCK_ENTRY`'s documentation), after padding that never runs.
fn indirect_entry(e: &mut Emitter, pc: GuestAddr) {
    e.pad(INDIRECT_ENTRY as usize);
    let minus_pc = pc.get().wrapping_neg() as i64;
    asm!(e
        ; mov rdx, QWORD minus_pc
        ; lea rcx, [rcx + rdx]
    );
    let hit = e.jrcxz_fwd();
    asm!(e
        ; not rdx
        ; lea rcx, [rcx + rdx + 1]           // target - pc - 1 + 1: target again
        ; gs jmp QWORD [off::IBL_PROBE2]
    );
    let ok = e.bind_rel8(hit);
    debug_assert!(ok);
    debug_assert_eq!(e.len() as u64, INDIRECT_ENTRY as u64 + INDIRECT_HIT);
    asm!(e
        ; gs mov rcx, [off::SPILL_RCX]
        ; gs mov rdx, [off::SPILL_RDX]
    );
    debug_assert_eq!(e.len(), BLOCK_ENTRY as usize);
}

/// The end of every table lookup: rdx = slot index, rcx = guest target;
/// rax is restored from `SPILL_RAX` first when `restore_rax` (it was the
/// lookup's third register). Jumps to the indirect entry the slot holds.
fn table_jump(e: &mut Emitter, table: Option<u32>, restore_rax: bool) {
    match table {
        Some(t) => {
            if restore_rax {
                asm!(e; gs mov rax, [off::SPILL_RAX]);
            }
            // The table is below 2 GiB.
            asm!(e; jmp QWORD [rdx * 8 + t as i32]);
        }
        None => {
            assert!(restore_rax, "a lookup without a low table needs rax");
            asm!(e
                ; gs mov rax, [off::IBL_TABLE]
                ; mov rdx, [rax + rdx * 8]
                ; gs mov rax, [off::SPILL_RAX]
                ; jmp rdx
            );
        }
    }
}

/// Code every lookup shares, placed once at the start of the code cache at
/// `at`: the table's empty entry and the second probe. Returns the code
/// and the offsets of both.
///
/// The empty entry has an indirect entry's shape (`mov rdx, imm64` first,
/// for the second probe to read) but is no block: from the first probe it
/// goes on to the second, and the second probe's "hit" on it (possible only
/// for the target `u64::MAX`, which no block has) leaves as a miss.
///
/// The second probe (rcx = target, rdx free, the guest's rax live, the
/// guest's rcx and rdx spilled, `EXIT_ID` set by the site) reads the slot
/// after the target's home (shifted by a pending signal as the first), and
/// compares the target with the pc that entry's `mov rdx, -pc` holds, so
/// that it never bounces between entries:
///
/// ```text
/// probe2: mov gs:[SPILL_RAX], rax
///         movzx eax, cx
///         mov rdx, gs:[SIGNAL_PENDING]
///         lea rax, [rax + rdx*2 + 1]
///         mov rax, [rax*8 + table]         ; or through gs:[IBL_TABLE]
///         mov rdx, [rax + 2]               ; -pc
///         lea rdx, [rcx + rdx]
///         xchg rcx, rdx                    ; rcx = target - pc, rdx = target
///         jrcxz hit
///         mov rcx, rdx
///         mov rax, gs:[SPILL_RAX]
///         mov rdx, gs:[SPILL_RDX]
///         jmp gs:[IBL_MISS]
/// hit:    mov rcx, rdx
///         lea rax, [rax + INDIRECT_HIT]
///         mov gs:[IBL_JUMP], rax
///         mov rax, gs:[SPILL_RAX]
///         jmp gs:[IBL_JUMP]                ; restores rcx and rdx
/// ```
pub fn ibl_shared_code(at: CachePc, table: Option<u32>) -> (Vec<u8>, u32, u32) {
    let mut e = Emitter::new(at);
    // The empty entry.
    let empty = e.len() as u32;
    let minus_empty = IBL_EMPTY.wrapping_neg() as i64;
    asm!(e
        ; mov rdx, QWORD minus_empty
        ; gs jmp QWORD [off::IBL_PROBE2]
    );
    e.pad(empty as usize + INDIRECT_HIT as usize - e.len());
    // Its "hit" (rcx = target, rax restored): a miss.
    asm!(e
        ; gs mov rdx, [off::SPILL_RDX]
        ; gs jmp QWORD [off::IBL_MISS]
    );
    e.align_nop(16, 0);
    let probe2 = e.len() as u32;
    asm!(e
        ; gs mov [off::SPILL_RAX], rax
        ; movzx eax, cx
        ; gs mov rdx, [off::SIGNAL_PENDING]
        ; lea rax, [rax + rdx * 2 + 1]
    );
    match table {
        Some(t) => asm!(e; mov rax, [rax * 8 + t as i32]),
        None => asm!(e
            ; gs mov rdx, [off::IBL_TABLE]
            ; mov rax, [rdx + rax * 8]
        ),
    }
    asm!(e
        ; mov rdx, [rax + INDIRECT_PC_AT as i32] // the entry's -pc
        ; lea rdx, [rcx + rdx]
        ; xchg rdx, rcx
    );
    let hit = e.jrcxz_fwd();
    asm!(e
        ; mov rcx, rdx
        ; gs mov rax, [off::SPILL_RAX]
        ; gs mov rdx, [off::SPILL_RDX]
        ; gs jmp QWORD [off::IBL_MISS]
    );
    let ok = e.bind_rel8(hit);
    debug_assert!(ok);
    let hit_at = INDIRECT_HIT as i8;
    asm!(e
        ; mov rcx, rdx
        ; lea rax, [BYTE rax + hit_at]
        ; gs mov [off::IBL_JUMP], rax
        ; gs mov rax, [off::SPILL_RAX]
        ; gs jmp QWORD [off::IBL_JUMP]
    );
    (e.into_bytes(), empty, probe2)
}

/// Translate the block starting at `pc`, whose readable guest-executable
/// bytes are `bytes` (they may end early: the block then stops there and a
/// fetch from the missing bytes becomes a `FetchFault` exit).
pub fn translate_block(
    pc: GuestAddr,
    bytes: &[u8],
    at: CachePc,
    first_exit_id: u32,
    opts: TranslateOptions,
) -> Translation {
    translate_block_in(pc, bytes, at, first_exit_id, opts, None)
}

/// `translate_block`, with [start, end) (below 2 GiB) free for a jump
/// table the block may end in (see `jump_table`).
pub fn translate_block_in(
    pc: GuestAddr,
    bytes: &[u8],
    at: CachePc,
    first_exit_id: u32,
    opts: TranslateOptions,
    jt_space: Option<JtSpace<'_>>,
) -> Translation {
    let mut b = BlockBuilder {
        e: Emitter::new(at),
        pending: Vec::new(),
        literals: Vec::new(),
        first_exit_id,
        opts,
        info: InstructionInfoFactory::new(),
        insn_map: Vec::new(),
        spilled: Vec::new(),
        constants: Vec::new(),
        rax_const: None,
        jcc_through: 0,
        history: Vec::with_capacity(64),
        jt_space,
        jump_table: None,
        ic_counted: Vec::new(),
        store_fails: Vec::new(),
        checked: Vec::new(),
        facts: InsnFacts::default(),
        next_touches_stack: false,
        disp32_at: None,
    };
    indirect_entry(&mut b.e, pc);
    let mut decoder = Decoder::with_ip(64, bytes, pc.get(), DecoderOptions::NONE);
    let mut ins = Instruction::default();
    let mut n = 0usize;
    let mut end = pc;
    loop {
        let here = GuestAddr(decoder.ip());
        let max_insns = if opts.single_step { 1 } else { MAX_BLOCK_INSNS };
        let left = bytes.len() - (here.get() - pc.get()) as usize;
        if n >= max_insns || b.e.len() > MAX_BLOCK_BYTES / 2 || (opts.windowed && n > 0 && left < WINDOW_MARGIN) {
            let s = b.e.jmp_rel32();
            b.exit(s, here);
            break;
        }
        if !decoder.can_decode() {
            // The readable region ends here: fetching the next byte faults.
            b.special_exit(ExitReason::FetchFault, here);
            break;
        }
        decoder.decode_out(&mut ins);
        if ins.is_invalid() {
            let reason = if decoder.last_error() == DecoderError::NoMoreBytes {
                ExitReason::FetchFault
            } else {
                ExitReason::Illegal
            };
            // Either way the fault belongs to the instruction at `here`
            // (the CPU reports its address as rip; the dispatcher finds the
            // missing byte's address for si_addr).
            b.mark(pc, here);
            b.special_exit(reason, here);
            break;
        }
        n += 1;
        let rest = &bytes[(here.get() - pc.get()) as usize..];
        let raw = &rest[..ins.len()];
        b.mark(pc, here);
        if let Some(len) = b.jump_table(pc, &ins, rest) {
            end = here.add(len as u64);
            break;
        }
        b.disp32_at = ins
            .is_ip_rel_memory_operand()
            .then(|| decoder.get_constant_offsets(&ins))
            .and_then(|c| (c.has_displacement() && c.displacement_size() == 4).then(|| c.displacement_offset()));
        if opts.confine_stores {
            b.facts = InsnFacts::of(&mut b.info, &ins);
            // Only `moves_rsp_far` asks, about an instruction that sets rsp.
            b.next_touches_stack = b.facts.written & (1 << reg::RSP) != 0
                && touches_stack(&mut b.info, GuestAddr(ins.next_ip()), &rest[ins.len()..]);
        }
        if !b.instruction(&ins, raw) {
            break;
        }
        if opts.confine_stores {
            b.forget_checks_written(&ins);
        }
        b.history.push(ins);
    }
    // A jump table takes the instructions after the one decoded last.
    let end = if b.jump_table.is_some() { end.get() } else { decoder.ip() };
    b.finish(pc, end.wrapping_sub(pc.get()) as u32)
}

/// What store confinement needs to know about one instruction, from one
/// look at its iced-x86 instruction info.
#[derive(Default)]
struct InsnFacts {
    /// The general registers it uses (bit `abi::reg` number).
    regs: u32,
    /// The general registers it writes, wholly or in part.
    written: u32,
    /// The memory it writes: base, index, scale, displacement, and whether
    /// FS-relative.
    stores: Vec<(Register, Register, u32, u64, bool)>,
    /// A write is indexed by a vector of 64-bit elements (a qword-indexed
    /// scatter), which no check bounds yet.
    wide_vector_index: bool,
}

impl InsnFacts {
    fn of(info: &mut InstructionInfoFactory, ins: &Instruction) -> Self {
        let info = info.info(ins);
        let mut f = Self::default();
        for u in info.used_registers() {
            if !u.register().is_gpr() {
                continue;
            }
            let bit = 1 << reg_num(u.register());
            f.regs |= bit;
            if matches!(
                u.access(),
                OpAccess::Write | OpAccess::ReadWrite | OpAccess::CondWrite | OpAccess::ReadCondWrite
            ) {
                f.written |= bit;
            }
        }
        for m in info.used_memory() {
            if !matches!(
                m.access(),
                OpAccess::Write | OpAccess::ReadWrite | OpAccess::CondWrite | OpAccess::ReadCondWrite
            ) {
                continue;
            }
            let (mut index, mut scale) = (m.index(), m.scale());
            if index.is_vector_register() {
                // A scatter's elements lie within 16 GiB of its base and
                // displacement (signed 32-bit indices times at most 8),
                // inside the guard band if that lies below the limit.
                f.wide_vector_index |= !ins.is_vsib32();
                (index, scale) = (Register::None, 1);
            }
            f.stores.push((m.base(), index, scale, m.displacement(), m.segment() == Register::FS));
        }
        f
    }
}

struct BlockBuilder<'a> {
    e: Emitter,
    /// Exits whose stubs are emitted after the body (with the patch points
    /// of an inline-cache entry, `stub_imm` still to be found).
    pending: Vec<(Rel32Slot, GuestAddr, Option<IcPatch>)>,
    /// 8-byte values emitted after the stubs, each read by the rip-relative
    /// instruction whose displacement is the slot (see `push_return`).
    literals: Vec<(Rel32Slot, u64)>,
    first_exit_id: u32,
    opts: TranslateOptions,
    info: InstructionInfoFactory,
    insn_map: Vec<(u32, u32)>,
    /// See `Translation::spilled`.
    spilled: Vec<(u32, Spilled)>,
    /// See `Translation::constants`.
    constants: Vec<GuestAddr>,
    /// rax's value if the previous instruction set it to a constant
    /// (`mov eax/rax, imm`, `xor eax, eax`).
    rax_const: Option<u64>,
    /// Conditional branches the block has gone on past.
    jcc_through: u32,
    /// The instructions translated so far that the block went on past
    /// (what is known about the registers is worked out from them only
    /// when a jump table may be found: `facts`).
    history: Vec<Instruction>,
    /// Where a jump table may go (see `translate_block_in`).
    jt_space: Option<JtSpace<'a>>,
    /// See `Translation::jump_table`.
    jump_table: Option<JumpTable>,
    /// See `Translation::ic_counted`.
    ic_counted: Vec<u32>,
    /// Confinement checks that failed lead here (emitted after the exit
    /// stubs): the branch, the guest pc and reason of the exit, and the
    /// registers to take back from their spill slots first, in order.
    store_fails: Vec<StoreFail>,
    /// Confined stores: the instruction being translated, as they need it.
    facts: InsnFacts,
    /// The instruction after the one being translated accesses memory at
    /// rsp (confined stores: see `moves_rsp_far`).
    next_touches_stack: bool,
    /// Addresses checked so far whose registers have not changed since
    /// (confined stores): another store within `GUEST_GUARD / 2` of one
    /// lies below the limit or faults in the guard band.
    checked: Vec<(Register, Register, u32, i64)>,
    /// Where the displacement of the instruction being translated starts
    /// in its bytes, when it is rip-relative with a 32-bit displacement.
    disp32_at: Option<usize>,
}

/// A failed confinement check's branch, the guest pc and reason of its
/// exit, and the registers (number, spill slot) taken back first.
type StoreFail = (Rel32Slot, GuestAddr, ExitReason, Vec<(u8, i32)>);

/// A store's address, for its confinement check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StoreAddr {
    /// Known at translation (rip-relative or absolute).
    Const(u64),
    /// `[base + index*scale + displ]` (64-bit addressing), plus the FS base
    /// with `fs`.
    Regs { base: Register, index: Register, scale: u32, displ: u64, fs: bool },
}

/// Scratch candidates for far rip-relative rewrites, in order of preference
/// (rsp, rbp, r12, r13 avoided: they need special addressing forms).
const SCRATCH: [Register; 10] = [
    Register::R11,
    Register::R10,
    Register::R9,
    Register::R8,
    Register::RDI,
    Register::RSI,
    Register::RDX,
    Register::RCX,
    Register::RBX,
    Register::RAX,
];

fn reg_num(r: Register) -> u8 {
    (r.full_register().number() - Register::RAX.number()) as u8
}

/// The bytes of `mov rcx, m64` with the memory operand of `raw`, the bytes
/// of an indirect `jmp/call m64` (FF /4, FF /2): its FS and address-size
/// prefixes, REX.X and REX.B, ModRM's mod and r/m, the SIB byte and the
/// displacement as they are, with REX.W, opcode 8B and rcx as ModRM's reg.
/// The prefixes that change nothing for a load in 64-bit mode (the ES, CS,
/// SS, DS overrides; `notrack`, `bnd`) are dropped. None for any other
/// shape, and for the GS override (the guest's GS is virtual).
fn mov_rcx_from_indirect(raw: &[u8]) -> Option<([u8; 16], usize)> {
    let mut out = [0u8; 16];
    let mut n = 0;
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        match b {
            0x64 | 0x67 => {
                out[n] = b;
                n += 1;
            }
            0x26 | 0x2e | 0x36 | 0x3e | 0xf2 => {}
            _ => break,
        }
        i += 1;
    }
    let mut rex = 0;
    if let Some(&b @ 0x40..=0x4f) = raw.get(i) {
        rex = b;
        i += 1;
    }
    let (&op, &modrm) = (raw.get(i)?, raw.get(i + 1)?);
    if op != 0xff || modrm >> 6 == 3 || !matches!((modrm >> 3) & 7, 2 | 4) {
        return None;
    }
    let rest = &raw[i + 2..];
    let len = n + 3 + rest.len();
    if len > 15 {
        return None;
    }
    out[n..n + 3].copy_from_slice(&[0x48 | (rex & 0x03), 0x8b, (modrm & 0xc7) | (reg::RCX as u8) << 3]);
    out[n + 3..len].copy_from_slice(rest);
    Some((out, len))
}

impl BlockBuilder<'_> {
    fn mark(&mut self, pc: GuestAddr, here: GuestAddr) {
        self.insn_map.push((self.e.len() as u32, (here.get() - pc.get()) as u32));
    }

    /// Add a direct exit through `slot` to guest `target`.
    fn exit(&mut self, slot: Rel32Slot, target: GuestAddr) {
        self.pending.push((slot, target, None));
    }

    /// Leave the cache with `reason` and guest pc `at` (not linkable).
    fn special_exit(&mut self, reason: ExitReason, at: GuestAddr) {
        self.e.store_gs(off::SPILL_RCX, reg::RCX as u8);
        self.e.mov_imm64(reg::RCX as u8, at.get());
        self.e.store_gs_imm(off::EXIT_REASON, reason as i32);
        self.e.jmp_gs(off::EXIT_TRAMP);
    }

    /// Look the guest target (in rcx; the guest's rcx is in `SPILL_RCX`) up
    /// and jump to its translation, inline. First the site's inline cache:
    /// `IC_ENTRIES` guest targets, each compared with the target and, on
    /// a match, a direct jump (linked like any exit) to its block, so that
    /// a site with few targets takes conditional branches the CPU predicts
    /// from their history and no indirect jump at all. The entries start
    /// empty (`IC_EMPTY`) and the dispatcher fills them from the site's
    /// lookup misses (the miss leaves with the site's first entry in
    /// `exit_id`). Then the indirect-branch table, which every site shares:
    /// the site computes the slot index and jumps through the slot (its own
    /// indirect jump, for the branch predictor) to an indirect entry, which
    /// checks the target itself (see `BLOCK_ENTRY`, `ibl_shared_code`).
    /// Flag-free throughout: equality is `lea`/`not` + `jrcxz`, and a
    /// mismatch recovers the target from the difference the same way. A
    /// miss (or a pending signal) leaves through the shared `bt_ibl_miss`
    /// with rcx = target, rax/rdx restored; `EXIT_ID` names the site only
    /// on the paths to fill or re-arm its inline cache (else `NO_SITE`).
    /// `got`: the target comes from the pointer at this guest address (see
    /// `IC_GOT_JUMPS`).
    fn emit_lookup(&mut self, kind: SiteKind, got: Option<GuestAddr>, cmp: Compare) {
        // `on_stack`: a return whose address stays on the stack through the
        // compares (`imm`: the ret's).
        let on_stack = match cmp {
            Compare::ShortRet(imm) | Compare::SplitRet(imm) => Some(imm),
            Compare::Wide => None,
        };
        let form = match cmp {
            Compare::Wide => IcForm::Wide,
            Compare::ShortRet(_) => IcForm::Short,
            Compare::SplitRet(_) => IcForm::Split,
        };
        let mut his = Vec::new();
        if self.opts.single_step {
            assert!(on_stack.is_none(), "a return is popped first for single-stepping");
            // Back to the dispatcher, which steps the target.
            asm!(self.e
                ; gs mov QWORD [off::EXIT_ID], DWORD NO_SITE as i32
                ; gs jmp QWORD [off::IBL_MISS]
            );
            return;
        }
        let table = self.opts.ibl_table;
        let count = self.opts.count_sites;
        let e = &mut self.e;
        if on_stack.is_none() || count {
            asm!(e; gs mov [off::SPILL_RDX], rdx);
        }
        if count {
            // One more lookup of this kind, and the site's kind for the
            // dispatcher, should the lookup miss.
            let n = off::SITE_LOOKUPS + 8 * kind as i32;
            asm!(e
                ; gs mov rdx, [n]
                ; lea rdx, [rdx + 1]
                ; gs mov [n], rdx
                ; gs mov QWORD [off::SITE_KIND], DWORD kind as i32
            );
            if on_stack.is_some() {
                asm!(e; gs mov rdx, [off::SPILL_RDX]);
            }
        }
        // The inline cache: for each entry, rcx - C is zero on a match
        // (rdx = -C, patched when the entry is filled); otherwise
        // rcx = (rcx - C) + (~(-C) + 1) is the target again.
        let wanted =
            self.opts.ic_kinds & (1 << kind as u32) != 0 || (got.is_some() && self.opts.ic_kinds & IC_GOT_JUMPS != 0);
        let entries = if wanted { IC_ENTRIES } else { 0 };
        // The first entry starts with the pointer's value now, if it reads
        // as a canonical address.
        let guess = got
            .zip(self.opts.read_pointer)
            .and_then(|(at, read)| read(at))
            .filter(|&v| v != IC_EMPTY && ((v as i64) << 16 >> 16) as u64 == v);
        let site = self.first_exit_id + self.pending.len() as u32;
        let site = if entries > 0 { site } else { NO_SITE };
        let mut to_hits = Vec::with_capacity(entries);
        // The site's lookup counter, if it has one (see `ic_counters`).
        let mut counter: Option<u32> = None;
        let mut imms = Vec::with_capacity(entries);
        let targets: Vec<u64> =
            (0..entries).map(|k| if k == 0 { guess.unwrap_or(IC_EMPTY) } else { IC_EMPTY }).collect();
        let mut bypass = (0, 0);
        for (k, &c) in targets.iter().enumerate() {
            if form == IcForm::Split {
                let (lo, hi) = split_compare(c);
                if k == 0 {
                    bypass.0 = self.e.len() as u32;
                }
                self.may_fault(Spilled::RCX);
                let e = &mut self.e;
                asm!(e; mov rcx, [rsp]);
                imms.push(e.len() as u32 + 3);
                asm!(e
                    ; lea rcx, [rcx + lo]
                    ; rorx rcx, rcx, 32
                );
                his.push(e.len() as u32 + 3);
                asm!(e; lea rcx, [rcx + hi]);
                to_hits.push(e.jrcxz_fwd()); // hit_k
                continue;
            }
            if form == IcForm::Short {
                let d = short_compare(c).expect("a short site's entries start empty");
                // The address is read again for each entry (it stays on
                // the stack until the pop below), so no compare needs
                // undoing.
                self.e.align_nop(4, 7);
                if k == 0 {
                    bypass.0 = self.e.len() as u32;
                }
                self.may_fault(Spilled::RCX);
                let e = &mut self.e;
                asm!(e; mov rcx, [rsp]);
                let at = e.len();
                imms.push(at as u32 + 3);
                asm!(e; lea rcx, [rcx + d]);
                debug_assert_eq!(e.len() - at, 7, "lea rcx, [rcx + disp32]");
                to_hits.push(e.jrcxz_fwd()); // hit_k
                continue;
            }
            let e = &mut self.e;
            e.align_nop(8, 2);
            if k == 0 {
                bypass.0 = e.len() as u32;
            }
            imms.push(e.len() as u32 + 2);
            let minus_c = c.wrapping_neg() as i64;
            asm!(e
                ; mov rdx, QWORD minus_c
                ; lea rcx, [rcx + rdx]
            );
            to_hits.push(e.jrcxz_fwd()); // hit_k
            asm!(e
                ; not rdx
                ; lea rcx, [rcx + rdx + 1]
            );
        }
        if let Some(imm) = on_stack {
            // None matched: pop the target for the table, as a plain
            // return does.
            bypass.1 = self.e.len() as u32;
            self.may_fault(Spilled::RCX);
            let e = &mut self.e;
            asm!(e; pop rcx);
            if imm != 0 {
                e.lea_rsp(imm as i32);
            }
            asm!(e; gs mov [off::SPILL_RDX], rdx);
        }
        let e = &mut self.e;
        if entries > 0 {
            // Not in the cache: while it has an empty entry, to the
            // dispatcher (which fills one and, once none is left, points
            // this jump at the table); then to the table.
            let to_fall = e.jmp8_fwd(); // fill | table
            let mut hits = Vec::with_capacity(entries);
            for (k, at) in to_hits.into_iter().enumerate() {
                // hit_k: the guest's rcx and rdx back (a return whose
                // address stayed on the stack pops it now), and on to
                // entry k's block.
                let ok = e.bind_rel8(at);
                assert!(ok, "inline cache longer than a short jump");
                match on_stack {
                    Some(imm) => {
                        // `pop`, not `lea rsp`: the CPU's stack engine
                        // tracks pops without a synchronizing uop. (It
                        // faults only if another thread unmapped the stack
                        // since the compare read it.)
                        self.spilled.push((e.len() as u32, Spilled::RCX));
                        asm!(e; pop rcx);
                        if imm != 0 {
                            e.lea_rsp(imm as i32);
                        }
                        asm!(e; gs mov rcx, [off::SPILL_RCX]);
                    }
                    None => asm!(e
                        ; gs mov rcx, [off::SPILL_RCX]
                        ; gs mov rdx, [off::SPILL_RDX]
                    ),
                }
                hits.push((e.jmp_rel32(), imms[k]));
            }
            // fill: a miss as the table's, naming the site.
            let filling = targets.contains(&IC_EMPTY);
            let mut to_fill = None;
            if filling {
                to_fill = Some(u8::try_from(e.len() - (to_fall + 1)).expect("inline cache longer than a short jump"));
                let ok = e.bind_rel8(to_fall);
                assert!(ok, "inline cache longer than a short jump");
                asm!(e
                    ; gs mov rdx, [off::SPILL_RDX]
                    ; gs mov QWORD [off::EXIT_ID], DWORD site as i32
                    ; gs jmp QWORD [off::IBL_MISS]
                );
            }
            // table:
            let fall_at = to_fall as u32;
            let to_table =
                i8::try_from(e.len() as i64 - (to_fall as i64 + 1)).expect("inline cache longer than a short jump");
            if !filling {
                let ok = e.bind_rel8(to_fall);
                assert!(ok);
            }
            if on_stack.is_none() {
                bypass.1 = e.len() as u32;
            }
            let bypass = if kind == SiteKind::Ret { bypass } else { (0, 0) };
            for (k, ((slot, cmp_imm), c)) in hits.into_iter().zip(targets).enumerate() {
                let ic = IcPatch {
                    cmp_imm,
                    stub_imm: 0,
                    fall_at,
                    to_table: to_table as u8,
                    to_fill,
                    count_at: 0,
                    count_len: 0,
                    bypass_at: bypass.0,
                    bypass_to: bypass.1,
                    form,
                    cmp_hi: his.get(k).copied().unwrap_or(0),
                };
                self.pending.push((slot, GuestAddr(c), Some(ic)));
            }
            counter =
                to_fill.and(self.opts.ic_counters).filter(|&(_, cells)| site < cells).map(|(base, _)| base + 8 * site);
            if counter.is_some() {
                self.ic_counted.push(site);
            }
        }
        let e = &mut self.e;
        // table: a miss there names no site (`EXIT_ID` is `NO_SITE` while
        // cached code runs: the dispatcher sets it so before every entry,
        // and only paths that leave at once store another value).
        asm!(e; gs mov [off::SPILL_RAX], rax);
        if count {
            let n = off::SITE_TABLE + 8 * kind as i32;
            asm!(e
                ; gs mov rax, [n]
                ; lea rax, [rax + 1]
                ; gs mov [n], rax
            );
        }
        // A full inline cache counts the lookups that pass it by, flag-free
        // (the target waits in rax): at zero, back to the dispatcher, which
        // may empty the entries for the site's current targets.
        let to_rearm = counter.map(|cell| {
            let start = e.len();
            let cell = cell as i32; // below 2 GiB
            asm!(e
                ; mov rax, rcx
                ; mov rcx, [cell]
                ; lea rcx, [rcx - 1]
                ; mov [cell], rcx
            );
            let at = e.jrcxz_fwd(); // rearm
            asm!(e; mov rcx, rax);
            (start, at)
        });
        if let Some((start, _)) = to_rearm {
            let len = (e.len() - start) as u8;
            let n = self.pending.len();
            for p in self.pending[n - entries..].iter_mut() {
                if let Some(ic) = p.2.as_mut() {
                    ic.count_at = start as u32;
                    ic.count_len = len;
                }
            }
        }
        // rdx = slot index: the target's home slot, or two slots further
        // with a signal pending (see `GuestContext::signal_pending`).
        asm!(e
            ; gs mov rax, [off::SIGNAL_PENDING]
            ; movzx edx, cx
            ; lea rdx, [rdx + rax * 2]
        );
        table_jump(e, table, true);
        if let Some((_, at)) = to_rearm {
            // rearm: a miss as the table's, naming the site and why.
            let ok = e.bind_rel8(at);
            assert!(ok, "table lookup longer than a short jump");
            asm!(e
                ; mov rcx, rax
                ; gs mov QWORD [off::EXIT_ID], DWORD (site | IC_REARM) as i32
                ; gs mov rax, [off::SPILL_RAX]
                ; gs mov rdx, [off::SPILL_RDX]
                ; gs jmp QWORD [off::IBL_MISS]
            );
        }
    }

    /// Whether a `ret` at `ins` compares its inline cache short
    /// (`Compare::ShortRet`): it has one, is not single-stepped, and lies
    /// below 2 GiB.
    fn short_ret(&self, ins: &Instruction) -> bool {
        !self.opts.single_step && self.opts.ic_kinds & (1 << SiteKind::Ret as u32) != 0 && ins.ip() < 1 << 31
    }

    /// Whether a `ret` above 2 GiB compares its inline cache split
    /// (`Compare::SplitRet`): it has one, is not single-stepped, and the
    /// CPU has BMI2 (`rorx`).
    fn split_ret(&self) -> bool {
        !self.opts.single_step && self.opts.ic_kinds & (1 << SiteKind::Ret as u32) != 0 && self.opts.bmi2
    }

    /// Whether a `ret` takes `ret_through_table` (no single-stepping, no
    /// counters, no inline cache at returns, a table below 2 GiB).
    fn plain_ret(&self) -> bool {
        !self.opts.single_step
            && !self.opts.count_sites
            && self.opts.ic_kinds & (1 << SiteKind::Ret as u32) == 0
            && self.opts.ibl_table.is_some()
    }

    /// `ret` through the table without the inline cache and counters: the
    /// slot index comes from the return address on the stack, so that rcx
    /// can hold the pending-signal bias while rdx holds the index, and no
    /// third register is spilled.
    ///
    /// ```text
    /// mov gs:[SPILL_RDX], rdx
    /// movzx edx, word [rsp]        ; the one access that may fault: every
    ///                              ; register is still the guest's
    /// mov gs:[SPILL_RCX], rcx
    /// mov rcx, gs:[SIGNAL_PENDING]
    /// lea rdx, [rdx + rcx*2]
    /// pop rcx                      ; the target (faults only if another
    ///                              ; thread unmapped the stack meanwhile:
    ///                              ; rcx and rdx are then in their slots)
    /// [lea rsp, [rsp + imm16]]
    /// jmp [rdx*8 + table]            ; (EXIT_ID is NO_SITE already)
    /// ```
    fn ret_through_table(&mut self, imm: u16, table: u32) {
        let e = &mut self.e;
        asm!(e
            ; gs mov [off::SPILL_RDX], rdx
            ; movzx edx, WORD [rsp]
            ; gs mov [off::SPILL_RCX], rcx
            ; gs mov rcx, [off::SIGNAL_PENDING]
            ; lea rdx, [rdx + rcx * 2]
        );
        // The pop faults only if another thread unmapped the stack since
        // the movzx read it.
        self.may_fault(Spilled::RCX_RDX);
        let e = &mut self.e;
        asm!(e; pop rcx);
        if imm != 0 {
            e.lea_rsp(imm as i32);
        }
        table_jump(e, Some(table), false);
    }

    /// Translate one instruction; false when it ends the block.
    fn instruction(&mut self, ins: &Instruction, raw: &[u8]) -> bool {
        let next = GuestAddr(ins.next_ip());
        let rax = std::mem::replace(&mut self.rax_const, rax_immediate(ins));
        if ins.code() == Code::Syscall {
            return self.syscall(next, rax);
        }
        if ins.code() == Code::Int_imm8 && ins.immediate8() == 0x80 {
            // An i386 system call: the runtime makes it through the syscall
            // layer (the exit keeps every guest register and the flags).
            self.special_exit(ExitReason::Int80, next);
            return false;
        }
        match ins.flow_control() {
            FlowControl::Next | FlowControl::Interrupt => {
                if ins.code() == Code::Int3 {
                    self.special_exit(ExitReason::Breakpoint, GuestAddr(ins.next_ip()));
                    return false;
                }
                if let Some(done) = self.gs_base_access(ins) {
                    return done;
                }
                if self.writes_gs_selector(ins) {
                    // A selector load would replace bt-run's GS base; not
                    // emulated yet.
                    self.special_exit(ExitReason::Unsupported, GuestAddr(ins.ip()));
                    return false;
                }
                if uses_gs(ins) {
                    // Guest GS is virtual (bt-run's GS holds its context).
                    if !self.gs_relative(ins, raw) {
                        self.special_exit(ExitReason::Unsupported, GuestAddr(ins.ip()));
                        return false;
                    }
                    return true;
                }
                if matches!(ins.code(), Code::Popfq | Code::Popfw) {
                    self.popf_trap_flag_check(ins);
                }
                if self.opts.confine_stores && !self.confine(ins) {
                    self.special_exit(ExitReason::Unsupported, GuestAddr(ins.ip()));
                    return false;
                }
                if ins.is_ip_rel_memory_operand() {
                    self.riprel(ins, Some(raw));
                } else {
                    self.e.bytes(raw);
                }
                if self.opts.confine_stores && self.moves_rsp_far(ins) {
                    self.check_rsp(next);
                }
                true
            }
            FlowControl::UnconditionalBranch => {
                if matches!(ins.code(), Code::Jmp_rel8_64 | Code::Jmp_rel32_64) {
                    let s = self.e.jmp_rel32();
                    self.exit(s, GuestAddr(ins.near_branch_target()));
                } else {
                    // far jumps
                    self.special_exit(ExitReason::Unsupported, GuestAddr(ins.ip()));
                }
                false
            }
            FlowControl::ConditionalBranch => {
                if let Some(cc) = cc_nibble(ins.condition_code()).filter(|_| ins.is_jcc_short_or_near()) {
                    let t = self.e.jcc_rel32(cc);
                    self.exit(t, GuestAddr(ins.near_branch_target()));
                    if self.jcc_through < MAX_JCC_THROUGH {
                        // The not-taken path goes on in this block.
                        self.jcc_through += 1;
                        return true;
                    }
                    let f = self.e.jmp_rel32();
                    self.exit(f, next);
                } else if is_rel8_loop(ins) {
                    // loop/jrcxz only have rel8: branch over a fallthrough
                    // exit to a taken exit, keeping the original semantics.
                    let at = self.e.short_branch(&raw[..raw.len() - 1]);
                    let f = self.e.jmp_rel32();
                    self.exit(f, next);
                    let ok = self.e.bind_rel8(at);
                    debug_assert!(ok);
                    let t = self.e.jmp_rel32();
                    self.exit(t, GuestAddr(ins.near_branch_target()));
                } else {
                    self.special_exit(ExitReason::Unsupported, GuestAddr(ins.ip()));
                }
                false
            }
            FlowControl::Call => {
                if ins.code() == Code::Call_rel32_64 {
                    self.push_return(next);
                    let s = self.e.jmp_rel32();
                    self.exit(s, GuestAddr(ins.near_branch_target()));
                } else {
                    self.special_exit(ExitReason::Unsupported, GuestAddr(ins.ip()));
                }
                false
            }
            FlowControl::IndirectBranch | FlowControl::IndirectCall => {
                let is_call = ins.flow_control() == FlowControl::IndirectCall;
                let ok = matches!(ins.code(), Code::Jmp_rm64 | Code::Call_rm64);
                if !ok || uses_gs(ins) {
                    self.special_exit(ExitReason::Unsupported, GuestAddr(ins.ip()));
                    return false;
                }
                if let Some((target, at)) = self.constant_target(ins) {
                    // Through a pointer that cannot change unseen: a direct
                    // jump or call, linked like any other.
                    self.constants.push(at);
                    if is_call {
                        self.push_return(next);
                    }
                    let s = self.e.jmp_rel32();
                    self.exit(s, target);
                    return false;
                }
                self.e.store_gs(off::SPILL_RCX, reg::RCX as u8);
                self.load_rcx_operand(ins, raw);
                if is_call {
                    self.may_fault(Spilled::RCX);
                    self.push_return(next);
                }
                let got = ins.is_ip_rel_memory_operand().then(|| GuestAddr(ins.ip_rel_memory_address()));
                self.emit_lookup(if is_call { SiteKind::Call } else { SiteKind::Jmp }, got, Compare::Wide);
                false
            }
            FlowControl::Return => {
                match ins.code() {
                    Code::Retnq | Code::Retnq_imm16 if self.plain_ret() => {
                        let imm = if ins.code() == Code::Retnq_imm16 { ins.immediate16() } else { 0 };
                        let table = self.opts.ibl_table.expect("plain_ret checks it");
                        self.ret_through_table(imm, table);
                    }
                    Code::Retnq | Code::Retnq_imm16 => {
                        let imm = if ins.code() == Code::Retnq_imm16 { ins.immediate16() } else { 0 };
                        self.e.store_gs(off::SPILL_RCX, reg::RCX as u8);
                        if self.short_ret(ins) {
                            self.emit_lookup(SiteKind::Ret, None, Compare::ShortRet(imm));
                        } else if self.split_ret() {
                            self.emit_lookup(SiteKind::Ret, None, Compare::SplitRet(imm));
                        } else {
                            asm!(self.e; pop rcx);
                            if imm != 0 {
                                self.e.lea_rsp(imm as i32);
                            }
                            self.emit_lookup(SiteKind::Ret, None, Compare::Wide);
                        }
                    }
                    _ => self.special_exit(ExitReason::Unsupported, GuestAddr(ins.ip())),
                }
                false
            }
            FlowControl::Exception | FlowControl::XbeginXabortXend => {
                self.special_exit(ExitReason::Illegal, GuestAddr(ins.ip()));
                false
            }
        }
    }

    /// `syscall` -> call the gate with rcx = next guest pc (what the CPU puts
    /// there) and r11 = where to come back, then continue at a linkable exit.
    /// A number the gate would answer in-process is answered right here
    /// instead (see `inline_answer`): when rax is a known constant
    /// (`rax`, set by the instruction just before) the block simply goes
    /// on after it; otherwise rax is compared with each inlined number
    /// first, and only the answered path goes on in the block. Returns
    /// whether the block continues.
    fn syscall(&mut self, next: GuestAddr, rax: Option<u64>) -> bool {
        let inline = self.opts.inline_syscalls;
        if let Some(nr) = rax {
            if let Some(how) = inline.get(nr) {
                self.inline_answer(how, nr, next);
                return true;
            }
        } else if !inline.is_empty() && inline.len() <= InlineSyscalls::MAX_CHECKED {
            self.syscall_checked(next, &inline);
            return true;
        }
        self.gate_call(next);
        let s = self.e.jmp_rel32();
        self.exit(s, next);
        false
    }

    /// `mov rcx, next; lea r11, [rip+cont]; jmp gs:[gate]`; cont is the
    /// current pc when this returns.
    fn gate_call(&mut self, next: GuestAddr) {
        let next = next.get() as i64;
        asm!(self.e
            ; mov rcx, QWORD next
            ; lea r11, [rip + 8]                 // cont, after the jump
            ; gs jmp QWORD [off::GATE_ENTRY]
        );
        // cont:
    }

    /// A `syscall` whose number is only known at run time: flag-free
    /// comparisons of rax with each inlined number (`lea rcx, [rax-nr]` +
    /// `jrcxz`; rcx and r11 are free, `syscall` overwrites them), the gate
    /// call otherwise. Layout (a table answer takes one taken branch, the
    /// `jrcxz`):
    ///
    /// ```text
    ///     lea rcx, [rax-nr]; jrcxz T|D        (for each inlined nr)
    ///     <gate call>; jmp exit(next)
    /// D:  mov rax, gs:[tid]; jmp R
    /// T:  mov r11, gs:[answers]; mov rax, [r11+rax*8]
    /// R:  rcx, r11 as `syscall` sets them     (the block goes on here)
    /// ```
    fn syscall_checked(&mut self, next: GuestAddr, inline: &InlineSyscalls) {
        let mut to_table = Vec::new();
        let mut to_tid = Vec::new();
        for (nr, how) in inline.iter() {
            match i8::try_from(-(nr as i64)) {
                Ok(d) => asm!(self.e; lea rcx, [BYTE rax + d]),
                Err(_) => asm!(self.e; lea rcx, [rax - nr as i32]),
            }
            let at = self.e.jrcxz_fwd();
            match how {
                InlineAnswer::Table => to_table.push(at),
                InlineAnswer::Tid => to_tid.push(at),
            }
        }
        self.gate_call(next);
        let s = self.e.jmp_rel32();
        self.exit(s, next);
        // At most MAX_CHECKED checks of at most 9 bytes, the 25-byte gate
        // call, the exit jump (at most 8 bytes) and D (11 bytes) come before
        // T: every rel8 reaches (at most 116 bytes).
        let bind = |e: &mut Emitter, ats: &[usize]| {
            for &at in ats {
                assert!(e.bind_rel8(at), "inline syscall check out of rel8 range");
            }
        };
        let mut to_regs = None;
        if !to_tid.is_empty() {
            bind(&mut self.e, &to_tid);
            asm!(self.e; gs mov rax, [off::TID]);
            if !to_table.is_empty() {
                to_regs = Some(self.e.jmp8_fwd());
            }
        }
        if !to_table.is_empty() {
            bind(&mut self.e, &to_table);
            asm!(self.e
                ; gs mov r11, [off::ANSWERS]
                ; mov rax, [r11 + rax * 8]
            );
        }
        if let Some(at) = to_regs {
            bind(&mut self.e, &[at]);
        }
        self.syscall_regs(next);
    }

    /// The whole effect of a `syscall` with constant number `nr` that the
    /// gate would answer in-process, without calling it: rax = the thread's
    /// answer (read through GS at run time, so it is the one the gate would
    /// give), then the registers the CPU's `syscall` sets.
    fn inline_answer(&mut self, how: InlineAnswer, nr: u64, next: GuestAddr) {
        match how {
            InlineAnswer::Table => {
                let at = (nr * 8) as i32;
                asm!(self.e
                    ; gs mov rax, [off::ANSWERS]
                    ; mov rax, [DWORD rax + at]
                );
            }
            InlineAnswer::Tid => asm!(self.e; gs mov rax, [off::TID]),
        }
        self.syscall_regs(next);
    }

    /// rcx = next guest pc and r11 = rflags, as `syscall` leaves them. The
    /// flags are pushed on the host stack (as the gate does), never on the
    /// guest's, whose red zone may be live; the guest rsp waits in rcx (a
    /// register, so rsp's dependency chain does not go through memory).
    /// Nothing here changes a flag or can fault.
    fn syscall_regs(&mut self, next: GuestAddr) {
        let next = next.get() as i64;
        asm!(self.e
            ; mov rcx, rsp
            ; gs mov rsp, [off::HOST_RSP]
            ; pushfq
            ; pop r11
            ; mov rsp, rcx
            ; mov rcx, QWORD next
        );
    }

    /// `mov rcx, <operand of an indirect jmp/call>` (`raw`: its bytes),
    /// handling rip-relative operands at any distance.
    fn load_rcx_operand(&mut self, ins: &Instruction, raw: &[u8]) {
        if ins.op0_kind() == OpKind::Register {
            let src = reg_num(ins.op0_register());
            if src != reg::RCX as u8 {
                asm!(self.e; mov rcx, Rq(src));
            }
            return;
        }
        if let Some((mut mov, len)) = mov_rcx_from_indirect(raw) {
            let mov = &mut mov[..len];
            if !ins.is_ip_rel_memory_operand() {
                self.e.bytes(mov);
                return;
            }
            // rip-relative: the displacement (the last 4 bytes: the branch
            // has no immediate) aimed from here, when within reach.
            let next = self.e.pc().get().wrapping_add(len as u64);
            if let Ok(disp) = i32::try_from(ins.ip_rel_memory_address().wrapping_sub(next) as i64)
                && !self.opts.force_far_riprel
                && ins.memory_base() == Register::RIP
            {
                mov[len - 4..].copy_from_slice(&disp.to_le_bytes());
                self.e.bytes(mov);
                return;
            }
        }
        let mem = MemoryOperand::new(
            ins.memory_base(),
            ins.memory_index(),
            ins.memory_index_scale(),
            ins.memory_displacement64() as i64,
            ins.memory_displ_size(),
            false,
            ins.segment_prefix(),
        );
        let m = Instruction::with2(Code::Mov_r64_rm64, Register::RCX, mem).expect("mov rcx, m64");
        if ins.is_ip_rel_memory_operand() && (self.opts.force_far_riprel || self.encode_at_pc(&m).is_err()) {
            // Far: rcx is free here (already spilled), so use it as the base.
            self.e.mov_imm64(reg::RCX as u8, ins.ip_rel_memory_address());
            let mut f = m;
            f.set_memory_base(Register::RCX);
            f.set_memory_displacement64(0);
            f.set_memory_displ_size(0);
            self.may_fault(Spilled::RCX);
            self.encode_at_pc(&f).expect("mov rcx, [rcx] encodes");
        } else if !ins.is_ip_rel_memory_operand() {
            self.encode_at_pc(&m).expect("mov rcx, m64 with the guest's own addressing encodes");
        }
    }

    /// Encode `ins` at the current cache pc; Err if it cannot be (e.g. a
    /// rip-relative target beyond ±2 GiB). Nothing is emitted on error.
    fn encode_at_pc(&mut self, ins: &Instruction) -> Result<(), iced_x86::IcedError> {
        let mut enc = Encoder::new(64);
        enc.encode(ins, self.e.pc().get())?;
        self.e.bytes(&enc.take_buffer());
        Ok(())
    }

    /// A non-branch instruction with a rip-relative memory operand, whose
    /// guest bytes are `raw` when it is the guest's own instruction.
    fn riprel(&mut self, ins: &Instruction, raw: Option<&[u8]>) {
        let target = ins.ip_rel_memory_address();
        if !self.opts.force_far_riprel {
            // Within reach of the cache: the guest's bytes with the
            // displacement aimed from here (prefixes and encoding kept).
            if let (Some(raw), Some(at), Register::RIP) = (raw, self.disp32_at, ins.memory_base()) {
                let next = self.e.pc().get().wrapping_add(raw.len() as u64);
                let Ok(disp) = i32::try_from(target.wrapping_sub(next) as i64) else {
                    return self.riprel_far(ins, target);
                };
                let mut copy = [0u8; 15];
                let copy = &mut copy[..raw.len()];
                copy.copy_from_slice(raw);
                copy[at..at + 4].copy_from_slice(&disp.to_le_bytes());
                self.e.bytes(copy);
                return;
            }
            if self.encode_at_pc(ins).is_ok() {
                return;
            }
        }
        self.riprel_far(ins, target);
    }

    /// `riprel` for a target out of the cache's reach: the address in a
    /// scratch register, the instruction re-encoded with it as the base.
    fn riprel_far(&mut self, ins: &Instruction, target: u64) {
        if matches!(ins.code(), Code::Lea_r64_m) {
            // lea reg, [rip+x] is just the constant.
            self.e.mov_imm64(reg_num(ins.op0_register()), target);
            return;
        }
        let regs = self.info.info(ins).used_registers().iter().map(|u| u.register()).collect::<Vec<_>>();
        let used = regs.iter().map(|r| r.full_register()).collect::<Vec<_>>();
        // AH/CH/DH/BH cannot be encoded with a REX prefix, which r8-r15 as
        // base would need, and iced-x86 drops REX.B when it encodes a 3DNow!
        // instruction (`0f 0f` with [r11] would come out as [rbx]): such
        // instructions get a legacy scratch register.
        let high8 = regs.iter().any(|r| matches!(r, Register::AH | Register::CH | Register::DH | Register::BH));
        let legacy_only = high8 || ins.code().encoding() == EncodingKind::D3NOW;
        let scratch = SCRATCH
            .iter()
            .copied()
            .filter(|r| !legacy_only || r.number() < Register::R8.number())
            .find(|r| !used.contains(r))
            .expect("an instruction never uses all ten scratch candidates");
        let s = reg_num(scratch);
        let mut f = *ins;
        // An address-size prefix makes it [eip+disp] (a 32-bit target): the
        // base must then be the scratch register's 32-bit form, which keeps
        // the address size (and the register operands tied to it, as
        // movdir64b's, valid).
        let base = if ins.memory_base() == Register::EIP { scratch.full_register32() } else { scratch };
        f.set_memory_base(base);
        f.set_memory_index(Register::None);
        f.set_memory_index_scale(1);
        f.set_memory_displacement64(0);
        f.set_memory_displ_size(0);
        self.e.store_gs(off::SPILL_SCRATCH, s);
        self.e.mov_imm64(s, target);
        self.may_fault(Spilled::scratch(s));
        self.encode_at_pc(&f).expect("rip-relative instruction re-encodes with a register base");
        self.e.load_gs(s, off::SPILL_SCRATCH);
    }

    /// Before `popf`: a popped value with TF (bit 8) set leaves to the
    /// dispatcher, which pops it itself and steps the guest from then on;
    /// the CPU's own trap flag is never set in cached code. (The `test`
    /// changes flags that `popf` is about to replace.)
    fn popf_trap_flag_check(&mut self, ins: &Instruction) {
        asm!(self.e; test BYTE [rsp + 1], 1);
        let over = self.e.short_branch(&[0x74]); // jz over
        self.special_exit(ExitReason::TrapFlag, GuestAddr(ins.ip()));
        let ok = self.e.bind_rel8(over);
        debug_assert!(ok);
    }

    /// rdgsbase/wrgsbase act on the guest's virtual GS base in the context.
    /// (A non-canonical wrgsbase value is taken as is: natively #GP.)
    fn gs_base_access(&mut self, ins: &Instruction) -> Option<bool> {
        let base = MemoryOperand::with_base_displ(Register::None, off::GUEST_GS as i64);
        let gs = |mut m: MemoryOperand| {
            m.segment_prefix = Register::GS;
            m.displ_size = 4;
            m
        };
        let high = MemoryOperand::with_base_displ(Register::None, off::GUEST_GS as i64 + 4);
        let seq: Vec<Instruction> = match ins.code() {
            Code::Rdgsbase_r64 => vec![Instruction::with2(Code::Mov_r64_rm64, ins.op0_register(), gs(base)).ok()?],
            // A 32-bit load zero-extends, as rdgsbase r32 does.
            Code::Rdgsbase_r32 => vec![Instruction::with2(Code::Mov_r32_rm32, ins.op0_register(), gs(base)).ok()?],
            Code::Wrgsbase_r64 => vec![Instruction::with2(Code::Mov_rm64_r64, gs(base), ins.op0_register()).ok()?],
            Code::Wrgsbase_r32 => vec![
                Instruction::with2(Code::Mov_rm32_r32, gs(base), ins.op0_register()).ok()?,
                Instruction::with2(Code::Mov_rm32_imm32, gs(high), 0u32).ok()?,
            ],
            _ => return None,
        };
        for i in &seq {
            self.encode_at_pc(i).ok()?;
        }
        Some(true)
    }

    /// `mov gs, r/m`, `pop gs`, `lgs`: loads of the GS selector.
    /// (Privileged loads such as `lkgs` fault natively and are copied.)
    fn writes_gs_selector(&mut self, ins: &Instruction) -> bool {
        match ins.mnemonic() {
            Mnemonic::Mov | Mnemonic::Pop => ins.op0_kind() == OpKind::Register && ins.op0_register() == Register::GS,
            Mnemonic::Lgs => true,
            _ => false,
        }
    }

    /// An instruction with an explicit `gs:` memory operand, rewritten
    /// through a scratch register holding the guest's GS base (spilled and
    /// restored as in `riprel`, so a fault inside finds the guest's value).
    /// Returns false for forms left unsupported: implicit operands (string
    /// instructions, xlat), rip-relative or 32-bit addressing, vector
    /// indexes.
    fn gs_relative(&mut self, ins: &Instruction, raw: &[u8]) -> bool {
        let explicit = (0..ins.op_count()).any(|i| ins.op_kind(i) == OpKind::Memory);
        if !explicit || ins.memory_segment() != Register::GS {
            return false;
        }
        if matches!(ins.mnemonic(), Mnemonic::Nop) {
            // Multi-byte nops read nothing.
            self.e.bytes(raw);
            return true;
        }
        if matches!(ins.code(), Code::Lea_r16_m | Code::Lea_r32_m | Code::Lea_r64_m) {
            // lea computes the offset only: the segment does not matter.
            let mut f = *ins;
            f.set_segment_prefix(Register::None);
            if f.is_ip_rel_memory_operand() {
                self.riprel(&f, None);
                return true;
            }
            return self.encode_at_pc(&f).is_ok();
        }
        let (b, x) = (ins.memory_base(), ins.memory_index());
        // `addr32 gs:[disp32]`: the offset is the zero-extended disp32.
        let abs32 = b == Register::None && x == Register::None && ins.memory_displ_size() == 4;
        if ins.is_ip_rel_memory_operand() || b.size() == 4 || x.size() == 4 || (x != Register::None && !x.is_gpr()) {
            return false;
        }
        let regs = self.info.info(ins).used_registers().iter().map(|u| u.register()).collect::<Vec<_>>();
        let used = regs.iter().map(|r| r.full_register()).collect::<Vec<_>>();
        let high8 = regs.iter().any(|r| matches!(r, Register::AH | Register::CH | Register::DH | Register::BH));
        let legacy_only = high8 || ins.code().encoding() == EncodingKind::D3NOW;
        let Some(scratch) = SCRATCH
            .iter()
            .copied()
            .filter(|r| !legacy_only || r.number() < Register::R8.number())
            .find(|r| !used.contains(r))
        else {
            return false;
        };
        let s = reg_num(scratch);
        let mut f = *ins;
        f.set_segment_prefix(Register::None);
        let mut pre = Vec::new();
        match (b, x) {
            (Register::None, Register::None) if abs32 => {
                // The 64-bit form sign-extends its disp32: step the scratch
                // up by lea (flag-free) until the rest fits.
                let mut rest = ins.memory_displacement64() & 0xffff_ffff;
                while rest > i32::MAX as u64 {
                    let m = MemoryOperand::with_base_displ(scratch, i32::MAX as i64);
                    match Instruction::with2(Code::Lea_r64_m, scratch, m) {
                        Ok(i) => pre.push(i),
                        Err(_) => return false,
                    }
                    rest -= i32::MAX as u64;
                }
                f.set_memory_base(scratch);
                f.set_memory_displacement64(rest);
                f.set_memory_displ_size(if rest == 0 { 0 } else { 8 });
            }
            (Register::None, _) => f.set_memory_base(scratch),
            (_, Register::None) => {
                f.set_memory_index(scratch);
                f.set_memory_index_scale(1);
            }
            _ => {
                // Both taken: fold the base into the scratch first (lea
                // leaves the flags alone).
                let m = MemoryOperand::with_base_index(scratch, b);
                match Instruction::with2(Code::Lea_r64_m, scratch, m) {
                    Ok(i) => pre.push(i),
                    Err(_) => return false,
                }
                f.set_memory_base(scratch);
            }
        }
        // Check that it encodes before emitting anything.
        if Encoder::new(64).encode(&f, self.e.pc().get()).is_err() {
            return false;
        }
        self.e.store_gs(off::SPILL_SCRATCH, s);
        self.e.load_gs(s, off::GUEST_GS);
        for p in &pre {
            self.encode_at_pc(p).expect("lea scratch, [scratch + x] encodes");
        }
        if self.opts.confine_stores && self.writes_memory(&f) {
            // The address with the guest's GS base, as the scratch holds it.
            let a = StoreAddr::Regs {
                base: f.memory_base(),
                index: f.memory_index(),
                scale: f.memory_index_scale(),
                displ: f.memory_displacement64(),
                fs: false,
            };
            self.check_store(a, GuestAddr(ins.ip()), vec![(s, off::SPILL_SCRATCH)]);
        }
        self.may_fault(Spilled::scratch(s));
        self.encode_at_pc(&f).expect("gs-relative instruction re-encodes without the segment");
        self.e.load_gs(s, off::SPILL_SCRATCH);
        true
    }

    /// For `jmp`/`call` through memory at a fixed address (rip-relative or
    /// an absolute displacement) that `read_constant` vouches for: the
    /// target and the pointer's address.
    fn constant_target(&self, ins: &Instruction) -> Option<(GuestAddr, GuestAddr)> {
        let read = self.opts.read_constant?;
        if ins.op0_kind() != OpKind::Memory || ins.segment_prefix() != Register::None {
            return None;
        }
        let at = if ins.is_ip_rel_memory_operand() {
            ins.ip_rel_memory_address()
        } else if ins.memory_base() == Register::None && ins.memory_index() == Register::None {
            ins.memory_displacement64()
        } else {
            return None;
        };
        read(GuestAddr(at)).map(|v| (GuestAddr(v), GuestAddr(at)))
    }

    /// A jump table: an indirect jump whose target is read, at an index
    /// known to be at most `MAX_JT_ENTRIES - 1`, from a table in constant
    /// memory (`read_constant`) at a known address. Three shapes, the first
    /// instruction of which is `ins`:
    ///
    /// ```text
    /// jmp [T + idx*8]                            ; absolute table
    /// mov rX, [T + idx*8]  ...  jmp rX           ; computed goto (CPython)
    /// movsxd rX, [kb + idx*4] ... add rX, kb ... jmp rX   ; PIC switch
    /// ```
    ///
    /// (T a displacement or a register of known value, kb a register of
    /// known value; `...`: register moves that touch neither rX, idx, kb,
    /// memory nor flags.) All of the table's targets are known now, so the
    /// jump becomes
    ///
    /// ```text
    /// <the register moves>
    /// jmp [H + idx*8]            ; H: the entries, below 2 GiB (shared by
    ///                            ; blocks with the same table: `JtKey`)
    /// pad_k: [mov rX, value_k]   ; what the load would have given
    ///        [add rX, kb]        ; the guest's add: its flags, exactly
    ///        jmp target_k        ; an exit, linked like any other
    /// ```
    ///
    /// with one pad per distinct target and H[i] the pad of entry i: one
    /// indirect jump that the CPU predicts per site, as natively, instead
    /// of a table lookup and a target check. Every guest register, the
    /// flags and memory end as the guest's instructions leave them (the
    /// moves commute with the load, which cannot fault: its memory is
    /// readable and constant). A signal is delivered as at any direct exit
    /// (the handler unlinks the pads' exits). Returns the guest bytes the
    /// block takes through the jump.
    fn jump_table(&mut self, pc: GuestAddr, ins: &Instruction, rest: &[u8]) -> Option<u32> {
        #[derive(Clone, Copy, PartialEq)]
        enum Shape {
            Jmp,
            Load,
            Rel,
        }
        let read = self.opts.read_constant?;
        let JtSpace { start: space, end: space_end, known } = self.jt_space?;
        if self.opts.single_step || self.jump_table.is_some() {
            return None;
        }
        let (shape, scale) = match ins.code() {
            Code::Jmp_rm64 if ins.op0_kind() == OpKind::Memory => (Shape::Jmp, 8),
            Code::Mov_r64_rm64 if ins.op1_kind() == OpKind::Memory => (Shape::Load, 8),
            Code::Movsxd_r64_rm32 if ins.op1_kind() == OpKind::Memory => (Shape::Rel, 4),
            _ => return None,
        };
        let idx = ins.memory_index();
        let base = ins.memory_base();
        if ins.segment_prefix() != Register::None
            || !idx.is_gpr64()
            || ins.memory_index_scale() != scale
            || (base != Register::None && !base.is_gpr64())
        {
            return None;
        }
        if shape == Shape::Rel && (base == Register::None || base == ins.op0_register()) {
            return None;
        }
        // The rest of the shape, up to the jump.
        let rx = if shape == Shape::Jmp { Register::None } else { ins.op0_register() };
        let mut moves: Vec<(GuestAddr, &[u8])> = Vec::new();
        let mut moves_use_idx = false;
        let mut add: Option<&[u8]> = None;
        let mut end = ins.next_ip();
        let mut jmp_at = GuestAddr(ins.ip());
        if shape != Shape::Jmp {
            let off = ins.len();
            let mut d = Decoder::with_ip(64, &rest[off..], ins.next_ip(), DecoderOptions::NONE);
            let mut next = Instruction::default();
            let touched = |r: Register| [rx, base].iter().any(|&t| t != Register::None && gpr_index(r) == gpr_index(t));
            loop {
                if !d.can_decode() || moves.len() > 4 {
                    return None;
                }
                d.decode_out(&mut next);
                let raw = &rest[(next.ip() - ins.ip()) as usize..][..next.len()];
                end = next.next_ip();
                jmp_at = GuestAddr(next.ip());
                if next.code() == Code::Jmp_rm64 && next.op0_kind() == OpKind::Register && next.op0_register() == rx {
                    if shape == Shape::Rel && add.is_none() {
                        return None;
                    }
                    break;
                }
                let is_add = matches!(next.code(), Code::Add_rm64_r64 | Code::Add_r64_rm64)
                    && next.op0_kind() == OpKind::Register
                    && next.op1_kind() == OpKind::Register
                    && next.op0_register() == rx
                    && next.op1_register() == base;
                if shape == Shape::Rel && is_add && add.is_none() {
                    add = Some(raw);
                    continue;
                }
                let used = self.info.info(&next).used_registers().to_vec();
                if !is_register_move(&next)
                    || used.iter().any(|u| touched(u.register()) || u.register().full_register() == Register::RSP)
                {
                    return None;
                }
                // A move that uses the index is only possible in a guarded
                // table, whose pads make the moves after the table jump.
                moves_use_idx |= used.iter().any(|u| gpr_index(u.register()) == gpr_index(idx));
                moves.push((GuestAddr(next.ip()), raw));
            }
        }
        // The index's bound and the base's value, from the instructions
        // before (worked out only now: most candidates are not jump tables).
        let mut facts = RegFacts::entered_with(self.opts.entry_regs);
        for h in &self.history {
            facts.after(h, &mut self.info);
        }
        // What the block's own instructions do not tell may be guessed and
        // checked at run time (a guarded table): the base from its value at
        // block entry, the index's range from the table. Never in a block
        // that starts at the load itself: that block is where a failed
        // check goes.
        let may_guess = self.opts.bmi2
            && GuestAddr(ins.ip()) != pc
            && ![base, idx].iter().any(|&r| matches!(gpr_index(r), Some(reg::RCX | reg::RSP)));
        let (base_value, guard_base) = match (base, facts.value(base)) {
            (Register::None, _) => (0, false),
            (_, Some(v)) => (v, false),
            (_, None) if may_guess => (facts.entry_value(base)?, true),
            _ => return None,
        };
        let table = base_value.wrapping_add(ins.memory_displacement64());
        if shape == Shape::Rel && table % 4 != 0 {
            return None;
        }
        let site = GuestAddr(ins.ip());
        let (n, index_check) = match facts.bound(idx) {
            Some(b) => (b as usize + 1, IndexCheck::Proven),
            // The PIC shape's add sets every flag, so before it they are
            // dead and the check compares with the exact count; the other
            // shapes check flag-free, up to a power of two.
            None if may_guess && shape == Shape::Rel => {
                (guess_index_range(read, table, scale, base_value, site)?, IndexCheck::Below)
            }
            None if may_guess => {
                let count = guess_index_range(read, table, scale, base_value, site)?;
                let bits = count.next_power_of_two().trailing_zeros();
                (1usize << bits, IndexCheck::Bits(bits))
            }
            None => return None,
        };
        let guarded = guard_base || index_check != IndexCheck::Proven;
        if n > MAX_JT_ENTRIES || (space_end - space) as usize / 8 < n || (moves_use_idx && !guarded) {
            return None;
        }
        if guarded {
            return self.guarded_jump_table(GuardedTable {
                pc,
                ins,
                load: &rest[..ins.len()],
                table,
                scale,
                n,
                guard_base: guard_base.then_some(base),
                base_value,
                index_check,
                idx,
                rx,
                moves,
                add,
                end,
                space,
            });
        }
        let rx_n = gpr_index(rx).map(|r| r as u8);
        let mut key = JtKey {
            table,
            entries: n as u32,
            scale: scale as u8,
            rx: rx_n.unwrap_or(16),
            base: if shape == Shape::Rel { base_value } else { 0 },
            add: (0, [0; 4]),
        };
        if let Some(raw) = add {
            key.add.0 = raw.len() as u8;
            key.add.1[..raw.len()].copy_from_slice(raw);
        }
        // The table's memory, page by page: the translation depends on it.
        let last = table.wrapping_add(scale as u64 * n as u64 + 7);
        if last < table {
            return None;
        }
        let pages: Vec<GuestAddr> = (table >> 12..=last >> 12).map(|p| GuestAddr((p << 12).max(table))).collect();
        let shared = known(&key);
        let made = match shared {
            Some(_) => None,
            None => Some(self.table_values(read, &key)?),
        };
        // Emit: the moves, then the site.
        for (at, raw) in moves {
            self.mark(pc, at);
            self.e.bytes(raw);
        }
        self.mark(pc, jmp_at);
        let i = gpr_index(idx).expect("a 64-bit register") as u8;
        let at = shared.unwrap_or(space);
        self.e.jmp_table(i, at);
        // A new table: one pad per distinct value.
        let entries = made.map(|values| {
            let mut distinct: Vec<u64> = values.clone();
            distinct.sort_unstable();
            distinct.dedup();
            let mut pads: Vec<(u64, u64)> = Vec::with_capacity(distinct.len());
            for &v in &distinct {
                let pad = self.e.pc().get();
                if let Some(r) = rx_n {
                    self.e.mov_imm64(r, v);
                }
                if let Some(raw) = add {
                    self.e.bytes(raw);
                }
                let s = self.e.jmp_rel32();
                let target = if shape == Shape::Rel { v.wrapping_add(base_value) } else { v };
                self.exit(s, GuestAddr(target));
                pads.push((v, pad));
            }
            values.iter().map(|v| pads[pads.binary_search_by_key(v, |&(k, _)| k).expect("a pad per value")].1).collect()
        });
        self.jump_table = Some(JumpTable { key, at, entries, shareable: true });
        self.constants.extend(pages);
        Some((end - ins.ip()) as u32)
    }

    /// A jump table whose base or index range was guessed: the guesses are
    /// checked first (flags untouched: `lea`, `shrx`, `jrcxz`, rcx in its
    /// spill slot), the table jump follows, and each pad makes the guest's
    /// moves, its load's value and add, then exits. A failed check, and an
    /// index within the covered range whose entry is not a near constant,
    /// leave for the block at the load, which looks the target up as any
    /// indirect jump (guest state exactly as before the load).
    ///
    /// ```text
    /// mov gs:[SPILL_RCX], rcx
    /// mov rcx, -base ; lea rcx, [rcx + B] ; jrcxz 1f ; jmp fail ; 1:
    /// mov ecx, bits  ; shrx rcx, I, rcx   ; jrcxz 2f ; jmp fail ; 2:
    /// mov rcx, gs:[SPILL_RCX]
    /// jmp [H + I*8]
    /// pad: <moves> ; mov rX, value ; [add rX, B] ; jmp target
    /// fail: mov rcx, gs:[SPILL_RCX] ; jmp <the load>
    /// ```
    ///
    /// In the PIC shape the guest's add sets every flag, so the checks are
    /// compares (`cmp B, base ; jne fail ; cmp I, n ; jae fail`, not taken
    /// when they pass: taken branches that always go the same way would
    /// crowd the history the CPU predicts the table jump from), and the
    /// fail path makes the guest's load, moves and add itself before it
    /// looks the target up, so that no exit sees the compare's flags.
    fn guarded_jump_table(&mut self, g: GuardedTable<'_>) -> Option<u32> {
        let read = self.opts.read_constant?;
        let site = GuestAddr(g.ins.ip());
        let entries: Vec<Option<(u64, u64)>> =
            (0..g.n).map(|i| guarded_target(read, g.table, g.scale, g.base_value, site, i)).collect();
        let mut distinct: Vec<u64> = entries.iter().flatten().map(|&(v, _)| v).collect();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.is_empty() || distinct.len() > MAX_JT_TARGETS {
            return None;
        }
        let rcx = reg::RCX as u8;
        self.mark(g.pc, site);
        let mut fails = Vec::new();
        let i = gpr_index(g.idx).expect("a 64-bit register") as u8;
        // The PIC shape: flags are dead (its add sets them all), so the
        // checks are compares, taken only when they fail.
        let flags_dead = g.add.is_some();
        if flags_dead {
            if let Some(b) = g.guard_base {
                let b = gpr_index(b).expect("a 64-bit register") as u8;
                match i32::try_from(g.base_value as i64) {
                    Ok(imm) => asm!(self.e; cmp Rq(b), DWORD imm),
                    Err(_) => {
                        let v = g.base_value as i64;
                        asm!(self.e
                            ; gs mov [off::SPILL_RCX], rcx
                            ; mov rcx, QWORD v
                            ; cmp Rq(b), rcx
                            ; gs mov rcx, [off::SPILL_RCX]
                        );
                    }
                }
                fails.push(self.e.jcc_rel32(0x5)); // jne
            }
            if g.index_check == IndexCheck::Below {
                let n = i32::try_from(g.n).expect("a small table");
                asm!(self.e; cmp Rq(i), DWORD n);
                fails.push(self.e.jcc_rel32(0x3)); // jae
            }
        } else {
            self.e.store_gs(off::SPILL_RCX, rcx);
        }
        if let Some(b) = g.guard_base.filter(|_| !flags_dead) {
            let b = gpr_index(b).expect("a 64-bit register") as u8;
            let minus_base = g.base_value.wrapping_neg() as i64;
            asm!(self.e
                ; mov rcx, QWORD minus_base
                ; lea rcx, [rcx + Rq(b) * 1]
            );
            let skip = self.e.jrcxz_fwd();
            fails.push(self.e.jmp_rel32());
            self.e.bind_rel8(skip);
        }
        if let IndexCheck::Bits(bits) = g.index_check {
            let bits = bits as i32;
            asm!(self.e
                ; mov ecx, DWORD bits
                ; shrx rcx, Rq(i), rcx
            );
            let skip = self.e.jrcxz_fwd();
            fails.push(self.e.jmp_rel32());
            self.e.bind_rel8(skip);
        }
        if !flags_dead {
            self.e.load_gs(rcx, off::SPILL_RCX);
        }
        self.e.jmp_table(i, g.space);
        let rx_n = gpr_index(g.rx).map(|r| r as u8);
        let mut pads: Vec<(u64, u64)> = Vec::with_capacity(distinct.len());
        for &v in &distinct {
            self.e.align_nop(16, 0);
            let pad = self.e.pc().get();
            for (_, raw) in &g.moves {
                self.e.bytes(raw);
            }
            if let Some(r) = rx_n {
                self.e.mov_imm64(r, v);
            }
            if let Some(raw) = g.add {
                self.e.bytes(raw);
            }
            let s = self.e.jmp_rel32();
            let target = if g.scale == 4 { v.wrapping_add(g.base_value) } else { v };
            self.exit(s, GuestAddr(target));
            pads.push((v, pad));
        }
        let fail = self.e.pc();
        if flags_dead {
            // The compare changed the flags, which the guest's add defines
            // again: the guest's own load, moves and add come before any
            // exit (a signal is taken only at an exit), then the lookup.
            self.mark(g.pc, site);
            self.e.bytes(g.load);
            for (at, raw) in &g.moves {
                self.mark(g.pc, *at);
                self.e.bytes(raw);
            }
            self.e.bytes(g.add.expect("the PIC shape has an add"));
            self.e.store_gs(off::SPILL_RCX, rcx);
            let x = rx_n.expect("the PIC shape loads a register");
            asm!(self.e; mov rcx, Rq(x));
            self.emit_lookup(SiteKind::Jmp, None, Compare::Wide);
        } else {
            self.e.load_gs(rcx, off::SPILL_RCX);
            let s = self.e.jmp_rel32();
            self.exit(s, site);
        }
        for f in fails {
            self.e.patch(f, fail);
        }
        let table_entries: Vec<u64> = entries
            .iter()
            .map(|e| match e {
                Some((v, _)) => pads[pads.binary_search_by_key(v, |&(k, _)| k).expect("a pad per value")].1,
                None => fail.get(),
            })
            .collect();
        let last = g.table.wrapping_add(g.scale as u64 * g.n as u64 + 7);
        if last >= g.table {
            self.constants.extend((g.table >> 12..=last >> 12).map(|p| GuestAddr((p << 12).max(g.table))));
        }
        let key = JtKey {
            table: g.table,
            entries: g.n as u32,
            scale: g.scale as u8,
            rx: rx_n.unwrap_or(16),
            base: g.base_value,
            add: (0, [0; 4]),
        };
        self.jump_table = Some(JumpTable { key, at: g.space, entries: Some(table_entries), shareable: false });
        Some((g.end - g.ins.ip()) as u32)
    }

    /// The values of a jump table's entries (what the guest's load gives),
    /// if every one is constant and they have at most `MAX_JT_TARGETS`
    /// distinct values.
    fn table_values(&self, read: fn(GuestAddr) -> Option<u64>, key: &JtKey) -> Option<Vec<u64>> {
        let mut values = Vec::with_capacity(key.entries as usize);
        for i in 0..key.entries as u64 {
            let at = key.table.wrapping_add(key.scale as u64 * i);
            let v = if key.scale == 8 {
                read(GuestAddr(at))?
            } else {
                let q = read(GuestAddr(at & !7))?;
                (q >> (8 * (at & 7))) as u32 as i32 as i64 as u64
            };
            values.push(v);
        }
        let mut distinct = values.clone();
        distinct.sort_unstable();
        distinct.dedup();
        (distinct.len() <= MAX_JT_TARGETS).then_some(values)
    }

    /// The next instruction emitted can fault while the guest's `regs` are
    /// in their spill slots.
    fn may_fault(&mut self, regs: Spilled) {
        self.spilled.push((self.e.len() as u32, regs));
    }

    /// Does `ins` write memory (explicitly or implicitly)?
    fn writes_memory(&mut self, ins: &Instruction) -> bool {
        self.info.info(ins).used_memory().iter().any(|m| {
            matches!(m.access(), OpAccess::Write | OpAccess::ReadWrite | OpAccess::CondWrite | OpAccess::ReadCondWrite)
        })
    }

    /// Store confinement (isolation), before `ins`: a check of each address
    /// it writes that is not known to lie below `GUEST_LIMIT`. Known
    /// below, or faulting in the guard band above it (`GUEST_GUARD`)
    /// before anything else: rsp-relative operands (rsp is kept below the
    /// limit, `check_rsp`) and the stack's pushes, 32-bit addresses,
    /// constant addresses below the limit. A string instruction is checked
    /// at its first element: running upward it meets the guard band,
    /// downward it wraps to addresses that fault. A scatter with 32-bit
    /// indices is checked at its base and displacement: its elements lie
    /// within 16 GiB of that, in the guard band at worst. False for forms
    /// not confined yet (scatters with 64-bit indices, AMX tile stores),
    /// which are refused as unsupported.
    fn confine(&mut self, ins: &Instruction) -> bool {
        if matches!(ins.code(), Code::VEX_Tilestored_sibmem_tmm) || self.facts.wide_vector_index {
            return false;
        }
        let mut checks = Vec::new();
        for &(base, index, scale, displ, fs) in &self.facts.stores {
            let a = if base == Register::RIP {
                StoreAddr::Const(displ)
            } else if base.size() == 4 || index.size() == 4 {
                // 32-bit addressing: below 4 GiB, but for the FS base.
                if !fs {
                    continue;
                }
                StoreAddr::Regs { base, index, scale, displ, fs }
            } else if base == Register::None && index == Register::None && !fs {
                StoreAddr::Const(displ)
            } else if base == Register::RSP && index == Register::None && !fs {
                continue;
            } else {
                StoreAddr::Regs { base, index, scale, displ, fs }
            };
            if !checks.contains(&a) {
                checks.push(a);
            }
        }
        for a in checks {
            self.check_store(a, GuestAddr(ins.ip()), Vec::new());
        }
        true
    }

    /// Emit the check that address `a` lies below `GUEST_LIMIT`; if not,
    /// the block leaves with `StoreFault` at `pc` (every register the
    /// guest's, once `restore`, spill slots of registers the caller moved
    /// aside, is done). Flag-free and branch-free: a register `r` that the
    /// store does not use is kept in `GuestContext::store_probe` and
    /// reloaded from there indexed by the address's bits 46..61, so the
    /// reload faults (past the context's pages, `ContextBox`) unless they
    /// are all 0; the fault is recorded as the check's (`Spilled::probe`).
    /// Bits 62 and 63 set alone make the address non-canonical: the store
    /// faults itself.
    ///
    /// ```text
    /// mov gs:[STORE_PROBE], r
    /// lea r, [a]                   ; + rdfsbase into rdx, lea r, [r+rdx]
    /// rorx r, r, 46                ; bits 46..61 to 0..15
    /// movzx r32, r16
    /// mov r, gs:[r*8 + STORE_PROBE]
    /// ```
    ///
    /// r is the first of r11, r10, r9, r8, ... that the store does not
    /// use, so the store does not wait for the reload.
    fn check_store(&mut self, a: StoreAddr, pc: GuestAddr, restore: Vec<(u8, i32)>) {
        let (base, index, scale, displ, fs) = match a {
            StoreAddr::Const(v) => {
                if v < GUEST_LIMIT || (v as i64) < 0 {
                    return;
                }
                // Always outside: the store never happens.
                let s = self.e.jmp_rel32();
                self.store_fails.push((s, pc, ExitReason::StoreFault, restore));
                return;
            }
            StoreAddr::Regs { base, index, scale, displ, fs } => (base, index, scale, displ, fs),
        };
        let near = |&(b, x, sc, d): &(Register, Register, u32, i64)| {
            b == base && x == index && sc == scale && (d.wrapping_sub(displ as i64)).unsigned_abs() < GUEST_GUARD / 2
        };
        let tracked = !fs && restore.is_empty();
        if tracked && self.checked.iter().any(near) {
            return;
        }
        if tracked {
            self.checked.push((base, index, scale, displ as i64));
        }
        // iced-x86 sizes a 64-bit address's disp32 as 8 (sign-extended).
        let addr32 = base.size() == 4 || index.size() == 4;
        let displ_size = if i8::try_from(displ as i64).is_ok() {
            1
        } else if addr32 {
            4
        } else {
            8
        };
        let m = MemoryOperand::new(base, index, scale, displ as i64, displ_size, false, Register::None);
        let mut spilled = Spilled::default();
        let mut avoid = self.facts.regs | 1 << reg::RSP;
        for &(r, slot) in &restore {
            avoid |= 1 << r;
            match slot {
                off::SPILL_RCX => spilled.rcx = true,
                off::SPILL_RDX => spilled.rdx = true,
                off::SPILL_SCRATCH => spilled.scratch = Some(r),
                _ => unreachable!("a check restores only spill slots"),
            }
        }
        if fs {
            avoid |= 1 << reg::RDX;
        }
        const ORDER: [Register; 16] = [
            Register::R11,
            Register::R10,
            Register::R9,
            Register::R8,
            Register::RSI,
            Register::RDI,
            Register::RAX,
            Register::RBX,
            Register::RBP,
            Register::R12,
            Register::R13,
            Register::R14,
            Register::R15,
            Register::RCX,
            Register::RDX,
            Register::RSP,
        ];
        let r =
            ORDER.into_iter().find(|&r| avoid & (1 << reg_num(r)) == 0).expect("a store uses fewer than 15 registers");
        let n = reg_num(r);
        let lea = Instruction::with2(Code::Lea_r64_m, r, m).expect("lea r64, m64 is an instruction");
        asm!(self.e; gs mov [off::STORE_PROBE], Rq(n));
        if fs {
            asm!(self.e; gs mov [off::SPILL_RDX], rdx);
        }
        self.encode_at_pc(&lea).expect("the store's address encodes as a lea");
        if fs {
            asm!(self.e
                ; rdfsbase rdx
                ; lea Rq(n), [Rq(n) + rdx]
                ; gs mov rdx, [off::SPILL_RDX]
            );
        }
        let shift = GUEST_LIMIT.trailing_zeros() as i8;
        asm!(self.e
            ; rorx Rq(n), Rq(n), shift
            ; movzx Rd(n), Rw(n)
        );
        self.may_fault(Spilled { probe: Some(n), ..spilled });
        asm!(self.e; gs mov Rq(n), [Rq(n) * 8 + off::STORE_PROBE]);
    }

    /// Checked addresses (`checked`) that use a register `ins` (just
    /// translated) writes are no longer known, unless it only moved that
    /// register by a constant: then the same address is known under a
    /// displacement less that constant.
    fn forget_checks_written(&mut self, ins: &Instruction) {
        if self.checked.is_empty() || self.facts.written == 0 {
            return;
        }
        if let Some((r, k)) = moved_by_constant(ins) {
            for (b, x, scale, d) in &mut self.checked {
                if *b == r {
                    *d = d.wrapping_sub(k);
                }
                if *x == r {
                    *d = d.wrapping_sub(k.wrapping_mul(*scale as i64));
                }
            }
            return;
        }
        let written = self.facts.written;
        let kept = |r: Register| r == Register::None || written & (1 << reg_num(r)) == 0;
        self.checked.retain(|&(b, x, _, _)| kept(b) && kept(x));
    }

    /// Does `ins` set rsp other than by a push, pop, call, return or
    /// `enter` (which move it by at most 64 KiB, and read or write at it
    /// first) or by `sub`/`and` with an immediate (which lower it, or wrap
    /// it to an address that faults)?
    fn moves_rsp_far(&mut self, ins: &Instruction) -> bool {
        if self.facts.written & (1 << reg::RSP) == 0 {
            return false;
        }
        let pops_rsp = ins.mnemonic() == Mnemonic::Pop
            && ins.op0_kind() == OpKind::Register
            && ins.op0_register() == Register::RSP;
        let stack_op = matches!(
            ins.mnemonic(),
            Mnemonic::Push
                | Mnemonic::Pop
                | Mnemonic::Pushf
                | Mnemonic::Pushfq
                | Mnemonic::Popf
                | Mnemonic::Popfq
                | Mnemonic::Enter
        ) && !pops_rsp;
        let by_imm = ins.op0_kind() == OpKind::Register
            && ins.op0_register() == Register::RSP
            && matches!(ins.op1_kind(), OpKind::Immediate8to64 | OpKind::Immediate32to64);
        let lowers = by_imm
            && matches!(ins.mnemonic(), Mnemonic::Sub | Mnemonic::And)
            && (ins.mnemonic() == Mnemonic::And || (ins.immediate(1) as i64) >= 0);
        // `add rsp, imm` (an epilogue) followed at once by an access at rsp
        // (pop, ret): from below the limit it lands at most 2 GiB above it,
        // in the guard band, where that access faults first.
        let probed = by_imm
            && ins.mnemonic() == Mnemonic::Add
            && (ins.immediate(1) as i64) >= 0
            && ins.immediate(1) < GUEST_GUARD / 2
            && self.next_touches_stack;
        !stack_op && !lowers && !probed
    }

    /// After an instruction that set rsp (`moves_rsp_far`): rsp must be
    /// below `GUEST_LIMIT`, else the block leaves with `StackFault` at
    /// `next`, rcx back from `SPILL_RCX`. A branch rather than
    /// `check_store`'s probe, whose fault the host handler turns into
    /// `StoreFault` at the instruction itself.
    fn check_rsp(&mut self, next: GuestAddr) {
        let shift = GUEST_LIMIT.trailing_zeros() as i8;
        asm!(self.e
            ; gs mov [off::SPILL_RCX], rcx
            ; mov rcx, rsp
            ; rorx rcx, rcx, shift
            ; movzx ecx, cx
        );
        let ok = self.e.jrcxz_fwd();
        let fail = self.e.jmp_rel32();
        let bound = self.e.bind_rel8(ok);
        debug_assert!(bound);
        asm!(self.e; gs mov rcx, [off::SPILL_RCX]);
        self.store_fails.push((fail, next, ExitReason::StackFault, vec![(reg::RCX as u8, off::SPILL_RCX)]));
    }

    /// Push a call's guest return address: `push imm32` when it is one
    /// sign-extended, else `push qword [rip + literal]`, the literal after
    /// the block's stubs. Either way the push is the only instruction, so a
    /// fault in it (a stack overflow) finds every register the guest's.
    fn push_return(&mut self, next: GuestAddr) {
        let v = next.get();
        if let Ok(imm) = i32::try_from(v as i64) {
            self.e.push_imm32(imm);
        } else {
            let slot = self.e.push_rip_rel();
            self.literals.push((slot, v));
        }
    }

    /// Emit the stubs for the pending exits and produce the translation.
    fn finish(mut self, pc: GuestAddr, guest_len: u32) -> Translation {
        let mut exits = Vec::with_capacity(self.pending.len());
        let pending = std::mem::take(&mut self.pending);
        for (i, (slot, target, ic)) in pending.into_iter().enumerate() {
            if ic.is_some() {
                // The target's imm64 (11 bytes in) is patched when the
                // entry is filled: 8-aligned, so one store writes it.
                self.e.align_nop(8, 11);
            }
            let stub = self.e.pc();
            let id = self.first_exit_id + i as u32;
            self.e.store_gs(off::SPILL_RCX, reg::RCX as u8);
            let stub_imm = self.e.len() as u32 + 2;
            if let Some(p) = ic {
                // The target is patched here as the entry changes.
                self.e.mov_imm64(reg::RCX as u8, stub_target(target, p.form).get());
                self.e.store_gs_imm(off::EXIT_ID, id as i32);
                self.e.store_gs_imm(off::EXIT_REASON, ExitReason::Branch as i32);
                self.e.jmp_gs(off::EXIT_TRAMP);
            } else {
                // A plain exit's target never changes: the stub carries
                // only the exit's id (22 bytes instead of 53), and the
                // dispatcher reads the target from the exit's record.
                asm!(self.e; mov ecx, id as i32);
                self.e.jmp_gs(off::EXIT_BRANCH);
            }
            self.e.patch(slot, stub);
            exits.push(ExitSite {
                slot: slot.0 as u32,
                stub: (stub.get() - self.e.base().get()) as u32,
                target,
                ic: ic.map(|p| IcPatch { stub_imm, ..p }),
            });
        }
        for (slot, at, reason, restore) in std::mem::take(&mut self.store_fails) {
            let stub = self.e.pc();
            self.e.patch(slot, stub);
            for (r, from) in restore {
                self.e.load_gs(r, from);
            }
            self.special_exit(reason, at);
        }
        for (slot, v) in std::mem::take(&mut self.literals) {
            let at = self.e.literal64(v);
            self.e.patch(slot, at);
        }
        Translation {
            guest: pc,
            guest_len,
            code: self.e.into_bytes(),
            exits,
            insn_map: self.insn_map,
            entry: BLOCK_ENTRY,
            spilled: self.spilled,
            constants: self.constants,
            jump_table: self.jump_table,
            ic_counted: self.ic_counted,
        }
    }
}

/// What the dispatcher must know of an instruction it single-steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepKind {
    Other,
    /// `pushf`: the pushed image must show the trap flag.
    Pushf,
    /// `popf` of `size` bytes, `len` bytes long (the dispatcher pops a
    /// value with TF itself).
    Popf {
        size: u8,
        len: u8,
    },
    /// `syscall`: no trap after it (the kernel returns to the next
    /// instruction, which traps); r11 shows the trap flag.
    Syscall,
    /// `mov ss, r/m`: it holds off the single-step trap until after the
    /// next instruction, which then reports only its own.
    MovSs,
}

/// The address at or above `GUEST_LIMIT` that the instruction at `pc`
/// (whose bytes start `bytes`) writes, with the guest's registers `gpr`
/// (by `abi::reg` number) and FS and GS bases: what a `StoreFault`
/// reports. None if it writes none there.
pub fn confined_store_address(pc: GuestAddr, bytes: &[u8], gpr: &[u64; 16], fs: u64, gs: u64) -> Option<u64> {
    let ins = Decoder::with_ip(64, bytes, pc.get(), DecoderOptions::NONE).decode();
    if ins.is_invalid() {
        return None;
    }
    let mut info = InstructionInfoFactory::new();
    let value = |r: Register, _: usize, _: usize| -> Option<u64> {
        match r {
            Register::FS => Some(fs),
            Register::GS => Some(gs),
            Register::ES | Register::CS | Register::SS | Register::DS => Some(0),
            Register::RIP => Some(ins.next_ip()),
            r if r.is_gpr() => {
                let v = gpr[reg_num(r) as usize];
                Some(match r.size() {
                    8 => v,
                    4 => v & 0xffff_ffff,
                    2 => v & 0xffff,
                    _ => v & 0xff,
                })
            }
            _ => None,
        }
    };
    info.info(&ins)
        .used_memory()
        .iter()
        .filter(|m| {
            matches!(m.access(), OpAccess::Write | OpAccess::ReadWrite | OpAccess::CondWrite | OpAccess::ReadCondWrite)
        })
        .filter_map(|m| m.virtual_address(0, value))
        .find(|&a| a >= GUEST_LIMIT && (a as i64) >= 0)
}

/// Does the instruction at `pc` (whose bytes start `bytes`) access memory
/// at rsp (within a disp32 of it)?
fn touches_stack(info: &mut InstructionInfoFactory, pc: GuestAddr, bytes: &[u8]) -> bool {
    let mut d = Decoder::with_ip(64, bytes, pc.get(), DecoderOptions::NONE);
    if !d.can_decode() {
        return false;
    }
    let ins = d.decode();
    if ins.is_invalid() {
        return false;
    }
    info.info(&ins).used_memory().iter().any(|m| {
        m.base() == Register::RSP
            && m.index() == Register::None
            && !matches!(m.segment(), Register::FS | Register::GS)
            && !matches!(m.access(), OpAccess::NoMemAccess | OpAccess::None)
    })
}

/// The 64-bit register `ins` adds a constant to, and the constant, if that
/// is all it does to the general registers: `add`/`sub` with an
/// immediate, `inc`, `dec`, or `lea r, [r + disp]`.
fn moved_by_constant(ins: &Instruction) -> Option<(Register, i64)> {
    if ins.op0_kind() != OpKind::Register {
        return None;
    }
    let r = ins.op0_register();
    match ins.code() {
        Code::Add_rm64_imm8 | Code::Add_rm64_imm32 => Some((r, ins.immediate(1) as i64)),
        Code::Sub_rm64_imm8 | Code::Sub_rm64_imm32 => Some((r, (ins.immediate(1) as i64).wrapping_neg())),
        Code::Inc_rm64 => Some((r, 1)),
        Code::Dec_rm64 => Some((r, -1)),
        Code::Lea_r64_m
            if ins.memory_base() == r
                && ins.memory_index() == Register::None
                && ins.segment_prefix() == Register::None =>
        {
            Some((r, ins.memory_displacement64() as i64))
        }
        _ => None,
    }
}

/// The `StepKind` of the instruction at `pc`, whose bytes start `bytes`.
pub fn step_kind(pc: GuestAddr, bytes: &[u8]) -> StepKind {
    let ins = Decoder::with_ip(64, bytes, pc.get(), DecoderOptions::NONE).decode();
    match ins.code() {
        Code::Pushfq | Code::Pushfw => StepKind::Pushf,
        Code::Popfq => StepKind::Popf { size: 8, len: ins.len() as u8 },
        Code::Popfw => StepKind::Popf { size: 2, len: ins.len() as u8 },
        Code::Syscall => StepKind::Syscall,
        Code::Mov_Sreg_r32m16 | Code::Mov_Sreg_r64m16 if ins.op0_register() == Register::SS => StepKind::MovSs,
        _ => StepKind::Other,
    }
}

/// The value `ins` leaves in rax if it is `mov eax, imm32`, `mov rax, imm`
/// or `xor eax, eax`.
fn rax_immediate(ins: &Instruction) -> Option<u64> {
    let to_rax = ins.op0_kind() == OpKind::Register;
    match ins.code() {
        Code::Xor_r32_rm32 | Code::Xor_rm32_r32
            if to_rax
                && ins.op0_register() == Register::EAX
                && ins.op1_kind() == OpKind::Register
                && ins.op1_register() == Register::EAX =>
        {
            Some(0)
        }
        Code::Mov_r32_imm32 | Code::Mov_rm32_imm32 if to_rax && ins.op0_register() == Register::EAX => {
            Some(ins.immediate32() as u64)
        }
        Code::Mov_rm64_imm32 if to_rax && ins.op0_register() == Register::RAX => Some(ins.immediate32to64() as u64),
        Code::Mov_r64_imm64 if ins.op0_register() == Register::RAX => Some(ins.immediate64()),
        _ => None,
    }
}

/// A register-to-register `mov`, `mov reg, imm` or a `lea` that is not
/// rip-relative: no memory access, no flags, cannot fault.
fn is_register_move(ins: &Instruction) -> bool {
    let regs = (0..ins.op_count()).all(|k| ins.op_kind(k) != OpKind::Memory);
    match ins.code() {
        Code::Mov_r64_rm64 | Code::Mov_rm64_r64 | Code::Mov_r32_rm32 | Code::Mov_rm32_r32 => regs,
        Code::Mov_r32_imm32 | Code::Mov_r64_imm64 => true,
        Code::Mov_rm64_imm32 | Code::Mov_rm32_imm32 => ins.op0_kind() == OpKind::Register,
        Code::Lea_r64_m | Code::Lea_r32_m => !ins.is_ip_rel_memory_operand() && ins.segment_prefix() == Register::None,
        _ => false,
    }
}

fn uses_gs(ins: &Instruction) -> bool {
    ins.segment_prefix() == Register::GS
        || (0..ins.op_count()).any(|i| matches!(ins.op_kind(i), OpKind::Memory) && ins.memory_segment() == Register::GS)
}

fn is_rel8_loop(ins: &Instruction) -> bool {
    matches!(
        ins.code(),
        Code::Jrcxz_rel8_64
            | Code::Jecxz_rel8_64
            | Code::Loop_rel8_64_RCX
            | Code::Loop_rel8_64_ECX
            | Code::Loope_rel8_64_RCX
            | Code::Loope_rel8_64_ECX
            | Code::Loopne_rel8_64_RCX
            | Code::Loopne_rel8_64_ECX
    )
}

/// The 4-bit x86 condition-code field for a jcc.
fn cc_nibble(cc: ConditionCode) -> Option<u8> {
    Some(match cc {
        ConditionCode::o => 0,
        ConditionCode::no => 1,
        ConditionCode::b => 2,
        ConditionCode::ae => 3,
        ConditionCode::e => 4,
        ConditionCode::ne => 5,
        ConditionCode::be => 6,
        ConditionCode::a => 7,
        ConditionCode::s => 8,
        ConditionCode::ns => 9,
        ConditionCode::p => 10,
        ConditionCode::np => 11,
        ConditionCode::l => 12,
        ConditionCode::ge => 13,
        ConditionCode::le => 14,
        ConditionCode::g => 15,
        ConditionCode::None => return None,
    })
}

/// How far from a guarded table's jump its guessed entries may lead.
const GUESS_REACH: u64 = 1 << 20;

type ReadFn = fn(GuestAddr) -> Option<u64>;

/// Entry `i` of a guarded table at `table` (entries of `scale` bytes; 4:
/// relative to `base`): the value the guest's load gives and where it
/// leads, if it is constant and within `GUESS_REACH` of `site`.
fn guarded_target(read: ReadFn, table: u64, scale: u32, base: u64, site: GuestAddr, i: usize) -> Option<(u64, u64)> {
    let at = table.checked_add(scale as u64 * i as u64)?;
    let v = if scale == 8 {
        read(GuestAddr(at))?
    } else {
        if at & 7 > 4 {
            return None;
        }
        let q = read(GuestAddr(at & !7))?;
        (q >> (8 * (at & 7))) as u32 as i32 as i64 as u64
    };
    let target = if scale == 4 { v.wrapping_add(base) } else { v };
    (target.abs_diff(site.get()) < GUESS_REACH).then_some((v, target))
}

/// How many entries a guarded table covers: those from `table` on that
/// are constant and lead near the jump (within `GUESS_REACH` of it: a
/// switch's or a function's own labels), at least two.
fn guess_index_range(read: ReadFn, table: u64, scale: u32, base: u64, site: GuestAddr) -> Option<usize> {
    let mut count = 0usize;
    while count < MAX_JT_ENTRIES && guarded_target(read, table, scale, base, site, count).is_some() {
        count += 1;
    }
    (count >= 2).then_some(count)
}

/// How a guarded table's index is kept in range.
#[derive(Clone, Copy, PartialEq, Eq)]
enum IndexCheck {
    /// Bounded by the block's own instructions: no check.
    Proven,
    /// `cmp I, n; jae fail` (the PIC shape, where flags are dead).
    Below,
    /// Below 2^bits, flag-free (`shrx`).
    Bits(u32),
}

/// What `BlockBuilder::guarded_jump_table` emits a table for.
struct GuardedTable<'a> {
    /// The block's first guest pc.
    pc: GuestAddr,
    /// The guest's load (or memory jump) through the table, and its bytes.
    ins: &'a Instruction,
    load: &'a [u8],
    table: u64,
    scale: u32,
    /// Entries covered (2^bits for `IndexCheck::Bits`).
    n: usize,
    /// The base register, when its value was guessed and must be checked.
    guard_base: Option<Register>,
    base_value: u64,
    index_check: IndexCheck,
    idx: Register,
    rx: Register,
    moves: Vec<(GuestAddr, &'a [u8])>,
    add: Option<&'a [u8]>,
    /// The guest address after the jump.
    end: u64,
    /// Where the table goes.
    space: u32,
}

#[cfg(test)]
mod tests {
    /// A block whose bytes are a fetch window ends with a plain exit
    /// `WINDOW_MARGIN` bytes before their end; the same bytes as all there
    /// is end in a fetch fault where they run out.
    #[test]
    fn a_windowed_block_stops_short_of_the_window() {
        let mut bytes = Vec::new();
        while bytes.len() + 10 <= 512 {
            bytes.extend_from_slice(&[0x48, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8]); // mov rax, imm64
        }
        bytes.resize(512, 0x48);
        let pc = GuestAddr(0x40_0000);
        let run = |windowed: bool| {
            let opts = TranslateOptions { windowed, ..Default::default() };
            translate_block_in(pc, &bytes, CachePc(0x1000_0000), 0, opts, None)
        };
        let t = run(true);
        let last = (512 - WINDOW_MARGIN).div_ceil(10) as u32 * 10;
        assert_eq!(t.guest_len, last);
        assert_eq!(t.exits.iter().map(|x| x.target).collect::<Vec<_>>(), [pc.add(u64::from(last))]);
        let t = run(false);
        assert!(t.guest_len >= 510, "{}", t.guest_len);
        assert!(t.exits.is_empty(), "a fetch fault is a special exit, not a branch");
    }
    /// `mov_rcx_from_indirect` loads rcx from the very operand of each
    /// form of indirect jmp/call a compiler emits (and some it does not).
    #[test]
    fn mov_rcx_keeps_the_branch_operand() {
        let forms: &[&[u8]] = &[
            &[0xff, 0x20],                               // jmp [rax]
            &[0x41, 0xff, 0x54, 0x24, 0x08],             // call [r12+8]
            &[0x41, 0xff, 0x55, 0x00],                   // call [r13]
            &[0xff, 0x24, 0xc5, 0x10, 0x20, 0x40, 0x00], // jmp [rax*8+0x402010]
            &[0x3e, 0xff, 0x24, 0x98],                   // notrack jmp [rax+rbx*4]
            &[0x42, 0xff, 0x64, 0xf8, 0xf8],             // jmp [rax+r15*8-8]
            &[0x64, 0xff, 0x14, 0x25, 0x28, 0, 0, 0],    // call fs:[0x28]
            &[0x67, 0xff, 0x20],                         // jmp [eax]
            &[0xf2, 0xff, 0x24, 0x24],                   // bnd jmp [rsp]
            &[0x49, 0xff, 0x93, 0x78, 0x56, 0x34, 0x12], // call [r11+0x12345678]
            &[0xff, 0x25, 0x10, 0x00, 0x00, 0x00],       // jmp [rip+0x10]
        ];
        for raw in forms {
            let ins = Decoder::with_ip(64, raw, 0x40_0000, DecoderOptions::NONE).decode();
            assert!(matches!(ins.code(), Code::Jmp_rm64 | Code::Call_rm64), "{raw:02x?}: {ins}");
            let (out, len) = mov_rcx_from_indirect(raw).expect("a memory form");
            let mov = Decoder::with_ip(64, &out[..len], 0x40_0000, DecoderOptions::NONE).decode();
            assert_eq!(mov.code(), Code::Mov_r64_rm64, "{raw:02x?}: {mov}");
            assert_eq!(mov.len(), len);
            assert_eq!(mov.op0_register(), Register::RCX);
            assert_eq!(
                (mov.memory_base(), mov.memory_index(), mov.memory_index_scale(), mov.memory_segment()),
                (ins.memory_base(), ins.memory_index(), ins.memory_index_scale(), ins.memory_segment()),
                "{raw:02x?}: {mov} for {ins}"
            );
            if !ins.is_ip_rel_memory_operand() {
                assert_eq!(mov.memory_displacement64(), ins.memory_displacement64(), "{mov} for {ins}");
            }
        }
        // Register forms and other instructions are not its business.
        assert!(mov_rcx_from_indirect(&[0xff, 0xe0]).is_none()); // jmp rax
        assert!(mov_rcx_from_indirect(&[0xff, 0x00]).is_none()); // inc dword [rax]
        assert!(mov_rcx_from_indirect(&[0x65, 0xff, 0x20]).is_none()); // jmp gs:[rax]
        assert!(mov_rcx_from_indirect(&[0x66, 0xff, 0x20]).is_none());
    }

    use super::*;
    use iced_x86::{Formatter, IntelFormatter};

    /// A number as iced-x86's formatter shows it (9, 0Ah, 10h, 0FFh).
    fn iced_hex(n: u64) -> String {
        if n <= 9 {
            return n.to_string();
        }
        let h = format!("{n:X}");
        if h.starts_with(|c: char| c.is_ascii_alphabetic()) { format!("0{h}h") } else { format!("{h}h") }
    }

    /// The block's code from its entry (`base` is where the code starts).
    fn dis(t: &Translation, base: u64) -> Vec<String> {
        let e = t.entry as usize;
        let mut d = Decoder::with_ip(64, &t.code[e..], base + e as u64, DecoderOptions::NONE);
        let mut f = IntelFormatter::new();
        let mut v = Vec::new();
        for i in d.iter() {
            let mut s = String::new();
            f.format(&i, &mut s);
            v.push(s);
        }
        v
    }

    fn confined() -> TranslateOptions {
        TranslateOptions { confine_stores: true, bmi2: true, ..TranslateOptions::default() }
    }

    /// How many exits of the disassembled block leave with `reason`.
    fn exits_with(text: &[String], reason: ExitReason) -> usize {
        let line = format!("mov qword ptr gs:[{}],{}", iced_hex(off::EXIT_REASON as u64), iced_hex(reason as u64));
        text.iter().filter(|l| **l == line).count()
    }

    #[test]
    fn confined_stores_are_checked_once_per_address_and_stack_stores_not_at_all() {
        let code = [
            0x48, 0x89, 0x58, 0x08, // mov [rax+8], rbx
            0x53, // push rbx
            0x48, 0x89, 0x4C, 0x24, 0x10, // mov [rsp+16], rcx
            0x48, 0x89, 0x50, 0x10, // mov [rax+16], rdx: near the checked one
            0x48, 0x89, 0xD8, // mov rax, rbx
            0x48, 0x89, 0x08, // mov [rax], rcx: rax changed
            0xC3,
        ];
        let t = translate_block(GuestAddr(0x401000), &code, CachePc(0x10_0000), 0, confined());
        let text = dis(&t, 0x10_0000);
        let checks: Vec<&String> = text.iter().filter(|l| l.starts_with("rorx r11,r11,2Eh")).collect();
        assert_eq!(checks.len(), 2, "{text:#?}");
        assert!(text.iter().any(|l| l == "lea r11,[rax+8]"), "{text:#?}");
        assert!(text.iter().any(|l| l == "lea r11,[rax]"), "{text:#?}");
        // Both reload r11 through the store probe, recorded as checks of
        // their store.
        let probe = format!("mov r11,gs:[r11*8+{}]", iced_hex(off::STORE_PROBE as u64));
        assert_eq!(text.iter().filter(|l| **l == probe).count(), 2, "{text:#?}");
        let checks: Vec<Spilled> = t.spilled.iter().map(|&(_, s)| s).filter(|s| s.probe.is_some()).collect();
        assert_eq!(checks, [Spilled { probe: Some(reg::R11 as u8), ..Spilled::default() }; 2]);
        assert_eq!(exits_with(&text, ExitReason::StoreFault), 0, "{text:#?}");
        let plain = translate_block(GuestAddr(0x401000), &code, CachePc(0x10_0000), 0, TranslateOptions::default());
        assert!(!dis(&plain, 0x10_0000).iter().any(|l| l.starts_with("rorx")));
    }

    #[test]
    fn a_register_moved_by_a_constant_keeps_its_check() {
        let checks = |code: &[u8]| {
            let t = translate_block(GuestAddr(0x401000), code, CachePc(0x10_0000), 0, confined());
            dis(&t, 0x10_0000).iter().filter(|l| l.starts_with("rorx")).count()
        };
        // mov [rax], rbx; add rax, 8; mov [rax], rcx; lea rax, [rax+16];
        // mov [rax+rdx*4], rcx (another index); dec rdx; inc rax;
        // sub rax, 100; mov [rax+20], rcx; ret
        let code = [
            0x48, 0x89, 0x18, 0x48, 0x83, 0xC0, 0x08, 0x48, 0x89, 0x08, 0x48, 0x8D, 0x40, 0x10, 0x48, 0x89, 0x0C, 0x90,
            0x48, 0xFF, 0xCA, 0x48, 0xFF, 0xC0, 0x48, 0x83, 0xE8, 0x64, 0x48, 0x89, 0x48, 0x14, 0xC3,
        ];
        assert_eq!(checks(&code), 2);
        // mov [rax], rbx; add eax, 8 (zero-extends: not a move by 8);
        // mov [rax], rcx; ret
        assert_eq!(checks(&[0x48, 0x89, 0x18, 0x83, 0xC0, 0x08, 0x48, 0x89, 0x08, 0xC3]), 2);
        // mov [rax+rdx*8], rbx; add rdx, 1; mov [rax+rdx*8-8], rcx;
        // add rax, rdx; mov [rax], rcx; ret
        let code = [
            0x48, 0x89, 0x1C, 0xD0, 0x48, 0x83, 0xC2, 0x01, 0x48, 0x89, 0x4C, 0xD0, 0xF8, 0x48, 0x01, 0xD0, 0x48, 0x89,
            0x08, 0xC3,
        ];
        assert_eq!(checks(&code), 2);
    }

    #[test]
    fn a_check_leaves_every_register_and_flag_as_the_store_finds_it() {
        // mov [rax], rcx; mov edx, 1; add rbx, 1; ret: rdx and the flags are
        // dead after the store, but a fault of the store itself shows them,
        // so the check changes neither, and r11 is back before the store.
        let code = [0x48, 0x89, 0x08, 0xBA, 1, 0, 0, 0, 0x48, 0x83, 0xC3, 0x01, 0xC3];
        let t = translate_block(GuestAddr(0x401000), &code, CachePc(0x10_0000), 0, confined());
        let text = dis(&t, 0x10_0000);
        let slot = iced_hex(off::STORE_PROBE as u64);
        let want = [
            format!("mov gs:[{slot}],r11"),
            "lea r11,[rax]".into(),
            "rorx r11,r11,2Eh".into(),
            "movzx r11d,r11w".into(),
            format!("mov r11,gs:[r11*8+{slot}]"),
            "mov [rax],rcx".into(),
        ];
        assert_eq!(&text[..6], want, "{text:#?}");
        // The reload is the only instruction recorded with r11 in the slot.
        let recorded: Vec<&(u32, Spilled)> = t.spilled.iter().filter(|(_, s)| s.probe.is_some()).collect();
        assert_eq!(recorded.len(), 1);
        let at = recorded[0].0 as usize;
        let mut d = Decoder::with_ip(64, &t.code[at..], 0, DecoderOptions::NONE);
        let mut f = IntelFormatter::new();
        let mut reload = String::new();
        f.format(&d.decode(), &mut reload);
        assert_eq!(reload, want[4]);
        // A store that uses r11 and r10 itself takes r9; one that uses r9
        // and r8, r11; one that uses r8-r11, rsi. mov [r11], r10;
        // mov [r9+r8], rax; mov [r11+r10], r9; mov [r8], r9
        let code = [0x4D, 0x89, 0x13, 0x4B, 0x89, 0x04, 0x01, 0x4F, 0x89, 0x0C, 0x13, 0x4D, 0x89, 0x08, 0xC3];
        let t = translate_block(GuestAddr(0x401000), &code, CachePc(0x10_0000), 0, confined());
        let text = dis(&t, 0x10_0000);
        assert!(text.iter().any(|l| l == "lea r9,[r11]"), "{text:#?}");
        assert!(text.iter().any(|l| l == "lea r11,[r9+r8]"), "{text:#?}");
        assert!(text.iter().any(|l| l == "lea r8,[r11+r10]"), "{text:#?}");
        assert!(text.iter().any(|l| l == "lea r11,[r8]"), "{text:#?}");
        // An FS-relative store adds the guest's FS base through rdx,
        // spilled: mov fs:[r8+r9], r10 takes r11.
        let code = [0x64, 0x4F, 0x89, 0x14, 0x08, 0xC3];
        let t = translate_block(GuestAddr(0x401000), &code, CachePc(0x10_0000), 0, confined());
        let text = dis(&t, 0x10_0000);
        let want = [
            format!("mov gs:[{slot}],r11"),
            format!("mov gs:[{}],rdx", iced_hex(off::SPILL_RDX as u64)),
            "lea r11,[r8+r9]".into(),
            "rdfsbase rdx".into(),
            "lea r11,[r11+rdx]".into(),
            format!("mov rdx,gs:[{}]", iced_hex(off::SPILL_RDX as u64)),
            "rorx r11,r11,2Eh".into(),
            "movzx r11d,r11w".into(),
            format!("mov r11,gs:[r11*8+{slot}]"),
        ];
        assert_eq!(&text[..9], want, "{text:#?}");
    }

    #[test]
    fn rsp_is_checked_after_it_is_set_but_not_after_it_is_lowered() {
        // mov rsp, rax; sub rsp, 8; add rsp, 16; nop; ret
        let code = [0x48, 0x89, 0xC4, 0x48, 0x83, 0xEC, 0x08, 0x48, 0x83, 0xC4, 0x10, 0x90, 0xC3];
        let t = translate_block(GuestAddr(0x401000), &code, CachePc(0x10_0000), 0, confined());
        let text = dis(&t, 0x10_0000);
        assert_eq!(text.iter().filter(|l| *l == "mov rcx,rsp").count(), 2, "{text:#?}");
        assert_eq!(exits_with(&text, ExitReason::StackFault), 2, "{text:#?}");
        // An add right before a return reads at rsp first: no check.
        // add rsp, 16; ret
        let code = [0x48, 0x83, 0xC4, 0x10, 0xC3];
        let t = translate_block(GuestAddr(0x401000), &code, CachePc(0x10_0000), 0, confined());
        assert_eq!(exits_with(&dis(&t, 0x10_0000), ExitReason::StackFault), 0);
    }

    #[test]
    fn a_scatter_is_checked_at_its_base_or_refused_under_confinement() {
        let scatter = |code: Code, index: Register| {
            let mut i = Instruction::with2(
                code,
                MemoryOperand::new(Register::RAX, index, 4, 0x40, 1, false, Register::None),
                Register::ZMM2,
            )
            .unwrap();
            i.set_op_mask(Register::K1);
            let mut enc = Encoder::new(64);
            enc.encode(&i, 0x401000).unwrap();
            enc.take_buffer()
        };
        // 32-bit indices: the check of rax+40h; the scatter as it is.
        let code = scatter(Code::EVEX_Vpscatterdd_vm32z_k1_zmm, Register::ZMM1);
        let t = translate_block(GuestAddr(0x401000), &code, CachePc(0x10_0000), 0, confined());
        let text = dis(&t, 0x10_0000);
        assert_eq!(exits_with(&text, ExitReason::Unsupported), 0, "{text:#?}");
        assert!(text.iter().any(|l| l == "lea r11,[rax+40h]"), "{text:#?}");
        assert!(text.iter().any(|l| l.starts_with("vpscatterdd")), "{text:#?}");
        // 64-bit indices: refused.
        let code = scatter(Code::EVEX_Vpscatterqq_vm64z_k1_zmm, Register::ZMM1);
        let t = translate_block(GuestAddr(0x401000), &code, CachePc(0x10_0000), 0, confined());
        assert_eq!(exits_with(&dis(&t, 0x10_0000), ExitReason::Unsupported), 1);
        let plain = translate_block(GuestAddr(0x401000), &code, CachePc(0x10_0000), 0, TranslateOptions::default());
        assert_eq!(exits_with(&dis(&plain, 0x10_0000), ExitReason::Unsupported), 0);
    }

    #[test]
    fn a_confined_stores_fault_address_is_the_store_address() {
        // mov [rax+rbx*2+8], ecx
        let code = [0x89, 0x4C, 0x58, 0x08];
        let mut gpr = [0u64; 16];
        gpr[reg::RAX] = GUEST_LIMIT;
        gpr[reg::RBX] = 4;
        assert_eq!(confined_store_address(GuestAddr(0x401000), &code, &gpr, 0, 0), Some(GUEST_LIMIT + 16));
        gpr[reg::RAX] = 0x1000;
        assert_eq!(confined_store_address(GuestAddr(0x401000), &code, &gpr, 0, 0), None);
        // mov fs:[rax], ecx with the FS base high.
        let code = [0x64, 0x89, 0x08];
        assert_eq!(
            confined_store_address(GuestAddr(0x401000), &code, &gpr, GUEST_LIMIT, 0),
            Some(GUEST_LIMIT + 0x1000)
        );
    }

    #[test]
    fn copies_plain_code_and_ends_at_ret() {
        // mov eax, 1; add eax, ebx; ret
        let code = [0xB8, 1, 0, 0, 0, 0x01, 0xD8, 0xC3];
        let t = translate_block(GuestAddr(0x401000), &code, CachePc(0x10_0000), 0, TranslateOptions::default());
        let e = BLOCK_ENTRY as usize;
        assert_eq!(t.entry, BLOCK_ENTRY);
        assert_eq!(&t.code[e..e + 7], &code[..7]);
        assert_eq!(t.guest_len, 8);
        // Before the entry: padding, then the indirect entry checking that
        // the target is this block's pc.
        let mut d = Decoder::with_ip(64, &t.code[..e], 0x10_0000, DecoderOptions::NONE);
        let mut f = IntelFormatter::new();
        let mut entry = Vec::new();
        while d.position() < e {
            let at = d.position();
            let i = d.decode();
            if at >= INDIRECT_ENTRY as usize {
                let mut s = String::new();
                f.format(&i, &mut s);
                entry.push((at - INDIRECT_ENTRY as usize, s));
            }
        }
        let gs = |o: i32| iced_hex(o as u64);
        let want = [
            (0, format!("mov rdx,{}", iced_hex(0x401000u64.wrapping_neg()))),
            (10, "lea rcx,[rcx+rdx]".to_string()),
            (14, format!("jrcxz {:016X}h", 0x10_0000 + INDIRECT_ENTRY as u64 + INDIRECT_HIT)),
            (16, "not rdx".to_string()),
            (19, "lea rcx,[rcx+rdx+1]".to_string()),
            (24, format!("jmp qword ptr gs:[{}]", gs(off::IBL_PROBE2))),
            (32, format!("mov rcx,gs:[{}]", gs(off::SPILL_RCX))),
            (41, format!("mov rdx,gs:[{}]", gs(off::SPILL_RDX))),
        ];
        assert_eq!(entry, want);
        let text = dis(&t, 0x10_0000);
        // The return: the index from the stack, the pending-signal bias in
        // rcx, then the target, and a jump through the table's slot.
        let table = TranslateOptions { ibl_table: Some(0x20_0000), ..TranslateOptions::default() };
        let t = translate_block(GuestAddr(0x401000), &code, CachePc(0x10_0000), 0, table);
        let ret = dis(&t, 0x10_0000)[2..].to_vec();
        let want = [
            format!("mov gs:[{}],rdx", gs(off::SPILL_RDX)),
            "movzx edx,word ptr [rsp]".to_string(),
            format!("mov gs:[{}],rcx", gs(off::SPILL_RCX)),
            format!("mov rcx,gs:[{}]", gs(off::SIGNAL_PENDING)),
            "lea rdx,[rdx+rcx*2]".to_string(),
            "pop rcx".to_string(),
            "jmp qword ptr [rdx*8+200000h]".to_string(),
        ];
        assert_eq!(ret, want);
        // Without a low table (and for other indirect branches) rax is the
        // third register and the jump goes through rdx.
        assert!(text.iter().any(|l| l == "pop rcx"), "{text:?}");
        assert!(text.iter().any(|l| l == "lea rdx,[rdx+rax*2]"), "{text:?}");
        assert!(text.iter().any(|l| l == "mov rdx,[rax+rdx*8]"), "{text:?}");
        assert_eq!(text.last().map(String::as_str), Some("jmp rdx"), "{text:?}");
    }

    /// The decoded instruction at block offset `off`.
    fn insn_at_offset(t: &Translation, off: u32) -> Instruction {
        let at = 0x10_0000;
        let mut d = Decoder::with_ip(64, &t.code, at, DecoderOptions::NONE);
        d.iter().find(|i| i.ip() - at == off as u64).expect("an instruction starts at a recorded offset")
    }

    #[test]
    fn faults_with_guest_registers_in_spill_slots_are_recorded() {
        // pop rcx; ret: only the ret's own `pop rcx` has rcx and rdx spilled.
        let opts = TranslateOptions { ibl_table: Some(0x20_0000), ..TranslateOptions::default() };
        let t = translate_block(GuestAddr(0x401000), &[0x59, 0xC3], CachePc(0x10_0000), 0, opts);
        assert_eq!(t.spilled.len(), 1, "{:?}", t.spilled);
        let (off, regs) = t.spilled[0];
        assert!(off > t.insn_map[1].0, "in the ret, not the copied pop");
        assert_eq!(regs, Spilled::RCX_RDX);
        assert_eq!(insn_at_offset(&t, off).code(), Code::Pop_r64);

        // The same ret with its inline cache, below 2 GiB (short
        // compares): each read of the return address, and the pop on the
        // way to the table and on each hit, with rcx spilled.
        let ic = TranslateOptions { ic_kinds: crate::abi::IC_KINDS, ..opts };
        let t = translate_block(GuestAddr(0x401000), &[0xC3], CachePc(0x10_0000), 0, ic);
        let kinds: Vec<_> = t.spilled.iter().map(|&(o, r)| (insn_at_offset(&t, o).mnemonic(), r)).collect();
        let mut want = vec![(Mnemonic::Mov, Spilled::RCX); IC_ENTRIES];
        want.extend([(Mnemonic::Pop, Spilled::RCX); IC_ENTRIES + 1]);
        assert_eq!(kinds, want);

        // call [rax] far from 2 GiB: the push, with the target in rcx.
        let t = translate_block(GuestAddr(0x7fff_0000_0000), &[0xFF, 0x10], CachePc(0x10_0000), 0, opts);
        assert_eq!(t.spilled.len(), 1, "{:?}", t.spilled);
        assert_eq!(t.spilled[0].1, Spilled::RCX);
        assert_eq!(insn_at_offset(&t, t.spilled[0].0).code(), Code::Push_rm64);

        // call [rip+0x100] through a far rip-relative load: the load (its
        // address in rcx), then the push.
        let far = TranslateOptions { force_far_riprel: true, ..opts };
        let t = translate_block(GuestAddr(0x401000), &[0xFF, 0x15, 0, 1, 0, 0], CachePc(0x10_0000), 0, far);
        let kinds: Vec<_> = t.spilled.iter().map(|&(o, r)| (insn_at_offset(&t, o).code(), r)).collect();
        assert_eq!(kinds, [(Code::Mov_r64_rm64, Spilled::RCX), (Code::Pushq_imm32, Spilled::RCX)]);

        // mov rax, [rip+0x100] through the scratch register.
        let t = translate_block(GuestAddr(0x401000), &[0x48, 0x8B, 0x05, 0, 1, 0, 0], CachePc(0x10_0000), 0, far);
        assert_eq!(t.spilled.len(), 1, "{:?}", t.spilled);
        let i = insn_at_offset(&t, t.spilled[0].0);
        assert_eq!(i.code(), Code::Mov_r64_rm64);
        assert_eq!(Some(reg_num(i.memory_base())), t.spilled[0].1.scratch);
    }

    #[test]
    fn indirect_calls_and_got_jumps_compare_with_their_inline_cache_first() {
        // call rax
        let opts = TranslateOptions { ic_kinds: crate::abi::IC_KINDS, ..TranslateOptions::default() };
        let t = translate_block(GuestAddr(0x401000), &[0xFF, 0xD0], CachePc(0x10_0000), 5, opts);
        let text = dis(&t, 0x10_0000);
        let empty = format!("mov rdx,{}", iced_hex(IC_EMPTY.wrapping_neg()));
        let compares = text.iter().filter(|l| **l == empty).count();
        assert_eq!(compares, IC_ENTRIES, "{text:?}");
        assert!(text.iter().any(|l| l == "lea rcx,[rcx+rdx]"), "{text:?}");
        // Entry k's exit is exit 5 + k, its target not yet known.
        let ic: Vec<&ExitSite> = t.exits.iter().filter(|x| x.ic.is_some()).collect();
        assert_eq!(ic.len(), IC_ENTRIES);
        assert!(ic.iter().all(|x| x.target.get() == IC_EMPTY));
        // The miss names the site by its first entry's exit.
        assert!(text.iter().any(|l| l == "mov qword ptr gs:[0C0h],5"), "{text:?}");
        // jmp [rip+0x100] has one (a GOT or PLT jump).
        let t = translate_block(GuestAddr(0x401000), &[0xFF, 0x25, 0, 1, 0, 0], CachePc(0x10_0000), 5, opts);
        assert_eq!(t.exits.iter().filter(|x| x.ic.is_some()).count(), IC_ENTRIES);
        // So do returns.
        let t = translate_block(GuestAddr(0x401000), &[0xC3], CachePc(0x10_0000), 5, opts);
        assert_eq!(t.exits.iter().filter(|x| x.ic.is_some()).count(), IC_ENTRIES);
        // Other indirect jumps have none.
        for code in [&[0xFF, 0xE0][..], &[0xFF, 0x24, 0xC5, 0, 0x10, 0x40, 0]] {
            let t = translate_block(GuestAddr(0x401000), code, CachePc(0x10_0000), 5, opts);
            assert!(t.exits.iter().all(|x| x.ic.is_none()));
            // ... and store no site: EXIT_ID is NO_SITE while cached code runs.
            assert!(!dis(&t, 0x10_0000).iter().any(|l| l.starts_with("mov qword ptr gs:[0C0h]")));
        }
    }

    #[test]
    fn gs_operands_use_the_guest_gs_base() {
        // mov rax, gs:[28h]; add qword gs:[rbx+rcx*8+8], 1; rdgsbase rdx; wrgsbase esi; ret
        let code = [
            0x65, 0x48, 0x8B, 0x04, 0x25, 0x28, 0, 0, 0, //
            0x65, 0x48, 0x83, 0x44, 0xCB, 0x08, 0x01, //
            0xF3, 0x48, 0x0F, 0xAE, 0xCA, //
            0xF3, 0x0F, 0xAE, 0xDE, //
            0xC3,
        ];
        let t = translate_block(GuestAddr(0x401000), &code, CachePc(0x9000), 0, TranslateOptions::default());
        let text = dis(&t, 0x9000);
        let want = [
            "mov gs:[0E0h],r11",
            "mov r11,gs:[98h]",
            "mov rax,[r11+28h]",
            "mov r11,gs:[0E0h]",
            "mov gs:[0E0h],r11",
            "mov r11,gs:[98h]",
            "lea r11,[r11+rbx]",
            "add qword ptr [r11+rcx*8+8],1",
            "mov r11,gs:[0E0h]",
            "mov rdx,gs:[98h]",
            "mov gs:[98h],esi",
            "mov dword ptr gs:[9Ch],0",
        ];
        assert_eq!(&text[..want.len()], &want[..], "{text:?}");
    }

    #[test]
    fn popf_leaves_when_it_would_set_the_trap_flag() {
        let code = [0x9D, 0xC3]; // popfq; ret
        let t = translate_block(GuestAddr(0x401000), &code, CachePc(0x9000), 0, TranslateOptions::default());
        let text = dis(&t, 0x9000);
        assert_eq!(text[0], "test byte ptr [rsp+1],1", "{text:?}");
        assert!(text.iter().any(|l| l == "mov rcx,401000h"), "{text:?}");
        assert!(text.iter().any(|l| l == "popfq"), "{text:?}");
    }

    #[test]
    fn single_step_blocks_hold_one_instruction_and_never_look_up() {
        let code = [0x90, 0x90, 0xFF, 0xE2]; // nop; nop; jmp rdx
        let opts = TranslateOptions { single_step: true, ..TranslateOptions::default() };
        let t = translate_block(GuestAddr(0x401000), &code, CachePc(0x9000), 0, opts);
        assert_eq!(t.guest_len, 1);
        let t = translate_block(GuestAddr(0x401002), &code[2..], CachePc(0x9000), 0, opts);
        let text = dis(&t, 0x9000);
        assert!(!text.iter().any(|l| l.contains("jrcxz")), "{text:?}");
    }

    #[test]
    fn gs_addr32_absolute_offset_is_zero_extended() {
        // addr32 mov eax, gs:[0FFFFFFF0h]: the offset is 0xfffffff0, not -16.
        let code = [0x65, 0x67, 0x8B, 0x04, 0x25, 0xF0, 0xFF, 0xFF, 0xFF, 0xC3];
        let t = translate_block(GuestAddr(0x401000), &code, CachePc(0x9000), 0, TranslateOptions::default());
        let text = dis(&t, 0x9000);
        let want = [
            "mov gs:[0E0h],r11",
            "mov r11,gs:[98h]",
            "lea r11,[r11+7FFFFFFFh]",
            "mov eax,[r11+7FFFFFF1h]",
            "mov r11,gs:[0E0h]",
        ];
        assert_eq!(&text[..want.len()], &want[..], "{text:?}");
    }

    #[test]
    fn far_riprel_goes_through_scratch() {
        // mov rax, [rip + 0x100]
        let code = [0x48, 0x8B, 0x05, 0x00, 0x01, 0, 0, 0xC3];
        let t = translate_block(GuestAddr(0x401000), &code, CachePc(0x7f00_0000_0000), 0, TranslateOptions::default());
        let text = dis(&t, 0x7f00_0000_0000);
        assert_eq!(text[0], "mov gs:[0E0h],r11");
        assert_eq!(text[1], "mov r11,401107h");
        assert_eq!(text[2], "mov rax,[r11]");
        assert_eq!(text[3], "mov r11,gs:[0E0h]");
    }

    #[test]
    fn far_eiprel_keeps_the_address_size() {
        // mov eax, [eip + 0x100] (67 prefix) and movdir64b edi, [eip + 1]
        // (its register operand has the address size): the scratch base is
        // the 32-bit register, the target the 32-bit eip-relative address.
        let code = [0x67, 0x8B, 0x05, 0x00, 0x01, 0, 0, 0x67, 0x66, 0x0F, 0x38, 0xF8, 0x3D, 1, 0, 0, 0, 0xC3];
        let far = TranslateOptions { force_far_riprel: true, ..TranslateOptions::default() };
        let t = translate_block(GuestAddr(0x401000), &code, CachePc(0x7f00_0000_0000), 0, far);
        let text = dis(&t, 0x7f00_0000_0000);
        assert_eq!(text[1], "mov r11,401107h", "{text:?}");
        assert_eq!(text[2], "mov eax,[r11d]", "{text:?}");
        assert!(text.iter().any(|l| l == "movdir64b edi,[r11d]"), "{text:?}");
    }

    #[test]
    fn near_riprel_is_reencoded() {
        let code = [0x48, 0x8B, 0x05, 0x00, 0x01, 0, 0, 0xC3];
        let t = translate_block(GuestAddr(0x401000), &code, CachePc(0x50_0000), 0, TranslateOptions::default());
        let text = dis(&t, 0x50_0000);
        assert_eq!(text[0], "mov rax,[401107h]");
    }

    #[test]
    fn jcc_gets_a_linkable_exit_and_the_block_goes_on() {
        // cmp eax, ebx; jne +5; add eax, 1; jmp 0x1000
        let code = [0x39, 0xD8, 0x75, 0x05, 0x83, 0xC0, 0x01, 0xEB, 0xF7];
        let t = translate_block(GuestAddr(0x1000), &code, CachePc(0x9000), 7, TranslateOptions::default());
        assert_eq!(t.guest_len, code.len() as u32);
        assert_eq!(t.exits.iter().map(|x| x.target).collect::<Vec<_>>(), [GuestAddr(0x1009), GuestAddr(0x1000)]);
        for x in &t.exits {
            assert_eq!((0x9000 + x.slot) % 4, 0);
            let rel = i32::from_le_bytes(t.code[x.slot as usize..][..4].try_into().unwrap());
            assert_eq!(x.slot as i64 + 4 + rel as i64, x.stub as i64);
        }
        // A plain exit's stub names the exit only (its id, 7 and 8 here).
        let stubs = &t.code[t.exits[0].stub as usize..];
        let text: Vec<String> = Decoder::with_ip(64, stubs, 0, DecoderOptions::NONE)
            .iter()
            .take(6)
            .map(|i| {
                let mut s = String::new();
                IntelFormatter::new().format(&i, &mut s);
                s
            })
            .collect();
        let gs = |o: i32| iced_hex(o as u64);
        let stub = |id: u32| {
            [
                format!("mov gs:[{}],rcx", gs(off::SPILL_RCX)),
                format!("mov ecx,{}", iced_hex(id as u64)),
                format!("jmp qword ptr gs:[{}]", gs(off::EXIT_BRANCH)),
            ]
        };
        assert_eq!(text, [stub(7), stub(8)].concat());
        let d = dis(&t, 0x9000);
        assert_eq!(d[0], "cmp eax,ebx");
        assert!(d[1].starts_with("jne "), "{d:?}");
        assert_eq!(d[2], "add eax,1");
    }

    #[test]
    fn block_ends_after_its_last_allowed_conditional_branch() {
        // MAX_JCC_THROUGH + 2 times `jne +2; nop; nop`
        let n = MAX_JCC_THROUGH as usize + 2;
        let code: Vec<u8> = (0..n).flat_map(|_| [0x75, 0x02, 0x90, 0x90]).collect();
        let t = translate_block(GuestAddr(0x1000), &code, CachePc(0x9000), 0, TranslateOptions::default());
        let k = MAX_JCC_THROUGH as u64 + 1;
        let mut want: Vec<GuestAddr> = (0..k).map(|i| GuestAddr(0x1000 + 4 * i + 4)).collect();
        // the last one's not-taken path is a second exit
        want.push(GuestAddr(0x1000 + 4 * (k - 1) + 2));
        assert_eq!(t.exits.iter().map(|x| x.target).collect::<Vec<_>>(), want);
        assert_eq!(t.guest_len as u64, 4 * (k - 1) + 2);
    }

    /// A `read_constant` that vouches for one slot at 0x2000 (holding
    /// 0x5000) and one at 0x3008 (holding 0x6000), and for nothing else.
    fn two_constants(at: GuestAddr) -> Option<u64> {
        match at.get() {
            0x2000 => Some(0x5000),
            0x3008 => Some(0x6000),
            _ => None,
        }
    }

    #[test]
    fn branch_through_a_constant_pointer_is_direct() {
        let opts = TranslateOptions { read_constant: Some(two_constants), ..TranslateOptions::default() };
        // call [rip+0xffa] (0x1006 + 0xffa = 0x2000): a direct call.
        let call = [0xFF, 0x15, 0xFA, 0x0F, 0, 0];
        let t = translate_block(GuestAddr(0x1000), &call, CachePc(0x9000), 0, opts);
        assert_eq!(t.constants, [GuestAddr(0x2000)]);
        assert_eq!(t.exits.iter().map(|x| x.target).collect::<Vec<_>>(), [GuestAddr(0x5000)]);
        let d = dis(&t, 0x9000);
        // The guest's return address, then a linkable jump.
        assert_eq!(d[0], "push 1006h", "{d:?}");
        assert!(d[1..3].iter().any(|l| l.starts_with("jmp ")) && !d.iter().any(|l| l.contains("[2000h]")), "{d:?}");
        // jmp [0x3008] (absolute, through a SIB with no base or index).
        let jmp = [0xFF, 0x24, 0x25, 0x08, 0x30, 0, 0];
        let t = translate_block(GuestAddr(0x1000), &jmp, CachePc(0x9000), 0, opts);
        assert_eq!(t.constants, [GuestAddr(0x3008)]);
        assert_eq!(t.exits.iter().map(|x| x.target).collect::<Vec<_>>(), [GuestAddr(0x6000)]);
        // Not vouched for, or not at a fixed address, or through a segment:
        // an indirect branch as before, depending on no constant.
        for code in [
            &[0xFF, 0x25, 0x00, 0x10, 0, 0][..],      // jmp [rip+0x1000] = [0x2006]
            &[0xFF, 0x20][..],                        // jmp [rax]
            &[0x64, 0xFF, 0x24, 0x25, 0, 0x20, 0, 0], // jmp fs:[0x2000]
        ] {
            let t = translate_block(GuestAddr(0x1000), code, CachePc(0x9000), 0, opts);
            assert!(t.constants.is_empty(), "{code:x?}");
            assert!(!t.exits.iter().any(|x| x.target == GuestAddr(0x5000)), "{code:x?}");
        }
    }

    /// Reads a 256-entry table at 0x3000 whose entry i holds 0x5000 + 16 *
    /// (i % 4) (entry k of a table of 32-bit offsets: as much).
    fn table_of_four(at: GuestAddr) -> Option<u64> {
        (0x3000..0x3800).contains(&at.get()).then(|| {
            let i = (at.get() - 0x3000) / 8;
            0x5000 + 16 * (i % 4)
        })
    }

    #[test]
    fn bounded_load_and_jump_through_a_constant_table_is_a_jump_table() {
        let opts = TranslateOptions { read_constant: Some(table_of_four), ..TranslateOptions::default() };
        let none = |_: &JtKey| None;
        let space = JtSpace { start: 0x10_0000, end: 0x20_0000, known: &none };
        // movzx eax, dil; mov rax, [rax*8 + 0x3000]; mov rdx, rdi; jmp rax
        let code = [0x40, 0x0F, 0xB6, 0xC7, 0x48, 0x8B, 0x04, 0xC5, 0x00, 0x30, 0, 0, 0x48, 0x89, 0xFA, 0xFF, 0xE0];
        let t = translate_block_in(GuestAddr(0x1000), &code, CachePc(0x9000), 0, opts, Some(space));
        assert_eq!(t.guest_len as usize, code.len());
        let j = t.jump_table.as_ref().expect("a jump table");
        assert_eq!((j.at, j.key.entries, j.key.table), (0x10_0000, 256, 0x3000));
        // Four distinct targets, one pad (and exit) each; the entries
        // lead to the pads by value.
        let mut targets: Vec<u64> = t.exits.iter().map(|x| x.target.get()).collect();
        targets.sort_unstable();
        assert_eq!(targets, [0x5000, 0x5010, 0x5020, 0x5030]);
        let entries = j.entries.as_ref().unwrap();
        assert_eq!(entries.len(), 256);
        assert_eq!((entries[0], entries[1]), (entries[4], entries[5]));
        assert_ne!(entries[0], entries[1]);
        let d = dis(&t, 0x9000);
        assert_eq!(
            &d[..4],
            ["movzx eax,dil", "mov rdx,rdi", "jmp qword ptr [rax*8+100000h]", "mov rax,5000h"],
            "{d:?}"
        );
        assert!(!t.constants.is_empty());
        // Another block with the same table shares it: no pads.
        let known = |k: &JtKey| (k.table == 0x3000).then_some(0x10_0000);
        let space = JtSpace { start: 0x10_0800, end: 0x20_0000, known: &known };
        let t = translate_block_in(GuestAddr(0x1000), &code, CachePc(0x9000), 0, opts, Some(space));
        let j = t.jump_table.as_ref().expect("a jump table");
        assert_eq!((j.at, j.entries.is_none(), t.exits.len()), (0x10_0000, true, 0));
        // Not bounded (no movzx), or the moved register is the target: an
        // ordinary indirect jump.
        for code in [
            &code[4..],
            &[0x40, 0x0F, 0xB6, 0xC7, 0x48, 0x8B, 0x04, 0xC5, 0x00, 0x30, 0, 0, 0x48, 0x89, 0xC2, 0xFF, 0xE0][..],
        ] {
            let space = JtSpace { start: 0x10_0000, end: 0x20_0000, known: &none };
            let t = translate_block_in(GuestAddr(0x1000), code, CachePc(0x9000), 0, opts, Some(space));
            assert!(t.jump_table.is_none(), "{code:x?}");
        }
    }

    /// A 12-entry table at 0x3000 of targets near 0x1000; past it, an
    /// entry that leads far away.
    fn table_of_twelve(at: GuestAddr) -> Option<u64> {
        match at.get() {
            a @ 0x3000..0x3060 => Some(0x5000 + 16 * ((a - 0x3000) / 8)),
            0x3060..0x3800 => Some(0x7000_0000_0000),
            _ => None,
        }
    }

    #[test]
    fn unknown_base_and_index_make_a_guarded_table() {
        let regs = {
            let mut r = [0u64; 16];
            r[reg::R8] = 0x3000;
            r
        };
        let opts = TranslateOptions {
            read_constant: Some(table_of_twelve),
            entry_regs: Some(regs),
            bmi2: true,
            ..TranslateOptions::default()
        };
        let none = |_: &JtKey| None;
        let space = || JtSpace { start: 0x10_0000, end: 0x20_0000, known: &none };
        // mov rax, [rdi+rsi*8]; mov rdx, [r8+rax*8]; mov eax, r9d; jmp rdx
        let code = [0x48, 0x8B, 0x04, 0xF7, 0x49, 0x8B, 0x14, 0xC0, 0x44, 0x89, 0xC8, 0xFF, 0xE2];
        let t = translate_block_in(GuestAddr(0x1000), &code, CachePc(0x9000), 0, opts, Some(space()));
        assert_eq!(t.guest_len as usize, code.len());
        let j = t.jump_table.as_ref().expect("a guarded jump table");
        assert!(!j.shareable);
        let entries = j.entries.as_ref().unwrap();
        assert_eq!(entries.len(), 16, "12 entries, rounded up to 4 bits of index");
        let fail = entries[12];
        assert!(entries[13..].iter().all(|&e| e == fail));
        assert!(entries[..12].iter().all(|&e| e != fail));
        let mut targets: Vec<u64> = t.exits.iter().map(|x| x.target.get()).collect();
        targets.sort_unstable();
        let mut want: Vec<u64> = (0..12).map(|i| 0x5000 + 16 * i).collect();
        want.insert(0, 0x1004); // the failed check: the load, looked up
        assert_eq!(targets, want);
        let d = dis(&t, 0x9000);
        let at = d.iter().position(|l| l == "mov gs:[0C8h],rcx").expect("rcx spilled");
        assert_eq!(d[at + 1], "mov rcx,0FFFFFFFFFFFFD000h", "{d:?}");
        assert_eq!(d[at + 2], "lea rcx,[rcx+r8]", "{d:?}");
        assert!(d[at + 3].starts_with("jrcxz"), "{d:?}");
        let at = d.iter().position(|l| l == "mov ecx,4").expect("the index check");
        assert_eq!(d[at + 1], "shrx rcx,rax,rcx", "{d:?}");
        assert!(d[at + 2].starts_with("jrcxz"), "{d:?}");
        assert!(d.iter().any(|l| l == "jmp qword ptr [rax*8+100000h]"), "{d:?}");
        // A pad: the guest's move, then its load's value.
        let pad = d.iter().position(|l| l == "mov eax,r9d").expect("the moves in a pad");
        assert!(d[pad + 1].starts_with("mov rdx,5"), "{d:?}");
        // Nothing to guess from, no BMI2, or a block that starts at the
        // load (where failed checks go): an ordinary indirect jump.
        for (code, opts) in [
            (&code[..], TranslateOptions { entry_regs: None, ..opts }),
            (&code[..], TranslateOptions { bmi2: false, ..opts }),
            (&code[4..], opts),
        ] {
            let t = translate_block_in(GuestAddr(0x1000), code, CachePc(0x9000), 0, opts, Some(space()));
            assert!(t.jump_table.is_none());
        }
    }

    /// 32-bit offsets from 0x3000: twelve to 0x5000 + 16 * i, then far ones.
    fn offsets_of_twelve(at: GuestAddr) -> Option<u64> {
        let entry = |i: u64| if i < 12 { 0x2000 + 16 * i } else { 0x7000_0000 };
        (0x3000..0x3800).contains(&at.get()).then(|| {
            let i = (at.get() - 0x3000) / 4;
            entry(i) | entry(i + 1) << 32
        })
    }

    #[test]
    fn a_guarded_pic_table_compares_while_flags_are_dead() {
        let mut regs = [0u64; 16];
        regs[reg::R8] = 0x3000;
        let opts = TranslateOptions {
            read_constant: Some(offsets_of_twelve),
            entry_regs: Some(regs),
            bmi2: true,
            ..TranslateOptions::default()
        };
        let none = |_: &JtKey| None;
        let space = JtSpace { start: 0x10_0000, end: 0x20_0000, known: &none };
        // mov rdx, [rdi+rsi*8]; movsxd rdx, [r8+rdx*4]; add rdx, r8; jmp rdx
        let code = [0x48, 0x8B, 0x14, 0xF7, 0x49, 0x63, 0x14, 0x90, 0x4C, 0x01, 0xC2, 0xFF, 0xE2];
        let t = translate_block_in(GuestAddr(0x1000), &code, CachePc(0x9000), 0, opts, Some(space));
        let j = t.jump_table.as_ref().expect("a guarded jump table");
        assert_eq!(j.entries.as_ref().map(Vec::len), Some(12), "the exact count: no rounding");
        let d: Vec<String> =
            dis(&t, 0x9000).into_iter().filter(|l| !l.starts_with("nop") && l != "xchg ax,ax").collect();
        let at = d.iter().position(|l| l == "cmp r8,3000h").expect("the base check");
        assert!(d[at + 1].starts_with("jne "), "{d:?}");
        assert_eq!(d[at + 2], "cmp rdx,0Ch", "{d:?}");
        assert!(d[at + 3].starts_with("jae "), "{d:?}");
        assert_eq!(d[at + 4], "jmp qword ptr [rdx*8+100000h]", "{d:?}");
        assert_eq!(d[at - 1], "mov rdx,[rdi+rsi*8]", "no spill: {d:?}");
        assert!(!d.iter().any(|l| l.contains("shrx")), "{d:?}");
        // Each pad: the load's value, the guest's add (its flags), the exit.
        let pad = d.iter().position(|l| l == "mov rdx,2000h").expect("a pad");
        assert_eq!(d[pad + 1], "add rdx,r8", "{d:?}");
        let mut targets: Vec<u64> = t.exits.iter().map(|x| x.target.get()).collect();
        targets.sort_unstable();
        assert_eq!(targets, (0..12).map(|i| 0x5000 + 16 * i).collect::<Vec<u64>>());
        // A failed check makes the guest's load and add (no exit before the
        // add has set the flags again), then looks the target up.
        let load = d.iter().position(|l| l == "movsxd rdx,[r8+rdx*4]").expect("the fail path's load");
        assert_eq!(d[load + 1], "add rdx,r8", "{d:?}");
        assert_eq!(d[load + 2], "mov gs:[0C8h],rcx", "{d:?}");
        assert_eq!(d[load + 3], "mov rcx,rdx", "{d:?}");
    }

    #[test]
    fn truncated_code_is_a_fetch_fault() {
        let code = [0x48, 0x8B];
        let t = translate_block(GuestAddr(0x1000), &code, CachePc(0x9000), 0, TranslateOptions::default());
        let text = dis(&t, 0x9000);
        assert!(text.iter().any(|l| l == "mov qword ptr gs:[0B8h],6"), "{text:?}");
        // The fault is reported at the instruction, not at the missing byte.
        assert!(text.iter().any(|l| l == "mov rcx,1000h"), "{text:?}");
    }

    fn getpid_gettid() -> TranslateOptions {
        let mut o = TranslateOptions::default();
        o.inline_syscalls.set(39, Some(InlineAnswer::Table));
        o.inline_syscalls.set(186, Some(InlineAnswer::Tid));
        o
    }

    #[test]
    fn inline_syscall_set() {
        let mut s = InlineSyscalls::default();
        assert!(s.is_empty());
        s.set(39, Some(InlineAnswer::Table));
        s.set(186, Some(InlineAnswer::Tid));
        s.set(511, Some(InlineAnswer::Table));
        s.set(512, Some(InlineAnswer::Table));
        assert_eq!(s.len(), 3);
        assert_eq!(s.get(39), Some(InlineAnswer::Table));
        assert_eq!(s.get(186), Some(InlineAnswer::Tid));
        assert_eq!(s.get(512), None);
        assert_eq!(s.get((1 << 32) | 39), None);
        s.set(39, None);
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![(186, InlineAnswer::Tid), (511, InlineAnswer::Table)]);
    }

    #[test]
    fn constant_syscall_number_is_answered_in_the_block() {
        // mov eax, 39; syscall; ret   (a libc getpid)
        let code = [0xB8, 39, 0, 0, 0, 0x0F, 0x05, 0xC3];
        let t = translate_block(GuestAddr(0x401000), &code, CachePc(0x10_0000), 0, getpid_gettid());
        let text = dis(&t, 0x10_0000);
        let want = [
            "mov eax,27h",
            "mov rax,gs:[170h]",  // answers
            "mov rax,[rax+138h]", // 8 * 39
            "mov rcx,rsp",        // to the host stack for pushfq
            "mov rsp,gs:[0A8h]",
            "pushfq",
            "pop r11",
            "mov rsp,rcx",
            "mov rcx,401007h",   // next guest pc
            "mov gs:[0C8h],rcx", // the ret that follows, in the same block
            "pop rcx",
        ];
        assert_eq!(&text[..want.len()], &want, "{text:?}");
        assert!(!text.iter().any(|l| l == "jmp qword ptr gs:[140h]"), "no gate call: {text:?}");
        assert_eq!(t.guest_len, 8);

        // mov rax, 186 (sign-extended imm32); syscall; ret   (gettid)
        let code = [0x48, 0xC7, 0xC0, 186, 0, 0, 0, 0x0F, 0x05, 0xC3];
        let t = translate_block(GuestAddr(0x401000), &code, CachePc(0x10_0000), 0, getpid_gettid());
        let text = dis(&t, 0x10_0000);
        assert_eq!(text[1], "mov rax,gs:[178h]", "{text:?}");
        assert_eq!(text[7], "mov rcx,401009h", "{text:?}");
        assert!(!text.iter().any(|l| l == "jmp qword ptr gs:[140h]"), "{text:?}");
    }

    #[test]
    fn other_syscalls_call_the_gate() {
        let gate = "jmp qword ptr gs:[140h]";
        // A constant number that is not inlined: the plain gate call.
        let code = [0xB8, 1, 0, 0, 0, 0x0F, 0x05, 0xC3];
        let t = translate_block(GuestAddr(0x401000), &code, CachePc(0x10_0000), 0, getpid_gettid());
        let text = dis(&t, 0x10_0000);
        assert!(text.iter().any(|l| l == gate), "{text:?}");
        assert!(!text.iter().any(|l| l.contains("jrcxz")), "{text:?}");
        assert_eq!(t.guest_len, 7, "the block ends at the syscall");
        // xor eax, eax; syscall (glibc's read): known not to be answered.
        let code = [0x31, 0xC0, 0x0F, 0x05];
        let t = translate_block(GuestAddr(0x401000), &code, CachePc(0x10_0000), 0, getpid_gettid());
        let text = dis(&t, 0x10_0000);
        assert!(text.iter().any(|l| l == gate) && !text.iter().any(|l| l.contains("jrcxz")), "{text:?}");
        // Nothing inlined (--no-inline, --stats, --trace, hooks): as before.
        let code = [0xB8, 39, 0, 0, 0, 0x0F, 0x05, 0xC3];
        let t = translate_block(GuestAddr(0x401000), &code, CachePc(0x10_0000), 0, TranslateOptions::default());
        let text = dis(&t, 0x10_0000);
        assert_eq!(text[1], "mov rcx,401007h");
        assert!(text[2].starts_with("lea r11,"), "{text:?}");
        assert_eq!(text[3], gate);
        assert!(!text.iter().any(|l| l.contains("jrcxz") || l == "pushfq"), "{text:?}");
        // 64-bit rax with high bits set is not getpid for the gate either.
        let code = [0x48, 0xB8, 39, 0, 0, 0, 1, 0, 0, 0, 0x0F, 0x05];
        let t = translate_block(GuestAddr(0x401000), &code, CachePc(0x10_0000), 0, getpid_gettid());
        let text = dis(&t, 0x10_0000);
        assert!(text.iter().any(|l| l == gate) && !text.iter().any(|l| l == "pushfq"), "{text:?}");
    }

    #[test]
    fn run_time_syscall_number_is_checked_inline() {
        // syscall; ret (as in libc's syscall(): the number comes in a register);
        // also a mov eax, imm that does not immediately precede the syscall.
        for code in [&[0x0F, 0x05, 0xC3][..], &[0xB8, 39, 0, 0, 0, 0x90, 0x0F, 0x05, 0xC3]] {
            let t = translate_block(GuestAddr(0x401000), code, CachePc(0x10_0000), 0, getpid_gettid());
            let text = dis(&t, 0x10_0000);
            let at = text.iter().position(|l| l == "lea rcx,[rax-27h]").expect("getpid check");
            assert!(text[at + 1].starts_with("jrcxz"), "{text:?}");
            assert_eq!(text[at + 2], "lea rcx,[rax-0BAh]", "{text:?}");
            assert!(text[at + 3].starts_with("jrcxz"), "{text:?}");
            assert!(text.iter().any(|l| l == "jmp qword ptr gs:[140h]"), "{text:?}");
            assert!(text.iter().any(|l| l == "mov rax,[r11+rax*8]"), "{text:?}");
            assert!(text.iter().any(|l| l == "mov rax,gs:[178h]"), "{text:?}");
            assert!(text.iter().any(|l| l == "pop r11"), "{text:?}");
            let next = 0x401000 + code.len() as u64 - 1;
            assert_eq!(t.exits[0].target.get(), next, "the gate path leaves for the next instruction");
            assert_eq!(t.guest_len as usize, code.len(), "the answered path goes on in the block");
            assert!(text.iter().any(|l| l == "pop rcx"), "{text:?}");
        }
    }

    #[test]
    fn largest_checked_set_stays_in_rel8_range() {
        let mut o = TranslateOptions::default();
        for (i, nr) in (500..500 + InlineSyscalls::MAX_CHECKED as u64).enumerate() {
            o.inline_syscalls.set(nr, Some(if i % 2 == 0 { InlineAnswer::Table } else { InlineAnswer::Tid }));
        }
        for at in 0..4 {
            let t = translate_block(GuestAddr(0x401000), &[0x0F, 0x05], CachePc(0x10_0000 + at), 0, o);
            let text = dis(&t, 0x10_0000 + at);
            assert_eq!(text.iter().filter(|l| l.starts_with("jrcxz")).count(), InlineSyscalls::MAX_CHECKED);
        }
        // One more: only constant numbers are answered at the site.
        o.inline_syscalls.set(499, Some(InlineAnswer::Table));
        let t = translate_block(GuestAddr(0x401000), &[0x0F, 0x05], CachePc(0x10_0000), 0, o);
        assert!(!dis(&t, 0x10_0000).iter().any(|l| l.starts_with("jrcxz")));
    }

    #[test]
    fn int80_leaves_for_the_runtime() {
        // mov eax, 20; int 0x80; ret   (and with a REX prefix: 48 cd 80)
        for (code, len) in [(&[0xB8, 20, 0, 0, 0, 0xCD, 0x80, 0xC3][..], 7u32), (&[0x48, 0xCD, 0x80, 0xC3][..], 3)] {
            let t = translate_block(GuestAddr(0x401000), code, CachePc(0x10_0000), 0, getpid_gettid());
            let text = dis(&t, 0x10_0000);
            assert_eq!(t.guest_len, len, "the block ends at int 0x80: {text:?}");
            let next = format!("mov rcx,{:X}h", 0x401000 + len as u64);
            let at = text.iter().position(|l| *l == next).unwrap_or_else(|| panic!("{text:?}"));
            assert_eq!(text[at - 1], "mov gs:[0C8h],rcx", "guest rcx spilled: {text:?}");
            assert_eq!(
                text[at + 1],
                format!("mov qword ptr gs:[0B8h],{}", iced_hex(ExitReason::Int80 as u64)),
                "{text:?}"
            );
            assert_eq!(text[at + 2], "jmp qword ptr gs:[138h]", "{text:?}");
            assert!(!text.iter().any(|l| l.starts_with("int ")), "never run natively: {text:?}");
        }
        // Other vectors are copied (the CPU faults on them as natively).
        let t = translate_block(
            GuestAddr(0x401000),
            &[0xCD, 0x81, 0xC3],
            CachePc(0x10_0000),
            0,
            TranslateOptions::default(),
        );
        assert!(dis(&t, 0x10_0000).iter().any(|l| l == "int 81h"));
    }

    #[test]
    fn far_riprel_3dnow_gets_a_legacy_scratch() {
        // pmulhrw mm0, [rip + 0x100]: iced-x86 would drop REX.B of an r11 base.
        let code = [0x0F, 0x0F, 0x05, 0x00, 0x01, 0, 0, 0xB7];
        let t = translate_block(GuestAddr(0x401000), &code, CachePc(0x7f00_0000_0000), 0, TranslateOptions::default());
        let text = dis(&t, 0x7f00_0000_0000);
        assert_eq!(text[0], "mov gs:[0E0h],rdi");
        assert_eq!(text[1], "mov rdi,401108h");
        assert_eq!(text[2], "pmulhrw mm0,[rdi]");
        assert_eq!(text[3], "mov rdi,gs:[0E0h]");
    }
}
