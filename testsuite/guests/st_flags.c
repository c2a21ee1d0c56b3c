/* sigaction flags and siginfo contents.
 *  - SA_NODEFER: the handler re-raises its own signal and nests; without
 *    it the raise stays pending until the handler returns;
 *  - SA_RESETHAND: the first delivery resets the action (seen by sigaction),
 *    the signal is blocked inside that handler, the second delivery takes the
 *    default action (a child dies of it);
 *  - SA_SIGINFO fields: kill (SI_USER), raise/tgkill (SI_TKILL), sigqueue
 *    (SI_QUEUE, si_value, int and pointer), setitimer (SI_KERNEL), POSIX
 *    timer (SI_TIMER, si_value), SIGPIPE from a write to a closed pipe, SIGBUS
 *    from a truncated file mapping (BUS_ADRERR, si_addr), SIGSEGV
 *    (SEGV_MAPERR / SEGV_ACCERR, si_addr);
 *  - the mask inside a handler: own signal + sa_mask, restored afterwards;
 *  - default actions that ignore (SIGWINCH, SIGURG, SIGCHLD, SIGCONT). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void say(const char *s) {
    if (write(STDOUT_FILENO, s, strlen(s)) < 0) _exit(99);
}

static void install(int sig, void (*fn)(int, siginfo_t *, void *), int flags, int also_block) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = fn;
    sa.sa_flags = SA_SIGINFO | flags;
    sigemptyset(&sa.sa_mask);
    if (also_block) sigaddset(&sa.sa_mask, also_block);
    if (sigaction(sig, &sa, NULL)) perror("sigaction");
}

/* ---- nesting ---- */
static volatile int depth, max_depth, raises_left;
static void nest_handler(int sig, siginfo_t *si, void *uc) {
    (void)si;
    (void)uc;
    char buf[64];
    int d = ++depth;
    if (d > max_depth) max_depth = d;
    snprintf(buf, sizeof buf, "  enter %d\n", d);
    say(buf);
    if (raises_left > 0) {
        raises_left--;
        raise(sig);
    }
    snprintf(buf, sizeof buf, "  leave %d\n", d);
    say(buf);
    depth--;
}

/* ---- mask in handler ---- */
static volatile int in_mask_usr1, in_mask_usr2, in_mask_hup;
static void mask_handler(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)si;
    (void)uc;
    sigset_t cur;
    sigprocmask(SIG_BLOCK, NULL, &cur);
    in_mask_usr1 = sigismember(&cur, SIGUSR1);
    in_mask_usr2 = sigismember(&cur, SIGUSR2);
    in_mask_hup = sigismember(&cur, SIGHUP);
}

/* ---- siginfo ---- */
static siginfo_t last;
static volatile int last_count;
static void info_handler(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    last = *si;
    last_count++;
}

static sigjmp_buf jb;
static void jump_handler(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    last = *si;
    siglongjmp(jb, 1);
}

static const char *code_name(int sig, int code) {
    static char buf[32];
    switch (code) {
    case SI_USER: return "SI_USER";
    case SI_QUEUE: return "SI_QUEUE";
    case SI_TKILL: return "SI_TKILL";
    case SI_KERNEL: return "SI_KERNEL";
    case SI_TIMER: return "SI_TIMER";
    }
    if (sig == SIGSEGV && code == SEGV_MAPERR) return "SEGV_MAPERR";
    if (sig == SIGSEGV && code == SEGV_ACCERR) return "SEGV_ACCERR";
    if (sig == SIGBUS && code == BUS_ADRERR) return "BUS_ADRERR";
    snprintf(buf, sizeof buf, "code %d", code);
    return buf;
}

static void show(const char *what) {
    printf("%-22s si_signo %2d si_errno %d %-12s si_pid is me %d si_uid is me %d\n", what, last.si_signo,
           last.si_errno, code_name(last.si_signo, last.si_code), last.si_pid == getpid(), last.si_uid == getuid());
}

