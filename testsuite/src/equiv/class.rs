//! Generator classes and the CPU features that decide which are available.

use std::fmt;

/// What kind of code a case exercises. The names are the corpus spelling.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    /// Integer ALU with flag producers and consumers (adc/sbb/cmov/setcc),
    /// forward jcc, pushf/popf, lahf/sahf, xchg/xadd/cmpxchg, lock prefixes.
    Alu,
    /// Shifts and rotates by 1, imm8 and cl; shld/shrd.
    Shift,
    /// mul/imul/div/idiv, including divide by zero and quotient overflow.
    MulDiv,
    /// bt/bts/btr/btc, bsf/bsr, lzcnt/tzcnt/popcnt, BMI1/BMI2/ADX, movbe, crc32.
    BitOps,
    /// movs/stos/lods/cmps/scas with and without rep, both directions.
    String,
    /// push/pop, call/ret within the snippet, enter/leave, the red zone.
    Stack,
    /// lea with every addressing form, including 32-bit and rip-relative.
    Lea,
    /// Loads, stores and read-modify-writes through rip-relative operands.
    RipRel,
    /// jmp/call through registers, memory slots, rip-relative slots, jump
    /// tables, push+ret.
    Indirect,
    /// Bounded backward loops: loop/loope/loopne, dec+jnz, jrcxz.
    Loop,
    /// x87 arithmetic, transcendental, compares, loads/stores, control word.
    X87,
    /// SSE..SSE4.2 (and MMX), MXCSR modes.
    Sse,
    /// AVX, AVX2, FMA, F16C (VEX), gathers.
    Avx,
    /// AVX-512 (EVEX), only on CPUs with avx512f.
    Avx512,
    /// wr/rdfsbase, wr/rdgsbase and fs- and gs-relative memory operands
    /// (FSGSBASE).
    FsBase,
    /// Instructions that fault: the process must die by the same signal
    /// (ud2, int3, hlt, privileged and invalid opcodes, jumps to data or
    /// unmapped memory, writes to code, unaligned movaps, unmasked SSE/x87
    /// exceptions, TF and AC set through popf).
    Fault,
    /// Deterministic system calls in the middle of the code (getuid,
    /// sched_yield, bad file descriptors, unknown numbers, arch_prctl,
    /// rt_sigprocmask, uname...): rax, rcx (next rip), r11 (rflags), memory
    /// results and the vector state afterwards.
    Syscall,
    /// A fault caught by a handler installed with rt_sigaction (SA_SIGINFO,
    /// SA_RESETHAND): the handler copies siginfo, the ucontext and the
    /// fpstate into the dump, edits the saved rip (to skip the faulting
    /// instruction), rax, eflags and xmm0, and returns through rt_sigreturn.
    Signal,
    /// Code written at run time into an RWX segment, run, rewritten and run
    /// again (self-modifying code: the translation must follow the writes).
    Jit,
}

impl Class {
    pub const ALL: [Class; 19] = [
        Class::Alu,
        Class::Shift,
        Class::MulDiv,
        Class::BitOps,
        Class::String,
        Class::Stack,
        Class::Lea,
        Class::RipRel,
        Class::Indirect,
        Class::Loop,
        Class::X87,
        Class::Sse,
        Class::Avx,
        Class::Avx512,
        Class::FsBase,
        Class::Fault,
        Class::Syscall,
        Class::Signal,
        Class::Jit,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Class::Alu => "alu",
            Class::Shift => "shift",
            Class::MulDiv => "muldiv",
            Class::BitOps => "bitops",
            Class::String => "string",
            Class::Stack => "stack",
            Class::Lea => "lea",
            Class::RipRel => "riprel",
            Class::Indirect => "indirect",
            Class::Loop => "loop",
            Class::X87 => "x87",
            Class::Sse => "sse",
            Class::Avx => "avx",
            Class::Avx512 => "avx512",
            Class::FsBase => "fsbase",
            Class::Fault => "fault",
            Class::Syscall => "syscall",
            Class::Signal => "signal",
            Class::Jit => "jit",
        }
    }

    pub fn from_name(s: &str) -> Option<Class> {
        Class::ALL.iter().copied().find(|c| c.name() == s)
    }

    /// Whether this machine can run the class.
    pub fn available(self, f: &Features) -> bool {
        self.missing_feature(f).is_none()
    }

    /// The CPU feature this machine lacks to run the class, if any.
    pub fn missing_feature(self, f: &Features) -> Option<&'static str> {
        match self {
            Class::Avx if !f.avx => Some("avx"),
            Class::Avx if !f.avx2 => Some("avx2"),
            Class::Avx512 if !f.avx512f => Some("avx512f"),
            Class::FsBase if !f.fsgsbase => Some("fsgsbase"),
            _ => None,
        }
    }

    /// The classes this machine can run, optionally restricted by a
    /// comma-separated list of names (e.g. from `EQUIV_CLASSES`).
    pub fn available_list(f: &Features, only: Option<&str>) -> Vec<Class> {
        let wanted: Option<Vec<&str>> = only.map(|s| s.split(',').map(str::trim).filter(|s| !s.is_empty()).collect());
        Class::ALL
            .iter()
            .copied()
            .filter(|c| c.available(f))
            .filter(|c| wanted.as_ref().is_none_or(|w| w.contains(&c.name())))
            .collect()
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// CPU features that change what is generated and what the prologue and
/// epilogue save (detected at run time).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Features {
    pub avx: bool,
    pub avx2: bool,
    pub fma: bool,
    pub f16c: bool,
    pub bmi1: bool,
    pub bmi2: bool,
    pub lzcnt: bool,
    pub popcnt: bool,
    pub adx: bool,
    pub movbe: bool,
    pub sse3: bool,
    pub ssse3: bool,
    pub sse41: bool,
    pub sse42: bool,
    pub sse4a: bool,
    pub aes: bool,
    pub pclmulqdq: bool,
    pub sha: bool,
    pub gfni: bool,
    pub vaes: bool,
    pub vpclmulqdq: bool,
    pub avx512f: bool,
    pub avx512bw: bool,
    pub avx512dq: bool,
    pub avx512vl: bool,
    pub avx512cd: bool,
    /// The kernel lets user code use rdfsbase/wrfsbase (AT_HWCAP2 bit 1).
    pub fsgsbase: bool,
}

