/* libpreload_hello.so: meant for LD_PRELOAD. Its constructor and destructor
 * write a line naming the program (readlink /proc/self/exe) to the stdout
 * the program started with, and it interposes rand() so that a program
 * calling rand() sees the preloaded one. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The program may close its stdout before the destructors run (coreutils
 * do), so keep a private copy, closed on exec. */
static int out_fd = -1;

static void say(const char *what) {
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n < 0) n = 0;
    exe[n] = '\0';
    char line[4200];
    int len = snprintf(line, sizeof line, "[preload] %s in %s\n", what, exe);
    if (len > 0 && out_fd >= 0 && write(out_fd, line, (size_t)len) < 0) _exit(99);
}

int rand(void) {
    return 4242;
}

__attribute__((constructor)) static void preload_init(void) {
    out_fd = fcntl(1, F_DUPFD_CLOEXEC, 100);
    say("constructor");
}

__attribute__((destructor)) static void preload_fini(void) {
    say("destructor");
}
