//! ELF parsing and validation: turns untrusted file bytes into a [`LoadPlan`]
//! (what to map where). Pure: no unsafe, no I/O beyond the bytes it is given,
//! never panics, never allocates in proportion to an unvalidated size.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use goblin::container::Endian;
use goblin::elf::header::{
    EI_CLASS, EI_DATA, ELFCLASS32, ELFCLASS64, ELFDATA2LSB, ELFMAG, EM_X86_64, ET_CORE, ET_DYN, ET_EXEC, ET_REL,
    SELFMAG,
};
use goblin::elf::program_header::{PF_R, PF_W, PF_X, PT_GNU_STACK, PT_INTERP, PT_LOAD, PT_PHDR};
use goblin::elf64::header::{Header, SIZEOF_EHDR};
use goblin::elf64::program_header::{ProgramHeader, SIZEOF_PHDR};

/// Page size of x86-64 Linux; segment offsets and addresses must be congruent
/// modulo this.
pub const PAGE_SIZE: u64 = 4096;
/// Largest program header table accepted (the kernel's limit, fs/binfmt_elf.c).
pub const MAX_PHDR_TABLE: u64 = 65536;
/// Largest PT_INTERP accepted (PATH_MAX, as the kernel).
pub const MAX_INTERP_LEN: u64 = 4096;
/// Largest total span of the PT_LOAD segments of one file (1 TiB): anything
/// larger is not a real program and would only exhaust the address space.
pub const MAX_SPAN: u64 = 1 << 40;
/// End of the x86-64 user address space (the kernel's TASK_SIZE, 4-level paging).
pub const TASK_SIZE: u64 = 0x7fff_ffff_f000;

/// Why a file cannot be loaded. Messages are the reason part of
/// "PATH: reason".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ElfError {
    #[error("cannot execute binary file: Exec format error (not an ELF file)")]
    NotElf,
    #[error("ELF32 binaries are not supported")]
    Elf32,
    #[error("cannot execute binary file: big-endian ELF is not supported")]
    BigEndian,
    #[error("cannot execute binary file: not an x86-64 program (e_machine {0})")]
    WrongMachine(u16),
    #[error("cannot execute binary file: {0}")]
    WrongType(&'static str),
    #[error("truncated ELF file: {0}")]
    Truncated(String),
    #[error("malformed ELF file: {0}")]
    Malformed(String),
    #[error("cannot read: {0}")]
    Read(String),
}

/// The type of a loadable ELF file.
#[derive(Debug, Copy, Clone, PartialEq, Eq)]
pub enum ElfKind {
    /// ET_EXEC: mapped at its link-time addresses.
    Exec,
    /// ET_DYN: position independent, mapped at a base the kernel chooses.
    Dyn,
}

/// One PT_LOAD segment. Addresses here are link-time (unbiased) virtual
/// addresses: add the load bias to get a guest address.
#[derive(Debug, Copy, Clone, PartialEq, Eq)]
pub struct Segment {
    pub vaddr: u64,
    pub memsz: u64,
    pub filesz: u64,
    pub offset: u64,
    /// PF_R | PF_W | PF_X bits of p_flags.
    pub flags: u32,
    pub align: u64,
}

impl Segment {
    /// The guest's view of this segment's protection (PROT_* bits).
    pub fn guest_prot(&self) -> i32 {
        let mut prot = 0;
        if self.flags & PF_R != 0 {
            prot |= libc::PROT_READ;
        }
        if self.flags & PF_W != 0 {
            prot |= libc::PROT_WRITE;
        }
        if self.flags & PF_X != 0 {
            prot |= libc::PROT_EXEC;
        }
        prot
    }
}

