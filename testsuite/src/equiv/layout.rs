//! Addresses of the test program and offsets inside its data area.
//!
//! Everything the snippet may touch is in `[DATA, DATA + SCRATCH_END)`
//! (scratch memory) and `[DATA + STACK_LO, DATA + STACK_HI)` (the stack).
//! The whole dump `[DATA, DATA + DUMP_LEN)` is written to stdout at the end.

/// Link address of the code segment (ELF headers live at its start).
pub const CODE_BASE: u64 = 0x40_0000;
/// The prologue.
pub const PROLOGUE: u64 = 0x40_1000;
/// The snippet (generated code is encoded for this address); the epilogue
/// follows it directly.
pub const SNIPPET: u64 = 0x40_2000;
/// Largest snippet accepted.
pub const MAX_SNIPPET: usize = 0x10_0000;

/// Base of the data segment (also the value of r15 in the snippet).
pub const DATA: u64 = 0x60_0000;
/// Mapped size of the data segment.
pub const DATA_MEMSZ: u64 = 0x1_0000;

/// An RWX segment (zero-filled, not dumped) where the `jit` class writes
/// code and runs it.
pub const JIT: u64 = 0x80_0000;
pub const JIT_MEMSZ: u64 = 0x2000;

/// Scratch memory `[0, SCRATCH_END)`: what memory operands address.
pub const SCRATCH_END: u64 = 0x1000;
/// Generic memory operands stay below this; `[TABLES, SCRATCH_END)` holds
/// jump tables, indirect-branch slots and control words written by items.
pub const TABLES: u64 = 0xE00;
/// Offset of the 64 interesting doubles, then 128 interesting floats, then
/// 32 80-bit values (x87 loads prefer these).
pub const FP_F64: u64 = 0x400;
pub const FP_F32: u64 = 0x600;
pub const FP_F80: u64 = 0x800;
pub const FP_END: u64 = 0xA00;

/// The stack: `[STACK_LO, STACK_HI)`, rsp starts at `STACK_INIT`.
pub const STACK_LO: u64 = 0x1000;
pub const STACK_HI: u64 = 0x2000;
pub const STACK_INIT: u64 = 0x1C00;

/// Initial state (written by the ELF image, read by the prologue).
pub const INIT_GPR: u64 = 0x2000; // 16 x u64, hardware order
pub const INIT_FLAGS: u64 = 0x2080; // u64
pub const INIT_MXCSR: u64 = 0x2088; // u32
pub const INIT_FCW: u64 = 0x208C; // u16
pub const INIT_VEC: u64 = 0x2100; // 32 x 64 bytes (zmm-sized slots)
pub const INIT_K: u64 = 0x2900; // 8 x u64
/// Where the `signal` class's handlers copy siginfo (+0), the ucontext
/// (+0x40), the fpstate (+0x180) and their rsp (+0x3c8): free space in the
/// initial-state page, dumped but never addressed by other instructions.
pub const SIGCOPY: u64 = 0x2A00;
/// End of the part of the data area stored in the file.
pub const INIT_END: u64 = 0x3000;

/// Results (written by the epilogue).
pub const OUT_GPR: u64 = 0x3000; // 16 x u64
pub const OUT_FLAGS: u64 = 0x3080; // u64, masked with FLAGS_MASK
pub const OUT_FX: u64 = 0x3100; // 512-byte fxsave64 image, FIP zeroed
pub const OUT_VEC: u64 = 0x3300; // 32 x 64 bytes: ymm (32 bytes) or zmm
pub const OUT_K: u64 = 0x3B00; // 8 x u64
/// Bytes written to stdout: `[DATA, DATA + DUMP_LEN)`.
pub const DUMP_LEN: u64 = 0x3C00;
/// The epilogue's own stack (not dumped): rsp = DATA + EPI_STACK.
pub const EPI_STACK: u64 = 0x4000;

/// Bytes per vector slot in INIT_VEC / OUT_VEC.
pub const VEC_SLOT: u64 = 64;

/// CF PF AF ZF SF DF OF: the flags compared after the snippet.
pub const FLAGS_MASK: u64 = 0x0CD5;
/// The arithmetic flags (CF PF AF ZF SF OF) the prologue may set.
pub const ARITH_FLAGS: u64 = 0x08D5;
/// DF.
pub const DF: u64 = 0x400;

/// General-purpose register names in hardware order.
pub const GPR_NAMES: [&str; 16] =
    ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"];
pub const RSP: usize = 4;
pub const R15: usize = 15;
