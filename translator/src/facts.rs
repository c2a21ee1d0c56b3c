//! What the translator knows about the guest's general registers at a point
//! inside a block, from the instructions before it in the same block (a
//! block is only ever entered at its start): an upper bound on a register's
//! value, or its exact value. Used to recognize jump tables (see
//! `translate.rs`, "jump tables"): an index that is bounded, into a table
//! whose base is known.
//!
//! Facts only shrink what is known: every instruction that may write a
//! register (explicitly or implicitly, whole or in part) drops what was
//! known about it, except for the few forms below that establish a fact.

use iced_x86::{Code, ConditionCode, Instruction, InstructionInfoFactory, OpAccess, OpKind, Register};

/// Index 0-15 of a 64-bit general register (rax = 0 ... r15 = 15), for any
/// of its sizes.
pub fn gpr_index(r: Register) -> Option<usize> {
    let full = r.full_register();
    (full.is_gpr64()).then(|| full as usize - Register::RAX as usize)
}

#[derive(Clone, Debug, Default)]
pub struct RegFacts {
    /// The register's whole 64-bit value is at most this (unsigned).
    bound: [Option<u64>; 16],
    /// The register's exact value.
    value: [Option<u64>; 16],
    /// Its low byte (al, ..., r15b) is at most this.
    low_byte: [Option<u64>; 16],
    /// Its low 32 bits (eax, ..., r15d), as unsigned, are at most this.
    low_dword: [Option<u64>; 16],
    /// The register's value when the block was entered, while the block
    /// has not written it: seen once (at translation time), so only a guess
    /// that emitted code must check (`RegFacts::entered_with`).
    entry: [Option<u64>; 16],
    /// Set by `cmp reg, imm` for the instruction right after it: the
    /// register, the immediate as an unsigned value of the compare's size,
    /// and that size in bits.
    cmp: Option<(usize, u64, u32)>,
}

impl RegFacts {
    pub fn bound(&self, r: Register) -> Option<u64> {
        let i = gpr_index(r)?;
        match (self.bound[i], self.value[i]) {
            (Some(b), Some(v)) => Some(b.min(v)),
            (b, v) => b.or(v),
        }
    }

