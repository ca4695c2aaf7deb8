// Winograd F(2×2, 3×3) for 3×3, stride-1 convolutions over NHWC (Lavin & Gray, 2015).
//
// A 4×4 input tile d gives a 2×2 output tile: Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A. Summed over
// input channels, the element-wise product becomes 16 independent GEMMs, one per position ξ of
// the 4×4 transformed tile: M[ξ] (tiles × filters) = V[ξ] (tiles × channels) · U[ξ]
// (channels × filters), 4 multiplies per output instead of 9. The caller runs the GEMMs
// (`tl_gemm_packed` on `U` packed here); these functions do the three transforms. The transform
// loops run over channels (filters), the innermost and contiguous NHWC axis, and are compiled
// once per instruction set so the compiler vectorizes them at that width.
#include "CKernels.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

size_t tl_winograd_packed_count(int channels, int filters) {
    return 16 * tl_gemm_packed_count(channels, filters);
}

int tl_winograd_pack(const float *kernel, int channels, int filters, float *packed) {
    size_t plane = (size_t)channels * filters;
    float *u = malloc(16 * plane * sizeof(float));
    if (!u) return -1;
    for (int c = 0; c < channels; c++) {
        for (int k = 0; k < filters; k++) {
            double g[3][3], t[4][3];
            for (int y = 0; y < 3; y++)
                for (int x = 0; x < 3; x++) g[y][x] = kernel[((size_t)(y * 3 + x) * channels + c) * filters + k];
            for (int x = 0; x < 3; x++) {  // t = G g
                t[0][x] = g[0][x];
                t[1][x] = 0.5 * (g[0][x] + g[1][x] + g[2][x]);
                t[2][x] = 0.5 * (g[0][x] - g[1][x] + g[2][x]);
                t[3][x] = g[2][x];
            }
            for (int i = 0; i < 4; i++) {  // U = t Gᵀ
                double row[4] = {t[i][0], 0.5 * (t[i][0] + t[i][1] + t[i][2]), 0.5 * (t[i][0] - t[i][1] + t[i][2]), t[i][2]};
                for (int j = 0; j < 4; j++) u[(size_t)(i * 4 + j) * plane + (size_t)c * filters + k] = (float)row[j];
            }
        }
    }
    size_t each = tl_gemm_packed_count(channels, filters);
    for (int xi = 0; xi < 16; xi++) tl_gemm_pack(u + xi * plane, filters, channels, filters, packed + xi * each);
    free(u);
    return 0;
}

// MARK: - Input transform: V = Bᵀ d B

/// Transforms one tile for every channel; `rows[r]` is input row r of the 4×4 window (NULL
/// outside the image) and `columns[s]` the offset of column s in it (-1 outside). Writes
/// `v[ξ · stride + c]`.
typedef void (*InputTile)(const float *const rows[4], const ptrdiff_t columns[4], int channels, float *v, size_t stride);

/// Bᵀ d B for channels `[first, last)`, one at a time (the portable path and vector tails).
static inline void input_tile_scalar(const float *const rows[4], const ptrdiff_t columns[4], int first, int last,
                                     float *v, size_t stride) {
    for (int c = first; c < last; c++) {
        float d[4][4], t[4][4];
        for (int r = 0; r < 4; r++)
            for (int s = 0; s < 4; s++) d[r][s] = rows[r] && columns[s] >= 0 ? rows[r][columns[s] + c] : 0.0f;
        for (int s = 0; s < 4; s++) {
            t[0][s] = d[0][s] - d[2][s];
            t[1][s] = d[1][s] + d[2][s];
            t[2][s] = d[2][s] - d[1][s];
            t[3][s] = d[1][s] - d[3][s];
        }
        for (int r = 0; r < 4; r++) {
            v[(size_t)(r * 4 + 0) * stride + c] = t[r][0] - t[r][2];
            v[(size_t)(r * 4 + 1) * stride + c] = t[r][1] + t[r][2];
            v[(size_t)(r * 4 + 2) * stride + c] = t[r][2] - t[r][1];
            v[(size_t)(r * 4 + 3) * stride + c] = t[r][1] - t[r][3];
        }
    }
}

static void input_tile_portable(const float *const rows[4], const ptrdiff_t columns[4], int channels, float *v, size_t stride) {
    input_tile_scalar(rows, columns, 0, channels, v, stride);
}

