/* Signals between a parent and its children:
 *  1. a SIGCHLD handler (SA_SIGINFO) reaps 10 children with waitpid(WNOHANG)
 *     while the parent waits in sigsuspend;
 *  2. SIGCHLD's default action is to ignore it;
 *  3. SIGCHLD set to SIG_IGN: children are reaped by the kernel (ECHILD);
 *  4. SIGSTOP / SIGCONT of a child seen with waitpid(WUNTRACED|WCONTINUED),
 *     a child stopping itself with SIGTSTP, a SIGCONT handler in the child;
 *  5. default actions seen from the parent: SIGTERM, SIGUSR1 and SIGKILL kill,
 *     SIGTERM blocked stays pending until the child unblocks it;
 *  6. SIGCHLD for a stopped child unless SA_NOCLDSTOP. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NCHILD 10

static volatile sig_atomic_t reaped, status_sum, handler_runs, info_bad, last_chld_code;
static pid_t children[NCHILD];

static int is_child(pid_t p) {
    for (int i = 0; i < NCHILD; i++)
        if (children[i] == p) return 1;
    return 0;
}

static void chld_handler(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    int saved = errno;
    handler_runs++;
    if (sig != SIGCHLD || si->si_signo != SIGCHLD || si->si_code != CLD_EXITED || !is_child(si->si_pid) ||
        si->si_status < 1 || si->si_status > NCHILD)
        info_bad++;
    int st;
    pid_t p;
    while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
        if (WIFEXITED(st)) status_sum += WEXITSTATUS(st);
        reaped++;
    }
    errno = saved;
}

static void msleep(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

static void describe(const char *what, int st) {
    if (WIFEXITED(st)) printf("%s: exited %d\n", what, WEXITSTATUS(st));
    else if (WIFSIGNALED(st)) printf("%s: killed by signal %d%s\n", what, WTERMSIG(st), WCOREDUMP(st) ? " (core)" : "");
    else if (WIFSTOPPED(st)) printf("%s: stopped by signal %d\n", what, WSTOPSIG(st));
    else if (WIFCONTINUED(st)) printf("%s: continued\n", what);
    else printf("%s: status %#x\n", what, st);
}

static void cont_handler(int sig) {
    (void)sig;
    static const char msg[] = "c";
    if (write(STDOUT_FILENO, msg, 0) < 0) _exit(99); /* a syscall in the handler */
}

