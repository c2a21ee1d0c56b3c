/* 16 threads hammering a mutex, a condition variable (bounded queue and a
 * generation barrier), C11 atomics (fetch_add, CAS loop, spinlock) and a
 * pthread barrier. Every printed number is fixed by the program, not by
 * the schedule. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define NT 16
#define MUTEX_ITERS 20000
#define ATOMIC_ITERS 20000
#define CAS_ITERS 5000
#define SPIN_ITERS 5000
#define ROUNDS 200
#define ITEMS 3000 /* per producer; producers are threads 0..7, consumers 8..15 */
#define QCAP 8

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static long mutex_counter;

static atomic_long atomic_counter;
static atomic_ulong cas_value;
static atomic_flag spin = ATOMIC_FLAG_INIT;
static long spin_counter;

/* generation barrier made of a mutex and a condition variable */
static pthread_mutex_t gmu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gcv = PTHREAD_COND_INITIALIZER;
static int g_arrived;
static unsigned g_generation;
static unsigned long round_sum[ROUNDS];

/* bounded queue */
static pthread_mutex_t qmu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t q_nonempty = PTHREAD_COND_INITIALIZER;
static pthread_cond_t q_nonfull = PTHREAD_COND_INITIALIZER;
static long queue[QCAP];
static int q_head, q_len, producers_left = NT / 2;
static long consumed_count[NT];
static long consumed_sum[NT];

static pthread_barrier_t bar;
static int after_barrier_ok[NT];

static void gen_barrier(void) {
    pthread_mutex_lock(&gmu);
    unsigned gen = g_generation;
    if (++g_arrived == NT) {
        g_arrived = 0;
        g_generation++;
        pthread_cond_broadcast(&gcv);
    } else {
        while (gen == g_generation) pthread_cond_wait(&gcv, &gmu);
    }
    pthread_mutex_unlock(&gmu);
}

static void *worker(void *arg) {
    int id = (int)(intptr_t)arg;
    for (int i = 0; i < MUTEX_ITERS; i++) {
        pthread_mutex_lock(&mu);
        mutex_counter += id + 1;
        pthread_mutex_unlock(&mu);
    }
    for (int i = 0; i < ATOMIC_ITERS; i++) atomic_fetch_add_explicit(&atomic_counter, 1, memory_order_relaxed);
    for (int i = 0; i < CAS_ITERS; i++) {
        unsigned long old = atomic_load(&cas_value), new;
        do {
            new = old + (unsigned long)(id + 1);
        } while (!atomic_compare_exchange_weak(&cas_value, &old, new));
    }
    for (int i = 0; i < SPIN_ITERS; i++) {
        while (atomic_flag_test_and_set_explicit(&spin, memory_order_acquire)) {
        }
        spin_counter++;
        atomic_flag_clear_explicit(&spin, memory_order_release);
    }
    for (int r = 0; r < ROUNDS; r++) {
        pthread_mutex_lock(&mu);
        round_sum[r] += (unsigned long)(id + 1) * (unsigned long)(r + 1);
        pthread_mutex_unlock(&mu);
        gen_barrier();
    }
    /* everything above is finished by every thread once all pass here */
    pthread_barrier_wait(&bar);
    after_barrier_ok[id] = mutex_counter == (long)MUTEX_ITERS * NT * (NT + 1) / 2;

    if (id < NT / 2) {
        for (int i = 0; i < ITEMS; i++) {
            long item = (long)id * 100000 + i;
            pthread_mutex_lock(&qmu);
            while (q_len == QCAP) pthread_cond_wait(&q_nonfull, &qmu);
            queue[(q_head + q_len) % QCAP] = item;
            q_len++;
            pthread_cond_signal(&q_nonempty);
            pthread_mutex_unlock(&qmu);
        }
        pthread_mutex_lock(&qmu);
        if (--producers_left == 0) pthread_cond_broadcast(&q_nonempty);
        pthread_mutex_unlock(&qmu);
    } else {
        for (;;) {
            pthread_mutex_lock(&qmu);
            while (q_len == 0 && producers_left > 0) pthread_cond_wait(&q_nonempty, &qmu);
            if (q_len == 0) {
                pthread_mutex_unlock(&qmu);
                break;
            }
            long item = queue[q_head];
            q_head = (q_head + 1) % QCAP;
            q_len--;
            pthread_cond_signal(&q_nonfull);
            pthread_mutex_unlock(&qmu);
            consumed_count[id]++;
            consumed_sum[id] += item;
        }
    }
    return (void *)(intptr_t)(id * 3 + 1);
}

int main(void) {
    pthread_t th[NT];
    pthread_barrier_init(&bar, NULL, NT);
    for (int i = 0; i < NT; i++)
        if (pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i)) {
            printf("pthread_create failed\n");
            return 1;
        }
    long ret_sum = 0;
    for (int i = 0; i < NT; i++) {
        void *ret;
        pthread_join(th[i], &ret);
        ret_sum += (long)(intptr_t)ret;
    }
    long ccount = 0, csum = 0;
    for (int i = 0; i < NT; i++) {
        ccount += consumed_count[i];
        csum += consumed_sum[i];
    }
    long expect_sum = 0;
    for (int p = 0; p < NT / 2; p++)
        for (int i = 0; i < ITEMS; i++) expect_sum += (long)p * 100000 + i;
    int rounds_ok = 1;
    for (int r = 0; r < ROUNDS; r++)
        if (round_sum[r] != (unsigned long)(r + 1) * NT * (NT + 1) / 2) rounds_ok = 0;
    int barrier_ok = 1;
    for (int i = 0; i < NT; i++) barrier_ok &= after_barrier_ok[i];

    printf("threads %d, join values sum %ld\n", NT, ret_sum);
    printf("mutex counter %ld\n", mutex_counter);
    printf("atomic counter %ld\n", atomic_load(&atomic_counter));
    printf("cas value %lu\n", atomic_load(&cas_value));
    printf("spinlock counter %ld\n", spin_counter);
    printf("condvar barrier: %u generations, all round sums right: %s\n", g_generation, rounds_ok ? "yes" : "no");
    printf("pthread barrier: every thread saw the final mutex count: %s\n", barrier_ok ? "yes" : "no");
    printf("queue: consumed %ld items, sum %ld (expected %ld), left %d\n", ccount, csum, expect_sum, q_len);
    pthread_barrier_destroy(&bar);
    return 0;
}
