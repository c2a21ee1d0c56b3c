//! The kernel's x86-64 signal frame, as `#[repr(C)]` types: what bt-run
//! writes on the guest stack when it delivers a signal and reads back at
//! `rt_sigreturn` (arch/x86/include/uapi/asm/sigcontext.h `sigcontext_64`,
//! include/uapi/asm-generic/ucontext.h, arch/x86/include/asm/sigframe.h
//! `rt_sigframe`, arch/x86/include/uapi/asm/sigcontext.h
//! `_fpx_sw_bytes`). The tests check every offset against the kernel's
//! (and glibc's view of `gregs`, through the libc crate).
//!
//! The types have no implicit padding and only integer fields, so their
//! bytes can be copied to and from guest memory as they are; `as_bytes`
//! and `read` are the one place that relies on it.

use translator::abi::reg;

/// `stack_t`: the alternate signal stack.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StackT {
    pub ss_sp: u64,
    pub ss_flags: u32,
    pub _pad: u32,
    pub ss_size: u64,
}

/// `struct sigcontext` (64-bit): the interrupted registers.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigContext {
    /// r8 ... r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, in that order
    /// (`SIGCONTEXT_GPRS` names them).
    pub gprs: [u64; 16],
    pub rip: u64,
    pub eflags: u64,
    pub cs: u16,
    pub gs: u16,
    pub fs: u16,
    pub ss: u16,
    pub err: u64,
    pub trapno: u64,
    pub oldmask: u64,
    pub cr2: u64,
    /// Guest address of the extended state image (0: none).
    pub fpstate: u64,
    pub reserved1: [u64; 8],
}

/// The guest registers (`translator::abi::reg`) in `SigContext::gprs` order.
pub const SIGCONTEXT_GPRS: [usize; 16] = [
    reg::R8,
    reg::R9,
    reg::R10,
    reg::R11,
    reg::R12,
    reg::R13,
    reg::R14,
    reg::R15,
    reg::RDI,
    reg::RSI,
    reg::RBP,
    reg::RBX,
    reg::RDX,
    reg::RAX,
    reg::RCX,
    reg::RSP,
];

/// `struct ucontext` as the kernel builds it (an 8-byte signal mask, not
/// glibc's 128-byte `sigset_t`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UContext {
    pub uc_flags: u64,
    pub uc_link: u64,
    pub uc_stack: StackT,
    pub uc_mcontext: SigContext,
    pub uc_sigmask: u64,
}

/// `struct rt_sigframe` (64-bit): the return address the handler returns
/// through (`sa_restorer`), the context, the siginfo.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtSigFrame {
    pub pretcode: u64,
    pub uc: UContext,
    pub info: [u8; 128],
}

impl Default for RtSigFrame {
    fn default() -> Self {
        RtSigFrame { pretcode: 0, uc: UContext::default(), info: [0; 128] }
    }
}

/// `siginfo_t` (128 bytes) as bt-run reads and writes it: the common
/// header, the fault address of SIGSEGV/SIGBUS/SIGILL/SIGFPE/SIGTRAP, and
/// in the last 16 bytes (padding the kernel leaves zero) the error code and
/// trap number that bt-run carries with a fault it detected, for the
/// signal frame's `err` and `trapno` (cleared before the guest sees it).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SigInfo {
    pub signo: i32,
    pub errno: i32,
    pub code: i32,
    pub _pad: i32,
    /// The union of per-signal fields; a fault's address is its first
    /// 8 bytes (`si_addr`).
    pub fields: [u8; 96],
    pub carried_err: u64,
    pub carried_trapno: u64,
}

impl Default for SigInfo {
    fn default() -> Self {
        SigInfo { signo: 0, errno: 0, code: 0, _pad: 0, fields: [0; 96], carried_err: 0, carried_trapno: 0 }
    }
}

impl SigInfo {
    /// A siginfo of `signo` with `code` (and nothing else).
    pub fn new(signo: i32, code: i32) -> Self {
        SigInfo { signo, code, ..SigInfo::default() }
    }

    /// From the 128 bytes the kernel (or bt-run) wrote.
    pub fn from_bytes(b: &[u8; 128]) -> Self {
        read(b).expect("128 bytes")
    }

    /// The 128 bytes, as the kernel lays them out.
    pub fn to_bytes(&self) -> [u8; 128] {
        as_bytes(self).try_into().expect("128 bytes")
    }

    /// `si_addr` (meaningful for faults).
    pub fn addr(&self) -> u64 {
        u64::from_le_bytes(self.fields[..8].try_into().expect("8 bytes"))
    }

    pub fn set_addr(&mut self, addr: u64) {
        self.fields[..8].copy_from_slice(&addr.to_le_bytes());
    }
}

