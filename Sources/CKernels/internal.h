// Shared by the kernel files; not part of the module's public header.
#ifndef TL_KERNELS_INTERNAL_H
#define TL_KERNELS_INTERNAL_H

#include <math.h>

#if defined(__x86_64__)
#define TL_X86 1
#include <immintrin.h>
/// Compiles one function for AVX2 + FMA whatever the target flags are.
#define TL_AVX2 __attribute__((target("avx2,fma")))
/// The same for AVX-512F (Zen 4/5, Skylake-X and later): 16 floats per register, 32 registers.
#define TL_AVX512 __attribute__((target("avx512f,avx2,fma")))
#else
#define TL_X86 0
#endif

static inline int tl_min(int a, int b) { return a < b ? a : b; }

/// Lane masks of a 32-column AVX-512 tile (two 16-float vectors) holding `columns` columns: the
/// first vector's and the second's (0 when `columns` ≤ 16).
static inline unsigned short tl_tile_mask(int columns, int vector) {
    int lanes = columns - 16 * vector;
    return lanes >= 16 ? 0xFFFF : lanes <= 0 ? 0 : (unsigned short)((1u << lanes) - 1);
}
static inline int tl_max(int a, int b) { return a > b ? a : b; }

#if TL_X86
// An AVX-512 tile of `rows` rows × 32 columns in two accumulator arrays (`acc0`: columns 0–15,
// `acc1`: 16–31), masked to the tile's columns. Shared by the GEMM, direct convolution and
// kernel gradient micro-kernels; inlined with a constant `rows`, the arrays stay in registers.
#define TL_TILE_INLINE TL_AVX512 static inline __attribute__((always_inline))

/// Adds the tile stored at `source` (row r at `source + r·ld`).
TL_TILE_INLINE void tl_tile_add(int rows, __m512 *acc0, __m512 *acc1, __mmask16 mask0, __mmask16 mask1, const float *source,
                                size_t ld) {
    for (int r = 0; r < rows; r++) {
        acc0[r] = _mm512_add_ps(acc0[r], _mm512_maskz_loadu_ps(mask0, source + (size_t)r * ld));
        acc1[r] = _mm512_add_ps(acc1[r], _mm512_maskz_loadu_ps(mask1, source + (size_t)r * ld + 16));
    }
}

/// The GEMM epilogue: `bias` (per column, or NULL), then `residual` (or NULL), then a clamp to
/// `[low, high]`.
TL_TILE_INLINE void tl_tile_epilogue(int rows, __m512 *acc0, __m512 *acc1, __mmask16 mask0, __mmask16 mask1, const float *bias,
                                     const float *residual, size_t ldr, float low, float high) {
    if (bias) {
        __m512 bias0 = _mm512_maskz_loadu_ps(mask0, bias), bias1 = _mm512_maskz_loadu_ps(mask1, bias + 16);
        for (int r = 0; r < rows; r++) {
            acc0[r] = _mm512_add_ps(acc0[r], bias0);
            acc1[r] = _mm512_add_ps(acc1[r], bias1);
        }
    }
    if (residual) tl_tile_add(rows, acc0, acc1, mask0, mask1, residual, ldr);
    // Only the bounds there are (a ReLU's max alone, nothing for a linear layer), the bound as the
    // first operand so a NaN passes through as the portable kernel lets it (`max(NaN, b)` is b).
    if (low > -INFINITY) {
        __m512 low_ = _mm512_set1_ps(low);
        for (int r = 0; r < rows; r++) {
            acc0[r] = _mm512_max_ps(low_, acc0[r]);
            acc1[r] = _mm512_max_ps(low_, acc1[r]);
        }
    }
    if (high < INFINITY) {
        __m512 high_ = _mm512_set1_ps(high);
        for (int r = 0; r < rows; r++) {
            acc0[r] = _mm512_min_ps(high_, acc0[r]);
            acc1[r] = _mm512_min_ps(high_, acc1[r]);
        }
    }
}

/// Stores the tile at `c` (row r at `c + r·ldc`).
TL_TILE_INLINE void tl_tile_store(int rows, const __m512 *acc0, const __m512 *acc1, __mmask16 mask0, __mmask16 mask1, float *c,
                                  size_t ldc) {
    for (int r = 0; r < rows; r++) {
        _mm512_mask_storeu_ps(c + (size_t)r * ldc, mask0, acc0[r]);
        _mm512_mask_storeu_ps(c + (size_t)r * ldc + 16, mask1, acc1[r]);
    }
}
#endif

#endif
