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

typedef struct {
    const float *input;
    int height, width, channels, tilesY, tilesX, padTop, padLeft, firstTile, count;
    float *v;
} InputTiles;

/// Bᵀ d B of one 4×4 tile for channels `[0, channels)`; `rows[r]`/`columns[s]` are NULL/-1
/// where the tap is outside the image (it reads zero).
#define WINOGRAD_INPUT_TILE(VOUT, STRIDE)                                                              \
    for (int c = 0; c < channels; c++) {                                                               \
        float d[4][4], t[4][4];                                                                        \
        for (int r = 0; r < 4; r++)                                                                    \
            for (int s = 0; s < 4; s++)                                                                \
                d[r][s] = rows[r] && columns[s] >= 0 ? rows[r][(size_t)columns[s] * channels + c] : 0.0f; \
        for (int s = 0; s < 4; s++) {                                                                  \
            t[0][s] = d[0][s] - d[2][s];                                                               \
            t[1][s] = d[1][s] + d[2][s];                                                               \
            t[2][s] = d[2][s] - d[1][s];                                                               \
            t[3][s] = d[1][s] - d[3][s];                                                               \
        }                                                                                              \
        for (int r = 0; r < 4; r++) {                                                                  \
            VOUT[(size_t)(r * 4 + 0) * STRIDE + c] = t[r][0] - t[r][2];                                \
            VOUT[(size_t)(r * 4 + 1) * STRIDE + c] = t[r][1] + t[r][2];                                \
            VOUT[(size_t)(r * 4 + 2) * STRIDE + c] = t[r][2] - t[r][1];                                \
            VOUT[(size_t)(r * 4 + 3) * STRIDE + c] = t[r][1] - t[r][3];                                \
        }                                                                                              \
    }

/// Interior tiles (all 16 taps inside the image): no bounds checks, so the channel loop vectorizes.
#define WINOGRAD_INPUT_INTERIOR(VOUT, STRIDE)                                                          \
    for (int c = 0; c < channels; c++) {                                                               \
        float t[4][4];                                                                                 \
        for (int s = 0; s < 4; s++) {                                                                  \
            float d0 = origin[(size_t)s * channels + c], d1 = origin[rowStride + (size_t)s * channels + c]; \
            float d2 = origin[2 * rowStride + (size_t)s * channels + c];                              \
            float d3 = origin[3 * rowStride + (size_t)s * channels + c];                              \
            t[0][s] = d0 - d2;                                                                         \
            t[1][s] = d1 + d2;                                                                         \
            t[2][s] = d2 - d1;                                                                         \
            t[3][s] = d1 - d3;                                                                         \
        }                                                                                              \
        for (int r = 0; r < 4; r++) {                                                                  \
            VOUT[(size_t)(r * 4 + 0) * STRIDE + c] = t[r][0] - t[r][2];                                \
            VOUT[(size_t)(r * 4 + 1) * STRIDE + c] = t[r][1] + t[r][2];                                \
            VOUT[(size_t)(r * 4 + 2) * STRIDE + c] = t[r][2] - t[r][1];                                \
            VOUT[(size_t)(r * 4 + 3) * STRIDE + c] = t[r][1] - t[r][3];                                \
        }                                                                                              \
    }

#define WINOGRAD_INPUT_FUNCTION(NAME, ATTRIBUTE)                                                       \
    ATTRIBUTE static void NAME(const InputTiles *p) {                                                  \
        const int channels = p->channels, perImage = p->tilesY * p->tilesX;                            \
        const size_t stride = (size_t)p->count * channels, rowStride = (size_t)p->width * channels;    \
        for (int t = 0; t < p->count; t++) {                                                           \
            int tile = p->firstTile + t, image = tile / perImage;                                      \
            int ty = (tile % perImage) / p->tilesX, tx = tile % p->tilesX;                             \
            int y0 = 2 * ty - p->padTop, x0 = 2 * tx - p->padLeft;                                     \
            const float *imageBase = p->input + (size_t)image * p->height * rowStride;                 \
            float *restrict v = p->v + (size_t)t * channels;                                           \
            if (y0 >= 0 && y0 + 4 <= p->height && x0 >= 0 && x0 + 4 <= p->width) {                    \
                const float *restrict origin = imageBase + (size_t)y0 * rowStride + (size_t)x0 * channels; \
                WINOGRAD_INPUT_INTERIOR(v, stride)                                                     \
            } else {                                                                                   \
                const float *rows[4];                                                                  \
                int columns[4];                                                                        \
                for (int r = 0; r < 4; r++) {                                                          \
                    int y = y0 + r;                                                                    \
                    rows[r] = y >= 0 && y < p->height ? imageBase + (size_t)y * rowStride : NULL;      \
                    int x = x0 + r;                                                                    \
                    columns[r] = x >= 0 && x < p->width ? x : -1;                                      \
                }                                                                                      \
                WINOGRAD_INPUT_TILE(v, stride)                                                         \
            }                                                                                          \
        }                                                                                              \
    }

