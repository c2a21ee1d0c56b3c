/* CPUID and XGETBV as the program sees them: vendor, family/model/stepping,
 * the feature bits of leaves 1, 7 (subleaves 0 and 1), 0xd and 0x80000001,
 * the brand string, xgetbv(0) (XCR0), and what __builtin_cpu_supports
 * concludes. Values that differ between CPUs of the same machine (the APIC
 * id in leaf 1 ebx[31:24], topology leaves) are left out. Everything printed
 * must equal the native run's. */
#include <cpuid.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static void leaf(unsigned l, unsigned sub, unsigned r[4]) {
    __cpuid_count(l, sub, r[0], r[1], r[2], r[3]);
}

static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

int main(void) {
    unsigned r[4];
    leaf(0, 0, r);
    unsigned max = r[0];
    char vendor[13];
    memcpy(vendor, &r[1], 4);
    memcpy(vendor + 4, &r[3], 4);
    memcpy(vendor + 8, &r[2], 4);
    vendor[12] = '\0';
    printf("leaf 0: max leaf %#x, vendor %s\n", max, vendor);

    leaf(1, 0, r);
    printf("leaf 1: eax %#010x ebx[23:0] %#08x ecx %#010x edx %#010x\n", r[0], r[1] & 0xffffff, r[2], r[3]);
    int osxsave = (r[2] >> 27) & 1;
    printf("  sse3 %u ssse3 %u sse4.1 %u sse4.2 %u popcnt %u aes %u xsave %u osxsave %u avx %u f16c %u rdrand %u\n",
           r[2] & 1, (r[2] >> 9) & 1, (r[2] >> 19) & 1, (r[2] >> 20) & 1, (r[2] >> 23) & 1, (r[2] >> 25) & 1,
           (r[2] >> 26) & 1, osxsave, (r[2] >> 28) & 1, (r[2] >> 29) & 1, (r[2] >> 30) & 1);

    if (max >= 7) {
        leaf(7, 0, r);
        printf("leaf 7.0: eax %#010x ebx %#010x ecx %#010x edx %#010x\n", r[0], r[1], r[2], r[3]);
        printf("  fsgsbase %u bmi1 %u avx2 %u bmi2 %u erms %u rtm %u avx512f %u adx %u sha %u pku %u ospke %u\n",
               r[1] & 1, (r[1] >> 3) & 1, (r[1] >> 5) & 1, (r[1] >> 8) & 1, (r[1] >> 9) & 1, (r[1] >> 11) & 1,
               (r[1] >> 16) & 1, (r[1] >> 19) & 1, (r[1] >> 29) & 1, (r[2] >> 3) & 1, (r[2] >> 4) & 1);
        unsigned sub_max = r[0];
        if (sub_max >= 1) {
            leaf(7, 1, r);
            printf("leaf 7.1: eax %#010x ebx %#010x ecx %#010x edx %#010x\n", r[0], r[1], r[2], r[3]);
        }
    }
    if (max >= 0xd) {
        leaf(0xd, 0, r);
        printf("leaf 0xd.0: eax %#010x ebx %#x ecx %#x edx %#010x\n", r[0], r[1], r[2], r[3]);
        leaf(0xd, 1, r);
        printf("leaf 0xd.1: eax %#010x\n", r[0]);
    }
    leaf(0x80000000, 0, r);
    unsigned ext = r[0];
    printf("leaf 0x80000000: max extended leaf %#x\n", ext);
    if (ext >= 0x80000001) {
        leaf(0x80000001, 0, r);
        printf("leaf 0x80000001: ecx %#010x edx %#010x\n", r[2], r[3]);
    }
    if (ext >= 0x80000004) {
        char brand[49];
        for (unsigned i = 0; i < 3; i++) {
            leaf(0x80000002 + i, 0, r);
            memcpy(brand + 16 * i, r, 16);
        }
        brand[48] = '\0';
        printf("brand: %s\n", brand);
    }
    if (osxsave) {
        uint64_t xcr0 = xgetbv0();
        printf("xgetbv(0) = %#llx (x87 %d sse %d avx %d avx512 %d)\n", (unsigned long long)xcr0, (int)(xcr0 & 1),
               (int)((xcr0 >> 1) & 1), (int)((xcr0 >> 2) & 1), (xcr0 & 0xe0) == 0xe0);
    } else {
        printf("xgetbv: OSXSAVE not set\n");
    }

    __builtin_cpu_init();
    printf("__builtin_cpu_supports: sse4.2 %d avx %d avx2 %d bmi2 %d fma %d avx512f %d\n",
           !!__builtin_cpu_supports("sse4.2"), !!__builtin_cpu_supports("avx"), !!__builtin_cpu_supports("avx2"),
           !!__builtin_cpu_supports("bmi2"), !!__builtin_cpu_supports("fma"), !!__builtin_cpu_supports("avx512f"));

    return 0;
}
