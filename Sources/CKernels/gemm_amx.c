#define _GNU_SOURCE
// GEMM on AMX tiles, within a few 1e-6 of fp32: each fp32 value x is split into
// two bfloat16s, hi = bf16(x) and lo = bf16(x − hi) (x = hi + lo to 2⁻¹⁸ relative), and
// a·b ≈ hi_a·hi_b + hi_a·lo_b + lo_a·hi_b, three bf16 tile products (TDPBF16PS, exact products
// summed in fp32). The dropped lo·lo term and the splits leave about 2⁻¹⁷ relative per product,
// so a 1 000-term dot product lands within a few 1e-6 of fp32's (fp32 FMAs: about 1e-7); the
// parity tests against Keras allow 1e-4. One TDPBF16PS does 16 × 16 × 32 multiply-adds: the
// three of them outrun AVX-512 FMAs by about 1.5–2× on Sapphire Rapids.
//
// Layers opt in (`Conv2D.allowsAMX`): through a deep network the errors add up, and on fixtures
// with randomized BatchNorm statistics (large folded gains) MobileNetV2's features land up to
// 2e-3 of their largest value from fp32, past the 1e-4 the parity tests hold to Keras. So
// `Model` turns AMX on in a graph only after a pass with it agrees with the fp32 pass
// (`Graph.choosingAMX`); `TLHUB_AMX=1` turns it on everywhere, `TLHUB_AMX=0` nowhere.
//
// B comes from `tl_gemm_pack`'s fp32 panels, split once into per-panel, per-32-deep blocks of
// two 1 KB tiles (hi, then lo) in AMX's pair layout: row r of a tile holds, for each of the 16
// columns, the values of K rows 2r and 2r + 1. A is split per call into a per-thread buffer,
// rows of K (padded to 32) bf16s, hi and lo apart. The epilogue (bias, residual, clamp) runs on
// the C tiles stored to a small buffer.
#include "CKernels.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#if TL_X86 && defined(__linux__)
#include <cpuid.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#define TL_AMX __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bf16,avx512bw,avx512vl")))

enum { K_STEP = 32, TILE_HALFWORDS = 512 /* 16 rows × 64 bytes */,
       A_CHUNK_BYTES = 512 * 1024 /* A rows split per pass, hi and lo */ };

static int amxUsable;
static pthread_once_t amxOnce = PTHREAD_ONCE_INIT;

/// AMX-TILE, AMX-BF16 and AVX512-BF16 in CPUID, tile state enabled by the OS (XCR0 bits 17–18),
/// and Linux's permission for this process to use tile data (`ARCH_REQ_XCOMP_PERM`); and the
/// AVX-512 kernel level (`TLHUB_KERNELS` may cap it).
static void probe_amx(void) {
    if (tl_cpu_kernel_level() < 2) return;
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d & (1u << 24)) || !(d & (1u << 22))) return;
    if (!__get_cpuid_count(7, 1, &a, &b, &c, &d) || !(a & (1u << 5))) return;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return;  // OSXSAVE
    unsigned lowWord, highWord;
    __asm__ volatile("xgetbv" : "=a"(lowWord), "=d"(highWord) : "c"(0));
    if ((lowWord & (3u << 17)) != (3u << 17)) return;
    enum { ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };
    if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0) return;
    amxUsable = 1;
}

int tl_gemm_amx_supported(void) {
    pthread_once(&amxOnce, probe_amx);
    return amxUsable;
}

size_t tl_gemm_amx_packed_count(int k, int n) {
    size_t blocks = (size_t)(k + K_STEP - 1) / K_STEP;
    return (size_t)((n + TL_GEMM_PANEL - 1) / TL_GEMM_PANEL) * blocks * 2 * TILE_HALFWORDS;
}

/// hi = bf16(x) and lo = bf16(x − hi), rounded to nearest even, for 16 floats.
TL_AMX static inline void split16(__m512 x, __m256i *hi, __m256i *lo) {
    __m256i high = (__m256i)_mm512_cvtneps_pbh(x);
    __m512 widened = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(high), 16));
    *hi = high;
    *lo = (__m256i)_mm512_cvtneps_pbh(_mm512_sub_ps(x, widened));
}

TL_AMX static void pack_amx(const float *packed, int k, int n, uint16_t *out) {
    int blocks = (k + K_STEP - 1) / K_STEP, panels = (n + TL_GEMM_PANEL - 1) / TL_GEMM_PANEL;
    for (int p = 0; p < panels; p++) {
        const float *panel = packed + (size_t)p * TL_GEMM_PANEL * k;
        for (int block = 0; block < blocks; block++) {
            uint16_t *hiTile = out + ((size_t)p * blocks + block) * 2 * TILE_HALFWORDS, *loTile = hiTile + TILE_HALFWORDS;
            for (int r = 0; r < 16; r++) {
                int row = block * K_STEP + 2 * r;
                __m512 even = row < k ? _mm512_loadu_ps(panel + (size_t)row * TL_GEMM_PANEL) : _mm512_setzero_ps();
                __m512 odd = row + 1 < k ? _mm512_loadu_ps(panel + (size_t)(row + 1) * TL_GEMM_PANEL) : _mm512_setzero_ps();
                __m256i evenHi, evenLo, oddHi, oddLo;
                split16(even, &evenHi, &evenLo);
                split16(odd, &oddHi, &oddLo);
                _mm512_storeu_si512(hiTile + r * 32, _mm512_or_si512(_mm512_cvtepu16_epi32(evenHi),
                                                                     _mm512_slli_epi32(_mm512_cvtepu16_epi32(oddHi), 16)));
                _mm512_storeu_si512(loTile + r * 32, _mm512_or_si512(_mm512_cvtepu16_epi32(evenLo),
                                                                     _mm512_slli_epi32(_mm512_cvtepu16_epi32(oddLo), 16)));
            }
        }
    }
}

