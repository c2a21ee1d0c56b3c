/* Waiting for signals, and what signals do to blocking calls.
 * st_wait MODE, MODE one of:
 *   order     a blocked signal runs its handler as soon as it is unblocked
 *             (before sigprocmask returns); several pending signals unblocked
 *             at once, with and without sa_mask: which handler runs first;
 *             real-time signals are queued, standard ones are not
 *   suspend   sigsuspend: the handler runs, -1/EINTR, the old mask is back;
 *             a signal sent by another thread while suspended
 *   waitinfo  sigwaitinfo / sigtimedwait / signalfd: si_signo, si_code,
 *             si_value (sigqueue), si_pid, si_uid; kill, tgkill and sigqueue
 *   eintr     blocking calls interrupted by SIGALRM with and without
 *             SA_RESTART: read, wait4, nanosleep, poll, select, pause,
 *             sigsuspend (return value and errno) */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void say(const char *s) {
    if (write(STDOUT_FILENO, s, strlen(s)) < 0) _exit(99);
}

static const char *name(int sig) {
    static char buf[16];
    if (sig == SIGUSR1) return "SIGUSR1";
    if (sig == SIGUSR2) return "SIGUSR2";
    if (sig == SIGALRM) return "SIGALRM";
    if (sig == SIGHUP) return "SIGHUP";
    if (sig >= SIGRTMIN && sig <= SIGRTMAX) {
        snprintf(buf, sizeof buf, "SIGRTMIN+%d", sig - SIGRTMIN);
        return buf;
    }
    snprintf(buf, sizeof buf, "signal %d", sig);
    return buf;
}

static void print_handler(int sig) {
    char buf[64];
    snprintf(buf, sizeof buf, "  handler %s\n", name(sig));
    say(buf);
}

static void install(int sig, void (*fn)(int), int flags, int block_all) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sa.sa_flags = flags;
    if (block_all) sigfillset(&sa.sa_mask);
    else sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, NULL)) perror("sigaction");
}

static sigset_t set_of(int a, int b, int c, int d) {
    sigset_t s;
    sigemptyset(&s);
    int v[] = {a, b, c, d};
    for (int i = 0; i < 4; i++)
        if (v[i]) sigaddset(&s, v[i]);
    return s;
}

/* ---- order ---- */
static void pending_burst(int block_all) {
    int sigs[4] = {SIGRTMIN + 1, SIGUSR2, SIGRTMIN, SIGUSR1};
    for (int i = 0; i < 4; i++) install(sigs[i], print_handler, 0, block_all);
    sigset_t s = set_of(SIGUSR1, SIGUSR2, SIGRTMIN, SIGRTMIN + 1), old;
    sigprocmask(SIG_BLOCK, &s, &old);
    for (int i = 0; i < 4; i++) raise(sigs[i]);
    raise(SIGUSR1);      /* a standard signal already pending: merged */
    raise(SIGRTMIN + 1); /* a real-time one: queued twice */
    printf(" raised SIGRTMIN+1 SIGUSR2 SIGRTMIN SIGUSR1 SIGUSR1 SIGRTMIN+1 while blocked; unblocking (%s)\n",
           block_all ? "handlers block everything" : "handlers block only their own signal");
    sigprocmask(SIG_SETMASK, &old, NULL);
    say(" sigprocmask returned\n");
}

static int mode_order(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    install(SIGUSR1, print_handler, 0, 0);
    sigset_t s = set_of(SIGUSR1, 0, 0, 0), old;
    sigprocmask(SIG_BLOCK, &s, &old);
    raise(SIGUSR1);
    say("raised SIGUSR1 while blocked\n");
    sigset_t pend;
    sigpending(&pend);
    printf("pending: %d\n", sigismember(&pend, SIGUSR1));
    say("unblocking\n");
    sigprocmask(SIG_SETMASK, &old, NULL);
    say("sigprocmask returned\n");
    sigpending(&pend);
    printf("pending: %d\n", sigismember(&pend, SIGUSR1));

    printf("burst 1:\n");
    pending_burst(0);
    printf("burst 2:\n");
    pending_burst(1);

    /* blocked and ignored: Linux keeps it pending; a handler installed
     * later runs once it is unblocked */
    sigprocmask(SIG_BLOCK, &s, &old);
    signal(SIGUSR1, SIG_IGN);
    raise(SIGUSR1);
    sigpending(&pend);
    printf("ignored while blocked, pending: %d\n", sigismember(&pend, SIGUSR1));
    install(SIGUSR1, print_handler, 0, 0);
    say("handler installed, unblocking\n");
    sigprocmask(SIG_SETMASK, &old, NULL);
    /* setting SIG_IGN discards a pending signal */
    sigprocmask(SIG_BLOCK, &s, &old);
    raise(SIGUSR1);
    signal(SIGUSR1, SIG_IGN);
    sigpending(&pend);
    printf("pending after SIG_IGN: %d\n", sigismember(&pend, SIGUSR1));
    install(SIGUSR1, print_handler, 0, 0);
    sigprocmask(SIG_SETMASK, &old, NULL);
    say("unblocked: no handler ran\n");
    return 0;
}

