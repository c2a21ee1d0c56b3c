//! The fixed prologue and epilogue, hand-encoded (no assembler needed at
//! run time; the unit tests check every encoding with iced-x86).

use super::layout::*;

/// A small byte assembler for the fixed sequences below. All memory operands
/// are `[r15 + disp32]` (r15 = DATA).
#[derive(Default)]
pub struct Bytes(pub Vec<u8>);

const R15_RM: u8 = 7; // r15 & 7, with REX.B / VEX.B / EVEX.B set

impl Bytes {
    fn b(&mut self, v: &[u8]) {
        self.0.extend_from_slice(v);
    }
    fn d32(&mut self, v: u64) {
        self.0.extend_from_slice(&(v as u32).to_le_bytes());
    }
    fn modrm_r15(&mut self, reg: u8, disp: u64) {
        self.0.push(0x80 | ((reg & 7) << 3) | R15_RM);
        self.d32(disp);
    }
    /// `mov r64, [r15 + disp]`
    pub fn load_gpr(&mut self, reg: u8, disp: u64) {
        self.b(&[0x49 | ((reg >> 3) << 2), 0x8B]);
        self.modrm_r15(reg, disp);
    }
    /// `mov [r15 + disp], r64`
    pub fn store_gpr(&mut self, reg: u8, disp: u64) {
        self.b(&[0x49 | ((reg >> 3) << 2), 0x89]);
        self.modrm_r15(reg, disp);
    }
    /// `mov qword [r15 + disp], 0`
    pub fn store_zero(&mut self, disp: u64) {
        self.b(&[0x49, 0xC7]);
        self.modrm_r15(0, disp);
        self.d32(0);
    }
    /// `mov r15, imm64`
    pub fn mov_r15_imm(&mut self, v: u64) {
        self.b(&[0x49, 0xBF]);
        self.b(&v.to_le_bytes());
    }
    /// `lea rsp, [r15 + disp]`
    pub fn lea_rsp(&mut self, disp: u64) {
        self.b(&[0x49, 0x8D]);
        self.modrm_r15(4, disp);
    }
    /// `fldcw [r15 + disp]`
    pub fn fldcw(&mut self, disp: u64) {
        self.b(&[0x41, 0xD9]);
        self.modrm_r15(5, disp);
    }
    /// `ldmxcsr [r15 + disp]`
    pub fn ldmxcsr(&mut self, disp: u64) {
        self.b(&[0x41, 0x0F, 0xAE]);
        self.modrm_r15(2, disp);
    }
    /// `fxsave64 [r15 + disp]`
    pub fn fxsave64(&mut self, disp: u64) {
        self.b(&[0x49, 0x0F, 0xAE]);
        self.modrm_r15(0, disp);
    }
    /// `push qword [r15 + disp]`
    pub fn push_mem(&mut self, disp: u64) {
        self.b(&[0x41, 0xFF]);
        self.modrm_r15(6, disp);
    }
    /// `movdqu xmm, [r15 + disp]` (store: `movdqu [r15 + disp], xmm`)
    pub fn movdqu(&mut self, x: u8, disp: u64, store: bool) {
        self.b(&[0xF3, 0x41 | ((x >> 3) << 2), 0x0F, if store { 0x7F } else { 0x6F }]);
        self.modrm_r15(x, disp);
    }
    /// `vmovdqu ymm, [r15 + disp]` (or the store)
    pub fn vmovdqu_ymm(&mut self, y: u8, disp: u64, store: bool) {
        let r_bar = ((!y >> 3) & 1) << 7;
        // C4 [R X B mmmmm=00001] [W=0 vvvv=1111 L=1 pp=10]
        self.b(&[0xC4, r_bar | 0x40 | 0x01, 0x7E, if store { 0x7F } else { 0x6F }]);
        self.modrm_r15(y, disp);
    }
    /// `vmovdqu64 zmm, [r15 + disp]` (or the store), disp32 (no compression)
    pub fn vmovdqu64_zmm(&mut self, z: u8, disp: u64, store: bool) {
        let r_bar = ((!z >> 3) & 1) << 7;
        let r2_bar = ((!z >> 4) & 1) << 4;
        // P0: R X B R' 0 0 m m (mm = 01: 0F); X=1 (no index), B=0 (r15)
        let p0 = r_bar | 0x40 | r2_bar | 0x01;
        // P1: W=1 vvvv=1111 1 pp=10 (F3)
        let p1 = 0xFE;
        // P2: z=0 L'L=10 b=0 V'=1 aaa=000
        let p2 = 0x48;
        self.b(&[0x62, p0, p1, p2, if store { 0x7F } else { 0x6F }]);
        self.modrm_r15(z, disp);
    }
    /// `kmovq k, [r15 + disp]` (or the store)
    pub fn kmovq(&mut self, k: u8, disp: u64, store: bool) {
        // C4 [R X B=0 mmmmm=00001] [W=1 vvvv=1111 L=0 pp=00]
        self.b(&[0xC4, 0xC0 | 0x01, 0xF8, if store { 0x91 } else { 0x90 }]);
        self.modrm_r15(k, disp);
    }
    pub fn pushfq(&mut self) {
        self.b(&[0x9C]);
    }
    pub fn popfq(&mut self) {
        self.b(&[0x9D]);
    }
    /// `jmp rel32` to `target`, this instruction being at `here`.
    pub fn jmp(&mut self, here: u64, target: u64) {
        let rel = target.wrapping_sub(here + 5) as i64 as i32;
        self.b(&[0xE9]);
        self.b(&rel.to_le_bytes());
    }
}

