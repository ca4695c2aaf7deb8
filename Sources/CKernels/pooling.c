// Pooling backward passes over one NHWC image: channels innermost (contiguous), 16 at a time in
// AVX-512 masks, instead of a scalar search per channel across strided window cells.
#include "CKernels.h"
#include "internal.h"

/// One window's backward step: `best` and `gradient` are the window's output and output gradient
/// (all channels), the window spans input rows `[y0, y1)` and columns `[x0, x1)`.
typedef struct {
    const float *x, *best, *gradient;
    float *dx;
    int y0, y1, x0, x1;
} Window;

typedef void (*WindowBackward)(const Window *w, const TLPoolGeometry *g, int average);

static void window_portable(const Window *w, const TLPoolGeometry *g, int average) {
    int channels = g->channels;
    float cells = (float)((w->y1 - w->y0) * (w->x1 - w->x0));
    for (int c = 0; c < channels; c++) {
        int pending = 1;
        for (int row = w->y0; row < w->y1 && pending; row++) {
            for (int column = w->x0; column < w->x1; column++) {
                size_t cell = ((size_t)row * g->width + column) * channels + c;
                if (average) {
                    w->dx[cell] += w->gradient[c] / cells;
                } else if (w->x[cell] == w->best[c]) {
                    w->dx[cell] += w->gradient[c];
                    pending = 0;
                    break;
                }
            }
        }
    }
}

#if TL_X86
TL_AVX512 static void window_avx512(const Window *w, const TLPoolGeometry *g, int average) {
    int channels = g->channels;
    __m512 cells = _mm512_set1_ps((float)((w->y1 - w->y0) * (w->x1 - w->x0)));
    for (int c = 0; c < channels; c += 16) {
        __mmask16 lanes = tl_tile_mask(channels - c, 0);
        __m512 share = _mm512_maskz_loadu_ps(lanes, w->gradient + c), target = _mm512_maskz_loadu_ps(lanes, w->best + c);
        if (average) share = _mm512_div_ps(share, cells);
        __mmask16 pending = lanes;
        for (int row = w->y0; row < w->y1 && pending; row++) {
            for (int column = w->x0; column < w->x1 && pending; column++) {
                size_t cell = ((size_t)row * g->width + column) * channels + c;
                // Max: the first cell (row-major) equal to the maximum takes the gradient.
                __mmask16 hit = average ? pending
                                        : _mm512_mask_cmp_ps_mask(pending, _mm512_maskz_loadu_ps(pending, w->x + cell), target, _CMP_EQ_OQ);
                if (!average) pending &= (__mmask16)~hit;
                __m512 sum = _mm512_maskz_loadu_ps(hit, w->dx + cell);
                _mm512_mask_storeu_ps(w->dx + cell, hit, _mm512_add_ps(sum, share));
            }
        }
    }
}
#endif

void tl_pool_backward_level(int level, const float *x, const float *y, const float *dy, float *dx,
                            const TLPoolGeometry *g, int average) {
    level = tl_min(level, tl_cpu_kernel_level());
    WindowBackward step = window_portable;
#if TL_X86
    if (level >= 2) step = window_avx512;
#endif
    for (int oy = 0; oy < g->outputHeight; oy++) {
        for (int ox = 0; ox < g->outputWidth; ox++) {
            // The window clipped to the image; one without cells passes nothing back.
            Window w = {x, y + ((size_t)oy * g->outputWidth + ox) * g->channels,
                        dy + ((size_t)oy * g->outputWidth + ox) * g->channels, dx,
                        tl_max(oy * g->strideY - g->padTop, 0), tl_min(oy * g->strideY - g->padTop + g->poolY, g->height),
                        tl_max(ox * g->strideX - g->padLeft, 0), tl_min(ox * g->strideX - g->padLeft + g->poolX, g->width)};
            if (w.y1 > w.y0 && w.x1 > w.x0) step(&w, g, average);
        }
    }
}

void tl_pool_backward(const float *x, const float *y, const float *dy, float *dx, const TLPoolGeometry *geometry,
                      int average) {
    tl_pool_backward_level(tl_cpu_kernel_level(), x, y, dy, dx, geometry, average);
}
