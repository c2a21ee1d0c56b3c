//! Checking oracles for bt-run's fuzz targets, shared by the libFuzzer
//! targets in `fuzz/` and by the corpus replay test in
//! `testsuite/tests/equivalence.rs` (which runs under the normal, stable
//! `cargo test`).
//!
//! This file is *not* declared as a module of the `testsuite` library: it
//! needs `iced-x86`, `translator`, `runtime` and `syscall-inline`, which are only
//! dev-dependencies of `testsuite`. Both users include it with
//! `#[path = ".../testsuite/src/equiv/oracle.rs"] mod oracle;`.
//!
//! Two oracles:
//! - [`check_translate_input`]: bytes -> (guest pc, cache address, exit id,
//!   options, guest code) -> `translator::translate::translate_block`; the
//!   translation must not panic, must decode cleanly, every direct branch in
//!   it must land inside the block (body or exit stubs), every indirect
//!   branch must be a `jmp qword ptr gs:[disp32]` into the per-thread
//!   context (the exits to the trampolines), it must contain no `ret`,
//!   `call`, `syscall`/`sysenter`, its exit sites must be aligned, patchable
//!   rel32 fields pointing at their stubs, its instruction map consistent,
//!   and every rip-relative guest operand must still address the same guest
//!   address after translation.
//! - [`check_trace_input`]: bytes -> syscall number, arguments, return
//!   value and a guest memory image -> `syscall_inline::trace::format_entry`
//!   / `format_exit` / `format_line` must not panic and must produce one
//!   well-formed, bounded strace line (and the policy parsers must not panic).
//! - [`check_elf_input`]: bytes -> `runtime::loader::elf::LoadPlan::parse`
//!   must not panic, and a plan it accepts must satisfy the invariants its
//!   documentation promises; `parse_with` over a chunked reader must agree.
//!   Files starting with `#!` also go through `loader::script::parse_shebang`.

#![allow(dead_code)]

use iced_x86::{
    Code, Decoder, DecoderOptions, FlowControl, Formatter, Instruction, IntelFormatter, Mnemonic, OpKind, Register,
};
use runtime::loader::elf::{ElfKind, LoadPlan, MAX_SPAN, PAGE_SIZE, TASK_SIZE, page_down, page_up};
use translator::abi::{GuestContext, off};
use translator::translate::{MAX_BLOCK_BYTES, TranslateOptions, Translation, translate_block};
use translator::{CachePc, GuestAddr};

/// Guest and cache addresses are masked to the canonical lower half of the
/// address space (47 bits): the dispatcher only ever translates readable
/// guest memory and the cache is mapped in user space, so higher addresses
/// are not meaningful inputs.
pub const ADDR_MASK: u64 = 0x0000_7fff_ffff_ffff;
/// Bytes of header before the guest code in a `translate` fuzz input.
pub const TRANSLATE_HEADER: usize = 21;

/// A decoded `translate` fuzz input.
#[derive(Clone, Debug)]
pub struct TranslateInput<'a> {
    pub pc: u64,
    pub at: u64,
    pub first_exit_id: u32,
    pub opts: TranslateOptions,
    pub code: &'a [u8],
}

/// Splits fuzz bytes: `pc: u64 LE | at: u64 LE | first_exit_id: u32 LE |
/// flags: u8 | guest code...` (bit 0 of flags: `force_far_riprel`; bit 1:
/// answer at the `syscall` site what a default run's gate answers
/// in-process, as bt-run does without `--stats`, `--trace`, hooks or
/// `--no-inline`; bit 2: the lookup table at a low address, 0x2000_0000,
/// so that sites jump through `[rdx*8 + table]` instead of loading the
/// table's address from the context).
/// Inputs shorter than the header use defaults for what is missing.
pub fn decode_translate_input(data: &[u8]) -> TranslateInput<'_> {
    let word = |off: usize, n: usize| -> u64 {
        let mut b = [0u8; 8];
        for (i, x) in b.iter_mut().enumerate().take(n) {
            if let Some(&d) = data.get(off + i) {
                *x = d;
            }
        }
        u64::from_le_bytes(b)
    };
    let pc = if data.len() >= 8 { word(0, 8) & ADDR_MASK } else { 0x401000 };
    let at = if data.len() >= 16 { word(8, 8) & ADDR_MASK } else { 0x7f00_0000_0000 };
    let first_exit_id = word(16, 4) as u32;
    let flags = data.get(20).copied().unwrap_or(0);
    let code = data.get(TRANSLATE_HEADER..).unwrap_or(&[]);
    TranslateInput {
        pc,
        at,
        first_exit_id,
        opts: TranslateOptions {
            force_far_riprel: flags & 1 != 0,
            ibl_table: (flags & 4 != 0).then_some(0x2000_0000),
            inline_syscalls: if flags & 2 != 0 {
                runtime::dispatch::inline_syscalls(&syscall_inline::gate_table())
            } else {
                Default::default()
            },
            ..TranslateOptions::default()
        },
        code,
    }
}

