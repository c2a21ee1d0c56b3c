/* Signals and threads. st_threadsig MODE, MODE one of:
 *   kill        pthread_kill(SIGUSR1) to each of 4 threads in turn: the
 *               handler runs in the target thread (pthread_self() equality
 *               and a thread-local id); a worker signals the main thread
 *   mask        a process-directed kill(getpid()) goes to the only thread
 *               that does not block the signal, for each thread in turn;
 *               a dedicated thread collects sigqueue'd signals with sigwaitinfo
 *   fatal       a worker thread dereferences NULL: the whole process dies of SIGSEGV
 *   fatalterm   pthread_kill(worker, SIGTERM) with the default action kills
 *               the whole process
 *   fatalabort  a worker calls abort(): the whole process dies of SIGABRT
 *   timer       a POSIX timer per thread with SIGEV_THREAD_ID fires its
 *               signal in that thread only; a SIGEV_SIGNAL timer's signal
 *               goes to the one thread that does not block it */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define NT 4

static __thread int my_id = -1; /* -1: main thread */
static pthread_t threads[NT], main_thread;
static atomic_int ready, quit;
static volatile pthread_t handled_by;
static volatile int handled_id;
static atomic_int handled;

static void msleep(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

static void record_handler(int sig) {
    (void)sig;
    handled_by = pthread_self();
    handled_id = my_id;
    atomic_fetch_add(&handled, 1);
}

static void wait_handled(int n) {
    while (atomic_load(&handled) < n) msleep(1);
}

static sigset_t usr1_set(void) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    return s;
}

/* ---- kill ---- */
static void *kill_worker(void *arg) {
    my_id = (int)(intptr_t)arg;
    atomic_fetch_add(&ready, 1);
    while (!atomic_load(&quit)) msleep(1);
    if (my_id == 1) {
        /* now signal the main thread */
        pthread_kill(main_thread, SIGUSR2);
    }
    return NULL;
}

static int mode_kill(void) {
    main_thread = pthread_self();
    signal(SIGUSR1, record_handler);
    signal(SIGUSR2, record_handler);
    for (int i = 0; i < NT; i++) pthread_create(&threads[i], NULL, kill_worker, (void *)(intptr_t)i);
    while (atomic_load(&ready) < NT) msleep(1);
    int n = 0;
    for (int k = NT - 1; k >= 0; k--) {
        pthread_kill(threads[k], SIGUSR1);
        wait_handled(++n);
        printf("pthread_kill to thread %d: handled by it: %s (thread-local id %d)\n", k,
               pthread_equal(handled_by, threads[k]) ? "true" : "false", handled_id);
    }
    /* and main to itself: delivered before pthread_kill returns */
    pthread_kill(pthread_self(), SIGUSR1);
    printf("pthread_kill to self: handled already: %s, by main: %s\n", atomic_load(&handled) == n + 1 ? "true" : "false",
           pthread_equal(handled_by, main_thread) ? "true" : "false");
    n++;
    atomic_store(&quit, 1);
    wait_handled(++n);
    printf("worker 1 signalled main: handled by main: %s (thread-local id %d)\n",
           pthread_equal(handled_by, main_thread) ? "true" : "false", handled_id);
    for (int i = 0; i < NT; i++) pthread_join(threads[i], NULL);
    return 0;
}

/* ---- mask ---- */
static atomic_int turn = -2; /* which worker unblocks SIGUSR1 */
static atomic_int acked[NT];

static void *mask_worker(void *arg) {
    my_id = (int)(intptr_t)arg;
    sigset_t s = usr1_set();
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    atomic_fetch_add(&ready, 1);
    for (;;) {
        int t = atomic_load(&turn);
        if (t == -1) break;
        if (t == my_id && !atomic_load(&acked[my_id])) {
            pthread_sigmask(SIG_UNBLOCK, &s, NULL);
            /* wait for our signal, then block again */
            while (atomic_load(&turn) == my_id) msleep(1);
            pthread_sigmask(SIG_BLOCK, &s, NULL);
            atomic_store(&acked[my_id], 1);
        }
        msleep(1);
    }
    return NULL;
}

static atomic_int waiter_ready;
static int waited_values[3], waited_codes[3], waited_pid_ok;

static void *sigwait_thread(void *arg) {
    (void)arg;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGRTMIN + 2);
    atomic_store(&waiter_ready, 1);
    for (int i = 0; i < 3; i++) {
        siginfo_t si;
        int r = sigwaitinfo(&s, &si);
        waited_values[i] = r == SIGRTMIN + 2 ? si.si_value.sival_int : -1;
        waited_codes[i] = si.si_code;
        waited_pid_ok += si.si_pid == getpid();
    }
    return NULL;
}

static int mode_mask(void) {
    main_thread = pthread_self();
    signal(SIGUSR1, record_handler);
    sigset_t s = usr1_set();
    sigaddset(&s, SIGRTMIN + 2);
    pthread_sigmask(SIG_BLOCK, &s, NULL); /* inherited by the workers */
    for (int i = 0; i < NT; i++) pthread_create(&threads[i], NULL, mask_worker, (void *)(intptr_t)i);
    while (atomic_load(&ready) < NT) msleep(1);
    int n = 0;
    for (int k = 0; k < NT; k++) {
        atomic_store(&turn, k);
        /* give the worker time to unblock: the signal would stay pending otherwise, which is fine too */
        msleep(5);
        kill(getpid(), SIGUSR1);
        wait_handled(++n);
        printf("kill(getpid()) while only worker %d unblocks SIGUSR1: handled by it: %s (id %d)\n", k,
               pthread_equal(handled_by, threads[k]) ? "true" : "false", handled_id);
        atomic_store(&turn, -2);
        while (!atomic_load(&acked[k])) msleep(1);
    }
    atomic_store(&turn, -1);
    for (int i = 0; i < NT; i++) pthread_join(threads[i], NULL);

    pthread_t w;
    pthread_create(&w, NULL, sigwait_thread, NULL);
    while (!atomic_load(&waiter_ready)) msleep(1);
    for (int i = 0; i < 3; i++) {
        union sigval v = {.sival_int = 100 + i};
        sigqueue(getpid(), SIGRTMIN + 2, v);
    }
    pthread_join(w, NULL);
    printf("sigwaitinfo thread got values %d %d %d, si_code SI_QUEUE: %d %d %d, si_pid right %d times\n",
           waited_values[0], waited_values[1], waited_values[2], waited_codes[0] == SI_QUEUE,
           waited_codes[1] == SI_QUEUE, waited_codes[2] == SI_QUEUE, waited_pid_ok);
    return 0;
}

