/* libdldep.so: a DT_NEEDED dependency of dl_needed.c, linked without an
 * rpath, so the program only starts when LD_LIBRARY_PATH names its directory. */
#include <stdio.h>

int dldep_counter = 40;

int dldep_value(int x) {
    dldep_counter += x;
    return dldep_counter * 3 + 1;
}

const char *dldep_name(void) {
    return "libdldep";
}

__attribute__((constructor)) static void dldep_init(void) {
    printf("libdldep constructor (counter %d)\n", dldep_counter);
}
