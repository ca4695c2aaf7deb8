#define _GNU_SOURCE
// A fork-join pool for the engine's per-layer parallel loops.
//
// A network runs ~100 parallel loops per image, each a fraction of a millisecond, so waking a
// sleeping thread per loop (GCD, a condition variable) costs a visible part of the run. Workers
// here spin for a while after each loop and only then sleep on a condition variable; the caller
// takes iterations too and waits (spinning) until every worker has left the loop.
#include "CKernels.h"
#include "internal.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

enum { MAX_THREADS = 64 };
/// Spin iterations (~1 ms) a worker polls for the next loop before it sleeps.
static const long SPIN_LIMIT = 200000;

static struct {
    pthread_mutex_t mutex;
    pthread_cond_t wake;
    int threads;                    // including the caller
    atomic_uint generation;         // bumped once per loop
    atomic_int next;                // next iteration to hand out
    atomic_int busyWorkers;         // workers still inside the current loop
    atomic_flag inUse;              // one loop at a time; other callers run serially
    int count;
    void (*body)(void *, int, int);
    void *context;
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};

static pthread_once_t poolOnce = PTHREAD_ONCE_INIT;
static _Thread_local int insideLoop;

static inline void relax(void) {
#if TL_X86
    _mm_pause();
#endif
}

static void run_iterations(int thread) {
    int count = pool.count;
    for (;;) {
        int index = atomic_fetch_add_explicit(&pool.next, 1, memory_order_relaxed);
        if (index >= count) break;
        pool.body(pool.context, index, thread);
    }
}

static void *worker(void *argument) {
    int thread = (int)(intptr_t)argument;
    insideLoop = 1;
    unsigned seen = atomic_load_explicit(&pool.generation, memory_order_acquire);
    for (;;) {
        long spins = 0;
        unsigned now;
        while ((now = atomic_load_explicit(&pool.generation, memory_order_acquire)) == seen) {
            if (++spins < SPIN_LIMIT) { relax(); continue; }
            pthread_mutex_lock(&pool.mutex);
            while ((now = atomic_load_explicit(&pool.generation, memory_order_acquire)) == seen)
                pthread_cond_wait(&pool.wake, &pool.mutex);
            pthread_mutex_unlock(&pool.mutex);
            break;
        }
        seen = now;
        run_iterations(thread);
        atomic_fetch_sub_explicit(&pool.busyWorkers, 1, memory_order_release);
    }
    return NULL;
}

static int available_cores(void) {
    const char *override = getenv("TLHUB_THREADS");
    if (override && atoi(override) > 0) return tl_min(atoi(override), MAX_THREADS);
#ifdef CPU_COUNT
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return tl_min(CPU_COUNT(&set), MAX_THREADS);
#endif
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    return online > 0 ? tl_min((int)online, MAX_THREADS) : 1;
}

static void start_pool(void) {
    pool.threads = available_cores();
    atomic_flag_clear(&pool.inUse);
    for (int i = 1; i < pool.threads; i++) {
        pthread_t thread;
        pthread_attr_t attributes;
        pthread_attr_init(&attributes);
        pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&thread, &attributes, worker, (void *)(intptr_t)i) != 0) {
            pool.threads = i;  // fewer workers than cores still works
            pthread_attr_destroy(&attributes);
            break;
        }
        pthread_attr_destroy(&attributes);
    }
}

int tl_parallel_threads(void) {
    pthread_once(&poolOnce, start_pool);
    return pool.threads;
}

void tl_parallel_for(int count, void (*body)(void *context, int index, int thread), void *context) {
    if (count <= 0) return;
    pthread_once(&poolOnce, start_pool);
    if (count == 1 || pool.threads == 1 || insideLoop || atomic_flag_test_and_set(&pool.inUse)) {
        for (int i = 0; i < count; i++) body(context, i, 0);
        return;
    }
    pool.count = count;
    pool.body = body;
    pool.context = context;
    atomic_store_explicit(&pool.next, 0, memory_order_relaxed);
    atomic_store_explicit(&pool.busyWorkers, pool.threads - 1, memory_order_relaxed);
    pthread_mutex_lock(&pool.mutex);
    atomic_fetch_add_explicit(&pool.generation, 1, memory_order_release);
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.mutex);

    insideLoop = 1;
    run_iterations(0);
    insideLoop = 0;
    while (atomic_load_explicit(&pool.busyWorkers, memory_order_acquire) > 0) relax();
    atomic_flag_clear(&pool.inUse);
}
