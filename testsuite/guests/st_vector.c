/* Vector and FPU state in signal frames. st_vector MODE, MODE one of:
 *   fault   xmm0/xmm1/xmm15 (and ymm0/1/15 when the CPU has AVX), MXCSR and
 *           the x87 control word set to known patterns, then a faulting
 *           `mov (%rax),%rbx`: the handler prints what the ucontext holds,
 *           checks it starts with the default MXCSR/x87 control word,
 *           clobbers the registers itself, writes a new xmm1 (and ymm1 high
 *           half) into the ucontext and skips the instruction; afterwards
 *           xmm0/xmm15 hold the interrupted values and xmm1 the new one
 *   raise   the same with the signal sent by a tgkill `syscall` in the probe
 *   async   15 vector registers hold patterns in a spin loop that checks
 *           them continuously while 200 SIGALRMs (1 ms timer) arrive, and
 *           the handler clobbers every vector register and MXCSR
 * A second argument "sse" restricts the test to xmm registers. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <ucontext.h>
#include <unistd.h>

/* Layout shared with the assembly below. */
struct vstate {
    uint8_t x0[32], x1[32], x15[32]; /* 0, 32, 64 */
    uint32_t mxcsr, fcw;             /* 96, 100 */
    uint32_t mxcsr_def, fcw_def;     /* 104, 108 */
    uint64_t pid, tid, sig;          /* 112, 120, 128 */
    uint64_t raise;                  /* 136: 0 fault, 1 tgkill */
};

#define PROBE(name, MOV, R0, R1, R15, FINISH)                                           \
    ".globl " name "\n" name ":\n"                                                                                 \
    "  push %rbx\n"                                                                                                \
    "  push %r12\n"                                                                                                \
    "  push %r13\n"                                                                                                \
    "  mov %rdi, %r12\n"                                                                                           \
    "  mov %rsi, %r13\n"                                                                                           \
    "  " MOV " 0(%r12), " R0 "\n"                                                                                \
    "  " MOV " 32(%r12), " R1 "\n"                                                                               \
    "  " MOV " 64(%r12), " R15 "\n"                                                                                    \
    "  ldmxcsr 96(%r12)\n"                                                                                         \
    "  fldcw 100(%r12)\n"                                                                                          \
    "  cmpq $0, 136(%r12)\n"                                                                                       \
    "  jne 1f\n"                                                                                                   \
    "  mov $0x18, %eax\n"                                                                                          \
    ".globl " name "_insn\n" name "_insn:\n"                                                                       \
    "  mov (%rax), %rbx\n"                                                                                         \
    "  jmp 2f\n"                                                                                                   \
    "1:\n"                                                                                                         \
    "  mov $234, %eax\n" /* tgkill */                                                                              \
    "  mov 112(%r12), %rdi\n"                                                                                      \
    "  mov 120(%r12), %rsi\n"                                                                                      \
    "  mov 128(%r12), %rdx\n"                                                                                      \
    "  syscall\n"                                                                                                  \
    "2:\n"                                                                                                         \
    "  " MOV " " R0 ", 0(%r13)\n"                                                                                \
    "  " MOV " " R1 ", 32(%r13)\n"                                                                               \
    "  " MOV " " R15 ", 64(%r13)\n"                                                                                    \
    "  stmxcsr 96(%r13)\n"                                                                                         \
    "  fnstcw 100(%r13)\n"                                                                                         \
    "  ldmxcsr 104(%r12)\n"                                                                                        \
    "  fldcw 108(%r12)\n"                                                                                          \
    "  " FINISH "\n"                                                                                               \
    "  pop %r13\n"                                                                                                 \
    "  pop %r12\n"                                                                                                 \
    "  pop %rbx\n"                                                                                                 \
    "  ret\n"