/// Edit the kernel's `siginfo_t` through its `SigInfo` view.
pub fn with_siginfo<R>(info: &mut libc::siginfo_t, f: impl FnOnce(&mut SigInfo) -> R) -> R {
    const _: () = assert!(std::mem::size_of::<libc::siginfo_t>() == std::mem::size_of::<SigInfo>());
    const _: () = assert!(std::mem::align_of::<libc::siginfo_t>() >= std::mem::align_of::<SigInfo>());
    // SAFETY: both are 128 plain bytes (sizes and alignment checked above);
    // any bytes are a valid SigInfo, and the borrow is `info`'s.
    f(unsafe { &mut *(info as *mut libc::siginfo_t as *mut SigInfo) })
}

/// Read the kernel's `siginfo_t` through its `SigInfo` view.
pub fn with_siginfo_ref<R>(info: &libc::siginfo_t, f: impl FnOnce(&SigInfo) -> R) -> R {
    // SAFETY: as `with_siginfo` (same size and alignment, any bytes valid).
    f(unsafe { &*(info as *const libc::siginfo_t as *const SigInfo) })
}

/// `uc_flags` of a frame with an XSAVE image whose SS is restored strictly:
/// UC_FP_XSTATE | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS.
pub const UC_FLAGS: u64 = 0x7;

/// `struct _fpx_sw_bytes`, at byte 464 of the FXSAVE area of the frame's
/// extended state image: tells readers that an XSAVE image follows.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FpxSwBytes {
    /// `FP_XSTATE_MAGIC1`.
    pub magic1: u32,
    /// Bytes of the image, the trailing `FP_XSTATE_MAGIC2` included.
    pub extended_size: u32,
    pub xfeatures: u64,
    /// Bytes of the XSAVE image itself.
    pub xstate_size: u32,
    pub padding: [u32; 7],
}

pub const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;
pub const FP_XSTATE_MAGIC2: u32 = 0x4650_5845;
/// Where `FpxSwBytes` sits in the image.
pub const FPX_SW_BYTES_AT: usize = 464;

/// Types made of integers with no implicit padding: any bytes are a valid
/// value and every byte of a value is initialized.
///
/// # Safety
/// Implement only for `#[repr(C)]` types whose fields are integers or
/// arrays of them and whose size is the sum of their fields' sizes.
pub unsafe trait Plain: Copy + Default {}

// SAFETY (each): repr(C), integer fields only, sizes checked in the tests
// (24, 256, 304, 440, 48, 128 bytes: no padding).
unsafe impl Plain for StackT {}
unsafe impl Plain for SigContext {}
unsafe impl Plain for UContext {}
unsafe impl Plain for RtSigFrame {}
unsafe impl Plain for FpxSwBytes {}
unsafe impl Plain for SigInfo {}

/// The bytes of `v`, as the kernel lays them out.
pub fn as_bytes<T: Plain>(v: &T) -> &[u8] {
    // SAFETY: `Plain` types have no padding, so all size_of::<T>() bytes
    // are initialized; the slice borrows `v`.
    unsafe { std::slice::from_raw_parts(v as *const T as *const u8, std::mem::size_of::<T>()) }
}

