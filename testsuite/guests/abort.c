/* Dies of SIGABRT via abort(), with buffered output that abort does not flush
 * in glibc >= 2.27 (and musl): the flushed line must appear, the other not. */
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    printf("flushed before abort\n");
    fflush(stdout);
    fprintf(stderr, "calling abort()\n");
    abort();
}