/// What to map for one ELF file, fully validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadPlan {
    pub kind: ElfKind,
    /// Link-time e_entry (inside a PT_LOAD segment).
    pub entry: u64,
    /// PT_LOAD segments, sorted by vaddr, not overlapping, each memsz > 0.
    pub segments: Vec<Segment>,
    /// PT_INTERP path, if any (without its NUL).
    pub interp: Option<PathBuf>,
    /// Link-time address of the program headers in memory (AT_PHDR unbiased).
    pub phdr_vaddr: u64,
    /// Number of program headers (AT_PHNUM).
    pub phnum: u16,
    /// Page-aligned lowest address of the segments.
    pub min_vaddr: u64,
    /// Page-aligned end of the highest segment.
    pub max_vaddr: u64,
    /// Largest power-of-two p_align among the PT_LOAD segments (at least a page).
    pub max_align: u64,
    /// PT_GNU_STACK asks for an executable stack (guest view only).
    pub exec_stack: bool,
}

impl LoadPlan {
    /// Total span of the segments in bytes (page multiple, > 0).
    pub fn span(&self) -> u64 {
        self.max_vaddr - self.min_vaddr
    }

    /// Parses and validates a whole ELF file held in memory.
    pub fn parse(bytes: &[u8]) -> Result<LoadPlan, ElfError> {
        Self::parse_with(bytes.len() as u64, |off, len| {
            let start = usize::try_from(off).map_err(|_| ElfError::Truncated("offset".into()))?;
            let end = start.checked_add(len).ok_or_else(|| ElfError::Truncated("offset".into()))?;
            bytes
                .get(start..end)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| ElfError::Truncated(format!("{len} bytes at {off:#x}")))
        })
    }

    /// Parses and validates an ELF file of `file_len` bytes, reading only
    /// the parts it needs through `read(offset, len)`. Every read is bounded
    /// (header, at most 64 KiB of program headers, at most PATH_MAX of
    /// interpreter name) and lies inside `file_len`.
    pub fn parse_with<F>(file_len: u64, mut read: F) -> Result<LoadPlan, ElfError>
    where
        F: FnMut(u64, usize) -> Result<Vec<u8>, ElfError>,
    {
        // e_ident first: magic, class, data encoding.
        let ident_len = file_len.min(SIZEOF_EHDR as u64) as usize;
        let head = read(0, ident_len)?;
        if head.len() < SELFMAG || &head[..SELFMAG] != ELFMAG {
            return Err(ElfError::NotElf);
        }
        match head.get(EI_CLASS) {
            None => return Err(ElfError::Truncated("ELF identification".into())),
            Some(&ELFCLASS64) => {}
            Some(&ELFCLASS32) => return Err(ElfError::Elf32),
            Some(c) => return Err(ElfError::Malformed(format!("invalid ELF class {c}"))),
        }
        match head.get(EI_DATA) {
            None => return Err(ElfError::Truncated("ELF identification".into())),
            Some(&ELFDATA2LSB) => {}
            Some(2) => return Err(ElfError::BigEndian),
            Some(d) => {
                return Err(ElfError::Malformed(format!("invalid ELF data encoding {d}")));
            }
        }
        if head.len() < SIZEOF_EHDR {
            return Err(ElfError::Truncated(format!("{} bytes, shorter than an ELF header", head.len())));
        }
        let ehdr = Header::parse(&head).map_err(|e| ElfError::Malformed(e.to_string()))?;
        if ehdr.e_machine != EM_X86_64 {
            return Err(ElfError::WrongMachine(ehdr.e_machine));
        }
        let kind = match ehdr.e_type {
            ET_EXEC => ElfKind::Exec,
            ET_DYN => ElfKind::Dyn,
            ET_REL => return Err(ElfError::WrongType("relocatable object file")),
            ET_CORE => return Err(ElfError::WrongType("core dump")),
            _ => return Err(ElfError::WrongType("unsupported ELF file type")),
        };

        // Program header table: bounded before anything is read or allocated.
        if usize::from(ehdr.e_phentsize) != SIZEOF_PHDR {
            return Err(ElfError::Malformed(format!(
                "program header entry size {} (expected {SIZEOF_PHDR})",
                ehdr.e_phentsize
            )));
        }
        let phnum = ehdr.e_phnum;
        if phnum == 0 {
            return Err(ElfError::Malformed("no program headers".into()));
        }
        let table_len = u64::from(phnum) * SIZEOF_PHDR as u64;
        if table_len > MAX_PHDR_TABLE {
            return Err(ElfError::Malformed(format!("too many program headers ({phnum})")));
        }
        let table_end = ehdr
            .e_phoff
            .checked_add(table_len)
            .filter(|&end| end <= file_len)
            .ok_or_else(|| ElfError::Truncated("program header table past end of file".into()))?;
        debug_assert!(table_end <= file_len);
        let table = read(ehdr.e_phoff, table_len as usize)?;
        let phdrs = ProgramHeader::parse(&table, 0, usize::from(phnum), Endian::Little)
            .map_err(|e| ElfError::Truncated(format!("program headers: {e}")))?;

        let mut segments: Vec<Segment> = Vec::new();
        let mut interp = None;
        let mut pt_phdr = None;
        let mut exec_stack = false;
        let mut max_align = PAGE_SIZE;
        let mut prev_end: Option<u64> = None;
        for ph in &phdrs {
            match ph.p_type {
                PT_LOAD => {
                    let seg = check_load(ph, file_len)?;
                    if prev_end.is_some_and(|end| seg.vaddr < end) {
                        return Err(ElfError::Malformed(
                            "PT_LOAD segments overlap or are not sorted by address".into(),
                        ));
                    }
                    if seg.align.is_power_of_two() && seg.align > max_align {
                        max_align = seg.align;
                    }
                    // memsz == 0 segments map nothing (the kernel skips them too).
                    if seg.memsz > 0 {
                        prev_end = Some(seg.vaddr + seg.memsz);
                        segments.push(seg);
                    }
                }
                PT_INTERP if interp.is_none() => {
                    interp = Some(read_interp(ph, file_len, &mut read)?);
                }
                PT_PHDR if pt_phdr.is_none() => pt_phdr = Some(ph.p_vaddr),
                PT_GNU_STACK => exec_stack = ph.p_flags & PF_X != 0,
                _ => {}
            }
        }
        let (Some(first), Some(last)) = (segments.first(), segments.last()) else {
            return Err(ElfError::Malformed("no loadable segments".into()));
        };
        let min_vaddr = page_down(first.vaddr);
        let max_vaddr =
            page_up(last.vaddr + last.memsz).ok_or_else(|| ElfError::Malformed("segment end overflows".into()))?;
        let span = max_vaddr - min_vaddr;
        if span > MAX_SPAN {
            return Err(ElfError::Malformed(format!(
                "segments span {span:#x} bytes, more than the {MAX_SPAN:#x} supported"
            )));
        }
        if kind == ElfKind::Exec && max_vaddr > TASK_SIZE {
            return Err(ElfError::Malformed(format!("segment end {max_vaddr:#x} is outside the user address space")));
        }
        let entry = ehdr.e_entry;
        if !segments.iter().any(|s| entry >= s.vaddr && entry - s.vaddr < s.memsz) {
            return Err(ElfError::Malformed(format!("entry point {entry:#x} is outside the loadable segments")));
        }
        let phdr_vaddr = pt_phdr.unwrap_or_else(|| phdr_in_memory(&segments, ehdr.e_phoff));
        Ok(LoadPlan { kind, entry, segments, interp, phdr_vaddr, phnum, min_vaddr, max_vaddr, max_align, exec_stack })
    }
}

