/* sl_zerofd [child FD]: read(2) on descriptors that are, were, or look like
 * /dev/zero, printing each result (count or errno) and what the buffer
 * holds afterwards, so a run under bt-run (whose gate answers reads from
 * /dev/zero in-process) can be compared with a native one. `child FD` is
 * the same program exec'd with an inherited /dev/zero descriptor FD.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static long raw_read(uint64_t fd, void *buf, uint64_t n) {
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(0L), "D"(fd), "S"(buf), "d"(n) : "rcx", "r11", "memory");
    return r;
}

/* The same with the direction flag set around the call. */
static long raw_read_std(uint64_t fd, void *buf, uint64_t n) {
    long r;
    __asm__ volatile("std\n\tsyscall\n\tcld" : "=a"(r) : "a"(0L), "D"(fd), "S"(buf), "d"(n) : "rcx", "r11", "memory");
    return r;
}

static void show(const char *what, long r) {
    if (r < 0)
        printf("%-44s -> errno %ld\n", what, -r);
    else
        printf("%-44s -> %ld\n", what, r);
    fflush(stdout);
}

/* How many of the n bytes at p are zero, and how many are still `fill`. */
static void contents(const char *what, const unsigned char *p, size_t n, unsigned char fill) {
    size_t zero = 0, kept = 0;
    for (size_t i = 0; i < n; i++) {
        zero += p[i] == 0;
        kept += p[i] == fill;
    }
    printf("%-44s    %zu zero, %zu untouched of %zu\n", what, zero, kept, n);
}

static void reads(const char *tag, int fd) {
    char name[96];
    unsigned char buf[256];
    memset(buf, 'x', sizeof buf);
    snprintf(name, sizeof name, "%s: 100 bytes", tag);
    show(name, raw_read(fd, buf + 8, 100));
    contents(name, buf, sizeof buf, 'x');
    snprintf(name, sizeof name, "%s: 0 bytes", tag);
    show(name, raw_read(fd, buf, 0));
    snprintf(name, sizeof name, "%s: NULL buffer, 5 bytes", tag);
    show(name, raw_read(fd, 0, 5));
    snprintf(name, sizeof name, "%s: NULL buffer, 0 bytes", tag);
    show(name, raw_read(fd, 0, 0));
    snprintf(name, sizeof name, "%s: kernel address", tag);
    show(name, raw_read(fd, (void *)0xffff800000000000ul, 5));
    snprintf(name, sizeof name, "%s: running past the top of user space", tag);
    show(name, raw_read(fd, (void *)0x7ffffffff000ul, 0x2000));
    snprintf(name, sizeof name, "%s: count -1", tag);
    show(name, raw_read(fd, buf, (uint64_t)-1));
    snprintf(name, sizeof name, "%s: high bits of the fd ignored", tag);
    show(name, raw_read((1ull << 32) | (unsigned)fd, buf, 5));
    memset(buf, 'x', sizeof buf);
    snprintf(name, sizeof name, "%s: with the direction flag set", tag);
    show(name, raw_read_std(fd, buf + 8, 100));
    contents(name, buf, sizeof buf, 'x');
}

