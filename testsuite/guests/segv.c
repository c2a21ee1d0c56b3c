/* Dies of SIGSEGV by writing through a null pointer (after flushing output). */
#include <stdio.h>

int main(void) {
    printf("about to write through a null pointer\n");
    fflush(stdout);
    *(volatile int *)0 = 42;
    printf("still alive?\n");
    return 0;
}
