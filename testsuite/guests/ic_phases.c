/* An indirect call site whose targets change with the program's phase, as
 * CPython's _Py_Dealloc calls the tp_dealloc of the types freed at start-up
 * first and of ints in a loop later. Each phase calls through one site, by
 * turns, functions the phase before never called; the results show every
 * call reached its own function. Under bt-run the site's inline cache is
 * filled by the first phase and re-armed for the later ones. */
#include <stdio.h>
#include <stdlib.h>

typedef long (*op)(long);

static long add1(long x) { return x + 1; }
static long add3(long x) { return x + 3; }
static long mul3(long x) { return x * 3 % 1000003; }
static long mul5(long x) { return x * 5 % 1000003; }
static long sub7(long x) { return x - 7; }
static long xor9(long x) { return x ^ 9; }
static long neg(long x) { return -x; }
static long half(long x) { return x / 2; }

/* Not inlined: one call site for every phase. */
__attribute__((noinline)) static long run(op *ops, int nops, long x, long n) {
    for (long i = 0; i < n; i++) x = ops[i % nops](x) + (i & 1);
    return x;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 200000;
    op phases[][2] = {{add1, add3}, {mul3, mul5}, {sub7, xor9}, {neg, half}, {add3, mul3}};
    long x = 1;
    for (int p = 0; p < 5; p++) {
        x = run(phases[p], 2, x, p == 0 ? 10 : n);
        printf("phase %d: %ld\n", p, x);
    }
    /* Megamorphic: four targets by turns through the same site. */
    op four[] = {add1, xor9, mul5, sub7};
    x = run(four, 4, x, n);
    printf("four: %ld\n", x);
    return 0;
}
