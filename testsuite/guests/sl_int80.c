/* i386 system calls from a 64-bit program: `int $0x80` with eax = number
 * and ebx, ecx, edx, esi, edi, ebp as arguments (the kernel's compat table,
 * 32-bit arguments). Everything the calls point at lives in a MAP_32BIT
 * buffer, so the PIE variants (loaded above 4 GiB) work too. Output is
 * deterministic (no pids or addresses) so native and bt-run runs compare.
 *
 *   sl_int80 calls       the whole tour; run in an empty directory (creates
 *                        i80.tmp there); exits 7 through i386 exit_group
 *   sl_int80 trace       a few calls whose strace lines are compared
 *   sl_int80 deny        open and openat of i80-denied.tmp, then mmap2
 *   sl_int80 count N     N getpid, N writes of one byte, N writes from a bad
 *                        pointer, N close(-1), one open of a missing file
 *   sl_int80 exec-child  what `calls` execs through i386 execve
 *   sl_int80 sysenter    `sysenter` in 64-bit code: the signal it raises
 *                        (on AMD CPUs #UD, SIGILL at the instruction)
 *   sl_int80 sigaction   i386 rt_sigaction installing a handler (which
 *                        bt-run refuses with ENOSYS: no ia32 frames) */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

/* i386 numbers (arch/x86/entry/syscalls/syscall_32.tbl). */
enum {
    I_EXIT = 1, I_FORK = 2, I_READ = 3, I_WRITE = 4, I_OPEN = 5, I_CLOSE = 6, I_WAITPID = 7,
    I_EXECVE = 11, I_GETPID = 20, I_BRK = 45, I_SGETMASK = 68, I_SSETMASK = 69, I_OLD_MMAP = 90, I_MUNMAP = 91,
    I_READLINK = 85, I_SIGPROCMASK = 126, I_RT_SIGACTION = 174, I_SIGALTSTACK = 186, I_MMAP2 = 192, I_STAT64 = 195,
    I_EXIT_GROUP = 252, I_OPENAT = 295, I_STATX = 383,
};

/* An i386 call; the result is rax as the kernel leaves it. */
__attribute__((noinline)) static long i80(long nr, long b, long c, long d, long s, long di, long bp) {
    long ret;
    __asm__ volatile("lea -128(%%rsp), %%rsp\n\t"
                     "push %%rbp\n\t"
                     "mov %7, %%rbp\n\t"
                     "int $0x80\n\t"
                     "pop %%rbp\n\t"
                     "lea 128(%%rsp), %%rsp"
                     : "=a"(ret)
                     : "0"(nr), "b"(b), "c"(c), "d"(d), "S"(s), "D"(di), "r"(bp)
                     : "memory", "cc");
    return ret;
}
#define I0(n) i80(n, 0, 0, 0, 0, 0, 0)
#define I1(n, a) i80(n, (long)(a), 0, 0, 0, 0, 0)
#define I2(n, a, b) i80(n, (long)(a), (long)(b), 0, 0, 0, 0)
#define I3(n, a, b, c) i80(n, (long)(a), (long)(b), (long)(c), 0, 0, 0)

/* regs_int80(in, out): every general register from in[] (rax, rbx, rcx,
 * rdx, rsi, rdi, rbp, r8..r15), flags made known, `int $0x80`; out[] gets
 * the registers after it, then the flags before and after. */