/// Builds a `translate` fuzz input (the inverse of [`decode_translate_input`]).
pub fn encode_translate_input(pc: u64, at: u64, first_exit_id: u32, far: bool, code: &[u8]) -> Vec<u8> {
    encode_translate_input_with(pc, at, first_exit_id, u8::from(far), code)
}

/// [`encode_translate_input`] with the whole flags byte.
pub fn encode_translate_input_with(pc: u64, at: u64, first_exit_id: u32, flags: u8, code: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(TRANSLATE_HEADER + code.len());
    v.extend_from_slice(&pc.to_le_bytes());
    v.extend_from_slice(&at.to_le_bytes());
    v.extend_from_slice(&first_exit_id.to_le_bytes());
    v.push(flags);
    v.extend_from_slice(code);
    v
}

/// The fuzz entry point for `translate`: panics (so libFuzzer reports a
/// crash) when the oracle finds a problem.
pub fn fuzz_translate(data: &[u8]) {
    if let Err(e) = check_translate_input(data) {
        panic!("translate oracle: {e}");
    }
}

/// Bugs already reported, by a short name, if `data` would trigger one.
/// The fuzz targets skip such inputs when `BT_FUZZ_SKIP_KNOWN=1`, so that a
/// long run keeps finding new problems; the corpus replay test never skips.
pub fn known_issue(data: &[u8]) -> Option<&'static str> {
    // (Far rip-relative rewrites of instructions naming AH/CH/DH/BH
    // panicked until 974988a; fuzz/corpus/translate/
    // crash-far-riprel-high-byte-reg is the reproducer. 3DNow! ones lost
    // their r11 base to iced-x86 dropping REX.B until they got a legacy
    // scratch register too; crash-far-riprel-3dnow-rex*.)
    let _ = data;
    None
}

/// Translates one fuzz input and checks the result.
/// `mov r64, gs:[disp]`.
fn is_gs_load(i: &Instruction, r: Register, disp: i32) -> bool {
    i.code() == Code::Mov_r64_rm64
        && i.op0_register() == r
        && i.memory_segment() == Register::GS
        && i.memory_base() == Register::None
        && i.memory_index() == Register::None
        && i.memory_displacement64() == disp as u64
}

/// Whether the indirect jump `decoded[k]` ends an indirect-branch table
/// lookup (see the translator's `table_jump`): `jmp [rdx*8 + table]` a few
/// instructions after the slot index is biased by the pending signal
/// (`lea rdx, [rdx + rax*2]` or `[rdx + rcx*2]`), or `jmp rdx` right after
/// loading rdx from the slot that rdx indexes in the table whose base is
/// `gs:[IBL_TABLE]`, and restoring rax.
fn is_table_jump(decoded: &[Instruction], k: usize) -> bool {
    let ins = &decoded[k];
    if ins.code() != Code::Jmp_rm64 {
        return false;
    }
    if ins.op0_kind() == OpKind::Memory {
        let biased = |i: &Instruction| {
            i.code() == Code::Lea_r64_m
                && i.op0_register() == Register::RDX
                && i.memory_base() == Register::RDX
                && matches!(i.memory_index(), Register::RAX | Register::RCX)
                && i.memory_index_scale() == 2
                && i.memory_displacement64() == 0
        };
        return ins.memory_segment() == Register::DS
            && ins.memory_base() == Register::None
            && ins.memory_index() == Register::RDX
            && ins.memory_index_scale() == 8
            && ins.memory_displacement64() < 0x8000_0000
            && decoded[k.saturating_sub(4)..k].iter().any(biased);
    }
    ins.op0_kind() == OpKind::Register
        && ins.op0_register() == Register::RDX
        && k >= 3
        && is_gs_load(&decoded[k - 3], Register::RAX, off::IBL_TABLE)
        && decoded[k - 2].code() == Code::Mov_r64_rm64
        && decoded[k - 2].op0_register() == Register::RDX
        && decoded[k - 2].memory_base() == Register::RAX
        && decoded[k - 2].memory_index() == Register::RDX
        && decoded[k - 2].memory_index_scale() == 8
        && decoded[k - 2].memory_displacement64() == 0
        && decoded[k - 2].memory_segment() == Register::DS
        && is_gs_load(&decoded[k - 1], Register::RAX, off::SPILL_RAX)
}

pub fn check_translate_input(data: &[u8]) -> Result<(), String> {
    let inp = decode_translate_input(data);
    check_translation(inp.pc, inp.code, inp.at, inp.first_exit_id, inp.opts)
}

