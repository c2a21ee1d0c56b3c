/* EFLAGS.TF: a program that single-steps itself, compared with native.
 *   basic      popf sets TF: a SIGTRAP (TRAP_TRACE, si_addr = rip = the
 *              next instruction, trap number 1, TF in the frame) after each
 *              instruction from the one after popf on; none right after
 *              syscall (the kernel returns to the next instruction, which
 *              traps); pushf shows TF; r11 after syscall has TF; a popf
 *              clearing TF still traps after itself
 *   loop       stepping through calls, returns, indirect calls and jumps
 *              and a counted loop: the number of traps and the sequence of
 *              trapping offsets (as a checksum)
 *   sigreturn  a SIGUSR1 handler sets TF in the interrupted context; the
 *              SIGTRAP handler stops after 50 traps by clearing it
 *   nested     a signal raised while stepping: its handler is not stepped
 *              (TF clear on entry), stepping resumes after its sigreturn
 *   movss      `mov ss` holds the trap off for one instruction: no trap
 *              after it, then the next instruction's own (also when that
 *              one is a syscall, which reports none)
 *   default    TF set without a SIGTRAP handler: death by SIGTRAP
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

extern char b_start[], l_start[], l_end[], m_start[];
static volatile int n, limit = 1 << 30;
static uintptr_t base;
static uintptr_t addrs[32];
static int codes[32];
static long rips[32], trapno[32];
static int tfs[32];
static uint64_t sum;
static volatile int usr1_traps_inside = -1;

static void on_trap(int s, siginfo_t *si, void *u_) {
    ucontext_t *u = u_;
    uintptr_t rip = u->uc_mcontext.gregs[REG_RIP];
    if (n < 32) {
        addrs[n] = (uintptr_t)si->si_addr - base;
        codes[n] = si->si_code;
        rips[n] = rip - base;
        tfs[n] = (u->uc_mcontext.gregs[REG_EFL] >> 8) & 1;
        trapno[n] = u->uc_mcontext.gregs[REG_TRAPNO];
    }
    sum = sum * 31 + (rip - base);
    if (++n >= limit)
        u->uc_mcontext.gregs[REG_EFL] &= ~0x100;
}

static void handler(int sig, void (*f)(int, siginfo_t *, void *)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = f;
    sa.sa_flags = SA_SIGINFO;
    sigaction(sig, &sa, 0);
}

static void dump(const char *what) {
    printf("%s: %d traps, checksum %llu\n", what, n, (unsigned long long)sum);
    for (int i = 0; i < n && i < 32; i++)
        printf("  code %d addr %+ld rip %+ld TF %d trapno %ld\n", codes[i], (long)addrs[i], rips[i], tfs[i], trapno[i]);
}

static int basic(void) {
    uint64_t seen, r11;
    base = (uintptr_t)b_start;
    __asm__ volatile("b_start:\n\t"
                     "pushfq\n\t orq $0x100, (%%rsp)\n\t popfq\n\t"
                     "nop\n\t"
                     "pushfq\n\t pop %0\n\t"
                     "mov $39, %%eax\n\t syscall\n\t"
                     "mov %%r11, %1\n\t"
                     "pushfq\n\t andq $-0x101, (%%rsp)\n\t popfq\n\t"
                     "nop\n\t"
                     : "=r"(seen), "=r"(r11)
                     :
                     : "rax", "rcx", "r11", "memory", "cc");
    dump("basic");
    printf("pushf saw TF %d, r11 after syscall has TF %d\n", (int)(seen >> 8) & 1, (int)(r11 >> 8) & 1);
    return 0;
}

static long leaf(long x) { return x * 3 + 1; }
static long (*volatile fp)(long) = leaf;

static int loop(void) {
    base = (uintptr_t)l_start;
    long acc = 0;
    __asm__ volatile("l_start:\n\t"
                     "pushfq\n\t orq $0x100, (%%rsp)\n\t popfq\n\t"
                     "mov $5, %%ecx\n\t"
                     "1: add %%rcx, %0\n\t"
                     "lea 2f(%%rip), %%rdx\n\t"
                     "jmp *%%rdx\n\t"
                     "2: loop 1b\n\t"
                     "call 3f\n\t"
                     "jmp 4f\n\t"
                     "3: add $100, %0\n\t ret\n\t"
                     "4: pushfq\n\t andq $-0x101, (%%rsp)\n\t popfq\n\t"
                     "l_end:\n\t"
                     : "+r"(acc)
                     :
                     : "rcx", "rdx", "memory", "cc");
    dump("loop");
    printf("acc %ld\n", acc);
    return 0;
}

static void on_usr1_set_tf(int s, siginfo_t *si, void *u_) {
    ucontext_t *u = u_;
    u->uc_mcontext.gregs[REG_EFL] |= 0x100;
}

static long work(long k) {
    long a = 0;
    for (long i = 0; i < k; i++)
        a += fp(i) ^ i;
    return a;
}

static int sigret(void) {
    handler(SIGUSR1, on_usr1_set_tf);
    limit = 50;
    base = (uintptr_t)work;
    raise(SIGUSR1);
    long r = work(1000);
    printf("sigreturn: %d traps (stopped at 50), result %ld\n", n, r);
    return 0;
}

static void on_usr1_count(int s) { usr1_traps_inside = n; }

static int nested(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1_count;
    sigaction(SIGUSR1, &sa, 0);
    base = (uintptr_t)b_start;
    int before;
    __asm__ volatile("pushfq\n\t orq $0x100, (%%rsp)\n\t popfq\n\t"
                     "nop\n\t nop\n\t"
                     ::: "memory", "cc");
    before = n;
    kill(getpid(), SIGUSR1);
    int during = usr1_traps_inside;
    __asm__ volatile("pushfq\n\t andq $-0x101, (%%rsp)\n\t popfq\n\t" ::: "memory", "cc");
    printf("nested: handler saw no new traps %d, stepping went on after it %d\n", during == usr1_traps_inside && during >= before,
           n > during);
    return 0;
}

static int movss(void) {
    base = (uintptr_t)m_start;
    __asm__ volatile("m_start:\n\t"
                     "pushfq\n\t orq $0x100, (%%rsp)\n\t popfq\n\t"
                     "mov %%ss, %%eax\n\t mov %%eax, %%ss\n\t nop\n\t nop\n\t"
                     "mov %%ss, %%ecx\n\t mov $39, %%eax\n\t mov %%ecx, %%ss\n\t syscall\n\t nop\n\t"
                     "pushfq\n\t andq $-0x101, (%%rsp)\n\t popfq\n\t"
                     :
                     :
                     : "rax", "rcx", "r11", "memory", "cc");
    dump("movss");
    return 0;
}

static int dflt(void) {
    printf("setting TF without a handler\n");
    fflush(stdout);
    __asm__ volatile("pushfq\n\t orq $0x100, (%%rsp)\n\t popfq\n\t nop\n\t" ::: "memory", "cc");
    printf("not reached\n");
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, 0, _IOFBF, 1 << 16);
    const char *w = argc > 1 ? argv[1] : "";
    if (!strcmp(w, "default"))
        return dflt();
    handler(SIGTRAP, on_trap);
    if (!strcmp(w, "basic"))
        return basic();
    if (!strcmp(w, "loop"))
        return loop();
    if (!strcmp(w, "sigreturn"))
        return sigret();
    if (!strcmp(w, "nested"))
        return nested();
    if (!strcmp(w, "movss"))
        return movss();
    fprintf(stderr, "usage: st_step basic|loop|sigreturn|nested|movss|default\n");
    return 2;
}
