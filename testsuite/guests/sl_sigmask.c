/* Blocked signals are delivered exactly when they are unblocked, in the
 * kernel's order; a handler runs while its thread is blocked in a system
 * call. Every line is written with write(2) (no stdio buffering), by the
 * main flow and by the handlers alike, so the order of the lines is the
 * order in which things happened; compare it with a native run.
 *
 *   sl_sigmask unblock          one blocked signal (sent by the process, a
 *                               thread, another process) runs at the unblock
 *                               (libc sigprocmask, raw rt_sigprocmask,
 *                               SIG_SETMASK, pthread_sigmask)
 *   sl_sigmask order            several pending signals at one unblock (the
 *                               kernel sets up all their frames at once, so
 *                               the last one taken runs first); a signal
 *                               raised inside a handler that masks it
 *   sl_sigmask rt-queue         a real-time signal queues: each of several
 *                               sigqueue'd instances (with its value) runs
 *                               the handler at the unblock, in order
 *   sl_sigmask efault           bad pointers (unmapped, PROT_NONE, kernel, past
 *                               the end of a file) given to calls bt-run serves
 *                               itself, with and without every signal blocked
 *   sl_sigmask lazy             what can observe a mask just changed: sigpending,
 *                               sigwaitinfo, a signal from another process
 *                               while no system call runs, /proc/self/status,
 *                               a forked child, an exec'd image
 *   sl_sigmask storm            another process queues real-time signals
 *                               (and sends SIGUSR1 now and then) while this
 *                               one blocks and unblocks them as fast as it
 *                               can: every instance arrives, none late
 *   sl_sigmask blocked-syscall  a signal sent while a thread waits in read(2)
 *                               runs its handler at once, with and without
 *                               SA_RESTART (the read then restarts or fails
 *                               with EINTR) */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void say(const char *fmt, ...) {
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof buf - 1)
        n = sizeof buf - 1;
    if (n > 0 && write(1, buf, (size_t)n) < 0)
        _exit(99);
}

static const char *name(int sig) {
    static char buf[16];
    switch (sig) {
    case SIGUSR1: return "SIGUSR1";
    case SIGUSR2: return "SIGUSR2";
    case SIGALRM: return "SIGALRM";
    case SIGCHLD: return "SIGCHLD";
    }
    if (sig >= SIGRTMIN && sig <= SIGRTMAX) {
        snprintf(buf, sizeof buf, "SIGRTMIN+%d", sig - SIGRTMIN);
        return buf;
    }
    snprintf(buf, sizeof buf, "signal %d", sig);
    return buf;
}

static volatile sig_atomic_t hits;

static void handler(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    hits++;
    if (si->si_code == SI_QUEUE)
        say("  handler: %s value %d\n", name(sig), si->si_value.sival_int);
    else
        say("  handler: %s\n", name(sig));
}

static void on(int sig, int flags, const sigset_t *mask, void (*fn)(int, siginfo_t *, void *)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = fn;
    sa.sa_flags = SA_SIGINFO | flags;
    if (mask)
        sa.sa_mask = *mask;
    else
        sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, NULL)) {
        say("sigaction: %s\n", strerror(errno));
        exit(1);
    }
}

static sigset_t just(int sig) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sig);
    return s;
}

static void pending(int sig) {
    sigset_t p;
    sigpending(&p);
    say("  %s pending: %s, handler runs so far: %d\n", name(sig), sigismember(&p, sig) ? "yes" : "no", (int)hits);
}

/* After an unblock: the handler must already have run. */
static void after(const char *how) {
    int h = hits;
    say("  right after %s: handler runs %d\n", how, h);
}

/* ---- unblock ---- */

static void *send_to(void *arg) {
    pthread_t target = *(pthread_t *)arg;
    pthread_kill(target, SIGUSR1);
    return NULL;
}

