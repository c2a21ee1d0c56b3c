/* Signal delivery: raise, masks, pending, synchronous faults with exact
 * si_addr/si_code/RIP, restart after fixing a fault, red zone preservation,
 * sigaltstack, SA_RESETHAND and an asynchronous timer in a busy loop. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <ucontext.h>
#include <unistd.h>

/* Assembly probes with labels at the exact instructions of interest. */
__asm__(".text\n"
        ".globl fault_load\n"
        "fault_load:\n"
        "  movl $0x1000, %eax\n"
        ".globl fault_insn\n"
        "fault_insn:\n"
        "  movl (%rax), %eax\n"
        "  ret\n"
        ".globl redzone_probe\n"
        "redzone_probe:\n"
        "  movq $0x1111, -8(%rsp)\n"
        "  movq $0x2222, -64(%rsp)\n"
        "  movq $0x3333, -128(%rsp)\n"
        "  int3\n"
        ".globl after_int3\n"
        "after_int3:\n"
        "  movq -8(%rsp), %rax\n"
        "  addq -64(%rsp), %rax\n"
        "  addq -128(%rsp), %rax\n"
        "  ret\n");
int fault_load(void);
long redzone_probe(void);
extern char fault_insn[], after_int3[];

static sigjmp_buf jb;
static volatile int last_sig, last_code, usr1_count, usr2_count, in_altstack, mask_ok, saved_mask_has_hup;
static volatile uintptr_t last_addr, last_rip;
static volatile sig_atomic_t alarm_flag;
static char *ro_page;
static char altstack[65536];

static void fault_handler(int sig, siginfo_t *si, void *ucv) {
    ucontext_t *uc = ucv;
    last_sig = sig;
    last_code = si->si_code;
    last_addr = (uintptr_t)si->si_addr;
    last_rip = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
    siglongjmp(jb, 1);
}

static void fixing_handler(int sig, siginfo_t *si, void *ucv) {
    (void)ucv;
    last_sig = sig;
    last_addr = (uintptr_t)si->si_addr;
    mprotect(ro_page, 4096, PROT_READ | PROT_WRITE); /* then return: the store is retried */
}

static void trap_handler(int sig, siginfo_t *si, void *ucv) {
    ucontext_t *uc = ucv;
    volatile char scratch[4096]; /* use plenty of stack */
    memset((char *)scratch, 0xcc, sizeof scratch);
    last_sig = sig;
    last_code = si->si_code;
    last_rip = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
}

static void usr_handler(int sig, siginfo_t *si, void *ucv) {
    ucontext_t *uc = ucv;
    sigset_t cur;
    int local;
    sigprocmask(SIG_BLOCK, NULL, &cur);
    if (sig == SIGUSR1) {
        usr1_count++;
        last_code = si->si_code;
        mask_ok = sigismember(&cur, SIGUSR1) && sigismember(&cur, SIGUSR2);
        saved_mask_has_hup = sigismember(&uc->uc_sigmask, SIGHUP);
        in_altstack = (char *)&local >= altstack && (char *)&local < altstack + sizeof altstack;
    } else {
        usr2_count++;
    }
}

static void alarm_handler(int sig) { (void)sig; alarm_flag = 1; }

