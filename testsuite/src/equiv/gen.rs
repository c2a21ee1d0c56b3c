//! Instruction-sequence generators for the equivalence test, one per
//! [`Class`].
//!
//! Compiled into `tests/equivalence.rs` with `#[path]` (it needs iced-x86,
//! a dev-dependency); see `mod.rs`. It expects sibling modules `crate::asm`.
//!
//! Most instructions come from iced-x86's table of encodings: the operand
//! shapes are read from each `Code`'s name (`Add_rm64_imm8`,
//! `VEX_Vpermd_ymm_ymm_ymmm256`, `EVEX_Vaddps_zmm_k1z_zmm_zmmm512b32_er`),
//! a class selects encodings by mnemonic (and encoding kind), and encodings
//! whose CPUID features this machine lacks are dropped. Control flow, stack,
//! string and loop code is built by hand ("items" below).
//!
//! A case is a list of *items*, each `(kind, seed)`: `kind` picks what to
//! generate within the class, `seed` drives every other choice. Every item
//! is self-contained (balanced stack, local labels, its own guards), so
//! proptest can shrink a case by dropping items.
//!
//! Invariants (see `mod.rs`): r15 (data base) and rsp are never written
//! except by balanced stack items; memory operands only address the data
//! area; the snippet always runs to its end.

#![allow(dead_code)]

use std::sync::{Mutex, OnceLock};

use iced_x86::{
    Code, CpuidFeature, EncodingKind, Instruction, InstructionInfoFactory, MemoryOperand, Mnemonic, OpAccess, Register,
    RepPrefixKind, RoundingControl,
};
use testsuite::equiv::layout::*;
use testsuite::equiv::state::Rng;
use testsuite::equiv::{Class, Features};

use crate::asm::{Asm, Label, Opnd, build, encoded_len};

// ---------------------------------------------------------------------------
// Operand shapes parsed from iced `Code` names.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vk {
    X,
    Y,
    Z,
    Mm,
    K,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tok {
    /// General register of this many bytes.
    Gpr(u8),
    /// Register (bytes) or memory (bytes).
    GprMem(u8, u16),
    /// Memory only (bytes; 0 = lea's address-only operand).
    Mem(u16),
    /// Immediate of this many bits.
    Imm(u8),
    /// The constant 1 of `shl r/m, 1`.
    One,
    Vec(Vk),
    /// Vector register or memory (bytes), broadcast element bytes (0 = none).
    VecMem(Vk, u16, u8),
    KMem(u16),
    Fixed(Register),
    Sti,
    /// VSIB memory operand: index register kind and index element bytes.
    Vsib(Vk, u8),
}

#[derive(Clone, Debug)]
pub struct Form {
    pub code: Code,
    pub ops: Vec<Tok>,
    /// 0 none, 1 `{k}`, 2 `{k}{z}` allowed.
    pub mask: u8,
    pub er: bool,
    pub sae: bool,
    pub enc: EncodingKind,
    pub x87: bool,
}

impl Form {
    pub fn mnemonic(&self) -> Mnemonic {
        self.code.mnemonic()
    }
    fn has_mem(&self) -> bool {
        self.ops
            .iter()
            .any(|t| matches!(t, Tok::GprMem(..) | Tok::Mem(1..) | Tok::VecMem(..) | Tok::KMem(_) | Tok::Vsib(..)))
    }
}

fn parse_vecmem(t: &str) -> Option<Tok> {
    let (vk, rest) = if let Some(r) = t.strip_prefix("xmmm") {
        (Vk::X, r)
    } else if let Some(r) = t.strip_prefix("ymmm") {
        (Vk::Y, r)
    } else if let Some(r) = t.strip_prefix("zmmm") {
        (Vk::Z, r)
    } else if let Some(r) = t.strip_prefix("mmm") {
        (Vk::Mm, r)
    } else {
        return None;
    };
    let (bits, bc) = match rest.split_once('b') {
        Some((a, b)) => (a.parse::<u16>().ok()?, b.parse::<u8>().ok()?),
        None => (rest.parse::<u16>().ok()?, 0),
    };
    Some(Tok::VecMem(vk, bits / 8, bc / 8))
}

/// Parses the operand shapes out of a `Code` name; None for shapes the
/// generator does not handle.
pub fn parse_form(code: Code) -> Option<Form> {
    let name = format!("{code:?}");
    let mut parts = name.split('_').peekable();
    let first = parts.next()?;
    if matches!(first, "VEX" | "EVEX" | "XOP" | "D3NOW" | "MVEX") {
        parts.next()?;
    }
    let mut f = Form { code, ops: Vec::new(), mask: 0, er: false, sae: false, enc: code.encoding(), x87: false };
    for t in parts {
        let tok = match t {
            "r8" => Tok::Gpr(1),
            "r16" => Tok::Gpr(2),
            "r32" => Tok::Gpr(4),
            "r64" => Tok::Gpr(8),
            "rm8" => Tok::GprMem(1, 1),
            "rm16" => Tok::GprMem(2, 2),
            "rm32" => Tok::GprMem(4, 4),
            "rm64" => Tok::GprMem(8, 8),
            "r32m8" => Tok::GprMem(4, 1),
            "r32m16" => Tok::GprMem(4, 2),
            "r64m8" => Tok::GprMem(8, 1),
            "r64m16" => Tok::GprMem(8, 2),
            "r64m32" => Tok::GprMem(8, 4),
            "m" => Tok::Mem(0),
            "m8" => Tok::Mem(1),
            "m16" | "m16int" | "m2byte" => Tok::Mem(2),
            "m32" | "m32fp" | "m32int" => Tok::Mem(4),
            "m64" | "m64fp" | "m64int" => Tok::Mem(8),
            "m80" | "m80fp" | "m80bcd" => Tok::Mem(10),
            "m128" => Tok::Mem(16),
            "m256" => Tok::Mem(32),
            "m512" => Tok::Mem(64),
            "imm8" => Tok::Imm(8),
            "imm16" => Tok::Imm(16),
            "imm32" => Tok::Imm(32),
            "imm64" => Tok::Imm(64),
            "1" => Tok::One,
            "xmm" => Tok::Vec(Vk::X),
            "ymm" => Tok::Vec(Vk::Y),
            "zmm" => Tok::Vec(Vk::Z),
            "mm" => Tok::Vec(Vk::Mm),
            "kr" => Tok::Vec(Vk::K),
            "km8" => Tok::KMem(1),
            "km16" => Tok::KMem(2),
            "km32" => Tok::KMem(4),
            "km64" => Tok::KMem(8),
            "k1" => {
                f.mask = 1;
                continue;
            }
            "k1z" => {
                f.mask = 2;
                continue;
            }
            "er" => {
                f.er = true;
                continue;
            }
            "sae" => {
                f.sae = true;
                continue;
            }
            "64" => continue,
            "AL" => Tok::Fixed(Register::AL),
            "AX" => Tok::Fixed(Register::AX),
            "EAX" => Tok::Fixed(Register::EAX),
            "RAX" => Tok::Fixed(Register::RAX),
            "CL" => Tok::Fixed(Register::CL),
            "DX" => Tok::Fixed(Register::DX),
            "st0" => Tok::Fixed(Register::ST0),
            "sti" => Tok::Sti,
            "vm32x" => Tok::Vsib(Vk::X, 4),
            "vm32y" => Tok::Vsib(Vk::Y, 4),
            "vm64x" => Tok::Vsib(Vk::X, 8),
            "vm64y" => Tok::Vsib(Vk::Y, 8),
            t => parse_vecmem(t)?,
        };
        f.ops.push(tok);
    }
    if f.enc == EncodingKind::EVEX && f.ops.iter().any(|t| matches!(t, Tok::Vsib(..))) {
        return None; // EVEX gathers need a k mask that the generator does not track
    }
    Some(f)
}

/// Whether this machine has CPUID feature `c`.
pub fn cpu_has(f: &Features, c: CpuidFeature) -> bool {
    use CpuidFeature as C;
    match c {
        C::INTEL8086
        | C::INTEL186
        | C::INTEL286
        | C::INTEL386
        | C::INTEL486
        | C::X64
        | C::CMOV
        | C::CX8
        | C::FPU
        | C::FPU287
        | C::FPU387
        | C::FXSR
        | C::MMX
        | C::SSE
        | C::SSE2
        | C::PAUSE
        | C::MULTIBYTENOP
        | C::CMPXCHG16B => true,
        C::SSE3 => f.sse3,
        C::SSSE3 => f.ssse3,
        C::SSE4_1 => f.sse41,
        C::SSE4_2 => f.sse42,
        C::SSE4A => f.sse4a,
        C::POPCNT => f.popcnt,
        C::LZCNT => f.lzcnt,
        C::BMI1 => f.bmi1,
        C::BMI2 => f.bmi2,
        C::ADX => f.adx,
        C::MOVBE => f.movbe,
        C::AVX => f.avx,
        C::AVX2 => f.avx2,
        C::FMA => f.fma,
        C::F16C => f.f16c,
        C::AES => f.aes,
        C::PCLMULQDQ => f.pclmulqdq,
        C::SHA => f.sha,
        C::GFNI => f.gfni,
        C::VAES => f.vaes,
        C::VPCLMULQDQ => f.vpclmulqdq,
        C::AVX512F => f.avx512f,
        C::AVX512BW => f.avx512bw,
        C::AVX512DQ => f.avx512dq,
        C::AVX512VL => f.avx512vl,
        C::AVX512CD => f.avx512cd,
        C::FSGSBASE => f.fsgsbase,
        _ => false,
    }
}

const ALU: &[&str] = &[
    "Add",
    "Or",
    "Adc",
    "Sbb",
    "And",
    "Sub",
    "Xor",
    "Cmp",
    "Test",
    "Inc",
    "Dec",
    "Neg",
    "Not",
    "Mov",
    "Movzx",
    "Movsx",
    "Movsxd",
    "Xchg",
    "Xadd",
    "Cmpxchg",
    "Cmpxchg8b",
    "Cmpxchg16b",
    "Bswap",
    "Cmova",
    "Cmovae",
    "Cmovb",
    "Cmovbe",
    "Cmove",
    "Cmovg",
    "Cmovge",
    "Cmovl",
    "Cmovle",
    "Cmovne",
    "Cmovno",
    "Cmovnp",
    "Cmovns",
    "Cmovo",
    "Cmovp",
    "Cmovs",
    "Seta",
    "Setae",
    "Setb",
    "Setbe",
    "Sete",
    "Setg",
    "Setge",
    "Setl",
    "Setle",
    "Setne",
    "Setno",
    "Setnp",
    "Setns",
    "Seto",
    "Setp",
    "Sets",
    "Lahf",
    "Sahf",
    "Clc",
    "Stc",
    "Cmc",
    "Cbw",
    "Cwde",
    "Cdqe",
    "Cwd",
    "Cdq",
    "Cqo",
    "Nop",
];
const SHIFT: &[&str] = &["Shl", "Shr", "Sar", "Rol", "Ror", "Rcl", "Rcr", "Shld", "Shrd"];
const MULDIV: &[&str] = &["Mul", "Imul", "Div", "Idiv"];
const BITS: &[&str] = &[
    "Bt", "Bts", "Btr", "Btc", "Bsf", "Bsr", "Lzcnt", "Tzcnt", "Popcnt", "Andn", "Bextr", "Blsi", "Blsmsk", "Blsr",
    "Bzhi", "Pdep", "Pext", "Sarx", "Shlx", "Shrx", "Rorx", "Mulx", "Adcx", "Adox", "Movbe", "Crc32",
];
const X87: &[&str] = &[
    "Fld", "Fst", "Fstp", "Fild", "Fist", "Fistp", "Fisttp", "Fbld", "Fbstp", "Fxch", "Fadd", "Faddp", "Fiadd", "Fsub",
    "Fsubp", "Fisub", "Fsubr", "Fsubrp", "Fisubr", "Fmul", "Fmulp", "Fimul", "Fdiv", "Fdivp", "Fidiv", "Fdivr",
    "Fdivrp", "Fidivr", "Fprem", "Fprem1", "Fabs", "Fchs", "Frndint", "Fscale", "Fsqrt", "Fxtract", "Fcom", "Fcomp",
    "Fcompp", "Fucom", "Fucomp", "Fucompp", "Ficom", "Ficomp", "Fcomi", "Fcomip", "Fucomi", "Fucomip", "Ftst", "Fxam",
    "Fsin", "Fcos", "Fsincos", "Fptan", "Fpatan", "F2xm1", "Fyl2x", "Fyl2xp1", "Fld1", "Fldz", "Fldpi", "Fldl2e",
    "Fldl2t", "Fldlg2", "Fldln2", "Fcmovb", "Fcmove", "Fcmovbe", "Fcmovu", "Fcmovnb", "Fcmovne", "Fcmovnbe", "Fcmovnu",
    "Fnstsw", "Fnstcw", "Fnclex", "Fdecstp", "Fincstp", "Ffree", "Ffreep", "Fnop", "Fninit", "Wait",
];
/// Vector mnemonics never generated: implicit memory through rdi, or the
/// MXCSR loads (generated by hand with masked exceptions).
const VEC_DENY: &[&str] = &["Maskmovq", "Maskmovdqu", "Vmaskmovdqu", "Ldmxcsr", "Vldmxcsr"];
const LOCKABLE: &[&str] = &[
    "Add",
    "Or",
    "Adc",
    "Sbb",
    "And",
    "Sub",
    "Xor",
    "Inc",
    "Dec",
    "Neg",
    "Not",
    "Xadd",
    "Cmpxchg",
    "Cmpxchg8b",
    "Cmpxchg16b",
    "Bts",
    "Btr",
    "Btc",
];