/// Translates `bytes` at guest `pc` into cache address `at` and checks the
/// result; `Err` describes every problem found, with a disassembly.
pub fn check_translation(
    pc: u64,
    bytes: &[u8],
    at: u64,
    first_exit_id: u32,
    opts: TranslateOptions,
) -> Result<(), String> {
    let t = translate_block(GuestAddr(pc), bytes, CachePc(at), first_exit_id, opts);
    let errors = translation_errors(pc, bytes, at, &t);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} problem(s) translating {} guest bytes at {pc:#x} into cache {at:#x} (far={}):\n  {}\n\
             guest code:\n{}emitted code:\n{}",
            errors.len(),
            bytes.len(),
            opts.force_far_riprel,
            errors.join("\n  "),
            disassemble(bytes, pc, 40),
            disassemble(&t.code, at, 200)
        ))
    }
}

/// Intel-syntax disassembly, one instruction per line with address and bytes.
pub fn disassemble(bytes: &[u8], ip: u64, max: usize) -> String {
    let mut d = Decoder::with_ip(64, bytes, ip, DecoderOptions::NONE);
    let mut f = IntelFormatter::new();
    let mut out = String::new();
    let mut ins = Instruction::default();
    let mut n = 0;
    while d.can_decode() {
        if n == max {
            out.push_str("    ...\n");
            break;
        }
        let off = (d.ip() - ip) as usize;
        d.decode_out(&mut ins);
        let raw = &bytes[off..(off + ins.len()).min(bytes.len())];
        let hex: Vec<String> = raw.iter().map(|b| format!("{b:02x}")).collect();
        let mut s = String::new();
        if ins.is_invalid() {
            s.push_str("(bad)");
        } else {
            f.format(&ins, &mut s);
        }
        out.push_str(&format!("    {:#x}: {:<30} {s}\n", ins.ip(), hex.join(" ")));
        n += 1;
    }
    out
}

