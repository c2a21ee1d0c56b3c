/* A few openat, write and mmap calls with arguments strace decodes in
 * different ways (flags, modes, escaped and truncated strings, errors), to
 * compare bt-run's --trace lines with strace's own. Run in an empty
 * directory: it creates the file "sl_trace.tmp" there. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(void) {
    int fd = open("/nonexistent-bt-run-sl_trace/missing", O_RDONLY);
    if (fd != -1 || errno != ENOENT) {
        printf("open of a missing file: %d (%s)\n", fd, strerror(errno));
        return 1;
    }
    static const char hello[] = "hello from sl_trace\n";
    if (write(1, hello, sizeof hello - 1) != (ssize_t)(sizeof hello - 1))
        return 1;

    char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return 1;
    memset(p, 'a', 8192);

    /* Escapes, a NUL byte, and a string longer than strace's 32-byte limit. */
    static const char odd[] = "tab\there \"quoted\" back\\slash\n\x01\x7f\xff";
    int f = open("sl_trace.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (f < 0)
        return 1;
    if (write(f, odd, sizeof odd) != (ssize_t)sizeof odd)
        return 1;
    if (write(f, p, 100) != 100)
        return 1;
    if (write(f, "", 0) != 0)
        return 1;
    close(f);

    /* Failing calls: a bad descriptor, a bad length. */
    if (write(-1, "x", 1) != -1 || errno != EBADF)
        return 1;
    if (mmap(NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) != MAP_FAILED || errno != EINVAL)
        return 1;

    /* A shared file mapping, then a fixed one over the anonymous pages. */
    f = open("sl_trace.tmp", O_RDWR | O_NOFOLLOW);
    if (f < 0)
        return 1;
    char *q = mmap(NULL, 4096, PROT_READ, MAP_SHARED, f, 0);
    if (q == MAP_FAILED || memcmp(q, odd, sizeof odd) != 0)
        return 1;
    if (mmap(p + 4096, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != p + 4096)
        return 1;
    int d = openat(AT_FDCWD, ".", O_RDONLY | O_DIRECTORY);
    if (d < 0)
        return 1;
    int g = openat(d, "sl_trace.tmp", O_RDONLY);
    if (g < 0)
        return 1;
    close(g);
    close(d);
    close(f);
    munmap(q, 4096);
    munmap(p, 8192);
    static const char bye[] = "bye\n";
    return write(1, bye, 4) == 4 ? 0 : 1;
}
