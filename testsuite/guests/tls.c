/* __thread / _Thread_local variables: initialized, zeroed, aligned, arrays, errno. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

__thread int counter = 5;
__thread char label[32] = "initial-label";
static __thread long big[1000];
static _Thread_local struct { double d; short s[3]; } rec = {2.5, {1, 2, 3}};
static __thread char aligned_buf[64] __attribute__((aligned(64)));
__thread int *self_ptr = 0;

__attribute__((noinline)) int *counter_addr(void) { return &counter; }
__attribute__((noinline)) static void bump(int n) { for (int i = 0; i < n; i++) counter += i; }

int main(void) {
    printf("counter %d label %s rec %.2f %d %d %d\n", counter, label, rec.d, rec.s[0], rec.s[1], rec.s[2]);
    bump(100);
    printf("counter after bump %d, via address %d\n", counter, *counter_addr());
    long s = 0;
    for (int i = 0; i < 1000; i++) s += big[i];
    printf("big zero-initialized: %s\n", s == 0 ? "yes" : "no");
    for (int i = 0; i < 1000; i++) big[i] = (long)i * i;
    s = 0;
    for (int i = 0; i < 1000; i++) s += big[i];
    printf("big sum %ld\n", s);
    strcpy(label, "changed");
    rec.s[1] = -7;
    printf("label %s rec.s[1] %d\n", label, rec.s[1]);
    printf("aligned_buf alignment ok: %s\n", ((uintptr_t)aligned_buf % 64) == 0 ? "yes" : "no");
    self_ptr = &counter;
    *self_ptr += 1;
    printf("counter via self_ptr %d\n", counter);
    errno = 0;
    if (close(-1) == -1) printf("errno after close(-1): %d (%s)\n", errno, strerror(errno));
    errno = 1234;
    printf("errno round trip %d\n", errno);
    int on_stack = 0;
    printf("tls differs from stack: %s\n", (void *)&counter != (void *)&on_stack ? "yes" : "no");
    return 0;
}
