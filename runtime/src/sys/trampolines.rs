//! Fixed trampolines between Rust and the code cache, written as assembly.
//!
//! All of them find the thread's `GuestContext` through the GS base, so they
//! need no free register and no guest stack. Offsets come from
//! `translator::abi::off`, which the abi tests check against the struct.
//!
//! * `bt_enter_cache(ctx, target)`: save host callee-saved registers, load
//!   the guest's extended state, FS, flags and registers, jump to `target`.
//! * `bt_exit_common`: reached from exit stubs and lookup misses with
//!   rcx = next guest pc and the guest's rcx in `SPILL_RCX`; stores guest
//!   state and returns from `bt_enter_cache`.
//! * `bt_ibl_miss`: where the inline indirect-branch lookups emitted at each
//!   indirect branch go when the table has no translation for the target.
//! * `bt_gate`: the syscall gate (rcx = next guest pc, r11 = cache return
//!   address). Forwards a syscall whose disposition byte is 0 right here with
//!   the guest's own registers, so vector state needs no save (and one whose
//!   byte is `GATE_FD_CHECK | mask` likewise, once the descriptor arguments
//!   in the mask are below `fds::FD_FLOOR`); anything else leaves to
//!   Rust with reason `Syscall`.
//! * `bt_host_signal_entry`: host signal handler prologue that switches FS to
//!   bt-run's own before any Rust runs and back afterwards.
//! * `bt_safe_int80(nr, args)`: an i386 system call (`int $0x80`) made for
//!   the guest from Rust, with the window check of `bt_safe_syscall`.

use translator::abi::{ExitReason, off};

/// XSAVE components bt-run saves around Rust code: x87, SSE, AVX, MPX
/// bounds, AVX-512 opmask/ZMM_Hi256/Hi16_ZMM (bits 0-7). PKRU is left alone.
pub const XSAVE_MASK: u32 = 0xff;