/// Every violated property of translation `t` of `bytes` at `pc` into `at`.
pub fn translation_errors(pc: u64, bytes: &[u8], at: u64, t: &Translation) -> Vec<String> {
    let mut errs = Vec::new();
    let len = t.code.len() as u64;
    let end = at.wrapping_add(len);
    let inside = |x: u64| x.wrapping_sub(at) < len;
    let ctx_size = std::mem::size_of::<GuestContext>() as u64;

    if t.guest.get() != pc {
        errs.push(format!("translation.guest {:#x} != pc {pc:#x}", t.guest.get()));
    }
    if t.code.is_empty() {
        errs.push("empty translation".into());
    }
    if t.code.len() > MAX_BLOCK_BYTES {
        errs.push(format!("{} bytes emitted, more than MAX_BLOCK_BYTES {MAX_BLOCK_BYTES}", t.code.len()));
    }
    if t.guest_len as usize > bytes.len() + 15 {
        errs.push(format!("guest_len {} beyond the {} readable bytes", t.guest_len, bytes.len()));
    }

    // 1. The emitted code decodes cleanly, as one linear instruction stream.
    let mut d = Decoder::with_ip(64, &t.code, at, DecoderOptions::NONE);
    let mut starts = Vec::new();
    let mut ins = Instruction::default();
    let mut decoded = Vec::new();
    while d.can_decode() {
        let off = d.ip().wrapping_sub(at);
        d.decode_out(&mut ins);
        if ins.is_invalid() {
            errs.push(format!("emitted code does not decode at +{off:#x} ({:?})", d.last_error()));
            break;
        }
        starts.push(off as u32);
        decoded.push(ins);
    }

    // 2. Control flow stays in the block or leaves through gs:[...].
    for (k, ins) in decoded.iter().enumerate() {
        let off = ins.ip().wrapping_sub(at);
        match ins.flow_control() {
            FlowControl::ConditionalBranch | FlowControl::UnconditionalBranch | FlowControl::Call => {
                if matches!(ins.op0_kind(), OpKind::NearBranch16 | OpKind::NearBranch32 | OpKind::NearBranch64) {
                    let tgt = ins.near_branch_target();
                    if !inside(tgt) {
                        errs.push(format!(
                            "direct branch at +{off:#x} ({}) targets {tgt:#x}, outside the block [{at:#x}, {end:#x})",
                            fmt(ins)
                        ));
                    } else if starts.binary_search(&(tgt.wrapping_sub(at) as u32)).is_err() {
                        errs.push(format!(
                            "direct branch at +{off:#x} ({}) targets {tgt:#x}, not an instruction boundary",
                            fmt(ins)
                        ));
                    }
                    if ins.flow_control() == FlowControl::Call {
                        errs.push(format!(
                            "call at +{off:#x} would push a cache address on the guest stack ({})",
                            fmt(ins)
                        ));
                    }
                } else {
                    errs.push(format!("far branch in emitted code at +{off:#x}: {}", fmt(ins)));
                }
            }
            FlowControl::IndirectBranch => {
                let ok = ins.code() == Code::Jmp_rm64
                    && ins.op0_kind() == OpKind::Memory
                    && ins.memory_segment() == Register::GS
                    && ins.memory_base() == Register::None
                    && ins.memory_index() == Register::None
                    && ins.memory_displacement64() < ctx_size
                    && ins.memory_displacement64() % 8 == 0;
                // Or the end of a table lookup.
                let ok = ok || is_table_jump(&decoded, k);
                if !ok {
                    errs.push(format!(
                        "indirect branch at +{off:#x} is not `jmp qword ptr gs:[ctx field]`: {}",
                        fmt(ins)
                    ));
                }
            }
            FlowControl::IndirectCall | FlowControl::Return => {
                errs.push(format!("{} at +{off:#x} in emitted code", fmt(ins)));
            }
            FlowControl::Interrupt | FlowControl::Exception | FlowControl::XbeginXabortXend => {}
            FlowControl::Next => {}
        }
        if ins.code() == Code::Push_rm64 && ins.is_ip_rel_memory_operand() {
            // A call's return address, pushed from a literal in the block.
            if let Some(e) = pushed_literal_error(pc, bytes, at, t, off, ins.ip_rel_memory_address()) {
                errs.push(format!("push at +{off:#x} ({}): {e}", fmt(ins)));
            }
        }
        if matches!(ins.mnemonic(), Mnemonic::Syscall | Mnemonic::Sysenter) {
            errs.push(format!("{} at +{off:#x} copied into the cache: it would bypass syscall-inline", fmt(ins)));
        }
    }

    // 3. Exit sites: aligned rel32 fields inside the code pointing at their stubs.
    for (i, x) in t.exits.iter().enumerate() {
        let slot = x.slot as u64;
        if slot + 4 > len {
            errs.push(format!("exit {i}: slot +{slot:#x} outside the code"));
            continue;
        }
        if !at.wrapping_add(slot).is_multiple_of(4) {
            errs.push(format!("exit {i}: rel32 at {:#x} is not 4-byte aligned", at.wrapping_add(slot)));
        }
        if x.stub as u64 >= len {
            errs.push(format!("exit {i}: stub +{:#x} outside the code", x.stub));
            continue;
        }
        let rel = i32::from_le_bytes(t.code[slot as usize..slot as usize + 4].try_into().unwrap_or([0; 4]));
        let dest = (slot as i64 + 4 + rel as i64) as u64;
        if dest != x.stub as u64 {
            errs.push(format!("exit {i}: rel32 at +{slot:#x} points to +{dest:#x}, its stub is at +{:#x}", x.stub));
        }
        if starts.binary_search(&x.stub).is_err() {
            errs.push(format!("exit {i}: stub +{:#x} is not an instruction boundary", x.stub));
        }
        // The rel32 must be the displacement of a jmp/jcc that ends right after it.
        match decoded.iter().find(|ins| ins.ip().wrapping_sub(at) + ins.len() as u64 == slot + 4) {
            Some(b)
                if matches!(b.flow_control(), FlowControl::UnconditionalBranch | FlowControl::ConditionalBranch) => {}
            _ => errs.push(format!("exit {i}: slot +{slot:#x} is not the rel32 of a jmp/jcc")),
        }
    }

    // 4. The instruction map.
    let mut prev: Option<(u32, u32)> = None;
    for &(c, g) in &t.insn_map {
        if c as u64 > len {
            errs.push(format!("insn_map cache offset {c:#x} beyond the code ({len:#x})"));
        }
        if g > t.guest_len {
            errs.push(format!("insn_map guest offset {g:#x} beyond guest_len {:#x}", t.guest_len));
        }
        if let Some((pc_, pg)) = prev
            && (c < pc_ || g <= pg)
        {
            errs.push(format!("insn_map not increasing: ({pc_:#x},{pg:#x}) then ({c:#x},{g:#x})"));
        }
        prev = Some((c, g));
    }

    // 5. Rip-relative guest operands keep addressing the same guest address.
    errs.extend(riprel_errors(pc, bytes, at, t, &decoded));
    errs
}

/// What is wrong with a `push qword [rip+x]` at block offset `off` reading
/// `lit`: it must read 8 bytes inside the block holding the return address
/// of the guest call it translates.
fn pushed_literal_error(pc: u64, bytes: &[u8], at: u64, t: &Translation, off: u64, lit: u64) -> Option<String> {
    let l = lit.wrapping_sub(at) as usize;
    let Some(v) = t.code.get(l..l.wrapping_add(8)).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes) else {
        return Some(format!("reads {lit:#x}, outside the block"));
    };
    let i = t.insn_map.partition_point(|&(c, _)| c as u64 <= off);
    let Some(&(_, g)) = i.checked_sub(1).and_then(|i| t.insn_map.get(i)) else {
        return Some("before the first guest instruction".into());
    };
    let gi =
        Decoder::with_ip(64, bytes.get(g as usize..).unwrap_or(&[]), pc.wrapping_add(g as u64), DecoderOptions::NONE)
            .decode();
    if !matches!(gi.flow_control(), FlowControl::Call | FlowControl::IndirectCall) {
        return Some(format!("translates `{}`, not a call", fmt(&gi)));
    }
    (v != gi.next_ip()).then(|| format!("pushes {v:#x}, the call `{}` returns to {:#x}", fmt(&gi), gi.next_ip()))
}

