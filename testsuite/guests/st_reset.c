/* Handlers set and reset to the default (run natively and under bt-run,
 * outputs and status compared). bt-run keeps its own host handler for a
 * signal whose handler the program reset to a default that terminates, so
 * each mode checks that the default still acts as the kernel's:
 *   raise     set a SIGUSR1 handler, run it, reset it, raise: death by SIGUSR1
 *   alarm     the same for SIGALRM arriving during a blocking read
 *   pipe      SIGPIPE reset, then a write to a pipe without readers
 *   pending   reset SIGUSR2, block it, raise it: pending; set a handler
 *             again and unblock: the handler runs; then reset, block and
 *             raise again and set it ignored: the pending one is discarded
 *   ignored   a default that ignores (SIGWINCH), reset from a handler, does
 *             not interrupt a blocking read
 *   loop      10,000 set/reset pairs (perl's `local $SIG{ALRM}`), then the
 *             handler once more
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static volatile int ran;
static void on_sig(int sig) { ran++; }

static void set(int sig, void (*h)(int)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = h;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGTERM);
    if (sigaction(sig, &sa, 0)) {
        perror("sigaction");
        exit(2);
    }
}

static void block(int how, int sig) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sig);
    sigprocmask(how, &s, 0);
}

static int pending(int sig) {
    sigset_t p;
    sigpending(&p);
    return sigismember(&p, sig);
}

int main(int argc, char **argv) {
    setvbuf(stdout, 0, _IOLBF, 0);
    const char *w = argc > 1 ? argv[1] : "";
    if (!strcmp(w, "raise")) {
        set(SIGUSR1, on_sig);
        raise(SIGUSR1);
        printf("handler ran %d\n", ran);
        set(SIGUSR1, SIG_DFL);
        raise(SIGUSR1);
        printf("survived SIGUSR1\n");
        return 0;
    }
    if (!strcmp(w, "alarm")) {
        set(SIGALRM, on_sig);
        set(SIGALRM, SIG_DFL);
        int p[2];
        if (pipe(p))
            return 2;
        struct itimerval t = {{0, 0}, {0, 20000}};
        setitimer(ITIMER_REAL, &t, 0);
        char c;
        ssize_t n = read(p[0], &c, 1);
        printf("survived SIGALRM: read %zd\n", n);
        return 0;
    }
    if (!strcmp(w, "pipe")) {
        set(SIGPIPE, on_sig);
        set(SIGPIPE, SIG_DFL);
        int p[2];
        if (pipe(p))
            return 2;
        close(p[0]);
        ssize_t n = write(p[1], "x", 1);
        printf("survived SIGPIPE: write %zd errno %d\n", n, errno);
        return 0;
    }
    if (!strcmp(w, "pending")) {
        set(SIGUSR2, on_sig);
        set(SIGUSR2, SIG_DFL);
        block(SIG_BLOCK, SIGUSR2);
        raise(SIGUSR2);
        printf("pending while blocked %d\n", pending(SIGUSR2));
        set(SIGUSR2, on_sig);
        block(SIG_UNBLOCK, SIGUSR2);
        printf("handler ran %d after unblocking\n", ran);
        set(SIGUSR2, SIG_DFL);
        block(SIG_BLOCK, SIGUSR2);
        raise(SIGUSR2);
        printf("pending again %d\n", pending(SIGUSR2));
        signal(SIGUSR2, SIG_IGN);
        printf("pending once ignored %d\n", pending(SIGUSR2));
        set(SIGUSR2, SIG_DFL);
        block(SIG_UNBLOCK, SIGUSR2);
        printf("survived, handler ran %d\n", ran);
        return 0;
    }
    if (!strcmp(w, "ignored")) {
        set(SIGWINCH, on_sig);
        set(SIGWINCH, SIG_DFL);
        int p[2];
        if (pipe(p))
            return 2;
        pid_t parent = getpid();
        if (fork() == 0) {
            usleep(20000);
            kill(parent, SIGWINCH);
            usleep(20000);
            if (write(p[1], "y", 1) != 1)
                _exit(1);
            _exit(0);
        }
        char c = 0;
        ssize_t n = read(p[0], &c, 1);
        printf("read %zd '%c' (not interrupted), handler ran %d\n", n, c, ran);
        return 0;
    }
    if (!strcmp(w, "loop")) {
        for (int i = 0; i < 10000; i++) {
            set(SIGALRM, on_sig);
            set(SIGALRM, SIG_DFL);
        }
        set(SIGALRM, on_sig);
        raise(SIGALRM);
        printf("handler ran %d\n", ran);
        return 0;
    }
    fprintf(stderr, "usage: st_reset raise|alarm|pipe|pending|ignored|loop\n");
    return 2;
}
