/* Recovering from synchronous faults. st_faults MODE, MODE one of:
 *   longjmp    100 SIGSEGVs (reads and writes to PROT_NONE pages and to
 *              unmapped low addresses), each recovered with siglongjmp;
 *              si_addr, si_code, trapno and error code checked every time;
 *              then 50 more with SA_NODEFER and sigsetjmp(env, 0)
 *   skip       the handler skips a faulting `mov (%rax),%rbx` (3 bytes) by
 *              editing REG_RIP, and changes rbx, rcx, r12 and the carry flag
 *              in the ucontext: the program sees the new values (1000 times);
 *              the same for ud2 (SIGILL) and div by zero (SIGFPE)
 *   altstack   stack overflow of the main thread recovered three times by
 *              an SA_ONSTACK handler that siglongjmps out
 *   threadstack  the same in a thread with its own small stack and altstack
 *   callpush   stack overflow by the return-address pushes of a `call`
 *              calling itself (direct, then through a register), with
 *              every register set: the handler sees each as it was
 *   int3       int3 and `int $3` with a handler: si_code, the pc after the
 *              trap, a register changed by the handler (1000 times)
 *   int3default  int3 without a handler: the process dies of SIGTRAP */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

__asm__(".text\n"
        /* void skip_probe(uint64_t out[5]) */
        ".globl skip_probe\n"
        "skip_probe:\n"
        "  push %rbx\n"
        "  push %r12\n"
        "  mov $0x10, %eax\n"
        "  mov $0x1111, %ebx\n"
        "  mov $0x2222, %ecx\n"
        "  mov $0x3333, %r12d\n"
        "  xor %edx, %edx\n"
        "  clc\n"
        ".globl skip_insn\n"
        "skip_insn:\n"
        "  mov (%rax), %rbx\n" /* 48 8b 18 */
        ".globl skip_after\n"
        "skip_after:\n"
        "  setc %dl\n"
        "  mov %rbx, 0(%rdi)\n"
        "  mov %rcx, 8(%rdi)\n"
        "  mov %r12, 16(%rdi)\n"
        "  mov %rdx, 24(%rdi)\n"
        "  mov %rax, 32(%rdi)\n"
        "  pop %r12\n"
        "  pop %rbx\n"
        "  ret\n"
        /* uint64_t ud2_probe(void): the handler sets rax */
        ".globl ud2_probe\n"
        "ud2_probe:\n"
        "  mov $5, %eax\n"
        ".globl ud2_insn\n"
        "ud2_insn:\n"
        "  ud2\n"
        "  ret\n"
        /* uint64_t div_probe(void): 100 / 0, the handler supplies the quotient */
        ".globl div_probe\n"
        "div_probe:\n"
        "  mov $100, %eax\n"
        "  xor %edx, %edx\n"
        "  xor %ecx, %ecx\n"
        ".globl div_insn\n"
        "div_insn:\n"
        "  div %rcx\n" /* 48 f7 f1 */
        "  ret\n"
        /* uint64_t int3_probe(void) */
        ".globl int3_probe\n"
        "int3_probe:\n"
        "  mov $1, %eax\n"
        "  int3\n"
        ".globl int3_after\n"
        "int3_after:\n"
        "  add $10, %rax\n"
        "  int $3\n"
        ".globl int3b_after\n"
        "int3b_after:\n"
        "  add $100, %rax\n"
        "  ret\n"
        /* void call_overflow(uint64_t seed, int indirect): never returns */
        ".globl call_overflow\n"
        "call_overflow:\n"
        "  mov %esi, %eax\n"
        "  lea 1(%rdi), %rbx\n"
        "  lea 2(%rdi), %rcx\n"
        "  lea 3(%rdi), %rdx\n"
        "  lea 5(%rdi), %rbp\n"
        "  lea 6(%rdi), %r8\n"
        "  lea 7(%rdi), %r9\n"
        "  lea 8(%rdi), %r10\n"
        "  lea 9(%rdi), %r11\n"
        "  lea 10(%rdi), %r12\n"
        "  lea 11(%rdi), %r13\n"
        "  lea 12(%rdi), %r14\n"
        "  lea 13(%rdi), %r15\n"
        "  lea call_self_ind(%rip), %rsi\n"
        "  test %eax, %eax\n"
        "  mov %rdi, %rax\n"
        "  jnz call_self_ind\n"
        ".globl call_self\n"
        "call_self:\n"
        "  call call_self\n"
        ".globl call_self_ind\n"
        "call_self_ind:\n"
        "  call *%rsi\n");
