/* Signal storms. st_storm MODE, MODE one of:
 *   compute  setitimer(ITIMER_REAL, 1 ms) into integer and floating-point
 *            compute loops; every chunk of work is checked against a
 *            reference computed before the storm
 *   read     the same storm into blocking reads from a pipe nobody writes,
 *            handler without SA_RESTART: every read ends with EINTR
 *   restart  the same storm into ONE blocking read, handler with SA_RESTART:
 *            the read is restarted after every signal and returns the byte
 *            the handler writes after the last one
 *   threads  the storm into 4 threads computing (process-directed SIGALRM)
 *   igoto    the storm into a loop of nothing but two indirect jumps to
 *            each other (each block's only way on is an indirect jump, and
 *            its test of the stop count is not taken until the end), so a
 *            translator must notice pending signals at indirect branches
 *   rt       a thread queues 3000 SIGRTMIN with sigqueue (values 0..2999) to
 *            the process while the main thread computes: real-time signals
 *            are queued, so every one must arrive, in order, then the
 *            SIGRTMIN+1 end marker
 * Only schedule-independent facts are printed. */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#define N_SIGNALS 300

static atomic_int count, extra, bad_code;
static int pipefd[2];
static int write_at_end;

static void disarm(void) {
    struct itimerval it = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &it, NULL);
}

static void arm(void) {
    struct itimerval it = {{0, 1000}, {0, 1000}};
    if (setitimer(ITIMER_REAL, &it, NULL)) perror("setitimer");
}

static void alarm_handler(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    int saved = errno;
    if (sig != SIGALRM || si->si_signo != SIGALRM || si->si_code != SI_KERNEL) atomic_fetch_add(&bad_code, 1);
    if (atomic_load(&count) < N_SIGNALS) {
        if (atomic_fetch_add(&count, 1) + 1 == N_SIGNALS) {
            disarm();
            if (write_at_end) {
                char c = 'x';
                if (write(pipefd[1], &c, 1) != 1) atomic_fetch_add(&bad_code, 1);
            }
        }
    } else {
        atomic_fetch_add(&extra, 1); /* one may already have been pending */
    }
    /* use the FPU and vector registers in the handler, too */
    volatile double d = 1.0;
    for (int i = 0; i < 20; i++) d = d * 1.5 + 0.25;
    errno = saved;
}

static void install(int sig, void (*fn)(int, siginfo_t *, void *), int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = fn;
    sa.sa_flags = SA_SIGINFO | flags;
    sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, NULL)) perror("sigaction");
}

__attribute__((noinline)) static uint64_t chunk_int(uint64_t x) {
    for (int i = 0; i < 3000; i++) {
        unsigned __int128 m = (unsigned __int128)x * 0x9E3779B97F4A7C15ULL;
        x = (uint64_t)m + (uint64_t)(m >> 64) + (uint64_t)i;
        x ^= x >> 29;
        x += (uint64_t)__builtin_popcountll(x) << (i & 15);
        if (x & 1) x = ~x;
    }
    return x;
}

__attribute__((noinline)) static double chunk_fp(double d) {
    double acc = 0;
    for (int i = 0; i < 3000; i++) {
        d = sqrt(d * 1.000001 + 0.5) + (double)i / 7.0;
        acc += d / (1.0 + (double)(i & 7));
    }
    return acc;
}

#define NSEEDS 16
static uint64_t ref_int[NSEEDS];
static double ref_fp[NSEEDS];

static void make_refs(void) {
    for (int i = 0; i < NSEEDS; i++) {
        ref_int[i] = chunk_int((uint64_t)i * 12345 + 1);
        ref_fp[i] = chunk_fp((double)i + 0.5);
    }
}

/* Runs verified chunks until `stop` says so; returns the number of wrong chunks. */
static long verified_compute(atomic_int *stop_count, int stop_at, long *chunks) {
    long bad = 0, n = 0;
    while (atomic_load(stop_count) < stop_at) {
        int i = (int)(n % NSEEDS);
        volatile uint64_t seed = (uint64_t)i * 12345 + 1;
        volatile double dseed = (double)i + 0.5;
        if (chunk_int(seed) != ref_int[i]) bad++;
        if (chunk_fp(dseed) != ref_fp[i]) bad++;
        n++;
    }
    *chunks = n;
    return bad;
}

static void report_storm(void) {
    printf("deliveries: %d (target %d), at most one more after disarming: %s, si_code SI_KERNEL every time: %s\n",
           atomic_load(&count), N_SIGNALS, atomic_load(&extra) <= 1 ? "yes" : "no",
           atomic_load(&bad_code) == 0 ? "yes" : "no");
}

static int mode_compute(void) {
    make_refs();
    install(SIGALRM, alarm_handler, SA_RESTART);
    arm();
    long chunks;
    long bad = verified_compute(&count, N_SIGNALS, &chunks);
    printf("compute: wrong chunks %ld, did some work: %s\n", bad, chunks > 0 ? "yes" : "no");
    report_storm();
    return 0;
}

/* Two labels that jump to each other through registers until `stop` reaches
 * `at`; returns the number of jumps. */