WINOGRAD_INPUT_FUNCTION(input_portable, )
#if TL_X86
WINOGRAD_INPUT_FUNCTION(input_avx2, TL_AVX2)
WINOGRAD_INPUT_FUNCTION(input_avx512, TL_AVX512)
#endif

void tl_winograd_input(const float *input, int height, int width, int channels, int tilesY, int tilesX,
                       int padTop, int padLeft, int firstTile, int count, float *v) {
    InputTiles p = {input, height, width, channels, tilesY, tilesX, padTop, padLeft, firstTile, count, v};
#if TL_X86
    int level = tl_cpu_kernel_level();
    if (level >= 2) { input_avx512(&p); return; }
    if (level >= 1) { input_avx2(&p); return; }
#endif
    input_portable(&p);
}

// MARK: - Output transform: Y = Aᵀ M A, + bias + residual, clamped

typedef struct {
    const float *m;
    int firstTile, count, tilesY, tilesX, outputHeight, outputWidth, filters, firstFilter, filterCount;
    const float *bias, *residual;
    float low, high;
    float *output;
} OutputTiles;

#define WINOGRAD_OUTPUT_FUNCTION(NAME, ATTRIBUTE)                                                      \
    ATTRIBUTE static void NAME(const OutputTiles *p) {                                                 \
        const int filters = p->filters, perImage = p->tilesY * p->tilesX;                              \
        const size_t stride = (size_t)p->count * filters;                                              \
        const float low = p->low, high = p->high;                                                      \
        for (int t = 0; t < p->count; t++) {                                                           \
            int tile = p->firstTile + t, image = tile / perImage;                                      \
            int ty = (tile % perImage) / p->tilesX, tx = tile % p->tilesX;                             \
            int y0 = 2 * ty, x0 = 2 * tx;                                                              \
            int rowsValid = p->outputHeight - y0 >= 2 ? 2 : 1, columnsValid = p->outputWidth - x0 >= 2 ? 2 : 1; \
            const float *restrict m = p->m + (size_t)t * filters;                                      \
            size_t pixel[2][2];                                                                        \
            for (int r = 0; r < 2; r++)                                                                \
                for (int s = 0; s < 2; s++)                                                            \
                    pixel[r][s] = (((size_t)image * p->outputHeight + y0 + r) * p->outputWidth + x0 + s) * filters; \
            float y[2][2][64];                                                                         \
            for (int k0 = p->firstFilter; k0 < p->firstFilter + p->filterCount; k0 += 64) {            \
                int n = tl_min(64, p->firstFilter + p->filterCount - k0);                              \
                for (int j = 0; j < n; j++) {                                                          \
                    int k = k0 + j;                                                                    \
                    float s[4][2];                                                                     \
                    for (int r = 0; r < 4; r++) {                                                      \
                        float a = m[(size_t)(r * 4) * stride + k], b = m[(size_t)(r * 4 + 1) * stride + k]; \
                        float c = m[(size_t)(r * 4 + 2) * stride + k], d = m[(size_t)(r * 4 + 3) * stride + k]; \
                        s[r][0] = a + b + c;                                                           \
                        s[r][1] = b - c - d;                                                           \
                    }                                                                                  \
                    float bias = p->bias ? p->bias[k] : 0.0f;                                          \
                    for (int col = 0; col < 2; col++) {                                                \
                        y[0][col][j] = s[0][col] + s[1][col] + s[2][col] + bias;                       \
                        y[1][col][j] = s[1][col] - s[2][col] - s[3][col] + bias;                       \
                    }                                                                                  \
                }                                                                                      \
                for (int r = 0; r < rowsValid; r++)                                                    \
                    for (int col = 0; col < columnsValid; col++) {                                     \
                        float *restrict out = p->output + pixel[r][col] + k0;                          \
                        const float *restrict add = p->residual ? p->residual + pixel[r][col] + k0 : NULL; \
                        for (int j = 0; j < n; j++) {                                                  \
                            float value = y[r][col][j] + (add ? add[j] : 0.0f);                        \
                            value = value < low ? low : value;                                         \
                            out[j] = value > high ? high : value;                                      \
                        }                                                                              \
                    }                                                                                  \
            }                                                                                          \
        }                                                                                              \
    }

WINOGRAD_OUTPUT_FUNCTION(output_portable, )
#if TL_X86
WINOGRAD_OUTPUT_FUNCTION(output_avx2, TL_AVX2)
WINOGRAD_OUTPUT_FUNCTION(output_avx512, TL_AVX512)
#endif

void tl_winograd_output(const float *m, int firstTile, int count, int tilesY, int tilesX,
                        int outputHeight, int outputWidth, int filters, int firstFilter, int filterCount,
                        const float *bias, const float *residual, float low, float high, float *output) {
    OutputTiles p = {m, firstTile, count, tilesY, tilesX, outputHeight, outputWidth, filters, firstFilter, filterCount,
                     bias, residual, low, high, output};
#if TL_X86
    int level = tl_cpu_kernel_level();
    if (level >= 2) { output_avx512(&p); return; }
    if (level >= 1) { output_avx2(&p); return; }
#endif
    output_portable(&p);
}