__asm__(".text\n"
        ".globl regs_int80\n"
        "regs_int80:\n"
        "push %rbx\n push %rbp\n push %r12\n push %r13\n push %r14\n push %r15\n"
        "push %rsi\n"
        "mov 0(%rdi), %rax\n mov 8(%rdi), %rbx\n mov 16(%rdi), %rcx\n mov 24(%rdi), %rdx\n"
        "mov 32(%rdi), %rsi\n mov 48(%rdi), %rbp\n"
        "mov 56(%rdi), %r8\n mov 64(%rdi), %r9\n mov 72(%rdi), %r10\n mov 80(%rdi), %r11\n"
        "mov 88(%rdi), %r12\n mov 96(%rdi), %r13\n mov 104(%rdi), %r14\n mov 112(%rdi), %r15\n"
        "mov 40(%rdi), %rdi\n"
        "cmp $19, %eax\n stc\n"
        "pushfq\n"
        "int $0x80\n"
        "pushfq\n"
        "push %rax\n"
        "mov 24(%rsp), %rax\n"
        "mov %rbx, 8(%rax)\n mov %rcx, 16(%rax)\n mov %rdx, 24(%rax)\n mov %rsi, 32(%rax)\n"
        "mov %rdi, 40(%rax)\n mov %rbp, 48(%rax)\n"
        "mov %r8, 56(%rax)\n mov %r9, 64(%rax)\n mov %r10, 72(%rax)\n mov %r11, 80(%rax)\n"
        "mov %r12, 88(%rax)\n mov %r13, 96(%rax)\n mov %r14, 104(%rax)\n mov %r15, 112(%rax)\n"
        "pop %rcx\n mov %rcx, 0(%rax)\n"
        "pop %rcx\n mov %rcx, 128(%rax)\n"
        "pop %rcx\n mov %rcx, 120(%rax)\n"
        "pop %rsi\n"
        "pop %r15\n pop %r14\n pop %r13\n pop %r12\n pop %rbp\n pop %rbx\n"
        "ret\n");
void regs_int80(const uint64_t *in, uint64_t *out);

static const char *const REG_NAMES[15] = {"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "r8",
                                          "r9",  "r10", "r11", "r12", "r13", "r14", "r15"};

/* Memory below 4 GiB for everything the i386 calls point at. */
static char *low;

static char *low_str(size_t off, const char *s) {
    strcpy(low + off, s);
    return low + off;
}

static const char *errname(long e) {
    switch (e) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EBADF: return "EBADF";
    case EFAULT: return "EFAULT";
    case EINVAL: return "EINVAL";
    case ENOSYS: return "ENOSYS";
    case EINTR: return "EINTR";
    case EACCES: return "EACCES";
    default: return "?";
    }
}

static void show(const char *what, long r) {
    if (r < 0 && r > -4096)
        printf("%s: -1 %s (rax %#lx)\n", what, errname(-r), (unsigned long)r);
    else
        printf("%s: %ld\n", what, r);
    fflush(stdout);
}

/* Registers across `int $0x80`: all kept but rax; the flags too. */
static void registers(const char *what, uint64_t rax, uint64_t rbx, uint64_t rcx, uint64_t rdx) {
    uint64_t in[15], out[17];
    for (int i = 0; i < 15; i++)
        in[i] = 0x1111111111111111ull * (uint64_t)(i + 1) ^ 0x0123456789abcdefull;
    in[0] = rax;
    in[1] = rbx;
    in[2] = rcx;
    in[3] = rdx;
    regs_int80(in, out);
    int kept = 1;
    for (int i = 1; i < 15; i++)
        if (out[i] != in[i]) {
            printf("%s: %s changed from %#lx to %#lx\n", what, REG_NAMES[i], (unsigned long)in[i], (unsigned long)out[i]);
            kept = 0;
        }
    printf("%s: other registers %s, flags before %#lx after %#lx\n", what, kept ? "kept" : "CHANGED", (unsigned long)out[15],
           (unsigned long)out[16]);
    if (rax == I_GETPID || (rax & 0xffffffff) == I_GETPID)
        printf("%s: rax == getpid(): %s\n", what, out[0] == (uint64_t)getpid() ? "yes" : "no");
    else
        printf("%s: rax = %#lx\n", what, (unsigned long)out[0]);
}

static int usr1_seen;
static void on_usr1(int sig) {
    (void)sig;
    usr1_seen++;
}

static int alarm_pipe[2];
static void on_alarm(int sig) {
    (void)sig;
    if (write(alarm_pipe[1], "x", 1) != 1)
        _exit(98);
}

/* State letter of process `pid` (/proc/PID/stat), or 0. */
static char proc_state(pid_t pid) {
    char path[64], b[512] = {0};
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(b, 1, sizeof b - 1, f);
    fclose(f);
    b[n] = 0;
    char *close_paren = strrchr(b, ')');
    return close_paren && close_paren[1] == ' ' ? close_paren[2] : 0;
}

