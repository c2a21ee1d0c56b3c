/* esc MODE: a hostile program trying one way around bt-run's syscall layer
 * (tests/escape.rs runs it under `--deny exit_group=kill` and friends).
 * Each mode ends, if the route worked, with exit_group(77) reaching the
 * kernel; the program prints what it did on the way (stdout, flushed).
 *
 *   cache    overwrite the code cache through its writable view (found in
 *            /proc/self/maps) with native code, written by the kernel (one
 *            pread): a nop sled, then a raw exit_group(77)
 *   table    find bt-run's gate tables in memory (512-byte syscall
 *            disposition tables) and turn every entry into "forward", then
 *            make a raw exit_group(77)
 *   int80    exit_group(77) as an i386 call (int $0x80, number 252)
 *   jump     jump to a `syscall` instruction in bt-run's own code with
 *            rax = exit_group and rdi = 77
 *   sigreturn  the same through a forged signal frame (rt_sigreturn)
 *   exec     exec this program again in mode `raw` (a static program that
 *            makes raw system calls)
 *   raw      a raw exit_group(77)
 *   mapfiles open the code cache's memfd for writing through
 *            /proc/self/map_files
 *   mapfixed map over the code cache and over bt-run's own code
 *   iouring  io_uring_setup (its operations would bypass the layer)
 *   vmwrite  process_vm_writev into this very process
 *   heap     write into memory of bt-run's (a writable mapping at or
 *            above 2^46 that is not this program's: bt-run's heap, stacks,
 *            contexts, tables), then a raw exit_group(77)
 *   forge    write into the tables cached code jumps through (the
 *            indirect-branch table below 2 GiB, which a forged slot would
 *            turn into a jump anywhere), then a raw exit_group(77)
 *   stack    point rsp into memory of bt-run's and push there, then a
 *            raw exit_group(77)
 *   kwrite   make the kernel write into memory of bt-run's (as `heap`
 *            finds it; the same bytes back) through a system call's
 *            buffer: read, pread64, readv, recvmsg, recvmmsg, and a write
 *            through /proc/self/mem; then a raw exit_group(77) after the
 *            first that worked
 *   krange   madvise(MADV_DONTNEED) over a page of the program's just
 *            below 2^46 and the page above it: the call must not act on a
 *            range that reaches bt-run's part (the program's page keeps
 *            its bytes); exit_group(77) if it was zeroed
 *   krace    readv into a harmless buffer while a second thread flips the
 *            iovec's base between it and memory of bt-run's (an argument
 *            changed after the layer read it); exit_group(77) if some
 *            readv wrote elsewhere than the harmless buffer
 *   race     open a path for writing while a second thread flips it
 *            between a harmless file and the cache's map_files entry (an
 *            argument changed after the layer read it); counts opens that
 *            gave a writable cache alias
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <ucontext.h>
#include <unistd.h>

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#include <stdarg.h>
static void say(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout);
}

__attribute__((noreturn)) static void raw_exit(int code) {
    __asm__ volatile("syscall" : : "a"(231), "D"((long)code) : "rcx", "r11", "memory");
    __builtin_unreachable();
}

struct map {
    uintptr_t start, end;
    char perms[5];
    char name[256];
};

/* The mappings of this process; returns how many (at most max). */
static int read_maps(struct map *m, int max) {
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return 0;
    char line[512];
    int n = 0;
    while (n < max && fgets(line, sizeof line, f)) {
        m[n].name[0] = 0;
        if (sscanf(line, "%lx-%lx %4s %*s %*s %*s %255[^\n]", &m[n].start, &m[n].end, m[n].perms, m[n].name) >= 3)
            n++;
    }
    fclose(f);
    return n;
}

static struct map maps[4096];
static int nmaps;

/* The mapping holding bt-run's own code: executable, file-backed, not
 * this program's file (whose main we know), not the vDSO. */
