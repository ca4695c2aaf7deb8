// Pooling backward passes over one NHWC image: channels innermost (contiguous), 16 at a time in
// AVX-512 masks, instead of a scalar search per channel across strided window cells.
#include "CKernels.h"
#include "internal.h"

/// The window of output (oy, ox) clipped to the image; false when it holds no cell.
static inline int window(int oy, int ox, const TLPoolGeometry *g, int *y0, int *y1, int *x0, int *x1) {
    *y0 = tl_max(oy * g->strideY - g->padTop, 0);
    *y1 = tl_min(oy * g->strideY - g->padTop + g->poolY, g->height);
    *x0 = tl_max(ox * g->strideX - g->padLeft, 0);
    *x1 = tl_min(ox * g->strideX - g->padLeft + g->poolX, g->width);
    return *y1 > *y0 && *x1 > *x0;
}

static void backward_portable(const float *x, const float *y, const float *dy, float *dx, const TLPoolGeometry *g,
                              int average) {
    int channels = g->channels;
    for (int oy = 0; oy < g->outputHeight; oy++) {
        for (int ox = 0; ox < g->outputWidth; ox++) {
            int y0, y1, x0, x1;
            if (!window(oy, ox, g, &y0, &y1, &x0, &x1)) continue;
            const float *best = y + ((size_t)oy * g->outputWidth + ox) * channels;
            const float *gradient = dy + ((size_t)oy * g->outputWidth + ox) * channels;
            float cells = (float)((y1 - y0) * (x1 - x0));
            for (int c = 0; c < channels; c++) {
                int pending = 1;
                for (int row = y0; row < y1 && pending; row++) {
                    for (int column = x0; column < x1; column++) {
                        size_t cell = ((size_t)row * g->width + column) * channels + c;
                        if (average) {
                            dx[cell] += gradient[c] / cells;
                        } else if (x[cell] == best[c]) {
                            dx[cell] += gradient[c];
                            pending = 0;
                            break;
                        }
                    }
                }
            }
        }
    }
}

#if TL_X86
TL_AVX512 static void backward_avx512(const float *x, const float *y, const float *dy, float *dx, const TLPoolGeometry *g,
                                      int average) {
    int channels = g->channels;
    for (int oy = 0; oy < g->outputHeight; oy++) {
        for (int ox = 0; ox < g->outputWidth; ox++) {
            int y0, y1, x0, x1;
            if (!window(oy, ox, g, &y0, &y1, &x0, &x1)) continue;
            const float *best = y + ((size_t)oy * g->outputWidth + ox) * channels;
            const float *gradient = dy + ((size_t)oy * g->outputWidth + ox) * channels;
            __m512 cells = _mm512_set1_ps((float)((y1 - y0) * (x1 - x0)));
            for (int c = 0; c < channels; c += 16) {
                __mmask16 lanes = channels - c >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (channels - c)) - 1);
                __m512 share = _mm512_maskz_loadu_ps(lanes, gradient + c), target = _mm512_maskz_loadu_ps(lanes, best + c);
                if (average) share = _mm512_div_ps(share, cells);
                __mmask16 pending = lanes;
                for (int row = y0; row < y1 && pending; row++) {
                    for (int column = x0; column < x1 && pending; column++) {
                        size_t cell = ((size_t)row * g->width + column) * channels + c;
                        // Max: the first cell (row-major) equal to the maximum takes the gradient.
                        __mmask16 hit = average ? pending
                                                : _mm512_mask_cmp_ps_mask(pending, _mm512_maskz_loadu_ps(pending, x + cell), target, _CMP_EQ_OQ);
                        if (!average) pending &= (__mmask16)~hit;
                        __m512 sum = _mm512_maskz_loadu_ps(hit, dx + cell);
                        _mm512_mask_storeu_ps(dx + cell, hit, _mm512_add_ps(sum, share));
                    }
                }
            }
        }
    }
}
#endif

void tl_pool_backward_level(int level, const float *x, const float *y, const float *dy, float *dx,
                            const TLPoolGeometry *geometry, int average) {
    level = tl_min(level, tl_cpu_kernel_level());
#if TL_X86
    if (level >= 2) { backward_avx512(x, y, dy, dx, geometry, average); return; }
#endif
    backward_portable(x, y, dy, dx, geometry, average);
}

void tl_pool_backward(const float *x, const float *y, const float *dy, float *dx, const TLPoolGeometry *geometry,
                      int average) {
    tl_pool_backward_level(tl_cpu_kernel_level(), x, y, dy, dx, geometry, average);
}
