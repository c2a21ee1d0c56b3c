/* Prints argv, envp and the auxiliary vector entries that do not vary between runs. */
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>

extern char **environ;

static void show_ul(const char *name, unsigned long type) {
    unsigned long v = getauxval(type);
    printf("%-12s %#lx\n", name, v);
}

int main(int argc, char **argv, char **envp) {
    printf("argc %d\n", argc);
    for (int i = 0; i < argc; i++) printf("argv[%d] = \"%s\" (%zu bytes)\n", i, argv[i], strlen(argv[i]));
    printf("argv[argc] is %s\n", argv[argc] ? "non-null" : "null");
    int n = 0;
    for (char **e = envp; *e; e++) printf("envp[%d] = \"%s\"\n", n++, *e);
    printf("environ == envp: %s\n", environ == envp ? "yes" : "no");
    show_ul("AT_PAGESZ", AT_PAGESZ);
    show_ul("AT_HWCAP", AT_HWCAP);
    show_ul("AT_HWCAP2", AT_HWCAP2);
    show_ul("AT_CLKTCK", AT_CLKTCK);
    show_ul("AT_UID", AT_UID);
    show_ul("AT_EUID", AT_EUID);
    show_ul("AT_GID", AT_GID);
    show_ul("AT_EGID", AT_EGID);
    show_ul("AT_SECURE", AT_SECURE);
    const char *plat = (const char *)getauxval(AT_PLATFORM);
    printf("AT_PLATFORM  %s\n", plat ? plat : "(null)");
    const char *execfn = (const char *)getauxval(AT_EXECFN);
    printf("AT_EXECFN    %s\n", execfn ? execfn : "(null)");
    const unsigned char *rnd = (const unsigned char *)getauxval(AT_RANDOM);
    printf("AT_RANDOM    %s\n", rnd ? "non-null" : "null");
    if (rnd) {
        unsigned sum = 0;
        for (int i = 0; i < 16; i++) sum += rnd[i]; /* readable, value not printed */
        (void)sum;
    }
    printf("AT_PHNUM     %lu\n", getauxval(AT_PHNUM));
    printf("AT_PHENT     %lu\n", getauxval(AT_PHENT));
    printf("AT_ENTRY     %s\n", getauxval(AT_ENTRY) ? "non-null" : "null");
    return 0;
}