static const struct map *foreign_code(void) {
    uintptr_t self = (uintptr_t)&foreign_code;
    for (int i = 0; i < nmaps; i++) {
        const struct map *m = &maps[i];
        if (m->perms[2] == 'x' && m->name[0] == '/' && !(self >= m->start && self < m->end) &&
            !strstr(m->name, "libc") && !strstr(m->name, "ld-linux") && !strstr(m->name, "ld-musl"))
            return m;
    }
    return 0;
}

/* A `syscall` instruction (0f 05) in bt-run's code. */
static uintptr_t find_syscall_gadget(void) {
    const struct map *m = foreign_code();
    if (!m)
        return 0;
    for (const unsigned char *p = (const unsigned char *)m->start; p + 1 < (const unsigned char *)m->end; p++)
        if (p[0] == 0x0f && p[1] == 0x05)
            return (uintptr_t)p;
    return 0;
}

static int mode_cache(void) {
    for (int i = 0; i < nmaps; i++) {
        struct map *m = &maps[i];
        if (strstr(m->name, "bt-run-code-cache") && m->perms[1] == 'w') {
            size_t len = m->end - m->start;
            say("writable code cache view at %#lx, %zu bytes: overwriting\n", m->start, len);
            unsigned char *p = (unsigned char *)m->start;
            static const unsigned char tail[] = {0xbf, 77, 0, 0, 0, 0xb8, 231, 0, 0, 0, 0x0f, 0x05, 0xeb, 0xfe};
            /* The sled and the payload are written into the view by one
             * system call, so the translated code that made it returns
             * into the sled (any byte of which is an instruction start). */
            int fd = memfd_create("sled", 0);
            if (fd < 0 || ftruncate(fd, len) != 0)
                return 3;
            unsigned char *b = mmap(0, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            if (b == MAP_FAILED)
                return 3;
            memset(b, 0x90, len);
            memcpy(b + len - sizeof tail, tail, sizeof tail);
            long r = pread(fd, p, len, 0);
            say("pread into the cache: %s\n", r < 0 ? strerror(errno) : "done");
            say("still running translated code\n");
            return 4;
        }
    }
    say("no code cache\n");
    return 3;
}

static int mode_table(void) {
    int found = 0;
    say("scanning for gate tables\n");
    for (int i = 0; i < nmaps; i++) {
        struct map *m = &maps[i];
        if (m->perms[0] != 'r' || m->perms[1] != 'w' || strstr(m->name, "[stack]") || strstr(m->name, "bt-run-code-cache") ||
            ((uintptr_t)&maps >= m->start && (uintptr_t)&maps < m->end))
            continue;
        for (unsigned char *p = (unsigned char *)m->start; p + 512 <= (unsigned char *)m->end; p += 8) {
            /* bt-run's encoding: 0 forward, 1 runtime, 2 answer, 3 gettid,
             * 4 rt_sigprocmask, 5 write, 6 close, 0x40|mask descriptor
             * check. exit_group (denied) goes to the runtime, mmap (served)
             * too. */
            if (p[231] != 1 || p[9] != 1 || p[11] != 1)
                continue;
            int ok = 1, zeros = 0;
            for (int k = 0; k < 512 && ok; k++) {
                unsigned char b = p[k];
                /* 0x80: the arguments' addresses are checked first. */
            b &= 0x7f;
            ok = b <= 7 || b >= 0x40;
                zeros += b == 0;
            }
            if (!ok || zeros < 64)
                continue;
            if (!found)
                say("found a gate table\n");
            memset(p, 0, 512);
            found++;
        }
    }
    /* Only forwarded calls from here on (write is one): a call the tables
     * sent to the runtime before would now go straight to the kernel. */
    char line[64];
    int n = snprintf(line, sizeof line, "gate tables turned to forward-all: %d\n", found);
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(1), "D"(1L), "S"(line), "d"((long)n) : "rcx", "r11", "memory");
    if (!found)
        raw_exit(3);
    raw_exit(77);
    return 4;
}

static int mode_int80(void) {
    say("int $0x80 exit_group(77)\n");
    __asm__ volatile("int $0x80" : : "a"(252), "b"(77) : "memory");
    return 4;
}

