// The kernel gradient of an undilated, ungrouped convolution, read straight from the
// zero-padded NHWC input and the output gradient: no im2col patches, no transposes, and each
// 8-channel × 32-filter tile of the gradient summed in registers over all of an image's pixels
// (the im2col product reloaded it every few hundred pixels).
//
// dw[ky][kx][c][f] += Σ_{oy, ox} xpad[oy·sy + ky][ox·sx + kx][c] · dz[oy][ox][f]
//
// For a tap (ky, kx), the channels c0…c0+7 of the shifted input are broadcast (8 consecutive
// floats per pixel) against 32 filters of dz (two vectors): the GEMM micro-kernel's shape, with
// the pixel as K.
#include "CKernels.h"
#include "internal.h"

#include <string.h>

static void gradient_portable(const float *xpad, const float *dz, const TLKernelGradientShape *s, float *dw, int accumulate) {
    int C = s->channels, F = s->filters;
    for (int ky = 0; ky < s->kernelHeight; ky++) {
        for (int kx = 0; kx < s->kernelWidth; kx++) {
            float *tap = dw + (size_t)(ky * s->kernelWidth + kx) * C * F;
            for (int c = 0; c < C; c++) {
                for (int f = 0; f < F; f++) {
                    float sum = 0;
                    for (int oy = 0; oy < s->outputHeight; oy++)
                        for (int ox = 0; ox < s->outputWidth; ox++)
                            sum += xpad[((size_t)(oy * s->strideY + ky) * s->paddedWidth + ox * s->strideX + kx) * C + c] * dz[((size_t)oy * s->outputWidth + ox) * F + f];
                    tap[(size_t)c * F + f] = accumulate ? tap[(size_t)c * F + f] + sum : sum;
                }
            }
        }
    }
}

#if TL_X86
/// One tile: `ROWS_` channels from `x` (the tap's shifted input at the strip's first channel)
/// times `columns` ≤ 32 filters from `d` (dz at the tile's first filter), into `out`.
#define DEFINE_GRADIENT_KERNEL(ROWS_)                                                                  \
TL_AVX512 static void gradient_avx512_##ROWS_(const float *x, const float *d, const TLKernelGradientShape *s, \
                                               int columns, float *out, int accumulate) {              \
    __mmask16 mask0 = tl_tile_mask(columns, 0), mask1 = tl_tile_mask(columns, 1);                             \
    int C = s->channels, F = s->filters, step = s->strideX * s->channels;                             \
    __m512 acc0[ROWS_], acc1[ROWS_];                                                                  \
    for (int r = 0; r < ROWS_; r++) { acc0[r] = _mm512_setzero_ps(); acc1[r] = _mm512_setzero_ps(); } \
    for (int oy = 0; oy < s->outputHeight; oy++) {                                                    \
        const float *xRow = x + (size_t)oy * s->strideY * s->paddedWidth * C;                         \
        const float *dRow = d + (size_t)oy * s->outputWidth * F;                                      \
        if (columns <= 16) {                                                                          \
            for (int ox = 0; ox < s->outputWidth; ox++) {                                             \
                __m512 p0 = _mm512_maskz_loadu_ps(mask0, dRow + (size_t)ox * F);                      \
                for (int r = 0; r < ROWS_; r++)                                                       \
                    acc0[r] = _mm512_fmadd_ps(_mm512_set1_ps(xRow[(size_t)ox * step + r]), p0, acc0[r]); \
            }                                                                                         \
        } else {                                                                                      \
            _Pragma("clang loop unroll_count(2)")                                                     \
            for (int ox = 0; ox < s->outputWidth; ox++) {                                             \
                __m512 p0 = _mm512_loadu_ps(dRow + (size_t)ox * F);                                   \
                __m512 p1 = _mm512_maskz_loadu_ps(mask1, dRow + (size_t)ox * F + 16);                 \
                for (int r = 0; r < ROWS_; r++) {                                                     \
                    __m512 value = _mm512_set1_ps(xRow[(size_t)ox * step + r]);                       \
                    acc0[r] = _mm512_fmadd_ps(value, p0, acc0[r]);                                    \
                    acc1[r] = _mm512_fmadd_ps(value, p1, acc1[r]);                                    \
                }                                                                                     \
            }                                                                                         \
        }                                                                                             \
    }                                                                                                 \
    if (accumulate) tl_tile_add(ROWS_, acc0, acc1, mask0, mask1, out, (size_t)F);                     \
    tl_tile_store(ROWS_, acc0, acc1, mask0, mask1, out, (size_t)F);                                   \
}

DEFINE_GRADIENT_KERNEL(1)
DEFINE_GRADIENT_KERNEL(2)
DEFINE_GRADIENT_KERNEL(3)
DEFINE_GRADIENT_KERNEL(4)
DEFINE_GRADIENT_KERNEL(5)
DEFINE_GRADIENT_KERNEL(6)
DEFINE_GRADIENT_KERNEL(7)
DEFINE_GRADIENT_KERNEL(8)

static void gradient_avx512(const float *xpad, const float *dz, const TLKernelGradientShape *s, float *dw, int accumulate) {
    int C = s->channels, F = s->filters;
    // Filters outermost: a 32-filter slice of dz (every pixel) stays in cache over every tap
    // and channel strip.
    for (int f0 = 0; f0 < F; f0 += 32) {
        int columns = tl_min(32, F - f0);
        for (int ky = 0; ky < s->kernelHeight; ky++) {
            for (int kx = 0; kx < s->kernelWidth; kx++) {
                for (int c0 = 0; c0 < C; c0 += 8) {
                    const float *x = xpad + (size_t)(ky * s->paddedWidth + kx) * C + c0;
                    float *out = dw + ((size_t)(ky * s->kernelWidth + kx) * C + c0) * F + f0;
                    const float *d = dz + f0;
                    switch (tl_min(8, C - c0)) {
                    case 8: gradient_avx512_8(x, d, s, columns, out, accumulate); break;
                    case 7: gradient_avx512_7(x, d, s, columns, out, accumulate); break;
                    case 6: gradient_avx512_6(x, d, s, columns, out, accumulate); break;
                    case 5: gradient_avx512_5(x, d, s, columns, out, accumulate); break;
                    case 4: gradient_avx512_4(x, d, s, columns, out, accumulate); break;
                    case 3: gradient_avx512_3(x, d, s, columns, out, accumulate); break;
                    case 2: gradient_avx512_2(x, d, s, columns, out, accumulate); break;
                    default: gradient_avx512_1(x, d, s, columns, out, accumulate); break;
                    }
                }
            }
        }
    }
}
#endif

int tl_conv_kernel_gradient_runs_direct(void) { return tl_cpu_kernel_level() >= 2; }

void tl_conv_kernel_gradient_level(int level, const float *xpad, const float *dz, const TLKernelGradientShape *shape,
                                   float *dw, int accumulate) {
    level = tl_min(level, tl_cpu_kernel_level());
#if TL_X86
    if (level >= 2) { gradient_avx512(xpad, dz, shape, dw, accumulate); return; }
#endif
    gradient_portable(xpad, dz, shape, dw, accumulate);
}

void tl_conv_kernel_gradient(const float *xpad, const float *dz, const TLKernelGradientShape *shape, float *dw, int accumulate) {
    tl_conv_kernel_gradient_level(tl_cpu_kernel_level(), xpad, dz, shape, dw, accumulate);
}