/* A blocking i386 read interrupted by a signal whose handler makes the
 * data: restarted with SA_RESTART, EINTR without. A child sends the signal
 * once this process sleeps (in the read). */
static void interrupted_read(int restart) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = restart ? SA_RESTART : 0;
    sigaction(SIGALRM, &sa, NULL);
    if (pipe(alarm_pipe) != 0)
        _exit(97);
    fflush(stdout);
    pid_t parent = getpid(), kid = fork();
    if (kid == 0) {
        for (int i = 0; i < 20000; i++) {
            if (proc_state(parent) == 'S') {
                kill(parent, SIGALRM);
                _exit(0);
            }
            usleep(500);
        }
        _exit(1);
    }
    long r = I3(I_READ, alarm_pipe[0], low + 3000, 1);
    show(restart ? "read interrupted by a handler with SA_RESTART" : "read interrupted by a handler without SA_RESTART", r);
    if (r < 0)
        show("read again", I3(I_READ, alarm_pipe[0], low + 3000, 1));
    int ws;
    waitpid(kid, &ws, 0);
    close(alarm_pipe[0]);
    close(alarm_pipe[1]);
}

static int calls(const char *self) {
    /* getpid, with a number whose high bits the kernel ignores. */
    printf("getpid == libc getpid: %s\n", I0(I_GETPID) == getpid() ? "yes" : "no");
    printf("getpid (high bits in rax) == libc getpid: %s\n", i80(0x7fff00000000l | I_GETPID, 0, 0, 0, 0, 0, 0) == getpid() ? "yes" : "no");
    fflush(stdout);

    char *msg = low_str(0, "written by i386 write\n");
    show("write", I3(I_WRITE, 1, msg, strlen(msg)));
    /* Arguments are 32 bits: fd 0x100000001 is fd 1. */
    show("write with high bits in ebx", i80(I_WRITE, 0x100000001l, (long)msg, 8, 0, 0, 0));
    show("write from a bad pointer", I3(I_WRITE, 1, 16, 5));
    /* A good 64-bit pointer is cut to 32 bits (here: 0x1000, never mapped).
     * Below 64 TiB, where bt-run's isolation lets a program map. */
    char *high = mmap((void *)0x0a5a00001000l, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (high != MAP_FAILED) {
        strcpy(high, "high\n");
        show("write from a pointer above 4 GiB", I3(I_WRITE, 1, high, 5));
    }
    show("unknown number 9999", I0(9999));
    show("unknown number 223", I0(223));

    /* A file created, written, read back, closed. */
    char *path = low_str(64, "i80.tmp");
    long fd = I3(I_OPEN, path, 01 | 0100 | 01000 /* O_WRONLY|O_CREAT|O_TRUNC */, 0640);
    printf("open for writing: %s\n", fd >= 0 ? "a descriptor" : "failed");
    char *data = low_str(128, "file data\n");
    show("write to it", I3(I_WRITE, fd, data, 10));
    show("close", I1(I_CLOSE, fd));
    show("close again", I1(I_CLOSE, fd));
    fd = I3(I_OPENAT, -100 /* AT_FDCWD */, path, 0 /* O_RDONLY */);
    memset(low + 256, 0, 64);
    show("openat + read", I3(I_READ, fd, low + 256, 64));
    printf("read back: %s", low + 256);
    I1(I_CLOSE, fd);
    struct stat st;
    if (stat("i80.tmp", &st) == 0)
        printf("i80.tmp: mode %o, %ld bytes\n", (unsigned)(st.st_mode & 07777), (long)st.st_size);
    show("open of a missing file", I3(I_OPEN, low_str(192, "no-such-dir/x"), 0, 0));

    /* /proc/self/exe is the program (stat64, statx, open, readlink). */
    char *real = realpath(self, NULL);
    struct stat prog;
    if (!real || stat(real, &prog) != 0)
        return 1;
    char *exe = low_str(3072, "/proc/self/exe");
    char *st64 = low + 3136, *st64b = low + 3328;
    memset(st64, 0, 192);
    memset(st64b, 0, 192);
    show("stat64 /proc/self/exe", I2(I_STAT64, exe, st64));
    I2(I_STAT64, low_str(3520, real), st64b);
    printf("same as stat64 of the program: %s\n", memcmp(st64, st64b, 96) == 0 ? "yes" : "no");
    char *stx = low + 4608;
    memset(stx, 0, 256);
    show("statx /proc/self/exe", i80(I_STATX, -100, (long)exe, 0, 0x7ff, (long)stx, 0));
    printf("statx ino is the program's: %s\n", *(uint64_t *)(stx + 32) == (uint64_t)prog.st_ino ? "yes" : "no");
    fd = I3(I_OPEN, exe, 0, 0);
    struct stat opened;
    printf("open /proc/self/exe opens the program: %s\n", fd >= 0 && fstat((int)fd, &opened) == 0 && opened.st_ino == prog.st_ino ? "yes" : "no");
    I1(I_CLOSE, fd);
    memset(low + 5120, 0, 1024);
    long n = I3(I_READLINK, exe, low + 5120, 1023);
    printf("readlink /proc/self/exe is the program: %s\n", n == (long)strlen(real) && !strcmp(low + 5120, real) ? "yes" : "no");
    free(real);

    registers("getpid", I_GETPID, 0, 0, 0);
    registers("getpid (rax high bits)", 0xdead000000000000ull | I_GETPID, 0, 0, 0);
    registers("bad write", I_WRITE, 1, 16, 5);
    registers("unknown number", 1000, 0, 0, 0);

    /* The break is the process's: the same as the x86-64 brk(0). */
    printf("brk(0) == x86-64 brk(0): %s\n", I1(I_BRK, 0) == syscall(SYS_brk, 0) ? "yes" : "no");

    /* mmap2 places mappings below 4 GiB; code written there runs, and an
     * `int $0x80` inside it is an i386 call too. */
    long m = i80(I_MMAP2, 0, 4096, 7 /* RWX */, 0x22 /* MAP_PRIVATE|MAP_ANONYMOUS */, -1, 0);
    printf("mmap2: %s\n", m > 0 && m < 0x100000000l ? "below 4 GiB" : "elsewhere");
    static const unsigned char code[] = {0xb8, 20, 0, 0, 0, 0xcd, 0x80, 0xc3}; /* mov eax, 20; int $0x80; ret */
    memcpy((void *)m, code, sizeof code);
    long (*fn)(void) = (long (*)(void))m;
    printf("code in it: getpid %s\n", fn() == getpid() ? "yes" : "no");
    show("munmap", I2(I_MUNMAP, m, 4096));
    /* The old mmap reads its six arguments from memory. */
    uint32_t *args = (uint32_t *)(low + 512);
    uint32_t a6[6] = {0, 8192, 3, 0x22, 0xffffffff, 0};
    memcpy(args, a6, sizeof a6);
    m = I1(I_OLD_MMAP, args);
    printf("old mmap: %s\n", m > 0 && m < 0x100000000l ? "below 4 GiB" : "elsewhere");
    show("munmap", I2(I_MUNMAP, m, 8192));
    args[5] = 100;
    show("old mmap, unaligned offset", I1(I_OLD_MMAP, args));
    show("old mmap, bad pointer", I1(I_OLD_MMAP, 16));

    /* The signal mask: i386 sigprocmask blocks SIGUSR1, the x86-64 call sees
     * it; the signal waits until unblocked. */
    signal(SIGUSR1, on_usr1);
    uint32_t *set = (uint32_t *)(low + 576);
    set[0] = 1u << (SIGUSR1 - 1);
    set[1] = 0xdeadbeef;
    show("sigprocmask(SIG_BLOCK)", I3(I_SIGPROCMASK, SIG_BLOCK, set, 0));
    sigset_t now;
    sigprocmask(SIG_BLOCK, NULL, &now);
    printf("SIGUSR1 blocked: %s\n", sigismember(&now, SIGUSR1) ? "yes" : "no");
    raise(SIGUSR1);
    printf("handler ran while blocked: %s\n", usr1_seen ? "yes" : "no");
    show("sigprocmask(SIG_UNBLOCK), old set", I3(I_SIGPROCMASK, SIG_UNBLOCK, set, set + 1));
    printf("old set: %#x, handler ran: %d\n", set[1], usr1_seen);
    show("sigprocmask, bad how", I3(I_SIGPROCMASK, 7, set, 0));
    show("sigprocmask, bad pointer", I3(I_SIGPROCMASK, SIG_BLOCK, 16, 0));
    /* sgetmask/ssetmask: the first word of the mask. */
    sigset_t usr2;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    sigprocmask(SIG_BLOCK, &usr2, NULL);
    printf("sgetmask has SIGUSR2: %s\n", I0(I_SGETMASK) & (1l << (SIGUSR2 - 1)) ? "yes" : "no");
    printf("ssetmask(0) returned SIGUSR2: %s\n", I1(I_SSETMASK, 0) & (1l << (SIGUSR2 - 1)) ? "yes" : "no");
    sigprocmask(SIG_BLOCK, NULL, &now);
    printf("SIGUSR2 blocked after ssetmask(0): %s\n", sigismember(&now, SIGUSR2) ? "yes" : "no");
    /* sigaltstack with the i386 stack_t. */
    uint32_t *ss = (uint32_t *)(low + 4096);
    ss[0] = (uint32_t)(uintptr_t)(low + 8192);
    ss[1] = 0;
    ss[2] = 16384;
    show("sigaltstack", I2(I_SIGALTSTACK, ss, 0));
    stack_t cur;
    sigaltstack(NULL, &cur);
    printf("x86-64 sigaltstack sees it: %s\n", cur.ss_sp == (void *)(low + 8192) && cur.ss_size == 16384 ? "yes" : "no");
    ss[1] = SS_DISABLE;
    show("sigaltstack(SS_DISABLE), old", I2(I_SIGALTSTACK, ss, ss + 3));
    printf("old: size %u, flags %u\n", ss[5], ss[4]);
    interrupted_read(1);
    interrupted_read(0);

    /* fork; the child ends with i386 exit; waitpid. */
    fflush(stdout);
    long pid = I0(I_FORK);
    if (pid == 0) {
        const char *c = low_str(640, "child of i386 fork\n");
        I3(I_WRITE, 1, c, strlen(c));
        I1(I_EXIT, 3);
        _exit(99);
    }
    int *status = (int *)(low + 704);
    printf("waitpid == fork's pid: %s\n", I3(I_WAITPID, pid, status, 0) == pid ? "yes" : "no");
    printf("child: exited %d\n", WIFEXITED(*status) ? WEXITSTATUS(*status) : -1);

    /* execve with 32-bit argv and envp arrays. */
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        uint32_t *argv = (uint32_t *)(low + 768);
        uint32_t *envp = argv + 4;
        char *p = low_str(1024, self);
        argv[0] = (uint32_t)(uintptr_t)p;
        argv[1] = (uint32_t)(uintptr_t)low_str(2048, "exec-child");
        argv[2] = (uint32_t)(uintptr_t)low_str(2112, "second arg");
        argv[3] = 0;
        envp[0] = (uint32_t)(uintptr_t)low_str(2176, "I80_ENV=from i386 execve");
        envp[1] = 0;
        long r = I3(I_EXECVE, p, argv, envp);
        printf("execve failed: %ld\n", r);
        _exit(1);
    }
    int ws;
    waitpid((pid_t)pid, &ws, 0);
    printf("exec child: exited %d\n", WIFEXITED(ws) ? WEXITSTATUS(ws) : -1);
    show("execve of a missing file", I3(I_EXECVE, low_str(192, "/no-such-dir/x"), 0, 0));

    printf("exit_group(7)\n");
    fflush(stdout);
    I1(I_EXIT_GROUP, 7);
    return 99;
}