/// Validates one PT_LOAD program header against the file.
fn check_load(ph: &ProgramHeader, file_len: u64) -> Result<Segment, ElfError> {
    let what = |msg: &str| ElfError::Malformed(format!("PT_LOAD at {:#x}: {msg}", ph.p_vaddr));
    if ph.p_filesz > ph.p_memsz {
        return Err(what("file size larger than memory size"));
    }
    let file_end = ph.p_offset.checked_add(ph.p_filesz);
    if file_end.is_none_or(|end| end > file_len) {
        return Err(ElfError::Truncated(format!("PT_LOAD at {:#x} extends past the end of the file", ph.p_vaddr)));
    }
    if ph.p_vaddr.checked_add(ph.p_memsz).and_then(page_up).is_none() {
        return Err(what("address range overflows"));
    }
    if ph.p_memsz > MAX_SPAN {
        return Err(what("segment too large"));
    }
    if ph.p_vaddr % PAGE_SIZE != ph.p_offset % PAGE_SIZE {
        return Err(what("address and file offset are not congruent modulo the page size"));
    }
    Ok(Segment {
        vaddr: ph.p_vaddr,
        memsz: ph.p_memsz,
        filesz: ph.p_filesz,
        offset: ph.p_offset,
        flags: ph.p_flags & (PF_R | PF_W | PF_X),
        align: ph.p_align,
    })
}

