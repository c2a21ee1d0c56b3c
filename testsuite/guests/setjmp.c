/* setjmp/longjmp across frames, nested handlers, sigsetjmp with mask restore. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static jmp_buf env;
static int unwound;

__attribute__((noinline)) static int descend(int depth, int target) {
    volatile char pad[48];
    memset((char *)pad, depth & 0xff, sizeof pad);
    if (depth == target) longjmp(env, depth * 3 + 1);
    int r = descend(depth + 1, target);
    unwound++; /* never reached for the jumped path */
    return r + pad[depth % 48];
}

/* An exception-like handler stack. */
static jmp_buf *handlers[16];
static int nhandlers;

__attribute__((noinline)) static void throw_(int code) {
    if (nhandlers == 0) { printf("uncaught %d\n", code); return; }
    longjmp(*handlers[--nhandlers], code);
}

__attribute__((noinline)) static int try_level(int level, int throw_at) {
    jmp_buf here;
    volatile int result = level * 100;
    int code = setjmp(here);
    if (code == 0) {
        handlers[nhandlers++] = &here;
        if (level == throw_at) throw_(level + 1000);
        if (level < 5) result += try_level(level + 1, throw_at);
        nhandlers--;
        return result;
    }
    /* caught here */
    return result + code;
}

static sigjmp_buf senv;

int main(void) {
    for (volatile int t = 0; t < 20; t++) {
        volatile int local = t * 7;
        int v = setjmp(env);
        if (v == 0) {
            descend(0, t);
            printf("no jump?\n");
        } else {
            printf("target %2d: setjmp returned %3d, local %d\n", t, v, local);
        }
    }
    printf("unwound frames: %d\n", unwound);

    /* longjmp with value 0 must make setjmp return 1. */
    int v = setjmp(env);
    if (v == 0) longjmp(env, 0);
    printf("longjmp(env, 0) -> setjmp returned %d\n", v);

    for (int at = 0; at <= 6; at++) printf("try_level(0, throw at %d) = %d\n", at, try_level(0, at));

    /* sigsetjmp(.., 1) restores the signal mask saved at sigsetjmp time. */
    sigset_t set, cur;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    if (sigsetjmp(senv, 1) == 0) {
        sigprocmask(SIG_BLOCK, &set, NULL);
        sigprocmask(SIG_BLOCK, NULL, &cur);
        printf("inside: SIGUSR1 blocked = %d\n", sigismember(&cur, SIGUSR1));
        siglongjmp(senv, 5);
    }
    sigprocmask(SIG_BLOCK, NULL, &cur);
    printf("after siglongjmp: SIGUSR1 blocked = %d\n", sigismember(&cur, SIGUSR1));

    /* sigsetjmp(.., 0) does not restore it. */
    if (sigsetjmp(senv, 0) == 0) {
        sigprocmask(SIG_BLOCK, &set, NULL);
        siglongjmp(senv, 6);
    }
    sigprocmask(SIG_BLOCK, NULL, &cur);
    printf("after siglongjmp without save: SIGUSR1 blocked = %d\n", sigismember(&cur, SIGUSR1));
    return 0;
}