static int trace(void) {
    char *msg = low_str(0, "i386 write\n");
    I0(I_GETPID);
    I3(I_WRITE, 1, msg, strlen(msg));
    I3(I_WRITE, 1, 16, 5);
    long fd = I3(I_OPEN, low_str(64, "i80-trace.tmp"), 01 | 0100 | 01000 | 02000000 /* O_CLOEXEC */, 0600);
    I3(I_WRITE, fd, low_str(128, "tab\there \"quoted\" and a longer tail to be cut\n"), 46);
    I1(I_CLOSE, fd);
    I3(I_OPEN, low_str(192, "/no-such-dir/x"), 0, 0);
    I0(9999);
    long m = i80(I_MMAP2, 0, 8192, 3, 0x22, -1, 0);
    I2(I_MUNMAP, m, 8192);
    I1(I_EXIT_GROUP, 0);
    return 99;
}

static int deny(void) {
    char *path = low_str(64, "i80-denied.tmp");
    show("i386 open", I3(I_OPEN, path, 01 | 0100, 0600));
    show("i386 openat", i80(I_OPENAT, -100, (long)path, 01 | 0100, 0600, 0, 0));
    struct stat st;
    printf("i80-denied.tmp exists: %s\n", stat("i80-denied.tmp", &st) == 0 ? "yes" : "no");
    printf("calling mmap2\n");
    fflush(stdout);
    long m = i80(I_MMAP2, 0, 4096, 3, 0x22, -1, 0);
    printf("mmap2: %s\n", m > 0 ? "mapped" : "failed");
    return 0;
}

