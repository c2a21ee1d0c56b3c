//! The guest's initial stack image: strings, AT_RANDOM bytes, auxv, envp,
//! argv and argc laid out exactly as the Linux kernel does (fs/exec.c and
//! create_elf_tables in fs/binfmt_elf.c). Pure: builds bytes for a given
//! stack top; map.rs copies them into the guest stack.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

use translator::GuestAddr;

// Auxiliary vector keys (include/uapi/linux/auxvec.h).
pub const AT_NULL: u64 = 0;
pub const AT_PHDR: u64 = 3;
pub const AT_PHENT: u64 = 4;
pub const AT_PHNUM: u64 = 5;
pub const AT_PAGESZ: u64 = 6;
pub const AT_BASE: u64 = 7;
pub const AT_FLAGS: u64 = 8;
pub const AT_ENTRY: u64 = 9;
pub const AT_UID: u64 = 11;
pub const AT_EUID: u64 = 12;
pub const AT_GID: u64 = 13;
pub const AT_EGID: u64 = 14;
pub const AT_PLATFORM: u64 = 15;
pub const AT_HWCAP: u64 = 16;
pub const AT_CLKTCK: u64 = 17;
pub const AT_SECURE: u64 = 23;
pub const AT_RANDOM: u64 = 25;
pub const AT_HWCAP2: u64 = 26;
pub const AT_EXECFN: u64 = 31;
pub const AT_SYSINFO_EHDR: u64 = 33;
pub const AT_MINSIGSTKSZ: u64 = 51;

/// AT_PLATFORM string on x86-64 (the kernel's utsname machine).
pub const PLATFORM: &[u8] = b"x86_64";
/// Longest single argument or environment string (MAX_ARG_STRLEN, 32 pages).
pub const MAX_ARG_STRLEN: usize = 32 * 4096;
/// Size of one program header (AT_PHENT).
pub const PHENT_SIZE: u64 = 56;

/// Host-provided values that go into the auxiliary vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AuxInputs {
    /// vDSO address (AT_SYSINFO_EHDR), omitted when 0.
    pub sysinfo_ehdr: u64,
    /// AT_MINSIGSTKSZ, omitted when 0.
    pub minsigstksz: u64,
    pub hwcap: u64,
    pub hwcap2: u64,
    pub pagesz: u64,
    pub clktck: u64,
    /// Program headers of the main program in guest memory.
    pub phdr: GuestAddr,
    pub phnum: u64,
    /// Interpreter base, 0 without one.
    pub base: u64,
    /// Entry point of the main program (biased).
    pub entry: GuestAddr,
    pub uid: u64,
    pub euid: u64,
    pub gid: u64,
    pub egid: u64,
}

/// Everything the stack image is built from.
#[derive(Debug, Clone)]
pub struct StackInputs<'a> {
    /// AT_EXECFN string: the path as given.
    pub execfn: &'a OsStr,
    pub argv: &'a [OsString],
    pub envp: &'a [OsString],
    pub aux: AuxInputs,
    /// AT_RANDOM bytes.
    pub random: [u8; 16],
    /// Bytes subtracted below the strings before 16-alignment
    /// (arch_align_stack's randomization, < 8192; 0 when not randomizing).
    pub align_pad: u64,
    /// Size of the stack mapping: the whole image must fit in it.
    pub stack_size: u64,
    /// Most bytes the strings and pointers may take (the kernel's
    /// bprm_stack_limits: see [`arg_limit`]).
    pub arg_limit: u64,
}

