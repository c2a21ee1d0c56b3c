/* sl_nullfd [child FD]: write(2) on descriptors that are, were, or look
 * like /dev/null, printing each result (count or errno), so a run under
 * bt-run (whose gate answers writes to /dev/null in-process) can be
 * compared with a native one. `child FD` is the same program exec'd with
 * an inherited /dev/null descriptor FD.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static long raw_write(uint64_t fd, const void *buf, uint64_t n) {
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(1L), "D"(fd), "S"(buf), "d"(n) : "rcx", "r11", "memory");
    return r;
}

static void show(const char *what, long r) {
    if (r < 0)
        printf("%-40s -> errno %ld\n", what, -r);
    else
        printf("%-40s -> %ld\n", what, r);
    fflush(stdout);
}

static void writes(const char *tag, int fd) {
    char name[96];
    static const char data[] = "hello";
    snprintf(name, sizeof name, "%s: 5 bytes", tag);
    show(name, raw_write(fd, data, 5));
    snprintf(name, sizeof name, "%s: 0 bytes", tag);
    show(name, raw_write(fd, data, 0));
    snprintf(name, sizeof name, "%s: NULL buffer, 5 bytes", tag);
    show(name, raw_write(fd, 0, 5));
    snprintf(name, sizeof name, "%s: unmapped buffer", tag);
    show(name, raw_write(fd, (void *)0x10000, 4096));
    snprintf(name, sizeof name, "%s: kernel buffer", tag);
    show(name, raw_write(fd, (void *)0xffff800000000000ul, 5));
    snprintf(name, sizeof name, "%s: buffer ending past user space", tag);
    show(name, raw_write(fd, (void *)0x7ffffffff000ul, 0x2000));
    snprintf(name, sizeof name, "%s: buffer wrapping around", tag);
    show(name, raw_write(fd, (void *)0xfffffffffffff000ul, 0x2000));
    snprintf(name, sizeof name, "%s: count above MAX_RW_COUNT", tag);
    show(name, raw_write(fd, data, 0x80000000ul));
    snprintf(name, sizeof name, "%s: count -1", tag);
    show(name, raw_write(fd, data, (uint64_t)-1));
    snprintf(name, sizeof name, "%s: fd with high bits set", tag);
    show(name, raw_write((1ull << 32) | (unsigned)fd, data, 5));
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "child")) {
        writes("inherited", atoi(argv[2]));
        return 0;
    }
    int w = open("/dev/null", O_WRONLY);
    writes("O_WRONLY", w);
    int rw = open("/dev/null", O_RDWR | O_APPEND);
    writes("O_RDWR|O_APPEND", rw);
    int ro = open("/dev/null", O_RDONLY);
    show("O_RDONLY: 5 bytes", raw_write(ro, "hello", 5));
    int path = open("/dev/null", O_PATH);
    show("O_PATH: 5 bytes", raw_write(path, "hello", 5));
    char via[64];
    snprintf(via, sizeof via, "/proc/self/fd/%d", w);
    int again = open(via, O_WRONLY);
    show("reopened via /proc/self/fd: 5 bytes", raw_write(again, "hello", 5));
    int zero = open("/dev/zero", O_WRONLY);
    show("/dev/zero: 5 bytes", raw_write(zero, "hello", 5));

    /* Closed, then the number reused by a pipe. */
    close(w);
    show("closed: 5 bytes", raw_write(w, "hello", 5));
    int p[2];
    if (pipe(p) != 0)
        return 1;
    int moved = dup2(p[1], rw); /* rw was /dev/null */
    show("dup2 of a pipe over it", moved);
    show("replaced by a pipe: 5 bytes", raw_write(rw, "hello", 5));
    char back[8] = {0};
    show("read back from the pipe", read(p[0], back, sizeof back));
    printf("pipe got \"%s\"\n", back);

    /* dup2 of /dev/null onto a pipe's number, and dup of it. */
    int n2 = open("/dev/null", O_WRONLY);
    dup2(n2, p[1]);
    show("dup2 of /dev/null over a pipe: 5 bytes", raw_write(p[1], "hello", 5));
    int d = dup(n2);
    show("dup of /dev/null: 5 bytes", raw_write(d, "hello", 5));
    int high = fcntl(n2, F_DUPFD, 2000);
    show("F_DUPFD 2000: 5 bytes", raw_write(high, "hello", 5));
    syscall(SYS_close_range, d, d, 0);
    show("after close_range: 5 bytes", raw_write(d, "hello", 5));
    show("out of range fd", raw_write(100000, "hello", 5));
    show("fd -1", raw_write((unsigned)-1, "hello", 5));

    /* Inherited across exec (not close-on-exec) at a chosen number. */
    int inh = dup2(n2, 7);
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
    int vf = open("/dev/null", O_WRONLY);
    c = vfork();
    if (c == 0) {
        close(vf);
        int pp[2];
        if (pipe(pp) == 0 && pp[0] != vf && pp[1] != vf)
            dup2(pp[1], vf);
        _exit(0);
    }
    waitpid(c, &st, 0);
    show("after a vfork child closed it: 5 bytes", raw_write(vf, "hello", 5));
    return 0;
}