static int sigaction_i386(void) {
    /* handler, flags, restorer, mask (32-bit pointers). */
    uint32_t *act = (uint32_t *)(low + 64);
    act[0] = 0x1000;
    act[1] = 0;
    act[2] = 0;
    act[3] = act[4] = 0;
    show("i386 rt_sigaction(SIGUSR1, handler)", i80(I_RT_SIGACTION, SIGUSR1, (long)act, 0, 8, 0, 0));
    struct sigaction sa;
    sigaction(SIGUSR1, NULL, &sa);
    printf("x86-64 sigaction sees: %s\n", sa.sa_handler == SIG_DFL ? "SIG_DFL" : "a handler");
    return 0;
}

static int count(long n) {
    char *dot = low_str(0, ".");
    for (long i = 0; i < n; i++) {
        I0(I_GETPID);
        I3(I_WRITE, 1, dot, 1);
        I3(I_WRITE, 1, 16, 1);
        I1(I_CLOSE, -1);
    }
    I3(I_OPEN, low_str(64, "/no-such-dir/x"), 0, 0);
    printf("\ncount %ld done\n", n);
    return 0;
}

extern char sysenter_at[];

static void on_fault(int sig, siginfo_t *si, void *uc_) {
    ucontext_t *uc = uc_;
    char buf[200];
    int n = snprintf(buf, sizeof buf, "signal %d, si_code %d, si_addr at sysenter: %s, rip at sysenter: %s, trapno %ld, err %ld\n", sig,
                     si->si_code, si->si_addr == (void *)sysenter_at ? "yes" : "no",
                     uc->uc_mcontext.gregs[REG_RIP] == (greg_t)(uintptr_t)sysenter_at ? "yes" : "no", (long)uc->uc_mcontext.gregs[REG_TRAPNO],
                     (long)uc->uc_mcontext.gregs[REG_ERR]);
    write(1, buf, (size_t)n);
    _exit(0);
}

