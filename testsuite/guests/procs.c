/* Processes: fork/wait statuses, pipes, execve of itself, vfork, posix_spawn
 * (including the error path), /proc/self/exe. Run with an absolute argv[0]. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void describe(const char *what, int status) {
    if (WIFEXITED(status)) printf("%s: exited %d\n", what, WEXITSTATUS(status));
    else if (WIFSIGNALED(status)) printf("%s: killed by signal %d\n", what, WTERMSIG(status));
    else printf("%s: status %#x\n", what, status);
}

static void read_all(int fd, const char *what) {
    char buf[512];
    size_t n = 0;
    ssize_t r;
    while (n < sizeof buf - 1 && (r = read(fd, buf + n, sizeof buf - 1 - n)) > 0) n += (size_t)r;
    buf[n] = 0;
    printf("%s read %zu bytes: %s", what, n, buf);
    if (n == 0 || buf[n - 1] != '\n') printf("\n");
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "child") == 0) {
        printf("exec'd child: argc %d", argc);
        for (int i = 2; i < argc; i++) printf(" [%s]", argv[i]);
        printf(" env BT_PROCS=%s\n", getenv("BT_PROCS") ? getenv("BT_PROCS") : "(unset)");
        return 7;
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    pid_t me = getpid();

    int fds[2];
    if (pipe(fds)) return 2;
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        const char msg[] = "hello from the forked child\n";
        if (write(fds[1], msg, sizeof msg - 1) < 0) _exit(99);
        _exit(getppid() == me ? 5 : 6);
    }
    close(fds[1]);
    read_all(fds[0], "parent");
    close(fds[0]);
    int st;
    waitpid(pid, &st, 0);
    describe("forked child", st);

    pid = fork();
    if (pid == 0) { kill(getpid(), SIGKILL); _exit(1); }
    waitpid(pid, &st, 0);
    describe("child that kills itself", st);

    pid = fork();
    if (pid == 0) { *(volatile int *)0 = 1; _exit(1); }
    waitpid(pid, &st, 0);
    describe("child that segfaults", st);

    pid = vfork();
    if (pid == 0) _exit(3);
    waitpid(pid, &st, 0);
    describe("vfork child", st);

    /* execve of ourselves with a changed environment, output via a pipe */
    if (pipe(fds)) return 2;
    pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        char *args[] = {argv[0], "child", "one", "two words", NULL};
        char *envp[] = {"BT_PROCS=yes", NULL};
        execve(argv[0], args, envp);
        _exit(127);
    }
    close(fds[1]);
    read_all(fds[0], "exec");
    close(fds[0]);
    waitpid(pid, &st, 0);
    describe("exec'd child", st);

    /* posix_spawn of a static busybox, and of a program that does not exist */
    if (pipe(fds)) return 2;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    char *bargs[] = {"busybox", "echo", "spawned", "busybox", NULL};
    int rc = posix_spawn(&pid, "/bin/busybox", &fa, NULL, bargs, environ);
    close(fds[1]);
    printf("posix_spawn busybox: %d\n", rc);
    if (rc == 0) {
        read_all(fds[0], "spawn");
        waitpid(pid, &st, 0);
        describe("spawned busybox", st);
    }
    close(fds[0]);
    char *nargs[] = {"nope", NULL};
    rc = posix_spawn(&pid, "/nonexistent/program", NULL, NULL, nargs, environ);
    printf("posix_spawn nonexistent: %d (%s)\n", rc, rc == ENOENT ? "ENOENT" : "other");
    if (rc == 0) { waitpid(pid, &st, 0); describe("nonexistent spawn", st); }

    /* /proc/self/exe names the program itself */
    char exe[PATH_MAX], real[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = 0;
    printf("/proc/self/exe matches argv[0]: %s\n",
           realpath(argv[0], real) && strcmp(exe, real) == 0 ? "yes" : "no");

    errno = 0;
    int wr = (int)waitpid(-1, &st, WNOHANG);
    printf("waitpid with no children: %d errno %d\n", wr, errno);
    return 0;
}