static void msleep(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);

    printf("SA_NODEFER, handler raises its own signal twice:\n");
    install(SIGUSR1, nest_handler, SA_NODEFER, 0);
    raises_left = 2;
    raise(SIGUSR1);
    printf(" deepest nesting %d\n", max_depth);
    printf("without SA_NODEFER:\n");
    install(SIGUSR2, nest_handler, 0, 0);
    max_depth = 0;
    raises_left = 2;
    raise(SIGUSR2);
    printf(" deepest nesting %d\n", max_depth);

    printf("mask inside a handler with sa_mask {SIGHUP}:\n");
    install(SIGUSR1, mask_handler, 0, SIGHUP);
    raise(SIGUSR1);
    sigset_t cur;
    sigprocmask(SIG_BLOCK, NULL, &cur);
    printf(" own signal blocked %d, SIGHUP blocked %d, SIGUSR2 blocked %d; after: SIGUSR1 %d SIGHUP %d\n", in_mask_usr1,
           in_mask_hup, in_mask_usr2, sigismember(&cur, SIGUSR1), sigismember(&cur, SIGHUP));
    install(SIGUSR1, mask_handler, SA_NODEFER, SIGHUP);
    raise(SIGUSR1);
    printf(" with SA_NODEFER: own signal blocked %d, SIGHUP blocked %d\n", in_mask_usr1, in_mask_hup);

    printf("SA_RESETHAND:\n");
    install(SIGUSR1, mask_handler, SA_RESETHAND, 0);
    raise(SIGUSR1);
    struct sigaction q;
    sigaction(SIGUSR1, NULL, &q);
    printf(" first delivery ran the handler, own signal blocked in it %d; action now SIG_DFL %d, SA_SIGINFO kept %d\n",
           in_mask_usr1, q.sa_handler == SIG_DFL, (q.sa_flags & SA_SIGINFO) != 0);
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) {
        install(SIGUSR2, mask_handler, SA_RESETHAND, 0);
        raise(SIGUSR2);
        say(" child: handled the first SIGUSR2\n");
        raise(SIGUSR2);
        say(" child: survived the second SIGUSR2?\n");
        _exit(0);
    }
    int st;
    waitpid(p, &st, 0);
    printf(" child killed by signal %d: %d\n", SIGUSR2, WIFSIGNALED(st) && WTERMSIG(st) == SIGUSR2);

    printf("siginfo:\n");
    install(SIGUSR1, info_handler, 0, 0);
    kill(getpid(), SIGUSR1);
    show(" kill");
    syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), SIGUSR1);
    show(" tgkill");
    union sigval v = {.sival_int = 1234};
    sigqueue(getpid(), SIGUSR1, v);
    show(" sigqueue int");
    printf("  si_value %d\n", last.si_value.sival_int);
    v.sival_ptr = &last;
    sigqueue(getpid(), SIGUSR1, v);
    show(" sigqueue ptr");
    printf("  si_value pointer right %d\n", last.si_value.sival_ptr == (void *)&last);

    install(SIGALRM, info_handler, 0, 0);
    last_count = 0;
    struct itimerval it = {{0, 0}, {0, 10000}};
    setitimer(ITIMER_REAL, &it, NULL);
    while (!last_count) msleep(1);
    show(" setitimer");

    timer_t tid;
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_SIGNAL;
    sev.sigev_signo = SIGRTMIN + 3;
    sev.sigev_value.sival_int = 99;
    install(SIGRTMIN + 3, info_handler, 0, 0);
    if (timer_create(CLOCK_MONOTONIC, &sev, &tid) == 0) {
        struct itimerspec its = {{0, 0}, {0, 10 * 1000000}};
        last_count = 0;
        timer_settime(tid, 0, &its, NULL);
        while (!last_count) msleep(1);
        printf("%-22s si_signo is SIGRTMIN+3 %d %-12s si_value %d si_overrun %d\n", " timer_create", last.si_signo == SIGRTMIN + 3,
               code_name(last.si_signo, last.si_code), last.si_value.sival_int, last.si_overrun);
        timer_delete(tid);
    } else {
        printf(" timer_create failed: %s\n", strerror(errno));
    }

    install(SIGPIPE, info_handler, 0, 0);
    int pfd[2];
    if (pipe(pfd)) return 1;
    close(pfd[0]);
    errno = 0;
    ssize_t w = write(pfd[1], "x", 1);
    int e = errno;
    show(" write to closed pipe");
    printf("  write returned %zd errno %s\n", w, strerror(e));
    close(pfd[1]);

    install(SIGBUS, jump_handler, 0, 0);
    char path[] = "/tmp/st_flags.XXXXXX";
    int fd = mkstemp(path);
    if (fd >= 0) {
        unlink(path);
        if (ftruncate(fd, 100) == 0) {
            char *m = mmap(NULL, 8192, PROT_READ, MAP_SHARED, fd, 0);
            if (m != MAP_FAILED) {
                if (sigsetjmp(jb, 1) == 0) {
                    (void)*(volatile char *)(m + 4096 + 5);
                    printf(" SIGBUS did not happen\n");
                } else {
                    show(" read past EOF");
                    printf("  si_addr exact %d\n", last.si_addr == (void *)(m + 4096 + 5));
                }
                munmap(m, 8192);
            }
        }
        close(fd);
    }

    install(SIGSEGV, jump_handler, 0, 0);
    char *page = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (sigsetjmp(jb, 1) == 0) *(volatile char *)(page + 123) = 1;
    show(" write to read-only");
    printf("  si_addr exact %d\n", last.si_addr == (void *)(page + 123));
    munmap(page, 4096);
    if (sigsetjmp(jb, 1) == 0) (void)*(volatile char *)(page + 7);
    show(" read of unmapped");
    printf("  si_addr exact %d\n", last.si_addr == (void *)(page + 7));

    printf("default actions that ignore:\n");
    int ignored[] = {SIGWINCH, SIGURG, SIGCHLD, SIGCONT};
    for (unsigned i = 0; i < sizeof ignored / sizeof ignored[0]; i++) {
        signal(ignored[i], SIG_DFL);
        raise(ignored[i]);
        kill(getpid(), ignored[i]);
        printf(" signal %d: still running\n", ignored[i]);
    }
    return 0;
}