static int mode_jump(void) {
    uintptr_t g = find_syscall_gadget();
    if (!g) {
        say("no bt-run code found\n");
        return 3;
    }
    say("jumping to a syscall instruction of bt-run's own code\n");
    __asm__ volatile("jmp *%0" : : "r"(g), "a"(231), "D"(77L) : "memory");
    return 4;
}

static int mode_sigreturn(void) {
    uintptr_t g = find_syscall_gadget();
    if (!g) {
        say("no bt-run code found\n");
        return 3;
    }
    say("rt_sigreturn to a syscall instruction of bt-run's own code\n");
    static ucontext_t uc;
    static char stack[65536] __attribute__((aligned(16)));
    memset(&uc, 0, sizeof uc);
    uc.uc_mcontext.gregs[REG_RIP] = g;
    uc.uc_mcontext.gregs[REG_RAX] = 231;
    uc.uc_mcontext.gregs[REG_RDI] = 77;
    uc.uc_mcontext.gregs[REG_RSP] = (uintptr_t)(stack + sizeof stack - 64);
    uc.uc_mcontext.gregs[REG_CSGSFS] = 0x33; /* cs = __USER_CS */
    uc.uc_mcontext.fpregs = 0;
    /* The kernel (and bt-run) take the frame at rsp after the restorer's
     * return address was popped: rsp points at the ucontext. */
    __asm__ volatile("mov %0, %%rsp\n\tmov $15, %%eax\n\tsyscall" : : "r"(&uc) : "memory");
    return 4;
}

static int mode_mapfiles(const char *self) {
    (void)self;
    int refused = 0, tried = 0;
    for (int i = 0; i < nmaps; i++) {
        struct map *m = &maps[i];
        if (!strstr(m->name, "bt-run-code-cache"))
            continue;
        char path[128];
        snprintf(path, sizeof path, "/proc/self/map_files/%lx-%lx", m->start, m->end);
        tried++;
        int fd = open(path, O_RDWR);
        if (fd < 0) {
            say("map_files open refused: %s\n", strerror(errno));
            refused++;
        } else {
            say("map_files open for writing succeeded\n");
            close(fd);
        }
    }
    if (!tried)
        say("no code cache\n");
    int fd = open("/proc/self/mem", O_RDWR);
    say("/proc/self/mem for writing: %s\n", fd >= 0 ? "ok" : strerror(errno));
    return tried && refused == tried ? 0 : 5;
}

