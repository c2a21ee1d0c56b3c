/* Signals at the edges, as the kernel handles them (run natively and under
 * bt-run, outputs compared):
 *   frame      the extended-state part of a signal frame: fx_sw_bytes
 *              (magic, extended size, xfeatures, xstate size), the xstate
 *              header's x87/SSE bits, where the fpstate and the ucontext sit
 *              on a known alternate stack, AT_MINSIGSTKSZ
 *   unmapped   a signal whose alternate stack's top page is inaccessible:
 *              the frame cannot be written, the signal is lost and the
 *              kernel forces SIGSEGV (SI_KERNEL), which reaches the guest's
 *              SIGSEGV handler on the ordinary stack
 *   small      a signal on an alternate stack of exactly MINSIGSTKSZ bytes:
 *              on hosts whose extended state is larger (AVX-512, AMX) the
 *              frame does not fit and SIGSEGV is forced; on others it fits
 *   nested     a handler running on the alternate stack uses up nearly all
 *              of it, then raises another SA_ONSTACK signal: the frame
 *              would overflow the stack, SIGSEGV is forced, and (since the
 *              thread is on the alternate stack) that frame does not fit
 *              either: death by SIGSEGV
 *   ignored    as `unmapped`, with SIGSEGV ignored: the kernel resets it to
 *              the default and the process dies by SIGSEGV
 *   crossing   an instruction that starts on an executable page and runs
 *              into a non-executable one: SIGSEGV, with the si_code, the
 *              si_addr and the rip the kernel reports
 *   eintr      a handler interrupts nanosleep (which returns EINTR whatever
 *              SA_RESTART) and raises a signal its mask blocks; that one is
 *              delivered at the handler's rt_sigreturn, whose restored rax
 *              is -EINTR. rt_sigreturn is no call to restart: nanosleep
 *              returns EINTR, as natively, and the program goes on
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <errno.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#ifndef AT_MINSIGSTKSZ
#define AT_MINSIGSTKSZ 51
#endif

static sigjmp_buf jb;
static volatile int usr1_ran, segv_code = -1;
static volatile uintptr_t segv_addr, segv_rip;
static char *alt;
static size_t alt_size;

static void on_segv(int sig, siginfo_t *si, void *uc_) {
    ucontext_t *uc = uc_;
    segv_code = si->si_code;
    segv_addr = (uintptr_t)si->si_addr;
    segv_rip = uc->uc_mcontext.gregs[REG_RIP];
    siglongjmp(jb, 1);
}

static void on_usr1(int sig) { usr1_ran = 1; }

static void set(int sig, void (*h)(int, siginfo_t *, void *), int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = h;
    sa.sa_flags = SA_SIGINFO | flags;
    sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, 0)) {
        perror("sigaction");
        exit(2);
    }
}

static void set_alt(void *sp, size_t size) {
    stack_t ss = {.ss_sp = sp, .ss_size = size, .ss_flags = 0};
    if (sigaltstack(&ss, 0)) {
        perror("sigaltstack");
        exit(2);
    }
}

static void frame_handler(int sig, siginfo_t *si, void *uc_) {
    ucontext_t *uc = uc_;
    unsigned char *fp = (unsigned char *)uc->uc_mcontext.fpregs;
    uint32_t magic1, ext, xsize;
    uint64_t xfeatures, bv;
    memcpy(&magic1, fp + 464, 4);
    memcpy(&ext, fp + 468, 4);
    memcpy(&xfeatures, fp + 472, 8);
    memcpy(&xsize, fp + 480, 4);
    memcpy(&bv, fp + 512, 8);
    uint32_t magic2;
    memcpy(&magic2, fp + xsize, 4);
    printf("magic1 %#x extended_size %u xfeatures %#llx xstate_size %u magic2 %#x\n", magic1, ext,
           (unsigned long long)xfeatures, xsize, magic2);
    printf("xstate_bv x87/sse %llu\n", (unsigned long long)(bv & 3));
    printf("fpstate at top-%ld, ucontext at top-%ld, siginfo at top-%ld\n", (long)(alt + alt_size - (char *)fp),
           (long)(alt + alt_size - (char *)uc), (long)(alt + alt_size - (char *)si));
    printf("fpstate 64-byte aligned %d, fx_sw consistent %d\n", ((uintptr_t)fp & 63) == 0, ext == xsize + 4);
}

static int frame(void) {
    printf("AT_MINSIGSTKSZ nonzero %d\n", getauxval(AT_MINSIGSTKSZ) != 0);
    alt_size = 1 << 16;
    alt = aligned_alloc(4096, alt_size);
    set_alt(alt, alt_size);
    set(SIGUSR1, frame_handler, SA_ONSTACK);
    raise(SIGUSR1);
    return 0;
}

static void report(const char *what) {
    printf("%s: usr1 handler ran %d, SIGSEGV si_code %d si_addr %#lx\n", what, usr1_ran, segv_code,
           (unsigned long)segv_addr);
}

static int unmapped(int ignore) {
    long pg = sysconf(_SC_PAGESIZE);
    size_t size = 16 * pg;
    char *m = mmap(0, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED || mprotect(m + size - pg, pg, PROT_NONE)) {
        perror("mmap");
        return 2;
    }
    set_alt(m, size);
    struct sigaction sa = {.sa_handler = on_usr1, .sa_flags = SA_ONSTACK};
    sigaction(SIGUSR1, &sa, 0);
    if (ignore)
        signal(SIGSEGV, SIG_IGN);
    else
        set(SIGSEGV, on_segv, 0);
    fflush(stdout);
    if (sigsetjmp(jb, 1) == 0)
        raise(SIGUSR1);
    report("unmapped");
    return 0;
}

static int small(void) {
    alt_size = MINSIGSTKSZ;
    alt = aligned_alloc(4096, 4096);
    set_alt(alt, alt_size);
    struct sigaction sa = {.sa_handler = on_usr1, .sa_flags = SA_ONSTACK};
    sigaction(SIGUSR1, &sa, 0);
    set(SIGSEGV, on_segv, 0);
    if (sigsetjmp(jb, 1) == 0)
        raise(SIGUSR1);
    /* Which outcome depends on the host's extended state size; both runs
     * are on the same host. */
    report("small");
    return 0;
}