/* ---- fatal ---- */
static void *crasher(void *arg) {
    (void)arg;
    volatile int *volatile null = NULL;
    msleep(20);
    null[2] = 1;
    return NULL;
}

static void *aborter(void *arg) {
    (void)arg;
    msleep(20);
    abort();
}

static void *idler(void *arg) {
    (void)arg;
    for (;;) pause();
    return NULL;
}

static int mode_fatal(void *(*fn)(void *), int term) {
    pthread_t t;
    printf("main: starting the worker\n");
    pthread_create(&t, NULL, fn, NULL);
    if (term) {
        msleep(20);
        pthread_kill(t, SIGTERM);
    }
    pthread_join(t, NULL);
    printf("main: the process survived?\n");
    return 0;
}

/* ---- timer ---- */
static atomic_int timer_hits[NT + 1];
static atomic_int timer_wrong;
static int worker_tid[NT];
static atomic_int timer_target = -2;

static void timer_handler(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    int id = my_id;
    if (si->si_code != SI_TIMER) atomic_fetch_add(&timer_wrong, 1);
    if (id != atomic_load(&timer_target) && atomic_load(&timer_target) != -2) atomic_fetch_add(&timer_wrong, 1);
    atomic_fetch_add(&timer_hits[id + 1], 1);
}

static void *timer_worker(void *arg) {
    my_id = (int)(intptr_t)arg;
    worker_tid[my_id] = (int)syscall(SYS_gettid);
    /* Only worker 2 takes the process-directed SIGRTMIN+1. */
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGRTMIN + 1);
    pthread_sigmask(my_id == 2 ? SIG_UNBLOCK : SIG_BLOCK, &s, NULL);
    atomic_fetch_add(&ready, 1);
    while (!atomic_load(&quit)) msleep(1);
    return NULL;
}

/* The kernel's struct sigevent, so SIGEV_THREAD_ID works with any libc. */
struct ksigevent {
    union sigval value;
    int signo;
    int notify;
    int tid;
    int pad[11];
};

static int ktimer(int signo, int notify, int tid, long period_ns, int count) {
    struct ksigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.signo = signo;
    ev.notify = notify;
    ev.tid = tid;
    int id = -1;
    if (syscall(SYS_timer_create, CLOCK_MONOTONIC, &ev, &id) != 0) {
        printf("timer_create: %s\n", strerror(errno));
        return -1;
    }
    struct itimerspec its = {{0, period_ns}, {0, period_ns}};
    syscall(SYS_timer_settime, id, 0, &its, NULL);
    (void)count;
    return id;
}

static int mode_timer(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = timer_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGRTMIN, &sa, NULL);
    sigaction(SIGRTMIN + 1, &sa, NULL);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGRTMIN + 1);
    pthread_sigmask(SIG_BLOCK, &s, NULL); /* main never takes SIGRTMIN+1 */
    for (int i = 0; i < NT; i++) pthread_create(&threads[i], NULL, timer_worker, (void *)(intptr_t)i);
    while (atomic_load(&ready) < NT) msleep(1);
    for (int k = 0; k < NT; k++) {
        atomic_store(&timer_target, k);
        int before = atomic_load(&timer_hits[k + 1]);
        int id = ktimer(SIGRTMIN, 4 /* SIGEV_THREAD_ID */, worker_tid[k], 2000000, 5);
        while (atomic_load(&timer_hits[k + 1]) < before + 5) msleep(1);
        syscall(SYS_timer_delete, id);
        msleep(5);
        printf("SIGEV_THREAD_ID timer for thread %d: at least 5 expiries in it: true\n", k);
    }
    atomic_store(&timer_target, 2);
    int before = atomic_load(&timer_hits[3]);
    int id = ktimer(SIGRTMIN + 1, SIGEV_SIGNAL, 0, 2000000, 5);
    while (atomic_load(&timer_hits[3]) < before + 5) msleep(1);
    syscall(SYS_timer_delete, id);
    msleep(5);
    printf("SIGEV_SIGNAL timer: at least 5 expiries in the only thread that takes it: true\n");
    atomic_store(&quit, 1);
    for (int i = 0; i < NT; i++) pthread_join(threads[i], NULL);
    printf("main thread hits %d, wrong thread or si_code %d\n", atomic_load(&timer_hits[0]), atomic_load(&timer_wrong));
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "kill")) return mode_kill();
    if (!strcmp(mode, "mask")) return mode_mask();
    if (!strcmp(mode, "fatal")) return mode_fatal(crasher, 0);
    if (!strcmp(mode, "fatalterm")) return mode_fatal(idler, 1);
    if (!strcmp(mode, "fatalabort")) return mode_fatal(aborter, 0);
    if (!strcmp(mode, "timer")) return mode_timer();
    fprintf(stderr, "usage: st_threadsig kill|mask|fatal|fatalterm|fatalabort|timer\n");
    return 2;
}
