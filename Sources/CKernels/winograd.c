// Winograd F(2×2, 3×3), F(4×4, 3×3) and F(2×2, 5×5) for stride-1 convolutions over NHWC (Lavin
// & Gray, 2015).
//
// An n×n input tile d (n = m + r − 1 for m×m outputs of an r×r kernel) gives an m×m output tile:
// Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A. Summed over input channels, the element-wise product becomes
// n² independent GEMMs, one per position ξ of the transformed tile: M[ξ] (tiles × filters) = V[ξ]
// (tiles × channels) · U[ξ] (channels × filters) — multiplies per output 4 instead of 9 for
// F(2×2, 3×3), 2.25 for F(4×4, 3×3), 9 instead of 25 for F(2×2, 5×5). The
// caller runs the GEMMs (`tl_gemm_packed` on `U` packed here); these functions do the three
// transforms. The transform loops run over channels (filters), the innermost and contiguous NHWC
// axis, and are compiled once per instruction set so they run at that vector width.
#include "CKernels.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

// No fused multiply-adds: every kernel level gives the portable level's bits.
#pragma clang fp contract(off)

/// Whether F(tile×tile, kernelSize×kernelSize) is one of the three implemented.
static int supported(int tile, int kernelSize) {
    return (kernelSize == 3 && (tile == 2 || tile == 4)) || (kernelSize == 5 && tile == 2);
}

size_t tl_winograd_packed_count(int tile, int kernelSize, int channels, int filters) {
    const int n = tile + kernelSize - 1;
    return (size_t)(n * n) * tl_gemm_packed_count(channels, filters);
}

/// G (the n×r kernel transform, row-major) of each variant, in double so U is rounded once. The
/// 6-point ones interpolate at 0, ±1, ±2 and ∞, so F(4×4, 3×3) and F(2×2, 5×5) share Bᵀ.
static const double g2[4 * 3] = {1, 0, 0, 0.5, 0.5, 0.5, 0.5, -0.5, 0.5, 0, 0, 1};
static const double g4[6 * 3] = {1.0 / 4,  0,         0,         -1.0 / 6, -1.0 / 6, -1.0 / 6, -1.0 / 6, 1.0 / 6, -1.0 / 6,
                                 1.0 / 24, 1.0 / 12,  1.0 / 6,   1.0 / 24, -1.0 / 12, 1.0 / 6, 0,        0,       1};
static const double g25[6 * 5] = {1.0 / 4,  0,         0,        0,         0,        -1.0 / 6, -1.0 / 6, -1.0 / 6,
                                  -1.0 / 6, -1.0 / 6,  -1.0 / 6, 1.0 / 6,   -1.0 / 6, 1.0 / 6,  -1.0 / 6, 1.0 / 24,
                                  1.0 / 12, 1.0 / 6,   1.0 / 3,  2.0 / 3,   1.0 / 24, -1.0 / 12, 1.0 / 6, -1.0 / 3,
                                  2.0 / 3,  0,         0,        0,         0,        1};

/// U = G g Gᵀ of input channel `c` for every filter, into `u[ξ · channels · filters + c ·
/// filters + k]`, for an r×r kernel (`taps` = r) and the n×r transform `gm` (`size` = n): the
/// filters in blocks, each step a loop over the block (contiguous in the HWIO kernel) so it
/// vectorizes; in double, rounded once.
static inline __attribute__((always_inline)) void pack_channel(int size, int taps, const double *gm, const float *kernel,
                                                               int channels, int filters, int c, float *u) {
    enum { BLOCK = 64 };
    const size_t plane = (size_t)channels * filters;
    for (int k0 = 0; k0 < filters; k0 += BLOCK) {
        const int n = tl_min(BLOCK, filters - k0);
        double t[6][5][BLOCK];  // G g: row i of G times the kernel's column x
        for (int i = 0; i < size; i++)
            for (int x = 0; x < taps; x++) {
                double *row = t[i][x];
                for (int k = 0; k < n; k++) row[k] = 0;
                for (int y = 0; y < taps; y++) {
                    const double a = gm[i * taps + y];
                    const float *g = kernel + ((size_t)(y * taps + x) * channels + c) * filters + k0;
                    for (int k = 0; k < n; k++) row[k] += a * g[k];
                }
            }
        for (int i = 0; i < size; i++)
            for (int j = 0; j < size; j++) {
                double sum[BLOCK];
                for (int k = 0; k < n; k++) sum[k] = 0;
                for (int x = 0; x < taps; x++) {
                    const double a = gm[j * taps + x];
                    for (int k = 0; k < n; k++) sum[k] += t[i][x][k] * a;
                }
                float *out = u + (size_t)(i * size + j) * plane + (size_t)c * filters + k0;
                for (int k = 0; k < n; k++) out[k] = (float)sum[k];
            }
    }
}