void skip_probe(uint64_t out[5]);
uint64_t ud2_probe(void);
uint64_t div_probe(void);
uint64_t int3_probe(void);
void call_overflow(uint64_t seed, int indirect);
extern char call_self[], call_self_ind[];
extern char skip_insn[], skip_after[], ud2_insn[], div_insn[], int3_after[], int3b_after[];

static sigjmp_buf jb;
static volatile uintptr_t got_addr;
static volatile int got_code, got_sig;
static volatile long got_trapno, got_err;
static volatile int mismatches;

static void install(int sig, void (*fn)(int, siginfo_t *, void *), int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = fn;
    sa.sa_flags = SA_SIGINFO | flags;
    sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, NULL)) perror("sigaction");
}

static int segv_blocked(void) {
    sigset_t cur;
    sigprocmask(SIG_BLOCK, NULL, &cur);
    return sigismember(&cur, SIGSEGV);
}

/* ---- longjmp ---- */
static void jump_handler(int sig, siginfo_t *si, void *ucv) {
    ucontext_t *uc = ucv;
    got_sig = sig;
    got_addr = (uintptr_t)si->si_addr;
    got_code = si->si_code;
    got_trapno = uc->uc_mcontext.gregs[REG_TRAPNO];
    got_err = uc->uc_mcontext.gregs[REG_ERR];
    siglongjmp(jb, 1);
}