static long indirect_ping_pong(atomic_int *stop) {
    long n = 0;
    __asm__ volatile("lea 1f(%%rip), %%r8\n\t"
                     "lea 2f(%%rip), %%r9\n"
                     "1:\n\t"
                     "incq %0\n\t"
                     "cmpl %2, (%1)\n\t"
                     "jge 3f\n\t"
                     "jmp *%%r9\n"
                     "2:\n\t"
                     "incq %0\n\t"
                     "cmpl %2, (%1)\n\t"
                     "jge 3f\n\t"
                     "jmp *%%r8\n"
                     "3:\n"
                     : "+r"(n)
                     : "r"(stop), "i"(N_SIGNALS)
                     : "r8", "r9", "cc", "memory");
    return n;
}

static int mode_igoto(void) {
    install(SIGALRM, alarm_handler, SA_RESTART);
    arm();
    long n = indirect_ping_pong(&count);
    printf("igoto: did some work: %s\n", n > 0 ? "yes" : "no");
    report_storm();
    return 0;
}

static int mode_read(void) {
    if (pipe(pipefd)) return 1;
    install(SIGALRM, alarm_handler, 0);
    arm();
    long eintr = 0, other = 0;
    char c;
    while (atomic_load(&count) < N_SIGNALS) {
        ssize_t r = read(pipefd[0], &c, 1);
        if (r == -1 && errno == EINTR) eintr++;
        else other++;
    }
    printf("read without SA_RESTART: reads ended by EINTR: %s, reads ending otherwise: %ld, EINTRs <= deliveries: %s\n",
           eintr > 0 ? "some" : "none", other, eintr <= atomic_load(&count) ? "yes" : "no");
    report_storm();
    return 0;
}

static int mode_restart(void) {
    if (pipe(pipefd)) return 1;
    write_at_end = 1;
    install(SIGALRM, alarm_handler, SA_RESTART);
    arm();
    char c = 0;
    ssize_t r = read(pipefd[0], &c, 1);
    printf("read with SA_RESTART returned %zd (errno %s), byte '%c'\n", r, r < 0 ? strerror(errno) : "-", c);
    report_storm();
    return 0;
}

#define NTHREADS 4
static long thread_bad[NTHREADS], thread_chunks[NTHREADS];

static void *compute_thread(void *arg) {
    int id = (int)(intptr_t)arg;
    thread_bad[id] = verified_compute(&count, N_SIGNALS, &thread_chunks[id]);
    return NULL;
}

static int mode_threads(void) {
    make_refs();
    install(SIGALRM, alarm_handler, SA_RESTART);
    pthread_t th[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) pthread_create(&th[i], NULL, compute_thread, (void *)(intptr_t)i);
    arm();
    for (int i = 0; i < NTHREADS; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < NTHREADS; i++)
        printf("thread %d: wrong chunks %ld, did some work: %s\n", i, thread_bad[i], thread_chunks[i] > 0 ? "yes" : "no");
    report_storm();
    return 0;
}

#define RT_COUNT 3000
static atomic_int rt_received, rt_misordered, rt_bad_info, rt_done;
static pid_t my_pid;

static void rt_handler(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    if (sig == SIGRTMIN) {
        int n = atomic_load(&rt_received);
        if (si->si_value.sival_int != n) atomic_fetch_add(&rt_misordered, 1);
        if (si->si_code != SI_QUEUE || si->si_pid != my_pid || si->si_signo != sig) atomic_fetch_add(&rt_bad_info, 1);
        atomic_fetch_add(&rt_received, 1);
    } else {
        atomic_store(&rt_done, 1);
    }
}

static atomic_int sender_again;

static void *rt_sender(void *arg) {
    (void)arg;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGRTMIN);
    sigaddset(&s, SIGRTMIN + 1);
    pthread_sigmask(SIG_BLOCK, &s, NULL); /* so the main thread takes them all */
    for (int i = 0; i < RT_COUNT; i++) {
        union sigval v = {.sival_int = i};
        while (sigqueue(my_pid, SIGRTMIN, v) != 0) {
            if (errno != EAGAIN) {
                perror("sigqueue");
                exit(1);
            }
            atomic_fetch_add(&sender_again, 1);
            sched_yield();
        }
    }
    union sigval v = {.sival_int = -1};
    sigqueue(my_pid, SIGRTMIN + 1, v);
    return NULL;
}

static int mode_rt(void) {
    my_pid = getpid();
    make_refs();
    install(SIGRTMIN, rt_handler, SA_RESTART);
    install(SIGRTMIN + 1, rt_handler, SA_RESTART);
    pthread_t th;
    pthread_create(&th, NULL, rt_sender, NULL);
    long chunks;
    long bad = verified_compute(&rt_done, 1, &chunks);
    pthread_join(th, NULL);
    printf("rt: received %d of %d, out of order %d, wrong siginfo %d, wrong chunks %ld\n", atomic_load(&rt_received),
           RT_COUNT, atomic_load(&rt_misordered), atomic_load(&rt_bad_info), bad);
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "compute")) return mode_compute();
    if (!strcmp(mode, "read")) return mode_read();
    if (!strcmp(mode, "restart")) return mode_restart();
    if (!strcmp(mode, "threads")) return mode_threads();
    if (!strcmp(mode, "rt")) return mode_rt();
    if (!strcmp(mode, "igoto")) return mode_igoto();
    fprintf(stderr, "usage: st_storm compute|read|restart|threads|rt|igoto\n");
    return 2;
}