/// All usable forms, grouped.
pub struct Forms {
    pub alu: Vec<Form>,
    pub shift: Vec<Form>,
    pub muldiv: Vec<Form>,
    pub bits: Vec<Form>,
    pub x87: Vec<Form>,
    pub sse: Vec<Form>,
    pub avx: Vec<Form>,
    pub avx512: Vec<Form>,
    pub lea: Vec<Form>,
    /// alu + shift + the flag-neutral and BMI bit ops: for loop and jcc bodies.
    pub simple: Vec<Form>,
    /// Forms with a memory operand, for the rip-relative class.
    pub with_mem: Vec<Form>,
}

fn mnem(m: Mnemonic) -> String {
    format!("{m:?}")
}

impl Forms {
    pub fn new(feats: &Features) -> Forms {
        let mut fs = Forms {
            alu: vec![],
            shift: vec![],
            muldiv: vec![],
            bits: vec![],
            x87: vec![],
            sse: vec![],
            avx: vec![],
            avx512: vec![],
            lea: vec![],
            simple: vec![],
            with_mem: vec![],
        };
        for code in Code::values() {
            if code == Code::INVALID || !code.cpuid_features().iter().all(|&c| cpu_has(feats, c)) {
                continue;
            }
            let Some(mut f) = parse_form(code) else {
                continue;
            };
            let m = mnem(code.mnemonic());
            let m = m.as_str();
            let vec_tok =
                f.ops.iter().any(|t| matches!(t, Tok::Vec(_) | Tok::VecMem(..) | Tok::Vsib(..) | Tok::KMem(_)));
            let legacy = f.enc == EncodingKind::Legacy;
            if VEC_DENY.contains(&m) {
                continue;
            }
            if legacy && ALU.contains(&m) && !vec_tok {
                fs.alu.push(f.clone());
                fs.simple.push(f);
            } else if legacy && SHIFT.contains(&m) {
                fs.shift.push(f.clone());
                fs.simple.push(f);
            } else if legacy && MULDIV.contains(&m) {
                fs.muldiv.push(f);
            } else if BITS.contains(&m) && !vec_tok {
                fs.bits.push(f.clone());
                fs.simple.push(f);
            } else if legacy && X87.contains(&m) {
                f.x87 = true;
                fs.x87.push(f);
            } else if legacy && m == "Lea" {
                fs.lea.push(f);
            } else if legacy && (vec_tok || m == "Emms") {
                fs.sse.push(f);
            } else if f.enc == EncodingKind::VEX && (vec_tok || m == "Vzeroupper" || m == "Vzeroall") {
                fs.avx.push(f);
            } else if f.enc == EncodingKind::EVEX {
                fs.avx512.push(f);
            }
        }
        let mut with_mem = Vec::new();
        for group in [&fs.alu, &fs.shift, &fs.bits, &fs.muldiv, &fs.x87, &fs.sse, &fs.avx, &fs.avx512] {
            with_mem.extend(
                group.iter().filter(|f| f.has_mem() && !f.ops.iter().any(|t| matches!(t, Tok::Vsib(..)))).cloned(),
            );
        }
        fs.with_mem = with_mem;
        fs
    }

    /// The forms for `feats` (computed once per distinct feature set: the
    /// validity check generates for a CPU other than this one in the same
    /// process as the tests that generate for this one).
    pub fn get(feats: &Features) -> &'static Forms {
        static F: OnceLock<Mutex<Vec<(Features, &'static Forms)>>> = OnceLock::new();
        let mut cache = F.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, f)) = cache.iter().find(|(k, _)| k == feats) {
            return f;
        }
        let f: &'static Forms = Box::leak(Box::new(Forms::new(feats)));
        cache.push((feats.clone(), f));
        f
    }

    pub fn summary(&self) -> String {
        format!(
            "alu {} shift {} muldiv {} bits {} x87 {} sse {} avx {} avx512 {} lea {} with_mem {}",
            self.alu.len(),
            self.shift.len(),
            self.muldiv.len(),
            self.bits.len(),
            self.x87.len(),
            self.sse.len(),
            self.avx.len(),
            self.avx512.len(),
            self.lea.len(),
            self.with_mem.len()
        )
    }
}

// ---------------------------------------------------------------------------
// Registers.

const GPR64: [Register; 14] = [
    Register::RAX,
    Register::RCX,
    Register::RDX,
    Register::RBX,
    Register::RBP,
    Register::RSI,
    Register::RDI,
    Register::R8,
    Register::R9,
    Register::R10,
    Register::R11,
    Register::R12,
    Register::R13,
    Register::R14,
];

fn regs_where(p: fn(Register) -> bool) -> Vec<Register> {
    let mut v: Vec<Register> = Register::values().filter(|r| p(*r)).collect();
    v.sort_by_key(|r| r.number());
    v
}

struct Regs {
    gpr8: Vec<Register>,
    gpr16: Vec<Register>,
    gpr32: Vec<Register>,
    xmm: Vec<Register>,
    ymm: Vec<Register>,
    zmm: Vec<Register>,
    mm: Vec<Register>,
    k: Vec<Register>,
    st: Vec<Register>,
}

fn regs() -> &'static Regs {
    static R: OnceLock<Regs> = OnceLock::new();
    R.get_or_init(|| Regs {
        gpr8: regs_where(|r| r.is_gpr8() && !matches!(r, Register::SPL | Register::R15L)),
        gpr16: regs_where(|r| r.is_gpr16() && !matches!(r, Register::SP | Register::R15W)),
        gpr32: regs_where(|r| r.is_gpr32() && !matches!(r, Register::ESP | Register::R15D)),
        xmm: regs_where(Register::is_xmm),
        ymm: regs_where(Register::is_ymm),
        zmm: regs_where(Register::is_zmm),
        mm: regs_where(Register::is_mm),
        k: regs_where(Register::is_k),
        st: regs_where(Register::is_st),
    })
}

/// The register of `size` bytes whose full register is `full`.
fn sized(full: Register, size: u8) -> Register {
    let r = regs();
    let pool: &[Register] = match size {
        1 => &r.gpr8,
        2 => &r.gpr16,
        4 => &r.gpr32,
        _ => return full,
    };
    pool.iter()
        .copied()
        .find(|x| x.full_register() == full && !matches!(*x, Register::AH | Register::CH | Register::DH | Register::BH))
        .unwrap_or(full)
}

// ---------------------------------------------------------------------------
// The generator.

/// One weighted generator of a class: emits an item, false if it could not.
type Generator<'g> = fn(&mut Gen<'g>) -> bool;

/// What a case needs to generate its snippet.
pub struct Gen<'a> {
    feats: &'a Features,
    forms: &'a Forms,
    r: Rng,
    pub asm: Asm,
    /// Full registers the current code must not write (beyond rsp and r15).
    forbid: Vec<Register>,
    info: InstructionInfoFactory,
}

/// Generates the snippet of a case (encoded for [`SNIPPET`]).
pub fn generate(class: Class, items: &[(u16, u64)], feats: &Features) -> Vec<u8> {
    generate_listed(class, items, feats).0
}

/// [`generate`], also returning each instruction of the snippet with its
/// address, as it was handed to the encoder (for the validity check of the
/// encodings, which does not need a CPU that runs them).
pub fn generate_listed(class: Class, items: &[(u16, u64)], feats: &Features) -> (Vec<u8>, Vec<(u64, Instruction)>) {
    let forms = Forms::get(feats);
    let mut g =
        Gen { feats, forms, r: Rng::new(0), asm: Asm::new(), forbid: Vec::new(), info: InstructionInfoFactory::new() };
    for &(kind, seed) in items {
        g.r = Rng::new(seed ^ ((kind as u64) << 48) ^ ((class as u64) << 56));
        let mark = g.asm.len_nodes();
        let before = g.asm.clone();
        if !g.item(class, kind) {
            g.asm.truncate(mark);
            continue;
        }
        // An item that cannot be assembled (should not happen) is dropped.
        if g.asm.assemble(SNIPPET).is_err() {
            g.asm = before;
        }
    }
    g.asm.assemble_listed(SNIPPET).unwrap_or_default()
}