static void deep_handler(int sig) {
    /* Use up the alternate stack down to its last few hundred bytes (fewer
     * than any signal frame needs), then raise a signal by a raw call. */
    char here;
    size_t left = (size_t)(&here - alt);
    volatile char *pad = __builtin_alloca(left - 400);
    pad[0] = 1;
    static const char msg[] = "deep handler on the alternate stack\n";
    write(1, msg, sizeof msg - 1);
    kill(getpid(), SIGUSR2);
    write(1, "not reached\n", 12);
}

static int nested(void) {
    long pg = sysconf(_SC_PAGESIZE);
    alt_size = 16 * pg;
    char *m = mmap(0, alt_size + pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED || mprotect(m, pg, PROT_NONE)) /* guard below */
        return 2;
    alt = m + pg;
    set_alt(alt, alt_size);
    struct sigaction sa = {.sa_handler = deep_handler, .sa_flags = SA_ONSTACK};
    sigaction(SIGUSR1, &sa, 0);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR2, &sa, 0);
    set(SIGSEGV, on_segv, 0);
    raise(SIGUSR1);
    printf("not reached either\n");
    return 0;
}

static int crossing(void) {
    long pg = sysconf(_SC_PAGESIZE);
    unsigned char *m = mmap(0, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return 2;
    /* movabs rax, imm64 (10 bytes) starting 3 bytes before the boundary,
     * then ret on the second page. */
    unsigned char *at = m + pg - 3;
    static const unsigned char code[] = {0x48, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8, 0xc3};
    memcpy(at, code, sizeof code);
    if (mprotect(m, pg, PROT_READ | PROT_EXEC) || mprotect(m + pg, pg, PROT_READ)) {
        perror("mprotect");
        return 2;
    }
    set(SIGSEGV, on_segv, 0);
    if (sigsetjmp(jb, 1) == 0) {
        long (*f)(void) = (long (*)(void))at;
        printf("returned %#lx\n", f());
    }
    printf("crossing: si_code %d, si_addr = insn%+ld, rip = insn%+ld\n", segv_code, (long)(segv_addr - (uintptr_t)at),
           (long)(segv_rip - (uintptr_t)at));
    return 0;
}

static volatile int alrm_ran, usr2_ran;

static void on_alrm(int sig) {
    alrm_ran++;
    raise(SIGUSR2); /* blocked by this handler's mask: pending until its rt_sigreturn */
}

static void on_usr2(int sig) { usr2_ran++; }

static int eintr(void) {
    for (int round = 0; round < 3; round++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_alrm;
        sa.sa_flags = SA_RESTART;
        sigaddset(&sa.sa_mask, SIGUSR2);
        sigaction(SIGALRM, &sa, NULL);
        sa.sa_handler = on_usr2;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGUSR2, &sa, NULL);
        struct itimerval it = {{0, 0}, {0, 20000}};
        setitimer(ITIMER_REAL, &it, NULL);
        struct timespec ts = {5, 0};
        int r = nanosleep(&ts, &ts);
        int e = errno;
        printf("round %d: nanosleep %d (%s), SIGALRM handled %d, SIGUSR2 handled %d\n", round, r,
               r ? strerror(e) : "", alrm_ran, usr2_ran);
    }
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, 0, _IOLBF, 0);
    const char *w = argc > 1 ? argv[1] : "";
    if (!strcmp(w, "frame"))
        return frame();
    if (!strcmp(w, "unmapped"))
        return unmapped(0);
    if (!strcmp(w, "ignored"))
        return unmapped(1);
    if (!strcmp(w, "small"))
        return small();
    if (!strcmp(w, "nested"))
        return nested();
    if (!strcmp(w, "crossing"))
        return crossing();
    if (!strcmp(w, "eintr"))
        return eintr();
    fprintf(stderr, "usage: st_edges frame|unmapped|ignored|small|nested|crossing|eintr\n");
    return 2;
}
