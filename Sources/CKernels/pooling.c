// Pooling over one NHWC image, channels innermost (contiguous). Forward: a block of channels
// summed (or maxed) in registers over the window's cells and stored once. Backward: 16 channels
// at a time in AVX-512 masks, instead of a scalar search per channel across strided window cells.
#include "CKernels.h"
#include "internal.h"

#include <math.h>

// MARK: - Forward

enum { POOL_BLOCK = 64 };

/// Window (oy, ox) clipped to the image: rows `[bounds[0], bounds[1])`, columns `[bounds[2],
/// bounds[3])` (empty when the window lies in the padding).
static inline void window_bounds(const TLPoolGeometry *g, int oy, int ox, int bounds[4]) {
    bounds[0] = tl_max(oy * g->strideY - g->padTop, 0);
    bounds[1] = tl_max(bounds[0], tl_min(oy * g->strideY - g->padTop + g->poolY, g->height));
    bounds[2] = tl_max(ox * g->strideX - g->padLeft, 0);
    bounds[3] = tl_max(bounds[2], tl_min(ox * g->strideX - g->padLeft + g->poolX, g->width));
}

/// One window's `n` channels from `x` (the window's first cell), `n` a constant where inlined
/// for whole blocks so the accumulators stay in registers: the cells taken row-major from 0 or
/// −∞ — the order of the engine's former Swift loop, so the same bits.
static inline __attribute__((always_inline)) void pool_block(const float *x, size_t rowStride, size_t cellStride, int rows,
                                                             int columns, int n, int average, float inverse, float *out) {
    float acc[POOL_BLOCK];
    for (int k = 0; k < n; k++) acc[k] = average ? 0.0f : -INFINITY;
    for (int row = 0; row < rows; row++)
        for (int column = 0; column < columns; column++) {
            const float *cell = x + row * rowStride + column * cellStride;
            if (average) {
                for (int k = 0; k < n; k++) acc[k] += cell[k];
            } else {
                for (int k = 0; k < n; k++) acc[k] = cell[k] >= acc[k] ? cell[k] : acc[k];
            }
        }
    if (average)
        for (int k = 0; k < n; k++) acc[k] *= inverse;
    for (int k = 0; k < n; k++) out[k] = acc[k];
}

/// Output rows `[firstRow, lastRow)` of one image, each window clipped to the image (TensorFlow's
/// `same` average counts only the cells inside), a block of channels at a time.
static inline __attribute__((always_inline)) void pool_rows(const float *x, float *y, const TLPoolGeometry *g, int firstRow,
                                                            int lastRow, int average) {
    const int channels = g->channels;
    const size_t rowStride = (size_t)g->width * channels;
    for (int oy = firstRow; oy < lastRow; oy++) {
        for (int ox = 0; ox < g->outputWidth; ox++) {
            int b[4];
            window_bounds(g, oy, ox, b);
            const int rows = b[1] - b[0], columns = b[3] - b[2];
            const float inverse = 1 / (float)(rows * columns > 0 ? rows * columns : 1);
            const float *first = x + (size_t)b[0] * rowStride + (size_t)b[2] * channels;
            float *out = y + ((size_t)oy * g->outputWidth + ox) * channels;
            int c0 = 0;
            for (; c0 + POOL_BLOCK <= channels; c0 += POOL_BLOCK)
                pool_block(first + c0, rowStride, channels, rows, columns, POOL_BLOCK, average, inverse, out + c0);
            if (c0 < channels) pool_block(first + c0, rowStride, channels, rows, columns, channels - c0, average, inverse, out + c0);
        }
    }
}

typedef void (*PoolRows)(const float *x, float *y, const TLPoolGeometry *g, int firstRow, int lastRow, int average);
static void pool_rows_portable(const float *x, float *y, const TLPoolGeometry *g, int firstRow, int lastRow, int average) {
    pool_rows(x, y, g, firstRow, lastRow, average);
}
#if TL_X86
TL_AVX2 static void pool_rows_avx2(const float *x, float *y, const TLPoolGeometry *g, int firstRow, int lastRow, int average) {
    pool_rows(x, y, g, firstRow, lastRow, average);
}
TL_AVX512 static void pool_rows_avx512(const float *x, float *y, const TLPoolGeometry *g, int firstRow, int lastRow,
                                       int average) {
    pool_rows(x, y, g, firstRow, lastRow, average);
}
#endif

void tl_pool_forward_level(int level, const float *x, float *y, const TLPoolGeometry *geometry, int firstRow, int lastRow,
                           int average) {
    level = tl_min(level, tl_cpu_kernel_level());
    PoolRows rows = pool_rows_portable;
#if TL_X86
    if (level >= 2) rows = pool_rows_avx512;
    else if (level >= 1) rows = pool_rows_avx2;
#endif
    rows(x, y, geometry, firstRow, lastRow, average);
}

void tl_pool_forward(const float *x, float *y, const TLPoolGeometry *geometry, int firstRow, int lastRow, int average) {
    tl_pool_forward_level(tl_cpu_kernel_level(), x, y, geometry, firstRow, lastRow, average);
}

// MARK: - Backward

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
            int b[4];
            window_bounds(g, oy, ox, b);
            Window w = {x, y + ((size_t)oy * g->outputWidth + ox) * g->channels,
                        dy + ((size_t)oy * g->outputWidth + ox) * g->channels, dx, b[0], b[1], b[2], b[3]};
            if (w.y1 > w.y0 && w.x1 > w.x0) step(&w, g, average);
        }
    }
}

void tl_pool_backward(const float *x, const float *y, const float *dy, float *dx, const TLPoolGeometry *geometry,
                      int average) {
    tl_pool_backward_level(tl_cpu_kernel_level(), x, y, dy, dx, geometry, average);
}