impl Gen<'_> {
    fn chance(&mut self, num: u64, den: u64) -> bool {
        self.r.chance(num, den)
    }

    /// A random general register (full 64-bit) not forbidden.
    fn gpr_full(&mut self) -> Register {
        loop {
            let r = *self.r.pick(&GPR64);
            if !self.forbid.contains(&r) {
                return r;
            }
        }
    }

    fn gpr(&mut self, size: u8) -> Register {
        let rg = regs();
        let pool: &[Register] = match size {
            1 => &rg.gpr8,
            2 => &rg.gpr16,
            4 => &rg.gpr32,
            _ => &GPR64,
        };
        loop {
            let r = *self.r.pick(pool);
            if !self.forbid.contains(&r.full_register()) {
                return r;
            }
        }
    }

    fn vreg(&mut self, k: Vk, evex: bool) -> Register {
        let rg = regs();
        let hi = if evex && self.feats.avx512f { 32 } else { 16 };
        match k {
            Vk::X => rg.xmm[self.r.below(hi) as usize],
            Vk::Y => rg.ymm[self.r.below(hi) as usize],
            Vk::Z => rg.zmm[self.r.below(hi) as usize],
            Vk::Mm => rg.mm[self.r.below(8) as usize],
            Vk::K => rg.k[self.r.below(8) as usize],
        }
    }

    fn imm(&mut self, bits: u8) -> i64 {
        let v: i64 = match self.r.below(10) {
            0..=3 => self.r.below(17) as i64 - 8,
            4 | 5 => {
                *self.r.pick(&[0x7F, -0x80, -1, 0xFF, 31, 32, 63, 64, 0x7FFF, -0x8000, 0x7FFF_FFFF, i32::MIN as i64])
            }
            _ => self.r.next_u64() as i64,
        };
        match bits {
            8 => v as i8 as i64,
            16 => v as i16 as i64,
            32 => v as i32 as i64,
            _ => v,
        }
    }

    /// A displacement in `[lo, hi - size)` aligned to `align`.
    fn disp_in(&mut self, lo: u64, hi: u64, size: u64, align: u64) -> u64 {
        let align = align.max(1);
        let span = hi.saturating_sub(lo + size) / align;
        lo + self.r.below(span + 1) * align
    }

    /// A memory operand of `size` bytes in scratch memory. `idx_ok`: the
    /// `[r15 + idx*s + d]` form may be used (a guard is pushed to `guards`).
    fn mem(
        &mut self,
        size: u16,
        align: u64,
        idx_ok: bool,
        force_rip: bool,
        margin: u64,
        guards: &mut Vec<Instruction>,
    ) -> MemoryOperand {
        let size = size as u64;
        let mode = if force_rip { 9 } else { self.r.below(20) };
        match mode {
            0..=10 => {
                let d = self.disp_in(0, TABLES - margin, size, align);
                MemoryOperand::with_base_displ(Register::R15, d as i64)
            }
            11..=13 if idx_ok && align <= 1 => {
                let idx = self.gpr_full();
                let scale = *self.r.pick(&[1u32, 2, 4, 8]);
                let d = self.disp_in(0, TABLES - margin - 255 * scale as u64, size, 1);
                if let Ok(g) = Instruction::with2(Code::Movzx_r32_rm8, sized(idx, 4), sized(idx, 1)) {
                    guards.push(g);
                }
                MemoryOperand::new(
                    Register::R15,
                    idx,
                    scale,
                    d as i64,
                    // iced's displacement size: 1 = disp8 if it fits, else
                    // the address size (8 here: 4 is refused for 64-bit
                    // addressing, which silently dropped these forms).
                    1,
                    false,
                    Register::None,
                )
            }
            14 => {
                let d = self.disp_in(0, TABLES - margin, size, align);
                MemoryOperand::with_base_displ(Register::R15D, d as i64)
            }
            _ => {
                let d = self.disp_in(0, TABLES - margin, size, align);
                MemoryOperand::with_base_displ(Register::RIP, (DATA + d) as i64)
            }
        }
    }

    /// x87 memory: loads come from the tables of interesting values.
    fn fp_mem(&mut self, size: u16, force_rip: bool) -> MemoryOperand {
        let d = match size {
            10 => FP_F80 + 16 * self.r.below((FP_END - FP_F80) / 16),
            8 => FP_F64 + 8 * self.r.below((FP_F32 - FP_F64) / 8),
            4 => FP_F32 + 4 * self.r.below((FP_F80 - FP_F32) / 4),
            _ => FP_END + 2 * self.r.below(0x100),
        };
        let base = if force_rip { Register::RIP } else { Register::R15 };
        let disp = if force_rip { DATA + d } else { d };
        MemoryOperand::with_base_displ(base, disp as i64)
    }

    /// Whether `ins` writes a forbidden register or touches memory other
    /// than through r15, rip or a VSIB index.
    fn unsafe_ins(&mut self, ins: &Instruction) -> bool {
        let info = self.info.info(ins);
        for u in info.used_registers() {
            let full = u.register().full_register();
            let writes = matches!(
                u.access(),
                OpAccess::Write | OpAccess::CondWrite | OpAccess::ReadWrite | OpAccess::ReadCondWrite
            );
            if writes && (full == Register::RSP || full == Register::R15 || self.forbid.contains(&full)) {
                return true;
            }
            if writes && u.register().is_segment_register() {
                return true;
            }
        }
        for m in info.used_memory() {
            let ok_base = matches!(m.base(), Register::R15 | Register::R15D | Register::RIP | Register::None);
            if !ok_base || m.segment() == Register::GS {
                return true;
            }
        }
        false
    }

    fn try_emit(&mut self, guards: &[Instruction], ins: Instruction) -> bool {
        if encoded_len(&ins, SNIPPET).is_err() || self.unsafe_ins(&ins) {
            return false;
        }
        for g in guards {
            if encoded_len(g, SNIPPET).is_err() || self.unsafe_ins(g) {
                return false;
            }
        }
        for g in guards {
            self.asm.ins(*g);
        }
        self.asm.ins(ins);
        true
    }

    /// One random instruction from `forms`; `force_rip` makes its memory
    /// operand rip-relative (and requires one).
    fn auto(&mut self, forms: &[Form], force_rip: bool) -> bool {
        if forms.is_empty() {
            return false;
        }
        for _ in 0..24 {
            let f = self.r.pick(forms).clone();
            if force_rip && !f.has_mem() {
                continue;
            }
            if let Some((guards, ins)) = self.fill(&f, force_rip)
                && self.try_emit(&guards, ins)
            {
                return true;
            }
        }
        false
    }

    fn fill(&mut self, f: &Form, force_rip: bool) -> Option<(Vec<Instruction>, Instruction)> {
        let m = mnem(f.mnemonic());
        let lockable = LOCKABLE.contains(&m.as_str()) || m == "Xchg";
        let evex = f.enc == EncodingKind::EVEX;
        let vector = f.enc != EncodingKind::Legacy || f.ops.iter().any(|t| matches!(t, Tok::Vec(_) | Tok::VecMem(..)));
        let is_bt_reg = matches!(m.as_str(), "Bt" | "Bts" | "Btr" | "Btc") && matches!(f.ops.get(1), Some(Tok::Gpr(_)));
        let mut guards = Vec::new();
        let mut ops = Vec::new();
        let mut mem_used = false;
        let mut bcst = false;
        let mem_pct = if force_rip { 100 } else { 35 };
        for (i, t) in f.ops.iter().enumerate() {
            let op = match *t {
                Tok::Gpr(s) => Opnd::R(self.gpr(s)),
                Tok::GprMem(rs, ms) => {
                    if !mem_used && self.r.below(100) < mem_pct {
                        mem_used = true;
                        let align = if lockable { ms as u64 } else { 1 };
                        let margin = if is_bt_reg && i == 0 { 40 } else { 0 };
                        Opnd::M(self.mem(ms, align, !force_rip, force_rip, margin, &mut guards))
                    } else {
                        Opnd::R(self.gpr(rs))
                    }
                }
                Tok::Mem(0) => Opnd::M(self.lea_mem()),
                Tok::Mem(s) => {
                    mem_used = true;
                    if f.x87 {
                        Opnd::M(self.fp_mem(s, force_rip))
                    } else {
                        let align = if vector || s >= 16 {
                            (s as u64).min(64)
                        } else if lockable {
                            s as u64
                        } else {
                            1
                        };
                        Opnd::M(self.mem(s, align, !vector && !force_rip, force_rip, 0, &mut guards))
                    }
                }
                Tok::Imm(b) => Opnd::I(self.imm(b)),
                Tok::One => Opnd::I(1),
                Tok::Vec(k) => Opnd::R(self.vreg(k, evex)),
                Tok::VecMem(k, ms, bc) => {
                    if !mem_used && self.r.below(100) < mem_pct {
                        mem_used = true;
                        // EVEX.b on a memory operand is a broadcast: only on
                        // the source operands of forms that have one
                        // (`zmmm512b32`), never on a destination.
                        let size = if bc > 0 && evex && i > 0 && self.chance(1, 3) {
                            bcst = true;
                            bc as u16
                        } else {
                            ms
                        };
                        Opnd::M(self.mem(size, (size as u64).min(64), false, force_rip, 0, &mut guards))
                    } else {
                        Opnd::R(self.vreg(k, evex))
                    }
                }
                Tok::KMem(ms) => {
                    if !mem_used && self.r.below(100) < mem_pct {
                        mem_used = true;
                        Opnd::M(self.mem(ms, ms as u64, false, force_rip, 0, &mut guards))
                    } else {
                        Opnd::R(self.vreg(Vk::K, true))
                    }
                }
                Tok::Fixed(r) => Opnd::R(r),
                Tok::Sti => Opnd::R(regs().st[self.r.below(8) as usize]),
                Tok::Vsib(k, elem) => {
                    mem_used = true;
                    let idx = self.vreg(k, false);
                    let (code, sh) = match (k, elem) {
                        (Vk::Y, 4) => (Code::VEX_Vpsrld_ymm_ymm_imm8, 26),
                        (Vk::Y, _) => (Code::VEX_Vpsrlq_ymm_ymm_imm8, 58),
                        (_, 4) => (Code::VEX_Vpsrld_xmm_xmm_imm8, 26),
                        _ => (Code::VEX_Vpsrlq_xmm_xmm_imm8, 58),
                    };
                    guards.push(Instruction::with3(code, idx, idx, sh).ok()?);
                    let scale = *self.r.pick(&[1u32, 2, 4, 8]);
                    let d = self.disp_in(0, TABLES - 64 * 8, 8, 8);
                    Opnd::M(MemoryOperand::new(Register::R15, idx, scale, d as i64, 1, false, Register::None))
                }
            };
            ops.push(op);
        }
        if force_rip && !mem_used {
            return None;
        }
        // Gathers: destination, index and mask must be distinct registers.
        if f.ops.iter().any(|t| matches!(t, Tok::Vsib(..))) {
            let mut seen = Vec::new();
            for o in &ops {
                let r = match o {
                    Opnd::R(r) => *r,
                    Opnd::M(m) => m.index,
                    Opnd::I(_) => continue,
                };
                let n = r.number();
                if seen.contains(&n) {
                    return None;
                }
                seen.push(n);
            }
        }
        let mut ins = build(f.code, &ops).ok()?;
        if bcst {
            ins.set_is_broadcast(true);
        }
        // EVEX masking, by the SDM's rules (Vol. 2, 2.7 and the exception
        // classes), each of which is otherwise a #UD:
        // - an opmask only on forms that take one (`k1`/`k1z`), and never
        //   k0, which as EVEX.aaa = 000 means "no mask" (the forms that
        //   require a mask, the EVEX gathers and scatters, are not generated);
        // - zeroing-masking only on forms that allow it (`k1z`: not the
        //   compares into an opmask, `kr_k1`, nor the masked scalar stores),
        //   only with a mask, and only with a register destination: with a
        //   memory destination (masked stores, vcompress, vpmov* down-converts,
        //   vextract*, vcvtps2ph) EVEX.z = 1 is #UD.
        let mem_dest = matches!(ops.first(), Some(Opnd::M(_)));
        if f.mask > 0 && self.chance(1, 2) {
            let k = regs().k[1 + self.r.below(7) as usize];
            ins.set_op_mask(k);
            if f.mask == 2 && self.chance(1, 2) && !mem_dest {
                ins.set_zeroing_masking(true);
            }
        }
        // Embedded rounding ({er}, which implies SAE and takes EVEX.L'L as the
        // rounding mode: vector length 512 or scalar) and SAE alone: EVEX.b
        // with register operands only, and only on forms named `_er` /
        // `_sae`; with a memory operand EVEX.b would mean broadcast.
        if !mem_used && f.er && self.chance(1, 3) {
            ins.set_rounding_control(*self.r.pick(&[
                RoundingControl::RoundToNearest,
                RoundingControl::RoundDown,
                RoundingControl::RoundUp,
                RoundingControl::RoundTowardZero,
            ]));
        } else if !mem_used && f.sae && self.chance(1, 3) {
            ins.set_suppress_all_exceptions(true);
        }
        if lockable && m != "Xchg" && mem_used && matches!(ops.first(), Some(Opnd::M(_))) && self.chance(1, 4) {
            ins.set_has_lock_prefix(true);
        }
        // Guards that make division and bit-offset forms stay in bounds.
        if matches!(m.as_str(), "Div" | "Idiv") && self.chance(17, 20) {
            let size = match ops[0] {
                Opnd::R(r) => r.size() as u8,
                _ => match f.ops[0] {
                    Tok::GprMem(_, ms) => ms as u8,
                    _ => 8,
                },
            };
            if let Opnd::R(r) = ops[0]
                && matches!(r.full_register(), Register::RAX | Register::RDX)
            {
                return None;
            }
            let signed = m == "Idiv";
            let ext = match (size, signed) {
                (1, false) => Instruction::with2(Code::Movzx_r16_rm8, Register::AX, Register::AL).ok()?,
                (1, true) => Instruction::with(Code::Cbw),
                (2, true) => Instruction::with(Code::Cwd),
                (4, true) => Instruction::with(Code::Cdq),
                (8, true) => Instruction::with(Code::Cqo),
                _ => Instruction::with2(Code::Xor_r32_rm32, Register::EDX, Register::EDX).ok()?,
            };
            guards.push(ext);
            let nz = match ops[0] {
                Opnd::R(r) => {
                    let code = match size {
                        1 => Code::Or_rm8_imm8,
                        2 => Code::Or_rm16_imm8,
                        4 => Code::Or_rm32_imm8,
                        _ => Code::Or_rm64_imm8,
                    };
                    Instruction::with2(code, r, 1).ok()?
                }
                Opnd::M(mo) => Instruction::with2(Code::Or_rm8_imm8, mo, 1).ok()?,
                Opnd::I(_) => return None,
            };
            guards.push(nz);
        }
        if is_bt_reg
            && matches!(ops[0], Opnd::M(_))
            && let Opnd::R(r) = ops[1]
        {
            let full = r.full_register();
            guards.push(Instruction::with2(Code::Movzx_r32_rm8, sized(full, 4), sized(full, 1)).ok()?);
        }
        Some((guards, ins))
    }

    /// Any addressing form (lea does not access memory).
    fn lea_mem(&mut self) -> MemoryOperand {
        let a32 = self.chance(1, 5);
        let pick = |g: &mut Self| -> Register {
            let all: [Register; 16] = [
                Register::RAX,
                Register::RCX,
                Register::RDX,
                Register::RBX,
                Register::RSP,
                Register::RBP,
                Register::RSI,
                Register::RDI,
                Register::R8,
                Register::R9,
                Register::R10,
                Register::R11,
                Register::R12,
                Register::R13,
                Register::R14,
                Register::R15,
            ];
            *g.r.pick(&all)
        };
        if !a32 && self.chance(1, 5) {
            let t = SNIPPET as i64 + (self.r.next_u64() as i32 as i64) / 4;
            return MemoryOperand::with_base_displ(Register::RIP, t);
        }
        let mut base = if self.chance(1, 8) { Register::None } else { pick(self) };
        let mut index = if self.chance(1, 3) { Register::None } else { pick(self) };
        if index == Register::RSP {
            index = Register::None;
        }
        if a32 {
            base = if base == Register::None { base } else { sized(base, 4) };
            index = if index == Register::None { index } else { sized(index, 4) };
        }
        let scale = *self.r.pick(&[1u32, 2, 4, 8]);
        let disp = match self.r.below(4) {
            0 => 0,
            1 => self.r.below(256) as i64 - 128,
            _ => self.r.next_u64() as i32 as i64,
        };
        let ds = if disp == 0 {
            0
        } else if (-128..128).contains(&disp) || !a32 {
            1 // disp8, or disp32 with 64-bit addressing (iced wants 1 or 8 there)
        } else {
            4
        };
        MemoryOperand::new(base, index, scale, disp, ds, false, Register::None)
    }

    fn ins(&mut self, i: Result<Instruction, iced_x86::IcedError>) -> bool {
        match i {
            Ok(i) if encoded_len(&i, SNIPPET).is_ok() => {
                self.asm.ins(i);
                true
            }
            _ => false,
        }
    }

    /// 1..=n simple instructions (not writing forbidden registers).
    fn body(&mut self, n: u64) {
        let k = 1 + self.r.below(n);
        for _ in 0..k {
            let forms = self.forms;
            self.auto(&forms.simple, false);
        }
    }

    fn cc_jcc(&mut self, short: bool) -> Code {
        let ccs = [
            Code::Jo_rel32_64,
            Code::Jno_rel32_64,
            Code::Jb_rel32_64,
            Code::Jae_rel32_64,
            Code::Je_rel32_64,
            Code::Jne_rel32_64,
            Code::Jbe_rel32_64,
            Code::Ja_rel32_64,
            Code::Js_rel32_64,
            Code::Jns_rel32_64,
            Code::Jp_rel32_64,
            Code::Jnp_rel32_64,
            Code::Jl_rel32_64,
            Code::Jge_rel32_64,
            Code::Jle_rel32_64,
            Code::Jg_rel32_64,
        ];
        let c = *self.r.pick(&ccs);
        if short { c.as_short_branch() } else { c }
    }

    // -----------------------------------------------------------------------
    // Items.

    /// Emits one item of `class`; false if nothing could be generated.
    fn item(&mut self, class: Class, kind: u16) -> bool {
        let forms = self.forms;
        // (weight, generator) per class; `kind` picks by cumulative weight.
        let table: &[(u16, Generator<'_>)] = match class {
            Class::Alu => &[
                (10, |g| {
                    let f = g.forms;
                    g.auto(&f.alu, false)
                }),
                (2, Self::jcc_forward),
                (1, Self::pushf_popf),
                (2, Self::flag_chain),
                (1, Self::long_run),
            ],
            Class::Shift => &[
                (8, |g| {
                    let f = g.forms;
                    g.auto(&f.shift, false)
                }),
                (2, Self::shift_by_cl),
                (2, Self::flag_consumer),
            ],
            Class::MulDiv => &[
                (10, |g| {
                    let f = g.forms;
                    g.auto(&f.muldiv, false)
                }),
                (2, Self::flag_consumer),
            ],
            Class::BitOps => &[
                (10, |g| {
                    let f = g.forms;
                    g.auto(&f.bits, false)
                }),
                (2, Self::flag_consumer),
            ],
            Class::String => &[(10, Self::string_op), (2, Self::flag_consumer), (1, Self::set_df)],
            Class::Stack => &[
                (3, Self::push_pop),
                (3, Self::call_local),
                (1, Self::enter_leave),
                (2, Self::red_zone),
                (1, Self::stack_adjust),
                (1, Self::pushf_popf),
                (2, |g| {
                    let f = g.forms;
                    g.auto(&f.alu, false)
                }),
            ],
            Class::Lea => &[
                (8, |g| {
                    let f = g.forms;
                    g.auto(&f.lea, false)
                }),
                (2, |g| {
                    let f = g.forms;
                    g.auto(&f.alu, false)
                }),
            ],
            Class::RipRel => &[
                (10, |g| {
                    let f = g.forms;
                    g.auto(&f.with_mem, true)
                }),
                (1, Self::push_pop_rip),
                (1, Self::lea_rip),
            ],
            Class::Indirect => &[
                (2, Self::jmp_reg),
                (2, Self::jmp_slot),
                (2, Self::jump_table),
                (2, Self::call_indirect),
                (1, Self::push_ret),
                (1, Self::jmp_direct),
                (1, |g| {
                    let f = g.forms;
                    g.auto(&f.alu, false)
                }),
            ],
            Class::Loop => &[
                (3, Self::loop_rcx),
                (3, Self::loop_dec_jnz),
                (1, Self::loop_cond),
                (1, Self::jrcxz),
                (2, Self::loop_cmp),
            ],
            Class::X87 => &[
                (5, Self::fp_load),
                (8, |g| {
                    let f = g.forms;
                    g.auto(&f.x87, false)
                }),
                (1, Self::fldcw),
                (1, Self::flag_consumer),
            ],
            Class::Sse => &[
                (12, |g| {
                    let f = g.forms;
                    g.auto(&f.sse, false)
                }),
                (1, Self::ldmxcsr),
                (1, Self::flag_consumer),
            ],
            Class::Avx => &[
                (12, |g| {
                    let f = g.forms;
                    g.auto(&f.avx, false)
                }),
                (1, Self::ldmxcsr),
                (1, Self::flag_consumer),
            ],
            Class::Avx512 => &[
                (12, |g| {
                    let f = g.forms;
                    g.auto(&f.avx512, false)
                }),
                (1, |g| {
                    let f = g.forms;
                    g.auto(&f.avx, false)
                }),
            ],
            Class::FsBase => {
                &[(6, Self::fs_block), (2, Self::rdfsbase), (1, Self::jcc_forward), (1, Self::flag_consumer)]
            }
            Class::Fault => &[
                (5, Self::fault),
                (4, |g| {
                    let f = g.forms;
                    g.auto(&f.alu, false)
                }),
                (1, Self::boundary),
            ],
            Class::Signal => &[
                (5, Self::signal),
                (3, |g| {
                    let f = g.forms;
                    g.auto(&f.alu, false)
                }),
                (2, |g| {
                    let f = g.forms;
                    g.auto(&f.sse, false)
                }),
            ],
            Class::Jit => &[
                (6, Self::jit),
                (2, Self::jit_loop),
                (2, |g| {
                    let f = g.forms;
                    g.auto(&f.alu, false)
                }),
            ],
            Class::Syscall => &[
                (6, Self::syscall),
                (2, |g| {
                    let f = g.forms;
                    g.auto(&f.alu, false)
                }),
                (2, |g| {
                    let f = g.forms;
                    g.auto(&f.sse, false)
                }),
                (1, Self::boundary),
            ],
        };
        // Every class also gets block boundaries (direct, conditional,
        // indirect, call/ret): each new block goes through bt-run's
        // dispatcher once, which must preserve all guest state.
        let kind = if kind % 16 == 15 {
            return self.boundary();
        } else {
            kind - kind / 16
        };
        let total: u16 = table.iter().map(|t| t.0).sum();
        let mut k = kind % total;
        let _ = forms;
        for (w, g) in table {
            if k < *w {
                return g(self);
            }
            k -= w;
        }
        false
    }

    fn flag_consumer(&mut self) -> bool {
        let forms = self.forms;
        self.auto(&forms.alu, false)
    }

    /// `cmp`/`sub`/`add` then a consumer (adc/sbb/cmov/setcc/jcc).
    fn flag_chain(&mut self) -> bool {
        let forms = self.forms;
        let producers: Vec<Form> = forms
            .alu
            .iter()
            .filter(|f| matches!(mnem(f.mnemonic()).as_str(), "Cmp" | "Sub" | "Add" | "Test" | "Neg" | "Xor"))
            .cloned()
            .collect();
        let consumers: Vec<Form> = forms
            .alu
            .iter()
            .filter(|f| {
                let m = mnem(f.mnemonic());
                m.starts_with("Cmov") || m.starts_with("Set") || m == "Adc" || m == "Sbb" || m == "Lahf"
            })
            .cloned()
            .collect();
        let ok = self.auto(&producers, false);
        ok | self.auto(&consumers, false)
    }

    /// `jcc L; <1-3 instructions>; L:`
    fn jcc_forward(&mut self) -> bool {
        let l = self.asm.label();
        let short = self.chance(1, 2);
        let c = self.cc_jcc(short);
        self.asm.branch(c, l);
        self.body(3);
        self.asm.bind(l);
        true
    }

    /// `pushfq; xor/or/and qword [rsp], mask; popfq` or `pushfq; pop reg`.
    fn pushf_popf(&mut self) -> bool {
        self.asm.ins(Instruction::with(Code::Pushfq));
        if self.chance(1, 3) {
            let r = self.gpr_full();
            return self.ins(Instruction::with1(Code::Pop_r64, r));
        }
        let mask = (self.r.next_u64() & (ARITH_FLAGS | DF)) as i32;
        let code = *self.r.pick(&[Code::Xor_rm64_imm32, Code::Or_rm64_imm32, Code::And_rm64_imm32]);
        let mask = if code == Code::And_rm64_imm32 { !mask } else { mask };
        let ok = self.ins(Instruction::with2(code, MemoryOperand::with_base(Register::RSP), mask));
        self.asm.ins(Instruction::with(Code::Popfq));
        ok
    }

    fn shift_by_cl(&mut self) -> bool {
        let n = *self.r.pick(&[0i32, 1, 2, 7, 8, 15, 16, 31, 32, 33, 63, 64, 65, 127, 255]);
        if !self.ins(Instruction::with2(Code::Mov_r8_imm8, Register::CL, n)) {
            return false;
        }
        let forms: Vec<Form> =
            self.forms.shift.iter().filter(|f| f.ops.contains(&Tok::Fixed(Register::CL))).cloned().collect();
        self.forbid.push(Register::RCX);
        let ok = self.auto(&forms, false);
        self.forbid.pop();
        ok
    }

    fn set_df(&mut self) -> bool {
        let c = if self.chance(1, 2) { Code::Std } else { Code::Cld };
        self.asm.ins(Instruction::with(c));
        true
    }

    /// `lea rsi/rdi into scratch; mov ecx, n; [std|cld]; [rep] movs/stos/lods/cmps/scas`.
    fn string_op(&mut self) -> bool {
        let size = *self.r.pick(&[1u64, 2, 4, 8]);
        let n = if self.chance(1, 6) { 0 } else { self.r.below(33) };
        // Both directions stay inside [0x20, 0xE00).
        let lo = 0x20 + n * size;
        let hi = TABLES - n * size - 8;
        let s = lo + self.r.below(hi - lo);
        let d = if self.chance(1, 3) { s + self.r.below(16) } else { lo + self.r.below(hi - lo) };
        let a32 = self.chance(1, 5);
        let ok = self.ins(Instruction::with2(
            Code::Lea_r64_m,
            Register::RSI,
            MemoryOperand::with_base_displ(Register::R15, s as i64),
        )) && self.ins(Instruction::with2(
            Code::Lea_r64_m,
            Register::RDI,
            MemoryOperand::with_base_displ(Register::R15, d as i64),
        )) && self.ins(Instruction::with2(Code::Mov_r32_imm32, Register::ECX, n as u32));
        if !ok {
            return false;
        }
        match self.r.below(4) {
            0 => self.asm.ins(Instruction::with(Code::Std)),
            1 => self.asm.ins(Instruction::with(Code::Cld)),
            _ => {}
        }
        let asz = if a32 { 32 } else { 64 };
        let op = self.r.below(5);
        let rep = match (op, self.r.below(3)) {
            (_, 0) => RepPrefixKind::None,
            (3 | 4, 1) => RepPrefixKind::Repe,
            (3 | 4, _) => RepPrefixKind::Repne,
            _ => RepPrefixKind::Repe,
        };
        let seg = Register::None;
        let i = match (op, size) {
            (0, 1) => Instruction::with_movsb(asz, seg, rep),
            (0, 2) => Instruction::with_movsw(asz, seg, rep),
            (0, 4) => Instruction::with_movsd(asz, seg, rep),
            (0, _) => Instruction::with_movsq(asz, seg, rep),
            (1, 1) => Instruction::with_stosb(asz, rep),
            (1, 2) => Instruction::with_stosw(asz, rep),
            (1, 4) => Instruction::with_stosd(asz, rep),
            (1, _) => Instruction::with_stosq(asz, rep),
            (2, 1) => Instruction::with_lodsb(asz, seg, rep),
            (2, 2) => Instruction::with_lodsw(asz, seg, rep),
            (2, 4) => Instruction::with_lodsd(asz, seg, rep),
            (2, _) => Instruction::with_lodsq(asz, seg, rep),
            (3, 1) => Instruction::with_cmpsb(asz, seg, rep),
            (3, 2) => Instruction::with_cmpsw(asz, seg, rep),
            (3, 4) => Instruction::with_cmpsd(asz, seg, rep),
            (3, _) => Instruction::with_cmpsq(asz, seg, rep),
            (_, 1) => Instruction::with_scasb(asz, rep),
            (_, 2) => Instruction::with_scasw(asz, rep),
            (_, 4) => Instruction::with_scasd(asz, rep),
            (_, _) => Instruction::with_scasq(asz, rep),
        };
        self.ins(i)
    }

    /// `push X; <body>; pop Y` with matching sizes.
    fn push_pop(&mut self) -> bool {
        let wide = !self.chance(1, 6);
        let mut guards = Vec::new();
        let push = match (wide, self.r.below(4)) {
            (true, 0) => Instruction::with1(Code::Push_r64, self.gpr_full()),
            (true, 1) => Instruction::with1(Code::Pushq_imm32, self.imm(32) as i32),
            (true, 2) => Instruction::with1(Code::Pushq_imm8, self.imm(8) as i32),
            (true, _) => Instruction::with1(Code::Push_rm64, self.mem(8, 1, true, false, 0, &mut guards)),
            (false, 0) => Instruction::with1(Code::Push_r16, self.gpr(2)),
            (false, 1) => Instruction::with1(Code::Push_imm16, self.imm(16) as i32),
            (false, _) => Instruction::with1(Code::Push_rm16, self.mem(2, 1, true, false, 0, &mut guards)),
        };
        for g in guards.drain(..) {
            self.asm.ins(g);
        }
        if !self.ins(push) {
            return false;
        }
        if self.chance(1, 2) {
            self.body(2);
        }
        if self.chance(1, 3) {
            self.boundary();
        }
        if wide && self.chance(1, 4) {
            // Touch the pushed slot.
            let r = self.gpr_full();
            let code = *self.r.pick(&[Code::Xchg_rm64_r64, Code::Add_rm64_r64, Code::Mov_r64_rm64]);
            let i = if code == Code::Mov_r64_rm64 {
                Instruction::with2(code, r, MemoryOperand::with_base(Register::RSP))
            } else {
                Instruction::with2(code, MemoryOperand::with_base(Register::RSP), r)
            };
            self.ins(i);
        }
        let pop = match (wide, self.r.below(2)) {
            (true, 0) => Instruction::with1(Code::Pop_r64, self.gpr_full()),
            (true, _) => Instruction::with1(Code::Pop_rm64, self.mem(8, 1, false, false, 0, &mut guards)),
            (false, 0) => Instruction::with1(Code::Pop_r16, self.gpr(2)),
            (false, _) => Instruction::with1(Code::Pop_rm16, self.mem(2, 1, false, false, 0, &mut guards)),
        };
        self.ins(pop)
    }

    /// `[push arg]; call F; jmp END; F: <body, maybe reading [rsp]>; ret [8]; END:`
    fn call_local(&mut self) -> bool {
        let f = self.asm.label();
        let end = self.asm.label();
        let arg = self.chance(1, 3);
        if arg {
            let r = self.gpr_full();
            self.ins(Instruction::with1(Code::Push_r64, r));
        }
        self.asm.branch(Code::Call_rel32_64, f);
        let j = if self.chance(1, 2) { Code::Jmp_rel8_64 } else { Code::Jmp_rel32_64 };
        self.asm.branch(j, end);
        self.asm.bind(f);
        if self.chance(1, 2) {
            let r = self.gpr_full();
            self.ins(Instruction::with2(Code::Mov_r64_rm64, r, MemoryOperand::with_base(Register::RSP)));
        }
        self.body(3);
        if self.chance(1, 4) {
            self.push_pop();
        }
        if arg {
            self.ins(Instruction::with1(Code::Retnq_imm16, 8));
        } else {
            self.asm.ins(Instruction::with(Code::Retnq));
        }
        self.asm.bind(end);
        true
    }

    /// `enter n, 0; <body not writing rbp>; leave`, or the push rbp form.
    fn enter_leave(&mut self) -> bool {
        let n = 8 * self.r.below(9) as i32;
        let classic = self.chance(1, 2);
        if classic {
            self.asm.ins(Instruction::with1(Code::Push_r64, Register::RBP).unwrap_or_default());
            self.ins(Instruction::with2(Code::Mov_r64_rm64, Register::RBP, Register::RSP));
            self.ins(Instruction::with2(Code::Sub_rm64_imm32, Register::RSP, n));
        } else if !self.ins(Instruction::with2(Code::Enterq_imm16_imm8, n, 0)) {
            return false;
        }
        self.forbid.push(Register::RBP);
        self.body(3);
        if self.chance(1, 2) {
            let d = -8 * (1 + self.r.below(4) as i64);
            let r = self.gpr_full();
            self.ins(Instruction::with2(Code::Mov_rm64_r64, MemoryOperand::with_base_displ(Register::RBP, d), r));
        }
        self.forbid.pop();
        if classic && self.chance(1, 2) {
            self.ins(Instruction::with2(Code::Mov_r64_rm64, Register::RSP, Register::RBP));
            self.ins(Instruction::with1(Code::Pop_r64, Register::RBP))
        } else {
            self.ins(Ok(Instruction::with(Code::Leaveq)))
        }
    }

    /// Store below rsp, cross a block boundary, load it back.
    fn red_zone(&mut self) -> bool {
        let d = -8 * (1 + self.r.below(16) as i64);
        let a = self.gpr_full();
        if !self.ins(Instruction::with2(Code::Mov_rm64_r64, MemoryOperand::with_base_displ(Register::RSP, d), a)) {
            return false;
        }
        let l = self.asm.label();
        if self.chance(1, 2) {
            self.asm.branch(Code::Jmp_rel8_64, l);
        } else {
            let c = self.cc_jcc(true);
            self.asm.branch(c, l);
            self.body(1);
        }
        self.asm.bind(l);
        let b = self.gpr_full();
        self.ins(Instruction::with2(Code::Mov_r64_rm64, b, MemoryOperand::with_base_displ(Register::RSP, d)))
    }

    /// `sub rsp, n ... add rsp, n` / `lea rsp, [rsp-n] ... lea rsp, [rsp+n]`, or `push rsp; pop r`.
    fn stack_adjust(&mut self) -> bool {
        if self.chance(1, 3) {
            self.asm.ins(Instruction::with1(Code::Push_r64, Register::RSP).unwrap_or_default());
            let r = self.gpr_full();
            return self.ins(Instruction::with1(Code::Pop_r64, r));
        }
        // Sometimes a misaligned rsp, across a block boundary.
        let n = if self.chance(1, 3) { 1 + self.r.below(64) as i32 } else { 8 * (1 + self.r.below(32) as i32) };
        let lea = self.chance(1, 2);
        let down = if lea {
            Instruction::with2(Code::Lea_r64_m, Register::RSP, MemoryOperand::with_base_displ(Register::RSP, -n as i64))
        } else {
            Instruction::with2(Code::Sub_rm64_imm32, Register::RSP, n)
        };
        self.ins(down);
        self.body(2);
        if self.chance(1, 2) {
            self.boundary();
        }
        let up = if lea {
            Instruction::with2(Code::Lea_r64_m, Register::RSP, MemoryOperand::with_base_displ(Register::RSP, n as i64))
        } else {
            Instruction::with2(Code::Add_rm64_imm32, Register::RSP, n)
        };
        self.ins(up)
    }

    fn push_pop_rip(&mut self) -> bool {
        let d = self.disp_in(0, TABLES, 8, 8);
        let m = MemoryOperand::with_base_displ(Register::RIP, (DATA + d) as i64);
        self.ins(Instruction::with1(Code::Push_rm64, m));
        self.body(2);
        let d2 = self.disp_in(0, TABLES, 8, 1);
        let m2 = MemoryOperand::with_base_displ(Register::RIP, (DATA + d2) as i64);
        self.ins(Instruction::with1(Code::Pop_rm64, m2))
    }

    fn lea_rip(&mut self) -> bool {
        let r = self.gpr_full();
        let t = (SNIPPET as i64) + (self.r.next_u64() as i32 as i64) / 2;
        self.ins(Instruction::with2(Code::Lea_r64_m, r, MemoryOperand::with_base_displ(Register::RIP, t)))
    }

    /// Instructions that must never run (skipped by a jump).
    fn junk(&mut self) {
        match self.r.below(3) {
            0 => self.asm.ins(Instruction::with(Code::Int3)),
            1 => self.asm.ins(Instruction::with(Code::Ud2)),
            _ => self.body(2),
        }
    }

    fn jmp_reg(&mut self) -> bool {
        let l = self.asm.label();
        let r = self.gpr_full();
        self.asm.lea_label(r, l);
        self.ins(Instruction::with1(Code::Jmp_rm64, r));
        self.junk();
        self.asm.bind(l);
        true
    }

    fn slot(&mut self) -> u64 {
        TABLES + 8 * self.r.below(8)
    }

    /// Jump through a memory slot (`[r15+d]` or `[rip+d]`).
    fn jmp_slot(&mut self) -> bool {
        let l = self.asm.label();
        let r = self.gpr_full();
        let s = self.slot();
        self.asm.lea_label(r, l);
        self.ins(Instruction::with2(Code::Mov_rm64_r64, MemoryOperand::with_base_displ(Register::R15, s as i64), r));
        let m = if self.chance(1, 2) {
            MemoryOperand::with_base_displ(Register::R15, s as i64)
        } else {
            MemoryOperand::with_base_displ(Register::RIP, (DATA + s) as i64)
        };
        self.ins(Instruction::with1(Code::Jmp_rm64, m));
        self.junk();
        self.asm.bind(l);
        true
    }

    /// A table of 2 or 4 targets written at run time, indexed by a register.
    fn jump_table(&mut self) -> bool {
        let k: i32 = if self.chance(1, 2) { 2 } else { 4 };
        let tab = TABLES + 0x40;
        let r = self.gpr_full();
        let targets: Vec<Label> = (0..k).map(|_| self.asm.label()).collect();
        let end = self.asm.label();
        for (i, t) in targets.iter().enumerate() {
            self.asm.lea_label(r, *t);
            self.ins(Instruction::with2(
                Code::Mov_rm64_r64,
                MemoryOperand::with_base_displ(Register::R15, (tab + 8 * i as u64) as i64),
                r,
            ));
        }
        let idx = self.gpr_full();
        let src = self.gpr_full();
        self.ins(Instruction::with2(Code::Mov_r32_rm32, sized(idx, 4), sized(src, 4)));
        self.ins(Instruction::with2(Code::And_rm32_imm8, sized(idx, 4), k - 1));
        self.ins(Instruction::with1(
            Code::Jmp_rm64,
            MemoryOperand::new(Register::R15, idx, 8, tab as i64, 1, false, Register::None),
        ));
        for t in targets {
            self.asm.bind(t);
            self.body(2);
            self.asm.branch(Code::Jmp_rel32_64, end);
        }
        self.asm.bind(end);
        true
    }

    /// `call reg / [r15+d] / [rip+d]` to a local function.
    fn call_indirect(&mut self) -> bool {
        let f = self.asm.label();
        let end = self.asm.label();
        let r = self.gpr_full();
        self.asm.lea_label(r, f);
        match self.r.below(3) {
            0 => {
                self.ins(Instruction::with1(Code::Call_rm64, r));
            }
            n => {
                let s = self.slot();
                self.ins(Instruction::with2(
                    Code::Mov_rm64_r64,
                    MemoryOperand::with_base_displ(Register::R15, s as i64),
                    r,
                ));
                let m = if n == 1 {
                    MemoryOperand::with_base_displ(Register::R15, s as i64)
                } else {
                    MemoryOperand::with_base_displ(Register::RIP, (DATA + s) as i64)
                };
                self.ins(Instruction::with1(Code::Call_rm64, m));
            }
        }
        self.asm.branch(Code::Jmp_rel32_64, end);
        self.asm.bind(f);
        self.body(3);
        self.asm.ins(Instruction::with(Code::Retnq));
        self.asm.bind(end);
        true
    }

    fn push_ret(&mut self) -> bool {
        let l = self.asm.label();
        let r = self.gpr_full();
        self.asm.lea_label(r, l);
        self.ins(Instruction::with1(Code::Push_r64, r));
        self.asm.ins(Instruction::with(Code::Retnq));
        self.junk();
        self.asm.bind(l);
        true
    }

    fn jmp_direct(&mut self) -> bool {
        let l = self.asm.label();
        let j = if self.chance(1, 2) { Code::Jmp_rel8_64 } else { Code::Jmp_rel32_64 };
        self.asm.branch(j, l);
        self.junk();
        self.asm.bind(l);
        true
    }

    fn loop_rcx(&mut self) -> bool {
        let n = 1 + self.r.below(8) as u32;
        self.ins(Instruction::with2(Code::Mov_r32_imm32, Register::ECX, n));
        let l = self.asm.label();
        self.asm.bind(l);
        self.forbid.push(Register::RCX);
        self.body(3);
        self.forbid.pop();
        let code = if self.chance(1, 4) { Code::Loop_rel8_64_ECX } else { Code::Loop_rel8_64_RCX };
        self.asm.branch(code, l);
        true
    }

    fn loop_cond(&mut self) -> bool {
        let n = 1 + self.r.below(8) as u32;
        self.ins(Instruction::with2(Code::Mov_r32_imm32, Register::ECX, n));
        let l = self.asm.label();
        self.asm.bind(l);
        self.forbid.push(Register::RCX);
        self.body(3);
        self.forbid.pop();
        let code = *self.r.pick(&[
            Code::Loope_rel8_64_RCX,
            Code::Loopne_rel8_64_RCX,
            Code::Loope_rel8_64_ECX,
            Code::Loopne_rel8_64_ECX,
        ]);
        self.asm.branch(code, l);
        true
    }

    fn loop_dec_jnz(&mut self) -> bool {
        let c = self.gpr_full();
        let n = 1 + self.r.below(8) as u32;
        self.ins(Instruction::with2(Code::Mov_r32_imm32, sized(c, 4), n));
        let l = self.asm.label();
        self.asm.bind(l);
        self.forbid.push(c);
        self.body(3);
        self.forbid.pop();
        if self.chance(1, 2) {
            self.ins(Instruction::with1(Code::Dec_rm32, sized(c, 4)));
        } else {
            self.ins(Instruction::with2(Code::Sub_rm32_imm8, sized(c, 4), 1));
        }
        let code = if self.chance(1, 2) { Code::Jne_rel8_64 } else { Code::Jne_rel32_64 };
        self.asm.branch(code, l);
        true
    }

    fn loop_cmp(&mut self) -> bool {
        let c = self.gpr_full();
        let n = 1 + self.r.below(8) as i32;
        self.ins(Instruction::with2(Code::Xor_r32_rm32, sized(c, 4), sized(c, 4)));
        let l = self.asm.label();
        self.asm.bind(l);
        self.forbid.push(c);
        self.body(3);
        self.forbid.pop();
        self.ins(Instruction::with1(Code::Inc_rm32, sized(c, 4)));
        self.ins(Instruction::with2(Code::Cmp_rm32_imm8, sized(c, 4), n));
        let code = *self.r.pick(&[Code::Jb_rel8_64, Code::Jl_rel8_64, Code::Jne_rel8_64, Code::Jb_rel32_64]);
        self.asm.branch(code, l);
        true
    }

    fn jrcxz(&mut self) -> bool {
        if self.chance(1, 2) {
            let v = self.r.below(2) as u32;
            self.ins(Instruction::with2(Code::Mov_r32_imm32, Register::ECX, v));
        }
        let l = self.asm.label();
        let code = if self.chance(1, 3) { Code::Jecxz_rel8_64 } else { Code::Jrcxz_rel8_64 };
        self.asm.branch(code, l);
        self.body(3);
        self.asm.bind(l);
        true
    }

    fn fp_load(&mut self) -> bool {
        let forms = self.forms;
        let loads: Vec<Form> = forms
            .x87
            .iter()
            .filter(|f| {
                matches!(
                    mnem(f.mnemonic()).as_str(),
                    "Fld" | "Fild" | "Fld1" | "Fldz" | "Fldpi" | "Fldl2e" | "Fldln2" | "Fbld"
                )
            })
            .cloned()
            .collect();
        self.auto(&loads, false)
    }

    fn fldcw(&mut self) -> bool {
        let cw = 0x7F | ((self.r.below(4) as i32) << 8) | ((self.r.below(4) as i32) << 10);
        let m = MemoryOperand::with_base_displ(Register::R15, (TABLES + 0x80) as i64);
        self.ins(Instruction::with2(Code::Mov_rm16_imm16, m, cw)) && self.ins(Instruction::with1(Code::Fldcw_m2byte, m))
    }

    fn ldmxcsr(&mut self) -> bool {
        let v = 0x1F80
            | ((self.r.below(4) as i32) << 13)
            | ((self.r.below(2) as i32) << 15)
            | ((self.r.below(2) as i32) << 6)
            | (self.r.below(64) as i32);
        let m = MemoryOperand::with_base_displ(Register::R15, (TABLES + 0x88) as i64);
        let code = if self.feats.avx && self.chance(1, 2) { Code::VEX_Vldmxcsr_m32 } else { Code::Ldmxcsr_m32 };
        self.ins(Instruction::with2(Code::Mov_rm32_imm32, m, v)) && self.ins(Instruction::with1(code, m))
    }

    /// `lea r, [r15+off]; wrfsbase r;` (or wrgsbase: the guest's GS is as
    /// much its own as FS) then fs- or gs-relative loads/stores/RMWs, with
    /// a base or index register sometimes, maybe across a block boundary,
    /// maybe `rdfsbase`/`rdgsbase`.
    fn fs_block(&mut self) -> bool {
        let gs = self.chance(1, 2);
        let seg = if gs { Register::GS } else { Register::FS };
        let off = 0x100 * self.r.below(8);
        let r = self.gpr_full();
        self.ins(Instruction::with2(Code::Lea_r64_m, r, MemoryOperand::with_base_displ(Register::R15, off as i64)));
        let wr = if gs { Code::Wrgsbase_r64 } else { Code::Wrfsbase_r64 };
        self.ins(Instruction::with1(wr, r));
        let n = 1 + self.r.below(4);
        for _ in 0..n {
            let code = *self.r.pick(&[
                Code::Mov_r64_rm64,
                Code::Mov_rm64_r64,
                Code::Add_rm32_r32,
                Code::Add_r32_rm32,
                Code::Cmp_rm8_imm8,
                Code::Movzx_r32_rm8,
            ]);
            let d = self.r.below(0x100 - 8) as i64;
            let m = MemoryOperand::new(Register::None, Register::None, 1, d, 4, false, seg);
            let a = self.gpr_full();
            let i = match code {
                Code::Mov_r64_rm64 => Instruction::with2(code, a, m),
                Code::Mov_rm64_r64 => Instruction::with2(code, m, a),
                Code::Add_rm32_r32 => Instruction::with2(code, m, sized(a, 4)),
                Code::Add_r32_rm32 | Code::Movzx_r32_rm8 => Instruction::with2(code, sized(a, 4), m),
                _ => Instruction::with2(code, m, self.imm(8) as i32),
            };
            self.ins(i);
            if self.chance(1, 3) {
                let l = self.asm.label();
                self.asm.branch(Code::Jmp_rel8_64, l);
                self.asm.bind(l);
            }
        }
        if self.chance(1, 2) {
            if gs {
                let r = self.gpr_full();
                self.ins(Instruction::with1(Code::Rdgsbase_r64, r));
            } else {
                self.rdfsbase();
            }
        }
        true
    }

    /// More straight-line code than one translated block holds (over 128
    /// instructions), or a filler of nops of every length after which an
    /// instruction likely straddles the next page boundary.
    fn long_run(&mut self) -> bool {
        if self.chance(1, 2) {
            let n = 100 + self.r.below(200);
            for _ in 0..n {
                let forms = self.forms;
                self.auto(&forms.simple, false);
            }
        } else {
            let nops: [&[u8]; 9] = [
                &[0x90],
                &[0x66, 0x90],
                &[0x0F, 0x1F, 0x00],
                &[0x0F, 0x1F, 0x40, 0x00],
                &[0x0F, 0x1F, 0x44, 0x00, 0x00],
                &[0x66, 0x0F, 0x1F, 0x44, 0x00, 0x00],
                &[0x0F, 0x1F, 0x80, 0x00, 0x00, 0x00, 0x00],
                &[0x0F, 0x1F, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00],
                &[0x66, 0x0F, 0x1F, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00],
            ];
            let mut len = 0;
            let want = 3500 + self.r.below(1000);
            while len < want {
                let n = *self.r.pick(&nops);
                len += n.len() as u64;
                self.db(n);
            }
            self.body(3);
        }
        true
    }

    /// A block boundary that falls through to the next instruction.
    fn boundary(&mut self) -> bool {
        let l = self.asm.label();
        match self.r.below(5) {
            0 => self.asm.branch(Code::Jmp_rel8_64, l),
            1 => {
                let short = self.r.below(2) == 0;
                let c = self.cc_jcc(short);
                self.asm.branch(c, l)
            }
            2 => {
                let r = self.gpr_full();
                self.asm.lea_label(r, l);
                self.ins(Instruction::with1(Code::Jmp_rm64, r));
            }
            3 => {
                let f = self.asm.label();
                self.asm.branch(Code::Call_rel32_64, f);
                self.asm.branch(Code::Jmp_rel8_64, l);
                self.asm.bind(f);
                self.asm.ins(Instruction::with(Code::Retnq));
            }
            _ => {
                // An indirect jump whose target is only known at run time
                // from memory (misses the lookup table the first time).
                let r = self.gpr_full();
                let s = self.slot();
                self.asm.lea_label(r, l);
                self.ins(Instruction::with2(
                    Code::Mov_rm64_r64,
                    MemoryOperand::with_base_displ(Register::R15, s as i64),
                    r,
                ));
                self.ins(Instruction::with1(Code::Jmp_rm64, MemoryOperand::with_base_displ(Register::R15, s as i64)));
            }
        }
        self.asm.bind(l);
        true
    }

    fn db(&mut self, bytes: &[u8]) -> bool {
        self.ins(Instruction::with_declare_byte(bytes))
    }

    /// One instruction (sequence) that faults: the process must die by the
    /// same signal under bt-run.
    fn fault(&mut self) -> bool {
        let tab = MemoryOperand::with_base_displ(Register::R15, (TABLES + 0x90) as i64);
        match self.r.below(24) {
            0 => self.db(&[0x0F, 0x0B]),       // ud2: SIGILL
            1 => self.db(&[0xCC]),             // int3: SIGTRAP
            2 => self.db(&[0xF1]),             // int1: SIGTRAP
            3 => self.db(&[0xF4]),             // hlt: SIGSEGV
            4 => self.db(&[0xFA]),             // cli: SIGSEGV
            5 => self.db(&[0xEC]),             // in al, dx: SIGSEGV
            6 => self.db(&[0xCD, 0x41]),       // int 0x41: SIGSEGV
            7 => self.db(&[0x0F, 0x22, 0xC0]), // mov cr0, rax: SIGSEGV
            8 => self.db(&[0x0F, 0x30]),       // wrmsr: SIGSEGV
            9 => {
                // Opcodes invalid in 64-bit mode, a bad lock prefix, ud0/ud1: SIGILL
                let v: &[&[u8]] = &[
                    &[0x06],
                    &[0x07],
                    &[0x0E],
                    &[0x16],
                    &[0x17],
                    &[0x1E],
                    &[0x1F],
                    &[0x27],
                    &[0x2F],
                    &[0x37],
                    &[0x3F],
                    &[0x60],
                    &[0x61],
                    &[0xCE],
                    &[0xD4, 0x0A],
                    &[0xD5, 0x0A],
                    &[0xD6],
                    &[0xF0, 0x90],
                    &[0xF0, 0x01, 0xD8],
                    &[0x0F, 0xFF, 0xC0],
                    &[0x0F, 0xB9, 0xC0],
                    &[0x0F, 0x04],
                ];
                let b = *self.r.pick(v);
                self.db(b)
            }
            10 => {
                // Load through a null pointer.
                let r = self.gpr_full();
                self.ins(Instruction::with2(Code::Xor_r32_rm32, sized(r, 4), sized(r, 4)))
                    && self.ins(Instruction::with2(Code::Mov_r64_rm64, r, MemoryOperand::with_base(r)))
            }
            11 => {
                // Store into our own (read+execute) code.
                let d = SNIPPET as i64 + self.r.below(16) as i64;
                self.ins(Instruction::with2(
                    Code::Mov_rm8_r8,
                    MemoryOperand::with_base_displ(Register::RIP, d),
                    Register::AL,
                ))
            }
            12..=14 => {
                // Jump/call into data (not executable), unmapped or non-canonical memory.
                let r = self.gpr_full();
                let ok = match self.r.below(3) {
                    0 => self.ins(Instruction::with2(
                        Code::Lea_r64_m,
                        r,
                        MemoryOperand::with_base_displ(Register::R15, 0x100),
                    )),
                    1 => self.ins(Instruction::with2(Code::Mov_r32_imm32, sized(r, 4), 0x1234_5000u32)),
                    _ => self.ins(Instruction::with2(Code::Mov_r64_imm64, r, 0x8000_0000_0000_0000u64)),
                };
                let code = if self.chance(1, 2) { Code::Jmp_rm64 } else { Code::Call_rm64 };
                ok && self.ins(Instruction::with1(code, r))
            }
            15 => {
                // Return to an unmapped address.
                self.ins(Instruction::with1(Code::Pushq_imm32, 0x1000)) && self.ins(Ok(Instruction::with(Code::Retnq)))
            }
            16 => {
                // movaps from a misaligned address: SIGSEGV (#GP).
                let x = self.vreg(Vk::X, false);
                let d = 16 * self.r.below(64) as i64 + 1 + self.r.below(15) as i64;
                self.ins(Instruction::with2(
                    Code::Movaps_xmm_xmmm128,
                    x,
                    MemoryOperand::with_base_displ(Register::R15, d),
                ))
            }
            17 => {
                // 0/0 with SSE exceptions unmasked: SIGFPE (#XM).
                self.ins(Instruction::with2(Code::Mov_rm32_imm32, tab, 0u32))
                    && self.ins(Instruction::with1(Code::Ldmxcsr_m32, tab))
                    && self.ins(Instruction::with2(Code::Xorps_xmm_xmmm128, Register::XMM3, Register::XMM3))
                    && self.ins(Instruction::with2(Code::Divss_xmm_xmmm32, Register::XMM3, Register::XMM3))
            }
            18 => {
                // 0/0 on the x87 with IE unmasked, reported at the next fwait: SIGFPE.
                self.ins(Instruction::with2(Code::Mov_rm16_imm16, tab, 0x037Eu32))
                    && self.ins(Instruction::with1(Code::Fldcw_m2byte, tab))
                    && self.ins(Ok(Instruction::with(Code::Fldz)))
                    && self.ins(Ok(Instruction::with(Code::Fldz)))
                    && self.ins(Instruction::with2(Code::Fdivp_sti_st0, Register::ST1, Register::ST0))
                    && self.ins(Ok(Instruction::with(Code::Wait)))
            }
            19 => {
                // TF through popf: a single-step trap after the next instruction.
                self.ins(Ok(Instruction::with(Code::Pushfq)))
                    && self.ins(Instruction::with2(Code::Or_rm64_imm32, MemoryOperand::with_base(Register::RSP), 0x100))
                    && self.ins(Ok(Instruction::with(Code::Popfq)))
                    && self.ins(Ok(Instruction::with(Code::Nopd)))
                    && self.ins(Ok(Instruction::with(Code::Nopd)))
            }
            20 => {
                // AC through popf, then a misaligned load: SIGBUS (#AC).
                self.ins(Ok(Instruction::with(Code::Pushfq)))
                    && self.ins(Instruction::with2(
                        Code::Or_rm64_imm32,
                        MemoryOperand::with_base(Register::RSP),
                        0x40000,
                    ))
                    && self.ins(Ok(Instruction::with(Code::Popfq)))
                    && self.ins(Instruction::with2(
                        Code::Mov_r32_rm32,
                        Register::EAX,
                        MemoryOperand::with_base_displ(Register::R15, 0x101),
                    ))
            }
            21 => {
                // Just past the end of the data segment (unmapped natively).
                let r = self.gpr_full();
                let d = DATA_MEMSZ as i64 + 8 * self.r.below(512) as i64;
                self.ins(Instruction::with2(Code::Mov_r64_rm64, r, MemoryOperand::with_base_displ(Register::R15, d)))
            }
            22 => self.db(&[0x0F, 0x01, 0x17]), // lgdt [rdi]: SIGSEGV
            _ => {
                // Division by zero.
                let r = self.gpr_full();
                self.ins(Instruction::with2(Code::Xor_r32_rm32, sized(r, 4), sized(r, 4)))
                    && self.ins(Instruction::with1(Code::Div_rm32, sized(r, 4)))
            }
        }
    }

    /// A deterministic system call (same result natively and under bt-run).
    fn syscall(&mut self) -> bool {
        let buf = TABLES + 0x100 + 8 * self.r.below(8); // up to 0x1F8 bytes of room below SCRATCH_END
        let bufm = |g: &mut Self, reg: Register, off: u64| {
            g.ins(Instruction::with2(Code::Lea_r64_m, reg, MemoryOperand::with_base_displ(Register::R15, off as i64)))
        };
        let mov = |g: &mut Self, reg: Register, v: i64| {
            if let Ok(v32) = i32::try_from(v) {
                g.ins(Instruction::with2(Code::Mov_rm64_imm32, reg, v32))
            } else {
                g.ins(Instruction::with2(Code::Mov_r64_imm64, reg, v as u64))
            }
        };
        let (nr, ok): (i64, bool) = match self.r.below(22) {
            0 => (102, true),                              // getuid
            1 => (104, true),                              // getgid
            2 => (107, true),                              // geteuid
            3 => (108, true),                              // getegid
            4 => (24, true),                               // sched_yield
            5 => (110, true),                              // getppid (the test process in both runs)
            6 => (1000 + self.r.below(1000) as i64, true), // ENOSYS
            7 => (3, mov(self, Register::RDI, -1)),        // close(-1): EBADF
            8 => (8, mov(self, Register::RDI, -1) && mov(self, Register::RSI, 0) && mov(self, Register::RDX, 0)), // lseek
            9 => (1, mov(self, Register::RDI, -1) && bufm(self, Register::RSI, buf) && mov(self, Register::RDX, 8)), // write(-1)
            10 => (0, mov(self, Register::RDI, 1000) && bufm(self, Register::RSI, buf) && mov(self, Register::RDX, 8)), // read(1000)
            11 => (158, mov(self, Register::RDI, 0x1003) && bufm(self, Register::RSI, buf)), // arch_prctl(ARCH_GET_FS)
            12 => {
                // arch_prctl(ARCH_SET_FS, DATA+off), then an fs-relative load after the call.
                let off = 0x100 * self.r.below(8);
                let ok = mov(self, Register::RDI, 0x1002) && bufm(self, Register::RSI, off);
                self.ins(Instruction::with2(Code::Mov_r32_imm32, Register::EAX, 158u32));
                self.asm.ins(Instruction::with(Code::Syscall));
                let r = self.gpr_full();
                let d = 8 * self.r.below(16) as i64;
                let m = MemoryOperand::new(Register::None, Register::None, 1, d, 4, false, Register::FS);
                return ok && self.ins(Instruction::with2(Code::Mov_r64_rm64, r, m));
            }
            13 => (
                14,
                mov(self, Register::RDI, 0)
                    && mov(self, Register::RSI, 0)
                    && bufm(self, Register::RDX, buf)
                    && mov(self, Register::R10, 8),
            ), // rt_sigprocmask(SIG_BLOCK, NULL, &old)
            14 => (97, mov(self, Register::RDI, 7) && bufm(self, Register::RSI, buf)), // getrlimit(RLIMIT_NOFILE)
            15 => (63, bufm(self, Register::RDI, 0xB00)), // uname: 390 bytes at scratch+0xB00
            16 => (79, bufm(self, Register::RDI, buf) && mov(self, Register::RSI, 128)), // getcwd
            17 => (
                13,
                mov(self, Register::RDI, 10)
                    && mov(self, Register::RSI, 0)
                    && bufm(self, Register::RDX, buf)
                    && mov(self, Register::R10, 8),
            ), // rt_sigaction(SIGUSR1, NULL, &old)
            18 => (131, mov(self, Register::RDI, 0) && bufm(self, Register::RSI, buf)), // sigaltstack(NULL, &old)
            19 => (95, mov(self, Register::RDI, 0o22)),   // umask
            20 => (115, mov(self, Register::RDI, 0) && mov(self, Register::RSI, 0)), // getgroups(0, NULL)
            _ => {
                let cmd = *self.r.pick(&[1i64, 3]);
                (72, mov(self, Register::RDI, 1) && mov(self, Register::RSI, cmd)) // fcntl(1, F_GETFD/F_GETFL)
            }
        };
        if !ok {
            return false;
        }
        self.ins(Instruction::with2(Code::Mov_r32_imm32, Register::EAX, nr as u32));
        self.asm.ins(Instruction::with(Code::Syscall));
        true
    }

    /// Installs a one-shot SA_SIGINFO handler, faults, and continues after
    /// the faulting instruction (the handler edits the saved context).
    fn signal(&mut self) -> bool {
        const SA_SIGINFO: i32 = 4;
        const SA_RESTORER: i32 = 0x0400_0000;
        const SA_RESETHAND: i32 = 0x8000_0000u32 as i32;
        // Copies go to the free part of the initial-state page, which the
        // generic memory operands never read (so the copies are compared
        // once, by the dump, and never feed other computations).
        const D_INFO: i64 = SIGCOPY as i64; // siginfo, 48 bytes
        const D_UC: i64 = D_INFO + 0x40; // ucontext up to uc_sigmask, 304 bytes
        const D_FP: i64 = D_INFO + 0x180; // fpstate: legacy area + xsave header, 576 bytes
        const D_RSP: i64 = D_INFO + 0x3C8; // rsp at handler entry
        let sa = (TABLES + 0x1C0) as i64;
        let save_rsp = (TABLES + 0x1F8) as i64;
        let r15 = |d: i64| MemoryOperand::with_base_displ(Register::R15, d);
        let at = |b: Register, d: i64| MemoryOperand::with_base_displ(b, d);

        // The fault: (signal, instructions, how many bytes the handler skips).
        let mut pre: Vec<Instruction> = Vec::new();
        let mut post: Vec<Instruction> = Vec::new();
        let (sig, fault, skip_whole): (i32, Instruction, bool) = match self.r.below(8) {
            0 => (4, Instruction::with_declare_byte(&[0x0F, 0x0B]).ok().unwrap_or_default(), true), // ud2: SIGILL
            1 => (5, Instruction::with(Code::Int3), false), // int3: SIGTRAP, rip already past it
            2 => (11, Instruction::with(Code::Hlt), true),  // hlt: SIGSEGV
            3 => {
                let r = self.gpr_full();
                pre.push(Instruction::with2(Code::Xor_r32_rm32, sized(r, 4), sized(r, 4)).ok().unwrap_or_default());
                (
                    11,
                    Instruction::with2(Code::Mov_r64_rm64, r, MemoryOperand::with_base(r)).ok().unwrap_or_default(),
                    true,
                )
            }
            4 => {
                pre.push(Instruction::with2(Code::Xor_r32_rm32, Register::ECX, Register::ECX).ok().unwrap_or_default());
                (8, Instruction::with1(Code::Div_rm32, Register::ECX).ok().unwrap_or_default(), true) // SIGFPE
            }
            5 => {
                let d = SNIPPET as i64 + self.r.below(16) as i64;
                (
                    11,
                    Instruction::with2(Code::Mov_rm8_r8, at(Register::RIP, d), Register::AL).ok().unwrap_or_default(),
                    true,
                )
            }
            6 => {
                let d = 16 * self.r.below(32) as i64 + 1 + self.r.below(15) as i64;
                (
                    11,
                    Instruction::with2(Code::Movaps_xmm_xmmm128, Register::XMM1, r15(d)).ok().unwrap_or_default(),
                    true,
                )
            }
            _ => {
                // Unmasked SSE invalid operation (#XM), MXCSR restored after.
                let tab = r15((TABLES + 0x90) as i64);
                pre.push(Instruction::with2(Code::Mov_rm32_imm32, tab, 0u32).ok().unwrap_or_default());
                pre.push(Instruction::with1(Code::Ldmxcsr_m32, tab).ok().unwrap_or_default());
                pre.push(
                    Instruction::with2(Code::Xorps_xmm_xmmm128, Register::XMM2, Register::XMM2)
                        .ok()
                        .unwrap_or_default(),
                );
                post.push(Instruction::with2(Code::Mov_rm32_imm32, tab, 0x1F80u32).ok().unwrap_or_default());
                post.push(Instruction::with1(Code::Ldmxcsr_m32, tab).ok().unwrap_or_default());
                (
                    8,
                    Instruction::with2(Code::Divss_xmm_xmmm32, Register::XMM2, Register::XMM2).ok().unwrap_or_default(),
                    true,
                )
            }
        };
        let skip = if skip_whole { encoded_len(&fault, SNIPPET).unwrap_or(0) as i32 } else { 0 };
        if fault.code() == Code::INVALID {
            return false;
        }

        let h = self.asm.label();
        let restorer = self.asm.label();
        let over = self.asm.label();
        // struct sigaction { handler, flags, restorer, mask }
        let ok = {
            let mut ok = true;
            self.asm.lea_label(Register::RAX, h);
            ok &= self.ins(Instruction::with2(Code::Mov_rm64_r64, r15(sa), Register::RAX));
            ok &= self.ins(Instruction::with2(
                Code::Mov_rm32_imm32,
                r15(sa + 8),
                (SA_SIGINFO | SA_RESTORER | SA_RESETHAND) as u32,
            ));
            ok &= self.ins(Instruction::with2(Code::Mov_rm32_imm32, r15(sa + 12), 0u32));
            self.asm.lea_label(Register::RAX, restorer);
            ok &= self.ins(Instruction::with2(Code::Mov_rm64_r64, r15(sa + 16), Register::RAX));
            ok &= self.ins(Instruction::with2(Code::Mov_rm64_imm32, r15(sa + 24), 0));
            // rt_sigaction(sig, &sa, NULL, 8)
            ok &= self.ins(Instruction::with2(Code::Mov_r32_imm32, Register::EDI, sig as u32));
            ok &= self.ins(Instruction::with2(Code::Lea_r64_m, Register::RSI, r15(sa)));
            ok &= self.ins(Instruction::with2(Code::Xor_r32_rm32, Register::EDX, Register::EDX));
            ok &= self.ins(Instruction::with2(Code::Mov_r32_imm32, Register::R10D, 8u32));
            ok &= self.ins(Instruction::with2(Code::Mov_r32_imm32, Register::EAX, 13u32));
            self.asm.ins(Instruction::with(Code::Syscall));
            self.asm.branch(Code::Jmp_rel32_64, over);
            ok
        };
        if !ok {
            return false;
        }
        // The handler: rdi = signal, rsi = &siginfo, rdx = &ucontext.
        self.asm.bind(h);
        let mut hs: Vec<Result<Instruction, iced_x86::IcedError>> = vec![
            Instruction::with2(Code::Mov_rm64_r64, r15(D_RSP), Register::RSP),
            Instruction::with2(Code::Mov_r64_rm64, Register::R8, Register::RDX),
            Instruction::with2(Code::Lea_r64_m, Register::RDI, r15(D_INFO)),
            Instruction::with2(Code::Mov_r32_imm32, Register::ECX, 48u32),
            Instruction::with_rep_movsb(64),
            Instruction::with2(Code::Mov_r64_rm64, Register::RSI, Register::R8),
            Instruction::with2(Code::Lea_r64_m, Register::RDI, r15(D_UC)),
            Instruction::with2(Code::Mov_r32_imm32, Register::ECX, 304u32),
            Instruction::with_rep_movsb(64),
            Instruction::with2(Code::Mov_r64_rm64, Register::RSI, at(Register::R8, 224)),
            Instruction::with2(Code::Lea_r64_m, Register::RDI, r15(D_FP)),
            Instruction::with2(Code::Mov_r32_imm32, Register::ECX, 576u32),
            Instruction::with_rep_movsb(64),
            // FIP is an instruction address: bt-run's would be a cache address.
            Instruction::with2(Code::Mov_rm64_imm32, r15(D_FP + 8), 0),
            Instruction::with2(Code::Add_rm64_imm32, at(Register::R8, 168), skip),
        ];
        if self.chance(1, 2) {
            hs.push(Instruction::with2(Code::Mov_rm64_imm32, at(Register::R8, 144), self.imm(32) as i32)); // rax
        }
        if self.chance(1, 2) {
            hs.push(Instruction::with2(Code::Xor_rm64_imm8, at(Register::R8, 176), 0x41)); // CF, ZF
        }
        if self.chance(1, 2) {
            hs.push(Instruction::with2(Code::Mov_r64_rm64, Register::R9, at(Register::R8, 224)));
            hs.push(Instruction::with2(Code::Mov_rm64_imm32, at(Register::R9, 160), self.imm(32) as i32)); // xmm0 low
        }
        for i in hs {
            if !self.ins(i) {
                return false;
            }
        }
        self.asm.ins(Instruction::with(Code::Retnq));
        self.asm.bind(restorer);
        self.ins(Instruction::with2(Code::Mov_r32_imm32, Register::EAX, 15u32));
        self.asm.ins(Instruction::with(Code::Syscall));
        self.asm.bind(over);
        // Fault on a stack outside the dumped area, so the frame does not
        // land on the scratch memory the handler copies into.
        self.ins(Instruction::with2(Code::Mov_rm64_r64, r15(save_rsp), Register::RSP));
        self.ins(Instruction::with2(Code::Lea_r64_m, Register::RSP, r15(0xF000)));
        for i in pre {
            self.asm.ins(i);
        }
        self.asm.ins(fault);
        for i in post {
            self.asm.ins(i);
        }
        self.ins(Instruction::with2(Code::Mov_r64_rm64, Register::RSP, r15(save_rsp)))
    }

    /// Stores `code` at `[base]` with dword (and byte) moves.
    fn store_code(&mut self, base: Register, code: &[u8]) -> bool {
        let mut ok = true;
        for (i, c) in code.chunks(4).enumerate() {
            let m = MemoryOperand::with_base_displ(base, 4 * i as i64);
            ok &= if c.len() == 4 {
                self.ins(Instruction::with2(Code::Mov_rm32_imm32, m, u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            } else {
                c.iter().enumerate().all(|(j, &b)| {
                    let m = MemoryOperand::with_base_displ(base, 4 * i as i64 + j as i64);
                    self.ins(Instruction::with2(Code::Mov_rm8_imm8, m, b as u32))
                })
            };
        }
        ok
    }

    /// A small function for address `at`: 0-3 simple instructions (not
    /// writing the forbidden registers), `mov eax, imm`, `ret`.
    fn jit_function(&mut self, at: u64) -> Option<Vec<u8>> {
        let saved = std::mem::take(&mut self.asm);
        let n = self.r.below(4);
        for _ in 0..n {
            let forms = self.forms;
            self.auto(&forms.simple, false);
        }
        let imm = self.imm(32) as i32 as u32;
        self.ins(Instruction::with2(Code::Mov_r32_imm32, Register::EAX, imm));
        self.asm.ins(Instruction::with(Code::Retnq));
        let code = self.asm.assemble(at).ok();
        self.asm = saved;
        code
    }

    /// Writes a function into the RWX segment, calls it, rewrites it (all of
    /// it or just its immediate), calls it again.
    fn jit(&mut self) -> bool {
        let at = JIT + 0x40 * self.r.below(JIT_MEMSZ / 0x40 - 1);
        let base = loop {
            let r = self.gpr_full();
            if r != Register::RAX {
                break r;
            }
        };
        let keep = loop {
            let r = self.gpr_full();
            if r != Register::RAX && r != base {
                break r;
            }
        };
        self.forbid.push(base);
        self.forbid.push(keep);
        let ok = (|| {
            let f1 = self.jit_function(at)?;
            let f2 = self.jit_function(at)?;
            let mut ok = self.ins(Instruction::with2(Code::Mov_r32_imm32, sized(base, 4), at as u32));
            ok &= self.store_code(base, &f1);
            ok &= self.ins(Instruction::with1(Code::Call_rm64, base));
            ok &= self.ins(Instruction::with2(Code::Mov_r64_rm64, keep, Register::RAX));
            if self.chance(1, 2) {
                // Patch only the immediate of the final `mov eax, imm32`.
                let off = f1.len() as i64 - 5;
                let v = self.imm(32) as i32 as u32;
                ok &= self.ins(Instruction::with2(Code::Mov_rm32_imm32, MemoryOperand::with_base_displ(base, off), v));
            } else {
                ok &= self.store_code(base, &f2);
            }
            if self.chance(1, 3) {
                self.boundary();
            }
            ok &= self.ins(Instruction::with1(Code::Call_rm64, base));
            Some(ok)
        })()
        .unwrap_or(false);
        self.forbid.pop();
        self.forbid.pop();
        ok
    }

    /// `mov eax, imm32; ret` at a fixed place, its immediate rewritten with
    /// the loop counter before each call: every call must see the new code.
    fn jit_loop(&mut self) -> bool {
        let at = JIT + 0x40 * self.r.below(JIT_MEMSZ / 0x40 - 1);
        let pick = |g: &mut Self, not: &[Register]| loop {
            let r = g.gpr_full();
            if !not.contains(&r) {
                break r;
            }
        };
        let base = pick(self, &[Register::RAX, Register::RCX]);
        let acc = pick(self, &[Register::RAX, Register::RCX, base]);
        let n = 1 + self.r.below(6) as u32;
        let mut ok = self.ins(Instruction::with2(Code::Mov_r32_imm32, sized(base, 4), at as u32));
        ok &= self.store_code(base, &[0xB8, 0, 0, 0, 0, 0xC3, 0xCC, 0xCC]);
        ok &= self.ins(Instruction::with2(Code::Mov_r32_imm32, Register::ECX, n));
        let l = self.asm.label();
        self.asm.bind(l);
        ok &= self.ins(Instruction::with2(Code::Mov_rm32_r32, MemoryOperand::with_base_displ(base, 1), Register::ECX));
        ok &= self.ins(Instruction::with1(Code::Call_rm64, base));
        ok &= self.ins(Instruction::with2(Code::Add_r64_rm64, acc, Register::RAX));
        self.asm.branch(Code::Loop_rel8_64_RCX, l);
        ok
    }

    fn rdfsbase(&mut self) -> bool {
        let r = self.gpr_full();
        self.ins(Instruction::with1(Code::Rdfsbase_r64, r))
    }
}

/// Intel-syntax listing of a snippet (for divergence reports).
pub fn listing(code: &[u8]) -> String {
    let mut d = iced_x86::Decoder::with_ip(64, code, SNIPPET, iced_x86::DecoderOptions::NONE);
    let mut f = iced_x86::IntelFormatter::new();
    let mut out = String::new();
    let mut ins = Instruction::default();
    while d.can_decode() {
        let off = (d.ip() - SNIPPET) as usize;
        d.decode_out(&mut ins);
        let raw: Vec<String> = code[off..off + ins.len()].iter().map(|b| format!("{b:02x}")).collect();
        let mut s = String::new();
        iced_x86::Formatter::format(&mut f, &ins, &mut s);
        out.push_str(&format!("    {:#x}: {:<32} {s}\n", ins.ip(), raw.join(" ")));
    }
    out
}
