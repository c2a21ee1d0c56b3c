/* crash MODE: dies by a synchronous fault or a signal.
 * Modes: rodata stackoverflow trap div0 term kill badjump */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char rodata[] = "read-only";

__attribute__((noinline)) static int recurse(volatile int depth) {
    volatile char pad[256];
    pad[0] = (char)depth;
    return recurse(depth + 1) + pad[0];
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    printf("mode %s\n", mode);
    fflush(stdout);
    if (!strcmp(mode, "rodata")) *(volatile char *)rodata = 'X';
    else if (!strcmp(mode, "stackoverflow")) return recurse(0);
    else if (!strcmp(mode, "trap")) __builtin_trap();
    else if (!strcmp(mode, "div0")) {
        volatile int a = 7, b = 0;
        return a / b;
    } else if (!strcmp(mode, "term")) raise(SIGTERM);
    else if (!strcmp(mode, "kill")) kill(getpid(), SIGKILL);
    else if (!strcmp(mode, "badjump")) {
        void (*volatile f)(void) = (void (*)(void))(unsigned long)0x10;
        f();
    }
    printf("unknown mode or survived\n");
    return 3;
}
