/* qsort/bsearch with several comparators and a table of function pointers. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 200000

static uint64_t rng = 0x9E3779B97F4A7C15ULL;
static uint32_t next_u32(void) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

static int cmp_asc(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}
static int cmp_desc(const void *a, const void *b) { return cmp_asc(b, a); }
static int cmp_mod(const void *a, const void *b) {
    int x = *(const int *)a % 1000, y = *(const int *)b % 1000;
    if (x != y) return (x > y) - (x < y);
    return cmp_asc(a, b);
}

struct rec { char name[12]; int age; double score; };
static int cmp_rec(const void *a, const void *b) {
    const struct rec *p = a, *q = b;
    if (p->age != q->age) return p->age - q->age;
    if (p->score != q->score) return p->score < q->score ? 1 : -1;
    return strcmp(p->name, q->name);
}
static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static uint64_t checksum(const int *a, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint32_t)a[i]) * 1099511628211ULL;
    return h;
}

typedef long (*op_fn)(long, long);
static long op_add(long a, long b) { return a + b; }
static long op_sub(long a, long b) { return a - b; }
static long op_mul(long a, long b) { return a * b; }
static long op_xor(long a, long b) { return a ^ b; }
static long op_shl(long a, long b) { return a << (b & 7); }
static long op_min(long a, long b) { return a < b ? a : b; }
static long op_max(long a, long b) { return a > b ? a : b; }
static long op_avg(long a, long b) { return (a + b) / 2; }
static op_fn const ops[8] = {op_add, op_sub, op_mul, op_xor, op_shl, op_min, op_max, op_avg};

int main(void) {
    int *a = malloc(N * sizeof *a);
    if (!a) return 3;
    for (int i = 0; i < N; i++) a[i] = (int)(next_u32() % 10000000) - 5000000;

    int (*cmps[])(const void *, const void *) = {cmp_asc, cmp_desc, cmp_mod};
    const char *names[] = {"asc", "desc", "mod"};
    for (int c = 0; c < 3; c++) {
        qsort(a, N, sizeof *a, cmps[c]);
        printf("%-4s first %d %d %d last %d checksum %016llx\n", names[c], a[0], a[1], a[2], a[N - 1],
               (unsigned long long)checksum(a, N));
    }
    qsort(a, N, sizeof *a, cmp_asc);
    int found = 0;
    for (int k = -5000000; k < 5000000; k += 997) found += bsearch(&k, a, N, sizeof *a, cmp_asc) != NULL;
    printf("bsearch found %d\n", found);

    struct rec *r = malloc(5000 * sizeof *r);
    if (!r) return 3;
    for (int i = 0; i < 5000; i++) {
        snprintf(r[i].name, sizeof r[i].name, "n%05u", next_u32() % 100000);
        r[i].age = (int)(next_u32() % 90);
        r[i].score = (next_u32() % 1000) / 8.0;
    }
    qsort(r, 5000, sizeof *r, cmp_rec);
    for (int i = 0; i < 5000; i += 997) printf("rec %4d: %s %2d %.3f\n", i, r[i].name, r[i].age, r[i].score);

    static char words[3000][16];
    static char *wp[3000];
    for (int i = 0; i < 3000; i++) {
        int len = 3 + (int)(next_u32() % 10);
        for (int j = 0; j < len; j++) words[i][j] = (char)('a' + next_u32() % 26);
        words[i][len] = 0;
        wp[i] = words[i];
    }
    qsort(wp, 3000, sizeof wp[0], cmp_str);
    printf("words: %s %s %s ... %s\n", wp[0], wp[1], wp[2], wp[2999]);

    long acc = 1;
    for (long i = 0; i < 1000000; i++) acc = ops[(i * 7 + (acc & 3)) & 7](acc, i) & 0xffffffffffL;
    printf("ops acc = %ld\n", acc);
    free(a);
    free(r);
    return 0;
}
