/* Process and thread ids, and credentials, checked against sources that do
 * not go through getpid/gettid/getuid...: /proc/self, /proc/thread-self,
 * /proc/self/stat, /proc/.../status, and the pids returned by fork, vfork,
 * posix_spawn. Under bt-run, getpid, gettid and get[e]{u,g}id are answered
 * in-process; these checks show the answers stay exact across fork, vfork,
 * threads, fork from a thread, and set*id (per thread, as the kernel keeps
 * credentials per thread). The ids are asked for both with a constant
 * number (`mov eax, NR; syscall`, as libc's getpid/getuid... wrappers do:
 * answered where the translated `syscall` is) and through syscall(NR) (the
 * number arrives in a register and is compared at run time).
 *
 *   sl_ids pids          getpid/gettid/getppid: main, fork, fork of a fork,
 *                        vfork, posix_spawn, threads, fork from a thread,
 *                        threads of a forked child
 *   sl_ids creds         (root) a child drops privileges with setgroups,
 *                        setresgid, setresuid, ...; a vfork child drops its own
 *   sl_ids thread-creds  (root) a raw setresuid in one thread changes only
 *                        that thread's credentials
 *   sl_ids setxid        (root) libc's setresgid/setresuid in a threaded
 *                        process changes every thread (glibc SIGSETXID, musl
 *                        synccall signals)
 *   sl_ids spawned P     internal: started by posix_spawn from a parent with pid P
 *
 * Output is deterministic (no pid values) so it can be compared with a
 * native run; a failed check prints the values it compared. Run with an
 * absolute argv[0]. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* ---- output: unbuffered writes, so forked children and the parent interleave
 * exactly as they ran ---- */
static void say(const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof buf - 1)
        n = sizeof buf - 1;
    if (n > 0 && write(1, buf, (size_t)n) < 0)
        _exit(99);
}

static int failures;

static void check(const char *what, long got, long want) {
    if (got == want) {
        say("%s: ok\n", what);
    } else {
        say("%s: MISMATCH (got %ld, expected %ld)\n", what, got, want);
        failures++;
    }
}

/* ---- kernel-side sources, using raw system calls only (safe in a vfork
 * child: no libc state, no heap) ---- */
static long raw_readlink_num(const char *path, int which) {
    char buf[64];
    long n = syscall(SYS_readlink, path, buf, sizeof buf - 1);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    /* "/proc/thread-self" -> "PID/task/TID"; which=0 gives PID, 1 gives TID */
    char *p = buf;
    if (which == 1) {
        p = strrchr(buf, '/');
        if (!p)
            return -1;
        p++;
    }
    return strtol(p, NULL, 10);
}

static long raw_read_file(const char *path, char *buf, size_t size) {
    long fd = syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    long n = 0, r;
    while (n < (long)size - 1 && (r = syscall(SYS_read, fd, buf + n, size - 1 - n)) > 0)
        n += r;
    syscall(SYS_close, fd);
    buf[n > 0 ? n : 0] = 0;
    return n;
}

/* /proc/self/stat: "pid (comm) state ppid ..." */
static void stat_pids(long *pid, long *ppid) {
    char buf[1024];
    *pid = *ppid = -1;
    if (raw_read_file("/proc/self/stat", buf, sizeof buf) <= 0)
        return;
    *pid = strtol(buf, NULL, 10);
    char *p = strrchr(buf, ')');
    if (p && p[1] == ' ' && p[2] && p[3] == ' ')
        *ppid = strtol(p + 4, NULL, 10);
}

/* "Uid:" or "Gid:" line of a status file: real, effective, saved, fs. */
static void status_ids(const char *path, const char *key, long out[4]) {
    char buf[4096];
    out[0] = out[1] = out[2] = out[3] = -1;
    if (raw_read_file(path, buf, sizeof buf) <= 0)
        return;
    char *p = strstr(buf, key);
    if (!p)
        return;
    p += strlen(key);
    for (int i = 0; i < 4; i++)
        out[i] = strtol(p, &p, 10);
}

/* gettid the way glibc's wrapper does it (musl's gettid() returns a value
 * cached in the thread descriptor instead of asking the kernel). */