__asm__(".text\n" PROBE("probe_sse", "movdqu", "%xmm0", "%xmm1", "%xmm15", "nop"));
__asm__(".text\n" PROBE("probe_avx", "vmovdqu", "%ymm0", "%ymm1", "%ymm15", "vzeroupper"));
void probe_sse(const struct vstate *in, struct vstate *out);
void probe_avx(const struct vstate *in, struct vstate *out);
extern char probe_sse_insn[], probe_avx_insn[];

static int have_avx;
static volatile int in_handler_mismatch;

struct seen {
    uint32_t x0[4], x1[4], x15[4];
    uint32_t y0h[4], y1h[4], y15h[4];
    int ymm_valid;
    uint32_t mxcsr, fcw, own_mxcsr, own_fcw;
    int si_code;
    int rip_ok;
};
static struct seen seen;

__attribute__((target("avx"))) static void clobber_avx(void) {
    __asm__ volatile("vcmpps $15, %%ymm0, %%ymm0, %%ymm0\n"
                     "vcmpps $15, %%ymm1, %%ymm1, %%ymm1\n"
                     "vcmpps $15, %%ymm15, %%ymm15, %%ymm15\n" ::
                         : "xmm0", "xmm1", "xmm15");
}

static void clobber_sse(void) {
    __asm__ volatile("pcmpeqd %%xmm0, %%xmm0\n"
                     "pcmpeqd %%xmm1, %%xmm1\n"
                     "pcmpeqd %%xmm15, %%xmm15\n" ::
                         : "xmm0", "xmm1", "xmm15");
}

static const uint32_t new_x1[4] = {0x0badf00d, 0x11223344, 0x55667788, 0x99aabbcc};
static const uint32_t new_y1h[4] = {0xd00dfeed, 0x01020304, 0x05060708, 0x090a0b0c};

static void vec_handler(int sig, siginfo_t *si, void *ucv) {
    (void)sig;
    ucontext_t *uc = ucv;
    uint32_t own_mxcsr;
    uint16_t own_fcw;
    __asm__ volatile("stmxcsr %0\n fnstcw %1" : "=m"(own_mxcsr), "=m"(own_fcw));
    seen.own_mxcsr = own_mxcsr;
    seen.own_fcw = own_fcw;
    seen.si_code = si->si_code;
    uint8_t *fp = (uint8_t *)uc->uc_mcontext.fpregs;
    memcpy(seen.x0, uc->uc_mcontext.fpregs->_xmm[0].element, 16);
    memcpy(seen.x1, uc->uc_mcontext.fpregs->_xmm[1].element, 16);
    memcpy(seen.x15, uc->uc_mcontext.fpregs->_xmm[15].element, 16);
    seen.mxcsr = uc->uc_mcontext.fpregs->mxcsr;
    seen.fcw = uc->uc_mcontext.fpregs->cwd;
    uint32_t magic1;
    uint64_t xstate_bv;
    memcpy(&magic1, fp + 464, 4);
    memcpy(&xstate_bv, fp + 512, 8);
    seen.ymm_valid = magic1 == 0x46505853 && (xstate_bv & 4);
    if (seen.ymm_valid) {
        memcpy(seen.y0h, fp + 576 + 0 * 16, 16);
        memcpy(seen.y1h, fp + 576 + 1 * 16, 16);
        memcpy(seen.y15h, fp + 576 + 15 * 16, 16);
        memcpy(fp + 576 + 1 * 16, new_y1h, 16);
    }
    memcpy(uc->uc_mcontext.fpregs->_xmm[1].element, new_x1, 16);
    if (have_avx) clobber_avx();
    else clobber_sse();
    if (si->si_signo == SIGSEGV) {
        greg_t want = (greg_t)(uintptr_t)(have_avx ? probe_avx_insn : probe_sse_insn);
        seen.rip_ok = uc->uc_mcontext.gregs[REG_RIP] == want && si->si_addr == (void *)0x18;
        uc->uc_mcontext.gregs[REG_RIP] += 3;
    } else {
        seen.rip_ok = 1;
    }
}

static void print4(const char *what, const uint32_t *v) {
    printf("  %-10s %08x %08x %08x %08x\n", what, v[0], v[1], v[2], v[3]);
}