typedef void (*PackChannels)(int size, int taps, const double *gm, const float *kernel, int channels, int filters, int first,
                             int last, float *u);

static void pack_channels_portable(int size, int taps, const double *gm, const float *kernel, int channels, int filters,
                                   int first, int last, float *u) {
    for (int c = first; c < last; c++) pack_channel(size, taps, gm, kernel, channels, filters, c, u);
}
#if TL_X86
TL_AVX2 static void pack_channels_avx2(int size, int taps, const double *gm, const float *kernel, int channels, int filters,
                                       int first, int last, float *u) {
    for (int c = first; c < last; c++) pack_channel(size, taps, gm, kernel, channels, filters, c, u);
}
TL_AVX512 static void pack_channels_avx512(int size, int taps, const double *gm, const float *kernel, int channels, int filters,
                                           int first, int last, float *u) {
    for (int c = first; c < last; c++) pack_channel(size, taps, gm, kernel, channels, filters, c, u);
}
#endif

/// One packing spread over the cores (training repacks every step): first the channels' U, then
/// the positions' GEMM panels.
typedef struct {
    PackChannels body;
    int size, taps, channels, filters, parts;
    const double *gm;
    const float *kernel;
    float *u, *packed;
} PackJob;

static void pack_part(void *context, int part, int thread) {
    (void)thread;
    const PackJob *job = context;
    job->body(job->size, job->taps, job->gm, job->kernel, job->channels, job->filters, job->channels * part / job->parts,
              job->channels * (part + 1) / job->parts, job->u);
}

static void pack_position(void *context, int xi, int thread) {
    (void)thread;
    const PackJob *job = context;
    size_t plane = (size_t)job->channels * job->filters, each = tl_gemm_packed_count(job->channels, job->filters);
    tl_gemm_pack(job->u + xi * plane, job->filters, job->channels, job->filters, job->packed + xi * each);
}

int tl_winograd_pack(int tile, int kernelSize, const float *kernel, int channels, int filters, float *packed) {
    if (!supported(tile, kernelSize)) return -1;
    const int size = tile + kernelSize - 1, positions = size * size, level = tl_cpu_kernel_level();
    size_t plane = (size_t)channels * filters;
    float *u = malloc((size_t)positions * plane * sizeof(float));
    if (!u) return -1;
    PackJob job = {pack_channels_portable, size, kernelSize, channels, filters, tl_min(channels, 4 * tl_parallel_threads()),
                   kernelSize == 5 ? g25 : tile == 2 ? g2 : g4, kernel, u, packed};
#if TL_X86
    if (level >= 2) job.body = pack_channels_avx512;
    else if (level >= 1) job.body = pack_channels_avx2;
#endif
    tl_parallel_for(job.parts, pack_part, &job);
    tl_parallel_for(positions, pack_position, &job);
    free(u);
    return 0;
}

// MARK: - F(2×2, 3×3) input transform: V = Bᵀ d B

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

