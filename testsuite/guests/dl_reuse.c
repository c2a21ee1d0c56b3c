/* dlopen/dlclose with address reuse: loads library A (argv[1]), runs its code
 * hot (direct calls, a jump table, a callback through a function pointer),
 * unloads it, then loads library B (argv[2]), which the kernel maps at the
 * address A had, and runs it: the results must be B's, not a stale
 * translation of A's code. Alternates A and B several times. Prints whether
 * each load landed where the first one did (natively it always does), but
 * no raw addresses. Built only as a dynamic glibc program. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef long (*compute_fn)(long);
typedef long (*calls_fn)(void);
typedef const char *(*name_fn)(void);
typedef compute_fn (*callback_fn)(void);

static void *must_sym(void *h, const char *name) {
    void *p = dlsym(h, name);
    if (!p) {
        printf("dlsym(%s) failed: %s\n", name, dlerror());
        fflush(stdout);
        _exit(2);
    }
    return p;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s LIB_A LIB_B [ROUNDS]\n", argv[0]);
        return 2;
    }
    int rounds = argc > 3 ? atoi(argv[3]) : 6;
    uintptr_t first_base = 0;
    uintptr_t first_fn = 0;
    for (int round = 0; round < rounds; round++) {
        const char *path = argv[1 + round % 2];
        printf("round %d: dlopen %s\n", round, strrchr(path, '/') ? strrchr(path, '/') + 1 : path);
        void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            printf("dlopen failed: %s\n", dlerror());
            return 1;
        }
        compute_fn compute = (compute_fn)must_sym(h, "dl_compute");
        calls_fn calls = (calls_fn)must_sym(h, "dl_calls");
        name_fn name = (name_fn)must_sym(h, "dl_name");
        callback_fn callback = (callback_fn)must_sym(h, "dl_callback");
        Dl_info info;
        if (!dladdr((void *)compute, &info)) {
            printf("dladdr failed\n");
            return 1;
        }
        uintptr_t base = (uintptr_t)info.dli_fbase;
        if (round == 0) {
            first_base = base;
            first_fn = (uintptr_t)compute;
        }
        long acc = 0;
        for (long i = 0; i < 200000; i++) acc += compute(i);
        compute_fn cb = callback();
        long cbsum = 0;
        for (long i = 0; i < 50000; i++) cbsum += cb(i);
        printf("  %s: compute(7)=%ld compute(-12345)=%ld acc=%ld callback sum=%ld calls=%ld\n", name(),
               compute(7), compute(-12345), acc, cbsum, calls());
        printf("  symbol %s, offset in object %#lx, same base as round 0: %s, same function address: %s\n",
               info.dli_sname ? info.dli_sname : "?", (unsigned long)((uintptr_t)compute - base),
               base == first_base ? "yes" : "no", (uintptr_t)compute == first_fn ? "yes" : "no");
        fflush(stdout);
        if (dlclose(h) != 0) {
            printf("dlclose failed: %s\n", dlerror());
            return 1;
        }
        void *again = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
        printf("  after dlclose, still loaded: %s\n", again ? "yes" : "no");
        if (again) dlclose(again);
    }
    /* A missing library and a missing symbol: dlerror's messages. */
    void *none = dlopen("libdoes-not-exist-bt.so", RTLD_NOW);
    printf("dlopen(missing): %s\n", none ? "loaded?!" : dlerror());
    void *self = dlopen(NULL, RTLD_NOW);
    printf("dlsym(missing): %s\n", dlsym(self, "no_such_symbol_bt") ? "found?!" : dlerror());
    return 0;
}