static int mode_longjmp(void) {
    const int pages = 100;
    char *region = mmap(NULL, (size_t)pages * 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (region == MAP_FAILED) return 1;
    install(SIGSEGV, jump_handler, 0);
    int recovered = 0, exact = 0, accerr = 0, maperr = 0, blocked_after = 0;
    long errs[2][2] = {{-1, -1}, {-1, -1}}; /* [maperr][write] -> error code seen */
    for (int i = 0; i < 100; i++) {
        int write = i & 1, low = i % 10 == 9 || i % 10 == 4;
        volatile char *target = low ? (volatile char *)(uintptr_t)(0x100 + i * 8) : region + (size_t)i * 4096 + (size_t)(i * 37 % 4096);
        got_addr = 0;
        if (sigsetjmp(jb, 1) == 0) {
            if (write) *target = (char)i;
            else (void)*target;
            printf("fault %d did not happen\n", i);
            continue;
        }
        recovered++;
        exact += got_addr == (uintptr_t)target && got_sig == SIGSEGV && got_trapno == 14;
        accerr += got_code == SEGV_ACCERR;
        maperr += got_code == SEGV_MAPERR;
        blocked_after += segv_blocked();
        errs[got_code == SEGV_MAPERR][write] = got_err;
    }
    printf("sigsetjmp(env, 1): recovered %d of 100, si_addr/trapno exact %d, SEGV_ACCERR %d, SEGV_MAPERR %d, "
           "SIGSEGV still blocked afterwards %d\n",
           recovered, exact, accerr, maperr, blocked_after);
    printf("error codes: accerr read %#lx write %#lx, maperr read %#lx write %#lx\n", errs[0][0], errs[0][1],
           errs[1][0], errs[1][1]);

    /* The other classic: SA_NODEFER and a jump buffer without the mask. */
    install(SIGSEGV, jump_handler, SA_NODEFER);
    recovered = exact = blocked_after = 0;
    for (int i = 0; i < 50; i++) {
        volatile char *target = region + (size_t)(i * 2) * 4096 + 4095;
        if (sigsetjmp(jb, 0) == 0) {
            (void)*target;
            continue;
        }
        recovered++;
        exact += got_addr == (uintptr_t)target;
        blocked_after += segv_blocked();
    }
    printf("SA_NODEFER + sigsetjmp(env, 0): recovered %d of 50, si_addr exact %d, SIGSEGV blocked afterwards %d\n",
           recovered, exact, blocked_after);
    return 0;
}

/* ---- skip ---- */
static void skip_handler(int sig, siginfo_t *si, void *ucv) {
    ucontext_t *uc = ucv;
    greg_t *g = uc->uc_mcontext.gregs;
    if (sig == SIGSEGV) {
        if (g[REG_RIP] != (greg_t)(uintptr_t)skip_insn || si->si_addr != (void *)0x10 || g[REG_RAX] != 0x10 ||
            g[REG_RBX] != 0x1111 || g[REG_RCX] != 0x2222 || g[REG_R12] != 0x3333 || (g[REG_EFL] & 1))
            mismatches++;
        g[REG_RIP] += 3;
        g[REG_RBX] = (greg_t)0xfeedfacecafebeefULL;
        g[REG_RCX] += 1;
        g[REG_R12] = ~g[REG_R12];
        g[REG_EFL] |= 1; /* carry */
    } else if (sig == SIGILL) {
        if (g[REG_RIP] != (greg_t)(uintptr_t)ud2_insn || si->si_addr != (void *)ud2_insn || si->si_code != ILL_ILLOPN)
            mismatches++;
        g[REG_RIP] += 2;
        g[REG_RAX] *= 7;
    } else if (sig == SIGFPE) {
        if (g[REG_RIP] != (greg_t)(uintptr_t)div_insn || si->si_addr != (void *)div_insn || si->si_code != FPE_INTDIV)
            mismatches++;
        g[REG_RIP] += 3;
        g[REG_RAX] = 42;
        g[REG_RDX] = 0;
    }
}

static int mode_skip(void) {
    install(SIGSEGV, skip_handler, 0);
    install(SIGILL, skip_handler, 0);
    install(SIGFPE, skip_handler, 0);
    printf("mov (%%rax),%%rbx is %d bytes long\n", (int)(skip_after - skip_insn));
    int good = 0, good_ill = 0, good_fpe = 0;
    uint64_t out[5] = {0};
    for (int i = 0; i < 1000; i++) {
        memset(out, 0, sizeof out);
        skip_probe(out);
        if (i == 0)
            printf("after the skipped fault: rbx %#llx rcx %#llx r12 %#llx carry %llu rax %#llx\n",
                   (unsigned long long)out[0], (unsigned long long)out[1], (unsigned long long)out[2],
                   (unsigned long long)out[3], (unsigned long long)out[4]);
        good += out[0] == 0xfeedfacecafebeefULL && out[1] == 0x2223 && out[2] == ~0x3333ULL && out[3] == 1 &&
                out[4] == 0x10;
        good_ill += ud2_probe() == 35;
        good_fpe += div_probe() == 42;
    }
    printf("SIGSEGV skipped with new registers: %d of 1000\n", good);
    printf("SIGILL (ud2) skipped, rax*7 seen: %d of 1000\n", good_ill);
    printf("SIGFPE (div by 0) skipped, quotient 42 seen: %d of 1000\n", good_fpe);
    printf("handler saw the wrong state %d times\n", mismatches);
    return 0;
}

/* ---- altstack ---- */
static char *alt_lo, *alt_hi;
static volatile int alt_on, alt_flags_in_handler;

static void overflow_handler(int sig, siginfo_t *si, void *ucv) {
    (void)ucv;
    char local;
    stack_t cur;
    got_sig = sig;
    got_code = si->si_code;
    alt_on = &local >= alt_lo && &local < alt_hi;
    sigaltstack(NULL, &cur);
    alt_flags_in_handler = cur.ss_flags;
    siglongjmp(jb, 1);
}

__attribute__((noinline)) static int recurse(volatile int depth) {
    volatile char pad[512];
    pad[0] = (char)depth;
    pad[511] = (char)depth;
    return recurse(depth + 1) + pad[0] + pad[511];
}

static void overflow_rounds(const char *who, size_t altsize) {
    char *alt = malloc(altsize);
    stack_t ss = {.ss_sp = alt, .ss_size = altsize, .ss_flags = 0};
    if (sigaltstack(&ss, NULL)) perror("sigaltstack");
    alt_lo = alt;
    alt_hi = alt + altsize;
    install(SIGSEGV, overflow_handler, SA_ONSTACK);
    for (int round = 1; round <= 3; round++) {
        got_sig = 0;
        alt_on = 0;
        if (sigsetjmp(jb, 1) == 0) {
            recurse(0);
            printf("%s: recursion returned?\n", who);
        }
        stack_t after;
        sigaltstack(NULL, &after);
        printf("%s round %d: sig %d si_code %d handler on altstack %d, ss_flags in handler %d, after %d\n", who, round,
               got_sig, got_code, alt_on, alt_flags_in_handler, after.ss_flags);
    }
}

static int mode_altstack(void) {
    overflow_rounds("main thread", 64 * 1024);
    printf("still alive, SIGSEGV blocked %d\n", segv_blocked());
    return 0;
}

static void *overflow_thread(void *arg) {
    (void)arg;
    stack_t cur;
    sigaltstack(NULL, &cur);
    printf("new thread inherits no altstack: ss_flags %d\n", cur.ss_flags);
    overflow_rounds("thread", 32 * 1024);
    return NULL;
}

static int mode_threadstack(void) {
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 256 * 1024);
    pthread_t th;
    if (pthread_create(&th, &a, overflow_thread, NULL)) return 1;
    pthread_join(th, NULL);
    printf("joined\n");
    return 0;
}

