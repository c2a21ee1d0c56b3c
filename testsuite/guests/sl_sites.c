/* Indirect branches of each kind, N times each: `sl_sites N` makes N
 * indirect calls (through a function pointer), N returns from them and N
 * indirect jumps (a computed goto), around a fixed amount of other work,
 * and prints one bit of a checksum (the same work whatever N). `--stats` counts lookups per kind of site: the
 * difference between two values of N is exactly that. */
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline)) static long leaf(long x) {
    __asm__ volatile("" ::: "memory");
    return x * 7 + 3;
}

static long (*volatile fp)(long) = leaf;

int main(int argc, char **argv) {
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
