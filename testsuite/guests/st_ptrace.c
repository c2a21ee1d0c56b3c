/* A guest that traces its child with ptrace.
 *   harness   the child asks to be traced and stops itself; the parent
 *             reads and writes its memory (PEEKDATA/POKEDATA), reads the
 *             stop's siginfo, continues it with a signal of its own
 *             choosing suppressed, and collects the exit event and status:
 *             the same natively and under bt-run
 *   refused   requests that would step or skip a tracee's instructions or
 *             system calls (PTRACE_SINGLESTEP, PTRACE_SYSEMU): natively
 *             they succeed; a tracee under bt-run runs bt-run's code, so
 *             bt-run refuses them with EIO (documented in docs/design.md).
 *             Prints what each request returned.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile long shared = 1234;

static pid_t start_child(void) {
    pid_t pid = fork();
    if (pid == 0) {
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        raise(SIGSTOP);
        printf("child sees %ld\n", shared);
        fflush(stdout);
        _exit(7);
    }
    int st;
    waitpid(pid, &st, 0);
    printf("stopped %d by %s\n", WIFSTOPPED(st), strsignal(WSTOPSIG(st)));
    return pid;
}

static int harness(void) {
    pid_t pid = start_child();
    errno = 0;
    long v = ptrace(PTRACE_PEEKDATA, pid, (void *)&shared, 0);
    printf("peek %ld errno %d\n", v, errno);
    printf("poke %ld\n", ptrace(PTRACE_POKEDATA, pid, (void *)&shared, (void *)4321L));
    siginfo_t si;
    memset(&si, 0, sizeof si);
    long r = ptrace(PTRACE_GETSIGINFO, pid, 0, &si);
    printf("getsiginfo %ld: signo %d code %d\n", r, si.si_signo, si.si_code);
    printf("setoptions %ld\n", ptrace(PTRACE_SETOPTIONS, pid, 0, (void *)(long)PTRACE_O_TRACEEXIT));
    fflush(stdout);
    long cont = ptrace(PTRACE_CONT, pid, 0, 0);
    int st;
    waitpid(pid, &st, 0);
    printf("cont %ld\n", cont);
    printf("exit event %d\n", WIFSTOPPED(st) && (st >> 8) == (SIGTRAP | (PTRACE_EVENT_EXIT << 8)));
    unsigned long msg = 0;
    ptrace(PTRACE_GETEVENTMSG, pid, 0, &msg);
    printf("event message: exit status %lu\n", msg >> 8);
    ptrace(PTRACE_CONT, pid, 0, 0);
    waitpid(pid, &st, 0);
    printf("exited %d status %d\n", WIFEXITED(st), WEXITSTATUS(st));
    return 0;
}

static int refused(void) {
    pid_t pid = start_child();
    const struct {
        const char *name;
        int req;
    } reqs[] = {{"PTRACE_SYSEMU", PTRACE_SYSEMU}, {"PTRACE_SINGLESTEP", PTRACE_SINGLESTEP}};
    for (int i = 0; i < 2; i++) {
        errno = 0;
        long r = ptrace(reqs[i].req, pid, 0, 0);
        printf("%s: %ld errno %d\n", reqs[i].name, r, r ? errno : 0);
        if (r == 0) {
            int st;
            waitpid(pid, &st, 0);
        }
    }
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    printf("child killed %d\n", WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, 0, _IOLBF, 0);
    if (argc > 1 && !strcmp(argv[1], "harness"))
        return harness();
    if (argc > 1 && !strcmp(argv[1], "refused"))
        return refused();
    fprintf(stderr, "usage: st_ptrace harness|refused\n");
    return 2;
}
