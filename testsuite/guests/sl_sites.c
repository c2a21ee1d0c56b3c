/* Indirect branches of each kind, N times each: `sl_sites N` makes N
 * indirect calls (through a function pointer), N returns from them and N
 * indirect jumps (a computed goto), around a fixed amount of other work,
 * and prints one bit of a checksum (the same work whatever N). `--stats`
 * counts lookups per kind of site: the difference between two values of N
 * is that.
 * `sl_sites collide N` calls two functions 64 KiB apart (the same low 16
 * bits: one home slot in bt-run's indirect-branch table) by turns. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) static long leaf(long x) {
    __asm__ volatile("" ::: "memory");
    return x * 7 + 3;
}

static long (*volatile fp)(long) = leaf;

__attribute__((noinline, aligned(65536))) static long left(long x) {
    __asm__ volatile("" ::: "memory");
    return x + 1;
}

__attribute__((noinline, aligned(65536))) static long right(long x) {
    __asm__ volatile("" ::: "memory");
    return x + 2;
}

static long (*volatile pair[2])(long) = {left, right};

int main(int argc, char **argv) {
    if (argc > 2 && !strcmp(argv[1], "collide")) {
        long n = atol(argv[2]), s = 0;
        if (((unsigned long)left ^ (unsigned long)right) & 0xffff)
            return 3; /* not laid out as wanted */
        for (long i = 0; i < n; i++)
            s = pair[i & 1](s);
        printf("%ld\n", s);
        return 0;
    }
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
