#define _GNU_SOURCE
// A fork-join pool for the engine's per-layer parallel loops.
//
// A network runs ~100 parallel loops per image, each a fraction of a millisecond, so waking a
// sleeping thread per loop (GCD, a condition variable) costs a visible part of the run. Workers
// here spin for a while after each loop and only then sleep on a condition variable; the caller
// takes iterations too and then waits until every iteration has completed. It never waits for
// a worker that claimed nothing, so a worker descheduled by another process costs nothing.
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
/// Spin iterations the caller polls for stragglers before it starts yielding its core (a worker
/// preempted by another process must get the core back to finish its iteration).
static const long YIELD_AFTER = 2000;

// The open loop is one 64-bit word, so claiming an iteration checks in one compare-and-swap
// that the loop is still the one the thread saw: generation (16 bits) | count (24) | next (24).
// A worker that wakes late can only claim iterations of a loop that is still open, and the
// caller of that loop returns only after every claimed iteration has completed, so the body and
// context a claimer reads stay valid while it runs.
#define COUNT_BITS 24
#define INDEX_MASK ((1ull << COUNT_BITS) - 1)

static struct {
    pthread_mutex_t mutex;
    pthread_cond_t wake;
    int threads;                    // including the caller
    _Atomic unsigned long long ticket;
    atomic_int completed;           // iterations of the open loop finished
    atomic_int sleepers;            // workers waiting on `wake`
    atomic_flag inUse;              // one loop at a time; other callers run serially
    unsigned generation;
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

static inline int loop_is_open(unsigned long long ticket) {
    return (ticket & INDEX_MASK) < ((ticket >> COUNT_BITS) & INDEX_MASK);
}

/// Claims the next iteration of the open loop; 0 when there is none.
static int claim(int *index) {
    unsigned long long ticket = atomic_load_explicit(&pool.ticket, memory_order_acquire);
    while (loop_is_open(ticket)) {
        if (atomic_compare_exchange_weak_explicit(&pool.ticket, &ticket, ticket + 1,
                                                  memory_order_acq_rel, memory_order_acquire)) {
            *index = (int)(ticket & INDEX_MASK);
            return 1;
        }
    }
    return 0;
}

static void *worker(void *argument) {
    int thread = (int)(intptr_t)argument;
    insideLoop = 1;
    long spins = 0;
    for (;;) {
        int index;
        if (claim(&index)) {
            pool.body(pool.context, index, thread);
            atomic_fetch_add_explicit(&pool.completed, 1, memory_order_release);
            spins = 0;
            continue;
        }
        if (++spins < SPIN_LIMIT) { relax(); continue; }
        pthread_mutex_lock(&pool.mutex);
        atomic_fetch_add(&pool.sleepers, 1);
        while (!loop_is_open(atomic_load(&pool.ticket))) pthread_cond_wait(&pool.wake, &pool.mutex);
        atomic_fetch_sub(&pool.sleepers, 1);
        pthread_mutex_unlock(&pool.mutex);
        spins = 0;
    }
    return NULL;
}

/* Threads: TLHUB_THREADS, else a Slurm task's allocation (SLURM_CPUS_PER_TASK, which Slurm
 * sets with --cpus-per-task; with task/none affinity is not restricted, so the affinity mask
 * alone would oversubscribe the node), else the CPUs this process may run on. */
static int available_cores(void) {
    const char *override = getenv("TLHUB_THREADS");
    if (override && atoi(override) > 0) return tl_min(atoi(override), MAX_THREADS);
    const char *slurm = getenv("SLURM_CPUS_PER_TASK");
    int allocated = slurm ? atoi(slurm) : 0;
#ifdef CPU_COUNT
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) {
        int usable = CPU_COUNT(&set);
        return tl_min(allocated > 0 && allocated < usable ? allocated : usable, MAX_THREADS);
    }
#endif
    if (allocated > 0) return tl_min(allocated, MAX_THREADS);
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
    if (count == 1 || pool.threads == 1 || insideLoop || count > (int)INDEX_MASK
        || atomic_flag_test_and_set(&pool.inUse)) {
        for (int i = 0; i < count; i++) body(context, i, 0);
        return;
    }
    pool.body = body;
    pool.context = context;
    atomic_store_explicit(&pool.completed, 0, memory_order_relaxed);
    pool.generation = (pool.generation + 1) & 0xFFFF;
    unsigned long long ticket = ((unsigned long long)pool.generation << (2 * COUNT_BITS))
                              | ((unsigned long long)count << COUNT_BITS);
    atomic_store(&pool.ticket, ticket);
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.mutex);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.mutex);
    }

    insideLoop = 1;
    int index;
    while (claim(&index)) {
        body(context, index, 0);
        atomic_fetch_add_explicit(&pool.completed, 1, memory_order_release);
    }
    insideLoop = 0;
    long spins = 0;
    while (atomic_load_explicit(&pool.completed, memory_order_acquire) < count) {
        if (++spins < YIELD_AFTER) relax(); else sched_yield();
    }
    atomic_flag_clear(&pool.inUse);
}

int tl_claim_from(unsigned long long *run, int fromEnd) {
    _Atomic unsigned long long *shared = (_Atomic unsigned long long *)run;
    unsigned long long value = atomic_load_explicit(shared, memory_order_relaxed);
    for (;;) {
        unsigned first = (unsigned)value, end = (unsigned)(value >> 32);
        if (first >= end) return -1;
        unsigned long long next = fromEnd ? (unsigned long long)first | (unsigned long long)(end - 1) << 32
                                          : value + 1;
        if (atomic_compare_exchange_weak_explicit(shared, &value, next, memory_order_relaxed, memory_order_relaxed))
            return (int)(fromEnd ? end - 1 : first);
    }
}
