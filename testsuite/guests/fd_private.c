/* What a program sees of its descriptors: the numbers open() and dup()
 * hand out, /proc/self/fd listings, descriptors at the RLIMIT_NOFILE edges
 * (where bt-run keeps its own), close_range, redirected and closed
 * standard descriptors, and all of it again in an exec'd child.
 *
 *   fd_private MODE
 *
 * MODE: redirect | close | listfd | probe | rlimit | exec | spawn
 *
 * Everything it reports goes to stdout or to files in the working
 * directory, which the tests compare with a native run byte for byte. It
 * writes to its stderr only whole lines (a trace may share bt-run's
 * stderr with it). Numbers that depend on the machine's limits are printed
 * relative to them (S = soft limit, H = hard limit).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static const char *self_path;

/* A line to `fd` with one write. */
static void say(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(int fd, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof buf - 1) n = sizeof buf - 1;
    if (write(fd, buf, n) < 0) { /* nothing to do */ }
}

static int open_w(const char *name) {
    return open(name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
}

static const char *err_name(int e) {
    switch (e) {
    case 0: return "ok";
    case EBADF: return "EBADF";
    case EINVAL: return "EINVAL";
    case ENOENT: return "ENOENT";
    case EMFILE: return "EMFILE";
    case EPERM: return "EPERM";
    case ENOTDIR: return "ENOTDIR";
    default: return "other";
    }
}

static unsigned long soft_limit, hard_limit;

static void limits(void) {
    struct rlimit r;
    getrlimit(RLIMIT_NOFILE, &r);
    soft_limit = r.rlim_cur;
    hard_limit = r.rlim_max;
}

/* n as "S-2", "H-1" or a plain number. */
static const char *rel(long n, char *buf) {
    long s = (long)soft_limit, h = (long)hard_limit;
    if (n >= s - 4 && n <= s + 4) sprintf(buf, "S%+ld", n - s);
    else if (n >= h - 4 && n <= h + 4) sprintf(buf, "H%+ld", n - h);
    else sprintf(buf, "%ld", n);
    return buf;
}

/* The numbers listed in /proc/self/fd (or `dir`), in order, on one line. */
static void list_dir(int out, const char *label, const char *dir) {
    DIR *d = opendir(dir);
    if (!d) {
        say(out, "%s: cannot open (%s)\n", label, err_name(errno));
        return;
    }
    long fds[4096];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 4096) {
        if (e->d_name[0] == '.') continue;
        fds[n++] = strtol(e->d_name, NULL, 10);
    }
    closedir(d);
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && fds[j - 1] > fds[j]; j--) {
            long t = fds[j]; fds[j] = fds[j - 1]; fds[j - 1] = t;
        }
    char line[8192] = "", b[32];
    for (int i = 0; i < n; i++) {
        strcat(line, " ");
        strcat(line, rel(fds[i], b));
    }
    say(out, "%s:%s\n", label, line);
}

static void list_all(int out) {
    char p[64];
    list_dir(out, "/proc/self/fd", "/proc/self/fd");
    list_dir(out, "/proc/self/fdinfo", "/proc/self/fdinfo");
    snprintf(p, sizeof p, "/proc/%d/fd", (int)getpid());
    list_dir(out, "/proc/PID/fd", p);
    snprintf(p, sizeof p, "/proc/%d/task/%d/fd", (int)getpid(), (int)syscall(SYS_gettid));
    list_dir(out, "/proc/PID/task/TID/fd", p);
    list_dir(out, "/proc/thread-self/fd", "/proc/thread-self/fd");
    list_dir(out, "/dev/fd", "/dev/fd/");
}

#define R(expr) ((expr) < 0 ? errno : 0)

/* What the calls that take a descriptor say about number `n`, which this
 * program never opened. */
static void probe_one(int out, long n) {
    char b[32], path[64], link[256];
    struct stat st;
    char c;
    int fd = (int)n;
    say(out, "%s: getfd %s fstat %s read %s write %s lseek %s dup %s dupfd %s fchdir %s", rel(n, b),
        err_name(R(fcntl(fd, F_GETFD))), err_name(R(fstat(fd, &st))), err_name(R(read(fd, &c, 0))),
        err_name(R(write(fd, &c, 0))), err_name(R(lseek(fd, 0, SEEK_CUR))), err_name(R(dup(fd))),
        err_name(R(fcntl(fd, F_DUPFD, 0))), err_name(R(fchdir(fd))));
    say(out, " openat-rel %s", err_name(R(openat(fd, "x", O_RDONLY))));
    int abs_fd = openat(fd, "/dev/null", O_RDONLY);
    say(out, " openat-abs %s", abs_fd < 0 ? err_name(errno) : "ok");
    if (abs_fd >= 0) close(abs_fd);
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    /* (Not lstat: musl makes it the lstat system call, which bt-run
     * forwards without looking at the path.) */
    say(out, " stat %s readlink %s open %s", err_name(R(stat(path, &st))), err_name(R(readlink(path, link, sizeof link))),
        err_name(R(open(path, O_RDONLY))));
    snprintf(path, sizeof path, "/dev/fd/%d", fd);
    say(out, " devfd %s", err_name(R(open(path, O_RDONLY))));
    /* Last, as it may open the number: dup2 onto it. */
    int r = dup2(1, fd);
    say(out, " dup2-onto %s", r < 0 ? err_name(errno) : r == fd ? "ok" : "wrong");
    if (r == fd) say(out, " close %s", err_name(R(close(fd))));
    else say(out, " close %s", err_name(R(close(fd))));
    say(out, "\n");
}

