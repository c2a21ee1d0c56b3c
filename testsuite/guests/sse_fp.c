/* SSE/SSE2 floating point: intrinsics, auto-vectorized loops, MXCSR modes. */
#include <emmintrin.h>
#include <fenv.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#define N 1003 /* not a multiple of the vector width: exercises the tails */

static double xs[N], ys[N];
static float fs[N];

__attribute__((noinline, optimize("O3"))) static void saxpy(double a, double *y, const double *x, int n) {
    for (int i = 0; i < n; i++) y[i] = a * x[i] + y[i];
}

__attribute__((noinline, optimize("O3"))) static float sumsq_f(const float *v, int n) {
    float s = 0;
    for (int i = 0; i < n; i++) s += v[i] * v[i];
    return s;
}

__attribute__((noinline)) static double dot_sse2(const double *a, const double *b, int n) {
    __m128d acc = _mm_setzero_pd();
    int i = 0;
    for (; i + 2 <= n; i += 2) acc = _mm_add_pd(acc, _mm_mul_pd(_mm_loadu_pd(a + i), _mm_loadu_pd(b + i)));
    double lanes[2];
    _mm_storeu_pd(lanes, acc);
    double s = lanes[0] + lanes[1];
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

__attribute__((noinline)) static void minmax_sqrt(const double *a, int n, double out[3]) {
    __m128d mn = _mm_set1_pd(INFINITY), mx = _mm_set1_pd(-INFINITY), sq = _mm_setzero_pd();
    for (int i = 0; i + 2 <= n; i += 2) {
        __m128d v = _mm_loadu_pd(a + i);
        mn = _mm_min_pd(mn, v);
        mx = _mm_max_pd(mx, v);
        sq = _mm_add_pd(sq, _mm_sqrt_pd(_mm_andnot_pd(_mm_set1_pd(-0.0), v)));
    }
    double t[2];
    _mm_storeu_pd(t, mn); out[0] = t[0] < t[1] ? t[0] : t[1];
    _mm_storeu_pd(t, mx); out[1] = t[0] > t[1] ? t[0] : t[1];
    _mm_storeu_pd(t, sq); out[2] = t[0] + t[1];
}

int main(void) {
    uint64_t s = 88172645463325252ULL;
    for (int i = 0; i < N; i++) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        xs[i] = (double)(int64_t)(s % 2000001) / 1000.0 - 1000.0;
        ys[i] = sin((double)i) * 100.0;
        fs[i] = (float)((s >> 20) % 1000) / 37.0f;
    }
    printf("dot      %.17g %a\n", dot_sse2(xs, ys, N), dot_sse2(xs, ys, N));
    saxpy(1.5, ys, xs, N);
    double c = 0;
    for (int i = 0; i < N; i++) c += ys[i] * (i + 1);
    printf("saxpy    %.17g %a\n", c, c);
    printf("sumsq_f  %.9g %a\n", sumsq_f(fs, N), sumsq_f(fs, N));
    double mm[3];
    minmax_sqrt(xs, N, mm);
    printf("min %.17g max %.17g sumsqrt %.17g\n", mm[0], mm[1], mm[2]);

    /* Packed integer ops in SSE2 registers. */
    __m128i a = _mm_set_epi32(1, -2, 300000, -40000000), b = _mm_set_epi32(7, 7, -7, 65536);
    int r[4];
    _mm_storeu_si128((__m128i *)r, _mm_add_epi32(_mm_mullo_epi16(a, b), _mm_srai_epi32(a, 3)));
    printf("epi32 %d %d %d %d\n", r[0], r[1], r[2], r[3]);
    _mm_storeu_si128((__m128i *)r, _mm_sad_epu8(a, b));
    printf("sad %d %d %d %d\n", r[0], r[1], r[2], r[3]);

    /* Conversions and special values. */
    volatile double nan = NAN, big = 1e300, neg = -2.5;
    printf("cvttsd2si nan %d big %d neg %d\n", _mm_cvttsd_si32(_mm_set_sd(nan)), _mm_cvttsd_si32(_mm_set_sd(big)),
           _mm_cvttsd_si32(_mm_set_sd(neg)));

    /* Rounding modes change SSE rounding (MXCSR.RC). */
    int modes[] = {FE_TONEAREST, FE_DOWNWARD, FE_UPWARD, FE_TOWARDZERO};
    for (int i = 0; i < 4; i++) {
        fesetround(modes[i]);
        volatile double one = 1.0, three = 3.0, x = -2.5;
        printf("mode %d: 1/3=%a cvtsd2si(-2.5)=%d rint(2.5)=%g\n", i, one / three, _mm_cvtsd_si32(_mm_set_sd(x)),
               rint(2.5));
    }
    fesetround(FE_TONEAREST);

    /* Denormals, then flush-to-zero and denormals-are-zero. */
    volatile double tiny = 2.2250738585072014e-308;
    printf("denormal %a\n", tiny / 3.0);
    unsigned csr = _mm_getcsr();
    _mm_setcsr(csr | 0x8040); /* FTZ | DAZ */
    printf("ftz/daz %a %a\n", tiny / 3.0, (tiny / 3.0 + 0.0) * 1e10);
    _mm_setcsr(csr);
    printf("restored %a\n", tiny / 3.0);
    printf("mxcsr %#x\n", _mm_getcsr() & ~0x3fu); /* ignore sticky exception flags */

    float f = 0;
    for (int i = 1; i <= 100000; i++) f += 1.0f / (float)i;
    printf("float harmonic %.9g %a\n", f, f);
    printf("libm: %.17g %.17g %.17g %.17g\n", exp(0.5), log(10.0), pow(2.0, 0.5), atan2(1.0, 3.0));
    return 0;
}