/// A `T` from the first `size_of::<T>()` bytes of `b` (None if shorter).
pub fn read<T: Plain>(b: &[u8]) -> Option<T> {
    let b = b.get(..std::mem::size_of::<T>())?;
    let mut v = T::default();
    // SAFETY: any bytes are a valid `Plain` value; both ranges are
    // size_of::<T>() bytes and do not overlap (v is a fresh local).
    unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), &mut v as *mut T as *mut u8, b.len()) };
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn sizes_are_the_kernels() {
        assert_eq!(size_of::<StackT>(), 24);
        assert_eq!(size_of::<SigContext>(), 256);
        assert_eq!(size_of::<UContext>(), 304);
        assert_eq!(size_of::<RtSigFrame>(), 440);
        assert_eq!(size_of::<FpxSwBytes>(), 48);
        assert_eq!(size_of::<SigInfo>(), 128);
    }

    #[test]
    fn offsets_are_the_kernels() {
        // sigcontext_64: registers as glibc's gregs (REG_R8 = 0, ...).
        for (i, &r) in SIGCONTEXT_GPRS.iter().enumerate() {
            let libc_index = match r {
                reg::R8 => libc::REG_R8,
                reg::R9 => libc::REG_R9,
                reg::R10 => libc::REG_R10,
                reg::R11 => libc::REG_R11,
                reg::R12 => libc::REG_R12,
                reg::R13 => libc::REG_R13,
                reg::R14 => libc::REG_R14,
                reg::R15 => libc::REG_R15,
                reg::RDI => libc::REG_RDI,
                reg::RSI => libc::REG_RSI,
                reg::RBP => libc::REG_RBP,
                reg::RBX => libc::REG_RBX,
                reg::RDX => libc::REG_RDX,
                reg::RAX => libc::REG_RAX,
                reg::RCX => libc::REG_RCX,
                _ => libc::REG_RSP,
            };
            assert_eq!(i, libc_index as usize, "register {r}");
        }
        assert_eq!(offset_of!(SigContext, rip), 8 * libc::REG_RIP as usize);
        assert_eq!(offset_of!(SigContext, eflags), 8 * libc::REG_EFL as usize);
        assert_eq!(offset_of!(SigContext, cs), 8 * libc::REG_CSGSFS as usize);
        assert_eq!(offset_of!(SigContext, gs), 146);
        assert_eq!(offset_of!(SigContext, fs), 148);
        assert_eq!(offset_of!(SigContext, ss), 150);
        assert_eq!(offset_of!(SigContext, err), 8 * libc::REG_ERR as usize);
        assert_eq!(offset_of!(SigContext, trapno), 8 * libc::REG_TRAPNO as usize);
        assert_eq!(offset_of!(SigContext, oldmask), 8 * libc::REG_OLDMASK as usize);
        assert_eq!(offset_of!(SigContext, cr2), 8 * libc::REG_CR2 as usize);
        assert_eq!(offset_of!(SigContext, fpstate), 184);
        // ucontext: flags, link, stack_t at 16, mcontext at 40, mask at 296.
        assert_eq!(offset_of!(UContext, uc_stack), 16);
        assert_eq!(offset_of!(StackT, ss_flags), 8);
        assert_eq!(offset_of!(StackT, ss_size), 16);
        assert_eq!(offset_of!(UContext, uc_mcontext), 40);
        assert_eq!(offset_of!(UContext, uc_sigmask), 296);
        // glibc's ucontext_t agrees up to the mask (its sigset_t is longer).
        assert_eq!(offset_of!(libc::ucontext_t, uc_stack), offset_of!(UContext, uc_stack));
        assert_eq!(offset_of!(libc::ucontext_t, uc_mcontext), offset_of!(UContext, uc_mcontext));
        assert_eq!(offset_of!(libc::ucontext_t, uc_sigmask), offset_of!(UContext, uc_sigmask));
        // rt_sigframe: pretcode, then the ucontext, then the siginfo.
        assert_eq!(offset_of!(RtSigFrame, uc), 8);
        assert_eq!(offset_of!(RtSigFrame, info), 312);
        assert_eq!(size_of::<libc::siginfo_t>(), 128);
        // siginfo: the header, then the union (si_addr first).
        assert_eq!(offset_of!(SigInfo, code), 8);
        assert_eq!(offset_of!(SigInfo, fields), 16);
        assert_eq!(offset_of!(SigInfo, carried_err), 112);
        assert_eq!(offset_of!(SigInfo, carried_trapno), 120);
        let mut si = SigInfo::new(libc::SIGSEGV, 2);
        si.set_addr(0xdead_b000);
        let raw = si.to_bytes();
        // SAFETY: a siginfo_t is 128 plain bytes; read_unaligned copies them.
        let k: libc::siginfo_t = unsafe { std::ptr::read_unaligned(raw.as_ptr() as *const libc::siginfo_t) };
        assert_eq!((k.si_signo, k.si_code), (libc::SIGSEGV, 2));
        // SAFETY: si_addr is the union's field for SIGSEGV.
        assert_eq!(unsafe { k.si_addr() } as u64, 0xdead_b000);
        assert_eq!(SigInfo::from_bytes(&raw), si);
        // _fpx_sw_bytes
        assert_eq!(offset_of!(FpxSwBytes, extended_size), 4);
        assert_eq!(offset_of!(FpxSwBytes, xfeatures), 8);
        assert_eq!(offset_of!(FpxSwBytes, xstate_size), 16);
    }

    #[test]
    fn bytes_round_trip() {
        let mut f = RtSigFrame { pretcode: 0x1122_3344_5566_7788, ..RtSigFrame::default() };
        f.uc.uc_mcontext.rip = 0x40_1000;
        f.uc.uc_mcontext.ss = 0x2b;
        f.uc.uc_sigmask = 1 << 9;
        f.info[0] = 11;
        let b = as_bytes(&f);
        assert_eq!(b.len(), 440);
        assert_eq!(&b[0..8], &0x1122_3344_5566_7788u64.to_le_bytes());
        assert_eq!(&b[48 + 128..48 + 136], &0x40_1000u64.to_le_bytes());
        assert_eq!(&b[48 + 150..48 + 152], &0x2bu16.to_le_bytes());
        assert_eq!(&b[304..312], &(1u64 << 9).to_le_bytes());
        assert_eq!(b[312], 11);
        assert_eq!(read::<RtSigFrame>(b), Some(f));
        assert_eq!(read::<UContext>(&b[8..]), Some(f.uc));
        assert_eq!(read::<UContext>(&b[8..100]), None);
    }
}
