/* Makes a fixed series of system calls and prints how each one ended, so a
 * run under `bt-run --deny ...` / `--policy FILE` can be compared with a
 * native run where the same calls are made to fail by the kernel side
 * (strace's fault injection). Lines are written with write(2) so nothing is
 * lost if the process is killed.
 *
 *   sl_deny PATH   openat(PATH), getpid, gettid, getuid, getppid,
 *                  write of 0 bytes to stdout, close(-1) */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static void say(const char *fmt, ...) {
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof buf - 1)
        n = sizeof buf - 1;
    if (n > 0 && write(1, buf, (size_t)n) < 0)
        _exit(99);
}

static void result(const char *what, long r, int e) {
    if (r == -1)
        say("%s: failed, errno %d (%s)\n", what, e, strerror(e));
    else
        say("%s: ok\n", what);
}

#define CALL(what, expr)                                                                                    \
    do {                                                                                                   \
        say("calling %s\n", what);                                                                         \
        errno = 0;                                                                                         \
        long r_ = (expr);                                                                                  \
        result(what, r_, errno);                                                                           \
    } while (0)

int main(int argc, char **argv) {
    if (argc != 2) {
        say("usage: sl_deny PATH\n");
        return 2;
    }
    long pid = syscall(SYS_getpid);
    CALL("openat", syscall(SYS_openat, AT_FDCWD, argv[1], O_RDONLY | O_CLOEXEC));
    CALL("open (libc)", open(argv[1], O_RDONLY));
    CALL("getpid", syscall(SYS_getpid));
    CALL("gettid", syscall(SYS_gettid));
    CALL("getuid", syscall(SYS_getuid));
    CALL("getppid", syscall(SYS_getppid));
    CALL("write", syscall(SYS_write, 1, "", 0));
    CALL("close(-1)", syscall(SYS_close, -1));
    /* Ids that answer must still be right. */
    say("gettid == getpid: %s\n", syscall(SYS_gettid) == pid ? "yes" : "no");
    say("done\n");
    return 0;
}
