/* Indirect branches of each kind, N times each: `sl_sites N` makes N
 * indirect calls (through a function pointer), N returns from them and N
 * indirect jumps (a computed goto), around a fixed amount of other work,
 * and prints one bit of a checksum (the same work whatever N). `--stats`
 * counts lookups per kind of site: the difference between two values of N
 * is that.
 * `sl_sites collide N` jumps by turns to two functions 64 KiB apart (the
 * same low 16 bits: one home slot in bt-run's indirect-branch table) from
 * one indirect `jmp` (a sibling call through a pointer).
 * `sl_sites poly K N` makes N indirect calls from one site to K different
 * functions in turn (an inline cache holds the first few).
 * `sl_sites plt N` calls strlen N times: through the PLT where the C
 * library is linked dynamically or resolves it at load time (a jump
 * through a rip-relative pointer).
 * `sl_sites jit N` calls code it writes into an RWX page through one site,
 * rewriting it between rounds (a translation an inline cache jumps to goes
 * stale). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

__attribute__((noinline)) static long leaf(long x) {
    __asm__ volatile("" ::: "memory");
    return x * 7 + 3;
}

static long (*volatile fp)(long) = leaf;

__attribute__((noinline)) static long leaf2(long x) {
    __asm__ volatile("" ::: "memory");
    return x ^ 5;
}

/* The same code up to the call, so leaf2 returns to the same offset in
 * each, 64 KiB apart. */
__attribute__((noinline, aligned(65536))) static long left(long x) {
    __asm__ volatile("" ::: "memory");
    return leaf2(x) + 1;
}

__attribute__((noinline, aligned(65536))) static long right(long x) {
    __asm__ volatile("" ::: "memory");
    return leaf2(x) + 2;
}

static long (*volatile pair[2])(long) = {left, right};

/* A sibling call: `jmp *%rax` to left or right. */
__attribute__((noinline)) static long hop(long i, long s) {
    return pair[i & 1](s);
}

#define F(k) \
    __attribute__((noinline)) static long f##k(long x) { \
        __asm__ volatile("" ::: "memory"); \
        return x * (k + 3) + k + 1; \
    }
F(0) F(1) F(2) F(3) F(4) F(5)
static long (*volatile fns[6])(long) = {f0, f1, f2, f3, f4, f5};

/* Code at `at`: mov eax, k; ret. */
static void emit(unsigned char *at, int k) {
    at[0] = 0xb8;
    memcpy(at + 1, &k, 4);
    at[5] = 0xc3;
}

static int jit(long n) {
    unsigned char *m = mmap(0, 8192, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        perror("mmap");
        return 2;
    }
    long s = 0;
    for (int round = 0; round < 6; round++) {
        emit(m, round);
        emit(m + 4096, 100 + round);
        int (*volatile f[2])(void) = {(int (*)(void))m, (int (*)(void))(m + 4096)};
        for (long i = 0; i < n; i++)
            s = s * 3 + f[i & 1]();
        printf("round %d: %ld\n", round, s);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 2 && !strcmp(argv[1], "collide")) {
        long n = atol(argv[2]), s = 0;
        if (((unsigned long)left ^ (unsigned long)right) & 0xffff)
            return 3; /* not laid out as wanted */
        for (long i = 0; i < n; i++)
            s = hop(i, s);
        printf("%ld\n", s);
        return 0;
    }
    if (argc > 3 && !strcmp(argv[1], "poly")) {
        long k = atol(argv[2]), n = atol(argv[3]), s = 0;
        if (k < 1 || k > 6)
            return 2;
        for (long i = 0; i < n; i++)
            s = fns[i % k](s) & 0xffffffffffff;
        printf("%ld\n", s);
        return 0;
    }
    if (argc > 2 && !strcmp(argv[1], "plt")) {
        static char buf[64] = "a string of some length";
        long n = atol(argv[2]);
        size_t t = 0;
        for (long i = 0; i < n; i++) {
            t += strlen(buf + (i & 3));
            __asm__ volatile("" ::: "memory");
        }
        printf("%zu\n", t);
        return 0;
    }
    if (argc > 2 && !strcmp(argv[1], "jit"))
        return jit(atol(argv[2]));
    long n = argc > 1 ? atol(argv[1]) : 1000;
    long s = 0;
    static void *const targets[2] = {&&even, &&odd};
    for (long i = 0; i < n; i++) {
        s += fp(i);
        void *volatile t = targets[i & 1];
        goto *t;
    even:
        s ^= 1;
        continue;
    odd:
        s += 2;
    }
    printf("%ld\n", s & 1);
    return 0;
}