void tl_gemm_amx_pack(const float *packed, int k, int n, uint16_t *out) {
    if (tl_gemm_amx_supported()) pack_amx(packed, k, n, out);
}

typedef struct {
    uint8_t palette, startRow, reserved[14];
    uint16_t bytesPerRow[16];
    uint8_t rows[16];
} __attribute__((packed)) TileConfig;

static _Thread_local uint16_t *splitRows;
static _Thread_local size_t splitCapacity;
static _Thread_local int tilesConfigured;

/// Rows `0..<rows` of `a` split into hi and lo rows of `depth` (K padded to 32) bf16s; rows up
/// to `paddedRows` zero.
TL_AMX static void split_rows(const float *a, int lda, int rows, int paddedRows, int k, int depth,
                              uint16_t *hi, uint16_t *lo) {
    __mmask16 tail = (__mmask16)((1u << (k % 16)) - 1);
    for (int i = 0; i < paddedRows; i++) {
        uint16_t *hiRow = hi + (size_t)i * depth, *loRow = lo + (size_t)i * depth;
        int column = 0;
        if (i < rows) {
            const float *row = a + (size_t)i * lda;
            __m256i h, l;
            for (; column + 16 <= k; column += 16) {
                split16(_mm512_loadu_ps(row + column), &h, &l);
                _mm256_storeu_si256((__m256i *)(hiRow + column), h);
                _mm256_storeu_si256((__m256i *)(loRow + column), l);
            }
            if (column < k) {
                split16(_mm512_maskz_loadu_ps(tail, row + column), &h, &l);
                _mm256_storeu_si256((__m256i *)(hiRow + column), h);
                _mm256_storeu_si256((__m256i *)(loRow + column), l);
                column += 16;
            }
        }
        for (; column < depth; column += 16) {
            _mm256_storeu_si256((__m256i *)(hiRow + column), _mm256_setzero_si256());
            _mm256_storeu_si256((__m256i *)(loRow + column), _mm256_setzero_si256());
        }
    }
}

/// Bias, residual and clamp on `rows` rows of one 16-column C tile stored at `tile`, into `c`.
TL_AMX static inline void finish_tile(const float *tile, int rows, __mmask16 mask, __m512 bias, const float *residual,
                                      int ldr, __m512 low, __m512 high, float *c, int ldc) {
    for (int r = 0; r < rows; r++) {
        __m512 x = _mm512_add_ps(_mm512_load_ps(tile + r * 16), bias);
        if (residual) x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(mask, residual + (size_t)r * ldr));
        _mm512_mask_storeu_ps(c + (size_t)r * ldc, mask, _mm512_min_ps(_mm512_max_ps(x, low), high));
    }
}