/// Reads the PT_INTERP path (as the kernel: 2..=PATH_MAX bytes, NUL-terminated).
fn read_interp<F>(ph: &ProgramHeader, file_len: u64, read: &mut F) -> Result<PathBuf, ElfError>
where
    F: FnMut(u64, usize) -> Result<Vec<u8>, ElfError>,
{
    if ph.p_filesz < 2 || ph.p_filesz > MAX_INTERP_LEN {
        return Err(ElfError::Malformed(format!("PT_INTERP of {} bytes", ph.p_filesz)));
    }
    if ph.p_offset.checked_add(ph.p_filesz).is_none_or(|end| end > file_len) {
        return Err(ElfError::Truncated("PT_INTERP past end of file".into()));
    }
    let bytes = read(ph.p_offset, ph.p_filesz as usize)?;
    if bytes.last() != Some(&0) {
        return Err(ElfError::Malformed("PT_INTERP is not NUL-terminated".into()));
    }
    let name = bytes.split(|&b| b == 0).next().unwrap_or_default();
    if name.is_empty() {
        return Err(ElfError::Malformed("empty PT_INTERP".into()));
    }
    Ok(PathBuf::from(OsStr::from_bytes(name)))
}

/// Where the program headers are in memory without a PT_PHDR: inside the
/// PT_LOAD that maps file offset e_phoff (as the kernel since 5.18), else
/// relative to the first PT_LOAD.
fn phdr_in_memory(segments: &[Segment], phoff: u64) -> u64 {
    for s in segments {
        if s.offset <= phoff && phoff - s.offset < s.filesz {
            return s.vaddr + (phoff - s.offset);
        }
    }
    segments.first().map_or(0, |s| s.vaddr.wrapping_sub(s.offset).wrapping_add(phoff))
}

/// Rounds down to a page boundary.
pub const fn page_down(v: u64) -> u64 {
    v & !(PAGE_SIZE - 1)
}

