//! Guest basic block -> cache code.
//!
//! A block is decoded until its first control transfer, `syscall`, illegal
//! instruction or size cap. Instructions that are position independent are
//! copied byte for byte; rip-relative ones are re-encoded for their new
//! address (or, when the cache is more than 2 GiB away, rewritten through a
//! scratch register); control flow becomes exits to per-block stubs that the
//! linker later patches to jump straight to their targets. Everything added
//! here is flag-neutral, so guest flags flow through untouched.

use iced_x86::{
    Code, ConditionCode, Decoder, DecoderError, DecoderOptions, Encoder, FlowControl, Instruction,
    InstructionInfoFactory, MemoryOperand, OpKind, Register,
};

use crate::abi::{ExitReason, off, reg};
use crate::addr::{CachePc, GuestAddr};
use crate::emit::{Emitter, Rel32Slot};

/// Upper bound on guest instructions in one block.
pub const MAX_BLOCK_INSNS: usize = 128;
/// Upper bound on the emitted size of one block, stubs included.
pub const MAX_BLOCK_BYTES: usize = 8192;
/// Longest guest instruction.
pub const MAX_INSN_LEN: usize = 15;

/// How a block is to be translated.
#[derive(Copy, Clone, Debug, Default)]
pub struct TranslateOptions {
    /// Rewrite every rip-relative operand through a scratch register, as if
    /// the cache were far from guest code (used to test the far path).
    pub force_far_riprel: bool,
    /// Address of the indirect-branch table when it lies below 2 GiB, so
    /// lookups can address it directly instead of loading its base.
    pub ibl_table: Option<u32>,
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
    let mut b = BlockBuilder {
        e: Emitter::new(at),
        pending: Vec::new(),
        first_exit_id,
        opts,
        info: InstructionInfoFactory::new(),
        insn_map: Vec::new(),
    };
    let mut decoder = Decoder::with_ip(64, bytes, pc.get(), DecoderOptions::NONE);
    let mut ins = Instruction::default();
    let mut n = 0usize;
    let mut end = pc;
    loop {
        let here = GuestAddr(decoder.ip());
        if n >= MAX_BLOCK_INSNS || b.e.len() > MAX_BLOCK_BYTES / 2 {
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
            let at = if reason == ExitReason::FetchFault {
                GuestAddr(pc.get() + bytes.len() as u64)
            } else {
                here
            };
            b.mark(pc, here);
            b.special_exit(reason, at);
            break;
        }
        n += 1;
        let raw = &bytes[(here.get() - pc.get()) as usize..][..ins.len()];
        end = GuestAddr(ins.next_ip());
        b.mark(pc, here);
        if !b.instruction(&ins, raw) {
            break;
        }
    }
    let _ = end;
    b.finish(pc, decoder.ip().wrapping_sub(pc.get()) as u32)
}

struct BlockBuilder {
    e: Emitter,
    /// Exits whose stubs are emitted after the body.
    pending: Vec<(Rel32Slot, GuestAddr)>,
    first_exit_id: u32,
    opts: TranslateOptions,
    info: InstructionInfoFactory,
    insn_map: Vec<(u32, u32)>,
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

impl BlockBuilder {
    fn mark(&mut self, pc: GuestAddr, here: GuestAddr) {
        self.insn_map.push((self.e.len() as u32, (here.get() - pc.get()) as u32));
    }

    /// Add a direct exit through `slot` to guest `target`.
    fn exit(&mut self, slot: Rel32Slot, target: GuestAddr) {
        self.pending.push((slot, target));
    }

    /// Leave the cache with `reason` and guest pc `at` (not linkable).
    fn special_exit(&mut self, reason: ExitReason, at: GuestAddr) {
        self.e.store_gs(off::SPILL_RCX, reg::RCX as u8);
        self.e.mov_imm64(reg::RCX as u8, at.get());
        self.e.store_gs_imm(off::EXIT_REASON, reason as i32);
        self.e.jmp_gs(off::EXIT_TRAMP);
    }

