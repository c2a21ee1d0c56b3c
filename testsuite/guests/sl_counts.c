/* Makes known numbers of system calls, given on the command line, so that
 * bt-run's --stats can be checked against the program's own arguments:
 *
 *   sl_counts GETPID GETTID WRITE ENOENT EBADF BADWRITE
 *
 * - GETPID raw getpid calls, GETTID raw gettid calls;
 * - WRITE one-byte writes to /dev/null (opened once with openat, closed once);
 * - ENOENT openat calls on a missing file (each must fail with ENOENT);
 * - EBADF close(-1) calls (each must fail with EBADF);
 * - BADWRITE writes to descriptor -1 (each must fail with EBADF).
 *
 * Every call goes through syscall(2) so that libc cannot cache or elide one.
 * The program prints how many calls gave the expected answer; the test
 * requires those numbers to equal the arguments. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

static long count(const char *s) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 0) {
        fprintf(stderr, "sl_counts: bad count '%s'\n", s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: sl_counts GETPID GETTID WRITE ENOENT EBADF BADWRITE\n");
        return 2;
    }
    long n_getpid = count(argv[1]), n_gettid = count(argv[2]), n_write = count(argv[3]);
    long n_enoent = count(argv[4]), n_ebadf = count(argv[5]), n_badwrite = count(argv[6]);
    long ok_getpid = 0, ok_gettid = 0, ok_write = 0, ok_enoent = 0, ok_ebadf = 0, ok_badwrite = 0;

    long pid0 = syscall(SYS_getpid);
    for (long i = 0; i < n_getpid; i++)
        ok_getpid += syscall(SYS_getpid) == pid0;
    for (long i = 0; i < n_gettid; i++)
        ok_gettid += syscall(SYS_gettid) == pid0; /* single-threaded: tid == pid */

    long fd = syscall(SYS_openat, AT_FDCWD, "/dev/null", O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        perror("sl_counts: /dev/null");
        return 1;
    }
    for (long i = 0; i < n_write; i++)
        ok_write += syscall(SYS_write, fd, "x", 1) == 1;
    syscall(SYS_close, fd);

    for (long i = 0; i < n_enoent; i++) {
        errno = 0;
        long r = syscall(SYS_openat, AT_FDCWD, "/nonexistent-bt-run-sl_counts/file", O_RDONLY);
        ok_enoent += r == -1 && errno == ENOENT;
    }
    for (long i = 0; i < n_ebadf; i++) {
        errno = 0;
        long r = syscall(SYS_close, -1);
        ok_ebadf += r == -1 && errno == EBADF;
    }
    for (long i = 0; i < n_badwrite; i++) {
        errno = 0;
        long r = syscall(SYS_write, -1, "x", 1);
        ok_badwrite += r == -1 && errno == EBADF;
    }
    printf("getpid=%ld gettid=%ld write=%ld enoent=%ld ebadf=%ld badwrite=%ld\n", ok_getpid, ok_gettid,
           ok_write, ok_enoent, ok_ebadf, ok_badwrite);
    return 0;
}