/// 0, or −1 (nothing written) when the split rows' buffer cannot grow.
TL_AMX static int gemm_amx(int m, int n, int k, const float *a, int lda, const uint16_t *amx, int firstColumn,
                            const float *bias, const float *residual, int ldr, float low, float high, float *c, int ldc) {
    int blocks = (k + K_STEP - 1) / K_STEP, depth = blocks * K_STEP;
    int panels = (n + TL_GEMM_PANEL - 1) / TL_GEMM_PANEL;
    const uint16_t *b = amx + (size_t)(firstColumn / TL_GEMM_PANEL) * blocks * 2 * TILE_HALFWORDS;
    // Rows per pass: a multiple of 32 whose split rows fit A_CHUNK_BYTES.
    int chunk = tl_max(32, (int)(A_CHUNK_BYTES / ((size_t)tl_max(depth, K_STEP) * 4)) / 32 * 32);
    chunk = tl_min(chunk, (m + 31) / 32 * 32);
    size_t need = (size_t)chunk * tl_max(depth, K_STEP) * 2;
    if (need > splitCapacity) {
        free(splitRows);
        splitRows = aligned_alloc(64, need * sizeof(uint16_t));
        if (!splitRows) { splitCapacity = 0; return -1; }
        splitCapacity = need;
    }
    if (!tilesConfigured) {
        TileConfig config;
        memset(&config, 0, sizeof config);
        config.palette = 1;
        for (int t = 0; t < 8; t++) { config.rows[t] = 16; config.bytesPerRow[t] = 64; }
        _tile_loadconfig(&config);
        tilesConfigured = 1;
    }
    uint16_t *hi = splitRows, *lo = splitRows + (size_t)chunk * depth;
    size_t stride = (size_t)depth * sizeof(uint16_t);
    __m512 lowV = _mm512_set1_ps(low), highV = _mm512_set1_ps(high);
    float tiles[2][256] __attribute__((aligned(64)));
    for (int start = 0; start < m; start += chunk) {
        int rows = tl_min(chunk, m - start), paddedRows = (rows + 15) / 16 * 16;
        split_rows(a + (size_t)start * lda, lda, rows, paddedRows, k, depth, hi, lo);
        for (int p = 0; p < panels; p++) {
            const uint16_t *panel = b + (size_t)p * blocks * 2 * TILE_HALFWORDS;
            int columns = tl_min(TL_GEMM_PANEL, n - p * TL_GEMM_PANEL);
            __mmask16 mask = (__mmask16)((1u << columns) - 1);
            __m512 biasV = bias ? _mm512_maskz_loadu_ps(mask, bias + p * TL_GEMM_PANEL) : _mm512_setzero_ps();
            for (int i0 = 0; i0 < rows; i0 += 32) {
                const uint16_t *hi0 = hi + (size_t)i0 * depth, *lo0 = lo + (size_t)i0 * depth;
                int pair = rows - i0 > 16;
                _tile_zero(0);
                if (pair) _tile_zero(1);
                if (pair) {
                    for (int block = 0; block < blocks; block++) {
                        const uint16_t *bTile = panel + (size_t)block * 2 * TILE_HALFWORDS;
                        _tile_loadd(2, bTile, 64);
                        _tile_loadd(3, bTile + TILE_HALFWORDS, 64);
                        _tile_loadd(4, hi0 + block * K_STEP, stride);
                        _tile_loadd(5, hi0 + 16 * (size_t)depth + block * K_STEP, stride);
                        _tile_loadd(6, lo0 + block * K_STEP, stride);
                        _tile_loadd(7, lo0 + 16 * (size_t)depth + block * K_STEP, stride);
                        _tile_dpbf16ps(0, 4, 2);
                        _tile_dpbf16ps(1, 5, 2);
                        _tile_dpbf16ps(0, 4, 3);
                        _tile_dpbf16ps(1, 5, 3);
                        _tile_dpbf16ps(0, 6, 2);
                        _tile_dpbf16ps(1, 7, 2);
                    }
                } else {
                    // One row tile, its products summed in the same order as above, so a row's
                    // bits do not depend on how many rows share its call.
                    for (int block = 0; block < blocks; block++) {
                        const uint16_t *bTile = panel + (size_t)block * 2 * TILE_HALFWORDS;
                        _tile_loadd(2, bTile, 64);
                        _tile_loadd(3, bTile + TILE_HALFWORDS, 64);
                        _tile_loadd(4, hi0 + block * K_STEP, stride);
                        _tile_loadd(6, lo0 + block * K_STEP, stride);
                        _tile_dpbf16ps(0, 4, 2);
                        _tile_dpbf16ps(0, 4, 3);
                        _tile_dpbf16ps(0, 6, 2);
                    }
                }
                _tile_stored(0, tiles[0], 64);
                size_t offset = (size_t)(start + i0);
                if (pair) {
                    _tile_stored(1, tiles[1], 64);
                    finish_tile(tiles[0], 16, mask, biasV, residual ? residual + offset * ldr + p * TL_GEMM_PANEL : NULL, ldr,
                                lowV, highV, c + offset * ldc + p * TL_GEMM_PANEL, ldc);
                    finish_tile(tiles[1], tl_min(16, rows - i0 - 16), mask, biasV,
                                residual ? residual + (offset + 16) * ldr + p * TL_GEMM_PANEL : NULL, ldr,
                                lowV, highV, c + (offset + 16) * ldc + p * TL_GEMM_PANEL, ldc);
                } else {
                    finish_tile(tiles[0], rows - i0, mask, biasV, residual ? residual + offset * ldr + p * TL_GEMM_PANEL : NULL, ldr,
                                lowV, highV, c + offset * ldc + p * TL_GEMM_PANEL, ldc);
                }
            }
        }
    }
    return 0;
}

int tl_gemm_amx(int m, int n, int k, const float *a, int lda, const uint16_t *amx, int firstColumn,
                const float *bias, const float *residual, int ldr, float low, float high, float *c, int ldc) {
    if (!tl_gemm_amx_supported() || firstColumn % TL_GEMM_PANEL != 0) return -1;
    if (m <= 0 || n <= 0) return 0;
    return gemm_amx(m, n, k, a, lda, amx, firstColumn, bias, residual, ldr, low, high, c, ldc);
}

#else

int tl_gemm_amx_supported(void) { return 0; }
size_t tl_gemm_amx_packed_count(int k, int n) { (void)k; (void)n; return 0; }
void tl_gemm_amx_pack(const float *packed, int k, int n, uint16_t *out) { (void)packed; (void)k; (void)n; (void)out; }
int tl_gemm_amx(int m, int n, int k, const float *a, int lda, const uint16_t *amx, int firstColumn,
                const float *bias, const float *residual, int ldr, float low, float high, float *c, int ldc) {
    return -1;
}

#endif