/* ---- suspend ---- */
static volatile sig_atomic_t got;
static void count_handler(int sig) {
    (void)sig;
    got++;
}

static void *late_sender(void *arg) {
    struct timespec ts = {0, 30 * 1000000};
    nanosleep(&ts, NULL);
    kill(getpid(), (int)(long)arg);
    return NULL;
}

static int mode_suspend(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    install(SIGUSR1, count_handler, 0, 0);
    install(SIGUSR2, count_handler, 0, 0);
    sigset_t s = set_of(SIGUSR1, SIGUSR2, 0, 0), old, during, now;
    sigprocmask(SIG_BLOCK, &s, &old);
    raise(SIGUSR1);
    during = set_of(SIGUSR2, 0, 0, 0);
    errno = 0;
    int r = sigsuspend(&during);
    int e = errno;
    sigprocmask(SIG_BLOCK, NULL, &now);
    printf("sigsuspend with SIGUSR1 pending: returned %d errno %s, handler runs %d, old mask back: %d\n", r,
           strerror(e), (int)got, sigismember(&now, SIGUSR1) && sigismember(&now, SIGUSR2));

    pthread_t t;
    pthread_create(&t, NULL, late_sender, (void *)(long)SIGUSR2);
    errno = 0;
    r = sigsuspend(&old);
    e = errno;
    pthread_join(t, NULL);
    printf("sigsuspend woken by another thread's kill: returned %d errno %s, handler runs %d\n", r, strerror(e),
           (int)got);

    /* a signal blocked in the suspend mask stays pending */
    raise(SIGUSR2);
    pthread_create(&t, NULL, late_sender, (void *)(long)SIGUSR1);
    r = sigsuspend(&during);
    pthread_join(t, NULL);
    sigset_t pend;
    sigpending(&pend);
    printf("sigsuspend blocking SIGUSR2: woken by SIGUSR1, handler runs %d, SIGUSR2 still pending: %d\n", (int)got,
           sigismember(&pend, SIGUSR2));
    sigprocmask(SIG_SETMASK, &old, NULL);
    printf("after unblocking: handler runs %d\n", (int)got);
    return 0;
}

/* ---- waitinfo ---- */
static atomic_int sender_stop;

/* Sends the signal every 20 ms until told to stop: one sent before the
 * main thread blocks would otherwise be missed. */
static void *repeat_sender(void *arg) {
    while (!atomic_load(&sender_stop)) {
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
        if (!atomic_load(&sender_stop)) kill(getpid(), (int)(long)arg);
    }
    return NULL;
}

static void show(const char *how, int r, const siginfo_t *si) {
    if (r < 0) {
        printf("%s: -1 errno %s\n", how, strerror(errno));
        return;
    }
    const char *code = si->si_code == SI_USER ? "SI_USER"
                       : si->si_code == SI_QUEUE ? "SI_QUEUE"
                       : si->si_code == SI_TKILL ? "SI_TKILL"
                       : si->si_code == SI_KERNEL ? "SI_KERNEL"
                                                  : "other";
    printf("%s: %s si_signo %s si_code %s si_pid is me %d si_uid is me %d", how, name(r), name(si->si_signo), code,
           si->si_pid == getpid(), si->si_uid == getuid());
    if (si->si_code == SI_QUEUE) printf(" si_value %d", si->si_value.sival_int);
    printf("\n");
}

static int mode_waitinfo(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    sigset_t s = set_of(SIGUSR1, SIGUSR2, SIGRTMIN, SIGALRM);
    sigprocmask(SIG_BLOCK, &s, NULL);
    union sigval v;
    v.sival_int = 42;
    sigqueue(getpid(), SIGRTMIN, v);
    v.sival_int = 43;
    sigqueue(getpid(), SIGRTMIN, v);
    kill(getpid(), SIGUSR2);
    syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), SIGUSR1);
    siginfo_t si;
    for (int i = 0; i < 4; i++) {
        memset(&si, 0, sizeof si);
        int r = sigwaitinfo(&s, &si);
        show("sigwaitinfo", r, &si);
    }
    struct timespec ts = {0, 20 * 1000000};
    int r = sigtimedwait(&s, &si, &ts);
    show("sigtimedwait with nothing pending", r, &si);

    /* interrupted by a handled signal that is not in the set */
    install(SIGHUP, count_handler, 0, 0);
    struct itimerval it = {{0, 0}, {0, 20000}};
    signal(SIGALRM, SIG_DFL);
    sigset_t only_usr1 = set_of(SIGUSR1, 0, 0, 0);
    pthread_t t;
    pthread_create(&t, NULL, repeat_sender, (void *)(long)SIGHUP);
    /* the raw system call: musl's sigwaitinfo retries after EINTR */
    r = (int)syscall(SYS_rt_sigtimedwait, &only_usr1, &si, NULL, _NSIG / 8);
    atomic_store(&sender_stop, 1);
    pthread_join(t, NULL);
    show("rt_sigtimedwait interrupted by a handled SIGHUP", r, &si);

    /* a timer signal */
    setitimer(ITIMER_REAL, &it, NULL);
    r = sigwaitinfo(&s, &si);
    show("sigwaitinfo for an itimer", r, &si);

    /* signalfd */
    int fd = signalfd(-1, &s, SFD_CLOEXEC);
    v.sival_int = 77;
    sigqueue(getpid(), SIGRTMIN, v);
    kill(getpid(), SIGUSR1);
    for (int i = 0; i < 2; i++) {
        struct signalfd_siginfo ssi;
        ssize_t n = read(fd, &ssi, sizeof ssi);
        printf("signalfd read %zd: %s ssi_code %d ssi_pid is me %d ssi_int %d\n", n, name((int)ssi.ssi_signo),
               ssi.ssi_code, ssi.ssi_pid == (uint32_t)getpid(), ssi.ssi_code == SI_QUEUE ? ssi.ssi_int : 0);
    }
    close(fd);
    return 0;
}