static void unblock_mode(void) {
    on(SIGUSR1, 0, NULL, handler);
    sigset_t s = just(SIGUSR1), old;

    say("libc sigprocmask, kill from the process itself:\n");
    hits = 0;
    sigprocmask(SIG_BLOCK, &s, &old);
    kill(getpid(), SIGUSR1);
    pending(SIGUSR1);
    sigprocmask(SIG_UNBLOCK, &s, NULL);
    after("SIG_UNBLOCK");

    say("raw rt_sigprocmask, tgkill to the thread itself:\n");
    hits = 0;
    syscall(SYS_rt_sigprocmask, SIG_BLOCK, &s, NULL, 8);
    syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), SIGUSR1);
    pending(SIGUSR1);
    syscall(SYS_rt_sigprocmask, SIG_UNBLOCK, &s, NULL, 8);
    after("raw SIG_UNBLOCK");

    say("SIG_SETMASK back to the old mask, raise:\n");
    hits = 0;
    sigprocmask(SIG_BLOCK, &s, &old);
    raise(SIGUSR1);
    pending(SIGUSR1);
    sigprocmask(SIG_SETMASK, &old, NULL);
    after("SIG_SETMASK");

    say("pthread_sigmask, sent by another thread:\n");
    hits = 0;
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    pthread_t self = pthread_self(), t;
    pthread_create(&t, NULL, send_to, &self);
    pthread_join(t, NULL);
    pending(SIGUSR1);
    pthread_sigmask(SIG_UNBLOCK, &s, NULL);
    after("pthread_sigmask SIG_UNBLOCK");

    say("sent by another process:\n");
    hits = 0;
    sigprocmask(SIG_BLOCK, &s, NULL);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        kill(parent, SIGUSR1);
        _exit(0);
    }
    waitpid(pid, NULL, 0);
    pending(SIGUSR1);
    sigprocmask(SIG_UNBLOCK, &s, NULL);
    after("SIG_UNBLOCK");

    say("blocked twice, sent twice (standard signals do not queue):\n");
    hits = 0;
    sigprocmask(SIG_BLOCK, &s, NULL);
    kill(getpid(), SIGUSR1);
    kill(getpid(), SIGUSR1);
    pending(SIGUSR1);
    sigprocmask(SIG_BLOCK, &s, NULL);
    pending(SIGUSR1);
    sigprocmask(SIG_UNBLOCK, &s, NULL);
    after("SIG_UNBLOCK");

    say("unblocking a signal that is not pending:\n");
    hits = 0;
    sigprocmask(SIG_BLOCK, &s, NULL);
    sigprocmask(SIG_UNBLOCK, &s, NULL);
    after("SIG_UNBLOCK");
}

/* ---- order ---- */

static void *queue_from_thread(void *arg) {
    (void)arg;
    union sigval v;
    for (int i = 1; i <= 3; i++) {
        v.sival_int = 10 + i;
        sigqueue(getpid(), SIGRTMIN + 3, v);
    }
    return NULL;
}

static volatile sig_atomic_t in_usr1;

static void nesting_handler(int sig, siginfo_t *si, void *uc) {
    (void)si;
    (void)uc;
    say("  handler: %s starts\n", name(sig));
    if (sig == SIGUSR1) {
        in_usr1 = 1;
        raise(SIGUSR2); /* masked by sa_mask: runs after this handler */
        say("  handler: SIGUSR1 raised SIGUSR2\n");
        raise(SIGALRM); /* not masked: runs at once, nested */
        say("  handler: SIGUSR1 raised SIGALRM\n");
        in_usr1 = 0;
    }
    say("  handler: %s ends\n", name(sig));
}

static sigset_t handle_all(void) {
    sigset_t all;
    sigemptyset(&all);
    int sigs[] = {SIGUSR1, SIGUSR2, SIGALRM, SIGRTMIN + 1, SIGRTMIN + 2, SIGRTMIN + 3};
    for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        on(sigs[i], 0, NULL, handler);
        sigaddset(&all, sigs[i]);
    }
    return all;
}

static void *queue_more_from_thread(void *arg) {
    (void)arg;
    union sigval v;
    for (int i = 1; i <= 2; i++) {
        v.sival_int = 10 + i;
        sigqueue(getpid(), SIGRTMIN + 2, v);
    }
    return NULL;
}

/* One real-time signal, queued five times: each instance runs the handler,
 * in the order sent, with its own value. */
static void rt_queue_mode(void) {
    sigset_t all = handle_all();
    say("SIGRTMIN+2 queued three times by the process and twice by a thread, one unblock:\n");
    hits = 0;
    sigprocmask(SIG_BLOCK, &all, NULL);
    union sigval v;
    for (int i = 1; i <= 3; i++) {
        v.sival_int = i;
        sigqueue(getpid(), SIGRTMIN + 2, v);
    }
    pthread_t t;
    pthread_create(&t, NULL, queue_more_from_thread, NULL);
    pthread_join(t, NULL);
    pending(SIGRTMIN + 2);
    sigprocmask(SIG_UNBLOCK, &all, NULL);
    after("SIG_UNBLOCK");
}