static int sysenter(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGILL, &sa, NULL);
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
    printf("sysenter with eax = 20\n");
    fflush(stdout);
    __asm__ volatile("mov $20, %%eax\n"
                     ".globl sysenter_at\n"
                     "sysenter_at: sysenter"
                     :
                     :
                     : "rax", "rcx", "rdx", "r11", "memory");
    printf("sysenter returned\n");
    return 0;
}

int main(int argc, char **argv) {
    low = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
    if (low == MAP_FAILED) {
        perror("mmap(MAP_32BIT)");
        return 1;
    }
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "calls"))
        return calls(argv[0]);
    if (!strcmp(mode, "trace"))
        return trace();
    if (!strcmp(mode, "deny"))
        return deny();
    if (!strcmp(mode, "count") && argc > 2)
        return count(atol(argv[2]));
    if (!strcmp(mode, "sysenter"))
        return sysenter();
    if (!strcmp(mode, "sigaction"))
        return sigaction_i386();
    if (!strcmp(mode, "exec-child")) {
        const char *env = getenv("I80_ENV");
        printf("exec child: argc %d, argv[2] \"%s\", I80_ENV=%s\n", argc, argc > 2 ? argv[2] : "", env ? env : "(unset)");
        return 5;
    }
    fprintf(stderr, "usage: sl_int80 calls|trace|deny|count N|sysenter|sigaction|exec-child\n");
    return 2;
}
