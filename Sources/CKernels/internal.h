// Shared by the kernel files; not part of the module's public header.
#ifndef TL_KERNELS_INTERNAL_H
#define TL_KERNELS_INTERNAL_H

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

#endif
