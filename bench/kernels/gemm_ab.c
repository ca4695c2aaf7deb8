// In-process A/B of the packed GEMM: a baseline gemm.c (any revision, its symbols renamed base_*)
// against the working tree's, alternating in one process so the machine's swings hit both alike.
//
//     git show HEAD:Sources/CKernels/gemm.c > /tmp/gemm_base.c
//     clang -O3 -Dtl_gemm_packed=base_gemm_packed -Dtl_gemm_pack=base_gemm_pack \
//           -Dtl_gemm_packed_count=base_gemm_packed_count -Dtl_gemm_row_tile=base_gemm_row_tile \
//           -Dtl_gemm=base_gemm -Dtl_gemm_level=base_gemm_level -Dtl_gemm_packed_level=base_gemm_packed_level \
//           -I Sources/CKernels/include -I Sources/CKernels -c /tmp/gemm_base.c -o /tmp/gemm_base.o
//     clang -O3 -I Sources/CKernels/include bench/kernels/gemm_ab.c /tmp/gemm_base.o Sources/CKernels/*.c \
//           -lpthread -lm -o /tmp/gemm_ab && /tmp/gemm_ab [M K N ...]
//
// Single thread, with the bias + clamp epilogue. Per shape: 31 alternations of ~20 M MACs each
// way; prints each side's best rate, the median of the per-alternation time ratios base/new
// (above 1: the working tree is faster) with its quartiles, and whether both gave the same bits.
#include "CKernels.h"
#include "bench.h"
#include <stdio.h>

void base_gemm_packed(int m, int n, int k, const float *a, int lda, const float *packed, const float *bias,
                      const float *residual, int ldr, float low, float high, float *c, int ldc);

enum { ALTERNATIONS = 31 };

static int ascending(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

int main(int argc, char **argv) {
    // Default shapes (M pixels, K patch, N filters): batch 1's 7×7 and 14×14 layers and a 56×56 one.
    int defaults[] = {49, 160, 960, 49, 960, 160, 49, 512, 1024, 196, 576, 96, 196, 96, 576, 256, 576, 64};
    int *shapes = defaults, count = (int)(sizeof defaults / sizeof defaults[0]) / 3;
    if (argc > 1) {
        if ((argc - 1) % 3 != 0) { fprintf(stderr, "usage: %s [M K N ...]\n", argv[0]); return 2; }
        count = (argc - 1) / 3;
        shapes = malloc(sizeof(int) * 3 * (size_t)count);
        for (int i = 0; i < 3 * count; i++) shapes[i] = atoi(argv[i + 1]);
    }
    for (int s = 0; s < count; s++) {
        int m = shapes[3 * s], k = shapes[3 * s + 1], n = shapes[3 * s + 2];
        float *a = filled((size_t)m * k), *b = filled((size_t)k * n), *bias = filled((size_t)n);
        float *base = filled((size_t)m * n), *ours = filled((size_t)m * n);
        float *packed = aligned_alloc(64, tl_gemm_packed_count(k, n) * sizeof(float) + 64);
        tl_gemm_pack(b, n, k, n, packed);
        double macs = (double)m * n * k, ratios[ALTERNATIONS], bestBase = 1e30, bestOurs = 1e30;
        int reps = (int)(2e7 / macs) + 1;
        for (int t = 0; t < ALTERNATIONS; t++) {
            double start = now();
            for (int r = 0; r < reps; r++) base_gemm_packed(m, n, k, a, k, packed, bias, NULL, 0, 0, 6, base, n);
            double baseTime = now() - start;
            start = now();
            for (int r = 0; r < reps; r++) tl_gemm_packed(m, n, k, a, k, packed, bias, NULL, 0, 0, 6, ours, n);
            double ourTime = now() - start;
            ratios[t] = baseTime / ourTime;
            if (baseTime < bestBase) bestBase = baseTime;
            if (ourTime < bestOurs) bestOurs = ourTime;
        }
        qsort(ratios, ALTERNATIONS, sizeof(double), ascending);
        int same = 1;
        for (size_t i = 0; i < (size_t)m * n; i++) same &= base[i] == ours[i];
        printf("M=%-5d K=%-5d N=%-5d base best %5.1f  new best %5.1f GMAC/s  base/new time %.3f (%.3f–%.3f)  %s\n",
               m, k, n, macs * reps / bestBase / 1e9, macs * reps / bestOurs / 1e9, ratios[ALTERNATIONS / 2],
               ratios[ALTERNATIONS / 4], ratios[3 * ALTERNATIONS / 4], same ? "same bits" : "BITS DIFFER");
        free(a); free(b); free(bias); free(base); free(ours); free(packed);
    }
    return 0;
}
