/* x87 long double arithmetic, libm long double functions, control word. */
#include <fenv.h>
#include <float.h>
#include <math.h>
#include <stdio.h>

static void show(const char *name, long double v) { printf("%-12s %.21Lg %La\n", name, v, v); }

static unsigned short get_cw(void) { unsigned short cw; __asm__ volatile("fnstcw %0" : "=m"(cw)); return cw; }
static void set_cw(unsigned short cw) { __asm__ volatile("fldcw %0" : : "m"(cw)); }

int main(void) {
    volatile long double one = 1.0L, three = 3.0L, two = 2.0L;
    show("1/3", one / three);
    show("sqrt2", sqrtl(two));
    show("eps", LDBL_EPSILON);
    show("1+eps", one + LDBL_EPSILON);
    show("pi", acosl(-one));
    show("e", expl(one));
    show("ln10", logl(10.0L));
    show("sin1", sinl(one));
    show("cos1", cosl(one));
    show("tan1", tanl(one));
    show("atan2", atan2l(one, three));
    show("pow", powl(1.0001L, 10000.0L));
    show("cbrt", cbrtl(three));
    show("fmod", fmodl(1e20L, three));
    show("ldexp", ldexpl(three, -16400));
    show("huge", LDBL_MAX / three);
    int e;
    long double m = frexpl(12345.6789L, &e);
    printf("frexpl -> %La * 2^%d\n", m, e);

    /* A series summed in extended precision. */
    long double s = 0;
    for (int k = 1; k <= 200000; k++) s += 1.0L / ((long double)k * k);
    show("zeta2", s);
    long double h = 0;
    for (int k = 1000000; k >= 1; k--) h += 1.0L / k;
    show("harmonic", h);

    /* Rounding modes affect x87 rounding too. */
    int modes[] = {FE_TONEAREST, FE_DOWNWARD, FE_UPWARD, FE_TOWARDZERO};
    const char *mn[] = {"nearest", "down", "up", "zero"};
    for (int i = 0; i < 4; i++) {
        fesetround(modes[i]);
        volatile long double x = 2.5L, y = -2.5L;
        printf("round %-7s rintl(2.5)=%Lg rintl(-2.5)=%Lg 1/3=%La llrintl(7.5)=%lld\n", mn[i], rintl(x), rintl(y),
               one / three, llrintl(7.5L));
    }
    fesetround(FE_TONEAREST);

    /* Precision control: 53-bit mantissa, then restore. */
    unsigned short cw = get_cw();
    printf("control word %#06x\n", cw);
    set_cw((unsigned short)((cw & ~0x300) | 0x200));
    volatile long double d = one / three;
    printf("53-bit 1/3 = %La\n", d);
    set_cw(cw);
    d = one / three;
    printf("64-bit 1/3 = %La\n", d);

    /* Special values. */
    volatile long double zero = 0.0L;
    printf("inf %Lg nan %Lg -0 %Lg isnan %d\n", one / zero, zero / zero, -zero, isnan(zero / zero));
    printf("conversions: %lld %ld %.17g\n", (long long)(1e18L + 0.5L), (long)-2.9L, (double)(one / three));
    return 0;
}