/// For each guest instruction with a rip-relative operand that was kept as
/// an ordinary instruction, the translation must reach the same address:
/// either re-encoded (same instruction, same absolute address), `lea` turned
/// into `mov reg, imm64`, or the far form `mov s, imm64; <insn with [s]>`.
fn riprel_errors(pc: u64, bytes: &[u8], at: u64, t: &Translation, emitted: &[Instruction]) -> Vec<String> {
    let mut errs = Vec::new();
    let by_off = |off: u32| emitted.iter().position(|i| i.ip().wrapping_sub(at) == off as u64);
    for &(c, g) in &t.insn_map {
        let Some(gbytes) = bytes.get(g as usize..) else {
            continue;
        };
        let mut d = Decoder::with_ip(64, gbytes, pc.wrapping_add(g as u64), DecoderOptions::NONE);
        let gi = d.decode();
        if gi.is_invalid() || !gi.is_ip_rel_memory_operand() || gi.flow_control() != FlowControl::Next {
            continue;
        }
        if gi.segment_prefix() == Register::GS || gi.memory_segment() == Register::GS {
            continue;
        }
        let want = gi.ip_rel_memory_address();
        let Some(k) = by_off(c) else {
            errs.push(format!("insn_map entry +{c:#x} for guest +{g:#x} is not an instruction boundary"));
            continue;
        };
        // Find the instruction with the same code within the next few emitted ones.
        let window = &emitted[k..emitted.len().min(k + 4)];
        let mut ok = false;
        let mut imm: Option<(Register, u64)> = None;
        for e in window {
            let has_mem = e.op_kinds().any(|k| k == OpKind::Memory);
            if has_mem && e.memory_segment() == Register::GS {
                continue; // spill of the scratch register to the context
            }
            if e.code() == gi.code() {
                if e.is_ip_rel_memory_operand() {
                    ok = e.ip_rel_memory_address() == want;
                } else if has_mem {
                    // An [eip+disp] operand is rewritten with the scratch
                    // register's 32-bit form as base.
                    let base = e.memory_base();
                    let value = |v: u64| if base.is_gpr32() { v & 0xffff_ffff } else { v };
                    ok = imm.is_some_and(|(r, v)| r == base.full_register() && value(v) == want)
                        && e.memory_index() == Register::None
                        && e.memory_displacement64() == 0;
                }
                break;
            }
            if e.code() == Code::Mov_r64_imm64 {
                imm = Some((e.op0_register(), e.immediate64()));
                if gi.code() == Code::Lea_r64_m && e.op0_register() == gi.op0_register() {
                    ok = e.immediate64() == want;
                    break;
                }
            }
        }
        if !ok {
            errs.push(format!(
                "guest `{}` at {:#x} addresses {want:#x}; its translation at +{c:#x} does not",
                fmt(&gi),
                gi.ip()
            ));
        }
    }
    errs
}

fn fmt(ins: &Instruction) -> String {
    let mut s = String::new();
    IntelFormatter::new().format(ins, &mut s);
    s
}

/// Guest address at which a `trace_args` input's memory image is readable.
pub const TRACE_MEM: u64 = 0x7000_0000;
/// Bytes of header before the memory image in a `trace_args` input.
pub const TRACE_HEADER: usize = 58;

/// Guest memory for the trace oracle: `image` at [`TRACE_MEM`], nothing else.
struct ImageMem<'a>(&'a [u8]);

impl syscall_inline::trace::GuestMem for ImageMem<'_> {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), i32> {
        let off = addr.checked_sub(TRACE_MEM).ok_or(libc::EFAULT)?;
        let end = off.checked_add(buf.len() as u64).ok_or(libc::EFAULT)?;
        if end > self.0.len() as u64 {
            return Err(libc::EFAULT);
        }
        buf.copy_from_slice(&self.0[off as usize..end as usize]);
        Ok(())
    }
}

/// The fuzz entry point for `trace_args`.
pub fn fuzz_trace(data: &[u8]) {
    if let Err(e) = check_trace_input(data) {
        panic!("trace_args oracle: {e}");
    }
}

