/* malloc/realloc/calloc, brk, mmap/mprotect/mremap/madvise, file mappings, errnos. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static uint64_t fnv(const void *p, size_t n) {
    const unsigned char *b = p;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ULL;
    return h;
}

int main(void) {
    /* heap churn */
    enum { K = 4000 };
    static char *blocks[K];
    static size_t sizes[K];
    uint32_t x = 1;
    uint64_t h = 0;
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < K; i++) {
            x = x * 1664525u + 1013904223u;
            size_t sz = (x >> 8) % (i % 50 == 0 ? 300000 : 2000) + 1;
            if (blocks[i]) {
                h = h * 31 + fnv(blocks[i], sizes[i]);
                if (x & 1) { free(blocks[i]); blocks[i] = NULL; continue; }
                blocks[i] = realloc(blocks[i], sz);
                if (sz > sizes[i]) memset(blocks[i] + sizes[i], (int)(i & 0xff), sz - sizes[i]);
            } else {
                blocks[i] = malloc(sz);
                memset(blocks[i], (int)((i + round) & 0xff), sz);
            }
            sizes[i] = sz;
        }
    for (int i = 0; i < K; i++) free(blocks[i]);
    printf("heap churn hash %016llx\n", (unsigned long long)h);
    int *z = calloc(100000, sizeof *z);
    long zs = 0;
    for (int i = 0; i < 100000; i++) zs += z[i];
    printf("calloc zeroed: %s\n", zs == 0 ? "yes" : "no");
    free(z);

    /* a large allocation, every page touched */
    size_t big = 64u << 20;
    unsigned char *p = malloc(big);
    uint64_t sum = 0;
    for (size_t i = 0; i < big; i += 4096) p[i] = (unsigned char)(i >> 12);
    for (size_t i = 0; i < big; i += 4096) sum += p[i];
    printf("64 MiB touched, sum %llu\n", (unsigned long long)sum);
    free(p);

    /* brk directly */
    uintptr_t b0 = (uintptr_t)syscall(SYS_brk, 0);
    uintptr_t b1 = (uintptr_t)syscall(SYS_brk, b0 + 256 * 1024);
    printf("brk grow by 256 KiB: %s\n", b1 == b0 + 256 * 1024 ? "ok" : "failed");
    if (b1 == b0 + 256 * 1024) {
        memset((void *)b0, 0xab, 256 * 1024);
        printf("brk memory writable, last byte %#x\n", ((unsigned char *)b0)[256 * 1024 - 1]);
        uintptr_t b2 = (uintptr_t)syscall(SYS_brk, b0 + 4096);
        printf("brk shrink: %s\n", b2 == b0 + 4096 ? "ok" : "failed");
        syscall(SYS_brk, b0);
    }

    /* anonymous mappings */
    size_t len = 1 << 20;
    char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (size_t i = 0; i < len; i++) m[i] = (char)(i * 7);
    uint64_t mh = fnv(m, len);
    printf("anon map hash %016llx\n", (unsigned long long)mh);
    printf("mprotect RO: %d\n", mprotect(m, len, PROT_READ));
    printf("read after RO: %d\n", m[12345]);
    mprotect(m, len, PROT_READ | PROT_WRITE);
    char *m2 = mremap(m, len, 4 * len, MREMAP_MAYMOVE);
    printf("mremap grow: %s, contents kept %d\n", m2 == MAP_FAILED ? "failed" : "ok",
           m2 != MAP_FAILED && fnv(m2, len) == mh);
    memset(m2 + len, 1, 3 * len);
    madvise(m2 + len, 4096, MADV_DONTNEED);
    printf("after MADV_DONTNEED: %d %d\n", m2[len], m2[len + 4096]);
    char *fx = mmap(m2 + 2 * len, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    printf("MAP_FIXED inside own mapping: %s, reads %d\n", fx == m2 + 2 * len ? "ok" : "moved", fx[0]);
    munmap(m2, 4 * len);

    /* file-backed mappings */
    FILE *tf = tmpfile();
    int fd = fileno(tf);
    char page[4096];
    for (int i = 0; i < 3; i++) {
        memset(page, 'a' + i, sizeof page);
        if (write(fd, page, sizeof page) != (ssize_t)sizeof page) return 2;
    }
    char *fm = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    printf("shared file map: %c %c %c\n", fm[0], fm[4096], fm[8191 + 4096]);
    memcpy(fm + 4096, "written through the mapping", 27);
    msync(fm, 3 * 4096, MS_SYNC);
    char back[28] = {0};
    pread(fd, back, 27, 4096);
    printf("pread after msync: %s\n", back);
    char *pm = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    pm[0] = 'Z';
    pread(fd, back, 1, 0);
    printf("private map write visible in file: %s\n", back[0] == 'Z' ? "yes" : "no");
    munmap(pm, 4096);
    munmap(fm, 3 * 4096);
    fclose(tf);

    /* error cases */
    errno = 0;
    void *r = mmap(NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("mmap len 0: %s errno %d\n", r == MAP_FAILED ? "failed" : "ok", errno);
    errno = 0;
    int rc = munmap((void *)0x10001, 4096);
    printf("munmap unaligned: %d errno %d\n", rc, errno);
    char *hole = mmap(NULL, 3 * 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(hole + 4096, 4096);
    errno = 0;
    rc = mprotect(hole, 3 * 4096, PROT_READ);
    printf("mprotect over a hole: %d errno %d\n", rc, errno);
    errno = 0;
    r = mmap(NULL, 4096, PROT_READ, MAP_SHARED, -1, 0);
    printf("mmap bad fd: %s errno %d\n", r == MAP_FAILED ? "failed" : "ok", errno);
    return 0;
}
