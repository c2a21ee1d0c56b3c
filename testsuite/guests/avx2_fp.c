/* AVX2/FMA floating point and integer vectors, compiled per function with
 * target attributes and only called when the CPU supports them. */
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>

#define N 1027

static double a[N], b[N], c[N];
static int32_t ia[N], ib[N];

__attribute__((target("avx2,fma"), noinline)) static double fma_dot(const double *x, const double *y, int n) {
    __m256d acc0 = _mm256_setzero_pd(), acc1 = _mm256_setzero_pd();
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        acc0 = _mm256_fmadd_pd(_mm256_loadu_pd(x + i), _mm256_loadu_pd(y + i), acc0);
        acc1 = _mm256_fmadd_pd(_mm256_loadu_pd(x + i + 4), _mm256_loadu_pd(y + i + 4), acc1);
    }
    double t[4];
    _mm256_storeu_pd(t, _mm256_add_pd(acc0, acc1));
    double s = (t[0] + t[1]) + (t[2] + t[3]);
    for (; i < n; i++) s += x[i] * y[i];
    return s;
}

/* Plain loop that gcc auto-vectorizes with ymm registers. */
__attribute__((target("avx2,fma"), optimize("O3"), noinline)) static void poly(double *out, const double *x, int n) {
    for (int i = 0; i < n; i++) out[i] = ((x[i] * 0.5 + 1.25) * x[i] - 3.0) * x[i] + 0.125;
}

__attribute__((target("avx2"), noinline)) static double gather_sum(const double *base, const int32_t *idx, int n) {
    __m256d acc = _mm256_setzero_pd();
    for (int i = 0; i + 4 <= n; i += 4) {
        __m128i vi = _mm_loadu_si128((const __m128i *)(idx + i));
        acc = _mm256_add_pd(acc, _mm256_i32gather_pd(base, vi, 8));
    }
    double t[4];
    _mm256_storeu_pd(t, acc);
    return t[0] + t[1] + t[2] + t[3];
}

__attribute__((target("avx2"), noinline)) static uint64_t int_ops(const int32_t *x, const int32_t *y, int n) {
    __m256i acc = _mm256_setzero_si256();
    const __m256i shuf = _mm256_setr_epi8(3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12, 0, 1, 2, 3, 4, 5, 6,
                                          7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (int i = 0; i + 8 <= n; i += 8) {
        __m256i vx = _mm256_loadu_si256((const __m256i *)(x + i));
        __m256i vy = _mm256_loadu_si256((const __m256i *)(y + i));
        __m256i m = _mm256_mullo_epi32(vx, vy);
        m = _mm256_shuffle_epi8(m, shuf);
        m = _mm256_permutevar8x32_epi32(m, _mm256_setr_epi32(7, 0, 6, 1, 5, 2, 4, 3));
        m = _mm256_xor_si256(m, _mm256_srli_epi64(vx, 3));
        m = _mm256_max_epi32(m, _mm256_sub_epi32(vy, vx));
        acc = _mm256_add_epi64(acc, _mm256_cvtepi32_epi64(_mm256_castsi256_si128(m)));
        acc = _mm256_add_epi64(acc, _mm256_cvtepi32_epi64(_mm256_extracti128_si256(m, 1)));
    }
    uint64_t t[4];
    _mm256_storeu_si256((__m256i *)t, acc);
    return t[0] ^ (t[1] << 1) ^ (t[2] << 2) ^ (t[3] << 3);
}

__attribute__((target("avx2"), noinline)) static int movemask_count(const double *x, int n) {
    int count = 0;
    for (int i = 0; i + 4 <= n; i += 4)
        count += __builtin_popcount((unsigned)_mm256_movemask_pd(_mm256_cmp_pd(_mm256_loadu_pd(x + i),
                                                                                _mm256_setzero_pd(), _CMP_GT_OQ)));
    return count;
}

int main(void) {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
        printf("avx2/fma not supported on this CPU\n");
        return 0;
    }
    uint64_t s = 0x2545F4914F6CDD1DULL;
    for (int i = 0; i < N; i++) {
        s ^= s >> 12; s ^= s << 25; s ^= s >> 27;
        uint64_t r = s * 0x2545F4914F6CDD1DULL;
        a[i] = (double)(int64_t)(r % 200001) / 997.0 - 100.0;
        b[i] = (double)((r >> 24) % 5000) / 131.0;
        ia[i] = (int32_t)(r >> 11);
        ib[i] = (int32_t)(r >> 29) - 12345;
    }
    double d = fma_dot(a, b, N);
    printf("fma_dot %.17g %a\n", d, d);
    poly(c, a, N);
    double cs = 0;
    for (int i = 0; i < N; i++) cs += c[i] / (i + 1);
    printf("poly    %.17g %a\n", cs, cs);
    int32_t idx[N];
    for (int i = 0; i < N; i++) idx[i] = (int32_t)((i * 37u + 11u) % N);
    double g = gather_sum(a, idx, N);
    printf("gather  %.17g %a\n", g, g);
    printf("int_ops %016llx\n", (unsigned long long)int_ops(ia, ib, N));
    printf("positive lanes %d\n", movemask_count(a, N));
    return 0;
}