std::arch::global_asm!(
    ".text",
    ".globl bt_trampolines_start",
    "bt_trampolines_start:",
    ".globl bt_enter_cache",
    ".p2align 4",
    "bt_enter_cache:",
    "push rbx", "push rbp", "push r12", "push r13", "push r14", "push r15",
    "mov [rdi + {host_rsp}], rsp",
    "mov [rdi + {entry_target}], rsi",
    // A signal queued after the dispatcher looked: leave before entering.
    "cmp qword ptr [rdi + {signal_pending}], 0",
    "jne 8f",
    "mov eax, {xmask}",
    "xor edx, edx",
    "xrstor64 [rdi + {xsave}]",
    "mov rax, [rdi + {guest_fs}]",
    "wrfsbase rax",
    "push qword ptr [rdi + {rflags}]",
    // Never the guest's trap flag: the dispatcher steps a guest that set it.
    "and qword ptr [rsp], -0x101",
    "popfq",
    "mov rax, [rdi + 0]",
    "mov rcx, [rdi + 8]",
    "mov rdx, [rdi + 16]",
    "mov rbx, [rdi + 24]",
    "mov rbp, [rdi + 40]",
    "mov rsi, [rdi + 48]",
    "mov r8, [rdi + 64]",
    "mov r9, [rdi + 72]",
    "mov r10, [rdi + 80]",
    "mov r11, [rdi + 88]",
    "mov r12, [rdi + 96]",
    "mov r13, [rdi + 104]",
    "mov r14, [rdi + 112]",
    "mov r15, [rdi + 120]",
    "mov rsp, [rdi + 32]",
    "mov rdi, [rdi + 56]",
    "jmp qword ptr gs:[{entry_target}]",
    "8:",
    "mov qword ptr [rdi + {exit_reason}], {r_signal}",
    "pop r15", "pop r14", "pop r13", "pop r12", "pop rbp", "pop rbx",
    "ret",

    // ---- leave the cache after a synchronous fault: the host handler has
    // stored the guest registers; the kernel restored FS and vector state ----
    ".globl bt_signal_exit",
    ".p2align 4",
    "bt_signal_exit:",
    "mov rsp, gs:[{host_rsp}]",
    "jmp bt_exit_tail",

    // ---- common exit: rcx = next guest pc, guest rcx in SPILL_RCX ----
    ".globl bt_exit_common",
    ".p2align 4",
    "bt_exit_common:",
    "mov gs:[{rip}], rcx",
    "mov rcx, gs:[{spill_rcx}]",
    "mov gs:[0], rax",
    "mov gs:[8], rcx",
    "mov gs:[16], rdx",
    "mov gs:[24], rbx",
    "mov gs:[32], rsp",
    "mov gs:[40], rbp",
    "mov gs:[48], rsi",
    "mov gs:[56], rdi",
    "mov gs:[64], r8",
    "mov gs:[72], r9",
    "mov gs:[80], r10",
    "mov gs:[88], r11",
    "mov gs:[96], r12",
    "mov gs:[104], r13",
    "mov gs:[112], r14",
    "mov gs:[120], r15",
    "mov rsp, gs:[{host_rsp}]",
    "pushfq",
    "pop qword ptr gs:[{rflags}]",
    // ---- tail shared with the gate's slow path: rsp = host stack ----
    "bt_exit_tail:",
    // The guest's flags are saved: bt-run's own code runs with clean ones
    // (DF clear as the ABI wants, and AC clear: a guest that sets the
    // alignment-check flag must not make bt-run's unaligned accesses fault).
    "push 0x202",
    "popfq",
    "rdfsbase rax",
    "mov gs:[{guest_fs}], rax",
    "mov rax, gs:[{host_fs}]",
    "wrfsbase rax",
    "mov rdi, gs:[{self_ptr}]",
    "mov eax, {xmask}",
    "xor edx, edx",
    "xsave64 [rdi + {xsave}]",
    "pop r15", "pop r14", "pop r13", "pop r12", "pop rbp", "pop rbx",
    "ret",

    // ---- a plain exit stub: ecx = its exit id, guest rcx in SPILL_RCX.
    // rip gets the id; the dispatcher puts the exit's target there ----
    ".globl bt_exit_branch",
    ".p2align 4",
    "bt_exit_branch:",
    "mov gs:[{exit_id}], rcx",
    "mov qword ptr gs:[{exit_reason}], {r_branch_stub}",
    "jmp bt_exit_common",

    // ---- indirect-branch lookup miss (the lookup itself is emitted inline
    // at every indirect branch): rcx = guest target, rax/rdx restored,
    // guest rcx in SPILL_RCX ----
    ".globl bt_ibl_miss",
    ".p2align 4",
    "bt_ibl_miss:",
    "mov gs:[{ibl_target}], rcx",
    // Count the miss without touching the guest's flags.
    "mov rcx, gs:[{ibl_misses}]",
    "lea rcx, [rcx + 1]",
    "mov gs:[{ibl_misses}], rcx",
    "mov rcx, gs:[{ibl_target}]",
    "mov qword ptr gs:[{exit_reason}], {r_indirect}",
    "jmp bt_exit_common",

    // ---- syscall gate: rax = nr, rcx = next guest pc, r11 = return ----
    ".globl bt_gate",
    ".p2align 4",
    "bt_gate:",
    "mov gs:[{gate_nr}], rax",
    "mov gs:[{gate_ret}], r11",
    "mov gs:[{gate_next}], rcx",
    "mov gs:[{gate_rsp}], rsp",
    "mov rsp, gs:[{host_rsp}]",
    "pushfq",
    "pop r11",
    "mov gs:[{gate_flags}], r11",
    "cmp rax, 511",
    "ja 5f",
    "mov r11, gs:[{sys_table}]",
    "movzx r11d, byte ptr [r11 + rax]",
    "test r11d, r11d",
    "jnz 10f",
    // Forward: the guest's own argument registers, FS and vector state.
    // A signal taken from here to the `syscall` sends the host handler's
    // return to bt_gate_pending instead (see `syscall_window_exit`).
    ".globl bt_gate_check",
    "bt_gate_check:",
    "cmp qword ptr gs:[{signal_pending}], 0",
    "jne bt_gate_pending",
    ".globl bt_gate_syscall",
    "bt_gate_syscall:",
    "syscall",
    ".globl bt_gate_after_syscall",
    "bt_gate_after_syscall:",
    // EFAULT once guest pages are guarded: perhaps the kernel met a page
    // bt-run keeps read-only for its translations; the runtime makes the
    // call again with those of its output buffers writable.
    "cmp rax, -14",
    "je 45f",
    "46:",
    "inc qword ptr gs:[{fast_forwards}]",
    "mov rcx, gs:[{signal_pending}]",
    "jrcxz 6f",
    "mov qword ptr gs:[{exit_reason}], {r_syscall_signal}",
    "jmp 7f",
    "6:",
    "mov rcx, gs:[{gate_next}]",
    "11:",
    "push qword ptr gs:[{gate_flags}]",
    "popfq",
    "mov r11, gs:[{gate_flags}]",
    "mov rsp, gs:[{gate_rsp}]",
    "jmp qword ptr gs:[{gate_ret}]",
    // In-process answers: no kernel entry at all.
    "10:",
    "test r11d, {g_addr}",
    "jnz 50f",
    "51:",
    "test r11d, r11d",
    "jz bt_gate_check",
    "cmp r11d, {g_fd}",
    "jae 20f",
    "cmp r11d, {g_answer}",
    "jne 12f",
    "mov r11, gs:[{answers}]",
    "mov rax, [r11 + rax * 8]",
    "jmp 13f",
    "12:",
    "cmp r11d, {g_tid}",
    "jne 30f",
    "mov rax, gs:[{tid}]",
    "13:",
    "inc qword ptr gs:[{inline_served}]",
    "mov rcx, gs:[{gate_next}]",
    "jmp 11b",
    // rt_sigprocmask(how, set, oset, 8) from the thread's virtual mask
    // (`sys::mask`), unless a tracer must see the call (`ptrace::TRACED`):
    // the new mask is taken lazily where the runtime would (`mask::lazy_ok`,
    // restated here), else installed in the kernel with one
    // rt_sigprocmask of its own after the commit, as the runtime's
    // `install`. Anything else (another size or `how`, a fault on either
    // pointer, a host signal before the commit) goes to the runtime with the
    // call untouched: the only effect before the commit is the old mask
    // written to `oset`, which the runtime writes again. Registers: rbx old
    // mask, rbp new, rcx the kernel's, r11 the mask words, r13 install.
    "30:",
    "cmp r11d, {g_sigmask}",
    "jne 40f",
    "cmp r10, 8",
    "jne 5f",
    "cmp byte ptr [rip + {traced}], 0",
    "jne 5f",
    // A signal already waits: it comes first, as in the forward path.
    "cmp qword ptr gs:[{signal_pending}], 0",
    "jne bt_gate_pending",
    "mov r11, gs:[{thread_sig}]",
    "test r11, r11",
    "jz 5f",
    "push rbx", "push rbp", "push r12", "push r13",
    ".globl bt_sigmask_start",
    "bt_sigmask_start:",
    "mov rbx, [r11 + {m_vmask}]",
    "mov rbp, rbx",
    "test rsi, rsi",
    "jz 34f",
    ".globl bt_sigmask_read",
    "bt_sigmask_read:",
    "mov rcx, [rsi]",
    // The kernel reads `how` as an int.
    "cmp edi, 1",
    "je 32f",
    "jb 31f",
    "cmp edi, 2",
    "jne bt_sigmask_abort",
    "mov rbp, rcx",
    "jmp 33f",
    "31:", "or rbp, rcx", "jmp 33f",
    "32:", "not rcx", "and rbp, rcx",
    "33:",
    "mov rcx, {not_unblockable}",
    "and rbp, rcx",
    "34:",
    // rax = kernel_mask(new); rcx = real | extra; r13 = 1 if the new mask
    // must be installed in the kernel (made here after the commit, as the
    // runtime's `install`), 0 if it can be taken lazily.
    "mov rax, {not_knb}",
    "and rax, rbp",
    "mov rcx, [r11 + {m_real}]",
    "or rcx, [r11 + {m_extra}]",
    "mov r13d, 1",
    // Lazily only if nothing the kernel blocks is unblocked ...
    "mov r12, rax", "not r12", "and r12, rcx", "jnz 35f",
    // ... fault signals agree exactly ...
    "mov r12, rax", "xor r12, rcx", "test r12, {fault_signals}", "jnz 35f",
    // ... one thread only ...
    "cmp byte ptr [rip + {multi}], 0", "jne 35f",
    // ... and no real-time signal is blocked lazily. r12: what the guest
    // blocks and the kernel does not (the mask lags behind if any).
    "mov r12, rcx", "not r12", "and r12, rax",
    "mov rax, r12", "shr rax, 31", "jnz 35f",
    "xor r13d, r13d",
    "35:",
    "test rdx, rdx",
    "jz 36f",
    ".globl bt_sigmask_write",
    "bt_sigmask_write:",
    "mov [rdx], rbx",
    "36:",
    // Lazily, and lagging from now on but not before: the gate table that
    // sends kernel-bound calls to the runtime first (which installs the
    // mask).
    "test r13d, r13d",
    "jnz 37f",
    "test r12, r12",
    "jz 37f",
    "mov rax, {not_knb}",
    "and rax, rbx",
    "not rcx",
    "test rax, rcx",
    "jnz 37f",
    "mov rcx, gs:[{sys_table_sync}]",
    "test rcx, rcx",
    "jz bt_sigmask_abort",
    "mov gs:[{sys_table}], rcx",
    "37:",
    ".globl bt_sigmask_commit",
    "bt_sigmask_commit:",
    "mov [r11 + {m_vmask}], rbp",
    "test r13d, r13d",
    "jz 38f",
    // Install: record first (a host handler that runs before the call
    // adds to `extra`, over-stating the kernel's mask, never under-stating
    // it), then rt_sigprocmask(SIG_SETMASK, &kernel_mask(new), NULL, 8)
    // with the guest's argument registers kept. Signals it unblocks are
    // delivered by the kernel on its return: the host handler queues them.
    "mov rax, {not_knb}",
    "and rax, rbp",
    "mov [r11 + {m_real}], rax",
    "mov qword ptr [r11 + {m_extra}], 0",
    "push rdi", "push rsi", "push rdx", "push r10", "push rax",
    "mov rsi, rsp",
    "mov edi, 2",
    "xor edx, edx",
    "mov r10d, 8",
    "mov eax, {sys_rt_sigprocmask}",
    "syscall",
    ".globl bt_sigmask_after_syscall",
    "bt_sigmask_after_syscall:",
    "pop rax", "pop r10", "pop rdx", "pop rsi", "pop rdi",
    "inc qword ptr gs:[{fast_forwards}]",
    "pop r13", "pop r12", "pop rbp", "pop rbx",
    "xor eax, eax",
    // Signals it unblocked (or one queued meanwhile) are delivered before
    // the guest goes on, as after a forwarded call.
    "cmp qword ptr gs:[{signal_pending}], 0",
    "jne 39f",
    "mov rcx, gs:[{gate_next}]",
    "jmp 11b",
    "38:",
    "pop r13", "pop r12", "pop rbp", "pop rbx",
    "xor eax, eax",
    "inc qword ptr gs:[{inline_served}]",
    // A signal queued meanwhile (taken under the old mask) likewise.
    "cmp qword ptr gs:[{signal_pending}], 0",
    "jne 39f",
    "mov rcx, gs:[{gate_next}]",
    "jmp 11b",
    "39:",
    "mov qword ptr gs:[{exit_reason}], {r_syscall_signal}",
    "jmp 7f",
    ".globl bt_sigmask_abort",
    "bt_sigmask_abort:",
    "pop r13", "pop r12", "pop rbp", "pop rbx",
    "mov rax, gs:[{gate_nr}]",
    "jmp 5f",
    // Forward unless an argument the byte's low bits name is, as the
    // kernel reads a descriptor (32 bits, signed), at or above the lowest
    // of bt-run's own descriptors: then the runtime decides. rcx and r11
    // are free here (rcx is in gate_next; the flags are saved).
    "20:",
    "mov ecx, dword ptr [rip + {fd_floor}]",
    "test r11d, 1", "jz 21f", "cmp edi, ecx", "jge 5f", "21:",
    "test r11d, 2", "jz 22f", "cmp esi, ecx", "jge 5f", "22:",
    "test r11d, 4", "jz 23f", "cmp edx, ecx", "jge 5f", "23:",
    "test r11d, 8", "jz 24f", "cmp r10d, ecx", "jge 5f", "24:",
    "test r11d, 16", "jz 25f", "cmp r8d, ecx", "jge 5f", "25:",
    "test r11d, 32", "jz 26f", "cmp r9d, ecx", "jge 5f", "26:",
    "jmp bt_gate_check",
    // write(fd, buf, count) on a descriptor `nullfds` knows to be /dev/null
    // open for writing: the kernel's answer is the count, once it has
    // checked the range (count at most MAX_RW_COUNT, buf + count a user
    // address: both checked here against bounds a little inside the
    // kernel's, anything nearer goes to the kernel). Not while a tracer
    // must see the call.
    "40:",
    "cmp r11d, {g_null_write}",
    "jne 42f",
    "mov r11d, edi",
    "cmp r11d, {null_tracked}",
    "jae 41f",
    "lea rcx, [rip + {null_fds}]",
    "bt qword ptr [rcx], r11",
    "jnc 41f",
    "cmp byte ptr [rip + {traced}], 0",
    "jne 41f",
    "cmp rdx, {max_rw}",
    "ja 41f",
    "mov r11, {user_below}",
    "cmp rsi, r11",
    "jae 41f",
    "lea rcx, [rsi + rdx]",
    "cmp rcx, r11",
    "jae 41f",
    "mov rax, rdx",
    "jmp 13b",
    "41:",
    "mov r11d, {g_fd_arg0}",
    "jmp 20b",
    // close(fd): forget the descriptor first (see `nullfds`), then the
    // descriptor check and the forward.
    "42:",
    "cmp r11d, {g_close}",
    "jne 44f",
    "mov r11d, edi",
    "cmp r11d, {null_tracked}",
    "jae 41b",
    "lea rcx, [rip + {null_fds}]",
    "lock btr qword ptr [rcx], r11",
    "lea rcx, [rip + {zero_fds}]",
    "lock btr qword ptr [rcx], r11",
    "jmp 41b",
    // read(fd, buf, count) on a descriptor `nullfds` knows to be /dev/zero
    // open for reading, with the same bounds as the write above: the
    // kernel's read_zero clears the buffer (`rep stosb`, as its
    // clear_user); a fault in it (the host handler resumes at
    // bt_zero_filled, `copy_fault_fixup`) ends the read with the bytes
    // cleared before it, or EFAULT if there were none. A guest page that
    // bt-run write-protects for its translations is unprotected by the host
    // handler and the store retried, as for any guest store. DF is cleared
    // for the fill; the guest's flags come back at the return.
    "45:",
    "cmp byte ptr [rip + {any_guarded}], 0",
    "je 46b",
    "mov rax, gs:[{gate_nr}]",
    "jmp 5f",
    "44:",
    "cmp r11d, {g_zero_read}",
    "jne 5f",
    "mov r11d, edi",
    "cmp r11d, {null_tracked}",
    "jae 41b",
    "lea rcx, [rip + {zero_fds}]",
    "bt qword ptr [rcx], r11",
    "jnc 41b",
    "cmp byte ptr [rip + {traced}], 0",
    "jne 41b",
    "cmp rdx, {max_rw}",
    "ja 41b",
    "mov r11, {user_below}",
    "cmp rsi, r11",
    "jae 41b",
    "lea rcx, [rsi + rdx]",
    "cmp rcx, r11",
    "jae 41b",
    "push rdi",
    "mov rdi, rsi",
    "mov rcx, rdx",
    "xor eax, eax",
    "cld",
    ".globl bt_zero_fill",
    "bt_zero_fill:",
    "rep stosb",
    ".globl bt_zero_filled",
    "bt_zero_filled:",
    "pop rdi",
    "mov rax, rdx",
    "sub rax, rcx",
    "jnz 13b",
    "test rdx, rdx",
    "jz 13b",
    "mov rax, -14",
    "jmp 13b",
    // Isolation (`GATE_ADDR_CHECK`): every argument the call's address mask
    // names must lie outside [2^46, 2^47), bt-run's part of the address
    // space (`syscall_inline::confine`), or the runtime fails the call;
    // then the byte's other bits decide. rcx and r11 are free here.
    "50:",
    "lea rcx, [rip + {addr_masks}]",
    "movzx ecx, byte ptr [rcx + rax]",
    "test ecx, 1", "jz 52f", "mov r11, rdi", "shr r11, {limit_shift}", "cmp r11, 1", "je 5f", "52:",
    "test ecx, 2", "jz 53f", "mov r11, rsi", "shr r11, {limit_shift}", "cmp r11, 1", "je 5f", "53:",
    "test ecx, 4", "jz 54f", "mov r11, rdx", "shr r11, {limit_shift}", "cmp r11, 1", "je 5f", "54:",
    "test ecx, 8", "jz 55f", "mov r11, r10", "shr r11, {limit_shift}", "cmp r11, 1", "je 5f", "55:",
    "test ecx, 16", "jz 56f", "mov r11, r8", "shr r11, {limit_shift}", "cmp r11, 1", "je 5f", "56:",
    "test ecx, 32", "jz 57f", "mov r11, r9", "shr r11, {limit_shift}", "cmp r11, 1", "je 5f", "57:",
    "mov r11, gs:[{sys_table}]",
    "movzx r11d, byte ptr [r11 + rax]",
    "and r11d, {not_addr}",
    "jmp 51b",
    // A signal is pending and the call has not started: leave with the
    // guest back on its `syscall` instruction, as if the signal had come
    // just before it (the call runs after the handler, whatever SA_RESTART).
    ".globl bt_gate_pending",
    "bt_gate_pending:",
    "sub qword ptr gs:[{gate_next}], 2",
    "mov qword ptr gs:[{exit_reason}], {r_signal}",
    "jmp 7f",
    // Slow path: hand the call to Rust.
    "5:",
    "mov qword ptr gs:[{exit_reason}], {r_syscall}",
    "7:",
    "mov gs:[0], rax",
    "mov gs:[16], rdx",
    "mov gs:[24], rbx",
    "mov gs:[40], rbp",
    "mov gs:[48], rsi",
    "mov gs:[56], rdi",
    "mov gs:[64], r8",
    "mov gs:[72], r9",
    "mov gs:[80], r10",
    "mov gs:[96], r12",
    "mov gs:[104], r13",
    "mov gs:[112], r14",
    "mov gs:[120], r15",
    "mov rcx, gs:[{gate_next}]",
    "mov gs:[8], rcx",
    "mov gs:[{rip}], rcx",
    "mov rcx, gs:[{gate_flags}]",
    "mov gs:[88], rcx",
    "mov gs:[{rflags}], rcx",
    "mov rcx, gs:[{gate_rsp}]",
    "mov gs:[32], rcx",
    "mov rsp, gs:[{host_rsp}]",
    "jmp bt_exit_tail",

    // ---- host signal handler entry: (sig, info, uc) ----
    ".globl bt_host_signal_entry",
    ".p2align 4",
    "bt_host_signal_entry:",
    // The kernel clears DF and TF for a handler but leaves AC as the
    // interrupted code had it (sigreturn restores the interrupted flags).
    "pushfq",
    "and dword ptr [rsp], {not_ac}",
    "popfq",
    "push rbx",
    "rdfsbase rbx",
    "mov rax, gs:[{host_fs}]",
    "wrfsbase rax",
    "mov rcx, gs:[{self_ptr}]",
    "call {handler}",
    "wrfsbase rbx",
    "pop rbx",
    "ret",

    // ---- bt_raw_clone(flags, stack, ptid, ctid, tls): the child starts on
    // `stack`, where the caller stored the argument for the child's entry ----
    ".globl bt_raw_clone",
    ".p2align 4",
    "bt_raw_clone:",
    "mov r10, rcx",
    "mov eax, {sys_clone}",
    "syscall",
    "test rax, rax",
    "jz 9f",
    "ret",
    "9:",
    "xor ebp, ebp",
    "mov rdi, [rsp]",
    "and rsp, -16",
    "call {vfork_child}",
    "ud2",
    // ---- bt_view_marker(kind): a system call with no effect (getpid)
    // whose stops show a tracer the call the runtime serves (see
    // `ptrace_view`): rdi = kind, found by the address after it ----
    ".globl bt_view_marker",
    ".p2align 4",
    "bt_view_marker:",
    "mov eax, {sys_getpid}",
    "syscall",
    ".globl bt_view_after_marker",
    "bt_view_after_marker:",
    "ret",
    // ---- bt_safe_syscall(nr, args): a guest call forwarded from Rust.
    // As in the gate, a signal taken between the pending check and the
    // `syscall` makes it return SAFE_NOT_STARTED instead of sleeping ----
    ".globl bt_safe_syscall",
    ".p2align 4",
    "bt_safe_syscall:",
    "mov rax, rdi",
    "mov r11, rsi",
    "mov rdi, [r11]",
    "mov rsi, [r11 + 8]",
    "mov rdx, [r11 + 16]",
    "mov r10, [r11 + 24]",
    "mov r8, [r11 + 32]",
    "mov r9, [r11 + 40]",
    ".globl bt_safe_check",
    "bt_safe_check:",
    "cmp qword ptr gs:[{signal_pending}], 0",
    "jne bt_safe_pending",
    ".globl bt_safe_insn",
    "bt_safe_insn:",
    "syscall",
    ".globl bt_safe_after_insn",
    "bt_safe_after_insn:",
    "ret",
    ".globl bt_safe_pending",
    "bt_safe_pending:",
    "mov rax, {not_started}",
    "ret",
    // ---- bt_safe_int80(nr, args): the same for an i386 call: eax = nr,
    // ebx, ecx, edx, esi, edi, ebp = args (the kernel uses their low 32
    // bits and preserves every register but rax) ----
    ".globl bt_safe_int80",
    ".p2align 4",
    "bt_safe_int80:",
    "push rbx",
    "push rbp",
    "mov rax, rdi",
    "mov r11, rsi",
    "mov rbx, [r11]",
    "mov rcx, [r11 + 8]",
    "mov rdx, [r11 + 16]",
    "mov rsi, [r11 + 24]",
    "mov rdi, [r11 + 32]",
    "mov rbp, [r11 + 40]",
    ".globl bt_int80_check",
    "bt_int80_check:",
    "cmp qword ptr gs:[{signal_pending}], 0",
    "jne bt_int80_pending",
    ".globl bt_int80_insn",
    "bt_int80_insn:",
    "int 0x80",
    ".globl bt_int80_after_insn",
    "bt_int80_after_insn:",
    "pop rbp",
    "pop rbx",
    "ret",
    ".globl bt_int80_pending",
    "bt_int80_pending:",
    "mov rax, {not_started}",
    "pop rbp",
    "pop rbx",
    "ret",
    // ---- bt_copy_checked(dst, src, len): memcpy that fails instead of
    // crashing: a fault inside it resumes at bt_copy_fault (see
    // `copy_fault_fixup`). Returns 0, or 1 if some byte was not accessible ----
    ".globl bt_copy_checked",
    ".p2align 4",
    "bt_copy_checked:",
    "mov rcx, rdx",
    ".globl bt_copy_insn",
    "bt_copy_insn:",
    "rep movsb",
    "xor eax, eax",
    "ret",
    ".globl bt_copy_fault",
    "bt_copy_fault:",
    "mov eax, 1",
    "ret",
    // ---- restorer for bt-run's own host handlers ----
    ".globl bt_sigreturn",
    ".p2align 4",
    "bt_sigreturn:",
    "mov eax, 15",
    "syscall",
    "ud2",
    ".globl bt_trampolines_end",
    "bt_trampolines_end:",

    host_rsp = const off::HOST_RSP,
    entry_target = const off::ENTRY_TARGET,
    xsave = const off::XSAVE,
    xmask = const XSAVE_MASK,
    guest_fs = const off::GUEST_FS,
    host_fs = const off::HOST_FS,
    rflags = const off::RFLAGS,
    rip = const off::RIP,
    spill_rcx = const off::SPILL_RCX,
    self_ptr = const off::SELF_PTR,
    ibl_target = const off::IBL_TARGET,
    exit_reason = const off::EXIT_REASON,
    signal_pending = const off::SIGNAL_PENDING,
    gate_ret = const off::GATE_RET,
    gate_next = const off::GATE_NEXT,
    gate_rsp = const off::GATE_RSP,
    gate_flags = const off::GATE_FLAGS,
    sys_table = const off::SYS_TABLE,
    fast_forwards = const off::FAST_FORWARDS,
    ibl_misses = const off::IBL_MISSES,
    exit_id = const off::EXIT_ID,
    r_branch_stub = const ExitReason::BranchStub as u32,
    answers = const off::ANSWERS,
    tid = const off::TID,
    inline_served = const off::INLINE_SERVED,
    g_answer = const syscall_inline::GATE_ANSWER,
    g_tid = const syscall_inline::GATE_TID,
    g_fd = const syscall_inline::GATE_FD_CHECK,
    g_addr = const syscall_inline::GATE_ADDR_CHECK,
    not_addr = const !syscall_inline::GATE_ADDR_CHECK as u32,
    addr_masks = sym syscall_inline::GATE_ADDRESS_MASKS,
    limit_shift = const LIMIT_SHIFT,
    g_sigmask = const syscall_inline::GATE_SIGMASK,
    g_null_write = const syscall_inline::GATE_NULL_WRITE,
    g_close = const syscall_inline::GATE_CLOSE,
    g_zero_read = const syscall_inline::GATE_ZERO_READ,
    any_guarded = sym crate::memory::ANY_GUARDED,
    zero_fds = sym super::nullfds::ZERO_FDS,
    g_fd_arg0 = const syscall_inline::GATE_FD_CHECK | 1,
    null_tracked = const super::nullfds::TRACKED,
    null_fds = sym super::nullfds::NULL_FDS,
    max_rw = const 0x7fff_f000u32,
    // Below the last user page of 4-level paging (5-level allows more), so
    // the kernel's access_ok accepts any range under it.
    user_below = const 0x7fff_ffff_0000u64,
    thread_sig = const off::THREAD_SIG,
    sys_table_sync = const off::SYS_TABLE_SYNC,
    m_vmask = const std::mem::offset_of!(super::mask::MaskWords, vmask),
    m_real = const std::mem::offset_of!(super::mask::MaskWords, real),
    m_extra = const std::mem::offset_of!(super::mask::MaskWords, extra),
    not_unblockable = const !super::mask::UNBLOCKABLE,
    not_knb = const !super::mask::KERNEL_NEVER_BLOCKED,
    fault_signals = const super::mask::FAULT_SIGNALS,
    multi = sym super::mask::MULTI_THREADED,
    traced = sym super::ptrace::TRACED,
    sys_rt_sigprocmask = const libc::SYS_rt_sigprocmask,
    fd_floor = sym super::fds::FD_FLOOR,
    r_indirect = const ExitReason::IndirectMiss as u64,
    r_signal = const ExitReason::Signal as u64,
    r_syscall_signal = const ExitReason::SyscallSignal as u64,
    gate_nr = const off::GATE_NR,
    sys_getpid = const libc::SYS_getpid,
    r_syscall = const ExitReason::Syscall as u64,
    handler = sym super::handler::entry,
    vfork_child = sym super::process::vfork_child_entry,
    sys_clone = const libc::SYS_clone,
    not_started = const SAFE_NOT_STARTED,
    not_ac = const !0x40000u32 as i32,
);