static void fill(uint8_t *p, uint8_t seed) {
    for (int i = 0; i < 32; i++) p[i] = (uint8_t)(seed + i * 7);
}

static int mode_sync(int raise_it) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = vec_handler;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    static struct vstate in, out;
    fill(in.x0, 0x10);
    fill(in.x1, 0x40);
    fill(in.x15, 0x70);
    in.mxcsr = 0x7f80; /* round toward zero */
    in.fcw = 0x027f;   /* 53-bit precision */
    in.mxcsr_def = 0x1f80;
    in.fcw_def = 0x037f;
    in.pid = (uint64_t)getpid();
    in.tid = (uint64_t)syscall(SYS_gettid);
    in.sig = SIGUSR1;
    in.raise = (uint64_t)raise_it;
    if (have_avx) probe_avx(&in, &out);
    else probe_sse(&in, &out);
    printf("%s with %s registers\n", raise_it ? "tgkill" : "fault", have_avx ? "ymm" : "xmm");
    printf("handler: si_code %d, pc/si_addr right %d, own MXCSR %#x, own x87 CW %#x\n", seen.si_code, seen.rip_ok,
           seen.own_mxcsr, seen.own_fcw);
    printf("ucontext: MXCSR %#x x87 CW %#x\n", seen.mxcsr, seen.fcw);
    print4("xmm0", seen.x0);
    print4("xmm1", seen.x1);
    print4("xmm15", seen.x15);
    if (have_avx) {
        printf("ucontext ymm high halves present: %d\n", seen.ymm_valid);
        print4("ymm0 hi", seen.y0h);
        print4("ymm1 hi", seen.y1h);
        print4("ymm15 hi", seen.y15h);
    }
    uint32_t v[8];
    printf("after return: MXCSR %#x x87 CW %#x\n", out.mxcsr, out.fcw);
    memcpy(v, out.x0, 32);
    print4("xmm0", v);
    printf("  xmm0 restored: %d\n", !memcmp(out.x0, in.x0, 16));
    memcpy(v, out.x1, 32);
    print4("xmm1", v);
    printf("  xmm1 is the handler's: %d\n", !memcmp(out.x1, new_x1, 16));
    printf("  xmm15 restored: %d\n", !memcmp(out.x15, in.x15, 16));
    if (have_avx) {
        printf("  ymm0 high restored: %d\n", !memcmp(out.x0 + 16, in.x0 + 16, 16));
        printf("  ymm1 high is the handler's: %d\n", !memcmp(out.x1 + 16, new_y1h, 16));
        printf("  ymm15 high restored: %d\n", !memcmp(out.x15 + 16, in.x15 + 16, 16));
    }
    return 0;
}

/* ---- async ---- */
#define SPIN_CHECK_SSE(i)                                                                                            \
    "  movdqa %xmm" #i ", %xmm15\n"                                                                                \
    "  pcmpeqb " #i "*32(%rdi), %xmm15\n"                                                                          \
    "  pmovmskb %xmm15, %edx\n"                                                                                    \
    "  cmp $0xffff, %edx\n"                                                                                        \
    "  je 3f\n"                                                                                                    \
    "  inc %rax\n"                                                                                                 \
    "  movdqa " #i "*32(%rdi), %xmm" #i "\n"                                                                       \
    "3:\n"
#define SPIN_CHECK_AVX(i)                                                                                            \
    "  vxorps " #i "*32(%rdi), %ymm" #i ", %ymm15\n"                                                               \
    "  vptest %ymm15, %ymm15\n"                                                                                    \
    "  jz 3f\n"                                                                                                    \
    "  inc %rax\n"                                                                                                 \
    "  vmovdqa " #i "*32(%rdi), %ymm" #i "\n"                                                                      \
    "3:\n"