    /// Look the guest target (in rcx; the guest's rcx is in `SPILL_RCX`) up
    /// in the indirect-branch table and jump to its translation, inline, so
    /// that every site has its own final indirect jump for the branch
    /// predictor. Flag-free: the tag test is `not` + `lea` + `jrcxz`, and a
    /// miss recovers the target from the difference the same way. On a miss
    /// (or a pending signal) leave through the shared `bt_ibl_miss` with
    /// rcx = target and rax/rdx restored.
    fn to_ibl(&mut self) {
        let table = self.opts.ibl_table;
        let e = &mut self.e;
        e.store_gs(off::SPILL_RDX, reg::RDX as u8);
        e.store_gs(off::SPILL_RAX, reg::RAX as u8);
        e.bytes(&[0x0F, 0xB7, 0xC1]); // movzx eax, cx
        e.bytes(&[0x48, 0x8D, 0x04, 0x00]); // lea rax, [rax+rax]
        match table {
            Some(t) => {
                // mov rdx, [rax*8 + t]   (table below 2 GiB)
                e.bytes(&[0x48, 0x8B, 0x14, 0xC5]);
                e.bytes(&t.to_le_bytes());
            }
            None => {
                e.load_gs(reg::RDX as u8, off::IBL_TABLE);
                e.bytes(&[0x48, 0x8D, 0x04, 0xC2]); // lea rax, [rdx+rax*8]
                e.bytes(&[0x48, 0x8B, 0x10]); // mov rdx, [rax]
            }
        }
        e.bytes(&[0x48, 0xF7, 0xD1]); // not rcx
        e.bytes(&[0x48, 0x8D, 0x4C, 0x11, 0x01]); // lea rcx, [rcx+rdx+1]  (tag - target)
        let to_hit = e.short_branch(&[0xE3]); // jrcxz hit
        // miss: rcx = tag - target -> target = ~rcx + tag + 1
        e.bytes(&[0x48, 0xF7, 0xD1]); // not rcx
        e.bytes(&[0x48, 0x8D, 0x4C, 0x11, 0x01]); // lea rcx, [rcx+rdx+1]
        let to_leave = e.short_branch(&[0xEB]); // jmp leave
        // hit:
        let ok = e.bind_rel8(to_hit);
        debug_assert!(ok);
        e.load_gs(reg::RCX as u8, off::SIGNAL_PENDING);
        e.bytes(&[0xE3, 5]); // jrcxz go
        e.bytes(&[0x48, 0x89, 0xD1]); // mov rcx, rdx   (tag == target)
        e.bytes(&[0xEB, 0x00]); // jmp leave (patched below)
        let to_leave2 = e.len() - 1;
        // go: rdx = tag = target. Load the cache pc, then the tag once more:
        // the dispatcher may replace a slot while other threads look it up
        // (it stores an empty tag, then the pc, then the new tag), and on
        // x86's ordered loads a pc read from a replacement is always
        // followed by reading an empty or new tag, so the second check
        // turns a torn entry into a miss instead of a wrong jump.
        match table {
            Some(t) => {
                // mov rcx, [rax*8 + t + 8]
                e.bytes(&[0x48, 0x8B, 0x0C, 0xC5]);
                e.bytes(&(t + 8).to_le_bytes());
            }
            None => e.bytes(&[0x48, 0x8B, 0x48, 0x08]), // mov rcx, [rax+8]
        }
        e.store_gs(off::IBL_JUMP, reg::RCX as u8);
        match table {
            Some(t) => {
                // mov rcx, [rax*8 + t]
                e.bytes(&[0x48, 0x8B, 0x0C, 0xC5]);
                e.bytes(&t.to_le_bytes());
            }
            None => e.bytes(&[0x48, 0x8B, 0x08]), // mov rcx, [rax]
        }
        e.bytes(&[0x48, 0xF7, 0xD1]); // not rcx
        e.bytes(&[0x48, 0x8D, 0x4C, 0x11, 0x01]); // lea rcx, [rcx+rdx+1]  (tag - target)
        e.bytes(&[0xE3, 5]); // jrcxz jump
        e.bytes(&[0x48, 0x89, 0xD1]); // mov rcx, rdx   (torn: a miss for target)
        e.bytes(&[0xEB, 0x00]); // jmp leave (patched below)
        let to_leave3 = e.len() - 1;
        // jump:
        e.load_gs(reg::RAX as u8, off::SPILL_RAX);
        e.load_gs(reg::RDX as u8, off::SPILL_RDX);
        e.load_gs(reg::RCX as u8, off::SPILL_RCX);
        e.jmp_gs(off::IBL_JUMP);
        // leave: rcx = target
        let ok = e.bind_rel8(to_leave) && e.bind_rel8(to_leave2) && e.bind_rel8(to_leave3);
        assert!(ok, "indirect-branch lookup longer than a short jump");
        e.load_gs(reg::RAX as u8, off::SPILL_RAX);
        e.load_gs(reg::RDX as u8, off::SPILL_RDX);
        e.jmp_gs(off::IBL_MISS);
    }

