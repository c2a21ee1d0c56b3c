/* SIGSYS as the kernel handles it (run natively and under bt-run, outputs
 * compared). The program installs its own seccomp filter, which traps
 * getppid with SECCOMP_RET_TRAP and data 0x42 and allows everything else:
 *   handled   a handler for SIGSYS sees si_code SYS_SECCOMP, the call's
 *             number, arch and data, and a call address and rip just after
 *             the program's own `syscall`; the value it puts in rax is what
 *             the call returns
 *   blocked   the program blocks SIGSYS (and has a handler) and then calls
 *             getppid: the kernel forces the signal, which takes its default
 *             action: death by SIGSYS
 *   ignored   the same with SIGSYS ignored
 *   sent      a SIGSYS sent with raise() while blocked stays pending (it is
 *             no trap) until the program unblocks it, then its handler runs
 *             with si_code SI_TKILL
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

/* <linux/filter.h> and <linux/seccomp.h>, which not every libc's headers
 * carry, as far as this program needs them. */
struct filter_insn {
    uint16_t code;
    uint8_t jt, jf;
    uint32_t k;
};
struct filter_prog {
    unsigned short len;
    struct filter_insn *insns;
};
#define LD_W_ABS 0x20
#define JEQ_K 0x15
#define RET_K 0x06
#define RET_TRAP 0x00030000u
#define RET_ALLOW 0x7fff0000u
#define ARCH_X86_64 0xc000003eu
#define MODE_FILTER 2
#define SYS_SECCOMP_CODE 1

static void install_filter(void) {
    struct filter_insn insns[] = {
        {LD_W_ABS, 0, 0, 4}, /* seccomp_data.arch */
        {JEQ_K, 0, 3, ARCH_X86_64},
        {LD_W_ABS, 0, 0, 0}, /* seccomp_data.nr */
        {JEQ_K, 0, 1, SYS_getppid},
        {RET_K, 0, 0, RET_TRAP | 0x42},
        {RET_K, 0, 0, RET_ALLOW},
    };
    struct filter_prog prog = {sizeof insns / sizeof insns[0], insns};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, MODE_FILTER, &prog)) {
        perror("seccomp");
        exit(2);
    }
}

static volatile int got_code = -1, got_nr = -1, got_errno = -1, got_at_label = -1, got_rip_at_label = -1;
static volatile unsigned got_arch;
static volatile int handler_ran;
extern char after_syscall[];

static void on_sys(int sig, siginfo_t *si, void *uc_) {
    ucontext_t *uc = uc_;
    handler_ran++;
    got_code = si->si_code;
    got_nr = si->si_syscall;
    got_arch = si->si_arch;
    got_errno = si->si_errno;
    got_at_label = si->si_call_addr == (void *)after_syscall;
    got_rip_at_label = uc->uc_mcontext.gregs[REG_RIP] == (greg_t)(uintptr_t)after_syscall;
    if (si->si_code == SYS_SECCOMP_CODE)
        uc->uc_mcontext.gregs[REG_RAX] = 1234;
}

__attribute__((noinline)) static long trapped_getppid(void) {
    long ret;
    __asm__ volatile("syscall\n"
                     ".globl after_syscall\n"
                     "after_syscall:"
                     : "=a"(ret)
                     : "a"((long)SYS_getppid)
                     : "rcx", "r11", "memory");
    return ret;
}

static void set(int sig, void (*h)(int, siginfo_t *, void *)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = h;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, 0)) {
        perror("sigaction");
        exit(2);
    }
}

static void block_sigsys(int how) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGSYS);
    sigprocmask(how, &s, 0);
}

static int handled(void) {
    set(SIGSYS, on_sys);
    install_filter();
    long r = trapped_getppid();
    printf("handler ran %d: si_code %d syscall %d arch %#x data %#x call_addr after the syscall %d rip there %d\n",
           handler_ran, got_code, got_nr, got_arch, got_errno, got_at_label, got_rip_at_label);
    printf("getppid returned %ld\n", r);
    /* Everything else still goes through. */
    printf("getpid matches %d\n", getpid() == (pid_t)syscall(SYS_getpid));
    return 0;
}

static int blocked(int ignore) {
    if (ignore)
        signal(SIGSYS, SIG_IGN);
    else
        set(SIGSYS, on_sys);
    block_sigsys(SIG_BLOCK);
    install_filter();
    printf("calling getppid with SIGSYS %s\n", ignore ? "ignored" : "blocked");
    long r = trapped_getppid();
    printf("survived: getppid %ld, handler ran %d\n", r, handler_ran);
    return 0;
}

static int sent(void) {
    set(SIGSYS, on_sys);
    block_sigsys(SIG_BLOCK);
    raise(SIGSYS);
    sigset_t p;
    sigpending(&p);
    printf("pending while blocked %d, handler ran %d\n", sigismember(&p, SIGSYS), handler_ran);
    block_sigsys(SIG_UNBLOCK);
    printf("after unblocking: handler ran %d, si_code %d (SI_TKILL %d)\n", handler_ran, got_code, SI_TKILL);
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, 0, _IOLBF, 0);
    const char *w = argc > 1 ? argv[1] : "";
    if (!strcmp(w, "handled"))
        return handled();
    if (!strcmp(w, "blocked"))
        return blocked(0);
    if (!strcmp(w, "ignored"))
        return blocked(1);
    if (!strcmp(w, "sent"))
        return sent();
    fprintf(stderr, "usage: st_sigsys handled|blocked|ignored|sent\n");
    return 2;
}