static volatile sig_atomic_t stop_chld_seen, stop_chld_code;
static void stop_chld_handler(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    stop_chld_seen++;
    stop_chld_code = si->si_code;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);

    /* 1 */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = chld_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_NOCLDSTOP;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGCHLD, &sa, NULL);
    sigset_t chld, old;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, &old);
    for (int i = 0; i < NCHILD; i++) {
        pid_t p = fork();
        if (p == 0) {
            msleep(i * 3);
            _exit(i + 1);
        }
        children[i] = p;
    }
    while (reaped < NCHILD) sigsuspend(&old);
    sigprocmask(SIG_SETMASK, &old, NULL);
    printf("1. SIGCHLD handler reaped %d children, exit statuses sum %d, handler ran: %s, bad siginfo %d\n",
           (int)reaped, (int)status_sum, handler_runs > 0 ? "yes" : "no", (int)info_bad);

    /* 2 */
    signal(SIGCHLD, SIG_DFL);
    pid_t p = fork();
    if (p == 0) _exit(7);
    msleep(30); /* the SIGCHLD arrives while we sleep and is ignored */
    int st;
    pid_t w = waitpid(p, &st, 0);
    printf("2. default SIGCHLD ignored: still running, waitpid found the child: %d\n", w == p);
    describe("   child", st);

    /* 3 */
    signal(SIGCHLD, SIG_IGN);
    p = fork();
    if (p == 0) _exit(3);
    errno = 0;
    w = waitpid(p, &st, 0); /* blocks until the child is gone, then ECHILD */
    printf("3. SIGCHLD ignored: waitpid returned %d, errno %s\n", (int)w, strerror(errno));
    signal(SIGCHLD, SIG_DFL);

    /* 4 */
    int pfd[2];
    if (pipe(pfd)) return 1;
    p = fork();
    if (p == 0) {
        close(pfd[0]);
        signal(SIGCONT, cont_handler);
        if (write(pfd[1], "r", 1) != 1) _exit(98);
        for (;;) pause();
    }
    close(pfd[1]);
    char c;
    if (read(pfd[0], &c, 1) != 1) return 1;
    kill(p, SIGSTOP);
    waitpid(p, &st, WUNTRACED);
    describe("4. after SIGSTOP", st);
    kill(p, SIGCONT);
    waitpid(p, &st, WCONTINUED);
    describe("   after SIGCONT", st);
    kill(p, SIGTERM);
    waitpid(p, &st, 0);
    describe("   after SIGTERM", st);
    close(pfd[0]);

    p = fork();
    if (p == 0) {
        raise(SIGTSTP); /* default action: stop */
        _exit(5);
    }
    waitpid(p, &st, WUNTRACED);
    describe("   self-stopped child", st);
    kill(p, SIGCONT);
    waitpid(p, &st, 0);
    describe("   continued child", st);

    /* 5 */
    int sigs[] = {SIGTERM, SIGUSR1, SIGKILL, SIGHUP, SIGINT};
    for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        if (pipe(pfd)) return 1;
        p = fork();
        if (p == 0) {
            close(pfd[0]);
            if (write(pfd[1], "r", 1) != 1) _exit(98);
            for (;;) pause();
        }
        close(pfd[1]);
        if (read(pfd[0], &c, 1) != 1) return 1;
        close(pfd[0]);
        kill(p, sigs[i]);
        waitpid(p, &st, 0);
        char what[64];
        snprintf(what, sizeof what, "5. default action of signal %d", sigs[i]);
        describe(what, st);
    }
    int back[2];
    if (pipe(pfd) || pipe(back)) return 1;
    p = fork();
    if (p == 0) {
        close(pfd[0]);
        close(back[1]);
        sigset_t t;
        sigemptyset(&t);
        sigaddset(&t, SIGTERM);
        sigprocmask(SIG_BLOCK, &t, NULL);
        if (write(pfd[1], "r", 1) != 1) _exit(98);
        if (read(back[0], &c, 1) != 1) _exit(97); /* the parent has sent SIGTERM */
        sigset_t pend;
        sigpending(&pend);
        printf("   child: SIGTERM pending while blocked: %d\n", sigismember(&pend, SIGTERM));
        sigprocmask(SIG_UNBLOCK, &t, NULL);
        printf("   child: survived unblocking SIGTERM\n");
        _exit(0);
    }
    close(pfd[1]);
    close(back[0]);
    if (read(pfd[0], &c, 1) != 1) return 1;
    close(pfd[0]);
    kill(p, SIGTERM);
    if (write(back[1], "k", 1) != 1) return 1;
    close(back[1]);
    waitpid(p, &st, 0);
    describe("   blocked SIGTERM, then unblocked", st);

    /* 6 */
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = stop_chld_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGCHLD, &sa, NULL);
    p = fork();
    if (p == 0) {
        raise(SIGSTOP);
        _exit(0);
    }
    waitpid(p, &st, WUNTRACED);
    msleep(10);
    int stopped_seen = stop_chld_seen, stopped_code = stop_chld_code;
    kill(p, SIGCONT);
    waitpid(p, &st, 0);
    printf("6. SIGCHLD for a stopped child without SA_NOCLDSTOP: %s, si_code CLD_STOPPED: %d\n",
           stopped_seen ? "yes" : "no", stopped_code == CLD_STOPPED);
    describe("   child", st);
    return 0;
}