/// The gate's address check tests `v >> LIMIT_SHIFT == 1`: v in
/// [GUEST_LIMIT, 2 * GUEST_LIMIT), which is [2^46, 2^47).
const LIMIT_SHIFT: u32 = translator::abi::GUEST_LIMIT.trailing_zeros();
const _: () = assert!(translator::abi::GUEST_LIMIT == 1 << LIMIT_SHIFT && LIMIT_SHIFT == 46);

/// What `bt_safe_syscall` returns for a call it did not make because a
/// signal is pending (-ERESTARTSYS: the kernel never returns it to user
/// space, so it cannot be a real result).
pub const SAFE_NOT_STARTED: i64 = -512;

unsafe extern "C" {
    /// Run guest code at `target` with the state in `ctx` until it exits.
    /// The GS base must point at `ctx`.
    pub fn bt_enter_cache(ctx: *mut translator::abi::GuestContext, target: u64);
    pub fn bt_exit_common();
    pub fn bt_exit_branch();
    pub fn bt_ibl_miss();
    pub fn bt_gate();
    fn bt_gate_check();
    pub fn bt_gate_syscall();
    fn bt_gate_pending();
    fn bt_safe_check();
    fn bt_safe_insn();
    fn bt_safe_pending();
    fn bt_copy_insn();
    fn bt_copy_fault();
    fn bt_zero_fill();
    fn bt_zero_filled();
    /// Copy `len` bytes; 1 if a fault stopped it (see above).
    pub fn bt_copy_checked(dst: *mut u8, src: *const u8, len: usize) -> u64;
    /// Make guest syscall `nr` with `args` (see above).
    pub fn bt_safe_syscall(nr: u64, args: *const [u64; 6]) -> i64;
    /// Make guest i386 syscall `nr` with `args` (see above).
    pub fn bt_safe_int80(nr: u64, args: *const [u64; 6]) -> i64;
    fn bt_int80_check();
    fn bt_sigmask_start();
    fn bt_sigmask_read();
    fn bt_sigmask_write();
    fn bt_sigmask_commit();
    fn bt_sigmask_abort();
    fn bt_int80_insn();
    fn bt_int80_pending();
    pub fn bt_gate_after_syscall();
    pub fn bt_view_marker(kind: u64, ctx: *mut translator::abi::GuestContext);
    pub fn bt_view_after_marker();
    pub fn bt_host_signal_entry(sig: i32, info: *mut libc::siginfo_t, uc: *mut libc::c_void);
    pub fn bt_signal_exit();
    pub fn bt_sigreturn();
    /// Raw clone whose child runs `vfork_child_entry(*(stack as *const u64))`
    /// on `stack`; returns the child's pid (or -errno) in the parent.
    pub fn bt_raw_clone(flags: u64, stack: u64, ptid: u64, ctid: u64, tls: u64) -> i64;
    fn bt_sigmask_after_syscall();
    fn bt_safe_after_insn();
    fn bt_int80_after_insn();
    fn bt_trampolines_start();
    fn bt_trampolines_end();
}