static void probe_all(int out) {
    long s = (long)soft_limit, h = (long)hard_limit;
    long c[] = {s - 2, s - 1, s, s + 1, h - 3, h - 2, h - 1, 255, 700, 1023, 1024};
    long done[16];
    int nd = 0;
    for (unsigned i = 0; i < sizeof c / sizeof c[0]; i++) {
        long n = c[i];
        int seen = 0;
        for (int j = 0; j < nd; j++) seen |= done[j] == n;
        /* Only numbers this program has not opened itself. */
        if (seen || n < 3 || n > INT_MAX || fcntl((int)n, F_GETFD) >= 0) continue;
        done[nd++] = n;
        probe_one(out, n);
    }
}

/* The numbers the kernel hands out for new descriptors. */
static void numbering(int out) {
    int a = open("/dev/null", O_RDONLY);
    int b = open("/dev/null", O_RDONLY);
    int p[2];
    if (pipe(p) < 0) p[0] = p[1] = -1;
    int d = dup(a);
    int e = fcntl(a, F_DUPFD, 0);
    int f = fcntl(a, F_DUPFD_CLOEXEC, 20);
    close(b);
    int g = open("/dev/null", O_RDONLY);
    say(out, "numbers: open %d %d pipe %d %d dup %d dupfd %d %d reopen %d\n", a, b, p[0], p[1], d, e, f, g);
    int fds[] = {a, p[0], p[1], d, e, f, g};
    for (unsigned i = 0; i < sizeof fds / sizeof fds[0]; i++) close(fds[i]);
}

/* stderr and stdout into files, then write through them, in a forked child
 * too. */
