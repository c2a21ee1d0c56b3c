/* exit vs exit_group with threads. st_exit MODE, MODE one of:
 *   mainexit    the main thread ends with syscall(SYS_exit, 0); a worker
 *               keeps running (starts and joins another thread, prints) and
 *               ends the process with exit(7): atexit handlers run once
 *   threadexit  a worker ends with syscall(SYS_exit, 0) (no pthread_exit):
 *               the kernel's clear-child-tid wakes pthread_join
 *   exitgroup   a worker calls syscall(SYS_exit_group, 3) while the main
 *               thread blocks in read(): status 3, no atexit handlers
 *   exitthread  a worker calls exit(4) while main waits in pthread_join:
 *               atexit handlers run and fully buffered stdout is flushed
 *   lastexit    main thread SYS_exit(5) first, the last worker SYS_exit(9)
 *               later: the process ends when its last thread does */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static int pfd[2];
static pid_t pid_at_start;

static void msleep(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

static void say(const char *s) {
    if (write(STDOUT_FILENO, s, strlen(s)) < 0) _exit(99);
}

static void at_exit_handler(void) { say("atexit handler ran\n"); }

static void *helper(void *arg) { return (void *)((long)arg * 2); }

static void *mainexit_worker(void *arg) {
    (void)arg;
    char c;
    if (read(pfd[0], &c, 1) != 1) return NULL; /* main is about to exit */
    msleep(50);
    pthread_t h;
    void *r = NULL;
    pthread_create(&h, NULL, helper, (void *)21L);
    pthread_join(h, &r);
    printf("worker: still running after the main thread exited, same pid: %s, helper thread returned %ld\n",
           getpid() == pid_at_start ? "yes" : "no", (long)r);
    exit(7);
}

static void *threadexit_worker(void *arg) {
    (void)arg;
    say("worker: calling SYS_exit\n");
    syscall(SYS_exit, 0);
    say("worker: SYS_exit returned?\n");
    return NULL;
}

static void *exitgroup_worker(void *arg) {
    (void)arg;
    msleep(30);
    say("worker: calling SYS_exit_group(3)\n");
    syscall(SYS_exit_group, 3);
    return NULL;
}

static void *exitthread_worker(void *arg) {
    (void)arg;
    msleep(30);
    printf("worker: calling exit(4), this line sits in the stdio buffer\n");
    exit(4);
}

static void *lastexit_worker(void *arg) {
    (void)arg;
    char c;
    if (read(pfd[0], &c, 1) != 1) return NULL;
    msleep(50);
    say("worker: last thread, calling SYS_exit(9)\n");
    syscall(SYS_exit, 9);
    return NULL;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    pid_at_start = getpid();
    atexit(at_exit_handler);
    if (pipe(pfd)) return 1;
    pthread_t t;
    if (!strcmp(mode, "mainexit")) {
        setvbuf(stdout, NULL, _IOLBF, 0);
        pthread_create(&t, NULL, mainexit_worker, NULL);
        say("main: calling SYS_exit(0)\n");
        if (write(pfd[1], "x", 1) != 1) return 1;
        syscall(SYS_exit, 0);
        say("main: SYS_exit returned?\n");
        return 1;
    }
    if (!strcmp(mode, "threadexit")) {
        setvbuf(stdout, NULL, _IOLBF, 0);
        pthread_create(&t, NULL, threadexit_worker, NULL);
        pthread_join(t, NULL);
        printf("main: joined the worker\n");
        return 0;
    }
    if (!strcmp(mode, "exitgroup")) {
        setvbuf(stdout, NULL, _IOLBF, 0);
        pthread_create(&t, NULL, exitgroup_worker, NULL);
        char c;
        ssize_t r = read(pfd[0], &c, 1); /* nobody writes */
        printf("main: read returned %zd?\n", r);
        return 1;
    }
    if (!strcmp(mode, "exitthread")) {
        setvbuf(stdout, NULL, _IOFBF, 1 << 16);
        printf("main: waiting for the worker (buffered)\n");
        pthread_create(&t, NULL, exitthread_worker, NULL);
        pthread_join(t, NULL);
        printf("main: join returned?\n");
        return 1;
    }
    if (!strcmp(mode, "lastexit")) {
        pthread_create(&t, NULL, lastexit_worker, NULL);
        say("main: calling SYS_exit(5)\n");
        if (write(pfd[1], "x", 1) != 1) return 1;
        syscall(SYS_exit, 5);
        return 1;
    }
    fprintf(stderr, "usage: st_exit mainexit|threadexit|exitgroup|exitthread|lastexit\n");
    return 2;
}