#if TL_X86
/// The same on 8 channels per ymm register; the channels past the last multiple of 8 scalar.
TL_AVX2 static void input_tile_avx2(const float *const rows[4], const ptrdiff_t columns[4], int channels, float *v, size_t stride) {
    int c = 0;
    for (; c + 8 <= channels; c += 8) {
        __m256 d[4][4], t[4][4];
        for (int r = 0; r < 4; r++)
            for (int s = 0; s < 4; s++)
                d[r][s] = rows[r] && columns[s] >= 0 ? _mm256_loadu_ps(rows[r] + columns[s] + c) : _mm256_setzero_ps();
        for (int s = 0; s < 4; s++) {
            t[0][s] = _mm256_sub_ps(d[0][s], d[2][s]);
            t[1][s] = _mm256_add_ps(d[1][s], d[2][s]);
            t[2][s] = _mm256_sub_ps(d[2][s], d[1][s]);
            t[3][s] = _mm256_sub_ps(d[1][s], d[3][s]);
        }
        for (int r = 0; r < 4; r++) {
            _mm256_storeu_ps(v + (size_t)(r * 4 + 0) * stride + c, _mm256_sub_ps(t[r][0], t[r][2]));
            _mm256_storeu_ps(v + (size_t)(r * 4 + 1) * stride + c, _mm256_add_ps(t[r][1], t[r][2]));
            _mm256_storeu_ps(v + (size_t)(r * 4 + 2) * stride + c, _mm256_sub_ps(t[r][2], t[r][1]));
            _mm256_storeu_ps(v + (size_t)(r * 4 + 3) * stride + c, _mm256_sub_ps(t[r][1], t[r][3]));
        }
    }
    input_tile_scalar(rows, columns, c, channels, v, stride);
}

/// The same on 16 channels per zmm register, the last partial vector masked.
TL_AVX512 static void input_tile_avx512(const float *const rows[4], const ptrdiff_t columns[4], int channels, float *v, size_t stride) {
    for (int c = 0; c < channels; c += 16) {
        __mmask16 mask = channels - c >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (channels - c)) - 1);
        __m512 d[4][4], t[4][4];
        for (int r = 0; r < 4; r++)
            for (int s = 0; s < 4; s++)
                d[r][s] = rows[r] && columns[s] >= 0 ? _mm512_maskz_loadu_ps(mask, rows[r] + columns[s] + c) : _mm512_setzero_ps();
        for (int s = 0; s < 4; s++) {
            t[0][s] = _mm512_sub_ps(d[0][s], d[2][s]);
            t[1][s] = _mm512_add_ps(d[1][s], d[2][s]);
            t[2][s] = _mm512_sub_ps(d[2][s], d[1][s]);
            t[3][s] = _mm512_sub_ps(d[1][s], d[3][s]);
        }
        for (int r = 0; r < 4; r++) {
            _mm512_mask_storeu_ps(v + (size_t)(r * 4 + 0) * stride + c, mask, _mm512_sub_ps(t[r][0], t[r][2]));
            _mm512_mask_storeu_ps(v + (size_t)(r * 4 + 1) * stride + c, mask, _mm512_add_ps(t[r][1], t[r][2]));
            _mm512_mask_storeu_ps(v + (size_t)(r * 4 + 2) * stride + c, mask, _mm512_sub_ps(t[r][2], t[r][1]));
            _mm512_mask_storeu_ps(v + (size_t)(r * 4 + 3) * stride + c, mask, _mm512_sub_ps(t[r][1], t[r][3]));
        }
    }
}
#endif

void tl_winograd_input(const float *input, int height, int width, int channels, int tilesY, int tilesX,
                       int padTop, int padLeft, int firstTile, int count, float *v) {
    tl_winograd_input_level(tl_cpu_kernel_level(), input, height, width, channels, tilesY, tilesX, padTop, padLeft,
                            firstTile, count, v);
}

