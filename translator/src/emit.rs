//! The x86-64 emitter for the sequences bt-run adds around guest code
//! (exit stubs, branch rewrites, spills to the GS context).
//!
//! Sequences are written as assembly with `dynasm!` (through this module's
//! [`asm!`] macro, which an [`Emitter`] receives as an assembler). The only
//! bytes written by hand are fields patched later: the branches whose
//! displacement is filled in when the target is known (`jmp_rel32`,
//! `jcc_rel32`, `short_branch`) and the SDM's multi-byte no-ops. Every
//! sequence here is flag-neutral (`mov`, `lea`, `push imm`, `jmp`), so it
//! can sit between any two guest instructions. Encodings are checked against
//! iced-x86's decoder in the tests below.

use dynasmrt::{AssemblyOffset, DynasmApi};

use crate::addr::CachePc;

/// Assemble x86-64 into an [`Emitter`]: `asm!(e; lea rcx, [rcx + rdx])`.
/// Registers written `Rq(n)` are chosen at run time (n is an `abi::reg`
/// number); dynasm gives such an operand a REX prefix even where the
/// register needs none, so instructions without REX.W name static
/// registers.
macro_rules! asm {
    ($e:expr ; $($t:tt)*) => {{
        #[allow(unused_imports)]
        use dynasmrt::DynasmApi as _;
        // A run-time register goes through `.into()`, even from a u8.
        #[allow(clippy::useless_conversion)]
        let () = dynasmrt::dynasm!($e ; .arch x64 ; $($t)*);
    }};
}
pub(crate) use asm;

/// Bytes being assembled for a known final cache address.
pub struct Emitter {
    base: CachePc,
    buf: Vec<u8>,
}

/// A 32-bit displacement field to be filled once its target is known.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Rel32Slot(pub usize);