    /// Translate one instruction; false when it ends the block.
    fn instruction(&mut self, ins: &Instruction, raw: &[u8]) -> bool {
        let next = GuestAddr(ins.next_ip());
        if ins.code() == Code::Syscall {
            self.syscall(next);
            return false;
        }
        match ins.flow_control() {
            FlowControl::Next | FlowControl::Interrupt => {
                if uses_gs(ins) {
                    // Guest GS is virtual; gs-relative operands are not
                    // rewritten yet, so report them as the CPU reports an
                    // instruction it cannot execute.
                    self.special_exit(ExitReason::Unsupported, GuestAddr(ins.ip()));
                    return false;
                }
                if ins.is_ip_rel_memory_operand() {
                    self.riprel(ins);
                } else {
                    self.e.bytes(raw);
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
                    self.e.push_imm64(next.get(), off::SPILL_RAX);
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
                self.e.store_gs(off::SPILL_RCX, reg::RCX as u8);
                self.load_rcx_operand(ins);
                if is_call {
                    self.e.push_imm64(next.get(), off::SPILL_RAX);
                }
                self.to_ibl();
                false
            }
            FlowControl::Return => {
                match ins.code() {
                    Code::Retnq | Code::Retnq_imm16 => {
                        self.e.store_gs(off::SPILL_RCX, reg::RCX as u8);
                        self.e.pop(reg::RCX as u8);
                        if ins.code() == Code::Retnq_imm16 && ins.immediate16() != 0 {
                            self.e.lea_rsp(ins.immediate16() as i32);
                        }
                        self.to_ibl();
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
    fn syscall(&mut self, next: GuestAddr) {
        self.e.mov_imm64(reg::RCX as u8, next.get());
        // lea r11, [rip + cont]: cont is right after the 8-byte jmp gs:[..]
        let lea_len = 7u64;
        let cont = self.e.pc().add(lea_len + 8);
        self.e.lea_rip(reg::R11 as u8, cont);
        self.e.jmp_gs(off::GATE_ENTRY);
        debug_assert_eq!(self.e.pc(), cont);
        let s = self.e.jmp_rel32();
        self.exit(s, next);
    }

    /// `mov rcx, <operand of an indirect jmp/call>`, handling rip-relative
    /// operands at any distance.
    fn load_rcx_operand(&mut self, ins: &Instruction) {
        if ins.op0_kind() == OpKind::Register {
            let src = ins.op0_register();
            if src != Register::RCX {
                let m = Instruction::with2(Code::Mov_r64_rm64, Register::RCX, src)
                    .expect("mov rcx, r64 is encodable");
                self.encode_at_pc(&m).expect("mov rcx, r64 encodes");
            }
            return;
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

    /// A non-branch instruction with a rip-relative memory operand.
    fn riprel(&mut self, ins: &Instruction) {
        if !self.opts.force_far_riprel && self.encode_at_pc(ins).is_ok() {
            return;
        }
        let target = ins.ip_rel_memory_address();
        if matches!(ins.code(), Code::Lea_r64_m) {
            // lea reg, [rip+x] is just the constant.
            self.e.mov_imm64(reg_num(ins.op0_register()), target);
            return;
        }
        let regs = self.info.info(ins).used_registers().iter().map(|u| u.register()).collect::<Vec<_>>();
        let used = regs.iter().map(|r| r.full_register()).collect::<Vec<_>>();
        // AH/CH/DH/BH cannot be encoded with a REX prefix, which r8-r15 as
        // base would need: such instructions get a legacy scratch register.
        let high8 = regs.iter().any(|r| matches!(r, Register::AH | Register::CH | Register::DH | Register::BH));
        let scratch = SCRATCH
            .iter()
            .copied()
            .filter(|r| !high8 || r.number() < Register::R8.number())
            .find(|r| !used.contains(r))
            .expect("an instruction never uses all ten scratch candidates");
        let s = reg_num(scratch);
        let mut f = *ins;
        f.set_memory_base(scratch);
        f.set_memory_index(Register::None);
        f.set_memory_index_scale(1);
        f.set_memory_displacement64(0);
        f.set_memory_displ_size(0);
        self.e.store_gs(off::SPILL_SCRATCH, s);
        self.e.mov_imm64(s, target);
        self.encode_at_pc(&f).expect("rip-relative instruction re-encodes with a register base");
        self.e.load_gs(s, off::SPILL_SCRATCH);
    }

    /// Emit the stubs for the pending exits and produce the translation.
    fn finish(mut self, pc: GuestAddr, guest_len: u32) -> Translation {
        let mut exits = Vec::with_capacity(self.pending.len());
        let pending = std::mem::take(&mut self.pending);
        for (i, (slot, target)) in pending.into_iter().enumerate() {
            let stub = self.e.pc();
            self.e.store_gs(off::SPILL_RCX, reg::RCX as u8);
            self.e.mov_imm64(reg::RCX as u8, target.get());
            self.e.store_gs_imm(off::EXIT_ID, (self.first_exit_id + i as u32) as i32);
            self.e.store_gs_imm(off::EXIT_REASON, ExitReason::Branch as i32);
            self.e.jmp_gs(off::EXIT_TRAMP);
            self.e.patch(slot, stub);
            exits.push(ExitSite {
                slot: slot.0 as u32,
                stub: (stub.get() - self.e.base().get()) as u32,
                target,
            });
        }
        Translation { guest: pc, guest_len, code: self.e.into_bytes(), exits, insn_map: self.insn_map }
    }
}

fn uses_gs(ins: &Instruction) -> bool {
    ins.segment_prefix() == Register::GS
        || (0..ins.op_count()).any(|i| {
            matches!(ins.op_kind(i), OpKind::Memory) && ins.memory_segment() == Register::GS
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use iced_x86::{Formatter, IntelFormatter};

    fn dis(t: &Translation, base: u64) -> Vec<String> {
        let mut d = Decoder::with_ip(64, &t.code, base, DecoderOptions::NONE);
        let mut f = IntelFormatter::new();
        let mut v = Vec::new();
        for i in d.iter() {
            let mut s = String::new();
            f.format(&i, &mut s);
            v.push(s);
        }
        v
    }

    #[test]
    fn copies_plain_code_and_ends_at_ret() {
        // mov eax, 1; add eax, ebx; ret
        let code = [0xB8, 1, 0, 0, 0, 0x01, 0xD8, 0xC3];
        let t = translate_block(GuestAddr(0x401000), &code, CachePc(0x10_0000), 0, TranslateOptions::default());
        assert_eq!(&t.code[..7], &code[..7]);
        assert_eq!(t.guest_len, 8);
        let text = dis(&t, 0x10_0000);
        assert!(text.iter().any(|l| l == "pop rcx"), "{text:?}");
        assert!(text.iter().any(|l| l.contains("jrcxz")), "{text:?}");
        assert!(text.iter().any(|l| l.contains("jmp qword ptr gs:[160h]")), "{text:?}");
        assert!(text.iter().any(|l| l.contains("jmp qword ptr gs:[0F0h]")), "{text:?}");
        assert!(text.iter().any(|l| l.contains("mov rcx,[rax+8]")), "{text:?}");
        assert!(text.iter().any(|l| l.contains("mov rcx,[rax]")), "{text:?}");
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
    fn near_riprel_is_reencoded() {
        let code = [0x48, 0x8B, 0x05, 0x00, 0x01, 0, 0, 0xC3];
        let t = translate_block(GuestAddr(0x401000), &code, CachePc(0x50_0000), 0, TranslateOptions::default());
        let text = dis(&t, 0x50_0000);
        assert_eq!(text[0], "mov rax,[401107h]");
    }

    #[test]
    fn jcc_gets_two_linkable_exits() {
        // cmp eax, ebx; jne +5
        let code = [0x39, 0xD8, 0x75, 0x05];
        let t = translate_block(GuestAddr(0x1000), &code, CachePc(0x9000), 7, TranslateOptions::default());
        assert_eq!(t.exits.len(), 2);
        assert_eq!(t.exits[0].target, GuestAddr(0x1009));
        assert_eq!(t.exits[1].target, GuestAddr(0x1004));
        for x in &t.exits {
            assert_eq!((0x9000 + x.slot) % 4, 0);
            let rel = i32::from_le_bytes(t.code[x.slot as usize..][..4].try_into().unwrap());
            assert_eq!(x.slot as i64 + 4 + rel as i64, x.stub as i64);
        }
    }

    #[test]
    fn truncated_code_is_a_fetch_fault() {
        let code = [0x48, 0x8B];
        let t = translate_block(GuestAddr(0x1000), &code, CachePc(0x9000), 0, TranslateOptions::default());
        let text = dis(&t, 0x9000);
        assert!(text.iter().any(|l| l == "mov qword ptr gs:[0B8h],6"), "{text:?}");
    }
}
