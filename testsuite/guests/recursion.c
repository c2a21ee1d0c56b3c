/* Recursion: fib, ackermann, mutual recursion, hanoi, permutations, deep stack. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) static long fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }

__attribute__((noinline)) static unsigned long ack(unsigned long m, unsigned long n) {
    if (m == 0) return n + 1;
    if (n == 0) return ack(m - 1, 1);
    return ack(m - 1, ack(m, n - 1));
}

static int is_odd(unsigned n);
__attribute__((noinline)) static int is_even(unsigned n) { return n == 0 ? 1 : is_odd(n - 1); }
__attribute__((noinline)) static int is_odd(unsigned n) { return n == 0 ? 0 : is_even(n - 1); }

static unsigned long hanoi_sum;
__attribute__((noinline)) static unsigned long hanoi(int n, int from, int to, int via) {
    if (n == 0) return 0;
    unsigned long moves = hanoi(n - 1, from, via, to);
    hanoi_sum = hanoi_sum * 31 + (unsigned long)(from * 3 + to);
    return moves + 1 + hanoi(n - 1, via, to, from);
}

static unsigned long perm_hash;
static unsigned long perm_count;
__attribute__((noinline)) static void permute(char *a, int k, int n) {
    if (k == n) {
        perm_count++;
        for (int i = 0; i < n; i++) perm_hash = perm_hash * 131 + (unsigned char)a[i];
        return;
    }
    for (int i = k; i < n; i++) {
        char t = a[k]; a[k] = a[i]; a[i] = t;
        permute(a, k + 1, n);
        t = a[k]; a[k] = a[i]; a[i] = t;
    }
}

/* A deep, non-tail recursion that keeps a small array on every frame. */
__attribute__((noinline)) static unsigned long deep(int depth, unsigned long seed) {
    volatile unsigned long frame[4] = {seed, seed ^ 0x55, seed * 3, (unsigned long)depth};
    if (depth == 0) return frame[0] + frame[3];
    unsigned long below = deep(depth - 1, seed * 6364136223846793005UL + 1442695040888963407UL);
    return below ^ (frame[1] + frame[2]);
}

/* Recursion through a function pointer (indirect call + return). */
typedef long (*rec_fn)(long, long);
static long gcd_ptr(long a, long b);
static rec_fn volatile gcd_fn = gcd_ptr;
static long gcd_ptr(long a, long b) { return b == 0 ? a : gcd_fn(b, a % b); }

int main(void) {
    for (int i = 0; i <= 30; i += 5) printf("fib(%d) = %ld\n", i, fib(i));
    for (unsigned long m = 0; m <= 3; m++)
        for (unsigned long n = 0; n <= 5; n++) printf("ack(%lu,%lu) = %lu\n", m, n, ack(m, n));
    printf("ack(3,8) = %lu\n", ack(3, 8));
    printf("is_even(10001) = %d, is_odd(7777) = %d\n", is_even(10001), is_odd(7777));
    unsigned long moves = hanoi(18, 1, 3, 2);
    printf("hanoi(18): %lu moves, hash %016lx\n", moves, hanoi_sum);
    char letters[] = "abcdefgh";
    permute(letters, 0, (int)strlen(letters));
    printf("permutations: %lu, hash %016lx\n", perm_count, perm_hash);
    printf("deep(50000) = %016lx\n", deep(50000, 1));
    long g = 0;
    for (long a = 1; a < 3000; a += 7) g += gcd_fn(a * 9973, 1234567 + a);
    printf("gcd sum = %ld\n", g);
    return 0;
}
