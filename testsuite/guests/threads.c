/* pthreads: per-thread TLS, mutex, condition variable, once, keys, join values. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define NT 4
static __thread uint64_t tls_acc = 7;
static __thread int tls_id = -1;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static long shared_counter;
static int arrived;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int once_runs;
static pthread_key_t key;
static int destructor_runs;
static uint64_t results[NT];

static void once_fn(void) { once_runs++; }
static void key_destructor(void *p) {
    pthread_mutex_lock(&mu);
    destructor_runs++;
    pthread_mutex_unlock(&mu);
    free(p);
}

static void *worker(void *arg) {
    int id = (int)(intptr_t)arg;
    tls_id = id;
    pthread_once(&once, once_fn);
    pthread_setspecific(key, malloc(16));
    for (uint64_t i = 0; i < 200000; i++) tls_acc = tls_acc * 6364136223846793005ULL + i + (uint64_t)id;
    for (int i = 0; i < 50000; i++) {
        pthread_mutex_lock(&mu);
        shared_counter += id + 1;
        pthread_mutex_unlock(&mu);
    }
    /* barrier built from a mutex and a condition variable */
    pthread_mutex_lock(&mu);
    arrived++;
    pthread_cond_broadcast(&cv);
    while (arrived < NT) pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    results[id] = tls_acc ^ (uint64_t)tls_id;
    return (void *)(intptr_t)(id * 10 + 1);
}

int main(void) {
    pthread_key_create(&key, key_destructor);
    tls_acc = 99;
    pthread_t th[NT];
    for (int i = 0; i < NT; i++)
        if (pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i)) { printf("pthread_create failed\n"); return 1; }
    for (int i = 0; i < NT; i++) {
        void *ret;
        pthread_join(th[i], &ret);
        printf("thread %d returned %ld result %016llx\n", i, (long)(intptr_t)ret, (unsigned long long)results[i]);
    }
    printf("shared counter %ld\n", shared_counter);
    printf("once ran %d time(s), destructors ran %d time(s)\n", once_runs, destructor_runs);
    printf("main tls_acc still %llu, tls_id %d\n", (unsigned long long)tls_acc, tls_id);
    return 0;
}