impl Features {
    /// The features of this machine (with the environment variable
    /// `EQUIV_NO_AVX=1` pretending AVX is absent, for testing the SSE-only
    /// layout).
    pub fn detect() -> Features {
        let no_avx = std::env::var_os("EQUIV_NO_AVX").is_some_and(|v| v == "1");
        macro_rules! d {
            ($f:tt) => {
                std::arch::is_x86_feature_detected!($f)
            };
        }
        // SAFETY: getauxval only reads the process's auxiliary vector.
        let hwcap2 = unsafe { libc::getauxval(libc::AT_HWCAP2) };
        Features {
            avx: d!("avx") && !no_avx,
            avx2: d!("avx2") && !no_avx,
            fma: d!("fma") && !no_avx,
            f16c: d!("f16c") && !no_avx,
            bmi1: d!("bmi1"),
            bmi2: d!("bmi2"),
            lzcnt: d!("lzcnt"),
            popcnt: d!("popcnt"),
            adx: d!("adx"),
            movbe: d!("movbe"),
            sse3: d!("sse3"),
            ssse3: d!("ssse3"),
            sse41: d!("sse4.1"),
            sse42: d!("sse4.2"),
            sse4a: d!("sse4a"),
            aes: d!("aes"),
            pclmulqdq: d!("pclmulqdq"),
            sha: d!("sha"),
            gfni: d!("gfni"),
            vaes: d!("vaes") && !no_avx,
            vpclmulqdq: d!("vpclmulqdq") && !no_avx,
            avx512f: d!("avx512f") && !no_avx,
            avx512bw: d!("avx512bw") && !no_avx,
            avx512dq: d!("avx512dq") && !no_avx,
            avx512vl: d!("avx512vl") && !no_avx,
            avx512cd: d!("avx512cd") && !no_avx,
            fsgsbase: hwcap2 & 2 != 0,
        }
    }

    /// Every feature the generators know of, whatever this machine has: for
    /// checks that generate code without running it (the encoding validity
    /// check of the AVX-512 classes on hosts without AVX-512).
    pub fn all() -> Features {
        Features {
            avx: true,
            avx2: true,
            fma: true,
            f16c: true,
            bmi1: true,
            bmi2: true,
            lzcnt: true,
            popcnt: true,
            adx: true,
            movbe: true,
            sse3: true,
            ssse3: true,
            sse41: true,
            sse42: true,
            sse4a: true,
            aes: true,
            pclmulqdq: true,
            sha: true,
            gfni: true,
            vaes: true,
            vpclmulqdq: true,
            avx512f: true,
            avx512bw: true,
            avx512dq: true,
            avx512vl: true,
            avx512cd: true,
            fsgsbase: true,
        }
    }

    /// How the vector state is saved: 0 = xmm only, 1 = ymm, 2 = zmm + k.
    pub fn vector_level(&self) -> u8 {
        if self.avx512f {
            2
        } else if self.avx {
            1
        } else {
            0
        }
    }
}