static int mode_redirect(void) {
    say(2, "before the redirection\n");
    int e = open_w("err.txt");
    int o = open_w("out.txt");
    say(1, "redirect: err %d out %d\n", e, o);
    if (dup2(e, 2) != 2 || dup3(o, 1, 0) != 1) return 1;
    close(e);
    close(o);
    say(2, "stderr now goes to err.txt\n");
    numbering(1);
    pid_t pid = fork();
    if (pid == 0) {
        say(2, "child writes to err.txt too\n");
        numbering(1);
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    say(1, "child status %d\n", WEXITSTATUS(st));
    list_all(1);
    say(2, "done\n");
    return 0;
}

/* Close the standard descriptors: new files get 0, 1, 2. */
static int mode_close(void) {
    close(0);
    close(1);
    close(2);
    int a = open_w("zero.txt"), b = open_w("one.txt"), c = open_w("two.txt");
    say(b, "close: opened %d %d %d\n", a, b, c);
    say(c, "stderr is two.txt\n");
    say(a, "zero\n");
    numbering(1);
    list_all(1);
    /* And all of them again, with close_range over everything. */
    syscall(SYS_close_range, 0, ~0U, 0);
    a = open_w("again.txt");
    b = open("/dev/null", O_RDONLY);
    say(a, "after close_range: %d %d\n", a, b);
    list_all(a);
    return 0;
}

/* i386 system calls through int $0x80 (the kernel's compat table). */
static long i386_call(long nr, long a, long b, long c) {
    long r;
    __asm__ volatile("int $0x80" : "=a"(r) : "a"(nr), "b"(a), "c"(b), "d"(c) : "memory");
    return r;
}

/* As `close`, with i386 close (6), dup2 (63) and close_range (436). */
static int mode_close32(void) {
    i386_call(6, 0, 0, 0);
    i386_call(6, 2, 0, 0);
    int a = open_w("zero.txt");
    long d = i386_call(63, 1, 2, 0);
    say(1, "close32: opened %d, dup2 -> %ld\n", a, d);
    say(2, "stderr is stdout\n");
    list_all(1);
    long r = i386_call(436, 3, ~0U, 0);
    int b = open_w("again.txt");
    say(b, "after i386 close_range (%ld): %d\n", r, b);
    list_all(b);
    return 0;
}

static int mode_listfd(void) {
    list_all(1);
    int a = open("/dev/null", O_RDONLY);
    list_all(1);
    close(a);
    return 0;
}

static int mode_probe(void) {
    limits();
    say(1, "limits: S %s H %s\n", soft_limit == hard_limit ? "=H" : "<H", "H");
    probe_all(1);
    numbering(1);
    int keep = open_w("kept.txt");
    say(keep, "kept %d\n", keep);
    for (int i = 0; i < 5; i++) open("/dev/null", O_RDONLY);
    syscall(SYS_close_range, 3, ~0U, 0);
    say(1, "after close_range(3, ~0): kept.txt %s\n", err_name(R(fcntl(keep, F_GETFD))));
    probe_all(1);
    list_all(1);
    return 0;
}

/* Count the descriptors open() hands out until EMFILE. */
static int fill(int out, const char *what) {
    int n = 0, last = -1, fd;
    while ((fd = open("/dev/null", O_RDONLY)) >= 0) {
        n++;
        last = fd;
    }
    int e = errno;
    char b[32];
    say(out, "%s: %d more, last %s, then %s\n", what, n, rel(last, b), err_name(e));
    return last;
}

static void close_from(int first) {
    syscall(SYS_close_range, first, ~0U, 0);
}

/* Lower and raise the soft limit: bt-run's descriptors move above it. */
static int mode_rlimit(void) {
    limits();
    unsigned long s0 = soft_limit, h0 = hard_limit;
    struct rlimit r = {64, h0};
    say(1, "lower to 64: %s\n", err_name(R(setrlimit(RLIMIT_NOFILE, &r))));
    limits();
    fill(1, "at 64");
    close_from(3);
    probe_all(1);
    r.rlim_cur = 128;
    say(1, "raise to 128: %s\n", err_name(R(setrlimit(RLIMIT_NOFILE, &r))));
    limits();
    fill(1, "at 128");
    close_from(3);
    probe_all(1);
    list_all(1);
    r.rlim_cur = h0;
    say(1, "raise to H: %s\n", err_name(R(prlimit(0, RLIMIT_NOFILE, &r, NULL))));
    limits();
    say(1, "now S=%s\n", soft_limit == h0 ? "H" : "?");
    probe_all(1);
    list_all(1);
    r.rlim_cur = s0 < 256 ? s0 : 256;
    say(1, "back down: %s\n", err_name(R(setrlimit(RLIMIT_NOFILE, &r))));
    limits();
    fill(1, "at the end");
    close_from(3);
    list_all(1);
    return 0;
}

/* Redirect and close, then exec a child that reports what it sees. */
static int mode_exec(void) {
    int e = open_w("child-err.txt");
    int o = open_w("child-out.txt");
    dup2(e, 2);
    dup2(o, 1);
    close(e);
    close(o);
    close(0);
    int spare = open("/dev/null", O_RDONLY); /* becomes 0 */
    int high = fcntl(spare, F_DUPFD, 10);    /* inherited by the child */
    say(1, "parent: spare %d high %d\n", spare, high);
    say(2, "parent stderr line\n");
    char *argv[] = {(char *)"fd_private", (char *)"probe", NULL};
    execve(self_path, argv, environ);
    say(2, "exec failed\n");
    return 1;
}

/* posix_spawn with file actions (a vfork child under bt-run). */
static int mode_spawn(void) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "spawn-out.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, "spawn-err.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addclose(&fa, 0);
    char *argv[] = {(char *)"fd_private", (char *)"listfd", NULL};
    pid_t pid;
    int r = posix_spawn(&pid, self_path, &fa, NULL, argv, environ);
    say(1, "spawn: %s\n", err_name(r));
    int st = 0;
    if (r == 0) waitpid(pid, &st, 0);
    say(1, "child status %d\n", WEXITSTATUS(st));
    list_all(1);
    /* The child ran in this process's memory: setting the limit again (which
     * may move bt-run's descriptors) must still work. */
    struct rlimit lim = {soft_limit, hard_limit};
    say(1, "setrlimit after the spawn: %s\n", err_name(R(setrlimit(RLIMIT_NOFILE, &lim))));
    probe_all(1);
    return 0;
}

int main(int argc, char **argv) {
    self_path = "/proc/self/exe";
    static char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        self_path = exe;
    }
    limits();
    const char *m = argc > 1 ? argv[1] : "";
    if (!strcmp(m, "redirect")) return mode_redirect();
    if (!strcmp(m, "close")) return mode_close();
    if (!strcmp(m, "close32")) return mode_close32();
    if (!strcmp(m, "listfd")) return mode_listfd();
    if (!strcmp(m, "probe")) return mode_probe();
    if (!strcmp(m, "rlimit")) return mode_rlimit();
    if (!strcmp(m, "exec")) return mode_exec();
    if (!strcmp(m, "spawn")) return mode_spawn();
    say(2, "usage: fd_private redirect|close|close32|listfd|probe|rlimit|exec|spawn\n");
    return 2;
}