/* ---- eintr ---- */
static int alarm_pipe[2];
static void alarm_handler(int sig) {
    (void)sig;
    got++;
    if (write(alarm_pipe[1], "!", 1) != 1) _exit(99);
}

/* 100 ms: time enough to enter the blocking call even on a loaded machine */
static void one_shot(void) {
    struct itimerval it = {{0, 0}, {0, 100000}};
    setitimer(ITIMER_REAL, &it, NULL);
}

static void report(const char *what, long r, int e) {
    printf("  %-30s returned %ld errno %s\n", what, r, r < 0 ? strerror(e) : "-");
}

static void eintr_round(int restart) {
    printf("SIGALRM handler %s SA_RESTART:\n", restart ? "with" : "without");
    install(SIGALRM, alarm_handler, restart ? SA_RESTART : 0, 0);
    int fds[2];
    char buf[8];
    long r;

    /* read from a pipe that only the handler writes to */
    if (pipe(alarm_pipe) || pipe(fds)) exit(1);
    close(alarm_pipe[0]);
    alarm_pipe[0] = fds[0];
    alarm_pipe[1] = fds[1];
    one_shot();
    errno = 0;
    r = read(alarm_pipe[0], buf, sizeof buf);
    report("read(pipe)", r, errno);
    if (r < 0) {
        r = read(alarm_pipe[0], buf, sizeof buf);
        report("  read again", r, errno);
    }

    /* wait4 for a child that takes 600 ms */
    pid_t p = fork();
    if (p == 0) {
        struct timespec ts = {0, 600 * 1000000};
        nanosleep(&ts, NULL);
        _exit(6);
    }
    one_shot();
    int st = 0;
    errno = 0;
    r = waitpid(p, &st, 0);
    report("waitpid(child)", r == p ? 1 : r, errno);
    if (r < 0) {
        r = waitpid(p, &st, 0);
        report("  waitpid again", r == p ? 1 : r, errno);
    }
    printf("  child status %d\n", WEXITSTATUS(st));
    r = read(alarm_pipe[0], buf, sizeof buf); /* drain */

    one_shot();
    struct timespec ts = {2, 0}, rem = {0, 0};
    errno = 0;
    r = nanosleep(&ts, &rem);
    report("nanosleep(2 s)", r, errno);
    printf("  remaining time between 1 s and 2 s: %d\n", rem.tv_sec == 1 && rem.tv_nsec > 0);
    r = read(alarm_pipe[0], buf, sizeof buf);

    int never[2];
    if (pipe(never)) exit(1);
    one_shot();
    struct pollfd pf = {.fd = never[0], .events = POLLIN};
    errno = 0;
    r = poll(&pf, 1, 2000);
    report("poll(2 s)", r, errno);
    r = read(alarm_pipe[0], buf, sizeof buf);

    one_shot();
    fd_set rd;
    FD_ZERO(&rd);
    FD_SET(never[0], &rd);
    struct timeval tv = {2, 0};
    errno = 0;
    r = select(never[0] + 1, &rd, NULL, NULL, &tv);
    report("select(2 s)", r, errno);
    r = read(alarm_pipe[0], buf, sizeof buf);

    one_shot();
    errno = 0;
    r = pause();
    report("pause()", r, errno);
    r = read(alarm_pipe[0], buf, sizeof buf);

    one_shot();
    sigset_t none;
    sigemptyset(&none);
    errno = 0;
    r = sigsuspend(&none);
    report("sigsuspend()", r, errno);
    r = read(alarm_pipe[0], buf, sizeof buf);
    close(never[0]);
    close(never[1]);
    close(alarm_pipe[0]);
    close(alarm_pipe[1]);
}

static int mode_eintr(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    eintr_round(0);
    eintr_round(1);
    printf("handler ran %d times\n", (int)got);
    return 0;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "order")) return mode_order();
    if (!strcmp(mode, "suspend")) return mode_suspend();
    if (!strcmp(mode, "waitinfo")) return mode_waitinfo();
    if (!strcmp(mode, "eintr")) return mode_eintr();
    fprintf(stderr, "usage: st_wait order|suspend|waitinfo|eintr\n");
    return 2;
}