static long const_gettid(void) {
    long r;
    __asm__ volatile("mov $186, %%eax\n\tsyscall" : "=a"(r) : : "rcx", "r11", "memory");
    return r;
}

struct ids {
    long getpid, libc_getpid, gettid, const_gettid, getppid;
    long proc_pid, proc_tid, stat_pid, stat_ppid;
};

static void collect(struct ids *d) {
    d->getpid = syscall(SYS_getpid);
    d->libc_getpid = getpid();
    d->gettid = syscall(SYS_gettid);
    d->const_gettid = const_gettid();
    d->getppid = syscall(SYS_getppid);
    d->proc_pid = raw_readlink_num("/proc/self", 0);
    d->proc_tid = raw_readlink_num("/proc/thread-self", 1);
    stat_pids(&d->stat_pid, &d->stat_ppid);
}

/* want_pid / want_tid / want_ppid: -1 means "no independent expectation
 * beyond /proc". */
static void check_ids(const char *who, const struct ids *d, long want_pid, long want_tid, long want_ppid) {
    char what[128];
    snprintf(what, sizeof what, "%s: getpid == /proc/self", who);
    check(what, d->getpid, d->proc_pid);
    snprintf(what, sizeof what, "%s: libc getpid == /proc/self", who);
    check(what, d->libc_getpid, d->proc_pid);
    snprintf(what, sizeof what, "%s: getpid == /proc/self/stat", who);
    check(what, d->getpid, d->stat_pid);
    snprintf(what, sizeof what, "%s: gettid == /proc/thread-self", who);
    check(what, d->gettid, d->proc_tid);
    snprintf(what, sizeof what, "%s: gettid (constant number) == /proc/thread-self", who);
    check(what, d->const_gettid, d->proc_tid);
    snprintf(what, sizeof what, "%s: getppid == /proc/self/stat", who);
    check(what, d->getppid, d->stat_ppid);
    if (want_pid != -1) {
        snprintf(what, sizeof what, "%s: getpid == pid seen by the parent", who);
        check(what, d->getpid, want_pid);
    }
    if (want_tid != -1) {
        snprintf(what, sizeof what, "%s: gettid == expected tid", who);
        check(what, d->gettid, want_tid);
    }
    if (want_ppid != -1) {
        snprintf(what, sizeof what, "%s: getppid == parent's getpid", who);
        check(what, d->getppid, want_ppid);
    }
}

static void read_exact(int fd, void *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r <= 0) {
            say("short read from a child (%zu of %zu bytes)\n", got, n);
            exit(1);
        }
        got += (size_t)r;
    }
}

static void wait_ok(pid_t pid, const char *who) {
    int st;
    if (waitpid(pid, &st, 0) != pid) {
        say("%s: waitpid failed: %s\n", who, strerror(errno));
        failures++;
        return;
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        say("%s: ended with status %#x\n", who, st);
        failures++;
    }
}

/* ---- scenarios ---- */

static struct ids main_ids;

static void after_check(const char *when) {
    struct ids d;
    collect(&d);
    char who[96];
    snprintf(who, sizeof who, "parent after %s", when);
    check_ids(who, &d, main_ids.getpid, main_ids.getpid, main_ids.getppid);
}

static void fork_child(void) {
    int p[2];
    if (pipe(p))
        exit(2);
    pid_t pid = fork();
    if (pid == 0) {
        struct ids d;
        collect(&d);
        if (write(p[1], &d, sizeof d) != sizeof d)
            _exit(3);
        /* A grandchild: its ids come from yet another fork. */
        pid_t gc = fork();
        if (gc == 0) {
            struct ids g;
            collect(&g);
            _exit(write(p[1], &g, sizeof g) == sizeof g ? 0 : 3);
        }
        int st;
        waitpid(gc, &st, 0); /* so its report is in the pipe before gc */
        if (write(p[1], &gc, sizeof gc) != sizeof gc)
            _exit(3);
        _exit(WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 4);
    }
    close(p[1]);
    struct ids c, g;
    pid_t gc;
    read_exact(p[0], &c, sizeof c);
    read_exact(p[0], &g, sizeof g);
    read_exact(p[0], &gc, sizeof gc);
    close(p[0]);
    wait_ok(pid, "fork child");
    check_ids("fork child", &c, pid, pid, main_ids.getpid);
    check_ids("fork grandchild", &g, gc, gc, pid);
    after_check("fork");
}

