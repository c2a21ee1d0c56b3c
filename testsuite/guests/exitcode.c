/* exitcode CODE [exit|return|_exit]: leaves with CODE the chosen way.
 * Output is buffered on purpose: _exit discards it, exit and return flush it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: exitcode CODE [exit|return|_exit]\n");
        return 2;
    }
    int code = atoi(argv[1]);
    const char *how = argc > 2 ? argv[2] : "exit";
    printf("leaving with %d via %s", code, how); /* no newline: stays buffered */
    fprintf(stderr, "stderr is unbuffered\n");
    if (strcmp(how, "_exit") == 0) _exit(code);
    if (strcmp(how, "return") == 0) return code;
    exit(code);
}