#define ALL(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) M(10) M(11) M(12) M(13) M(14)
#define LOAD_SSE(i) "  movdqa " #i "*32(%rdi), %xmm" #i "\n"
#define LOAD_AVX(i) "  vmovdqa " #i "*32(%rdi), %ymm" #i "\n"

/* long spin_sse(const uint8_t pat[15][32], volatile int *stop): mismatches seen */
__asm__(".text\n.globl spin_sse\nspin_sse:\n" ALL(LOAD_SSE) "  xor %eax, %eax\n"
                                                             "1:\n" ALL(SPIN_CHECK_SSE) "  cmpl $0, (%rsi)\n"
                                                                                        "  je 1b\n"
                                                                                        "  ret\n");
__asm__(".text\n.globl spin_avx\nspin_avx:\n" ALL(LOAD_AVX) "  xor %eax, %eax\n"
                                                             "1:\n" ALL(SPIN_CHECK_AVX) "  cmpl $0, (%rsi)\n"
                                                                                        "  je 1b\n"
                                                                                        "  vzeroupper\n"
                                                                                        "  ret\n");
long spin_sse(const uint8_t (*pat)[32], volatile int *stop);
long spin_avx(const uint8_t (*pat)[32], volatile int *stop);

static volatile int stop, ticks, extra_ticks;

__attribute__((target("avx"))) static void clobber_all_avx(void) {
    __asm__ volatile(
#define CL(i) "vcmpps $15, %%ymm0, %%ymm0, %%ymm" #i "\n"
        CL(0) CL(1) CL(2) CL(3) CL(4) CL(5) CL(6) CL(7) CL(8) CL(9) CL(10) CL(11) CL(12) CL(13) CL(14) CL(15)
#undef CL
        ::: "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
        "xmm12", "xmm13", "xmm14", "xmm15");
}

static void clobber_all_sse(void) {
    __asm__ volatile(
#define CL(i) "pcmpeqd %%xmm" #i ", %%xmm" #i "\n"
        CL(0) CL(1) CL(2) CL(3) CL(4) CL(5) CL(6) CL(7) CL(8) CL(9) CL(10) CL(11) CL(12) CL(13) CL(14) CL(15)
#undef CL
        ::: "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
        "xmm12", "xmm13", "xmm14", "xmm15");
}

static void tick(int sig) {
    (void)sig;
    uint32_t m = 0x3f80; /* round down, all exceptions masked */
    __asm__ volatile("ldmxcsr %0" ::"m"(m));
    if (have_avx) clobber_all_avx();
    else clobber_all_sse();
    if (ticks == 200) {
        extra_ticks++; /* one may already have been pending when the timer was disarmed */
    } else if (++ticks == 200) {
        struct itimerval it = {{0, 0}, {0, 0}};
        setitimer(ITIMER_REAL, &it, NULL);
        stop = 1;
    }
}

static int mode_async(void) {
    static uint8_t pat[15][32] __attribute__((aligned(32)));
    for (int i = 0; i < 15; i++) fill(pat[i], (uint8_t)(i * 17 + 3));
    signal(SIGALRM, tick);
    struct itimerval it = {{0, 1000}, {0, 1000}};
    setitimer(ITIMER_REAL, &it, NULL);
    long bad = have_avx ? spin_avx(pat, &stop) : spin_sse(pat, &stop);
    uint32_t mxcsr;
    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    printf("async: %d signals (at most one more: %s) into a loop checking 15 %s registers: %ld mismatches, "
           "MXCSR after %#x\n",
           ticks, extra_ticks <= 1 ? "yes" : "no", have_avx ? "ymm" : "xmm", bad, mxcsr);
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* a second argument "sse" uses only the xmm registers even on AVX machines */
    have_avx = __builtin_cpu_supports("avx") && !(argc > 2 && !strcmp(argv[2], "sse"));
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "fault")) return mode_sync(0);
    if (!strcmp(mode, "raise")) return mode_sync(1);
    if (!strcmp(mode, "async")) return mode_async();
    fprintf(stderr, "usage: st_vector fault|raise|async [sse]\n");
    return 2;
}
