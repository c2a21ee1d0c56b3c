/* A shared library built twice from this source (build.rs): libdl_a.so with
 * -DVARIANT=1 and libdl_b.so with -DVARIANT=2. Both builds have the same
 * layout (same instructions, different constants), so when dl_reuse.c
 * unloads one and loads the other at the same address (every function at
 * the same offset, different code there), a translator that
 * kept stale translations of the first would compute the first's results. */
#include <stdio.h>

#ifndef VARIANT
#error "build with -DVARIANT=1 or -DVARIANT=2"
#endif

#if VARIANT == 1
#define NAME "lib A"
#define MUL 3
#define ADD 11
#define K0 101
#define K1 103
#define K2 107
#define K3 109
#define K4 113
#define K5 127
#define K6 131
#define K7 137
#else
#define NAME "lib B"
#define MUL 5
#define ADD 17
#define K0 61
#define K1 67
#define K2 71
#define K3 73
#define K4 79
#define K5 83
#define K6 89
#define K7 97
#endif

static long calls;

__attribute__((noinline)) static long mix(long x) {
    return (x ^ (x >> 3)) * MUL + ADD;
}

/* A dense switch: compiled to a jump table, i.e. an indirect jump whose
 * targets are inside this library. */
__attribute__((noinline)) static long pick(long x) {
    switch (x & 7) {
    case 0: return x + K0;
    case 1: return x * 2 - K1;
    case 2: return (x << 2) ^ K2;
    case 3: return x - K3;
    case 4: return (x * K4) >> 1;
    case 5: return x | K5;
    case 6: return (x & 0xff) + K6;
    default: return K7 - x;
    }
}

long dl_compute(long x) {
    calls++;
    return mix(x) + pick(x);
}

long dl_calls(void) {
    return calls;
}

const char *dl_name(void) {
    return NAME;
}

/* Called through a function pointer handed back to the program. */
static long twice(long x) {
    return 2 * x + MUL;
}

long (*dl_callback(void))(long) {
    return twice;
}

__attribute__((constructor)) static void loaded(void) {
    printf("  constructor of %s\n", NAME);
}

__attribute__((destructor)) static void unloaded(void) {
    printf("  destructor of %s (%ld calls)\n", NAME, calls);
}
