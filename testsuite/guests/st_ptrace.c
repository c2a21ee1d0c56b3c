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
 *   syscalls  the parent follows the child's system calls (PTRACE_SYSCALL,
 *             TRACESYSGOOD) and prints each stop: entry or exit, number,
 *             arch, first argument, result, and whether the registers
 *             (GETREGS, PEEKUSER, GETREGSET) agree with the kernel's
 *             description (PTRACE_GET_SYSCALL_INFO) and with a syscall
 *             instruction at rip - 2; it changes calls on the way (their
 *             number, an argument, the result, or skips them) with POKEUSER,
 *             SETREGS and SETREGSET, and the child prints what it got.
 *   fault     the child, with a SIGSEGV handler, jumps to a page without
 *             execute permission; the parent sees the signal's stop (rip,
 *             si_code, si_addr), suppresses it (the jump faults again),
 *             then lets it through to the handler.
 *   breakpoint  as a debugger does: the parent writes an int3 over the
 *             first byte of a function the child has already run, takes
 *             the SIGTRAP at each call, puts the byte back, moves rip back,
 *             single-steps, puts the int3 in again and continues; then it
 *             takes the breakpoint out for good. The child prints what its
 *             calls returned.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <elf.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
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

/* The kernel's struct ptrace_syscall_info, named here so that the program
 * builds with any libc's headers. */
#define GET_SYSCALL_INFO 0x420e
#define INFO_ENTRY 1
#define INFO_EXIT 2
#define ARCH_X86_64 0xc000003eu
#define ARCH_I386 0x40000003u
struct sc_info {
    uint8_t op;
    uint8_t pad[3];
    uint32_t arch;
    uint64_t instruction_pointer, stack_pointer;
    union {
        struct {
            uint64_t nr, args[6];
        } entry;
        struct {
            int64_t rval;
            uint8_t is_error;
        } exit;
    };
};

/* The child's calls, in order; the parent changes each as the comment says. */
static void syscalls_child(void) {
    long me = syscall(SYS_getpid);
    ptrace(PTRACE_TRACEME, 0, 0, 0);
    raise(SIGSTOP);
    long a = syscall(SYS_getppid);                  /* entry: becomes getpid (POKEUSER) */
    long b = syscall(SYS_getppid);                  /* entry: skipped, 777 (SETREGS) */
    long c = syscall(SYS_lseek, -1, 12345, SEEK_SET); /* exit: 42 (SETREGS) */
    sigset_t set;
    sigemptyset(&set);
    long d = syscall(SYS_rt_sigprocmask, 99, &set, NULL, 8); /* entry: how = SIG_BLOCK (POKEUSER) */
    long e = syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, NULL, 8); /* exit: 43 (SETREGSET) */
    long f = syscall(SYS_rt_sigprocmask, 98, &set, NULL, 8); /* entry: skipped, 778 (SETREGSET) */
    long g = syscall(SYS_lseek, -1, 0, 77);         /* untouched */
    long h;
    __asm__ volatile("int $0x80" : "=a"(h) : "a"(64L) : "memory"); /* i386 getppid, untouched */
    char buf[256];
    int n = snprintf(buf, sizeof buf, "child: a is its pid %d, b %ld, c %ld, d %ld, e %ld, f %ld, g %ld, h is its parent %d\n",
                     a == me, b, c, d, e, f, g, h == getppid());
    syscall(SYS_write, 1, buf, n);
    syscall(SYS_exit_group, 3);
}

static long peekuser(pid_t pid, size_t off) {
    errno = 0;
    return ptrace(PTRACE_PEEKUSER, pid, (void *)off, 0);
}