impl Emitter {
    pub fn new(base: CachePc) -> Self {
        Self { base, buf: Vec::with_capacity(512) }
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Cache address of the next byte to be emitted.
    pub fn pc(&self) -> CachePc {
        self.base.add(self.buf.len() as u64)
    }

    pub fn base(&self) -> CachePc {
        self.base
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    pub fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Pad with single-byte nops until `(pc + skew) % 4 == 0`, so that a
    /// rel32 field that starts `skew` bytes later is 4-byte aligned and can
    /// be patched with one atomic store.
    pub fn align_rel32(&mut self, skew: u64) {
        self.align_nop(4, skew);
    }

    /// Pad with single-byte nops until `(pc + skew) % align == 0`, so that
    /// a field `skew` bytes later is `align`-aligned (an imm64 patched with
    /// one store).
    pub fn align_nop(&mut self, align: u64, skew: u64) {
        let n = (align - (self.pc().get() + skew) % align) % align;
        self.pad(n as usize);
    }

    /// One `n`-byte no-op (n < 8): the CPU decodes one instruction, where
    /// `n` single-byte nops would take `n` slots of its front end.
    pub fn nop(&mut self, n: usize) {
        const NOPS: [&[u8]; 8] = [
            &[],
            &[0x90],
            &[0x66, 0x90],
            &[0x0F, 0x1F, 0x00],
            &[0x0F, 0x1F, 0x40, 0x00],
            &[0x0F, 0x1F, 0x44, 0x00, 0x00],
            &[0x66, 0x0F, 0x1F, 0x44, 0x00, 0x00],
            &[0x0F, 0x1F, 0x80, 0x00, 0x00, 0x00, 0x00],
        ];
        self.bytes(NOPS[n]);
    }

    /// `n` bytes of padding as few multi-byte nops.
    pub fn pad(&mut self, mut n: usize) {
        while n > 0 {
            let k = n.min(7);
            self.nop(k);
            n -= k;
        }
    }

    /// `jmp rel32` with the displacement left to `patch`.
    pub fn jmp_rel32(&mut self) -> Rel32Slot {
        self.align_rel32(1);
        self.buf.push(0xE9);
        let s = Rel32Slot(self.buf.len());
        self.u32(0);
        s
    }

    /// `jcc rel32` (`cc` is the 4-bit condition code) with the displacement
    /// left to `patch`.
    pub fn jcc_rel32(&mut self, cc: u8) -> Rel32Slot {
        self.align_rel32(2);
        self.buf.push(0x0F);
        self.buf.push(0x80 | (cc & 0xF));
        let s = Rel32Slot(self.buf.len());
        self.u32(0);
        s
    }

    /// `jrcxz` forward, its rel8 left to `bind_rel8`.
    pub fn jrcxz_fwd(&mut self) -> usize {
        self.short_branch(&[0xE3])
    }

    /// `jmp rel8` forward, its rel8 left to `bind_rel8`.
    pub fn jmp8_fwd(&mut self) -> usize {
        self.short_branch(&[0xEB])
    }

    /// A short branch opcode byte followed by its rel8 (for `jrcxz`/`loop`).
    pub fn short_branch(&mut self, opcode: &[u8]) -> usize {
        self.bytes(opcode);
        let at = self.buf.len();
        self.buf.push(0);
        at
    }

    /// Point a rel8 (at byte offset `at`) at the current position.
    pub fn bind_rel8(&mut self, at: usize) -> bool {
        let d = self.buf.len() as i64 - (at as i64 + 1);
        match i8::try_from(d) {
            Ok(d) => {
                self.buf[at] = d as u8;
                true
            }
            Err(_) => false,
        }
    }

    /// Point a rel32 slot at `target`.
    pub fn patch(&mut self, slot: Rel32Slot, target: CachePc) {
        let next = self.base.get() + slot.0 as u64 + 4;
        let d = target.get().wrapping_sub(next) as i64;
        let d = i32::try_from(d).expect("code cache larger than 2 GiB");
        self.buf[slot.0..slot.0 + 4].copy_from_slice(&d.to_le_bytes());
    }

    /// Cache address of a rel32 slot's first byte.
    pub fn slot_pc(&self, slot: Rel32Slot) -> CachePc {
        self.base.add(slot.0 as u64)
    }

    /// `mov qword gs:[disp], reg`
    pub fn store_gs(&mut self, disp: i32, reg: u8) {
        asm!(self; gs mov QWORD [disp], Rq(reg));
    }

    /// `mov reg, qword gs:[disp]`
    pub fn load_gs(&mut self, reg: u8, disp: i32) {
        asm!(self; gs mov Rq(reg), QWORD [disp]);
    }

    /// `mov qword gs:[disp], simm32`
    pub fn store_gs_imm(&mut self, disp: i32, imm: i32) {
        asm!(self; gs mov QWORD [disp], DWORD imm);
    }

    /// `jmp qword gs:[disp]`
    pub fn jmp_gs(&mut self, disp: i32) {
        asm!(self; gs jmp QWORD [disp]);
    }

    /// `mov reg, imm64`
    pub fn mov_imm64(&mut self, reg: u8, imm: u64) {
        asm!(self; mov Rq(reg), QWORD imm as i64);
    }

    /// `lea reg, [rip + target]`
    pub fn lea_rip(&mut self, reg: u8, target: CachePc) {
        // The instruction is 7 bytes; the displacement counts from its end.
        let d = target.get().wrapping_sub(self.pc().get() + 7) as i64;
        let d = i32::try_from(d).expect("lea target within the cache");
        asm!(self; lea Rq(reg), [rip + d]);
    }

    /// `push imm32` (sign-extended to 64 bits).
    pub fn push_imm32(&mut self, v: i32) {
        asm!(self; push DWORD v);
    }

    /// `push qword [rip + disp32]`, the displacement left to `patch` (with
    /// the address of a `literal64`).
    pub fn push_rip_rel(&mut self) -> Rel32Slot {
        asm!(self; push QWORD [rip + 0]);
        Rel32Slot(self.buf.len() - 4)
    }

    /// An 8-aligned 8-byte literal `v`, held as the immediate of a `mov
    /// rax, imm64` that is never executed (it goes after code that does not
    /// fall through), so the emitted bytes still decode as instructions.
    /// Returns the literal's address.
    pub fn literal64(&mut self, v: u64) -> CachePc {
        self.align_nop(8, 2);
        self.mov_imm64(0, v);
        CachePc(self.pc().get() - 8)
    }

    /// `jmp qword [index*8 + table]` (a jump table below 2 GiB). The index
    /// register is matched to a static one: dynasm would give a run-time
    /// register a REX prefix even where none is needed.
    pub fn jmp_table(&mut self, index: u8, table: u32) {
        let t = table as i32;
        macro_rules! by_index {
            ($($n:literal => $r:ident),*) => {
                match index {
                    $($n => asm!(self; jmp QWORD [$r * 8 + t]),)*
                    _ => panic!("rsp cannot index"),
                }
            };
        }
        by_index!(0 => rax, 1 => rcx, 2 => rdx, 3 => rbx, 5 => rbp, 6 => rsi, 7 => rdi,
            8 => r8, 9 => r9, 10 => r10, 11 => r11, 12 => r12, 13 => r13, 14 => r14, 15 => r15);
    }

    /// `lea rsp, [rsp + disp32]` (flag-free stack adjustment)
    pub fn lea_rsp(&mut self, disp: i32) {
        asm!(self; lea rsp, [rsp + disp]);
    }
}

impl Extend<u8> for Emitter {
    fn extend<T: IntoIterator<Item = u8>>(&mut self, iter: T) {
        self.buf.extend(iter);
    }
}

impl<'a> Extend<&'a u8> for Emitter {
    fn extend<T: IntoIterator<Item = &'a u8>>(&mut self, iter: T) {
        self.buf.extend(iter);
    }
}

/// What `dynasm!` needs of an assembler: bytes appended at the end. Labels
/// and relocations are not used; patchable fields are the emitter's own.
impl DynasmApi for Emitter {
    fn offset(&self) -> AssemblyOffset {
        AssemblyOffset(self.buf.len())
    }