    /// What is known of the low 32 bits of register `i` (by index).
    fn low_dword(&self, i: usize) -> Option<u64> {
        let whole = [self.bound[i], self.value[i]].into_iter().flatten().min().filter(|&b| b <= u32::MAX as u64);
        match (self.low_dword[i], whole) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn value(&self, r: Register) -> Option<u64> {
        self.value[gpr_index(r)?]
    }

    /// Facts for a block entered with the registers `regs` (by
    /// `translator::abi::reg` number), as seen when it was translated.
    pub fn entered_with(regs: Option<[u64; 16]>) -> Self {
        RegFacts { entry: regs.map_or([None; 16], |r| r.map(Some)), ..RegFacts::default() }
    }

    /// The register's value at block entry if the block has not written it
    /// since: a guess (another entry may bring another value).
    pub fn entry_value(&self, r: Register) -> Option<u64> {
        self.entry[gpr_index(r)?]
    }

    /// Update for `ins`, which was just executed (for a conditional branch:
    /// not taken, execution goes on after it).
    pub fn after(&mut self, ins: &Instruction, info: &mut InstructionInfoFactory) {
        let cmp = self.cmp.take();
        let info = info.info(ins);
        let op0_written = matches!(info.op0_access(), OpAccess::Write | OpAccess::ReadWrite);
        let mut established = establishes(ins, op0_written);
        if let Some(Fact::Bound(i, 0xff)) = established
            && ins.op1_kind() == OpKind::Register
            && let Some(b) = low_byte_index(ins.op1_register()).and_then(|j| self.low_byte[j])
        {
            // movzx from a byte register whose byte is bounded.
            established = Some(Fact::Bound(i, b));
        }
        if matches!(ins.code(), Code::Mov_r32_rm32 | Code::Mov_rm32_r32)
            && ins.op0_kind() == OpKind::Register
            && ins.op1_kind() == OpKind::Register
            && let (Some(i), Some(j)) = (gpr_index(ins.op0_register()), gpr_index(ins.op1_register()))
            && let Some(b) = self.low_dword(j)
        {
            // A 32-bit move zero-extends the source's bounded low half.
            established = Some(Fact::Bound(i, b));
        }
        for u in info.used_registers() {
            let writes = matches!(
                u.access(),
                OpAccess::Write | OpAccess::CondWrite | OpAccess::ReadWrite | OpAccess::ReadCondWrite
            );
            if writes && let Some(i) = gpr_index(u.register()) {
                self.bound[i] = None;
                self.value[i] = None;
                self.low_byte[i] = None;
                self.low_dword[i] = None;
                self.entry[i] = None;
            }
        }
        match established {
            Some(Fact::Bound(i, b)) => self.bound[i] = Some(b),
            Some(Fact::Value(i, v)) => {
                self.value[i] = Some(v);
                self.bound[i] = Some(v);
            }
            None => {}
        }
        self.cmp = compare(ins);
        if ins.flow_control() == iced_x86::FlowControl::ConditionalBranch
            && let Some((i, imm, bits)) = cmp
        {
            // Not taken: `ja` means reg <= imm, `jae` means reg < imm.
            let le = match ins.condition_code() {
                ConditionCode::a => Some(imm),
                ConditionCode::ae => imm.checked_sub(1),
                _ => None,
            };
            let min = |old: Option<u64>, new: u64| Some(old.map_or(new, |b| b.min(new)));
            if let Some(le) = le {
                match bits {
                    8 => self.low_byte[i] = min(self.low_byte[i], le),
                    // A 32-bit compare bounds the whole register only when
                    // its upper half is known to be zero; its low half always.
                    32 => {
                        self.low_dword[i] = min(self.low_dword[i], le);
                        if self.bound[i].is_some_and(|b| b <= u32::MAX as u64) {
                            self.bound[i] = min(self.bound[i], le);
                        }
                    }
                    64 => self.bound[i] = min(self.bound[i], le),
                    _ => {}
                }
            }
        }
    }
}

enum Fact {
    Bound(usize, u64),
    Value(usize, u64),
}

/// The fact `ins` establishes about the register it writes, if any.
fn establishes(ins: &Instruction, op0_written: bool) -> Option<Fact> {
    if ins.op0_kind() != OpKind::Register {
        return None;
    }
    let dst = ins.op0_register();
    let i = gpr_index(dst)?;
    let reg_src = ins.op_count() > 1 && ins.op1_kind() == OpKind::Register;
    let fact = match ins.code() {
        Code::Movzx_r32_rm8 | Code::Movzx_r64_rm8 => Fact::Bound(i, 0xff),
        Code::Movzx_r32_rm16 | Code::Movzx_r64_rm16 => Fact::Bound(i, 0xffff),
        Code::Mov_r32_imm32 | Code::Mov_rm32_imm32 => Fact::Value(i, ins.immediate32() as u64),
        Code::Mov_rm64_imm32 => Fact::Value(i, ins.immediate32to64() as u64),
        Code::Mov_r64_imm64 => Fact::Value(i, ins.immediate64()),
        Code::Xor_r32_rm32 | Code::Xor_rm32_r32 | Code::Sub_r32_rm32 | Code::Sub_rm32_r32
            if reg_src && ins.op1_register() == dst =>
        {
            Fact::Value(i, 0)
        }
        Code::And_rm32_imm32 | Code::And_rm32_imm8 | Code::And_EAX_imm32 => {
            Fact::Bound(i, ins.immediate(1) as u32 as u64)
        }
        Code::Lea_r64_m if ins.is_ip_rel_memory_operand() => Fact::Value(i, ins.ip_rel_memory_address()),
        // Any other write of a 32-bit register clears its upper half.
        _ if dst.is_gpr32() && op0_written => Fact::Bound(i, u32::MAX as u64),
        _ => return None,
    };
    Some(fact)
}

/// `cmp reg8/reg32/reg64, imm`: (register, immediate, size in bits).
fn compare(ins: &Instruction) -> Option<(usize, u64, u32)> {
    if ins.op0_kind() != OpKind::Register {
        return None;
    }
    let r = ins.op0_register();
    match ins.code() {
        Code::Cmp_rm8_imm8 | Code::Cmp_AL_imm8 => Some((low_byte_index(r)?, ins.immediate(1) as u8 as u64, 8)),
        Code::Cmp_rm32_imm32 | Code::Cmp_rm32_imm8 | Code::Cmp_EAX_imm32 => {
            Some((gpr_index(r)?, ins.immediate(1) as u32 as u64, 32))
        }
        Code::Cmp_rm64_imm32 | Code::Cmp_rm64_imm8 | Code::Cmp_RAX_imm32 => Some((gpr_index(r)?, ins.immediate(1), 64)),
        _ => None,
    }
}

/// Index of the register whose low byte `r` is (al ... r15b; not ah-bh).
fn low_byte_index(r: Register) -> Option<usize> {
    (r.is_gpr8() && !matches!(r, Register::AH | Register::CH | Register::DH | Register::BH))
        .then(|| gpr_index(r))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use iced_x86::{Decoder, DecoderOptions};

    /// The facts after `code` (one block's instructions, all run).
    fn facts(code: &[u8]) -> RegFacts {
        let mut f = RegFacts::default();
        let mut info = InstructionInfoFactory::new();
        for ins in Decoder::with_ip(64, code, 0x1000, DecoderOptions::NONE).iter() {
            f.after(&ins, &mut info);
        }
        f
    }

    #[test]
    fn movzx_bounds_and_any_write_forgets() {
        // movzx eax, sil
        assert_eq!(facts(&[0x40, 0x0F, 0xB6, 0xC6]).bound(Register::RAX), Some(0xff));
        // movzx eax, sil; add al, 1 (a partial write: the bound is gone)
        assert_eq!(facts(&[0x40, 0x0F, 0xB6, 0xC6, 0x04, 0x01]).bound(Register::RAX), None);
        // movzx eax, sil; cpuid (an implicit write)
        assert_eq!(facts(&[0x40, 0x0F, 0xB6, 0xC6, 0x0F, 0xA2]).bound(Register::RAX), None);
        // movzx edx, r15b; mov rcx, rdx: only rdx is bounded
        let f = facts(&[0x41, 0x0F, 0xB6, 0xD7, 0x48, 0x89, 0xD1]);
        assert_eq!((f.bound(Register::RDX), f.bound(Register::RCX)), (Some(0xff), None));
    }

    #[test]
    fn compare_and_branch_not_taken_bounds_a_zero_extended_register() {
        // mov eax, [rdi]; cmp eax, 47; ja +0
        let f = facts(&[0x8B, 0x07, 0x83, 0xF8, 0x2F, 0x77, 0x00]);
        assert_eq!(f.bound(Register::RAX), Some(47));
        // ... jae: below 47
        let f = facts(&[0x8B, 0x07, 0x83, 0xF8, 0x2F, 0x73, 0x00]);
        assert_eq!(f.bound(Register::RAX), Some(46));
        // mov rax, [rdi]; cmp eax, 47; ja: the upper half is unknown
        let f = facts(&[0x48, 0x8B, 0x07, 0x83, 0xF8, 0x2F, 0x77, 0x00]);
        assert_eq!(f.bound(Register::RAX), None);
        // mov rax, [rdi]; cmp rax, 47; ja: a 64-bit compare bounds it all
        let f = facts(&[0x48, 0x8B, 0x07, 0x48, 0x83, 0xF8, 0x2F, 0x77, 0x00]);
        assert_eq!(f.bound(Register::RAX), Some(47));
        // cmp eax, 47; jb: not a bound (taken when below)
        let f = facts(&[0x8B, 0x07, 0x83, 0xF8, 0x2F, 0x72, 0x00]);
        assert_eq!(f.bound(Register::RAX), Some(u32::MAX as u64));
        // cmp eax, 47; nop; ja: the compare is not what the branch tests
        let f = facts(&[0x8B, 0x07, 0x83, 0xF8, 0x2F, 0x90, 0x77, 0x00]);
        assert_eq!(f.bound(Register::RAX), Some(u32::MAX as u64));
    }

    #[test]
    fn a_bounded_byte_bounds_its_zero_extension() {
        // cmp r15b, 0xb5; ja +0; movzx edx, r15b   (sqlite3's VDBE dispatch)
        let code = [0x41, 0x80, 0xFF, 0xB5, 0x77, 0x00, 0x41, 0x0F, 0xB6, 0xD7];
        assert_eq!(facts(&code).bound(Register::RDX), Some(0xb5));
        // ... with a write to r15 between: only the movzx's own bound
        let code = [0x41, 0x80, 0xFF, 0xB5, 0x77, 0x00, 0x49, 0xFF, 0xC7, 0x41, 0x0F, 0xB6, 0xD7];
        assert_eq!(facts(&code).bound(Register::RDX), Some(0xff));
        // cmp ah, 5; ja; movzx edx, ah: a high byte is not tracked
        let code = [0x80, 0xFC, 0x05, 0x77, 0x00, 0x0F, 0xB6, 0xD4];
        assert_eq!(facts(&code).bound(Register::RDX), Some(0xff));
    }

    #[test]
    fn a_32_bit_move_carries_the_bound_of_a_compared_low_half() {
        // cmp esi, 0xb; ja +0; mov edx, esi   (sqlite3VdbeSerialGet's switch:
        // rsi's upper half is unknown, its low half at most 11)
        let code = [0x83, 0xFE, 0x0B, 0x77, 0x00, 0x89, 0xF2];
        let f = facts(&code);
        assert_eq!((f.bound(Register::RSI), f.bound(Register::RDX)), (None, Some(0xb)));
        // ... with esi written between: only a 32-bit value's bound
        let code = [0x83, 0xFE, 0x0B, 0x77, 0x00, 0xFF, 0xC6, 0x89, 0xF2];
        assert_eq!(facts(&code).bound(Register::RDX), Some(u32::MAX as u64));
        // mov rdx, rsi (64-bit): the upper half comes along, no bound
        let code = [0x83, 0xFE, 0x0B, 0x77, 0x00, 0x48, 0x89, 0xF2];
        assert_eq!(facts(&code).bound(Register::RDX), None);
        // movzx esi, sil; mov edx, esi: a whole-register bound carries too
        let code = [0x40, 0x0F, 0xB6, 0xF6, 0x89, 0xF2];
        assert_eq!(facts(&code).bound(Register::RDX), Some(0xff));
        // cmp esi, 0xb; jb: no bound
        let code = [0x83, 0xFE, 0x0B, 0x72, 0x00, 0x89, 0xF2];
        assert_eq!(facts(&code).bound(Register::RDX), Some(u32::MAX as u64));
    }

    #[test]
    fn lea_rip_and_immediates_are_values() {
        // lea rcx, [rip+0x100] (at 0x1000, 7 bytes: 0x1107); mov edx, 5
        let f = facts(&[0x48, 0x8D, 0x0D, 0x00, 0x01, 0, 0, 0xBA, 5, 0, 0, 0]);
        assert_eq!(f.value(Register::RCX), Some(0x1107));
        assert_eq!((f.value(Register::RDX), f.bound(Register::RDX)), (Some(5), Some(5)));
        // ... then add rcx, 8: gone
        let f = facts(&[0x48, 0x8D, 0x0D, 0x00, 0x01, 0, 0, 0x48, 0x83, 0xC1, 0x08]);
        assert_eq!(f.value(Register::RCX), None);
    }
}