static int follow_syscalls(void) {
    int anchor; /* the child's stack is a copy of ours */
    pid_t pid = fork();
    if (pid == 0)
        syscalls_child();
    int st;
    waitpid(pid, &st, 0);
    printf("stopped %d by %s\n", WIFSTOPPED(st), strsignal(WSTOPSIG(st)));
    ptrace(PTRACE_SETOPTIONS, pid, 0, (void *)(long)PTRACE_O_TRACESYSGOOD);
    int getppids = 0, in_entry = 0;
    long entry_nr = -1, entry_a0 = 0, entry_a1 = 0;
    for (int stops = 0; stops < 400; stops++) {
        ptrace(PTRACE_SYSCALL, pid, 0, 0);
        waitpid(pid, &st, 0);
        if (WIFEXITED(st)) {
            printf("child exited %d\n", WEXITSTATUS(st));
            return 0;
        }
        if (!WIFSTOPPED(st) || WSTOPSIG(st) != (SIGTRAP | 0x80)) {
            printf("unexpected stop %#x\n", st);
            continue;
        }
        struct sc_info info;
        memset(&info, 0, sizeof info);
        long isz = ptrace(GET_SYSCALL_INFO, pid, (void *)sizeof info, &info);
        struct user_regs_struct r;
        ptrace(PTRACE_GETREGS, pid, 0, &r);
        struct user_regs_struct rs;
        struct iovec iov = {&rs, sizeof rs};
        ptrace(PTRACE_GETREGSET, pid, (void *)NT_PRSTATUS, &iov);
        int i386 = info.arch == ARCH_I386;
        long insn = ptrace(PTRACE_PEEKDATA, pid, (void *)(r.rip - 2), 0) & 0xffff;
        int ok = isz > 0 && info.instruction_pointer == r.rip && info.stack_pointer == r.rsp &&
                 !memcmp(&r, &rs, sizeof r) && iov.iov_len == sizeof rs &&
                 (unsigned long)peekuser(pid, offsetof(struct user_regs_struct, rip)) == r.rip &&
                 (unsigned long)peekuser(pid, offsetof(struct user_regs_struct, orig_rax)) == r.orig_rax &&
                 insn == (i386 ? 0x80cd : 0x050f) && (i386 || (r.rcx == r.rip && r.r11 == r.eflags)) &&
                 labs((long)r.rsp - (long)(uintptr_t)&anchor) < (1l << 20);
        const char *arch = i386 ? "i386" : info.arch == ARCH_X86_64 ? "x86_64" : "?";
        if (info.op == INFO_ENTRY) {
            unsigned long a0 = i386 ? r.rbx : r.rdi;
            ok = ok && !in_entry && isz == offsetof(struct sc_info, entry.args) + 6 * 8 &&
                 info.entry.nr == r.orig_rax && info.entry.args[0] == a0 && (unsigned long)r.rax == (unsigned long)-ENOSYS;
            in_entry = 1;
            entry_nr = info.entry.nr;
            entry_a0 = info.entry.args[0];
            entry_a1 = info.entry.args[1];
            printf("entry %s nr %llu a0 %ld%s\n", arch, (unsigned long long)info.entry.nr,
                   entry_nr == SYS_rt_sigprocmask && entry_a0 > 2 ? entry_a0 : entry_nr == SYS_lseek ? entry_a0 : 0,
                   ok ? "" : "  (registers disagree)");
            if (i386)
                continue;
            if (entry_nr == SYS_getppid && getppids == 0) {
                getppids++;
                printf("  poke orig_rax = getpid: %ld\n",
                       ptrace(PTRACE_POKEUSER, pid, (void *)offsetof(struct user_regs_struct, orig_rax), (void *)(long)SYS_getpid));
            } else if (entry_nr == SYS_getppid && getppids == 1) {
                getppids++;
                r.orig_rax = -1;
                r.rax = 777;
                printf("  setregs: skip, 777: %ld\n", ptrace(PTRACE_SETREGS, pid, 0, &r));
            } else if (entry_nr == SYS_rt_sigprocmask && entry_a0 == 99) {
                printf("  poke rdi = SIG_BLOCK: %ld\n",
                       ptrace(PTRACE_POKEUSER, pid, (void *)offsetof(struct user_regs_struct, rdi), (void *)(long)SIG_BLOCK));
            } else if (entry_nr == SYS_rt_sigprocmask && entry_a0 == 98) {
                rs.orig_rax = -1;
                rs.rax = 778;
                printf("  setregset: skip, 778: %ld\n", ptrace(PTRACE_SETREGSET, pid, (void *)NT_PRSTATUS, &iov));
            }
        } else if (info.op == INFO_EXIT) {
            ok = ok && in_entry && isz == offsetof(struct sc_info, exit.is_error) + 1 &&
                 info.exit.rval == (long)r.rax && info.exit.is_error == (info.exit.rval < 0 && info.exit.rval > -4096);
            in_entry = 0;
            int ours = entry_nr == SYS_lseek || entry_nr == SYS_getppid || entry_nr == 64 ||
                       (entry_nr == SYS_rt_sigprocmask && entry_a0 != SIG_SETMASK);
            long long rv = ours ? (long long)info.exit.rval : 0LL;
            if (rv == pid)
                printf("exit %s rval <the child's pid>%s\n", arch, ok ? "" : "  (registers disagree)");
            else if (rv == getpid())
                printf("exit %s rval <the parent's pid>%s\n", arch, ok ? "" : "  (registers disagree)");
            else
                printf("exit %s rval %lld%s\n", arch, rv, ok ? "" : "  (registers disagree)");
            if (entry_nr == SYS_lseek && (int)entry_a0 == -1 && entry_a1 == 12345) {
                r.rax = 42;
                printf("  setregs: 42: %ld\n", ptrace(PTRACE_SETREGS, pid, 0, &r));
            } else if (entry_nr == SYS_rt_sigprocmask && entry_a0 == SIG_BLOCK && entry_a1 == 0) {
                rs.rax = 43;
                printf("  setregset: 43: %ld\n", ptrace(PTRACE_SETREGSET, pid, (void *)NT_PRSTATUS, &iov));
            }
        } else {
            printf("stop op %d\n", info.op);
        }
    }
    printf("too many stops\n");
    kill(pid, SIGKILL);
    return 1;
}