static void order_mode(void) {
    sigset_t all = handle_all();
    say("real-time signals of three kinds (some queued) and a standard one, one unblock:\n");
    hits = 0;
    sigprocmask(SIG_BLOCK, &all, NULL);
    union sigval v;
    for (int i = 1; i <= 3; i++) {
        v.sival_int = i;
        sigqueue(getpid(), SIGRTMIN + 2, v);
    }
    v.sival_int = 7;
    sigqueue(getpid(), SIGRTMIN + 1, v);
    kill(getpid(), SIGALRM);
    pthread_t t;
    pthread_create(&t, NULL, queue_from_thread, NULL);
    pthread_join(t, NULL);
    pending(SIGRTMIN + 2);
    sigprocmask(SIG_UNBLOCK, &all, NULL);
    after("SIG_UNBLOCK");


    say("SIGUSR2 then SIGUSR1 pending, one unblock:\n");
    hits = 0;
    sigprocmask(SIG_BLOCK, &all, NULL);
    kill(getpid(), SIGUSR2);
    kill(getpid(), SIGUSR1);
    sigprocmask(SIG_UNBLOCK, &all, NULL);
    after("SIG_UNBLOCK");

    say("unblocking one of two pending signals:\n");
    hits = 0;
    sigprocmask(SIG_BLOCK, &all, NULL);
    kill(getpid(), SIGUSR1);
    kill(getpid(), SIGUSR2);
    sigset_t two = just(SIGUSR2);
    sigprocmask(SIG_UNBLOCK, &two, NULL);
    after("unblocking SIGUSR2");
    sigprocmask(SIG_UNBLOCK, &all, NULL);
    after("unblocking the rest");

    say("a signal raised in a handler whose sa_mask blocks it:\n");
    sigset_t m = just(SIGUSR2);
    on(SIGUSR1, 0, &m, nesting_handler);
    on(SIGUSR2, 0, NULL, nesting_handler);
    on(SIGALRM, 0, NULL, nesting_handler);
    raise(SIGUSR1);
    say("  back in main\n");
}

/* ---- blocked-syscall ---- */

static int note[2];

static void noting_handler(int sig) {
    (void)sig;
    hits++;
    if (write(note[1], "h", 1) != 1)
        _exit(98);
}

static void blocked_read(int flags, const char *what) {
    int p[2];
    if (pipe(p) || pipe(note))
        exit(2);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = noting_handler;
    sa.sa_flags = flags;
    sigaction(SIGUSR1, &sa, NULL);
    hits = 0;
    say("%s:\n", what);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        /* Let the parent block in read, signal it, and see whether its
         * handler runs while it is still blocked (natively it does at once). */
        usleep(200 * 1000);
        kill(parent, SIGUSR1);
        struct pollfd pf = {note[0], POLLIN, 0};
        int r = poll(&pf, 1, 3000);
        say("  child: the handler ran while the parent was blocked in read: %s\n", r == 1 ? "yes" : "no");
        _exit(write(p[1], "x", 1) == 1 ? 0 : 1);
    }
    char c;
    errno = 0;
    ssize_t r = read(p[0], &c, 1);
    int e = errno;
    int h = hits;
    if (r < 0 && read(p[0], &c, 1) != 1) /* the child's byte is still coming */
        say("  second read failed\n");
    waitpid(pid, NULL, 0); /* its line is out: print ours after it */
    if (r < 0)
        say("  read returned %zd errno %s, handler runs %d\n", r, e == EINTR ? "EINTR" : strerror(e), h);
    else
        say("  read returned %zd, handler runs %d\n", r, h);
    close(p[0]);
    close(p[1]);
    close(note[0]);
    close(note[1]);
}

static void blocked_syscall_mode(void) {
    blocked_read(SA_RESTART, "SA_RESTART handler, parent blocked in read");
    blocked_read(0, "handler without SA_RESTART, parent blocked in read");
}

/* ---- lazy: what can observe a mask that was only just changed ---- */

static void show_sigblk(const char *who) {
    char buf[4096];
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) { say("  %s: no status\n", who); return; }
    while (fgets(buf, sizeof buf, f))
        if (strncmp(buf, "SigBlk:", 7) == 0)
            say("  %s %s", who, buf);
    fclose(f);
}

