/* The guest's own GS: arch_prctl(ARCH_SET_GS/ARCH_GET_GS), rdgsbase and
 * wrgsbase (64- and 32-bit forms), and %gs: memory operands of every
 * addressing shape (absolute, base, base+index, index only), read-modify-
 * write forms that set flags, a locked cmpxchg, lea with a gs prefix, a
 * fault through GS (si_addr, and the registers the handler sees), a
 * thread (which starts with its creator's GS base) and a forked child. */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#define ARCH_SET_GS 0x1001
#define ARCH_GET_GS 0x1004

static uint64_t area[64] __attribute__((aligned(64)));
static uint64_t other[8];

static long set_gs(void *p) { return syscall(SYS_arch_prctl, ARCH_SET_GS, p); }

static uint64_t get_gs(void) {
    uint64_t v = 1;
    syscall(SYS_arch_prctl, ARCH_GET_GS, &v);
    return v;
}

static uint64_t rdgs(void) {
    uint64_t v;
    __asm__ volatile("rdgsbase %0" : "=r"(v));
    return v;
}

static uint32_t rdgs32(void) {
    uint32_t v;
    __asm__ volatile("rdgsbase %0" : "=r"(v));
    return v;
}

static sigjmp_buf jb;
static volatile uint64_t seen[6], fault_addr;

static void on_segv(int sig, siginfo_t *si, void *uc_) {
    ucontext_t *uc = uc_;
    fault_addr = (uint64_t)si->si_addr;
    int regs[6] = {REG_RCX, REG_RDX, REG_R8, REG_R9, REG_R10, REG_R11};
    for (int i = 0; i < 6; i++)
        seen[i] = uc->uc_mcontext.gregs[regs[i]];
    siglongjmp(jb, 1);
}

static void *thread_main(void *arg) {
    printf("thread starts with its creator's GS base: %d\n", get_gs() == (uint64_t)area);
    set_gs(other);
    uint64_t v;
    __asm__ volatile("mov %%gs:8, %0" : "=r"(v));
    printf("thread's own GS: gs:8 = %llu, rdgsbase matches %d\n", (unsigned long long)v, rdgs() == (uint64_t)other);
    return 0;
}

int main(void) {
    setvbuf(stdout, 0, _IOLBF, 0);
    int fsgsbase = (getauxval(AT_HWCAP2) & 2) != 0;
    if (!fsgsbase)
        printf("note: the kernel does not allow rd/wrgsbase on this host\n");
    printf("initial GS base %llu\n", (unsigned long long)get_gs());
    if (fsgsbase)
        printf("initial rdgsbase %llu\n", (unsigned long long)rdgs());

    for (int i = 0; i < 64; i++)
        area[i] = 1000 + i;
    other[1] = 77;
    if (set_gs(area))
        perror("arch_prctl");
    printf("ARCH_GET_GS matches %d\n", get_gs() == (uint64_t)area);
    if (fsgsbase)
        printf("rdgsbase matches %d, rdgsbase r32 matches %d\n", rdgs() == (uint64_t)area,
               rdgs32() == (uint32_t)(uint64_t)area);

    uint64_t a, b, c, d;
    long i3 = 3, i5 = 5;
    uint64_t *basep = (uint64_t *)16; /* an offset used as a base register */
    __asm__ volatile("mov %%gs:0, %0\n\t"
                     "mov %%gs:(%4), %1\n\t"
                     "mov %%gs:8(%4,%5,8), %2\n\t"
                     "mov %%gs:0(,%6,8), %3\n\t"
                     : "=&r"(a), "=&r"(b), "=&r"(c), "=&r"(d)
                     : "r"(basep), "r"(i3), "r"(i5)
                     : "memory");
    printf("loads: %llu %llu %llu %llu\n", (unsigned long long)a, (unsigned long long)b, (unsigned long long)c,
           (unsigned long long)d);

    uint8_t zf, cf;
    __asm__ volatile("movq $5, %%gs:16\n\t"
                     "addq $-5, %%gs:16\n\t"
                     "setz %0\n\t"
                     "cmpq $1020, %%gs:160\n\t"
                     "setb %1\n\t"
                     : "=r"(zf), "=r"(cf)
                     :
                     : "memory", "cc");
    printf("rmw: area[2]=%llu zf=%d, cmp area[20] cf=%d\n", (unsigned long long)area[2], zf, cf);

    uint64_t expect = 1003, newv = 4242;
    uint8_t ok;
    __asm__ volatile("lock cmpxchgq %3, %%gs:24\n\tsetz %1" : "+a"(expect), "=r"(ok) : "m"(area[3]), "r"(newv) : "memory", "cc");
    printf("cmpxchg ok=%d area[3]=%llu\n", ok, (unsigned long long)area[3]);

    uint64_t xv = 9;
    __asm__ volatile("xchgq %0, %%gs:32" : "+r"(xv) : : "memory");
    printf("xchg got %llu area[4]=%llu\n", (unsigned long long)xv, (unsigned long long)area[4]);

    /* lea with a gs prefix ignores the segment: 65 48 8d 04 25 disp32 */
    uint64_t l;
    __asm__ volatile(".byte 0x65, 0x48, 0x8d, 0x04, 0x25, 0x40, 0, 0, 0\n\tmov %%rax, %0" : "=r"(l) : : "rax");
    printf("lea gs:[0x40] = %#llx\n", (unsigned long long)l);

    if (fsgsbase) {
        uint64_t o = (uint64_t)other;
        __asm__ volatile("wrgsbase %0" : : "r"(o));
        printf("wrgsbase: ARCH_GET_GS matches %d\n", get_gs() == o);
        uint32_t lo = 0x12345000u;
        __asm__ volatile("wrgsbase %0" : : "r"(lo));
        printf("wrgsbase r32: base %#llx\n", (unsigned long long)get_gs());
        set_gs(area);
    }

    /* A fault through GS: the handler sees si_addr and the registers as
     * they were (no scratch register of bt-run's showing through). */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, 0);
    char *hole = mmap(0, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    set_gs(hole);
    if (sigsetjmp(jb, 1) == 0) {
        __asm__ volatile("mov $0x1111, %%rcx\n\t"
                         "mov $0x2222, %%rdx\n\t"
                         "mov $0x8888, %%r8\n\t"
                         "mov $0x9999, %%r9\n\t"
                         "mov $0xaaaa, %%r10\n\t"
                         "mov $0xbbbb, %%r11\n\t"
                         "mov $24, %%rax\n\t"
                         "mov %%gs:8(%%rax), %%rax\n\t"
                         :
                         :
                         : "rax", "rcx", "rdx", "r8", "r9", "r10", "r11", "memory");
    }
    printf("fault at GS base+%lld; rcx %#llx rdx %#llx r8 %#llx r9 %#llx r10 %#llx r11 %#llx\n",
           (long long)(fault_addr - (uint64_t)hole), (unsigned long long)seen[0], (unsigned long long)seen[1],
           (unsigned long long)seen[2], (unsigned long long)seen[3], (unsigned long long)seen[4],
           (unsigned long long)seen[5]);
    set_gs(area);

    pthread_t t;
    pthread_create(&t, 0, thread_main, 0);
    pthread_join(t, 0);
    printf("main thread's GS unchanged %d\n", get_gs() == (uint64_t)area);

    pid_t pid = fork();
    if (pid == 0) {
        uint64_t v;
        __asm__ volatile("mov %%gs:8, %0" : "=r"(v));
        printf("child: gs:8 = %llu\n", (unsigned long long)v);
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    return 0;
}
