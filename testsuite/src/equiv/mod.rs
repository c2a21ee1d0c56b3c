//! Equivalence testing against native execution, black box.
//!
//! A *case* is a class, a sequence of x86-64 instruction bytes (the
//! *snippet*) and a seed for the initial machine state. [`elf::build`] turns
//! it into a tiny static ELF64 executable:
//!
//! ```text
//! 0x400000  ELF header, program headers            (code segment, R+X)
//! 0x401000  prologue: r15 = DATA; FCW, MXCSR, vector registers (and k
//!           registers) from the data area; rsp = DATA+STACK_INIT; RFLAGS via
//!           push/popfq; the other GPRs from the data area; jmp SNIPPET
//! 0x402000  the snippet, then falls through into the epilogue:
//!           store all 16 GPRs, RFLAGS masked to CF PF AF ZF SF DF OF,
//!           fxsave64 (x87, MXCSR, xmm; FIP zeroed), ymm/zmm and k registers,
//!           then write(1, DATA, DUMP_LEN) and exit_group(0) by raw syscalls
//! 0x600000  data area (RW, 64 KiB): scratch memory, stack, initial state,
//!           signal-frame copies, results (see [`layout`])
//! 0x800000  an empty RWX area for code written at run time (class jit)
//! ```
//!
//! The file is run natively (plain exec) and as `bt-run FILE`, and the two
//! runs must produce the same stdout bytes and the same exit status or
//! signal (a division by zero dies by SIGFPE in both). Nothing here knows
//! anything about bt-run's internals.
//!
//! Rules every snippet follows (the generators guarantee them):
//! - **r15 is the data base** and is never written; every memory operand
//!   addresses the data area, as `[r15 + disp]`, `[r15 + idx*s + disp]`
//!   after `movzx idx, idx8`, `[rip + disp]`, or through rsi/rdi set by a
//!   `lea` right before a string instruction.
//! - **rsp** points into the stack part of the data area; pushes and pops
//!   are balanced within each generated item, so depth stays bounded.
//! - No cpuid, rdtsc, rdrand or other non-deterministic instructions. Only the `syscall` and
//!   `signal` classes execute `syscall`, with deterministic calls only.
//! - The `fault` class ends the program with a signal on purpose; the
//!   `signal` class catches faults in a handler and resumes.
//! - Every encoding is one the CPU accepts (the `fault` class's deliberate
//!   bad bytes aside): EVEX masking, broadcast and rounding follow the SDM's
//!   rules (no zeroing-masking with a memory destination, EVEX.b only as the
//!   broadcast of a `{1toN}` source or as rounding/SAE of a register form
//!   that has it...). `generator_avx512_encodings_are_valid` checks it on
//!   any host by decoding every snippet back, AVX-512 ones included.
//! - Control flow stays inside the snippet and always reaches its end
//!   (forward jumps, bounded backward loops, local calls), except in the
//!   `fault` class.
//!
//! This module (a part of the `testsuite` library) has no dependencies
//! beyond std and libc. The instruction generators and the fuzz oracle need
//! iced-x86, proptest, translator and runtime, which are dev-dependencies,
//! so they live in files of this directory that the library does not
//! declare: `asm.rs`, `gen.rs` and `oracle.rs` are compiled into
//! `tests/equivalence.rs` (and `oracle.rs` also into `fuzz/`) with
//! `#[path = ...]`.

pub mod class;
pub mod code;
pub mod corpus;
pub mod dump;
pub mod elf;
pub mod layout;
pub mod run;
pub mod state;

pub use class::{Class, Features};
pub use corpus::Case;
pub use run::{Verdict, run_case};

use std::sync::atomic::{AtomicU64, Ordering};

/// Per-class counters (cases run, how the native run ended, divergences).
#[derive(Default)]
pub struct ClassStats {
    pub run: AtomicU64,
    pub native_ok: AtomicU64,
    pub native_sigfpe: AtomicU64,
    pub native_other: AtomicU64,
    pub diverged: AtomicU64,
}

/// Counters for every class, indexed by `Class as usize`.
pub struct Stats {
    pub per_class: Vec<ClassStats>,
}

impl Stats {
    pub fn new() -> Stats {
        Stats { per_class: Class::ALL.iter().map(|_| ClassStats::default()).collect() }
    }

    /// Records one finished case.
    pub fn record(&self, class: Class, v: &Verdict) {
        let s = &self.per_class[class as usize];
        s.run.fetch_add(1, Ordering::Relaxed);
        match v.native.status {
            crate::Status::Exited(0) => s.native_ok.fetch_add(1, Ordering::Relaxed),
            crate::Status::Signaled { signal: libc::SIGFPE, .. } => s.native_sigfpe.fetch_add(1, Ordering::Relaxed),
            _ => s.native_other.fetch_add(1, Ordering::Relaxed),
        };
        if !v.same() {
            s.diverged.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn total_run(&self) -> u64 {
        self.per_class.iter().map(|s| s.run.load(Ordering::Relaxed)).sum()
    }

    pub fn total_diverged(&self) -> u64 {
        self.per_class.iter().map(|s| s.diverged.load(Ordering::Relaxed)).sum()
    }

    /// A table: class, cases, native exit 0 / SIGFPE / other, divergences.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<10} {:>8} {:>9} {:>7} {:>7} {:>9}\n",
            "class", "cases", "native-ok", "sigfpe", "other", "diverged"
        );
        for (i, s) in self.per_class.iter().enumerate() {
            let n = s.run.load(Ordering::Relaxed);
            if n == 0 {
                continue;
            }
            out.push_str(&format!(
                "{:<10} {:>8} {:>9} {:>7} {:>7} {:>9}\n",
                Class::ALL[i].name(),
                n,
                s.native_ok.load(Ordering::Relaxed),
                s.native_sigfpe.load(Ordering::Relaxed),
                s.native_other.load(Ordering::Relaxed),
                s.diverged.load(Ordering::Relaxed)
            ));
        }
        out.push_str(&format!("{:<10} {:>8} {:>44}\n", "total", self.total_run(), self.total_diverged()));
        out
    }
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new()
    }
}
