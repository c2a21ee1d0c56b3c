/* AVX-512 state (zmm0-31 whole, k0-k7) survives what bt-run does around
 * guest code: system calls it forwards and serves, a signal whose handler
 * clobbers every vector and mask register (the frame must carry them and
 * sigreturn bring them back), and another thread clobbering its own while
 * this one yields. The frame's fx_sw_bytes and XSTATE_BV name the AVX-512
 * components. On a host without AVX-512F it says so and checks nothing
 * else (the comparison with native still holds). */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

static uint64_t in[32 * 8] __attribute__((aligned(64)));
static uint64_t out[32 * 8] __attribute__((aligned(64)));
static uint16_t kin[8], kout[8];
static uint64_t junk[32 * 8] __attribute__((aligned(64)));
static volatile uint64_t frame_xfeatures, frame_bv;

#define ZMM_ALL(op)                                                                                                    \
    op(0) op(1) op(2) op(3) op(4) op(5) op(6) op(7) op(8) op(9) op(10) op(11) op(12) op(13) op(14) op(15) op(16)     \
        op(17) op(18) op(19) op(20) op(21) op(22) op(23) op(24) op(25) op(26) op(27) op(28) op(29) op(30) op(31)
#define LOAD(i) "vmovdqu64 " #i "*64(%[src]), %%zmm" #i "\n\t"
#define STORE(i) "vmovdqu64 %%zmm" #i ", " #i "*64(%[dst])\n\t"
#define K_ALL(op) op(0) op(1) op(2) op(3) op(4) op(5) op(6) op(7)
#define KLOAD(i) "kmovw " #i "*2(%[ksrc]), %%k" #i "\n\t"
#define KSTORE(i) "kmovw %%k" #i ", " #i "*2(%[kdst])\n\t"
#define CLOBBERS                                                                                                       \
    "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", \
        "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25",     \
        "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31", "k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"

/* Overwrite every zmm and k register. */
__attribute__((target("avx512f"), noinline)) static void clobber(void) {
    static const uint16_t kjunk[8] = {0xdead, 0xbeef, 0x1111, 0x2222, 0x3333, 0x4444, 0x5555, 0x6666};
    __asm__ volatile(ZMM_ALL(LOAD) K_ALL(KLOAD)::[src] "r"(junk), [ksrc] "r"(kjunk) : "memory", CLOBBERS);
}

__attribute__((target("avx512f"))) static void on_usr1(int sig, siginfo_t *si, void *uc_) {
    ucontext_t *uc = uc_;
    unsigned char *fp = (unsigned char *)uc->uc_mcontext.fpregs;
    uint64_t x, bv;
    memcpy(&x, fp + 472, 8);
    memcpy(&bv, fp + 512, 8);
    frame_xfeatures = x;
    frame_bv = bv;
    clobber();
}

static volatile int stop;

__attribute__((target("avx512f"))) static void *noise(void *arg) {
    while (!stop) {
        clobber();
        sched_yield();
    }
    return 0;
}

/* Load the registers, make system calls (getpid, tgkill to this thread ->
 * the handler, sched_yield), store them back. */
__attribute__((target("avx512f"), noinline)) static void round_trip(long pid, long tid) {
    __asm__ volatile(ZMM_ALL(LOAD) K_ALL(KLOAD)
                     "mov $39, %%eax\n\t syscall\n\t"
                     "mov $234, %%eax\n\t syscall\n\t"
                     "mov $24, %%eax\n\t syscall\n\t"
                     "mov $24, %%eax\n\t syscall\n\t" ZMM_ALL(STORE) K_ALL(KSTORE)
                     :
                     : [src] "r"(in), [ksrc] "r"(kin), [dst] "r"(out), [kdst] "r"(kout), "D"(pid), "S"(tid), "d"((long)SIGUSR1)
                     : "rax", "rcx", "r11", "memory", CLOBBERS);
}

int main(void) {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f")) {
        printf("host lacks avx512f: AVX-512 state not exercised\n");
        return 0;
    }
    for (int i = 0; i < 32 * 8; i++) {
        in[i] = 0x0101010101010101ull * (i % 251) ^ ((uint64_t)i << 40);
        junk[i] = ~in[i];
    }
    for (int i = 0; i < 8; i++)
        kin[i] = (uint16_t)(0x1234 * (i + 1));
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_usr1;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, 0);
    pthread_t t;
    pthread_create(&t, 0, noise, 0);
    int bad = 0;
    for (int round = 0; round < 200; round++) {
        memset(out, 0, sizeof out);
        memset(kout, 0, sizeof kout);
        round_trip(getpid(), gettid());
        for (int i = 0; i < 32; i++)
            if (memcmp(&in[i * 8], &out[i * 8], 64)) {
                if (bad < 5)
                    printf("round %d: zmm%d changed\n", round, i);
                bad++;
            }
        for (int i = 0; i < 8; i++)
            if (kin[i] != kout[i]) {
                if (bad < 5)
                    printf("round %d: k%d changed\n", round, i);
                bad++;
            }
    }
    stop = 1;
    pthread_join(t, 0);
    printf("zmm0-31 and k0-7 preserved over 200 rounds: %d\n", bad == 0);
    printf("frame xfeatures has opmask/zmm_hi256/hi16_zmm: %d, xstate_bv has them: %d\n",
           (int)((frame_xfeatures >> 5) & 7) == 7, (int)((frame_bv >> 5) & 7) == 7);
    return 0;
}