/// Splits fuzz bytes: `nr selector: u16 LE | 6 args: u64 LE | ret: i64 LE |
/// guest memory image...`. Selector < 0x8000: the syscall number is
/// `selector % 512` (the table), else the selector itself (unknown numbers).
/// An argument with bit 63 set becomes a pointer into the image
/// (`TRACE_MEM + (arg & 0xffff)`). Inputs starting with `P` instead feed
/// the rest, as text, to the policy and `--deny` parsers.
pub fn check_trace_input(data: &[u8]) -> Result<(), String> {
    use syscall_inline::trace::{format_entry, format_exit, format_exit_injected, format_line};
    if let Some(text) = data.strip_prefix(b"P") {
        let text = String::from_utf8_lossy(text);
        let _ = syscall_inline::policy::parse_policy(&text);
        for line in text.lines() {
            let _ = syscall_inline::policy::parse_deny(line);
            let _ = syscall_inline::policy::syscall_by_name(line);
            let _ = syscall_inline::policy::parse_errno(line);
        }
        return Ok(());
    }
    let word = |off: usize| -> u64 {
        let mut b = [0u8; 8];
        for (i, x) in b.iter_mut().enumerate() {
            *x = data.get(off + i).copied().unwrap_or(0);
        }
        u64::from_le_bytes(b)
    };
    let sel = u16::from_le_bytes([data.first().copied().unwrap_or(0), data.get(1).copied().unwrap_or(0)]);
    let nr = if sel < 0x8000 { u64::from(sel % 512) } else { u64::from(sel) };
    let mut args = [0u64; 6];
    for (i, a) in args.iter_mut().enumerate() {
        let raw = word(2 + 8 * i);
        *a = if raw >> 63 == 1 { TRACE_MEM + (raw & 0xFFFF) } else { raw };
    }
    let ret = word(50) as i64;
    let mem = ImageMem(data.get(TRACE_HEADER..).unwrap_or(&[]));
    let entry = format_entry(nr, &args, &mem);
    let exit = format_exit(nr, &args, ret, &mem);
    let line = format_line(1234, nr, &args, ret, &mem);
    let mut errs = Vec::new();
    if line != format!("[pid 1234] {entry}{exit}\n") {
        errs.push("format_line is not `[pid N] ` + entry + exit + newline".to_string());
    }
    if entry.contains('\n') || exit.contains('\n') {
        errs.push("a raw newline inside the traced call".to_string());
    }
    // A denied call's exit, as an injected fault: always an errno.
    let errno = (ret.unsigned_abs() % 4096).max(1) as i32;
    let injected = format_exit_injected(nr, &args, errno, &mem);
    if injected.contains('\n') || !injected.contains(") = -1 ") || injected.len() > 1 << 16 {
        errs.push(format!("injected-fault exit {injected:?}"));
    }
    if !entry.contains('(') || !exit.contains(") = ") {
        errs.push("not of the form `name(args) = ret`".to_string());
    }
    // Every read is capped: a line stays small whatever the arguments say.
    if line.len() > 1 << 16 {
        errs.push(format!("a {}-byte line", line.len()));
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(format!("nr {nr} args {args:x?} ret {ret}: {}\n  {line:?}", errs.join("; ")))
    }
}

/// The fuzz entry point for `elf_loader`.
pub fn fuzz_elf(data: &[u8]) {
    if let Err(e) = check_elf_input(data) {
        panic!("elf_loader oracle: {e}");
    }
}

/// Parses `data` as an ELF file (and as a `#!` script when it is one) and
/// checks what an accepted plan promises.
pub fn check_elf_input(data: &[u8]) -> Result<(), String> {
    if runtime::loader::script::is_script(data) {
        let _ = runtime::loader::script::parse_shebang(data);
    }
    let plan = LoadPlan::parse(data);
    // The streaming form must agree, whatever the reader's chunking.
    let streamed = LoadPlan::parse_with(data.len() as u64, |off, len| {
        let start = usize::try_from(off).map_err(|_| runtime::loader::elf::ElfError::Read("offset".into()))?;
        let stop = start.checked_add(len).ok_or_else(|| runtime::loader::elf::ElfError::Read("len".into()))?;
        data.get(start..stop)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| runtime::loader::elf::ElfError::Read(format!("{len} bytes at {off:#x}")))
    });
    match (&plan, &streamed) {
        (Ok(a), Ok(b)) if a != b => {
            return Err(format!("parse and parse_with disagree: {a:?} vs {b:?}"));
        }
        (Ok(a), Err(e)) => {
            return Err(format!("parse accepted ({a:?}) but parse_with failed: {e}"));
        }
        (Err(e), Ok(b)) => {
            return Err(format!("parse failed ({e}) but parse_with accepted: {b:?}"));
        }
        _ => {}
    }
    match plan {
        Err(e) => {
            let msg = e.to_string();
            if msg.is_empty() || msg.contains('\n') {
                return Err(format!("error message is not one line: {msg:?}"));
            }
            Ok(())
        }
        Ok(p) => plan_errors(&p, data.len() as u64),
    }
}