/// Rounds up to a page boundary; None on overflow.
pub const fn page_up(v: u64) -> Option<u64> {
    match v.checked_add(PAGE_SIZE - 1) {
        Some(x) => Some(x & !(PAGE_SIZE - 1)),
        None => None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A static x86-64 executable: /bin/busybox if it is one, else one
    /// compiled with `gcc -static` into a temporary directory.
    pub(crate) fn static_binary() -> Option<PathBuf> {
        let bb = PathBuf::from("/bin/busybox");
        if let Ok(bytes) = std::fs::read(&bb)
            && let Ok(plan) = LoadPlan::parse(&bytes)
            && plan.interp.is_none()
            && plan.kind == ElfKind::Exec
        {
            return Some(bb);
        }
        let dir = std::env::temp_dir().join(format!("bt-run-loader-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok()?;
        let src = dir.join("hello.c");
        std::fs::write(&src, "int main(void){return 0;}\n").ok()?;
        let out = dir.join("hello-static");
        let ok = std::process::Command::new("gcc")
            .args(["-static", "-no-pie", "-O1", "-o"])
            .arg(&out)
            .arg(&src)
            .status()
            .ok()?
            .success();
        ok.then_some(out)
    }

    fn static_bytes() -> Vec<u8> {
        let path = static_binary().expect("no static binary: install busybox-static or gcc");
        std::fs::read(path).expect("read static binary")
    }

    #[test]
    fn loader_parses_real_static_binary() {
        let bytes = static_bytes();
        let plan = LoadPlan::parse(&bytes).expect("parse");
        assert_eq!(plan.kind, ElfKind::Exec);
        assert!(plan.interp.is_none());
        assert!(!plan.segments.is_empty());
        assert!(plan.segments.iter().any(|s| s.flags & PF_X != 0), "no code segment");
        assert!(plan.span() > 0 && plan.span().is_multiple_of(PAGE_SIZE));
        assert!(plan.min_vaddr <= plan.entry && plan.entry < plan.max_vaddr);
        for w in plan.segments.windows(2) {
            assert!(w[0].vaddr + w[0].memsz <= w[1].vaddr);
        }
        // Cross-check with goblin's full parser.
        let elf = goblin::elf::Elf::parse(&bytes).expect("goblin");
        assert_eq!(elf.entry, plan.entry);
        let loads = elf.program_headers.iter().filter(|p| p.p_type == PT_LOAD).count();
        assert_eq!(loads, plan.segments.len());
        assert_eq!(plan.phnum as usize, elf.program_headers.len());
    }

    #[test]
    fn loader_parses_dynamic_binary_interp() {
        let bytes = std::fs::read("/bin/ls").or_else(|_| std::fs::read("/bin/sh")).unwrap();
        let plan = LoadPlan::parse(&bytes).expect("parse");
        assert_eq!(plan.kind, ElfKind::Dyn);
        let interp = plan.interp.expect("PT_INTERP");
        assert!(interp.to_string_lossy().contains("ld-linux"), "{interp:?}");
    }

    #[test]
    fn loader_rejects_every_truncation() {
        let bytes = static_bytes();
        // Every prefix up to past the program headers must fail cleanly
        // (no panic), and so must a prefix that cuts the segments.
        let ph_end = 64 + 56 * 16;
        for len in 0..ph_end.min(bytes.len()) {
            assert!(LoadPlan::parse(&bytes[..len]).is_err(), "prefix {len} accepted");
        }
        let err = LoadPlan::parse(&bytes[..bytes.len() / 2]).unwrap_err();
        assert!(matches!(err, ElfError::Truncated(_)), "{err:?}");
        assert!(matches!(LoadPlan::parse(&bytes[..40]), Err(ElfError::Truncated(_))));
    }

    #[test]
    fn loader_rejects_wrong_class_machine_type() {
        let bytes = static_bytes();
        let mut b = bytes.clone();
        b[EI_CLASS] = ELFCLASS32;
        assert_eq!(LoadPlan::parse(&b), Err(ElfError::Elf32));
        assert_eq!(ElfError::Elf32.to_string(), "ELF32 binaries are not supported");
        let mut b = bytes.clone();
        b[EI_CLASS] = 7;
        assert!(matches!(LoadPlan::parse(&b), Err(ElfError::Malformed(_))));
        let mut b = bytes.clone();
        b[EI_DATA] = 2;
        assert_eq!(LoadPlan::parse(&b), Err(ElfError::BigEndian));
        let mut b = bytes.clone();
        b[18..20].copy_from_slice(&183u16.to_le_bytes()); // EM_AARCH64
        assert_eq!(LoadPlan::parse(&b), Err(ElfError::WrongMachine(183)));
        let mut b = bytes.clone();
        b[16..18].copy_from_slice(&ET_REL.to_le_bytes());
        assert!(matches!(LoadPlan::parse(&b), Err(ElfError::WrongType(_))));
        let mut b = bytes.clone();
        b[54..56].copy_from_slice(&32u16.to_le_bytes()); // e_phentsize
        assert!(matches!(LoadPlan::parse(&b), Err(ElfError::Malformed(_))));
        let mut b = bytes.clone();
        b[56..58].copy_from_slice(&0xffffu16.to_le_bytes()); // e_phnum
        assert!(LoadPlan::parse(&b).is_err());
        let mut b = bytes;
        b[32..40].copy_from_slice(&u64::MAX.to_le_bytes()); // e_phoff
        assert!(matches!(LoadPlan::parse(&b), Err(ElfError::Truncated(_))));
    }

    /// Finds the offset of the first PT_LOAD program header.
    fn first_load_ph(b: &[u8]) -> usize {
        let phoff = u64::from_le_bytes(b[32..40].try_into().unwrap()) as usize;
        let phnum = u16::from_le_bytes(b[56..58].try_into().unwrap()) as usize;
        (0..phnum)
            .map(|i| phoff + i * 56)
            .find(|&o| u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) == PT_LOAD)
            .unwrap()
    }

    #[test]
    fn loader_rejects_inconsistent_segments() {
        let bytes = static_bytes();
        let ph = first_load_ph(&bytes);
        let set =
            |b: &mut Vec<u8>, field: usize, v: u64| b[ph + field..ph + field + 8].copy_from_slice(&v.to_le_bytes());
        // p_offset 8, p_vaddr 16, p_filesz 32, p_memsz 40
        let mut b = bytes.clone();
        set(&mut b, 32, u64::MAX);
        assert!(LoadPlan::parse(&b).is_err());
        let mut b = bytes.clone();
        set(&mut b, 40, 0x10);
        set(&mut b, 32, 0x20);
        assert!(LoadPlan::parse(&b).is_err(), "filesz > memsz accepted");
        let mut b = bytes.clone();
        set(&mut b, 16, u64::MAX - 0x10);
        assert!(LoadPlan::parse(&b).is_err(), "vaddr overflow accepted");
        let mut b = bytes.clone();
        set(&mut b, 8, 0x123);
        assert!(LoadPlan::parse(&b).is_err(), "incongruent offset accepted");
        let mut b = bytes.clone();
        set(&mut b, 40, 1 << 50);
        assert!(LoadPlan::parse(&b).is_err(), "absurd memsz accepted");
        let mut b = bytes;
        b[ph..ph + 4].copy_from_slice(&0u32.to_le_bytes());
        // Removing the first PT_LOAD leaves the entry outside or the file
        // inconsistent; either way no panic.
        let _ = LoadPlan::parse(&b);
    }

    #[test]
    fn loader_rejects_garbage_without_panicking() {
        assert_eq!(LoadPlan::parse(b""), Err(ElfError::NotElf));
        assert_eq!(LoadPlan::parse(b"#!/bin/sh\necho hi\n"), Err(ElfError::NotElf));
        assert_eq!(LoadPlan::parse(b"\x7fEL"), Err(ElfError::NotElf));
        assert!(matches!(LoadPlan::parse(b"\x7fELF"), Err(ElfError::Truncated(_))));
        // Deterministic pseudo-random inputs, some with a valid-looking header.
        let real = static_bytes();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for round in 0..4000 {
            let len = (x % 600) as usize;
            let mut buf: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            if round % 2 == 0 {
                let n = buf.len().min(64);
                buf[..n].copy_from_slice(&real[..n]);
            }
            let _ = LoadPlan::parse(&buf);
        }
        // Bit flips over the whole header + program header region of the real file.
        let region = (64 + 56 * 12).min(real.len());
        let mut b = real.clone();
        for i in 0..region {
            for bit in [0x01u8, 0x80] {
                b[i] ^= bit;
                let _ = LoadPlan::parse(&b);
                b[i] ^= bit;
            }
        }
    }
}