static int mode_mapfixed(void) {
    int refused = 0, tried = 0;
    for (int i = 0; i < nmaps; i++) {
        struct map *m = &maps[i];
        if (!strstr(m->name, "bt-run-code-cache"))
            continue;
        tried++;
        void *r = mmap((void *)m->start, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        say("MAP_FIXED over the code cache: %s\n", r == MAP_FAILED ? "refused" : "mapped");
        refused += r == MAP_FAILED;
    }
    const struct map *c = foreign_code();
    if (c) {
        tried++;
        void *r = mmap((void *)c->start, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        say("MAP_FIXED over bt-run's code: %s\n", r == MAP_FAILED ? "refused" : "mapped");
        refused += r == MAP_FAILED;
        tried++;
        int p = mprotect((void *)c->start, 4096, PROT_READ | PROT_WRITE | PROT_EXEC);
        say("mprotect of bt-run's code: %s\n", p ? "refused" : "done");
        refused += p != 0;
    }
    if (!tried)
        say("nothing of bt-run's found\n");
    return tried && refused == tried ? 0 : 5;
}

static int mode_iouring(void) {
    char params[120];
    memset(params, 0, sizeof params);
    long r = syscall(425, 8, params);
    say("io_uring_setup: %s\n", r >= 0 ? "ok" : strerror(errno));
    return 0;
}

static int mode_vmwrite(void) {
    static volatile int target = 1;
    int src = 2;
    struct iovec local = {&src, sizeof src}, remote = {(void *)&target, sizeof target};
    long r = syscall(SYS_process_vm_writev, getpid(), &local, 1, &remote, 1, 0);
    say("process_vm_writev into itself: %s\n", r >= 0 ? "ok" : strerror(errno));
    return 0;
}

static char race_path[128];
static volatile char *race_flip;
static volatile int race_stop;

/* Flips the one byte in which the two paths differ (a store of one byte is
 * never torn, so every open sees one path or the other). */
static void *flipper(void *arg) {
    (void)arg;
    while (!race_stop) {
        *race_flip = 'a';
        *race_flip = 'b';
    }
    return 0;
}

static int mode_race(void) {
    const struct map *cache = 0;
    for (int i = 0; i < nmaps; i++)
        if (strstr(maps[i].name, "bt-run-code-cache") && maps[i].perms[1] == 'w')
            cache = &maps[i];
    if (!cache) {
        say("no code cache\n");
        return 3;
    }
    char entry[96], dir[64], a[80], b[80];
    struct stat want;
    snprintf(entry, sizeof entry, "/proc/self/map_files/%lx-%lx", cache->start, cache->end);
    if (stat(entry, &want) != 0) {
        say("cannot stat the cache's map_files entry: %s\n", strerror(errno));
        return 3;
    }
    /* dir/a: a harmless file; dir/b: a link to the cache's entry. */
    snprintf(dir, sizeof dir, "/tmp/esc-race-%d", getpid());
    snprintf(a, sizeof a, "%s/a", dir);
    snprintf(b, sizeof b, "%s/b", dir);
    mkdir(dir, 0700);
    int t = open(a, O_RDWR | O_CREAT, 0600);
    if (t < 0 || symlink(entry, b) != 0)
        return 3;
    close(t);
    snprintf(race_path, sizeof race_path, "%s", a);
    race_flip = race_path + strlen(race_path) - 1;
    pthread_t th;
    pthread_create(&th, 0, flipper, 0);
    int opened = 0, aliases = 0;
    for (int i = 0; i < 20000; i++) {
        int fd = open(race_path, O_RDWR);
        if (fd < 0)
            continue;
        opened++;
        struct stat st;
        if (fstat(fd, &st) == 0 && st.st_dev == want.st_dev && st.st_ino == want.st_ino)
            aliases++;
        close(fd);
    }
    race_stop = 1;
    pthread_join(th, 0);
    unlink(a);
    unlink(b);
    rmdir(dir);
    say("opens %s, writable cache aliases %d\n", opened ? "made" : "none", aliases);
    return aliases ? 5 : 0;
}

/* The first writable mapping above 2^46 that is not a stack or this
 * program's own (bt-run's memory, under bt-run). */
static const struct map *bt_run_map(void) {
    const uintptr_t limit = 1ULL << 46;
    for (int i = 0; i < nmaps; i++) {
        const struct map *m = &maps[i];
        if (m->start < limit || m->perms[0] != 'r' || m->perms[1] != 'w' || strstr(m->name, "[stack]") ||
            ((uintptr_t)&maps >= m->start && (uintptr_t)&maps < m->end))
            continue;
        return m;
    }
    return 0;
}

static int mode_heap(void) {
    const struct map *m = bt_run_map();
    if (!m) {
        say("nothing writable above 2^46\n");
        return 3;
    }
    say("writing at %s\n", m->name[0] ? m->name : "an anonymous mapping");
    /* The same value back: harmless to bt-run if the store happens. */
    volatile unsigned long *w = (volatile unsigned long *)m->start;
    *w = *w;
    say("wrote into memory above 2^46\n");
    raw_exit(77);
}

/* The first word of that mapping. */
static volatile unsigned long *bt_run_word(void) {
    const struct map *m = bt_run_map();
    return m ? (volatile unsigned long *)m->start : 0;
}

/* Outcome of one kernel-write route: 77 if the kernel wrote there. */
static void route(const char *what, long r, long want) {
    say("%s: %s\n", what, r == want ? "wrote into bt-run's memory" : r < 0 ? strerror(errno) : "short");
    if (r == want)
        raw_exit(77);
}

static int mode_kwrite(void) {
    volatile unsigned long *w = bt_run_word();
    if (!w) {
        say("nothing writable above 2^46\n");
        return 3;
    }
    say("kernel writes at %p\n", (void *)w);
    int p[2], sv[2];
    if (pipe(p) || socketpair(AF_UNIX, SOCK_DGRAM, 0, sv))
        return 3;
    unsigned long v = *w;
    /* read: the same 8 bytes back through a pipe. */
    write(p[1], &v, 8);
    route("read", read(p[0], (void *)w, 8), 8);
    char drain[8];
    read(p[0], drain, 8);
    /* pread64 from a file holding the bytes. */
    FILE *t = tmpfile();
    fwrite(&v, 8, 1, t);
    fflush(t);
    route("pread64", pread(fileno(t), (void *)w, 8, 0), 8);
    /* readv with the iovec's base in bt-run's memory. */
    struct iovec iov = {(void *)w, 8};
    write(p[1], &v, 8);
    route("readv", readv(p[0], &iov, 1), 8);
    read(p[0], drain, 8);
    /* recvmsg and recvmmsg likewise. */
    struct msghdr mh = {0};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    send(sv[1], &v, 8, 0);
    route("recvmsg", recvmsg(sv[0], &mh, 0), 8);
    recv(sv[0], drain, 8, MSG_DONTWAIT);
    struct mmsghdr mm = {0};
    mm.msg_hdr.msg_iov = &iov;
    mm.msg_hdr.msg_iovlen = 1;
    send(sv[1], &v, 8, 0);
    route("recvmmsg", recvmmsg(sv[0], &mm, 1, 0, 0), 1);
    recv(sv[0], drain, 8, MSG_DONTWAIT);
    /* /proc/self/mem writes past protections and past the split. */
    int mem = open("/proc/self/mem", O_RDWR);
    if (mem < 0)
        say("open /proc/self/mem for writing: %s\n", strerror(errno));
    else
        route("pwrite /proc/self/mem", pwrite(mem, &v, 8, (off_t)(uintptr_t)w), 8);
    say("no route wrote\n");
    return 0;
}

static int mode_krange(void) {
    const uintptr_t limit = 1ULL << 46;
    char *pg = mmap((void *)(limit - 4096), 4096, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (pg == MAP_FAILED) {
        say("cannot map the page below 2^46: %s\n", strerror(errno));
        return 3;
    }
    memset(pg, 'A', 4096);
    long r = madvise(pg, 8192, MADV_DONTNEED);
    say("madvise over the split: %s\n", r ? strerror(errno) : "ok");
    if (pg[0] != 'A') {
        say("the program's page was zeroed: the call acted on the range\n");
        raw_exit(77);
    }
    say("the page kept its bytes\n");
    return 0;
}

static void *volatile *krace_slot;
static void *krace_a, *krace_b;

static void *krace_flipper(void *arg) {
    (void)arg;
    /* Each value held for a while: back-to-back stores would leave the
     * harmless one visible too briefly for any readv to see it. */
    while (!race_stop) {
        *krace_slot = krace_a;
        for (volatile int k = 0; k < 64; k++)
            ;
        *krace_slot = krace_b;
        for (volatile int k = 0; k < 64; k++)
            ;
    }
    return 0;
}

static int mode_krace(void) {
    volatile unsigned long *w = bt_run_word();
    if (!w) {
        say("nothing writable above 2^46\n");
        return 3;
    }
    int p[2];
    if (pipe(p))
        return 3;
    static unsigned long harmless;
    static struct iovec iov;
    iov.iov_base = &harmless;
    iov.iov_len = 8;
    krace_slot = (void *volatile *)&iov.iov_base;
    krace_a = &harmless;
    krace_b = (void *)w;
    pthread_t th;
    pthread_create(&th, 0, krace_flipper, 0);
    int made = 0, elsewhere = 0;
    for (int i = 0; i < 20000; i++) {
        unsigned long v = *w;
        harmless = ~v;
        write(p[1], &v, 8);
        long r = readv(p[0], &iov, 1);
        if (r != 8) {
            /* Refused (EFAULT): the bytes are still in the pipe. */
            unsigned long d;
            read(p[0], &d, 8);
            continue;
        }
        made++;
        if (harmless != v)
            elsewhere++;
    }
    race_stop = 1;
    pthread_join(th, 0);
    say("readvs made %d, wrote elsewhere %d\n", made, elsewhere);
    if (elsewhere)
        raw_exit(77);
    return made ? 0 : 3;
}

static int mode_stack(void) {
    const uintptr_t limit = 1ULL << 46;
    for (int i = 0; i < nmaps; i++) {
        struct map *m = &maps[i];
        if (m->start < limit || m->perms[0] != 'r' || m->perms[1] != 'w' || strstr(m->name, "[stack]"))
            continue;
        say("pushing on a stack at %s\n", m->name[0] ? m->name : "an anonymous mapping");
        /* Two pushes that put the same words back, then the stack back. */
        __asm__ volatile("mov %%rsp, %%rbx\n\t"
                         "mov %0, %%rsp\n\t"
                         "pop %%rax\n\t"
                         "pop %%rcx\n\t"
                         "push %%rcx\n\t"
                         "push %%rax\n\t"
                         "mov %%rbx, %%rsp"
                         :
                         : "r"(m->start + 64)
                         : "rax", "rbx", "rcx", "memory");
        say("pushed above 2^46\n");
        raw_exit(77);
    }
    say("nothing writable above 2^46\n");
    return 3;
}

static int mode_forge(void) {
    for (int i = 0; i < nmaps; i++) {
        struct map *m = &maps[i];
        if (m->start >= (1ULL << 31) || !strstr(m->name, "bt-run-table"))
            continue;
        say("writing bt-run's lookup table (%s)\n", m->perms);
        volatile unsigned long *w = (volatile unsigned long *)m->start;
        *w = *w;
        say("wrote into the lookup table\n");
        raw_exit(77);
    }
    say("no lookup table found\n");
    return 3;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: esc MODE\n");
        return 2;
    }
    const char *mode = argv[1];
    nmaps = read_maps(maps, 4096);
    if (!strcmp(mode, "cache"))
        return mode_cache();
    if (!strcmp(mode, "table"))
        return mode_table();
    if (!strcmp(mode, "int80"))
        return mode_int80();
    if (!strcmp(mode, "jump"))
        return mode_jump();
    if (!strcmp(mode, "sigreturn"))
        return mode_sigreturn();
    if (!strcmp(mode, "exec")) {
        say("exec %s raw\n", argv[0]);
        execl("/proc/self/exe", argv[0], "raw", (char *)0);
        say("exec failed: %s\n", strerror(errno));
        return 3;
    }
    if (!strcmp(mode, "raw")) {
        say("raw exit_group(77)\n");
        raw_exit(77);
    }
    if (!strcmp(mode, "mapfiles"))
        return mode_mapfiles(argv[0]);
    if (!strcmp(mode, "mapfixed"))
        return mode_mapfixed();
    if (!strcmp(mode, "iouring"))
        return mode_iouring();
    if (!strcmp(mode, "vmwrite"))
        return mode_vmwrite();
    if (!strcmp(mode, "race"))
        return mode_race();
    if (!strcmp(mode, "heap"))
        return mode_heap();
    if (!strcmp(mode, "forge"))
        return mode_forge();
    if (!strcmp(mode, "stack"))
        return mode_stack();
    if (!strcmp(mode, "kwrite"))
        return mode_kwrite();
    if (!strcmp(mode, "krange"))
        return mode_krange();
    if (!strcmp(mode, "krace"))
        return mode_krace();
    fprintf(stderr, "esc: unknown mode %s\n", mode);
    return 2;
}