static void vfork_child(void) {
    int p[2];
    if (pipe(p))
        exit(2);
    static struct ids c; /* written by the vfork child: shared memory */
    pid_t pid = vfork();
    if (pid == 0) {
        collect(&c);
        syscall(SYS_write, p[1], &c, sizeof c);
        syscall(SYS_exit, 0);
    }
    close(p[1]);
    struct ids via_pipe;
    read_exact(p[0], &via_pipe, sizeof via_pipe);
    close(p[0]);
    wait_ok(pid, "vfork child");
    check_ids("vfork child", &via_pipe, pid, pid, main_ids.getpid);
    check("vfork child: shared copy equals piped copy", memcmp(&c, &via_pipe, sizeof c) == 0, 1);
    after_check("vfork");
}

static void spawn_child(const char *self) {
    int p[2];
    if (pipe(p))
        exit(2);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 3);
    char ppid[32];
    snprintf(ppid, sizeof ppid, "%ld", main_ids.getpid);
    char *argv[] = {(char *)self, "spawned", ppid, NULL};
    pid_t pid;
    int e = posix_spawn(&pid, self, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    if (e) {
        say("posix_spawn: %s\n", strerror(e));
        failures++;
        return;
    }
    long reported = -1;
    read_exact(p[0], &reported, sizeof reported);
    close(p[0]);
    wait_ok(pid, "spawned child");
    check("spawned child: getpid == pid from posix_spawn", reported, pid);
    after_check("posix_spawn");
}

static int spawned_main(long parent) {
    struct ids d;
    collect(&d);
    check_ids("spawned child", &d, -1, d.getpid, parent);
    if (write(3, &d.getpid, sizeof d.getpid) != sizeof d.getpid)
        return 1;
    return failures != 0;
}

#define NT 3
static struct ids thread_ids[NT];

static void *thread_fn(void *arg) {
    collect(&thread_ids[(long)arg]);
    return NULL;
}

static void threads(void) {
    pthread_t t[NT];
    for (long i = 0; i < NT; i++)
        pthread_create(&t[i], NULL, thread_fn, (void *)i);
    for (int i = 0; i < NT; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < NT; i++) {
        char who[32];
        snprintf(who, sizeof who, "thread %d", i);
        check_ids(who, &thread_ids[i], main_ids.getpid, -1, main_ids.getppid);
        char what[64];
        snprintf(what, sizeof what, "thread %d: tid differs from the main thread's", i);
        check(what, thread_ids[i].gettid != main_ids.gettid, 1);
        for (int j = 0; j < i; j++) {
            snprintf(what, sizeof what, "thread %d: tid differs from thread %d's", i, j);
            check(what, thread_ids[i].gettid != thread_ids[j].gettid, 1);
        }
    }
    after_check("threads");
}

/* fork from a second thread: the child is a new single-threaded process
 * whose pid is its tid. */
static struct ids fork_thread_child;
static pid_t fork_thread_pid;
static struct ids fork_thread_self;

static void *fork_thread_fn(void *arg) {
    (void)arg;
    collect(&fork_thread_self);
    int p[2];
    if (pipe(p))
        exit(2);
    pid_t pid = fork();
    if (pid == 0) {
        struct ids d;
        collect(&d);
        _exit(write(p[1], &d, sizeof d) == sizeof d ? 0 : 3);
    }
    close(p[1]);
    read_exact(p[0], &fork_thread_child, sizeof fork_thread_child);
    close(p[0]);
    wait_ok(pid, "child forked by a thread");
    fork_thread_pid = pid;
    return NULL;
}

static void fork_from_thread(void) {
    pthread_t t;
    pthread_create(&t, NULL, fork_thread_fn, NULL);
    pthread_join(t, NULL);
    check_ids("forking thread", &fork_thread_self, main_ids.getpid, -1, -1);
    check_ids("child forked by a thread", &fork_thread_child, fork_thread_pid, fork_thread_pid, main_ids.getpid);
    after_check("fork from a thread");
}

/* A forked child starts threads of its own. */
static void *child_thread_fn(void *arg) {
    collect((struct ids *)arg);
    return NULL;
}