/// Where a host signal handler that took a signal must resume a thread
/// interrupted at `pc` (None: where it was). Between a gate's check of the
/// pending flag and its `syscall` (inclusive: at the `syscall` itself it has
/// not run yet), the call must not start, or it could sleep with the signal
/// taken but undelivered: that is the wake-up a blocking call must not lose.
pub fn syscall_window_exit(pc: u64) -> Option<u64> {
    let at = |f: unsafe extern "C" fn()| f as *const () as u64;
    if pc >= at(bt_gate_check) && pc <= at(bt_gate_syscall) {
        return Some(at(bt_gate_pending));
    }
    if pc >= at(bt_safe_check) && pc <= at(bt_safe_insn) {
        return Some(at(bt_safe_pending));
    }
    if pc >= at(bt_int80_check) && pc <= at(bt_int80_insn) {
        return Some(at(bt_int80_pending));
    }
    None
}

/// Where a thread that faulted at `pc` must resume if the fault hit a
/// checked copy (its `rep movsb`: the copy then reports failure) or one of
/// the gate's reads and writes of guest memory for `rt_sigprocmask` (the
/// call then goes to the runtime, which reports EFAULT as the kernel does).
pub fn copy_fault_fixup(pc: u64) -> Option<u64> {
    let at = |f: unsafe extern "C" fn()| f as *const () as u64;
    if pc == at(bt_sigmask_read) || pc == at(bt_sigmask_write) {
        return Some(at(bt_sigmask_abort));
    }
    if pc == at(bt_zero_fill) {
        return Some(at(bt_zero_filled));
    }
    (pc == at(bt_copy_insn)).then(|| at(bt_copy_fault))
}