void tl_winograd_input_level(int level, const float *input, int height, int width, int channels, int tilesY, int tilesX,
                             int padTop, int padLeft, int firstTile, int count, float *v) {
    InputTile tile = input_tile_portable;
    level = tl_min(level, tl_cpu_kernel_level());
#if TL_X86
    if (level >= 2) tile = input_tile_avx512;
    else if (level >= 1) tile = input_tile_avx2;
#endif
    const int perImage = tilesY * tilesX;
    const size_t stride = (size_t)count * channels, rowStride = (size_t)width * channels;
    for (int t = 0; t < count; t++) {
        int index = firstTile + t, image = index / perImage;
        int y0 = 2 * ((index % perImage) / tilesX) - padTop, x0 = 2 * (index % tilesX) - padLeft;
        const float *imageBase = input + (size_t)image * height * rowStride;
        const float *rows[4];
        ptrdiff_t columns[4];
        for (int r = 0; r < 4; r++) {
            rows[r] = y0 + r >= 0 && y0 + r < height ? imageBase + (size_t)(y0 + r) * rowStride : NULL;
            columns[r] = x0 + r >= 0 && x0 + r < width ? (ptrdiff_t)(x0 + r) * channels : -1;
        }
        tile(rows, columns, channels, v + (size_t)t * channels, stride);
    }
}

// MARK: - Output transform: Y = Aᵀ M A, + bias + residual, clamped

typedef struct {
    const float *m;         // this tile's first GEMM result: m[ξ · stride + k]
    size_t stride;
    float *out[2][2];       // the tile's output pixels (NULL outside the output)
    const float *add[2][2]; // the residual at those pixels, or NULL
    const float *bias;
    float low, high;
} OutputTile;

/// Aᵀ M A for filters `[first, last)`, one at a time (the portable path and vector tails).
static inline void output_tile_scalar(const OutputTile *p, int first, int last) {
    for (int k = first; k < last; k++) {
        float s[4][2];
        for (int r = 0; r < 4; r++) {
            float a = p->m[(size_t)(r * 4) * p->stride + k], b = p->m[(size_t)(r * 4 + 1) * p->stride + k];
            float c = p->m[(size_t)(r * 4 + 2) * p->stride + k], d = p->m[(size_t)(r * 4 + 3) * p->stride + k];
            s[r][0] = a + b + c;
            s[r][1] = b - c - d;
        }
        float bias = p->bias ? p->bias[k] : 0.0f, y[2][2];
        for (int col = 0; col < 2; col++) {
            y[0][col] = s[0][col] + s[1][col] + s[2][col] + bias;
            y[1][col] = s[1][col] - s[2][col] - s[3][col] + bias;
        }
        for (int r = 0; r < 2; r++)
            for (int col = 0; col < 2; col++) {
                if (!p->out[r][col]) continue;
                float value = y[r][col] + (p->add[r][col] ? p->add[r][col][k] : 0.0f);
                value = value < p->low ? p->low : value;
                p->out[r][col][k] = value > p->high ? p->high : value;
            }
    }
}

typedef void (*OutputTileFunction)(const OutputTile *p, int first, int last);

static void output_tile_portable(const OutputTile *p, int first, int last) { output_tile_scalar(p, first, last); }

#if TL_X86
TL_AVX2 static void output_tile_avx2(const OutputTile *p, int first, int last) {
    __m256 low = _mm256_set1_ps(p->low), high = _mm256_set1_ps(p->high);
    int k = first;
    for (; k + 8 <= last; k += 8) {
        __m256 s[4][2];
        for (int r = 0; r < 4; r++) {
            __m256 a = _mm256_loadu_ps(p->m + (size_t)(r * 4) * p->stride + k), b = _mm256_loadu_ps(p->m + (size_t)(r * 4 + 1) * p->stride + k);
            __m256 c = _mm256_loadu_ps(p->m + (size_t)(r * 4 + 2) * p->stride + k), d = _mm256_loadu_ps(p->m + (size_t)(r * 4 + 3) * p->stride + k);
            s[r][0] = _mm256_add_ps(_mm256_add_ps(a, b), c);
            s[r][1] = _mm256_sub_ps(_mm256_sub_ps(b, c), d);
        }
        __m256 bias = p->bias ? _mm256_loadu_ps(p->bias + k) : _mm256_setzero_ps(), y[2][2];
        for (int col = 0; col < 2; col++) {
            y[0][col] = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(s[0][col], s[1][col]), s[2][col]), bias);
            y[1][col] = _mm256_add_ps(_mm256_sub_ps(_mm256_sub_ps(s[1][col], s[2][col]), s[3][col]), bias);
        }
        for (int r = 0; r < 2; r++)
            for (int col = 0; col < 2; col++) {
                if (!p->out[r][col]) continue;
                __m256 value = p->add[r][col] ? _mm256_add_ps(y[r][col], _mm256_loadu_ps(p->add[r][col] + k)) : y[r][col];
                _mm256_storeu_ps(p->out[r][col] + k, _mm256_min_ps(_mm256_max_ps(value, low), high));
            }
    }
    output_tile_scalar(p, k, last);
}