static void install(int sig, void (*fn)(int, siginfo_t *, void *), int flags, int block) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = fn;
    sa.sa_flags = SA_SIGINFO | flags;
    sigemptyset(&sa.sa_mask);
    if (block) sigaddset(&sa.sa_mask, block);
    if (sigaction(sig, &sa, NULL)) perror("sigaction");
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* 1. raise with a handler, handler mask, saved mask, alternate stack */
    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0};
    sigaltstack(&ss, NULL);
    install(SIGUSR1, usr_handler, SA_ONSTACK, SIGUSR2);
    install(SIGUSR2, usr_handler, 0, 0);
    sigset_t hup, old;
    sigemptyset(&hup);
    sigaddset(&hup, SIGHUP);
    sigprocmask(SIG_BLOCK, &hup, &old);
    raise(SIGUSR1);
    sigprocmask(SIG_SETMASK, &old, NULL);
    printf("SIGUSR1: count %d si_code %d mask_ok %d saved_mask_has_hup %d on_altstack %d\n", usr1_count, last_code,
           mask_ok, saved_mask_has_hup, in_altstack);

    /* 2. blocked signal stays pending, runs on unblock */
    sigset_t s2, pend;
    sigemptyset(&s2);
    sigaddset(&s2, SIGUSR2);
    sigprocmask(SIG_BLOCK, &s2, NULL);
    raise(SIGUSR2);
    sigpending(&pend);
    printf("SIGUSR2 pending while blocked: %d, delivered: %d\n", sigismember(&pend, SIGUSR2), usr2_count);
    sigprocmask(SIG_UNBLOCK, &s2, NULL);
    printf("SIGUSR2 delivered after unblock: %d\n", usr2_count);

    /* 3. faults: exact si_addr, si_code and guest RIP */
    install(SIGSEGV, fault_handler, 0, 0);
    install(SIGFPE, fault_handler, 0, 0);
    install(SIGILL, fault_handler, 0, 0);
    install(SIGBUS, fault_handler, 0, 0);
    if (sigsetjmp(jb, 1) == 0) fault_load();
    printf("load 0x1000: sig %d code %d addr %#lx rip_exact %d\n", last_sig, last_code, (unsigned long)last_addr,
           last_rip == (uintptr_t)fault_insn);
    ro_page = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (sigsetjmp(jb, 1) == 0) *(volatile char *)(ro_page + 8) = 1;
    printf("store to read-only page: sig %d code %d addr_exact %d\n", last_sig, last_code,
           last_addr == (uintptr_t)(ro_page + 8));
    if (sigsetjmp(jb, 1) == 0) {
        volatile int a = 1, b = 0;
        a = a / b;
    }
    printf("divide by zero: sig %d code %d\n", last_sig, last_code);
    if (sigsetjmp(jb, 1) == 0) __builtin_trap();
    printf("ud2: sig %d code %d\n", last_sig, last_code);

    /* 4. handler fixes the fault and returns: the faulting store is re-executed */
    install(SIGSEGV, fixing_handler, 0, 0);
    last_sig = 0;
    __asm__ volatile("" ::: "memory");
    *(volatile char *)(ro_page + 100) = 77;
    __asm__ volatile("" ::: "memory");
    printf("fixed fault: sig %d addr_exact %d value %d\n", last_sig, last_addr == (uintptr_t)(ro_page + 100),
           *(volatile char *)(ro_page + 100));

    /* 5. int3: handler returns after the trap; the red zone must survive the frame */
    install(SIGTRAP, trap_handler, 0, 0);
    long rz = redzone_probe();
    printf("int3: sig %d code %d rip_after %d red zone sum %#lx\n", last_sig, last_code,
           last_rip == (uintptr_t)after_int3, rz);

    /* 6. SA_RESETHAND */
    install(SIGUSR2, usr_handler, SA_RESETHAND, 0);
    raise(SIGUSR2);
    struct sigaction q;
    sigaction(SIGUSR2, NULL, &q);
    printf("SA_RESETHAND: count %d, now default %d\n", usr2_count, q.sa_handler == SIG_DFL);

    /* 7. asynchronous SIGALRM interrupting a busy loop with no system calls */
    signal(SIGALRM, alarm_handler);
    struct itimerval it = {{0, 0}, {0, 20000}};
    setitimer(ITIMER_REAL, &it, NULL);
    unsigned long spins = 0;
    while (!alarm_flag) spins++;
    printf("itimer delivered into busy loop: %d (spun %s)\n", (int)alarm_flag, spins > 0 ? "yes" : "no");

    /* 8. ignored signal */
    signal(SIGUSR1, SIG_IGN);
    raise(SIGUSR1);
    printf("ignored SIGUSR1: still here\n");
    return 0;
}