static void input2(int level, const float *input, int height, int width, int channels, int tilesY, int tilesX,
                   int padTop, int padLeft, int firstTile, int count, float *v) {
    InputTile tile = input_tile_portable;
#if TL_X86
    if (level >= 2) tile = input_tile_avx512;
    else if (level >= 1) tile = input_tile_avx2;
#endif
    const int perImage = tilesY * tilesX;
    const size_t stride = tl_winograd_stride(count, channels), rowStride = (size_t)width * channels;
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

// MARK: - F(2×2, 3×3) output transform: Y = Aᵀ M A, + bias + residual, clamped

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

static void output2(int level, const float *m, int firstTile, int count, int tilesY, int tilesX,
                    int outputHeight, int outputWidth, int filters, int firstFilter, int filterCount,
                    const float *bias, const float *residual, float low, float high, float *output) {
    OutputTileFunction tile = output_tile_portable;
#if TL_X86
    if (level >= 2) tile = output_tile_avx512;
    else if (level >= 1) tile = output_tile_avx2;
#endif
    const int perImage = tilesY * tilesX;
    OutputTile p = {NULL, tl_winograd_stride(count, filters), {{NULL}}, {{NULL}}, bias, low, high};
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

// MARK: - 6×6 windows: F(4×4, 3×3) and F(2×2, 5×5)
//
// Both interpolate at 0, ±1, ±2 and ∞, so they share Bᵀ: F(4×4, 3×3) steps 4 pixels from tile
// to tile and keeps 4×4 outputs, F(2×2, 5×5) steps 2 and keeps 2×2. Written as plain loops over
// a block of channels (filters) with every operand a pointer — a window pixel outside the image
// points at zeros, an output pixel outside the output at a sink — so the loops have no branches
// and vectorize at the width of the instruction set each copy is compiled for. Channels go in
// blocks of `BLOCK6`, so a tile's intermediate rows stay in L1.

enum { BLOCK6 = 64 };
static const float zeros6[BLOCK6];

/// Bᵀ x for the 6 values `x[0..5]`.
#define TL_BT6(x0, x1, x2, x3, x4, x5, y)                                                                    \
    do {                                                                                                   \
        float p_ = x4 - 4.0f * x2, q_ = x3 - 4.0f * x1, r_ = x4 - x2, s_ = 2.0f * (x3 - x1);              \
        y[0] = 4.0f * x0 - 5.0f * x2 + x4;                                                                 \
        y[1] = p_ + q_;                                                                                    \
        y[2] = p_ - q_;                                                                                    \
        y[3] = r_ + s_;                                                                                    \
        y[4] = r_ - s_;                                                                                    \
        y[5] = 4.0f * x1 - 5.0f * x3 + x5;                                                                 \
    } while (0)

/// Aᵀ x of F(4×4, 3×3) for the 6 values `x[0..5]`: 4 outputs.
#define TL_AT4(x0, x1, x2, x3, x4, x5, y)                                                                    \
    do {                                                                                                   \
        float p_ = x1 + x2, q_ = x1 - x2, r_ = x3 + x4, s_ = x3 - x4;                                      \
        y[0] = x0 + p_ + r_;                                                                               \
        y[1] = q_ + 2.0f * s_;                                                                             \
        y[2] = p_ + 4.0f * r_;                                                                             \
        y[3] = q_ + 8.0f * s_ + x5;                                                                        \
    } while (0)

/// Aᵀ x of F(2×2, 5×5): 2 outputs.
#define TL_AT2(x0, x1, x2, x3, x4, x5, y)                                                                    \
    do {                                                                                                   \
        y[0] = x0 + (x1 + x2) + (x3 + x4);                                                                 \
        y[1] = (x1 - x2) + 2.0f * (x3 - x4) + x5;                                                          \
    } while (0)

/// V = Bᵀ d B of one window for `n` ≤ `BLOCK6` channels: `pixel[r][s]` is window pixel (r, s)
/// at the block's first channel; writes `v[ξ · stride + c]`.
static inline __attribute__((always_inline)) void input6_block(const float *const pixel[6][6], int n, float *v, size_t stride) {
    float u[6][6][BLOCK6];  // d B, row by row
    for (int r = 0; r < 6; r++) {
        const float *d0 = pixel[r][0], *d1 = pixel[r][1], *d2 = pixel[r][2], *d3 = pixel[r][3], *d4 = pixel[r][4], *d5 = pixel[r][5];
        for (int c = 0; c < n; c++) {
            float y[6];
            TL_BT6(d0[c], d1[c], d2[c], d3[c], d4[c], d5[c], y);
            for (int j = 0; j < 6; j++) u[r][j][c] = y[j];
        }
    }
    for (int j = 0; j < 6; j++) {
        for (int c = 0; c < n; c++) {
            float y[6];
            TL_BT6(u[0][j][c], u[1][j][c], u[2][j][c], u[3][j][c], u[4][j][c], u[5][j][c], y);
            for (int i = 0; i < 6; i++) v[(size_t)(i * 6 + j) * stride + c] = y[i];
        }
    }
}

/// The input transform for tiles `step` pixels apart (the output tile).
static inline __attribute__((always_inline)) void input6_body(int step, const float *input, int height, int width, int channels,
                                                              int tilesY, int tilesX, int padTop, int padLeft, int firstTile,
                                                              int count, float *v) {
    const int perImage = tilesY * tilesX;
    const size_t stride = tl_winograd_stride(count, channels), rowStride = (size_t)width * channels;
    for (int t = 0; t < count; t++) {
        int index = firstTile + t, image = index / perImage;
        int y0 = step * ((index % perImage) / tilesX) - padTop, x0 = step * (index % tilesX) - padLeft;
        const float *imageBase = input + (size_t)image * height * rowStride;
        for (int c0 = 0; c0 < channels; c0 += BLOCK6) {
            const float *pixel[6][6];
            for (int r = 0; r < 6; r++)
                for (int s = 0; s < 6; s++)
                    pixel[r][s] = y0 + r >= 0 && y0 + r < height && x0 + s >= 0 && x0 + s < width
                                      ? imageBase + (size_t)(y0 + r) * rowStride + (size_t)(x0 + s) * channels + c0
                                      : zeros6;
            input6_block(pixel, tl_min(BLOCK6, channels - c0), v + (size_t)t * channels + c0, stride);
        }
    }
}

/// One output pixel's `n` filters: `y` (bias included) plus `add`, clamped, into `out`.
static inline __attribute__((always_inline)) void store6(float *restrict out, const float *restrict add, const float *restrict y,
                                                         int n, float low, float high) {
    for (int k = 0; k < n; k++) {
        float value = y[k] + add[k];
        value = value < low ? low : value;
        out[k] = value > high ? high : value;
    }
}

/// The output transform for output tiles of `tile` (4 or 2).
static inline __attribute__((always_inline)) void output6_body(int tile, const float *m, int firstTile, int count, int tilesY,
                                                               int tilesX, int outputHeight, int outputWidth, int filters,
                                                               int firstFilter, int filterCount, const float *bias,
                                                               const float *residual, float low, float high, float *output) {
    const int perImage = tilesY * tilesX;
    const size_t stride = tl_winograd_stride(count, filters);
    float sink[BLOCK6];
    for (int t = 0; t < count; t++) {
        int index = firstTile + t, image = index / perImage;
        int y0 = tile * ((index % perImage) / tilesX), x0 = tile * (index % tilesX);
        for (int k0 = firstFilter; k0 < firstFilter + filterCount; k0 += BLOCK6) {
            const int n = tl_min(BLOCK6, firstFilter + filterCount - k0);
            const float *mt = m + (size_t)t * filters + k0, *b = bias ? bias + k0 : zeros6;
            float s[6][4][BLOCK6], y[4][4][BLOCK6];  // M A row by row, then Aᵀ (M A) + bias
            for (int i = 0; i < 6; i++) {
                const float *m0 = mt + (size_t)(i * 6) * stride, *m1 = m0 + stride, *m2 = m1 + stride, *m3 = m2 + stride,
                            *m4 = m3 + stride, *m5 = m4 + stride;
                if (tile == 4) {
                    for (int k = 0; k < n; k++) {
                        float z[4];
                        TL_AT4(m0[k], m1[k], m2[k], m3[k], m4[k], m5[k], z);
                        for (int j = 0; j < 4; j++) s[i][j][k] = z[j];
                    }
                } else {
                    for (int k = 0; k < n; k++) {
                        float z[2];
                        TL_AT2(m0[k], m1[k], m2[k], m3[k], m4[k], m5[k], z);
                        for (int j = 0; j < 2; j++) s[i][j][k] = z[j];
                    }
                }
            }
            for (int j = 0; j < tile; j++) {
                if (tile == 4) {
                    for (int k = 0; k < n; k++) {
                        float z[4];
                        TL_AT4(s[0][j][k], s[1][j][k], s[2][j][k], s[3][j][k], s[4][j][k], s[5][j][k], z);
                        for (int i = 0; i < 4; i++) y[i][j][k] = z[i] + b[k];
                    }
                } else {
                    for (int k = 0; k < n; k++) {
                        float z[2];
                        TL_AT2(s[0][j][k], s[1][j][k], s[2][j][k], s[3][j][k], s[4][j][k], s[5][j][k], z);
                        for (int i = 0; i < 2; i++) y[i][j][k] = z[i] + b[k];
                    }
                }
            }
            for (int i = 0; i < tile; i++)
                for (int j = 0; j < tile; j++) {
                    int inside = y0 + i < outputHeight && x0 + j < outputWidth;
                    size_t pixel = (((size_t)image * outputHeight + y0 + i) * outputWidth + x0 + j) * filters + k0;
                    store6(inside ? output + pixel : sink, inside && residual ? residual + pixel : zeros6, y[i][j], n, low, high);
                }
        }
    }
}

typedef void (*Input6)(int, const float *, int, int, int, int, int, int, int, int, int, float *);
typedef void (*Output6)(int, const float *, int, int, int, int, int, int, int, int, int, const float *, const float *, float,
                        float, float *);

#define TL_WINOGRAD6_LEVEL(SUFFIX, ATTRIBUTE)                                                                           \
    ATTRIBUTE static void input6_##SUFFIX(int step, const float *input, int height, int width, int channels, int tilesY, \
                                          int tilesX, int padTop, int padLeft, int firstTile, int count, float *v) {      \
        input6_body(step, input, height, width, channels, tilesY, tilesX, padTop, padLeft, firstTile, count, v);         \
    }                                                                                                                    \
    ATTRIBUTE static void output6_##SUFFIX(int tile, const float *m, int firstTile, int count, int tilesY, int tilesX,   \
                                           int outputHeight, int outputWidth, int filters, int firstFilter,              \
                                           int filterCount, const float *bias, const float *residual, float low,         \
                                           float high, float *output) {                                                  \
        output6_body(tile, m, firstTile, count, tilesY, tilesX, outputHeight, outputWidth, filters, firstFilter,         \
                     filterCount, bias, residual, low, high, output);                                                    \
    }

