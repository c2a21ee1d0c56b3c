/* Where the program's memory is: every way it gets some (mmap of each
 * kind, mremap moves, System V shared memory, a thread's stack, malloc,
 * the break, the stack), one line each: "NAME low" below 2^46 (64 TiB),
 * "NAME high ADDR" at or above it. Then the file-backed lines of
 * /proc/self/maps at or above 2^46, as "file-high PATH". Under bt-run's
 * isolation the program's memory is all below, and bt-run's above
 * (docs/design.md, "Isolation"); natively the kernel puts most of it high. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <unistd.h>

#define LIMIT (1ULL << 46)

static void where(const char *name, const void *p) {
    uintptr_t a = (uintptr_t)p;
    if (!p)
        printf("%s failed: %s\n", name, strerror(errno));
    else if (a < LIMIT)
        printf("%s low\n", name);
    else
        printf("%s high %#lx\n", name, (unsigned long)a);
}

static void *map(size_t len, int flags, int fd) {
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, flags, fd, 0);
    if (p == MAP_FAILED) {
        printf("mmap of %zu failed: %s\n", len, strerror(errno));
        exit(2);
    }
    return p;
}

static void *thread_main(void *arg) {
    int local = 0;
    where("thread-stack", &local);
    return arg;
}

int main(void) {
    int local = 0;
    where("stack", &local);
    where("break", sbrk(0));
    where("malloc-small", malloc(100));
    where("malloc-large", malloc(64 << 20));
    where("mmap-page", map(4096, MAP_PRIVATE | MAP_ANONYMOUS, -1));
    where("mmap-4m", map(4 << 20, MAP_PRIVATE | MAP_ANONYMOUS, -1));
    where("mmap-shared", map(65536, MAP_SHARED | MAP_ANONYMOUS, -1));
    where("mmap-growsdown", map(65536, MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN, -1));
    int fd = open("/proc/self/exe", O_RDONLY);
    if (fd < 0) {
        perror("open");
        return 2;
    }
    void *f = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
    where("mmap-file", f == MAP_FAILED ? NULL : f);
    close(fd);

    /* A hint the kernel would take natively: a free address high up. */
    void *h = mmap((void *)0x700000000000ULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    where("mmap-high-hint", h == MAP_FAILED ? NULL : h);

    /* mremap that must move: a mapping right above blocks growth. */
    char *a = map(8192, MAP_PRIVATE | MAP_ANONYMOUS, -1);
    strcpy(a, "kept");
    void *block = mmap(a + 8192, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    char *moved = mremap(a, 8192, 1 << 20, MREMAP_MAYMOVE);
    where("mremap-moved", moved == MAP_FAILED ? NULL : moved);
    printf("mremap-moved %s, contents %s\n", moved != a ? "moved" : "in place",
           moved == MAP_FAILED ? "-" : moved);
    if (block != MAP_FAILED)
        munmap(block, 4096);
    char *grown = mremap(moved, 1 << 20, 2 << 20, MREMAP_MAYMOVE);
    where("mremap-grown", grown == MAP_FAILED ? NULL : grown);
    char *d = mremap(grown, 2 << 20, 2 << 20, MREMAP_MAYMOVE | MREMAP_DONTUNMAP);
    where("mremap-dontunmap", d == MAP_FAILED ? NULL : d);

    int id = shmget(IPC_PRIVATE, 3 << 20, IPC_CREAT | 0600);
    if (id >= 0) {
        void *s = shmat(id, NULL, 0);
        where("shmat", s == (void *)-1 ? NULL : s);
        shmctl(id, IPC_RMID, NULL);
    } else {
        printf("shmget failed: %s\n", strerror(errno));
    }

    pthread_t t;
    if (pthread_create(&t, NULL, thread_main, NULL) == 0)
        pthread_join(t, NULL);

    FILE *m = fopen("/proc/self/maps", "r");
    char line[4096];
    while (m && fgets(line, sizeof line, m)) {
        unsigned long lo, hi;
        char path[4096] = "";
        if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %4095s", &lo, &hi, path) >= 2 && lo >= LIMIT && path[0] == '/')
            printf("file-high %s\n", path);
    }
    return 0;
}
