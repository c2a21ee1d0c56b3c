/* pthread_cancel of threads blocked in system calls (sleep, read on a pipe,
 * pause): libc implements it with a signal (SIGCANCEL: 32 in glibc, 33 in
 * musl) sent to the thread, whose handler acts on the cancellation at the
 * blocking call. Also an asynchronous-cancel thread spinning in user code.
 * Each cancelled thread's cleanup handler runs, and pthread_join reports
 * PTHREAD_CANCELED. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int fds[2];
static volatile int started[4];
static char cleaned[4][16];

static void cleanup(void *arg) {
    long i = (long)arg;
    strcpy(cleaned[i], "cleaned up");
}

static void *sleeper(void *arg) {
    pthread_cleanup_push(cleanup, arg);
    started[(long)arg] = 1;
    for (;;)
        sleep(10);
    pthread_cleanup_pop(0);
    return NULL;
}

static void *reader(void *arg) {
    pthread_cleanup_push(cleanup, arg);
    started[(long)arg] = 1;
    char c;
    for (;;)
        if (read(fds[0], &c, 1) < 0)
            break;
    pthread_cleanup_pop(0);
    return NULL;
}

static void *pauser(void *arg) {
    pthread_cleanup_push(cleanup, arg);
    started[(long)arg] = 1;
    for (;;)
        pause();
    pthread_cleanup_pop(0);
    return NULL;
}

static void *spinner(void *arg) {
    pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, NULL);
    pthread_cleanup_push(cleanup, arg);
    started[(long)arg] = 1;
    volatile unsigned long x = 0;
    for (;;)
        x++;
    pthread_cleanup_pop(0);
    return NULL;
}

int main(void) {
    if (pipe(fds))
        return 2;
    void *(*fn[4])(void *) = {sleeper, reader, pauser, spinner};
    const char *names[4] = {"sleep", "read", "pause", "asynchronous spin"};
    for (long i = 0; i < 4; i++) {
        pthread_t t;
        strcpy(cleaned[i], "not cleaned up");
        pthread_create(&t, NULL, fn[i], (void *)i);
        while (!started[i])
            usleep(1000);
        usleep(20000); /* let it block */
        pthread_cancel(t);
        void *r;
        pthread_join(t, &r);
        printf("thread in %s: %s, %s\n", names[i], r == PTHREAD_CANCELED ? "cancelled" : "not cancelled", cleaned[i]);
    }
    return 0;
}
