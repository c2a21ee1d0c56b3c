/* Calls and jumps through function pointers in read-only memory (a const
 * table: .rodata in a static binary, RELRO in a PIE), which a translator may
 * treat as constants, directly and as a jump table at a bounded index (two
 * sites with the same table), and every way that memory can change under
 * them:
 * mprotect to writable and a store, PROT_NONE (the call faults at the
 * pointer's address), a file mapped over it, munmap and a fresh mapping. */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef int (*fn_t)(void);

#define F(n) \
    __attribute__((noinline)) static int f##n(void) { \
        __asm__ volatile(""); \
        return n; \
    }
F(1) F(2) F(3) F(4) F(5) F(6) F(7) F(8) F(9) F(10) F(11) F(12)

/* One page of its own, so that changing its protection touches nothing else. */
__attribute__((used, aligned(4096))) static const fn_t table[4096 / sizeof(fn_t)] = {f1, f2, f3};

/* The call sites, in assembly so that the compiler cannot fold the loads. */
int call_slot0(void);
int jump_slot1(void);
int dispatch_a(int i);
int dispatch_b(int i);
int dispatch_c(int i);
int dispatch_d(int i);
#define DISPATCH(name) \
    ".globl " name "\n" name ":\n" \
    "  movzbl %dil, %eax\n" \
    "  lea table(%rip), %rcx\n" \
    "  mov (%rcx,%rax,8), %rax\n" \
    "  mov %rdi, %rdx\n" \
    "  jmp *%rax\n"
#define DISPATCH2(name) \
    ".globl " name "\n" name ":\n" \
    "  lea table(%rip), %rdx\n" \
    "  movzbl %dil, %ecx\n" \
    "  mov (%rdx,%rcx,8), %rax\n" \
    "  jmp *%rax\n"
__asm__(".text\n"
        ".globl call_slot0\n"
        "call_slot0:\n"
        "  sub $8, %rsp\n"
        "  call *table(%rip)\n"
        "  add $8, %rsp\n"
        "  ret\n"
        ".globl jump_slot1\n"
        "jump_slot1:\n"
        "  jmp *table+8(%rip)\n"
        /* Computed gotos: the index bounded by movzx, the table's address
         * known in the block (a and b for the first round, c and d for the
         * second, so that each is first translated in its round). */
        DISPATCH("dispatch_a") DISPATCH2("dispatch_b") DISPATCH("dispatch_c") DISPATCH2("dispatch_d")
);

static int round;

static int all(void) {
    int r = call_slot0() * 100 + jump_slot1();
    if (round) return r * 10000 + dispatch_c(0x100) * 100 + dispatch_d(2);
    return r * 10000 + dispatch_a(0x100) * 100 + dispatch_b(2);
}

/* Many calls, so the sites are hot, with their sum. */
static long hot(void) {
    long s = 0;
    for (int i = 0; i < 20000; i++) s += all();
    return s;
}

static sigjmp_buf back;
static volatile uintptr_t fault_addr;

static void on_segv(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    fault_addr = (uintptr_t)si->si_addr;
    siglongjmp(back, 1);
}

static void set(int slot, fn_t f) {
    /* Through an address the compiler cannot see is the const table. */
    fn_t *volatile p = (fn_t *)(uintptr_t)&table[slot];
    *p = f;
}

static void map_file_over(void *page, fn_t a, fn_t b, fn_t c) {
    static fn_t buf[4096 / sizeof(fn_t)];
    buf[0] = a;
    buf[1] = b;
    buf[2] = c;
    FILE *t = tmpfile();
    if (!t || fwrite(buf, 1, sizeof buf, t) != sizeof buf || fflush(t)) {
        perror("tmpfile");
        _exit(1);
    }
    if (mmap(page, 4096, PROT_READ, MAP_PRIVATE | MAP_FIXED, fileno(t), 0) != page) {
        perror("mmap");
        _exit(1);
    }
    fclose(t);
}

/* Every change, from the table's first contents (the program's own, then
 * a file's). */
static int scenario(void) {
    void *page = (void *)table;
    if (round) map_file_over(page, f1, f2, f3);
    printf("start %d hot %ld\n", all(), hot());

    /* Writable: stores are seen at once, and still after it is read-only again. */
    if (mprotect(page, 4096, PROT_READ | PROT_WRITE)) return perror("mprotect"), 1;
    set(0, f4);
    set(1, f5);
    set(2, f6);
    printf("writable %d hot %ld\n", all(), hot());
    if (mprotect(page, 4096, PROT_READ)) return perror("mprotect"), 1;
    printf("read-only again %d hot %ld\n", all(), hot());
    if (mprotect(page, 4096, PROT_READ | PROT_WRITE)) return perror("mprotect"), 1;
    set(0, f7);
    if (mprotect(page, 4096, PROT_READ)) return perror("mprotect"), 1;
    printf("changed while writable %d hot %ld\n", all(), hot());

    /* No access: the call faults, reporting the pointer's address. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigaction(SIGSEGV, &sa, 0);
    if (mprotect(page, 4096, PROT_NONE)) return perror("mprotect"), 1;
    if (!sigsetjmp(back, 1)) {
        printf("no fault: %d\n", call_slot0());
    } else {
        printf("fault at slot 0: %d\n", fault_addr == (uintptr_t)&table[0]);
    }
    if (!sigsetjmp(back, 1)) {
        printf("no fault: %d\n", jump_slot1());
    } else {
        printf("fault at slot 1: %d\n", fault_addr == (uintptr_t)&table[1]);
    }
    if (mprotect(page, 4096, PROT_READ)) return perror("mprotect"), 1;
    printf("readable again %d hot %ld\n", all(), hot());

    /* A file mapped over it, then another. */
    map_file_over(page, f8, f9, f10);
    printf("file %d hot %ld\n", all(), hot());
    map_file_over(page, f11, f12, f1);
    printf("other file %d hot %ld\n", all(), hot());

    /* Unmapped and mapped afresh (anonymous, filled, then read-only). */
    if (munmap(page, 4096)) return perror("munmap"), 1;
    if (mmap(page, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != page)
        return perror("mmap"), 1;
    set(0, f2);
    set(1, f3);
    set(2, f4);
    if (mprotect(page, 4096, PROT_READ)) return perror("mprotect"), 1;
    printf("anonymous %d hot %ld\n", all(), hot());
    return 0;
}

static void *idle(void *fds) {
    char c;
    return (void *)(long)read(((int *)fds)[0], &c, 1);
}

int main(void) {
    if (scenario()) return 1;
    /* Again while a second thread exists (a translator cannot simply drop
     * everything it translated then). */
    static int fds[2];
    pthread_t t;
    if (pipe(fds) || pthread_create(&t, 0, idle, fds)) return perror("thread"), 1;
    round = 1;
    if (scenario()) return 1;
    close(fds[1]);
    pthread_join(t, 0);
    return 0;
}
