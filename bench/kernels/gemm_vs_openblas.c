// Single-thread speed of CKernels' packed GEMM (with its bias + clamp epilogue) against OpenBLAS
// sgemm (the product alone) on convolution shapes from MobileNetV2, ResNet50 and VGG16.
//
//     clang -O3 -I Sources/CKernels/include bench/kernels/gemm_vs_openblas.c Sources/CKernels/*.c \
//           -lopenblas -lpthread -lm -o /tmp/gemm_vs_openblas && /tmp/gemm_vs_openblas
#include "CKernels.h"
#include "bench.h"
#include <cblas.h>
#include <stdio.h>

extern void openblas_set_num_threads(int);

int main(void) {
    openblas_set_num_threads(1);
    // M (pixels), K (patch), N (filters)
    const int shapes[][3] = {{256, 576, 64}, {196, 96, 576}, {196, 576, 96}, {84, 4608, 512}, {256, 144, 24}, {3136, 32, 192}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int m = shapes[s][0], k = shapes[s][1], n = shapes[s][2];
        float *a = filled((size_t)m * k), *b = filled((size_t)k * n), *c = filled((size_t)m * n), *bias = filled(n);
        float *packed = filled(tl_gemm_packed_count(k, n));
        tl_gemm_pack(b, n, k, n, packed);
        int reps = (int)(3e8 / ((double)m * n * k)) + 1;
        double ours = 1e9, theirs = 1e9;
        for (int trial = 0; trial < 6; trial++) {
            double start = now();
            for (int r = 0; r < reps; r++) tl_gemm_packed(m, n, k, a, k, packed, bias, NULL, 0, 0, 6, c, n);
            double elapsed = (now() - start) / reps;
            if (elapsed < ours) ours = elapsed;
            start = now();
            for (int r = 0; r < reps; r++)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1, a, k, b, n, 0, c, n);
            elapsed = (now() - start) / reps;
            if (elapsed < theirs) theirs = elapsed;
        }
        double macs = (double)m * n * k;
        printf("M=%-5d K=%-5d N=%-4d  tlhub %5.1f GMAC/s (bias + clamp)   OpenBLAS %5.1f GMAC/s (product only)\n",
               m, k, n, macs / ours / 1e9, macs / theirs / 1e9);
        free(a); free(b); free(c); free(bias); free(packed);
    }
    return 0;
}