static void on_segv(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    static const char msg[] = "child: handler ran\n";
    write(1, msg, sizeof msg - 1);
    _exit(sig == SIGSEGV && si->si_code == SEGV_ACCERR ? 5 : 6);
}

__attribute__((noinline)) int bp_target(int x) {
    __asm__ volatile("" ::: "memory");
    return x * 3 + 1;
}

static int (*volatile bp_call)(int) = bp_target;

static int follow_breakpoint(void) {
    pid_t pid = fork();
    if (pid == 0) {
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        int s = bp_call(10); /* translated before the breakpoint goes in */
        raise(SIGSTOP);
        for (int i = 0; i < 3; i++)
            s += bp_call(i);
        char buf[64];
        int n = snprintf(buf, sizeof buf, "child: sum %d\n", s);
        write(1, buf, n);
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    printf("stopped %d by %s\n", WIFSTOPPED(st), strsignal(WSTOPSIG(st)));
    unsigned long at = (unsigned long)bp_target;
    errno = 0;
    long orig = ptrace(PTRACE_PEEKTEXT, pid, (void *)at, 0);
    long with_bp = (orig & ~0xffL) | 0xcc;
    printf("insert: %ld\n", ptrace(PTRACE_POKETEXT, pid, (void *)at, (void *)with_bp));
    for (int hit = 0; hit < 4; hit++) {
        ptrace(PTRACE_CONT, pid, 0, 0);
        waitpid(pid, &st, 0);
        if (WIFEXITED(st)) {
            printf("child exited %d\n", WEXITSTATUS(st));
            return 0;
        }
        struct user_regs_struct r;
        ptrace(PTRACE_GETREGS, pid, 0, &r);
        siginfo_t si;
        memset(&si, 0, sizeof si);
        ptrace(PTRACE_GETSIGINFO, pid, 0, &si);
        printf("hit %d: %s, rip just after the int3 %d, si_code %#x, argument %llu\n", hit, strsignal(WSTOPSIG(st)),
               r.rip == at + 1, si.si_code, (unsigned long long)r.rdi);
        ptrace(PTRACE_POKETEXT, pid, (void *)at, (void *)orig);
        r.rip = at;
        printf("  back: %ld\n", ptrace(PTRACE_SETREGS, pid, 0, &r));
        printf("  step: %ld\n", ptrace(PTRACE_SINGLESTEP, pid, 0, 0));
        waitpid(pid, &st, 0);
        struct user_regs_struct r2;
        ptrace(PTRACE_GETREGS, pid, 0, &r2);
        memset(&si, 0, sizeof si);
        ptrace(PTRACE_GETSIGINFO, pid, 0, &si);
        printf("  stepped: %s, one instruction on %d, si_code %d\n", strsignal(WSTOPSIG(st)),
               r2.rip > at && r2.rip <= at + 15, si.si_code);
        if (hit < 2)
            ptrace(PTRACE_POKETEXT, pid, (void *)at, (void *)with_bp);
    }
    printf("too many hits\n");
    kill(pid, SIGKILL);
    return 1;
}

static int follow_fault(void) {
    void *page = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    pid_t pid = fork();
    if (pid == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_segv;
        sa.sa_flags = SA_SIGINFO;
        sigaction(SIGSEGV, &sa, 0);
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        raise(SIGSTOP);
        ((void (*)(void))page)();
        _exit(1);
    }
    int st;
    waitpid(pid, &st, 0);
    printf("stopped %d by %s\n", WIFSTOPPED(st), strsignal(WSTOPSIG(st)));
    for (int round = 0; round < 2; round++) {
        ptrace(PTRACE_CONT, pid, 0, 0);
        waitpid(pid, &st, 0);
        struct user_regs_struct r;
        ptrace(PTRACE_GETREGS, pid, 0, &r);
        siginfo_t si;
        memset(&si, 0, sizeof si);
        ptrace(PTRACE_GETSIGINFO, pid, 0, &si);
        printf("round %d: stopped %d by %s, rip at the page %d, si_code %d, si_addr at the page %d\n", round, WIFSTOPPED(st),
               strsignal(WSTOPSIG(st)), r.rip == (unsigned long)page, si.si_code, si.si_addr == page);
        fflush(stdout);
    }
    ptrace(PTRACE_CONT, pid, 0, (void *)(long)SIGSEGV);
    waitpid(pid, &st, 0);
    printf("child exited %d status %d\n", WIFEXITED(st), WEXITSTATUS(st));
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, 0, _IOLBF, 0);
    if (argc > 1 && !strcmp(argv[1], "harness"))
        return harness();
    if (argc > 1 && !strcmp(argv[1], "refused"))
        return refused();
    if (argc > 1 && !strcmp(argv[1], "syscalls"))
        return follow_syscalls();
    if (argc > 1 && !strcmp(argv[1], "fault"))
        return follow_fault();
    if (argc > 1 && !strcmp(argv[1], "breakpoint"))
        return follow_breakpoint();
    fprintf(stderr, "usage: st_ptrace harness|refused|syscalls|fault|breakpoint\n");
    return 2;
}
