/* The legacy vsyscall page: old static binaries call gettimeofday, time and
 * getcpu at fixed addresses (the kernel emulates them). Each answer is
 * checked against the real system call. */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

typedef long (*gtod_fn)(struct timeval *, void *);
typedef long (*time_fn)(long *);
typedef long (*getcpu_fn)(unsigned *, unsigned *, void *);

int main(void) {
    struct timeval tv, ref;
    long r = ((gtod_fn)0xffffffffff600000ul)(&tv, NULL);
    syscall(SYS_gettimeofday, &ref, NULL);
    long d = ref.tv_sec - tv.tv_sec;
    printf("vsyscall gettimeofday: returns %ld, within 2 s of the syscall: %d\n", r, d >= 0 && d <= 2);
    long out = 0;
    long t = ((time_fn)0xffffffffff600400ul)(&out);
    long tref = syscall(SYS_time, NULL);
    printf("vsyscall time: result stored too: %d, within 2 s of the syscall: %d\n", t == out, tref - t >= 0 && tref - t <= 2);
    unsigned cpu = 999, node = 999, rnode = 998;
    long g = ((getcpu_fn)0xffffffffff600800ul)(&cpu, &node, NULL);
    syscall(SYS_getcpu, NULL, &rnode, NULL);
    printf("vsyscall getcpu: returns %ld, node as the syscall's: %d, cpu valid: %d\n", g, node == rnode, cpu < 4096);
    return 0;
}
