/* What a program learns about itself: readlink("/proc/self/exe"), argv[0],
 * AT_EXECFN, program_invocation_name, and the objects the dynamic loader has
 * loaded (dl_iterate_phdr). With --proc, also what /proc shows about the
 * process: /proc/self/comm, /proc/self/cmdline, and whether /proc/self/exe
 * opens the same file as its link target. Built only as a dynamic program. */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <unistd.h>

static int show_object(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    int *n = data;
    const char *name = info->dlpi_name;
    const char *base = strrchr(name, '/');
    int loads = 0;
    for (int i = 0; i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_LOAD) loads++;
    printf("object %d: %s (%d program headers, %d PT_LOAD)\n", (*n)++, name[0] ? (base ? base + 1 : name) : "(main program)",
           info->dlpi_phnum, loads);
    return 0;
}

static void print_file(const char *path) {
    char buf[4096];
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        printf("%s: %s\n", path, strerror(errno));
        return;
    }
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    printf("%s (%zd bytes):", path, n);
    for (ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c == 0) printf(" \\0");
        else if (c == '\n') printf(" \\n");
        else printf(" %c", c);
    }
    printf("\n");
}

int main(int argc, char **argv) {
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n < 0) {
        printf("readlink(/proc/self/exe): %s\n", strerror(errno));
        return 1;
    }
    exe[n] = '\0';
    printf("readlink(/proc/self/exe) = %s\n", exe);
    char small[4];
    ssize_t m = readlink("/proc/self/exe", small, sizeof small);
    printf("readlink into 4 bytes = %zd \"%.*s\"\n", m, (int)(m > 0 ? m : 0), small);
    char viapid[64], exe2[4096];
    snprintf(viapid, sizeof viapid, "/proc/%d/exe", (int)getpid());
    n = readlink(viapid, exe2, sizeof exe2 - 1);
    exe2[n > 0 ? n : 0] = '\0';
    printf("readlink(/proc/<pid>/exe) %s\n", n > 0 && strcmp(exe, exe2) == 0 ? "matches" : "differs");
    n = readlinkat(AT_FDCWD, "/proc/self/exe", exe2, sizeof exe2 - 1);
    exe2[n > 0 ? n : 0] = '\0';
    printf("readlinkat(AT_FDCWD, /proc/self/exe) %s\n", n > 0 && strcmp(exe, exe2) == 0 ? "matches" : "differs");
    printf("argc = %d, argv[0] = %s\n", argc, argv[0]);
    const char *execfn = (const char *)getauxval(AT_EXECFN);
    printf("AT_EXECFN = %s\n", execfn ? execfn : "(null)");
    printf("program_invocation_name = %s, short name = %s\n", program_invocation_name,
           program_invocation_short_name);
    int count = 0;
    dl_iterate_phdr(show_object, &count);
    if (argc > 1 && strcmp(argv[1], "--proc") == 0) {
        print_file("/proc/self/comm");
        print_file("/proc/self/cmdline");
        struct stat a, b;
        if (stat("/proc/self/exe", &a) == 0 && stat(exe, &b) == 0)
            printf("stat(/proc/self/exe) is the link target: %s (size %s)\n",
                   a.st_dev == b.st_dev && a.st_ino == b.st_ino ? "yes" : "no", a.st_size == b.st_size ? "same" : "differs");
        int fd = open("/proc/self/exe", O_RDONLY);
        Elf64_Ehdr eh;
        if (fd >= 0 && read(fd, &eh, sizeof eh) == (ssize_t)sizeof eh) {
            struct stat c;
            fstat(fd, &c);
            printf("open(/proc/self/exe): ELF type %d, %d program headers, same inode as target: %s\n", eh.e_type,
                   eh.e_phnum, c.st_ino == b.st_ino ? "yes" : "no");
        }
        if (fd >= 0) close(fd);
    }
    return 0;
}