/// The documented invariants of an accepted [`LoadPlan`].
pub fn plan_errors(p: &LoadPlan, file_len: u64) -> Result<(), String> {
    let mut errs = Vec::new();
    if p.segments.is_empty() {
        errs.push("no segments".to_string());
    }
    let mut prev_end: Option<u64> = None;
    for (i, s) in p.segments.iter().enumerate() {
        if s.memsz == 0 {
            errs.push(format!("segment {i}: memsz 0"));
        }
        if s.filesz > s.memsz {
            errs.push(format!("segment {i}: filesz {:#x} > memsz {:#x}", s.filesz, s.memsz));
        }
        if s.offset.checked_add(s.filesz).is_none_or(|e| e > file_len) {
            errs.push(format!("segment {i}: file range past the end of the file"));
        }
        if s.vaddr % PAGE_SIZE != s.offset % PAGE_SIZE {
            errs.push(format!("segment {i}: vaddr and offset not congruent"));
        }
        let Some(end) = s.vaddr.checked_add(s.memsz) else {
            errs.push(format!("segment {i}: end overflows"));
            continue;
        };
        if prev_end.is_some_and(|pe| s.vaddr < pe) {
            errs.push(format!("segment {i}: overlaps or is out of order"));
        }
        prev_end = Some(end);
        if s.flags & !7 != 0 {
            errs.push(format!("segment {i}: flags {:#x} beyond PF_R|PF_W|PF_X", s.flags));
        }
        let _ = s.guest_prot();
    }
    if let (Some(first), Some(last)) = (p.segments.first(), p.segments.last()) {
        if p.min_vaddr != page_down(first.vaddr) {
            errs.push(format!("min_vaddr {:#x} != page_down(first vaddr)", p.min_vaddr));
        }
        if Some(p.max_vaddr) != last.vaddr.checked_add(last.memsz).and_then(page_up) {
            errs.push(format!("max_vaddr {:#x} != page_up(last end)", p.max_vaddr));
        }
    }
    if !p.min_vaddr.is_multiple_of(PAGE_SIZE) || !p.max_vaddr.is_multiple_of(PAGE_SIZE) || p.max_vaddr <= p.min_vaddr {
        errs.push(format!("bad span [{:#x}, {:#x})", p.min_vaddr, p.max_vaddr));
    } else if p.span() > MAX_SPAN {
        errs.push(format!("span {:#x} > MAX_SPAN", p.span()));
    }
    if p.kind == ElfKind::Exec && p.max_vaddr > TASK_SIZE {
        errs.push(format!("ET_EXEC ends at {:#x}, beyond TASK_SIZE", p.max_vaddr));
    }
    if !p.segments.iter().any(|s| p.entry >= s.vaddr && p.entry - s.vaddr < s.memsz) {
        errs.push(format!("entry {:#x} outside the segments", p.entry));
    }
    if !p.max_align.is_power_of_two() || p.max_align < PAGE_SIZE {
        errs.push(format!("max_align {:#x} is not a power of two >= a page", p.max_align));
    }
    if p.phnum == 0 {
        errs.push("phnum 0".into());
    }
    if let Some(i) = &p.interp {
        use std::os::unix::ffi::OsStrExt;
        let b = i.as_os_str().as_bytes();
        if b.is_empty() || b.contains(&0) || b.len() > 4096 {
            errs.push(format!("bad interpreter path {i:?}"));
        }
    }
    if errs.is_empty() { Ok(()) } else { Err(errs.join("; ")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pc: u64, code: &[u8], at: u64, far: bool) {
        let opts = TranslateOptions { force_far_riprel: far, ..TranslateOptions::default() };
        if let Err(e) = check_translation(pc, code, at, 0, opts) {
            panic!("{e}");
        }
    }

    #[test]
    fn oracle_accepts_ordinary_blocks() {
        let blocks: &[&[u8]] = &[
            &[0xB8, 1, 0, 0, 0, 0x01, 0xD8, 0xC3],          // mov eax,1; add eax,ebx; ret
            &[0x48, 0x8B, 0x05, 0x00, 0x01, 0, 0, 0xC3],    // mov rax,[rip+0x100]; ret
            &[0x4C, 0x89, 0x2D, 0x00, 0x01, 0, 0, 0xC3],    // mov [rip+0x100],r13; ret (same Code as the spill)
            &[0x80, 0x3D, 0x10, 0, 0, 0, 0x7F, 0x74, 0x02], // cmp byte [rip+0x10],0x7f; je +2
            &[0x48, 0x8D, 0x05, 0xF9, 0xFF, 0xFF, 0xFF, 0xFF, 0xE0], // lea rax,[rip-7]; jmp rax
            &[0xE2, 0xFE],                                  // loop $
            &[0xE8, 0, 0, 0, 0],                            // call next
            &[0xFF, 0x15, 0x10, 0, 0, 0],                   // call [rip+0x10]
            &[0x0F, 0x05],                                  // syscall
            &[0x48, 0x8B],                                  // truncated
            &[0x0F, 0x0B],                                  // ud2
        ];
        for code in blocks {
            for (at, far) in [(0x50_0000, false), (0x7f00_0000_0000, false), (0x50_0000, true)] {
                check(0x401000, code, at, far);
            }
        }
    }

    #[test]
    fn oracle_accepts_inline_syscalls() {
        let blocks: &[&[u8]] = &[
            &[0xB8, 39, 0, 0, 0, 0x0F, 0x05, 0xC3],   // getpid: answered in the block
            &[0xB8, 0xBA, 0, 0, 0, 0x0F, 0x05, 0xC3], // gettid
            &[0xB8, 1, 0, 0, 0, 0x0F, 0x05, 0xC3],    // write: the gate
            &[0x48, 0x89, 0xF8, 0x0F, 0x05, 0x48, 0x3D, 0x01, 0xF0, 0xFF, 0xFF, 0x73, 0x01, 0xC3], // syscall(): checked
            &[0x0F, 0x05, 0x0F, 0x05, 0xB8, 39, 0, 0, 0, 0x0F, 0x05], // several in a row
        ];
        for code in blocks {
            for (at, flags) in
                [(0x50_0000, 2), (0x7f00_0000_0000, 2), (0x50_0000, 3), (0x50_0000, 6), (0x7f00_0000_0000, 7)]
            {
                let input = encode_translate_input_with(0x401000, at, 0, flags, code);
                assert!(!decode_translate_input(&input).opts.inline_syscalls.is_empty());
                if let Err(e) = check_translate_input(&input) {
                    panic!("{e}");
                }
            }
        }
    }

    #[test]
    fn oracle_checks_pushed_return_addresses() {
        // call +0x10; call [rax]: far from 4 GiB, so both push a literal.
        let code = [0xE8, 0x10, 0, 0, 0, 0xFF, 0x10];
        let pc = 0x7fff_1234_0000;
        for (g, want) in [(0usize, pc + 5), (5, pc + 7)] {
            let mut t = translate_block(
                GuestAddr(pc + g as u64),
                &code[g..],
                CachePc(0x50_0000),
                0,
                TranslateOptions::default(),
            );
            assert!(translation_errors(pc + g as u64, &code[g..], 0x50_0000, &t).is_empty());
            let lit = t.code.len() - 8;
            assert_eq!(u64::from_le_bytes(t.code[lit..].try_into().unwrap()), want);
            t.code[lit] ^= 1;
            let e = translation_errors(pc + g as u64, &code[g..], 0x50_0000, &t);
            assert!(e.iter().any(|m| m.contains("returns to")), "{e:?}");
        }
    }

    #[test]
    fn oracle_rejects_wrong_riprel_and_escaping_branches() {
        let code = [0x48, 0x8B, 0x05, 0x00, 0x01, 0, 0, 0xC3];
        let mut t = translate_block(GuestAddr(0x401000), &code, CachePc(0x50_0000), 0, TranslateOptions::default());
        assert!(translation_errors(0x401000, &code, 0x50_0000, &t).is_empty());
        // Corrupt the re-encoded displacement: the oracle must notice.
        t.code[t.entry as usize + 3] ^= 1;
        let e = translation_errors(0x401000, &code, 0x50_0000, &t);
        assert!(e.iter().any(|m| m.contains("addresses")), "{e:?}");
        // A `jmp rcx`, or a `jmp rdx` that does not follow a table slot's
        // load.
        let mut t =
            translate_block(GuestAddr(0x401000), &code[7..], CachePc(0x50_0000), 0, TranslateOptions::default());
        assert!(translation_errors(0x401000, &code[7..], 0x50_0000, &t).is_empty());
        t.code.extend_from_slice(&[0xFF, 0xE1]);
        let e = translation_errors(0x401000, &code[7..], 0x50_0000, &t);
        assert!(e.iter().any(|m| m.contains("indirect branch")), "{e:?}");
        t.code.truncate(t.code.len() - 2);
        t.code.extend_from_slice(&[0x48, 0x89, 0xC2, 0xFF, 0xE2]); // mov rdx, rax; jmp rdx
        let e = translation_errors(0x401000, &code[7..], 0x50_0000, &t);
        assert!(e.iter().any(|m| m.contains("indirect branch")), "{e:?}");
        // A jmp leaving the block.
        let mut t =
            translate_block(GuestAddr(0x401000), &[0xEB, 0x10], CachePc(0x50_0000), 0, TranslateOptions::default());
        t.code.extend_from_slice(&[0xE9, 0, 0, 0, 0x10]);
        let e = translation_errors(0x401000, &[0xEB, 0x10], 0x50_0000, &t);
        assert!(e.iter().any(|m| m.contains("outside the block")), "{e:?}");
    }

    #[test]
    fn translate_input_round_trips() {
        let v = encode_translate_input(0x1234, 0x5678, 9, true, &[0x90, 0xC3]);
        let i = decode_translate_input(&v);
        assert_eq!(
            (i.pc, i.at, i.first_exit_id, i.opts.force_far_riprel, i.code),
            (0x1234, 0x5678, 9, true, &[0x90, 0xC3][..])
        );
        let _ = decode_translate_input(&[]);
        let _ = decode_translate_input(&[1, 2, 3]);
    }

    #[test]
    fn elf_oracle_on_small_inputs() {
        for data in [&b""[..], b"\x7fELF", b"#!/bin/sh -x\n", &[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]] {
            check_elf_input(data).unwrap();
        }
    }
}
