//! The initial machine state of a case, derived from its seed.
//!
//! The derivation is part of the corpus format (`v1`): changing what a seed
//! produces changes the meaning of every committed case, so do not edit
//! [`init_image`] without bumping the corpus version.

use super::layout::*;

/// SplitMix64: tiny, fast, good enough, and stable forever.
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
    /// True with probability `num/den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }
    pub fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len() as u64) as usize]
    }
    /// A value biased towards the edges of integer ranges.
    pub fn interesting_u64(&mut self) -> u64 {
        const EDGES: [u64; 20] = [
            0,
            1,
            2,
            u64::MAX,
            0x7F,
            0x80,
            0xFF,
            0x100,
            0x7FFF,
            0x8000,
            0xFFFF,
            0x7FFF_FFFF,
            0x8000_0000,
            0xFFFF_FFFF,
            0x1_0000_0000,
            0x7FFF_FFFF_FFFF_FFFF,
            0x8000_0000_0000_0000,
            0xFFFF_FFFF_FFFF_FFFE,
            0x5555_5555_5555_5555,
            0xAAAA_AAAA_AAAA_AAAA,
        ];
        match self.below(8) {
            0..=2 => *self.pick(&EDGES),
            3 => self.below(64),
            4 => (self.below(64) as i64 - 32) as u64,
            5 => self.next_u64() & 0xFFFF_FFFF,
            _ => self.next_u64(),
        }
    }
}

const F64_SPECIAL: [u64; 16] = [
    0x0000_0000_0000_0000, // +0
    0x8000_0000_0000_0000, // -0
    0x3FF0_0000_0000_0000, // 1
    0xBFF8_0000_0000_0000, // -1.5
    0x7FF0_0000_0000_0000, // +inf
    0xFFF0_0000_0000_0000, // -inf
    0x7FF8_0000_0000_0000, // qnan
    0x7FF4_0000_0000_0000, // snan
    0x0000_0000_0000_0001, // min denormal
    0x000F_FFFF_FFFF_FFFF, // max denormal
    0x0010_0000_0000_0000, // min normal
    0x7FEF_FFFF_FFFF_FFFF, // max
    0x4000_0000_0000_0000, // 2
    0x3FE0_0000_0000_0000, // 0.5
    0x41DF_FFFF_FFC0_0000, // 2^31-1
    0xC3E0_0000_0000_0000, // -2^63
];
const F32_SPECIAL: [u32; 16] = [
    0x0000_0000,
    0x8000_0000,
    0x3F80_0000,
    0xBFC0_0000,
    0x7F80_0000,
    0xFF80_0000,
    0x7FC0_0000,
    0x7FA0_0000,
    0x0000_0001,
    0x007F_FFFF,
    0x0080_0000,
    0x7F7F_FFFF,
    0x4000_0000,
    0x3F00_0000,
    0x4F00_0000,
    0xCF00_0000,
];

fn f64_value(r: &mut Rng) -> u64 {
    match r.below(4) {
        0 => *r.pick(&F64_SPECIAL),
        1 => ((r.below(2000) as f64 - 1000.0) / 8.0).to_bits(),
        2 => (r.next_u64() as i64 as f64 / 1e9).to_bits(),
        _ => r.next_u64(),
    }
}

fn f32_value(r: &mut Rng) -> u32 {
    match r.below(4) {
        0 => *r.pick(&F32_SPECIAL),
        1 => ((r.below(2000) as f32 - 1000.0) / 8.0).to_bits(),
        2 => (r.next_u64() as i32 as f32 / 1e5).to_bits(),
        _ => r.next_u64() as u32,
    }
}

/// Fills `out` with a vector value: lanes of interesting floats, doubles,
/// small integers, or random bytes.
fn vector_value(r: &mut Rng, out: &mut [u8]) {
    match r.below(5) {
        0 => out.chunks_mut(4).for_each(|c| c.copy_from_slice(&f32_value(r).to_le_bytes())),
        1 => out.chunks_mut(8).for_each(|c| c.copy_from_slice(&f64_value(r).to_le_bytes())),
        2 => out.chunks_mut(4).for_each(|c| c.copy_from_slice(&((r.below(33) as i32 - 16) as u32).to_le_bytes())),
        3 => out.chunks_mut(8).for_each(|c| c.copy_from_slice(&r.interesting_u64().to_le_bytes())),
        _ => out.iter_mut().for_each(|b| *b = r.next_u64() as u8),
    }
}

/// The initial values the prologue loads (also shown in divergence reports).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitState {
    pub gpr: [u64; 16],
    pub flags: u64,
    pub mxcsr: u32,
    pub fcw: u16,
}