/// The prologue, placed at [`PROLOGUE`]; `vec_level` as in
/// [`super::Features::vector_level`].
pub fn prologue(vec_level: u8) -> Vec<u8> {
    let mut a = Bytes::default();
    a.mov_r15_imm(DATA);
    a.fldcw(INIT_FCW);
    a.ldmxcsr(INIT_MXCSR);
    match vec_level {
        0 => (0..16).for_each(|i| a.movdqu(i, INIT_VEC + VEC_SLOT * i as u64, false)),
        1 => (0..16).for_each(|i| a.vmovdqu_ymm(i, INIT_VEC + VEC_SLOT * i as u64, false)),
        _ => {
            (0..32).for_each(|i| a.vmovdqu64_zmm(i, INIT_VEC + VEC_SLOT * i as u64, false));
            (0..8).for_each(|k| a.kmovq(k, INIT_K + 8 * k as u64, false));
        }
    }
    a.lea_rsp(STACK_INIT);
    a.push_mem(INIT_FLAGS);
    a.popfq();
    for r in 0..16u8 {
        if r as usize != RSP && r as usize != R15 {
            a.load_gpr(r, INIT_GPR + 8 * r as u64);
        }
    }
    let here = PROLOGUE + a.0.len() as u64;
    a.jmp(here, SNIPPET);
    a.0
}

