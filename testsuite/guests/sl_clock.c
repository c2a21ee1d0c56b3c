/* Clocks read through libc (the vDSO natively) against the kernel's answer
 * to a raw clock_gettime system call taken right before and right after.
 *
 *   sl_clock SAMPLES CPUTIME_CALLS
 *
 * For CLOCK_MONOTONIC and CLOCK_REALTIME, SAMPLES times: raw syscall, libc,
 * raw syscall; the libc value must lie between the two kernel values
 * (neither ahead nor behind the kernel) and be less than 1 ms from each. A
 * sample that takes longer than 1 ms in all (the thread was preempted) is
 * retried, up to 20 times; a clock that is wrong fails every retry. The libc
 * values must also never go backwards and have fine resolution (not a
 * cached or coarse clock).
 *
 * Then CPUTIME_CALLS reads of CLOCK_PROCESS_CPUTIME_ID through libc (the
 * vDSO passes those to the kernel), each followed by a raw one: never
 * backwards, never ahead of the kernel, and advancing while the program
 * burns CPU. Those calls must reach the kernel as clock_gettime system
 * calls: 2 x CPUTIME_CALLS of them with CLOCK_PROCESS_CPUTIME_ID (the test
 * counts them in strace's and bt-run's traces). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define BOUND_NS 1000000LL /* 1 ms */
#define RETRIES 20

static long long ns(const struct timespec *t) {
    return (long long)t->tv_sec * 1000000000LL + t->tv_nsec;
}

static long long raw(clockid_t id) {
    struct timespec t;
    if (syscall(SYS_clock_gettime, id, &t) != 0) {
        perror("clock_gettime syscall");
        exit(1);
    }
    return ns(&t);
}

static long long via_libc(clockid_t id) {
    struct timespec t;
    if (clock_gettime(id, &t) != 0) {
        perror("clock_gettime");
        exit(1);
    }
    return ns(&t);
}

static int cmp(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

static int check_clock(const char *name, clockid_t id, long samples) {
    long long *vals = malloc(sizeof(long long) * (size_t)samples);
    long ahead = 0, behind = 0, too_far = 0, backwards = 0;
    long long prev = 0, worst = 0;
    for (long i = 0; i < samples; i++) {
        long long before, v, after_;
        int tries = 0;
        for (;;) {
            before = raw(id);
            v = via_libc(id);
            after_ = raw(id);
            if (after_ - before < BOUND_NS || ++tries == RETRIES)
                break;
        }
        if (v < before)
            behind++;
        if (v > after_)
            ahead++;
        long long d1 = v - before, d2 = after_ - v;
        long long d = d1 > d2 ? d1 : d2;
        if (d < 0)
            d = -d;
        if (d >= BOUND_NS)
            too_far++;
        if (d > worst)
            worst = d;
        if (i > 0 && v < prev)
            backwards++;
        prev = v;
        vals[i] = v;
    }
    qsort(vals, (size_t)samples, sizeof vals[0], cmp);
    long distinct = samples > 0;
    for (long i = 1; i < samples; i++)
        distinct += vals[i] != vals[i - 1];
    free(vals);
    int fine = distinct * 2 > samples; /* consecutive reads differ */
    printf("%s: %ld samples; libc behind the kernel: %ld, ahead of the kernel: %ld, "
           "1 ms or more away: %ld, backwards: %ld; fine resolution: %s\n",
           name, samples, behind, ahead, too_far, backwards, fine ? "yes" : "no");
    if (behind || ahead || too_far || backwards || !fine) {
        fprintf(stderr, "%s: worst distance %lld ns, %ld distinct values\n", name, worst, distinct);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: sl_clock SAMPLES CPUTIME_CALLS\n");
        return 2;
    }
    long samples = strtol(argv[1], NULL, 10), calls = strtol(argv[2], NULL, 10);
    int bad = 0;
    bad |= check_clock("CLOCK_MONOTONIC", CLOCK_MONOTONIC, samples);
    bad |= check_clock("CLOCK_REALTIME", CLOCK_REALTIME, samples);

    long backwards = 0, ahead = 0;
    long long prev = 0, first = -1, last = 0;
    volatile unsigned long sink = 0;
    for (long i = 0; i < calls; i++) {
        for (int k = 0; k < 20000; k++)
            sink += (unsigned long)k * (unsigned long)i;
        long long v = via_libc(CLOCK_PROCESS_CPUTIME_ID);
        long long r = raw(CLOCK_PROCESS_CPUTIME_ID);
        if (v > r)
            ahead++;
        if (v < prev)
            backwards++;
        if (first < 0)
            first = v;
        prev = last = v;
    }
    int advanced = calls < 2 || last > first;
    printf("CLOCK_PROCESS_CPUTIME_ID: %ld libc reads; ahead of the kernel: %ld, backwards: %ld; advances: %s\n",
           calls, ahead, backwards, advanced ? "yes" : "no");
    bad |= ahead || backwards || !advanced;
    return bad;
}
