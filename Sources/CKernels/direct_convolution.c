// A convolution read straight from a zero-padded NHWC input: no im2col patches. An
// output strip of up to 8 pixels times 32 filters is summed in registers over every tap and
// channel, in the order of the im2col product (k = (ky·kw + kx)·C + c), against the
// kernel packed as that product's right-hand side; so the bits equal the im2col path's.
#include "CKernels.h"
#include "internal.h"

enum { PANEL = TL_GEMM_PANEL };

#if TL_X86
#define DEFINE_DIRECT_KERNEL(ROWS_)                                                                    \
TL_AVX512 static void direct_avx512_##ROWS_(int columns, const float *const *x, const TLDirectShape *s, \
                                             const float *b0, const float *b1, const float *bias,      \
                                             const float *residual, int ldr, float low, float high,    \
                                             float *c, int ldc) {                                      \
    __mmask16 mask0 = tl_tile_mask(columns, 0), mask1 = tl_tile_mask(columns, 1);                             \
    int C = s->channels;                                                                              \
    __m512 acc0[ROWS_], acc1[ROWS_];                                                                  \
    for (int r = 0; r < ROWS_; r++) { acc0[r] = _mm512_setzero_ps(); acc1[r] = _mm512_setzero_ps(); } \
    /* A kernel row's taps (kx, c) are one contiguous run in the padded input row and in the   \
       packed kernel alike: one loop of kw·C per row (an RGB stem's 3×3: 9, not 3 loops of 3). */ \
    const int run = s->kernelWidth * C;                                                               \
    for (int ky = 0; ky < s->kernelHeight; ky++) {                                                    \
        size_t row = (size_t)ky * s->paddedWidth * C;                                                 \
        const float *a[ROWS_];                                                                        \
        for (int r = 0; r < ROWS_; r++) a[r] = x[r] + row;                                            \
        size_t tap = (size_t)ky * run * PANEL;                                                        \
        const float *p0 = b0 + tap, *p1 = b1 + tap;                                                   \
        _Pragma("clang loop unroll_count(2)")                                                         \
        for (int k = 0; k < run; k++) {                                                               \
            __m512 q0 = _mm512_loadu_ps(p0 + (size_t)k * PANEL);                                      \
            __m512 q1 = _mm512_loadu_ps(p1 + (size_t)k * PANEL);                                      \
            for (int r = 0; r < ROWS_; r++) {                                                         \
                __m512 value = _mm512_set1_ps(a[r][k]);                                               \
                acc0[r] = _mm512_fmadd_ps(value, q0, acc0[r]);                                        \
                acc1[r] = _mm512_fmadd_ps(value, q1, acc1[r]);                                        \
            }                                                                                         \
        }                                                                                             \
    }                                                                                                 \
    tl_tile_epilogue(ROWS_, acc0, acc1, mask0, mask1, bias, residual, (size_t)ldr, low, high);        \
    tl_tile_store(ROWS_, acc0, acc1, mask0, mask1, c, (size_t)ldc);                                   \
}

DEFINE_DIRECT_KERNEL(1)
DEFINE_DIRECT_KERNEL(2)
DEFINE_DIRECT_KERNEL(3)
DEFINE_DIRECT_KERNEL(4)
DEFINE_DIRECT_KERNEL(5)
DEFINE_DIRECT_KERNEL(6)
DEFINE_DIRECT_KERNEL(7)
DEFINE_DIRECT_KERNEL(8)
#endif

int tl_conv_direct_available(void) { return tl_cpu_kernel_level() >= 2; }

int tl_conv_direct(const float *x, const TLDirectShape *s, int first, int count, const float *packed, int patch, int n,
                   const float *bias, const float *residual, int ldr, float low, float high, float *c, int ldc) {
#if TL_X86
    if (tl_cpu_kernel_level() < 2) return -1;
    // Strips as even as they can be, at most 8 pixels each; a strip may run on into the next
    // output row (17-wide rows: strips of 8, not 6, 6 and 5).
    int strips = (count + 7) / 8;
    for (int j0 = 0; j0 < n; j0 += 2 * PANEL) {
        int columns = tl_min(2 * PANEL, n - j0);
        // Panel columns past n are zero in the packing, so a partial second panel reads zeros.
        const float *b0 = packed + (size_t)j0 * patch;
        const float *b1 = columns > PANEL ? b0 + (size_t)PANEL * patch : b0;
        for (int strip = 0; strip < strips; strip++) {
            int start = count * strip / strips, rows = count * (strip + 1) / strips - start;
            // Each pixel's first window (tap (0, 0)) in the padded input.
            const float *windows[8];
            for (int r = 0; r < rows; r++) {
                int pixel = first + start + r, oy = pixel / s->outputWidth, ox = pixel % s->outputWidth;
                windows[r] = x + ((size_t)oy * s->strideY * s->paddedWidth + (size_t)ox * s->strideX) * s->channels;
            }
            const float *bs = bias ? bias + j0 : NULL;
            const float *rs = residual ? residual + (size_t)start * ldr + j0 : NULL;
            float *cs = c + (size_t)start * ldc + j0;
            switch (rows) {
            case 8: direct_avx512_8(columns, windows, s, b0, b1, bs, rs, ldr, low, high, cs, ldc); break;
            case 7: direct_avx512_7(columns, windows, s, b0, b1, bs, rs, ldr, low, high, cs, ldc); break;
            case 6: direct_avx512_6(columns, windows, s, b0, b1, bs, rs, ldr, low, high, cs, ldc); break;
            case 5: direct_avx512_5(columns, windows, s, b0, b1, bs, rs, ldr, low, high, cs, ldc); break;
            case 4: direct_avx512_4(columns, windows, s, b0, b1, bs, rs, ldr, low, high, cs, ldc); break;
            case 3: direct_avx512_3(columns, windows, s, b0, b1, bs, rs, ldr, low, high, cs, ldc); break;
            case 2: direct_avx512_2(columns, windows, s, b0, b1, bs, rs, ldr, low, high, cs, ldc); break;
            default: direct_avx512_1(columns, windows, s, b0, b1, bs, rs, ldr, low, high, cs, ldc); break;
            }
        }
    }
    return 0;
#else
    (void)x; (void)s; (void)first; (void)count; (void)packed; (void)patch; (void)n; (void)bias; (void)residual;
    (void)ldr; (void)low; (void)high; (void)c; (void)ldc;
    return -1;
#endif
}
