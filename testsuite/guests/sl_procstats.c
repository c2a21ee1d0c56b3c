/* Each process makes its own, distinct system calls, in numbers given on the
 * command line, so that bt-run's per-process --stats records can be checked
 * against who made which call:
 *
 *   sl_procstats A B C
 *
 * - the parent makes A getppid calls;
 * - a forked child makes B sched_yield calls, then exits (exit_group);
 * - a vfork child makes C umask calls, then exits (exit_group).
 * It prints "ROLE PID" for the three processes. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: sl_procstats A B C\n");
        return 2;
    }
    long a = atol(argv[1]), b = atol(argv[2]), c = atol(argv[3]);
    setvbuf(stdout, NULL, _IONBF, 0);
    printf("parent %ld\n", (long)syscall(SYS_getpid));
    for (long i = 0; i < a; i++)
        syscall(SYS_getppid);

    pid_t pid = fork();
    if (pid == 0) {
        for (long i = 0; i < b; i++)
            syscall(SYS_sched_yield);
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    printf("fork %ld\n", (long)pid);

    pid = vfork();
    if (pid == 0) {
        for (long i = 0; i < c; i++)
            syscall(SYS_umask, 022);
        _exit(0);
    }
    waitpid(pid, &st, 0);
    printf("vfork %ld\n", (long)pid);
    return 0;
}