/// The stack image: `bytes` occupy `[sp, top)`.
#[derive(Debug, Clone)]
pub struct StackImage {
    pub bytes: Vec<u8>,
    pub sp: GuestAddr,
    pub execfn: GuestAddr,
    pub platform: GuestAddr,
    pub random: GuestAddr,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StackError {
    #[error("Argument list too long")]
    TooBig,
}

/// The kernel's limit on argument and environment size for a given soft
/// RLIMIT_STACK (None = unlimited): a quarter of it, at most 6 MiB (3/4 of
/// _STK_LIM), at least ARG_MAX (32 pages).
pub fn arg_limit(rlimit_stack: Option<u64>) -> u64 {
    let quarter = rlimit_stack.map_or(u64::MAX, |r| r / 4);
    quarter.clamp(32 * 4096, 6 << 20)
}

/// The auxiliary vector as the kernel orders it, AT_NULL included.
pub fn auxv(aux: &AuxInputs, random: GuestAddr, execfn: GuestAddr, platform: GuestAddr) -> Vec<(u64, u64)> {
    let mut v = Vec::with_capacity(24);
    // ARCH_DLINFO on x86-64.
    if aux.sysinfo_ehdr != 0 {
        v.push((AT_SYSINFO_EHDR, aux.sysinfo_ehdr));
    }
    if aux.minsigstksz != 0 {
        v.push((AT_MINSIGSTKSZ, aux.minsigstksz));
    }
    v.extend([
        (AT_HWCAP, aux.hwcap),
        (AT_PAGESZ, aux.pagesz),
        (AT_CLKTCK, aux.clktck),
        (AT_PHDR, aux.phdr.get()),
        (AT_PHENT, PHENT_SIZE),
        (AT_PHNUM, aux.phnum),
        (AT_BASE, aux.base),
        (AT_FLAGS, 0),
        (AT_ENTRY, aux.entry.get()),
        (AT_UID, aux.uid),
        (AT_EUID, aux.euid),
        (AT_GID, aux.gid),
        (AT_EGID, aux.egid),
        (AT_SECURE, 0),
        (AT_RANDOM, random.get()),
        (AT_HWCAP2, aux.hwcap2),
        (AT_EXECFN, execfn.get()),
        (AT_PLATFORM, platform.get()),
        (AT_NULL, 0),
    ]);
    v
}

/// Builds the initial stack for a stack whose highest address is `top`
/// (exclusive, 16-aligned).
pub fn build(top: GuestAddr, inp: &StackInputs) -> Result<StackImage, StackError> {
    // The kernel adds "" as argv[0] when argv is empty (since 5.18).
    let empty = [OsString::new()];
    let argv = if inp.argv.is_empty() { &empty[..] } else { inp.argv };
    let str_len = |s: &OsString| s.as_bytes().len() + 1;
    if argv.iter().chain(inp.envp).any(|s| str_len(s) > MAX_ARG_STRLEN)
        || inp.execfn.as_bytes().len() + 1 > MAX_ARG_STRLEN
    {
        return Err(StackError::TooBig);
    }
    // Sizes are bounded by the counts of real in-memory strings: no overflow.
    let strings: u64 =
        argv.iter().chain(inp.envp).map(|s| str_len(s) as u64).sum::<u64>() + inp.execfn.as_bytes().len() as u64 + 1;
    let pointers = (argv.len() as u64 + inp.envp.len() as u64 + 3) * 8;
    if strings + pointers > inp.arg_limit {
        return Err(StackError::TooBig);
    }

    // Top: 8 zero bytes, then AT_EXECFN, envp strings, argv strings, going down.
    let top = top.get() & !15;
    let mut p = top - 8;
    p -= inp.execfn.as_bytes().len() as u64 + 1;
    let execfn_at = p;
    let mut env_at = vec![0u64; inp.envp.len()];
    for (i, s) in inp.envp.iter().enumerate().rev() {
        p -= str_len(s) as u64;
        env_at[i] = p;
    }
    let mut arg_at = vec![0u64; argv.len()];
    for (i, s) in argv.iter().enumerate().rev() {
        p -= str_len(s) as u64;
        arg_at[i] = p;
    }
    // create_elf_tables: arch_align_stack, platform string, random bytes.
    p = (p - (inp.align_pad % 8192)) & !15;
    p -= PLATFORM.len() as u64 + 1;
    let platform_at = p;
    p -= 16;
    let random_at = p;
    let aux = auxv(&inp.aux, GuestAddr::new(random_at), GuestAddr::new(execfn_at), GuestAddr::new(platform_at));
    let items = argv.len() as u64 + 1 + inp.envp.len() as u64 + 1 + 1;
    let sp = (p - aux.len() as u64 * 16 - items * 8) & !15;
    if top - sp > inp.stack_size {
        return Err(StackError::TooBig);
    }

    let mut bytes = vec![0u8; (top - sp) as usize];
    let mut put = |addr: u64, data: &[u8]| {
        let off = (addr - sp) as usize;
        bytes[off..off + data.len()].copy_from_slice(data);
    };
    put(execfn_at, inp.execfn.as_bytes());
    for (s, &at) in inp.envp.iter().zip(&env_at) {
        put(at, s.as_bytes());
    }
    for (s, &at) in argv.iter().zip(&arg_at) {
        put(at, s.as_bytes());
    }
    put(platform_at, PLATFORM);
    put(random_at, &inp.random);
    let mut w = sp;
    let mut word = |v: u64| {
        put(w, &v.to_le_bytes());
        w += 8;
    };
    word(argv.len() as u64);
    arg_at.iter().for_each(|&a| word(a));
    word(0);
    env_at.iter().for_each(|&a| word(a));
    word(0);
    for (k, v) in aux {
        word(k);
        word(v);
    }
    Ok(StackImage {
        bytes,
        sp: GuestAddr::new(sp),
        execfn: GuestAddr::new(execfn_at),
        platform: GuestAddr::new(platform_at),
        random: GuestAddr::new(random_at),
    })
}

/// What a process finds on its initial stack, read back (for tests and
/// debugging): argc, argv, envp and auxv.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedStack {
    pub argv: Vec<Vec<u8>>,
    pub envp: Vec<Vec<u8>>,
    pub auxv: Vec<(u64, u64)>,
}