static void threads_in_child(void) {
    int p[2];
    if (pipe(p))
        exit(2);
    pid_t pid = fork();
    if (pid == 0) {
        struct ids d[2];
        collect(&d[0]);
        pthread_t t;
        pthread_create(&t, NULL, child_thread_fn, &d[1]);
        pthread_join(t, NULL);
        _exit(write(p[1], d, sizeof d) == sizeof d ? 0 : 3);
    }
    close(p[1]);
    struct ids d[2];
    read_exact(p[0], d, sizeof d);
    close(p[0]);
    wait_ok(pid, "child with a thread");
    check_ids("child with a thread, main thread", &d[0], pid, pid, main_ids.getpid);
    check_ids("child with a thread, second thread", &d[1], pid, -1, main_ids.getpid);
    check("child with a thread: second thread's tid differs", d[1].gettid != pid, 1);
}

/* ---- credentials (root only) ---- */

struct creds {
    long uid, euid, gid, egid;          /* libc getters */
    long raw_uid, raw_euid, raw_gid, raw_egid;
    long st_uid[4], st_gid[4];          /* status file of the calling thread */
};

static void collect_creds(struct creds *c) {
    c->uid = getuid();
    c->euid = geteuid();
    c->gid = getgid();
    c->egid = getegid();
    c->raw_uid = syscall(SYS_getuid);
    c->raw_euid = syscall(SYS_geteuid);
    c->raw_gid = syscall(SYS_getgid);
    c->raw_egid = syscall(SYS_getegid);
    status_ids("/proc/thread-self/status", "Uid:", c->st_uid);
    status_ids("/proc/thread-self/status", "Gid:", c->st_gid);
}