TL_WINOGRAD6_LEVEL(portable, )
#if TL_X86
TL_WINOGRAD6_LEVEL(avx2, TL_AVX2)
TL_WINOGRAD6_LEVEL(avx512, TL_AVX512)
#endif

// MARK: - Entry points

size_t tl_winograd_stride(int count, int width) { return (size_t)count * width + TL_WINOGRAD_SKEW; }

void tl_winograd_input(int tile, int kernelSize, const float *input, int height, int width, int channels, int tilesY, int tilesX,
                       int padTop, int padLeft, int firstTile, int count, float *v) {
    tl_winograd_input_level(tl_cpu_kernel_level(), tile, kernelSize, input, height, width, channels, tilesY, tilesX, padTop,
                            padLeft, firstTile, count, v);
}

void tl_winograd_input_level(int level, int tile, int kernelSize, const float *input, int height, int width, int channels,
                             int tilesY, int tilesX, int padTop, int padLeft, int firstTile, int count, float *v) {
    if (!supported(tile, kernelSize)) return;
    level = tl_min(level, tl_cpu_kernel_level());
    if (tile == 2 && kernelSize == 3)
        return input2(level, input, height, width, channels, tilesY, tilesX, padTop, padLeft, firstTile, count, v);
    Input6 body = input6_portable;
#if TL_X86
    if (level >= 2) body = input6_avx512;
    else if (level >= 1) body = input6_avx2;
#endif
    body(tile, input, height, width, channels, tilesY, tilesX, padTop, padLeft, firstTile, count, v);
}