/* Reads that run into memory the kernel cannot write. */
static void faults(int fd) {
    long pg = sysconf(_SC_PAGESIZE);
    unsigned char *m = mmap(0, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        exit(1);
    memset(m, 'x', 4 * pg);
    mprotect(m + 2 * pg, pg, PROT_NONE);
    mprotect(m + 3 * pg, pg, PROT_READ);
    show("10 bytes before an inaccessible page, 100", raw_read(fd, m + 2 * pg - 10, 100));
    contents("  the last page before it", m + pg, pg, 'x');
    show("at an inaccessible page", raw_read(fd, m + 2 * pg, 100));
    show("into a read-only page", raw_read(fd, m + 3 * pg, 100));
    show("3 pages from 1 page before the hole", raw_read(fd, m + pg, 3 * pg));
    show("2 GiB into 2 pages (the kernel clamps)", raw_read(fd, m, 0x80000000ul));
    contents("  the first two pages", m, 2 * pg, 'x');
    munmap(m, 4 * pg);

    /* A page of code the program runs and then writes into (bt-run keeps
     * such pages read-only while it has translations of them). */
    unsigned char *code = mmap(0, pg, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (code == MAP_FAILED)
        exit(1);
    static const unsigned char ret42[] = {0xb8, 42, 0, 0, 0, 0xc3}; /* mov eax, 42; ret */
    memcpy(code, ret42, sizeof ret42);
    int (*f)(void) = (int (*)(void))code;
    printf("code returns %d\n", f());
    memset(code + 2048, 'x', 200);
    show("zeros into the code's page", raw_read(fd, code + 2048, 100));
    contents("  there", code + 2048, 200, 'x');
    code[1] = 7;
    printf("changed code returns %d\n", f());
    struct iovec iov[2] = {{code + 3000, 10}, {code + 3100, 20}};
    show("readv into the code's page", readv(fd, iov, 2));
    code[1] = 9;
    printf("changed code returns %d\n", f());
    struct stat st;
    int st_ok = fstat(fd, (struct stat *)(code + 1024)) == 0;
    memcpy(&st, code + 1024, sizeof st);
    printf("fstat into the code's page %d, a character device %d\n", st_ok, S_ISCHR(st.st_mode));
    printf("changed code returns %d\n", f());
    show("zeros over the code itself", raw_read(fd, code, 6));
    contents("  there", code, 6, 'x');
    munmap(code, pg);
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "child")) {
        reads("inherited", atoi(argv[2]));
        return 0;
    }
    int r = open("/dev/zero", O_RDONLY);
    reads("O_RDONLY", r);
    int rw = open("/dev/zero", O_RDWR);
    reads("O_RDWR", rw);
    faults(r);
    unsigned char buf[64];
    int wo = open("/dev/zero", O_WRONLY);
    show("O_WRONLY: 5 bytes", raw_read(wo, buf, 5));
    int path = open("/dev/zero", O_PATH);
    show("O_PATH: 5 bytes", raw_read(path, buf, 5));
    char via[64];
    snprintf(via, sizeof via, "/proc/self/fd/%d", r);
    int again = open(via, O_RDONLY);
    show("reopened via /proc/self/fd: 5 bytes", raw_read(again, buf, 5));
    int null = open("/dev/null", O_RDONLY);
    show("/dev/null: 5 bytes", raw_read(null, buf, 5));

    /* Closed, then the number reused by a pipe. */
    close(again);
    show("closed: 5 bytes", raw_read(again, buf, 5));
    int p[2];
    if (pipe(p) != 0)
        return 1;
    if (write(p[1], "hello", 5) != 5)
        return 1;
    int moved = dup2(p[0], rw); /* rw was /dev/zero */
    show("dup2 of a pipe over it", moved);
    memset(buf, 0, sizeof buf);
    show("replaced by a pipe: 5 bytes", raw_read(rw, buf, 5));
    printf("pipe gave \"%s\"\n", (char *)buf);

    /* dup2 of /dev/zero onto a pipe's number, and dup of it. */
    dup2(r, p[0]);
    show("dup2 of /dev/zero over a pipe: 5 bytes", raw_read(p[0], buf, 5));
    int d = dup(r);
    show("dup of /dev/zero: 5 bytes", raw_read(d, buf, 5));
    int high = fcntl(r, F_DUPFD, 2000);
    show("F_DUPFD 2000: 5 bytes", raw_read(high, buf, 5));
    syscall(SYS_close_range, d, d, 0);
    show("after close_range: 5 bytes", raw_read(d, buf, 5));
    show("out of range fd", raw_read(100000, buf, 5));

    /* Inherited across exec (not close-on-exec) at a chosen number. */
    int inh = dup2(r, 9);
    char num[16];
    snprintf(num, sizeof num, "%d", inh);
    pid_t c = fork();
    if (c == 0) {
        execl("/proc/self/exe", argv[0], "child", num, (char *)0);
        _exit(127);
    }
    int st;
    waitpid(c, &st, 0);
    printf("child status %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);

    /* vfork: the child's descriptors are its own. */
    int vf = open("/dev/zero", O_RDONLY);
    c = vfork();
    if (c == 0) {
        close(vf);
        int pp[2];
        if (pipe(pp) == 0 && pp[0] != vf && pp[1] != vf)
            dup2(pp[0], vf);
        _exit(0);
    }
    waitpid(c, &st, 0);
    show("after a vfork child closed it: 5 bytes", raw_read(vf, buf, 5));
    return 0;
}