static void show_creds(const char *who, const struct creds *c) {
    say("%s: uid=%ld euid=%ld gid=%ld egid=%ld\n", who, c->uid, c->euid, c->gid, c->egid);
    char what[128];
#define CK(field, want)                                                                                     \
    do {                                                                                                   \
        snprintf(what, sizeof what, "%s: %s == kernel", who, #field);                                       \
        check(what, c->field, want);                                                                       \
    } while (0)
    CK(uid, c->st_uid[0]);
    CK(euid, c->st_uid[1]);
    CK(gid, c->st_gid[0]);
    CK(egid, c->st_gid[1]);
    CK(raw_uid, c->st_uid[0]);
    CK(raw_euid, c->st_uid[1]);
    CK(raw_gid, c->st_gid[0]);
    CK(raw_egid, c->st_gid[1]);
#undef CK
}

static void creds_drop(void) {
    struct creds c;
    collect_creds(&c);
    show_creds("root child before dropping", &c);
    if (setgroups(0, NULL) || setresgid(1001, 1002, 1003) || setresuid(2001, 2002, 2003)) {
        say("dropping privileges failed: %s\n", strerror(errno));
        failures++;
        return;
    }
    collect_creds(&c);
    show_creds("after setresgid/setresuid", &c);
    errno = 0;
    int r = setresuid(0, 0, 0);
    say("setresuid(0, 0, 0) after dropping: %d (%s)\n", r, strerror(errno));
    collect_creds(&c);
    show_creds("after the refused setresuid", &c);
    if (setresuid(-1, 2003, -1))
        say("setresuid(-1, 2003, -1): %s\n", strerror(errno));
    collect_creds(&c);
    show_creds("after setresuid(-1, 2003, -1)", &c);
    if (setuid(2001))
        say("setuid(2001): %s\n", strerror(errno));
    collect_creds(&c);
    show_creds("after setuid(2001)", &c);
    if (setegid(1003))
        say("setegid(1003): %s\n", strerror(errno));
    collect_creds(&c);
    show_creds("after setegid(1003)", &c);
}

/* A vfork child (shared memory, separate credentials) drops privileges; the
 * parent's answers must not change. */
static void creds_vfork(void) {
    int p[2];
    if (pipe(p))
        exit(2);
    pid_t pid = vfork();
    if (pid == 0) {
        long r[3];
        r[0] = syscall(SYS_setresuid, 3001, 3002, 3003);
        r[1] = syscall(SYS_getuid);
        r[2] = syscall(SYS_geteuid);
        syscall(SYS_write, p[1], r, sizeof r);
        syscall(SYS_exit, 0);
    }
    close(p[1]);
    long r[3];
    read_exact(p[0], r, sizeof r);
    close(p[0]);
    wait_ok(pid, "vfork child dropping privileges");
    say("vfork child: setresuid=%ld uid=%ld euid=%ld\n", r[0], r[1], r[2]);
    struct creds c;
    collect_creds(&c);
    show_creds("vfork parent afterwards", &c);
}

/* Credentials are per thread in the kernel: a raw setresuid changes only the
 * calling thread. */
static struct creds t_before, t_after;
static pthread_barrier_t bar;

static void *raw_setuid_thread(void *arg) {
    (void)arg;
    collect_creds(&t_before);
    syscall(SYS_setresuid, 4001, 4002, 4003);
    collect_creds(&t_after);
    pthread_barrier_wait(&bar); /* main looks at its own ids while we live */
    pthread_barrier_wait(&bar);
    return NULL;
}

static void creds_per_thread(void) {
    pthread_t t;
    pthread_barrier_init(&bar, NULL, 2);
    pthread_create(&t, NULL, raw_setuid_thread, NULL);
    pthread_barrier_wait(&bar);
    struct creds m;
    collect_creds(&m);
    pthread_barrier_wait(&bar);
    pthread_join(t, NULL);
    show_creds("thread before its raw setresuid", &t_before);
    show_creds("thread after its raw setresuid", &t_after);
    show_creds("main thread meanwhile", &m);
    collect_creds(&m);
    show_creds("main thread after the thread ended", &m);
}

/* The libc wrapper changes every thread (glibc's SIGSETXID, musl's synccall). */
static struct creds w_after;

static void *wrapper_waiter(void *arg) {
    (void)arg;
    pthread_barrier_wait(&bar); /* main calls setresuid */
    pthread_barrier_wait(&bar);
    collect_creds(&w_after);
    return NULL;
}

static void creds_all_threads(void) {
    pthread_t t;
    pthread_barrier_init(&bar, NULL, 2);
    pthread_create(&t, NULL, wrapper_waiter, NULL);
    pthread_barrier_wait(&bar);
    if (setresgid(5001, 5002, 5003) || setresuid(6001, 6002, 6003))
        say("setres[ug]id in a threaded process: %s\n", strerror(errno));
    pthread_barrier_wait(&bar);
    pthread_join(t, NULL);
    struct creds m;
    collect_creds(&m);
    show_creds("main thread after libc setresuid", &m);
    show_creds("other thread after libc setresuid", &w_after);
}

static void in_child(void (*fn)(void), const char *what) {
    pid_t pid = fork();
    if (pid == 0) {
        failures = 0; /* the parent counts its own; this child reports by status */
        fn();
        _exit(failures ? 1 : 0);
    }
    wait_ok(pid, what);
}

static int root_only(void) {
    if (geteuid() == 0) {
        say("running as root: credential checks\n");
        return 1;
    }
    say("not root: credential checks skipped\n");
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "spawned") == 0)
        return spawned_main(strtol(argv[2], NULL, 10));
    const char *mode = argc == 2 ? argv[1] : "";
    collect(&main_ids);
    if (strcmp(mode, "pids") == 0) {
        check_ids("main", &main_ids, -1, main_ids.proc_pid, -1);
        fork_child();
        vfork_child();
        spawn_child(argv[0]);
        threads();
        fork_from_thread();
        threads_in_child();
    } else if (strcmp(mode, "creds") == 0) {
        if (root_only()) {
            in_child(creds_drop, "credential drop");
            in_child(creds_vfork, "credential drop in a vfork child");
        }
    } else if (strcmp(mode, "thread-creds") == 0) {
        if (root_only())
            in_child(creds_per_thread, "per-thread credentials");
    } else if (strcmp(mode, "setxid") == 0) {
        if (root_only())
            in_child(creds_all_threads, "credentials of all threads");
    } else {
        say("usage: sl_ids pids|creds|thread-creds|setxid\n");
        return 2;
    }
    struct creds c;
    collect_creds(&c);
    show_creds("at the end", &c);
    say("failures: %d\n", failures);
    return failures != 0;
}