/// The epilogue, placed right after the snippet.
pub fn epilogue(vec_level: u8) -> Vec<u8> {
    let mut a = Bytes::default();
    for r in 0..16u8 {
        a.store_gpr(r, OUT_GPR + 8 * r as u64);
    }
    a.lea_rsp(EPI_STACK);
    a.pushfq();
    a.b(&[0x58]); // pop rax
    a.b(&[0x25]); // and eax, imm32
    a.d32(FLAGS_MASK);
    a.store_gpr(0, OUT_FLAGS);
    a.fxsave64(OUT_FX);
    a.store_zero(OUT_FX + 8); // FIP/FCS: the address of the last x87 instruction
    match vec_level {
        0 => {}
        1 => (0..16).for_each(|i| a.vmovdqu_ymm(i, OUT_VEC + VEC_SLOT * i as u64, true)),
        _ => {
            (0..32).for_each(|i| a.vmovdqu64_zmm(i, OUT_VEC + VEC_SLOT * i as u64, true));
            (0..8).for_each(|k| a.kmovq(k, OUT_K + 8 * k as u64, true));
        }
    }
    // write(1, DATA, DUMP_LEN)
    a.b(&[0xB8, 1, 0, 0, 0]); // mov eax, 1
    a.b(&[0xBF, 1, 0, 0, 0]); // mov edi, 1
    a.b(&[0x4C, 0x89, 0xFE]); // mov rsi, r15
    a.b(&[0xBA]); // mov edx, imm32
    a.d32(DUMP_LEN);
    a.b(&[0x0F, 0x05]); // syscall
    // exit_group(0)
    a.b(&[0xB8, 231, 0, 0, 0]); // mov eax, 231
    a.b(&[0x31, 0xFF]); // xor edi, edi
    a.b(&[0x0F, 0x05]); // syscall
    a.b(&[0x0F, 0x0B]); // ud2 (never reached)
    a.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use iced_x86::{Decoder, DecoderOptions, Formatter, IntelFormatter};

    fn dis(bytes: &[u8], ip: u64) -> Vec<String> {
        let mut d = Decoder::with_ip(64, bytes, ip, DecoderOptions::NONE);
        let mut f = IntelFormatter::new();
        let mut v = Vec::new();
        for i in d.iter() {
            assert!(!i.is_invalid(), "bad encoding at {:#x} in {bytes:02x?}", i.ip());
            let mut s = String::new();
            f.format(&i, &mut s);
            v.push(s);
        }
        v
    }

    #[test]
    fn prologue_and_epilogue_decode_as_intended() {
        for level in 0..3 {
            let p = dis(&prologue(level), PROLOGUE);
            let e = dis(&epilogue(level), SNIPPET);
            assert_eq!(p[0], "mov r15,600000h");
            assert_eq!(p[1], "fldcw [r15+208Ch]");
            assert_eq!(p[2], "ldmxcsr [r15+2088h]");
            assert_eq!(p.last().unwrap(), "jmp 0000000000402000h");
            assert!(p.contains(&"popfq".to_string()));
            assert!(p.contains(&"mov r14,[r15+2070h]".to_string()), "{p:?}");
            assert!(!p.iter().any(|l| l.starts_with("mov r15,[") || l.starts_with("mov rsp,[")));
            assert!(e.contains(&"mov [r15+3078h],r15".to_string()), "{e:?}");
            assert!(e.contains(&"mov [r15+3020h],rsp".to_string()), "{e:?}");
            assert!(e.contains(&"fxsave64 [r15+3100h]".to_string()), "{e:?}");
            assert!(e.contains(&"mov qword ptr [r15+3108h],0".to_string()), "{e:?}");
            assert!(e.contains(&"and eax,0CD5h".to_string()), "{e:?}");
            match level {
                0 => {
                    assert_eq!(p[3], "movdqu xmm0,[r15+2100h]");
                    assert!(p.contains(&"movdqu xmm15,[r15+24C0h]".to_string()), "{p:?}");
                }
                1 => {
                    assert_eq!(p[3], "vmovdqu ymm0,[r15+2100h]");
                    assert!(p.contains(&"vmovdqu ymm15,[r15+24C0h]".to_string()), "{p:?}");
                    assert!(e.contains(&"vmovdqu [r15+36C0h],ymm15".to_string()), "{e:?}");
                }
                _ => {
                    assert_eq!(p[3], "vmovdqu64 zmm0,[r15+2100h]");
                    assert!(p.contains(&"vmovdqu64 zmm31,[r15+28C0h]".to_string()), "{p:?}");
                    assert!(p.contains(&"kmovq k7,[r15+2938h]".to_string()), "{p:?}");
                    assert!(e.contains(&"vmovdqu64 [r15+3AC0h],zmm31".to_string()), "{e:?}");
                    assert!(e.contains(&"kmovq [r15+3B38h],k7".to_string()), "{e:?}");
                }
            }
        }
    }
}