static void lazy_mode(char *self) {
    on(SIGUSR1, 0, NULL, handler);
    on(SIGUSR2, 0, NULL, handler);
    sigset_t s = just(SIGUSR1), cur;

    say("blocked, then sent by the process, seen by sigpending:\n");
    hits = 0;
    sigprocmask(SIG_BLOCK, &s, NULL);
    kill(getpid(), SIGUSR1);
    pending(SIGUSR1);
    sigprocmask(SIG_UNBLOCK, &s, NULL);
    after("SIG_UNBLOCK");

    say("blocked, then taken by sigwaitinfo:\n");
    hits = 0;
    sigset_t s2 = just(SIGUSR2);
    sigprocmask(SIG_BLOCK, &s2, NULL);
    raise(SIGUSR2);
    siginfo_t si;
    int got = sigwaitinfo(&s2, &si);
    say("  sigwaitinfo: %s code %d, handler runs %d\n", got > 0 ? name(got) : "error", si.si_code, (int)hits);
    sigprocmask(0, NULL, &cur);
    say("  still blocked: %s\n", sigismember(&cur, SIGUSR2) ? "yes" : "no");
    sigprocmask(SIG_UNBLOCK, &s2, NULL);
    pending(SIGUSR2);

    say("sent by another process while blocked and no system call runs:\n");
    hits = 0;
    volatile int *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pid_t parent = getpid();
    pid_t child = fork();
    if (child == 0) {
        while (shared[0] == 0) {}
        kill(parent, SIGUSR1);
        shared[1] = 1;
        _exit(0);
    }
    sigprocmask(SIG_BLOCK, &s, NULL);
    shared[0] = 1;
    while (shared[1] == 0) {}
    for (volatile long i = 0; i < 20000000; i++) {}
    say("  before the unblock: handler runs %d\n", (int)hits);
    pending(SIGUSR1);
    sigprocmask(SIG_UNBLOCK, &s, NULL);
    after("SIG_UNBLOCK");
    waitpid(child, NULL, 0);

    say("the mask a forked child and an exec'd image start with:\n");
    sigset_t s3 = just(SIGTERM);
    sigprocmask(SIG_BLOCK, &s3, NULL);
    show_sigblk("parent");
    child = fork();
    if (child == 0) {
        show_sigblk("child");
        sigprocmask(0, NULL, &cur);
        say("  child sigprocmask: SIGTERM %s\n", sigismember(&cur, SIGTERM) ? "blocked" : "not blocked");
        _exit(0);
    }
    waitpid(child, NULL, 0);
    child = fork();
    if (child == 0) {
        execl(self, self, "lazy-exec", (char *)NULL);
        _exit(127);
    }
    waitpid(child, NULL, 0);
    sigprocmask(SIG_UNBLOCK, &s3, NULL);
}

static void lazy_exec_mode(void) {
    sigset_t cur;
    sigprocmask(0, NULL, &cur);
    say("  exec'd image: SIGTERM %s, SIGUSR1 %s\n", sigismember(&cur, SIGTERM) ? "blocked" : "not blocked",
        sigismember(&cur, SIGUSR1) ? "blocked" : "not blocked");
    show_sigblk("exec'd");
}

/* ---- efault: bad pointers given to the calls bt-run serves itself ---- */