/* ---- callpush ---- */
static volatile greg_t push_regs[NGREG];

static void push_handler(int sig, siginfo_t *si, void *ucv) {
    ucontext_t *uc = ucv;
    got_sig = sig;
    got_code = si->si_code;
    memcpy((void *)push_regs, uc->uc_mcontext.gregs, sizeof push_regs);
    siglongjmp(jb, 1);
}

static int mode_callpush(void) {
    static const struct {
        const char *name;
        int reg;
    } regs[] = {{"rax", REG_RAX}, {"rbx", REG_RBX}, {"rcx", REG_RCX}, {"rdx", REG_RDX}, {"rsi", REG_RSI},
                {"rdi", REG_RDI}, {"rbp", REG_RBP}, {"r8", REG_R8},   {"r9", REG_R9},   {"r10", REG_R10},
                {"r11", REG_R11}, {"r12", REG_R12}, {"r13", REG_R13}, {"r14", REG_R14}, {"r15", REG_R15}};
    const uint64_t seed = 0x7a5e0000;
    char *alt = malloc(64 * 1024);
    stack_t ss = {.ss_sp = alt, .ss_size = 64 * 1024, .ss_flags = 0};
    if (sigaltstack(&ss, NULL)) perror("sigaltstack");
    install(SIGSEGV, push_handler, SA_ONSTACK);
    for (int indirect = 0; indirect <= 1; indirect++) {
        got_sig = 0;
        if (sigsetjmp(jb, 1) == 0) call_overflow(seed, indirect);
        const char *at = (char *)push_regs[REG_RIP] == call_self       ? "the direct call"
                         : (char *)push_regs[REG_RIP] == call_self_ind ? "the indirect call"
                                                                       : "elsewhere";
        printf("%s: sig %d si_code %d at %s, rsp 16-aligned %d\n", indirect ? "indirect" : "direct", got_sig, got_code,
               at, (int)(push_regs[REG_RSP] & 15) == 0);
        for (size_t i = 0; i < sizeof regs / sizeof regs[0]; i++) {
            uint64_t v = (uint64_t)push_regs[regs[i].reg];
            if (regs[i].reg == REG_RSI)
                printf("  rsi %s\n", (char *)v == call_self_ind ? "= the call" : "wrong");
            else
                printf("  %s seed+%lld\n", regs[i].name, (long long)(v - seed));
        }
    }
    return 0;
}

/* ---- int3 ---- */
static volatile int traps, trap_bad;

static void trap_handler(int sig, siginfo_t *si, void *ucv) {
    ucontext_t *uc = ucv;
    greg_t *g = uc->uc_mcontext.gregs;
    traps++;
    if (sig != SIGTRAP || si->si_signo != SIGTRAP || si->si_code != SI_KERNEL || g[REG_TRAPNO] != 3) trap_bad++;
    if (g[REG_RIP] == (greg_t)(uintptr_t)int3_after) {
        if (g[REG_RAX] != 1) trap_bad++;
        g[REG_RAX] = 2;
    } else if (g[REG_RIP] == (greg_t)(uintptr_t)int3b_after) {
        if (g[REG_RAX] != 12) trap_bad++;
        g[REG_RAX] += 1000;
    } else {
        trap_bad++;
    }
}

static int mode_int3(void) {
    install(SIGTRAP, trap_handler, 0);
    int good = 0;
    uint64_t first = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t r = int3_probe();
        if (i == 0) first = r;
        good += r == 1112;
    }
    printf("int3 + int $3: result %llu (1 -> handler 2 -> +10 -> handler +1000 -> +100), right %d of 1000\n",
           (unsigned long long)first, good);
    printf("traps %d, wrong si_code/trapno/pc/register %d\n", traps, trap_bad);
    return 0;
}

static int mode_int3default(void) {
    printf("before int3\n");
    fflush(stdout);
    int3_probe();
    printf("survived int3\n");
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "longjmp")) return mode_longjmp();
    if (!strcmp(mode, "skip")) return mode_skip();
    if (!strcmp(mode, "altstack")) return mode_altstack();
    if (!strcmp(mode, "threadstack")) return mode_threadstack();
    if (!strcmp(mode, "callpush")) return mode_callpush();
    if (!strcmp(mode, "int3")) return mode_int3();
    if (!strcmp(mode, "int3default")) return mode_int3default();
    fprintf(stderr, "usage: st_faults longjmp|skip|altstack|threadstack|callpush|int3|int3default\n");
    return 2;
}
