/* fork shares translated code copy-on-write: after each fork the parent and
 * its child (and a grandchild) run, at the same time, code the other has not
 * run yet. Each links exits and fills inline caches in code translated
 * before the fork, and translates new code at the same cache offsets as the
 * other, so a write of one seen by the other sends it into foreign code.
 * A thread of the parent keeps running translated code through every fork.
 * Usage: cow_fork [ROUNDS] (default 6). Output is compared with native. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define F(n)                                                                  \
    static __attribute__((noinline)) unsigned long f##n(unsigned long x) {    \
        for (int i = 0; i < 3 + (n) % 5; i++)                                 \
            x = x * (2 * (n) + 3) + (x >> ((n) % 7 + 1)) + (n);               \
        return x;                                                             \
    }
#define F8(a) F(a##0) F(a##1) F(a##2) F(a##3) F(a##4) F(a##5) F(a##6) F(a##7)
F8(0) F8(1) F8(2) F8(3) F8(4) F8(5) F8(6) F8(7)
#define R8(a) f##a##0, f##a##1, f##a##2, f##a##3, f##a##4, f##a##5, f##a##6, f##a##7,

static unsigned long (*const fs[64])(unsigned long) = {R8(0) R8(1) R8(2) R8(3) R8(4) R8(5) R8(6) R8(7)};

/* fs[from..to) in turn, through one indirect call site. */
static unsigned long run(int from, int to, unsigned long x) {
    for (int r = 0; r < 300; r++)
        for (int i = from; i < to; i++)
            x = fs[i](x) ^ (unsigned long)r;
    return x;
}

static atomic_int stop;
static unsigned long spun;

static void *spin(void *arg) {
    (void)arg;
    unsigned long x = 5;
    while (!atomic_load(&stop))
        x = run(0, 4, x);
    spun = x;
    return NULL;
}

static void put(int fd, unsigned long v) {
    if (write(fd, &v, sizeof v) != sizeof v)
        _exit(90);
}

static unsigned long get(int fd) {
    unsigned long v = 0;
    if (read(fd, &v, sizeof v) != sizeof v)
        exit(91);
    return v;
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 6;
    if (rounds < 1 || rounds > 7)
        rounds = 6;
    pthread_t t;
    if (pthread_create(&t, NULL, spin, NULL) != 0)
        return 92;
    unsigned long acc = run(0, 8, 1);
    for (int round = 0; round < rounds; round++) {
        int p[2];
        if (pipe(p) != 0)
            return 93;
        pid_t pid = fork();
        if (pid < 0)
            return 94;
        if (pid == 0) {
            /* The child: functions the parent has not called, then a
             * grandchild that calls all of them. */
            unsigned long c = run(8 + round * 8, 16 + round * 8, round);
            pid_t g = fork();
            if (g == 0) {
                put(p[1], run(0, 64, round + 100));
                _exit(0);
            }
            int gs = -1;
            if (g < 0 || waitpid(g, &gs, 0) != g || !WIFEXITED(gs) || WEXITSTATUS(gs) != 0)
                _exit(95);
            put(p[1], c);
            _exit(round + 10);
        }
        /* The parent, meanwhile: other functions, from the other end. */
        unsigned long m = run(56 - round * 8, 64 - round * 8, round + 7);
        unsigned long gc = get(p[0]), c = get(p[0]);
        int st = -1;
        if (waitpid(pid, &st, 0) != pid)
            return 96;
        /* And now what the child ran, translated again on this side. */
        unsigned long again = run(8 + round * 8, 16 + round * 8, round);
        printf("round %d: parent %lx child %lx (%s) grandchild %lx status %d\n", round, m, c,
               c == again ? "same here" : "DIFFERENT here", gc, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        close(p[0]);
        close(p[1]);
        acc ^= m ^ c ^ gc;
    }
    atomic_store(&stop, 1);
    pthread_join(t, NULL);
    printf("acc %lx spun %s\n", acc, spun ? "yes" : "no");
    return 0;
}