static void efault_mode(void) {
    long page = sysconf(_SC_PAGESIZE);
    char *none = mmap(NULL, page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *ro = mmap(NULL, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char path[] = "/tmp/sl_sigmask_efault_XXXXXX";
    int fd = mkstemp(path);
    unlink(path);
    if (fd < 0 || ftruncate(fd, page) != 0) { say("setup failed\n"); return; }
    char *gone = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    char *beyond = gone + page; /* past the end of the file: SIGBUS if touched */
    sigset_t all, cur;
    sigfillset(&all);
    for (int blocked = 0; blocked < 2; blocked++) {
        say("%s:\n", blocked ? "with every signal blocked" : "with no signal blocked");
        sigset_t none_set;
        sigemptyset(&none_set);
        sigprocmask(SIG_SETMASK, blocked ? &all : &none_set, NULL);
        struct { const char *what; void *p; } bad[] = {
            {"address 1", (void *)1}, {"PROT_NONE page", none}, {"kernel address", (void *)0xffffffff80000000ul},
            {"past the end of a file", beyond},
        };
        for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            long r = syscall(SYS_rt_sigprocmask, SIG_BLOCK, bad[i].p, NULL, 8);
            int e1 = r < 0 ? errno : 0;
            r = syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, bad[i].p, 8);
            int e2 = r < 0 ? errno : 0;
            r = syscall(SYS_rt_sigaction, SIGUSR1, bad[i].p, NULL, 8);
            int e3 = r < 0 ? errno : 0;
            r = syscall(SYS_sigaltstack, bad[i].p, NULL);
            int e4 = r < 0 ? errno : 0;
            say("  %s: sigprocmask set %s, old %s; sigaction %s; sigaltstack %s\n", bad[i].what, strerror(e1),
                strerror(e2), strerror(e3), strerror(e4));
        }
        /* The old mask goes to read-only memory: EFAULT, but the mask has changed. */
        sigset_t one = just(SIGUSR2);
        long r = syscall(SYS_rt_sigprocmask, SIG_UNBLOCK, &one, ro, 8);
        sigprocmask(SIG_BLOCK, NULL, &cur);
        say("  old mask to read-only memory: %s, SIGUSR2 now %s\n", r < 0 ? strerror(errno) : "ok",
            sigismember(&cur, SIGUSR2) ? "blocked" : "unblocked");
    }
    sigset_t none_set;
    sigemptyset(&none_set);
    sigprocmask(SIG_SETMASK, &none_set, NULL);
    close(fd);
}

static volatile sig_atomic_t storm_rt, storm_usr;
static void storm_rt_handler(int s) { (void)s; storm_rt++; }
static void storm_usr_handler(int s) { (void)s; storm_usr = 1; }

/* Masks changed between any two instructions of a signal's arrival. */
static void storm_mode(void) {
    enum { SENT = 2000 };
    signal(SIGRTMIN, storm_rt_handler);
    signal(SIGUSR1, storm_usr_handler);
    sigset_t both, usr, old;
    sigemptyset(&both);
    sigaddset(&both, SIGRTMIN);
    sigaddset(&both, SIGUSR1);
    sigemptyset(&usr);
    sigaddset(&usr, SIGUSR1);
    pid_t me = getpid();
    pid_t c = fork();
    if (c == 0) {
        union sigval v = {0};
        for (int i = 0; i < SENT; i++) {
            while (sigqueue(me, SIGRTMIN, v) != 0)
                usleep(100);
            if (i % 3 == 0)
                kill(me, SIGUSR1);
            if (i % 64 == 0)
                usleep(50);
        }
        _exit(0);
    }
    long rounds = 0;
    while (storm_rt < SENT && rounds++ < 100000000) {
        sigprocmask(SIG_BLOCK, &usr, &old);
        sigprocmask(SIG_SETMASK, &old, NULL);
        syscall(SYS_rt_sigprocmask, SIG_BLOCK, &both, &old, 8);
        syscall(SYS_rt_sigprocmask, SIG_UNBLOCK, &both, NULL, 8);
    }
    waitpid(c, NULL, 0);

    sigprocmask(SIG_BLOCK, NULL, &old);
    say("real-time instances handled: %d of %d; SIGUSR1 handled: %d; blocked now: %d %d\n", (int)storm_rt, SENT,
        (int)storm_usr, sigismember(&old, SIGRTMIN), sigismember(&old, SIGUSR1));
}

int main(int argc, char **argv) {
    const char *mode = argc == 2 ? argv[1] : "";
    if (strcmp(mode, "unblock") == 0)
        unblock_mode();
    else if (strcmp(mode, "order") == 0)
        order_mode();
    else if (strcmp(mode, "rt-queue") == 0)
        rt_queue_mode();
    else if (strcmp(mode, "blocked-syscall") == 0)
        blocked_syscall_mode();
    else if (strcmp(mode, "efault") == 0)
        efault_mode();
    else if (strcmp(mode, "storm") == 0)
        storm_mode();
    else if (strcmp(mode, "lazy") == 0)
        lazy_mode(argv[0]);
    else if (strcmp(mode, "lazy-exec") == 0) {
        lazy_exec_mode();
        return 0;
    }
    else {
        say("usage: sl_sigmask unblock|order|rt-queue|storm|blocked-syscall|efault|lazy\n");
        return 2;
    }
    say("done\n");
    return 0;
}
