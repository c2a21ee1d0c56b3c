/* Benchmark: qsort of N ints with an indirect comparator. Usage: bench_qsort [N] (default 2000000). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static int cmp(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 2000000;
    int *a = malloc((size_t)n * sizeof *a);
    if (!a) return 2;
    uint64_t s = 0x9E3779B97F4A7C15ULL;
    for (long i = 0; i < n; i++) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        a[i] = (int)(s >> 33);
    }
    qsort(a, (size_t)n, sizeof *a, cmp);
    uint64_t h = 0;
    for (long i = 0; i < n; i++) h = h * 31 + (uint32_t)a[i];
    printf("sorted %ld ints, min %d max %d hash %016llx\n", n, a[0], a[n - 1], (unsigned long long)h);
    free(a);
    return 0;
}
