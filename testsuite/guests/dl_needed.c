/* Linked against libdldep.so (build.rs: -L... -ldldep, no rpath): starts only
 * when LD_LIBRARY_PATH names the library's directory; calls it and rand(),
 * which an LD_PRELOAD library may interpose. Built only as a dynamic program. */
#include <stdio.h>
#include <stdlib.h>

extern int dldep_counter;
int dldep_value(int x);
const char *dldep_name(void);

int main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    int sum = 0;
    for (int i = 0; i < 1000; i++) sum += dldep_value(i % 7);
    printf("%s: sum %d, counter %d\n", dldep_name(), sum, dldep_counter);
    srand(1);
    printf("rand() = %d\n", rand());
    const char *llp = getenv("LD_LIBRARY_PATH");
    printf("LD_LIBRARY_PATH is %s\n", llp ? "set" : "unset");
    return 0;
}