void tl_winograd_output(int tile, int kernelSize, const float *m, int firstTile, int count, int tilesY, int tilesX,
                        int outputHeight, int outputWidth, int filters, int firstFilter, int filterCount, const float *bias,
                        const float *residual, float low, float high, float *output) {
    tl_winograd_output_level(tl_cpu_kernel_level(), tile, kernelSize, m, firstTile, count, tilesY, tilesX, outputHeight,
                             outputWidth, filters, firstFilter, filterCount, bias, residual, low, high, output);
}

void tl_winograd_output_level(int level, int tile, int kernelSize, const float *m, int firstTile, int count, int tilesY,
                              int tilesX, int outputHeight, int outputWidth, int filters, int firstFilter, int filterCount,
                              const float *bias, const float *residual, float low, float high, float *output) {
    if (!supported(tile, kernelSize)) return;
    level = tl_min(level, tl_cpu_kernel_level());
    if (tile == 2 && kernelSize == 3)
        return output2(level, m, firstTile, count, tilesY, tilesX, outputHeight, outputWidth, filters, firstFilter, filterCount,
                       bias, residual, low, high, output);
    Output6 body = output6_portable;
#if TL_X86
    if (level >= 2) body = output6_avx512;
    else if (level >= 1) body = output6_avx2;
#endif
    body(tile, m, firstTile, count, tilesY, tilesX, outputHeight, outputWidth, filters, firstFilter, filterCount, bias, residual,
         low, high, output);
}
