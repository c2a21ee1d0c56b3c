/* libc string functions (glibc picks SSE2/AVX2/EVEX versions at run time)
 * over many sizes and alignments, and right up to an unmapped page. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Calls go through volatile pointers so the compiler cannot expand them inline. */
static size_t (*volatile p_strlen)(const char *) = strlen;
static size_t (*volatile p_strnlen)(const char *, size_t) = strnlen;
static char *(*volatile p_strchr)(const char *, int) = strchr;
static char *(*volatile p_strrchr)(const char *, int) = strrchr;
static void *(*volatile p_memchr)(const void *, int, size_t) = memchr;
static int (*volatile p_memcmp)(const void *, const void *, size_t) = memcmp;
static int (*volatile p_strcmp)(const char *, const char *) = strcmp;
static int (*volatile p_strncmp)(const char *, const char *, size_t) = strncmp;
static void *(*volatile p_memcpy)(void *, const void *, size_t) = memcpy;
static void *(*volatile p_memmove)(void *, const void *, size_t) = memmove;
static void *(*volatile p_memset)(void *, int, size_t) = memset;
static char *(*volatile p_strcpy)(char *, const char *) = strcpy;
static char *(*volatile p_stpcpy)(char *, const char *) = stpcpy;
static char *(*volatile p_strstr)(const char *, const char *) = strstr;

enum { F_STRLEN, F_STRNLEN, F_STRCHR, F_STRRCHR, F_MEMCHR, F_MEMCMP, F_STRCMP, F_STRNCMP, F_MEMCPY, F_MEMMOVE,
       F_MEMSET, F_STRCPY, F_STPCPY, F_STRSTR, NF };
static const char *fname[NF] = {"strlen", "strnlen", "strchr", "strrchr", "memchr", "memcmp", "strcmp",
                                "strncmp", "memcpy", "memmove", "memset", "strcpy", "stpcpy", "strstr"};
static uint64_t sum[NF];

static void mix(int f, uint64_t v) { sum[f] = (sum[f] ^ v) * 0x100000001b3ULL + (uint64_t)f; }
static uint64_t rel(const void *p, const void *base) { return p ? (uint64_t)((const char *)p - (const char *)base) + 1 : 0; }
static int sgn(int x) { return (x > 0) - (x < 0); }
static uint64_t hash_bytes(const unsigned char *p, size_t n) {
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

#define BUF 8192
static _Alignas(64) char src[BUF], dst[BUF], other[BUF];

static void fill(char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (char)('A' + (seed >> 16) % 50); /* never 0 */
    }
}

static void one_case(size_t align, size_t len) {
    char *s = src + align;
    fill(s, len, (unsigned)(align * 1000 + len));
    s[len] = 0;
    s[len + 1] = 'Z';
    mix(F_STRLEN, p_strlen(s));
    mix(F_STRNLEN, p_strnlen(s, len / 2 + 1));
    char needle = len ? s[len * 2 / 3] : 'x';
    mix(F_STRCHR, rel(p_strchr(s, needle), s));
    mix(F_STRCHR, rel(p_strchr(s, 0), s));
    mix(F_STRRCHR, rel(p_strrchr(s, needle), s));
    mix(F_MEMCHR, rel(p_memchr(s, needle, len), s));
    mix(F_MEMCHR, rel(p_memchr(s, '~', len), s));

    char *o = other + (align * 7 + 3) % 64;
    memcpy(o, s, len + 1);
    mix(F_MEMCMP, (uint64_t)sgn(p_memcmp(s, o, len)));
    mix(F_STRCMP, (uint64_t)sgn(p_strcmp(s, o)));
    if (len) {
        o[len - 1] ^= 1;
        mix(F_MEMCMP, (uint64_t)sgn(p_memcmp(s, o, len)));
        mix(F_STRCMP, (uint64_t)sgn(p_strcmp(s, o)));
        mix(F_STRNCMP, (uint64_t)sgn(p_strncmp(s, o, len - 1)));
        mix(F_STRNCMP, (uint64_t)sgn(p_strncmp(s, o, len)));
        o[len / 2] = 0;
        mix(F_STRCMP, (uint64_t)sgn(p_strcmp(s, o)));
    }

    char *d = dst + (align * 13 + 5) % 64;
    memset(dst, 0x5a, BUF);
    p_memcpy(d, s, len);
    mix(F_MEMCPY, hash_bytes((unsigned char *)dst, len + 200));
    p_memmove(d + len / 3, d, len);
    mix(F_MEMMOVE, hash_bytes((unsigned char *)dst, 2 * len + 200));
    p_memmove(d, d + len / 4, len);
    mix(F_MEMMOVE, hash_bytes((unsigned char *)dst, 2 * len + 200));
    p_memset(d, (int)(len & 0xff), len);
    mix(F_MEMSET, hash_bytes((unsigned char *)dst, len + 200));
    mix(F_STRCPY, rel(p_strcpy(d, s), d));
    mix(F_STRCPY, hash_bytes((unsigned char *)dst, len + 200));
    mix(F_STPCPY, rel(p_stpcpy(d, s), d));
    if (len > 8) {
        char pat[6];
        memcpy(pat, s + len - 7, 5);
        pat[5] = 0;
        mix(F_STRSTR, rel(p_strstr(s, pat), s));
    }
}

/* Strings that end exactly at the end of a readable page followed by an
 * inaccessible one: vectorized implementations must not fault. */
static void page_edge(void) {
    long pg = sysconf(_SC_PAGESIZE);
    char *m = mmap(NULL, (size_t)pg * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) { perror("mmap"); exit(2); }
    if (mprotect(m + pg, (size_t)pg, PROT_NONE)) { perror("mprotect"); exit(2); }
    uint64_t h = 0;
    for (size_t len = 0; len < 300; len++) {
        char *s = m + pg - len - 1;
        fill(s, len, (unsigned)len);
        s[len] = 0;
        h = h * 31 + p_strlen(s);
        h = h * 31 + rel(p_strchr(s, 'Q'), s);
        h = h * 31 + rel(p_strrchr(s, 'B'), s);
        h = h * 31 + rel(p_memchr(s, 'C', len + 1), s);
        h = h * 31 + (uint64_t)sgn(p_strcmp(s, s));
        h = h * 31 + (uint64_t)sgn(p_memcmp(s, m, len));
        char *e = m + pg - len;
        memset(e, 'k', len);
        h = h * 31 + (uint64_t)sgn(p_memcmp(e, s, len));
    }
    printf("page edge checksum %016llx\n", (unsigned long long)h);
    munmap(m, (size_t)pg * 2);
}

int main(void) {
    for (size_t align = 0; align < 64; align++)
        for (size_t len = 0; len <= 320; len += (len < 80 ? 1 : 7)) one_case(align, len);
    for (size_t len = 1000; len < 7000; len += 997) one_case(len % 64, len);
    for (int f = 0; f < NF; f++) printf("%-8s %016llx\n", fname[f], (unsigned long long)sum[f]);
    page_edge();
    return 0;
}
