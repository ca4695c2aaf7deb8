// What the kernel benchmarks share: a monotonic clock and 64-byte-aligned test data.
#ifndef TLHUB_BENCH_KERNELS_H
#define TLHUB_BENCH_KERNELS_H

#include <stdlib.h>
#include <time.h>

/// Seconds on the monotonic clock.
static inline double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/// `count` floats, 64-byte aligned, filled with a repeating ramp (0, 0.01, …, 0.12).
static inline float *filled(size_t count) {
    float *p = aligned_alloc(64, (count * sizeof(float) + 63) / 64 * 64);
    for (size_t i = 0; i < count; i++) p[i] = (float)(i % 13) * 0.01f;
    return p;
}

#endif