/// Where a host signal handler that interrupted the gate's `rt_sigprocmask`
/// before its commit (the store of the new mask) must resume it: at the
/// runtime, so the call is made after the signal under the runtime's rules
/// (the handler decided with the old mask, as if the signal came first).
pub fn sigmask_window_exit(pc: u64) -> Option<u64> {
    let at = |f: unsafe extern "C" fn()| f as *const () as u64;
    (pc >= at(bt_sigmask_start) && pc <= at(bt_sigmask_commit)).then(|| at(bt_sigmask_abort))
}

/// Is host address `pc` inside one of the trampolines above?
pub fn contains(pc: u64) -> bool {
    pc >= bt_trampolines_start as *const () as u64 && pc < bt_trampolines_end as *const () as u64
}

/// The addresses after the `syscall`/`int $0x80` instructions that make
/// guest calls, as the kernel reports them to seccomp: the gate's forward,
/// the gate's own rt_sigprocmask, `bt_safe_syscall`'s, `bt_safe_int80`'s.
pub fn guest_call_sites() -> [u64; 4] {
    let at = |f: unsafe extern "C" fn()| f as *const () as u64;
    [at(bt_gate_after_syscall), at(bt_sigmask_after_syscall), at(bt_safe_after_insn), at(bt_int80_after_insn)]
}