/// Reads an initial stack back, with `read(addr, len)` giving guest memory.
/// Returns None if anything is out of bounds or unterminated.
pub fn parse<F>(sp: GuestAddr, mut read: F) -> Option<ParsedStack>
where
    F: FnMut(u64, usize) -> Option<Vec<u8>>,
{
    let mut word_at = |a: u64| -> Option<u64> { Some(u64::from_le_bytes(read(a, 8)?.try_into().ok()?)) };
    let mut a = sp.get();
    let argc = word_at(a)?;
    a += 8;
    let mut ptrs = |a: &mut u64, limit: Option<u64>| -> Option<Vec<u64>> {
        let mut v = Vec::new();
        loop {
            let p = word_at(*a)?;
            *a += 8;
            if p == 0 {
                return Some(v);
            }
            v.push(p);
            if limit.is_some_and(|l| v.len() as u64 > l) || v.len() > 1 << 20 {
                return None;
            }
        }
    };
    let argp = ptrs(&mut a, Some(argc))?;
    if argp.len() as u64 != argc {
        return None;
    }
    let envp_p = ptrs(&mut a, None)?;
    let mut auxv = Vec::new();
    loop {
        let k = word_at(a)?;
        let v = word_at(a + 8)?;
        a += 16;
        auxv.push((k, v));
        if k == AT_NULL {
            break;
        }
        if auxv.len() > 256 {
            return None;
        }
    }
    let mut cstr = |p: u64| -> Option<Vec<u8>> {
        let mut s = Vec::new();
        for i in 0..MAX_ARG_STRLEN as u64 {
            let b = read(p + i, 1)?[0];
            if b == 0 {
                return Some(s);
            }
            s.push(b);
        }
        None
    };
    let argv = argp.iter().map(|&p| cstr(p)).collect::<Option<Vec<_>>>()?;
    let envp = envp_p.iter().map(|&p| cstr(p)).collect::<Option<Vec<_>>>()?;
    Some(ParsedStack { argv, envp, auxv })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOP: u64 = 0x7fff_0000_0000;

    fn inputs<'a>(argv: &'a [OsString], envp: &'a [OsString]) -> StackInputs<'a> {
        StackInputs {
            execfn: OsStr::new("./prog"),
            argv,
            envp,
            aux: AuxInputs {
                sysinfo_ehdr: 0x7fff_1234_0000,
                minsigstksz: 3632,
                hwcap: 0x178bfbff,
                hwcap2: 2,
                pagesz: 4096,
                clktck: 100,
                phdr: GuestAddr::new(0x400040),
                phnum: 10,
                base: 0x7f00_0000_0000,
                entry: GuestAddr::new(0x401000),
                uid: 1,
                euid: 2,
                gid: 3,
                egid: 4,
            },
            random: *b"0123456789abcdef",
            align_pad: 0x123,
            stack_size: 8 << 20,
            arg_limit: arg_limit(Some(8 << 20)),
        }
    }

    fn reader(img: &StackImage) -> impl FnMut(u64, usize) -> Option<Vec<u8>> + '_ {
        move |a, n| {
            let off = a.checked_sub(img.sp.get())? as usize;
            img.bytes.get(off..off.checked_add(n)?).map(<[u8]>::to_vec)
        }
    }

    #[test]
    fn loader_stack_round_trips() {
        let argv: Vec<OsString> = ["prog", "-x", "", "ünïcode arg"].map(OsString::from).to_vec();
        let envp: Vec<OsString> = ["A=1", "PATH=/bin", "EMPTY="].map(OsString::from).to_vec();
        let inp = inputs(&argv, &envp);
        let img = build(GuestAddr::new(TOP), &inp).unwrap();
        assert_eq!(img.sp.get() % 16, 0, "rsp must be 16-aligned at entry");
        assert_eq!(img.sp.get() + img.bytes.len() as u64, TOP);
        assert_eq!(&img.bytes[img.bytes.len() - 8..], &[0; 8], "top 8 bytes are NULL");
        let parsed = parse(img.sp, reader(&img)).unwrap();
        let want = |v: &[OsString]| v.iter().map(|s| s.as_bytes().to_vec()).collect::<Vec<_>>();
        assert_eq!(parsed.argv, want(&argv));
        assert_eq!(parsed.envp, want(&envp));
        let keys: Vec<u64> = parsed.auxv.iter().map(|&(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                AT_SYSINFO_EHDR,
                AT_MINSIGSTKSZ,
                AT_HWCAP,
                AT_PAGESZ,
                AT_CLKTCK,
                AT_PHDR,
                AT_PHENT,
                AT_PHNUM,
                AT_BASE,
                AT_FLAGS,
                AT_ENTRY,
                AT_UID,
                AT_EUID,
                AT_GID,
                AT_EGID,
                AT_SECURE,
                AT_RANDOM,
                AT_HWCAP2,
                AT_EXECFN,
                AT_PLATFORM,
                AT_NULL
            ]
        );
        let get = |k| parsed.auxv.iter().find(|e| e.0 == k).unwrap().1;
        assert_eq!(get(AT_PHDR), 0x400040);
        assert_eq!(get(AT_ENTRY), 0x401000);
        assert_eq!(get(AT_BASE), 0x7f00_0000_0000);
        assert_eq!((get(AT_UID), get(AT_EUID), get(AT_GID), get(AT_EGID)), (1, 2, 3, 4));
        let mut rd = reader(&img);
        assert_eq!(rd(get(AT_RANDOM), 16).unwrap(), b"0123456789abcdef");
        assert_eq!(rd(get(AT_PLATFORM), 7).unwrap(), b"x86_64\0");
        assert_eq!(rd(get(AT_EXECFN), 7).unwrap(), b"./prog\0");
        // Kernel layout: argv strings, then envp strings, then execfn, contiguous.
        let arg0 = u64::from_le_bytes(img.bytes[8..16].try_into().unwrap());
        let total: usize = argv.iter().chain(&envp).map(|s| s.len() + 1).sum::<usize>() + 7;
        assert_eq!(arg0 + total as u64, TOP - 8);
        // auxv follows envp's NULL directly.
        let auxv_at = 8 * (1 + argv.len() + 1 + envp.len() + 1);
        assert_eq!(u64::from_le_bytes(img.bytes[auxv_at..auxv_at + 8].try_into().unwrap()), AT_SYSINFO_EHDR);
    }

    #[test]
    fn loader_stack_optional_entries_and_empty_argv() {
        let mut inp = inputs(&[], &[]);
        inp.aux.sysinfo_ehdr = 0;
        inp.aux.minsigstksz = 0;
        let img = build(GuestAddr::new(TOP), &inp).unwrap();
        let parsed = parse(img.sp, reader(&img)).unwrap();
        assert_eq!(parsed.argv, vec![Vec::<u8>::new()], "empty argv gets \"\" as argv[0]");
        assert!(parsed.envp.is_empty());
        assert_eq!(parsed.auxv[0].0, AT_HWCAP);
        assert!(!parsed.auxv.iter().any(|e| e.0 == AT_SYSINFO_EHDR || e.0 == AT_MINSIGSTKSZ));
    }

    #[test]
    fn loader_stack_alignment_for_every_shape() {
        for pad in [0u64, 1, 8, 15, 8191] {
            for n in 0..6 {
                let argv: Vec<OsString> = (0..n).map(|i| OsString::from("a".repeat(i))).collect();
                let envp: Vec<OsString> = (0..(5 - n)).map(|i| OsString::from("e".repeat(i * 3))).collect();
                let mut inp = inputs(&argv, &envp);
                inp.align_pad = pad;
                let img = build(GuestAddr::new(TOP), &inp).unwrap();
                assert_eq!(img.sp.get() % 16, 0);
                assert!(parse(img.sp, reader(&img)).is_some());
            }
        }
    }

    #[test]
    fn loader_stack_too_big() {
        let big = vec![OsString::from("x".repeat(100_000)); 30];
        let mut inp = inputs(&big, &[]);
        inp.arg_limit = arg_limit(Some(1 << 20));
        assert_eq!(inp.arg_limit, 256 << 10);
        assert_eq!(arg_limit(Some(128 << 10)), 32 * 4096);
        assert_eq!(arg_limit(None), 6 << 20);
        assert_eq!(build(GuestAddr::new(TOP), &inp).unwrap_err(), StackError::TooBig);
        let huge = vec![OsString::from("x".repeat(MAX_ARG_STRLEN))];
        let inp = inputs(&huge, &[]);
        assert_eq!(build(GuestAddr::new(TOP), &inp).unwrap_err(), StackError::TooBig);
    }
}
