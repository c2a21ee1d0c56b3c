//! A minimal static ELF64 ET_EXEC writer for equivalence cases: a code
//! segment (R+X) at [`CODE_BASE`] holding the headers, the prologue, the
//! snippet and the epilogue, a data segment (RW) at [`DATA`] whose first
//! [`INIT_END`] bytes come from the file, and an empty RWX segment at
//! [`JIT`] for code generated at run time.

use super::code::{epilogue, prologue};
use super::layout::*;
use super::state::init_image;

const EHDR: usize = 64;
const PHDR: usize = 56;
const PHNUM: usize = 4;
const PAGE: u64 = 0x1000;

fn put16(v: &mut [u8], off: usize, x: u16) {
    v[off..off + 2].copy_from_slice(&x.to_le_bytes());
}
fn put32(v: &mut [u8], off: usize, x: u32) {
    v[off..off + 4].copy_from_slice(&x.to_le_bytes());
}
fn put64(v: &mut [u8], off: usize, x: u64) {
    v[off..off + 8].copy_from_slice(&x.to_le_bytes());
}

#[allow(clippy::too_many_arguments)]
fn phdr(v: &mut [u8], i: usize, ty: u32, flags: u32, off: u64, vaddr: u64, filesz: u64, memsz: u64, align: u64) {
    let o = EHDR + i * PHDR;
    put32(v, o, ty);
    put32(v, o + 4, flags);
    put64(v, o + 8, off);
    put64(v, o + 16, vaddr);
    put64(v, o + 24, vaddr);
    put64(v, o + 32, filesz);
    put64(v, o + 40, memsz);
    put64(v, o + 48, align);
}

/// The complete executable for `snippet` (encoded for [`SNIPPET`]) with the
/// initial state of `seed`; `vec_level` as in
/// [`super::Features::vector_level`].
pub fn build(snippet: &[u8], seed: u64, vec_level: u8) -> Vec<u8> {
    assert!(snippet.len() <= MAX_SNIPPET, "snippet of {} bytes is too large", snippet.len());
    let pro = prologue(vec_level);
    let epi = epilogue(vec_level);
    let code_end = (SNIPPET - CODE_BASE) as usize + snippet.len() + epi.len();
    let data_off = (code_end as u64).div_ceil(PAGE) * PAGE;
    let mut f = vec![0u8; data_off as usize + INIT_END as usize];
    // Fill the gaps with int3 so a stray jump traps.
    f[EHDR + PHNUM * PHDR..code_end].fill(0xCC);

    // ELF header.
    f[0..4].copy_from_slice(b"\x7fELF");
    f[4] = 2; // ELFCLASS64
    f[5] = 1; // little endian
    f[6] = 1; // EV_CURRENT
    f[7] = 0; // System V ABI
    put16(&mut f, 16, 2); // ET_EXEC
    put16(&mut f, 18, 62); // EM_X86_64
    put32(&mut f, 20, 1);
    put64(&mut f, 24, PROLOGUE); // e_entry
    put64(&mut f, 32, EHDR as u64); // e_phoff
    put64(&mut f, 40, 0); // e_shoff
    put32(&mut f, 48, 0); // e_flags
    put16(&mut f, 52, EHDR as u16);
    put16(&mut f, 54, PHDR as u16);
    put16(&mut f, 56, PHNUM as u16);
    put16(&mut f, 58, 64); // e_shentsize
    put16(&mut f, 60, 0); // e_shnum
    put16(&mut f, 62, 0); // e_shstrndx

    const PT_LOAD: u32 = 1;
    const PT_GNU_STACK: u32 = 0x6474_e551;
    const R: u32 = 4;
    const W: u32 = 2;
    const X: u32 = 1;
    phdr(&mut f, 0, PT_LOAD, R | X, 0, CODE_BASE, code_end as u64, code_end as u64, PAGE);
    phdr(&mut f, 1, PT_LOAD, R | W, data_off, DATA, INIT_END, DATA_MEMSZ, PAGE);
    phdr(&mut f, 2, PT_GNU_STACK, R | W, 0, 0, 0, 0, 16);
    // An RWX page pair for code written at run time (the `jit` class).
    phdr(&mut f, 3, PT_LOAD, R | W | X, 0, JIT, 0, JIT_MEMSZ, PAGE);

    let p = (PROLOGUE - CODE_BASE) as usize;
    f[p..p + pro.len()].copy_from_slice(&pro);
    let s = (SNIPPET - CODE_BASE) as usize;
    f[s..s + snippet.len()].copy_from_slice(snippet);
    f[s + snippet.len()..s + snippet.len() + epi.len()].copy_from_slice(&epi);
    f[data_off as usize..].copy_from_slice(&init_image(seed));
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_sane() {
        let f = build(&[0x90], 1, 1);
        assert_eq!(&f[..4], b"\x7fELF");
        assert_eq!(f.len() % 0x1000, 0);
        assert!(f.len() >= 0x3000 + INIT_END as usize);
        assert_eq!(f[(SNIPPET - CODE_BASE) as usize], 0x90);
    }
}