    fn push(&mut self, byte: u8) {
        self.buf.push(byte);
    }

    fn align(&mut self, alignment: usize, _with: u8) {
        self.align_nop(alignment as u64, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iced_x86::{Decoder, DecoderOptions, Formatter, Instruction, IntelFormatter};

    fn disasm(base: u64, bytes: &[u8]) -> Vec<String> {
        let mut d = Decoder::with_ip(64, bytes, base, DecoderOptions::NONE);
        let mut f = IntelFormatter::new();
        let mut out = Vec::new();
        let mut ins = Instruction::default();
        while d.can_decode() {
            d.decode_out(&mut ins);
            assert!(!ins.is_invalid(), "invalid encoding in {bytes:02x?}");
            let mut s = String::new();
            f.format(&ins, &mut s);
            out.push(s);
        }
        out
    }

    #[test]
    fn encodings_decode_as_intended() {
        let mut e = Emitter::new(CachePc(0x1000));
        e.store_gs(200, 1);
        e.load_gs(13, 224);
        e.store_gs_imm(184, 1);
        e.jmp_gs(312);
        e.mov_imm64(9, 0x1122334455667788);
        e.push_imm32(0x401000);
        e.push_imm32(-2);
        e.lea_rsp(16);
        let t = e.pc();
        e.lea_rip(11, t);
        let s = e.jmp_rel32();
        e.patch(s, CachePc(0x1000));
        let s2 = e.jcc_rel32(0x4);
        e.patch(s2, CachePc(0x1000));
        let text = disasm(0x1000, &e.into_bytes());
        let want = [
            "mov gs:[0C8h],rcx",
            "mov r13,gs:[0E0h]",
            "mov qword ptr gs:[0B8h],1",
            "jmp qword ptr gs:[138h]",
            "mov r9,1122334455667788h",
            "push 401000h",
            "push 0FFFFFFFFFFFFFFFEh",
            "lea rsp,[rsp+10h]",
        ];
        for (got, want) in text.iter().zip(want.iter()) {
            assert_eq!(got, want);
        }
        assert!(text.iter().any(|l| l.starts_with("lea r11,")), "{text:?}");
        assert!(text.iter().any(|l| l == "jmp 0000000000001000h"), "{text:?}");
        assert!(text.iter().any(|l| l == "je 0000000000001000h"), "{text:?}");
    }

    #[test]
    fn pushed_literal_is_an_aligned_immediate_the_push_reads() {
        for pad in 0..8 {
            let base = 0x3000 + pad;
            let mut e = Emitter::new(CachePc(base));
            let s = e.push_rip_rel();
            e.jmp_gs(312);
            let at = e.literal64(0x7fff_1234_5678);
            e.patch(s, at);
            assert_eq!(at.get() % 8, 0);
            let bytes = e.into_bytes();
            let text = disasm(base, &bytes);
            assert!(text[0].starts_with("push qword ptr ["), "{text:?}");
            assert_eq!(text.last().map(String::as_str), Some("mov rax,7FFF12345678h"), "{text:?}");
            let push = iced_x86::Decoder::with_ip(64, &bytes, base, iced_x86::DecoderOptions::NONE).decode();
            assert_eq!(push.ip_rel_memory_address(), at.get());
            let off = (at.get() - base) as usize;
            assert_eq!(u64::from_le_bytes(bytes[off..off + 8].try_into().unwrap()), 0x7fff_1234_5678);
        }
    }

    #[test]
    fn rel32_fields_are_aligned() {
        for pad in 0..8 {
            let mut e = Emitter::new(CachePc(0x2000 + pad));
            let s = e.jmp_rel32();
            assert_eq!(e.slot_pc(s).get() % 4, 0);
            let s = e.jcc_rel32(5);
            assert_eq!(e.slot_pc(s).get() % 4, 0);
        }
    }

    #[test]
    fn padding_is_one_nop() {
        for n in 0..8 {
            let mut e = Emitter::new(CachePc(0x2000));
            e.nop(n);
            assert_eq!(e.len(), n);
            let text = disasm(0x2000, &e.into_bytes());
            assert_eq!(text.len(), usize::from(n > 0), "{n}: {text:?}");
            assert!(text.iter().all(|l| l.starts_with("nop") || l == "xchg ax,ax"), "{n}: {text:?}");
        }
    }
}