TL_AVX512 static void output_tile_avx512(const OutputTile *p, int first, int last) {
    __m512 low = _mm512_set1_ps(p->low), high = _mm512_set1_ps(p->high);
    for (int k = first; k < last; k += 16) {
        __mmask16 mask = last - k >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (last - k)) - 1);
        __m512 s[4][2];
        for (int r = 0; r < 4; r++) {
            __m512 a = _mm512_maskz_loadu_ps(mask, p->m + (size_t)(r * 4) * p->stride + k);
            __m512 b = _mm512_maskz_loadu_ps(mask, p->m + (size_t)(r * 4 + 1) * p->stride + k);
            __m512 c = _mm512_maskz_loadu_ps(mask, p->m + (size_t)(r * 4 + 2) * p->stride + k);
            __m512 d = _mm512_maskz_loadu_ps(mask, p->m + (size_t)(r * 4 + 3) * p->stride + k);
            s[r][0] = _mm512_add_ps(_mm512_add_ps(a, b), c);
            s[r][1] = _mm512_sub_ps(_mm512_sub_ps(b, c), d);
        }
        __m512 bias = p->bias ? _mm512_maskz_loadu_ps(mask, p->bias + k) : _mm512_setzero_ps(), y[2][2];
        for (int col = 0; col < 2; col++) {
            y[0][col] = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(s[0][col], s[1][col]), s[2][col]), bias);
            y[1][col] = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(s[1][col], s[2][col]), s[3][col]), bias);
        }
        for (int r = 0; r < 2; r++)
            for (int col = 0; col < 2; col++) {
                if (!p->out[r][col]) continue;
                __m512 value = p->add[r][col] ? _mm512_add_ps(y[r][col], _mm512_maskz_loadu_ps(mask, p->add[r][col] + k)) : y[r][col];
                _mm512_mask_storeu_ps(p->out[r][col] + k, mask, _mm512_min_ps(_mm512_max_ps(value, low), high));
            }
    }
}
#endif

void tl_winograd_output(const float *m, int firstTile, int count, int tilesY, int tilesX,
                        int outputHeight, int outputWidth, int filters, int firstFilter, int filterCount,
                        const float *bias, const float *residual, float low, float high, float *output) {
    tl_winograd_output_level(tl_cpu_kernel_level(), m, firstTile, count, tilesY, tilesX, outputHeight, outputWidth, filters,
                             firstFilter, filterCount, bias, residual, low, high, output);
}

void tl_winograd_output_level(int level, const float *m, int firstTile, int count, int tilesY, int tilesX,
                              int outputHeight, int outputWidth, int filters, int firstFilter, int filterCount,
                              const float *bias, const float *residual, float low, float high, float *output) {
    OutputTileFunction tile = output_tile_portable;
    level = tl_min(level, tl_cpu_kernel_level());
#if TL_X86
    if (level >= 2) tile = output_tile_avx512;
    else if (level >= 1) tile = output_tile_avx2;
#endif
    const int perImage = tilesY * tilesX;
    OutputTile p = {NULL, (size_t)count * filters, {{NULL}}, {{NULL}}, bias, low, high};
    for (int t = 0; t < count; t++) {
        int index = firstTile + t, image = index / perImage;
        int y0 = 2 * ((index % perImage) / tilesX), x0 = 2 * (index % tilesX);
        p.m = m + (size_t)t * filters;
        for (int r = 0; r < 2; r++)
            for (int col = 0; col < 2; col++) {
                int inside = y0 + r < outputHeight && x0 + col < outputWidth;
                size_t pixel = (((size_t)image * outputHeight + y0 + r) * outputWidth + x0 + col) * filters;
                p.out[r][col] = inside ? output + pixel : NULL;
                p.add[r][col] = inside && residual ? residual + pixel : NULL;
            }
        tile(&p, firstFilter, firstFilter + filterCount);
    }
}