/// The first `INIT_END` bytes of the data area for `seed`: scratch memory,
/// stack contents and the initial register state.
pub fn init_image(seed: u64) -> Vec<u8> {
    let mut r = Rng::new(seed ^ 0x6571_7569_7631); // "equiv1"
    let mut img = vec![0u8; INIT_END as usize];
    // Scratch: random bytes, then the FP tables, then small integers, random again.
    for b in img[..FP_F64 as usize].iter_mut() {
        *b = r.next_u64() as u8;
    }
    for i in 0..((FP_F32 - FP_F64) / 8) as usize {
        let v = f64_value(&mut r);
        img[FP_F64 as usize + 8 * i..][..8].copy_from_slice(&v.to_le_bytes());
    }
    for i in 0..((FP_F80 - FP_F32) / 4) as usize {
        let v = f32_value(&mut r);
        img[FP_F32 as usize + 4 * i..][..4].copy_from_slice(&v.to_le_bytes());
    }
    for i in 0..((FP_END - FP_F80) / 16) as usize {
        // 80-bit extended values: mostly normal numbers, sometimes odd encodings.
        let off = FP_F80 as usize + 16 * i;
        let (mant, exp): (u64, u16) = match r.below(4) {
            0 => (r.next_u64(), r.next_u64() as u16),
            _ => (r.next_u64() | (1 << 63), (0x3FFF - 40 + r.below(80) as u16) | ((r.below(2) as u16) << 15)),
        };
        img[off..off + 8].copy_from_slice(&mant.to_le_bytes());
        img[off + 8..off + 10].copy_from_slice(&exp.to_le_bytes());
    }
    for i in 0..((0xC00 - FP_END) / 4) as usize {
        let v = (r.below(33) as i32 - 16) as u32;
        img[FP_END as usize + 4 * i..][..4].copy_from_slice(&v.to_le_bytes());
    }
    for b in img[0xC00..SCRATCH_END as usize].iter_mut() {
        *b = r.next_u64() as u8;
    }
    // Stack contents (what a pop before any push would read).
    for c in img[STACK_LO as usize..STACK_HI as usize].chunks_mut(8) {
        c.copy_from_slice(&r.interesting_u64().to_le_bytes());
    }
    let st = init_state_from(&mut r);
    for (i, v) in st.gpr.iter().enumerate() {
        img[(INIT_GPR + 8 * i as u64) as usize..][..8].copy_from_slice(&v.to_le_bytes());
    }
    img[INIT_FLAGS as usize..][..8].copy_from_slice(&st.flags.to_le_bytes());
    img[INIT_MXCSR as usize..][..4].copy_from_slice(&st.mxcsr.to_le_bytes());
    img[INIT_FCW as usize..][..2].copy_from_slice(&st.fcw.to_le_bytes());
    for i in 0..32 {
        let off = (INIT_VEC + VEC_SLOT * i) as usize;
        vector_value(&mut r, &mut img[off..off + VEC_SLOT as usize]);
    }
    for i in 0..8 {
        let v = r.interesting_u64();
        img[(INIT_K + 8 * i) as usize..][..8].copy_from_slice(&v.to_le_bytes());
    }
    img
}

fn init_state_from(r: &mut Rng) -> InitState {
    let mut gpr = [0u64; 16];
    for (i, g) in gpr.iter_mut().enumerate() {
        *g = match i {
            RSP => DATA + STACK_INIT,
            R15 => DATA,
            _ => r.interesting_u64(),
        };
    }
    let mut flags = r.next_u64() & ARITH_FLAGS;
    if r.chance(1, 8) {
        flags |= DF;
    }
    flags |= 0x202; // bit 1 (always 1) and IF
    let mxcsr = if r.chance(3, 4) {
        0x1F80
    } else {
        // Keep every exception masked; vary rounding, FTZ, DAZ and the sticky flags.
        0x1F80
            | ((r.below(4) as u32) << 13)
            | ((r.below(2) as u32) << 15)
            | ((r.below(2) as u32) << 6)
            | (r.below(64) as u32)
    };
    let fcw = if r.chance(3, 4) {
        0x037F
    } else {
        // Exceptions masked (0x3f), bit 6 set; vary precision and rounding control.
        0x007F | ((r.below(4) as u16) << 8) | ((r.below(4) as u16) << 10)
    };
    InitState { gpr, flags, mxcsr, fcw }
}

/// The register part of the initial state for `seed` (for reports).
pub fn init_state(seed: u64) -> InitState {
    let img = init_image(seed);
    let u64_at = |off: u64| u64::from_le_bytes(img[off as usize..off as usize + 8].try_into().unwrap_or([0; 8]));
    let mut gpr = [0u64; 16];
    for (i, g) in gpr.iter_mut().enumerate() {
        *g = u64_at(INIT_GPR + 8 * i as u64);
    }
    InitState {
        gpr,
        flags: u64_at(INIT_FLAGS),
        mxcsr: u32::from_le_bytes(img[INIT_MXCSR as usize..][..4].try_into().unwrap_or([0; 4])),
        fcw: u16::from_le_bytes(img[INIT_FCW as usize..][..2].try_into().unwrap_or([0; 2])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_is_deterministic_and_keeps_reserved_registers() {
        let a = init_image(42);
        assert_eq!(a, init_image(42));
        assert_ne!(a, init_image(43));
        let s = init_state(42);
        assert_eq!(s.gpr[RSP], DATA + STACK_INIT);
        assert_eq!(s.gpr[R15], DATA);
        assert_eq!(s.flags & !(FLAGS_MASK | 0x202), 0);
        assert_eq!(s.mxcsr & 0x1F80, 0x1F80);
        assert_eq!(s.fcw & 0x3F, 0x3F);
    }
}
