// GEMM with a packed right-hand side and a fused epilogue (bias, residual, clamp).
//
// Convolution weights are packed once at load into panels of 16 columns; activations are read
// in place (NHWC rows are GEMM rows), so a call packs nothing. The AVX2 micro-kernel keeps a
// 6 × 16 block of C in twelve ymm registers and broadcasts A one element at a time; the AVX-512
// one an 8 × 32 block (two panels) in sixteen zmm registers. K is cut into blocks of at most 384
// so a B panel slice stays in L1 while the row strips of A pass, and rows into chunks of 192 so
// that chunk's K block of A stays in L2 while every panel passes over it.
#include "CKernels.h"
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { PANEL = TL_GEMM_PANEL, ROWS = 6, WIDE_ROWS = 8, DEPTH_BLOCK = 384, ROW_CHUNK = 192,
       ROW_ORDER_FLOATS = 256 * 1024 /* 1 MB of packed B: L2 holds it */,
       ROW_ORDER_STREAM_FLOATS = 128 * 1024 /* A and C over 512 KB: they stream through L2 */,
       STREAM_AHEAD = 64 /* K rows (4 KB of a panel) a tile streaming B prefetches ahead */,
       SHORT_ROWS = 64 /* rows of a call that reads its weights for little work (a 7×7 map) */,
       RECENT = 4 /* right-hand sides a thread remembers reading */ };

size_t tl_gemm_packed_count(int k, int n) {
    return (size_t)((n + PANEL - 1) / PANEL) * PANEL * (size_t)k;
}

int tl_gemm_row_tile(void) {
    return TL_X86 && tl_cpu_kernel_level() == 2 ? WIDE_ROWS : ROWS;
}

void tl_gemm_pack(const float *b, int ldb, int k, int n, float *packed) {
    for (int j0 = 0; j0 < n; j0 += PANEL) {
        int width = tl_min(PANEL, n - j0);
        float *panel = packed + (size_t)j0 * k;
        for (int row = 0; row < k; row++) {
            const float *source = b + (size_t)row * ldb + j0;
            float *destination = panel + (size_t)row * PANEL;
            for (int j = 0; j < width; j++) destination[j] = source[j];
            for (int j = width; j < PANEL; j++) destination[j] = 0;
        }
    }
}

/// Everything a micro-kernel call needs besides its position.
typedef struct {
    int depth;          // K of this block
    int lda, ldc, ldr;
    int ldb;            // floats between B's rows in a panel: PANEL when packed, n's stride when not
    int first, last;    // first K block (start from zero), last (apply the epilogue)
    float low, high;
    int streamB;        // prefetch B this many K rows ahead (0: B is in cache)
} Block;

// MARK: - Portable

static void kernel_portable(int rows, int columns, const Block *block, const float *a, const float *b,
                            float *c, const float *bias, const float *residual) {
    float accumulator[ROWS][PANEL];
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < PANEL; j++)
            accumulator[r][j] = block->first ? 0.0f : (j < columns ? c[(size_t)r * block->ldc + j] : 0.0f);
    for (int k = 0; k < block->depth; k++) {
        const float *bRow = b + (size_t)k * block->ldb;
        for (int r = 0; r < rows; r++) {
            float value = a[(size_t)r * block->lda + k];
            for (int j = 0; j < PANEL; j++) accumulator[r][j] += value * bRow[j];
        }
    }
    for (int r = 0; r < rows; r++) {
        float *out = c + (size_t)r * block->ldc;
        for (int j = 0; j < columns; j++) {
            float x = accumulator[r][j];
            if (block->last) {
                if (bias) x += bias[j];
                if (residual) x += residual[(size_t)r * block->ldr + j];
                x = x < block->low ? block->low : x;
                x = x > block->high ? block->high : x;
            }
            out[j] = x;
        }
    }
}

// MARK: - AVX2

#if TL_X86
/// A 6×16 (or fewer rows) block: `ROWS_` is a constant in each instantiation, so the
/// accumulators live in registers and the row loops unroll.
#define DEFINE_AVX2_KERNEL(ROWS_)                                                                      \
TL_AVX2 static void kernel_avx2_##ROWS_(int columns, const Block *block, const float *a,              \
                                         const float *b, float *c, const float *bias,                 \
                                         const float *residual) {                                     \
    __m256 low_ = _mm256_set1_ps(block->low), high_ = _mm256_set1_ps(block->high);                    \
    __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);                                        \
    __m256i mask0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(columns), lane);                             \
    __m256i mask1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(columns - 8), lane);                         \
    int full = columns == PANEL;                                                                      \
    int half = columns <= 8;  /* the right half of the panel is padding: skip it */                   \
    __m256 acc0[ROWS_], acc1[ROWS_];                                                                  \
    for (int r = 0; r < ROWS_; r++) {                                                                 \
        if (block->first) {                                                                           \
            acc0[r] = _mm256_setzero_ps(); acc1[r] = _mm256_setzero_ps();                             \
        } else if (full) {                                                                            \
            acc0[r] = _mm256_loadu_ps(c + (size_t)r * block->ldc);                                    \
            acc1[r] = _mm256_loadu_ps(c + (size_t)r * block->ldc + 8);                                \
        } else {                                                                                      \
            acc0[r] = _mm256_maskload_ps(c + (size_t)r * block->ldc, mask0);                          \
            acc1[r] = _mm256_maskload_ps(c + (size_t)r * block->ldc + 8, mask1);                      \
        }                                                                                             \
    }                                                                                                 \
    const float *rowA[ROWS_];                                                                         \
    for (int r = 0; r < ROWS_; r++) rowA[r] = a + (size_t)r * block->lda;                             \
    if (half) {                                                                                       \
        _Pragma("clang loop unroll_count(4)")                                                         \
        for (int k = 0; k < block->depth; k++) {                                                      \
            __m256 b0 = _mm256_loadu_ps(b + (size_t)k * block->ldb);                                       \
            for (int r = 0; r < ROWS_; r++)                                                           \
                acc0[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(rowA[r] + k), b0, acc0[r]);             \
        }                                                                                             \
    } else {                                                                                          \
        _Pragma("clang loop unroll_count(4)")                                                         \
        for (int k = 0; k < block->depth; k++) {                                                      \
            __m256 b0 = _mm256_loadu_ps(b + (size_t)k * block->ldb);                                       \
            __m256 b1 = _mm256_loadu_ps(b + (size_t)k * block->ldb + 8);                                   \
            for (int r = 0; r < ROWS_; r++) {                                                         \
                __m256 value = _mm256_broadcast_ss(rowA[r] + k);                                      \
                acc0[r] = _mm256_fmadd_ps(value, b0, acc0[r]);                                        \
                acc1[r] = _mm256_fmadd_ps(value, b1, acc1[r]);                                        \
            }                                                                                         \
        }                                                                                             \
    }                                                                                                 \
    if (block->last) {                                                                                \
        if (bias) {                                                                                   \
            __m256 bias0 = full ? _mm256_loadu_ps(bias) : _mm256_maskload_ps(bias, mask0);            \
            __m256 bias1 = full ? _mm256_loadu_ps(bias + 8) : _mm256_maskload_ps(bias + 8, mask1);    \
            for (int r = 0; r < ROWS_; r++) {                                                         \
                acc0[r] = _mm256_add_ps(acc0[r], bias0); acc1[r] = _mm256_add_ps(acc1[r], bias1);     \
            }                                                                                         \
        }                                                                                             \
        if (residual) {                                                                               \
            for (int r = 0; r < ROWS_; r++) {                                                         \
                const float *source = residual + (size_t)r * block->ldr;                              \
                acc0[r] = _mm256_add_ps(acc0[r], full ? _mm256_loadu_ps(source)                       \
                                                      : _mm256_maskload_ps(source, mask0));           \
                acc1[r] = _mm256_add_ps(acc1[r], full ? _mm256_loadu_ps(source + 8)                   \
                                                      : _mm256_maskload_ps(source + 8, mask1));       \
            }                                                                                         \
        }                                                                                             \
        if (block->low > -INFINITY)  /* only the bounds there are, as the AVX-512 epilogue */         \
            for (int r = 0; r < ROWS_; r++) {                                                         \
                acc0[r] = _mm256_max_ps(low_, acc0[r]); acc1[r] = _mm256_max_ps(low_, acc1[r]);       \
            }                                                                                         \
        if (block->high < INFINITY)                                                                   \
            for (int r = 0; r < ROWS_; r++) {                                                         \
                acc0[r] = _mm256_min_ps(high_, acc0[r]); acc1[r] = _mm256_min_ps(high_, acc1[r]);     \
            }                                                                                         \
    }                                                                                                 \
    for (int r = 0; r < ROWS_; r++) {                                                                 \
        float *out = c + (size_t)r * block->ldc;                                                      \
        if (full) {                                                                                   \
            _mm256_storeu_ps(out, acc0[r]); _mm256_storeu_ps(out + 8, acc1[r]);                       \
        } else {                                                                                      \
            _mm256_maskstore_ps(out, mask0, acc0[r]); _mm256_maskstore_ps(out + 8, mask1, acc1[r]);   \
        }                                                                                             \
    }                                                                                                 \
}

// One row sums over k in the same order as every other row count (no split K phases), so a row's
// bits do not depend on how many rows share its strip: a batch and its shards agree exactly.
DEFINE_AVX2_KERNEL(1)
DEFINE_AVX2_KERNEL(2)
DEFINE_AVX2_KERNEL(3)
DEFINE_AVX2_KERNEL(4)
DEFINE_AVX2_KERNEL(5)
DEFINE_AVX2_KERNEL(6)
#endif

// MARK: - AVX-512

#if TL_X86
/// The K steps of a full-width tile (two panels); with `ahead` > 0 each step also prefetches B
/// that many rows on. Not unrolled: unrolled, clang hoists both steps' eight broadcasts, runs
/// out of zmm registers and spills an accumulator every step (1×1 layers ran 10-15 % slower).
TL_TILE_INLINE void tile_steps(int rows, __m512 *acc0, __m512 *acc1, const float *const *rowA, const float *b0,
                               const float *b1, int depth, int ldb, int ahead) {
    _Pragma("clang loop unroll(disable)")
    for (int k = 0; k < depth; k++) {
        if (ahead) {
            _mm_prefetch((const char *)(b0 + (size_t)(k + ahead) * ldb), _MM_HINT_T0);
            _mm_prefetch((const char *)(b1 + (size_t)(k + ahead) * ldb), _MM_HINT_T0);
        }
        __m512 p0 = _mm512_loadu_ps(b0 + (size_t)k * ldb);
        __m512 p1 = _mm512_loadu_ps(b1 + (size_t)k * ldb);
        for (int r = 0; r < rows; r++) {
            __m512 value = _mm512_set1_ps(rowA[r][k]);
            acc0[r] = _mm512_fmadd_ps(value, p0, acc0[r]);
            acc1[r] = _mm512_fmadd_ps(value, p1, acc1[r]);
        }
    }
}

/// The K steps of a tile 17 to 24 columns wide (MobileNetV2's 24-filter projections): the second
/// panel's first 8 columns on ymm, so its FMAs take half a zmm FMA's pipe time (on 256-bit FMA units
/// such as Zen 4's) instead of a masked full one. Each lane sums as the zmm path does: same bits.
TL_TILE_INLINE void tile_steps_24(int rows, __m512 *acc0, __m256 *acc1, const float *const *rowA, const float *b0,
                                  const float *b1, int depth, int ldb) {
    _Pragma("clang loop unroll(disable)")
    for (int k = 0; k < depth; k++) {
        __m512 p0 = _mm512_loadu_ps(b0 + (size_t)k * ldb);
        __m256 p1 = _mm256_loadu_ps(b1 + (size_t)k * ldb);
        for (int r = 0; r < rows; r++) {
            __m512 value = _mm512_set1_ps(rowA[r][k]);  // one broadcast; its low half feeds the ymm
            __asm__("" : "+v"(value));  // else clang broadcasts to ymm and again to zmm, a shuffle per row
            acc0[r] = _mm512_fmadd_ps(value, p0, acc0[r]);
            acc1[r] = _mm256_fmadd_ps(_mm512_castps512_ps256(value), p1, acc1[r]);
        }
    }
}

/// Prefetches the 32 columns of `rows` rows at `prefetch` (the next row tile's A or C), if any.
TL_TILE_INLINE void tile_prefetch(int rows, const float *prefetch, int ldp) {
    if (!prefetch) return;
    for (int r = 0; r < rows; r++) {
        _mm_prefetch((const char *)(prefetch + (size_t)r * ldp), _MM_HINT_T0);
        _mm_prefetch((const char *)(prefetch + (size_t)r * ldp + 16), _MM_HINT_T0);
    }
}

/// An 8×32 block (two adjacent 16-column panels, `b0` and `b1`; `b1` unused when `columns` ≤ 16)
/// in sixteen zmm accumulators: per k, two panel loads and eight broadcasts feed sixteen FMAs,
/// enough independent chains to keep both 512-bit FMA pipes busy.
#define DEFINE_AVX512_KERNEL(ROWS_)                                                                    \
TL_AVX512 static void kernel_avx512_##ROWS_(int columns, const Block *block, const float *a,          \
                                             const float *b0, const float *b1, float *c,              \
                                             const float *bias, const float *residual,                \
                                             const float *prefetch, int ldp) {                        \
    tile_prefetch(ROWS_, prefetch, ldp);                                                              \
    __mmask16 mask0 = tl_tile_mask(columns, 0), mask1 = tl_tile_mask(columns, 1);                             \
    int half = columns <= 16;                                                                         \
    __m512 acc0[ROWS_], acc1[ROWS_];                                                                  \
    for (int r = 0; r < ROWS_; r++) {                                                                 \
        if (block->first) {                                                                           \
            acc0[r] = _mm512_setzero_ps(); acc1[r] = _mm512_setzero_ps();                             \
        } else {                                                                                      \
            acc0[r] = _mm512_maskz_loadu_ps(mask0, c + (size_t)r * block->ldc);                       \
            acc1[r] = _mm512_maskz_loadu_ps(mask1, c + (size_t)r * block->ldc + 16);                  \
        }                                                                                             \
    }                                                                                                 \
    const float *rowA[ROWS_];                                                                         \
    for (int r = 0; r < ROWS_; r++) rowA[r] = a + (size_t)r * block->lda;                             \
    if (half) {                                                                                       \
        _Pragma("clang loop unroll_count(4)")                                                         \
        for (int k = 0; k < block->depth; k++) {                                                      \
            __m512 p0 = _mm512_loadu_ps(b0 + (size_t)k * block->ldb);                                      \
            for (int r = 0; r < ROWS_; r++)                                                           \
                acc0[r] = _mm512_fmadd_ps(_mm512_set1_ps(rowA[r][k]), p0, acc0[r]);                   \
        }                                                                                             \
    } else {                                                                                          \
        /* A literal 0 compiles a second copy of the loop without the prefetch test.             */ \
        if (block->streamB)                                                                           \
            tile_steps(ROWS_, acc0, acc1, rowA, b0, b1, block->depth, block->ldb, block->streamB);    \
        else                                                                                          \
            tile_steps(ROWS_, acc0, acc1, rowA, b0, b1, block->depth, block->ldb, 0);                 \
    }                                                                                                 \
    if (block->last)                                                                                  \
        tl_tile_epilogue(ROWS_, acc0, acc1, mask0, mask1, bias, residual, block->ldr, block->low, block->high); \
    tl_tile_store(ROWS_, acc0, acc1, mask0, mask1, c, block->ldc);                                    \
}

/// A tile 17 to 24 columns wide on `tile_steps_24`: its own function, since a third loop in
/// `kernel_avx512_*` made clang keep the other loops' accumulators in memory (40 % slower). It
/// prefetches the next row tile as `kernel_avx512_*` does; its B (at most 24 columns) is not streamed.
#define DEFINE_AVX512_KERNEL_24(ROWS_)                                                                 \
TL_AVX512 static void kernel24_avx512_##ROWS_(int columns, const Block *block, const float *a,        \
                                               const float *b0, const float *b1, float *c,            \
                                               const float *bias, const float *residual,              \
                                               const float *prefetch, int ldp) {                      \
    tile_prefetch(ROWS_, prefetch, ldp);                                                              \
    __mmask16 mask0 = 0xFFFF, mask1 = tl_tile_mask(columns, 1);                                       \
    __m512 acc0[ROWS_], acc1[ROWS_];                                                                  \
    __m256 narrow[ROWS_];                                                                             \
    for (int r = 0; r < ROWS_; r++) {                                                                 \
        if (block->first) {                                                                           \
            acc0[r] = _mm512_setzero_ps(); narrow[r] = _mm256_setzero_ps();                           \
        } else {                                                                                      \
            acc0[r] = _mm512_loadu_ps(c + (size_t)r * block->ldc);                                    \
            narrow[r] = _mm512_castps512_ps256(_mm512_maskz_loadu_ps(mask1, c + (size_t)r * block->ldc + 16)); \
        }                                                                                             \
    }                                                                                                 \
    const float *rowA[ROWS_];                                                                         \
    for (int r = 0; r < ROWS_; r++) rowA[r] = a + (size_t)r * block->lda;                             \
    tile_steps_24(ROWS_, acc0, narrow, rowA, b0, b1, block->depth, block->ldb);                       \
    for (int r = 0; r < ROWS_; r++) acc1[r] = _mm512_zextps256_ps512(narrow[r]);                      \
    if (block->last)                                                                                  \
        tl_tile_epilogue(ROWS_, acc0, acc1, mask0, mask1, bias, residual, block->ldr, block->low, block->high); \
    tl_tile_store(ROWS_, acc0, acc1, mask0, mask1, c, block->ldc);                                    \
}

DEFINE_AVX512_KERNEL_24(1)
DEFINE_AVX512_KERNEL_24(2)
DEFINE_AVX512_KERNEL_24(3)
DEFINE_AVX512_KERNEL_24(4)
DEFINE_AVX512_KERNEL_24(5)
DEFINE_AVX512_KERNEL_24(6)
DEFINE_AVX512_KERNEL_24(7)
DEFINE_AVX512_KERNEL_24(8)

DEFINE_AVX512_KERNEL(1)
DEFINE_AVX512_KERNEL(2)
DEFINE_AVX512_KERNEL(3)
DEFINE_AVX512_KERNEL(4)
DEFINE_AVX512_KERNEL(5)
DEFINE_AVX512_KERNEL(6)
DEFINE_AVX512_KERNEL(7)
DEFINE_AVX512_KERNEL(8)
#endif

// MARK: - Driver

void tl_gemm_packed(int m, int n, int k, const float *a, int lda, const float *packed,
                    const float *bias, const float *residual, int ldr, float low, float high,
                    float *c, int ldc) {
    tl_gemm_packed_level(tl_cpu_kernel_level(), m, n, k, a, lda, packed, bias, residual, ldr, low, high, c, ldc);
}

#if TL_X86
/// One AVX-512 tile of `gemm_blocked`: rows `i0..<i0 + rows`, columns `j0..<j0 + 32` (fewer at
/// the right edge).
TL_AVX512 static inline void tile_avx512(const Block *block, int i0, int rows, int j0, int n, int k0, const float *a,
                                         int lda, const float *b, size_t columnScale, int ldb, const float *bias,
                                         const float *residual, int ldr, float *c, int ldc, const float *prefetch, int ldp) {
    int columns = tl_min(2 * PANEL, n - j0);
    const float *b0 = b + (size_t)j0 * columnScale + (size_t)k0 * ldb;
    const float *b1 = columns > PANEL ? b0 + (size_t)PANEL * columnScale : b0;
    const float *tileBias = bias ? bias + j0 : NULL;
    const float *tileA = a + (size_t)i0 * lda + k0;
    float *tileC = c + (size_t)i0 * ldc + j0;
    const float *tileResidual = residual ? residual + (size_t)i0 * ldr + j0 : NULL;
    if (columns > PANEL && columns <= PANEL + 8) {
        switch (rows) {
        case 8: kernel24_avx512_8(columns, block, tileA, b0, b1, tileC, tileBias, tileResidual, prefetch, ldp); return;
        case 7: kernel24_avx512_7(columns, block, tileA, b0, b1, tileC, tileBias, tileResidual, prefetch, ldp); return;
        case 6: kernel24_avx512_6(columns, block, tileA, b0, b1, tileC, tileBias, tileResidual, prefetch, ldp); return;
        case 5: kernel24_avx512_5(columns, block, tileA, b0, b1, tileC, tileBias, tileResidual, prefetch, ldp); return;
        case 4: kernel24_avx512_4(columns, block, tileA, b0, b1, tileC, tileBias, tileResidual, prefetch, ldp); return;
        case 3: kernel24_avx512_3(columns, block, tileA, b0, b1, tileC, tileBias, tileResidual, prefetch, ldp); return;
        case 2: kernel24_avx512_2(columns, block, tileA, b0, b1, tileC, tileBias, tileResidual, prefetch, ldp); return;
        default: kernel24_avx512_1(columns, block, tileA, b0, b1, tileC, tileBias, tileResidual, prefetch, ldp); return;
        }
    }
    switch (rows) {
    case 8: kernel_avx512_8(columns, block, tileA, b0, b1, tileC, tileBias, tileResidual, prefetch, ldp); break;
    case 7: kernel_avx512_7(columns, block, tileA, b0, b1, tileC, tileBias, tileResidual, prefetch, ldp); break;
    case 6: kernel_avx512_6(columns, block, tileA, b0, b1, tileC, tileBias, tileResidual, prefetch, ldp); break;
    case 5: kernel_avx512_5(columns, block, tileA, b0, b1, tileC, tileBias, tileResidual, prefetch, ldp); break;
    case 4: kernel_avx512_4(columns, block, tileA, b0, b1, tileC, tileBias, tileResidual, prefetch, ldp); break;
    case 3: kernel_avx512_3(columns, block, tileA, b0, b1, tileC, tileBias, tileResidual, prefetch, ldp); break;
    case 2: kernel_avx512_2(columns, block, tileA, b0, b1, tileC, tileBias, tileResidual, prefetch, ldp); break;
    default: kernel_avx512_1(columns, block, tileA, b0, b1, tileC, tileBias, tileResidual, prefetch, ldp); break;
    }
}
#endif

/// Whether one of this thread's last `RECENT` short calls (the only ones that ask) read the
/// right-hand side at `b`, which is then taken to be in L2 (a batch's images through one block
/// find their weights there); records `b` as read.
static int recently_read(const float *b) {
    static _Thread_local const float *recent[RECENT];
    static _Thread_local int next;
    for (int i = 0; i < RECENT; i++)
        if (recent[i] == b) return 1;
    recent[next] = b;
    next = (next + 1) % RECENT;
    return 0;
}

/// Where row tile `t` of `tiles` starts when rows `first..<last` are cut into tiles of heights
/// as even as they go (`tiles` is the fewest that hold a micro-kernel's rows each): 49 rows
/// (batch 1's 7×7 maps) take seven tiles of 7, not six of 8 and a row alone, whose two FMA chains
/// are bound by the FMA's latency (1–3 % on those products, single thread). A row's sum runs in
/// the same order in a tile of any height, so the cut never changes the bits.
static inline int even_tile_row(int first, int last, int tiles, int t) {
    return first + (int)((long)(last - first) * t / tiles);
}

/// The blocked product over a right-hand side whose 16-column panel starting at column `j` and
/// row `kk` is at `b + j · columnScale + kk · ldb`: packed panels (`columnScale` k, `ldb` PANEL)
/// or a row-major matrix read in place (`columnScale` 1, `ldb` its row stride, `n` a multiple
/// of PANEL so no load runs past a row).
static void gemm_blocked(int level, int m, int n, int k, const float *a, int lda, const float *b, size_t columnScale,
                         int ldb, const float *bias, const float *residual, int ldr, float low, float high,
                         float *c, int ldc) {
    // `c += a · b` (the residual is c itself): the first K block starts from c. Adding the
    // residual in the epilogue would read c after earlier K blocks overwrote it with their sums.
    int accumulate = residual == c && ldr == ldc;
    if (accumulate) residual = NULL;
    int blocks = (k + DEPTH_BLOCK - 1) / DEPTH_BLOCK;
    // A few rows against weights no recent call on this thread read (batch 1's 7×7 layers: each
    // layer's weights come from L3 once per pass) stream B like weights past L2 do.
    int coldShortB = level == 2 && m <= SHORT_ROWS && !recently_read(b);
    for (int blockIndex = 0; blockIndex < blocks; blockIndex++) {
        // Equal K blocks, so the last one is not a sliver.
        int k0 = (int)((long)k * blockIndex / blocks), k1 = (int)((long)k * (blockIndex + 1) / blocks);
        Block block = {k1 - k0, lda, ldc, ldr, ldb, blockIndex == 0 && !accumulate, blockIndex == blocks - 1, low, high};
        // Rows in chunks whose K block of A stays in L2 while every panel passes over it.
        for (int chunk0 = 0; chunk0 < m; chunk0 += ROW_CHUNK) {
            int chunk1 = tl_min(m, chunk0 + ROW_CHUNK);
#if TL_X86
            if (level == 2) {
                // One K block with B in L2, and A and C too large to stay there (ResNet's maps at
                // batch size): row tile by row tile, each across every panel, so A and C (with the
                // residual in it) stream in address order; these layers are bound by that traffic,
                // not by FMAs. Otherwise panel by panel, so a B slice stays in L1 while the chunk's
                // row tiles pass over it: when A and C stay in L2 anyway (MobileNetV2's 14×14 and
                // 7×7 blocks, one image per call), row order only re-reads B from L2 per tile
                // (those blocks ran 10-20 % slower in row order on a 2 MB-L2 Xeon). At batch size
                // A, C and the residual come from memory, so each tile prefetches what the next
                // one reads before its FMAs: the residual, or C (a later K block, or c += a·b in
                // place); in row order each tile also fetches a share of the next row tile's A.
                const float *source = residual && block.last ? residual : c;
                int lds = residual && block.last ? ldr : ldc;
                if (blocks == 1 && (size_t)k * (size_t)n <= ROW_ORDER_FLOATS
                    && (size_t)m * (size_t)(k + n) > ROW_ORDER_STREAM_FLOATS) {
                    int pairs = (n + 2 * PANEL - 1) / (2 * PANEL), lines = (k + 15) / 16, tileLines = WIDE_ROWS * lines;
                    for (int i0 = chunk0; i0 < chunk1; i0 += WIDE_ROWS) {
                        int next = i0 + WIDE_ROWS, hasNext = next + WIDE_ROWS <= m;  // the row tile below
                        for (int j0 = 0, pair = 0; j0 < n; j0 += 2 * PANEL, pair++) {
                            if (hasNext) {
                                int line = tileLines * pair / pairs, end = tileLines * (pair + 1) / pairs;
                                int row = line / lines, column = line % lines;
                                for (const float *nextA = a + (size_t)next * lda; line < end; line++) {
                                    _mm_prefetch((const char *)(nextA + (size_t)row * lda + 16 * column), _MM_HINT_T0);
                                    if (++column == lines) { column = 0; row++; }
                                }
                            }
                            const float *ahead = hasNext ? source + (size_t)next * lds + j0 : NULL;
                            tile_avx512(&block, i0, tl_min(WIDE_ROWS, chunk1 - i0), j0, n, k0, a, lda, b, columnScale,
                                        ldb, bias, residual, ldr, c, ldc, ahead, lds);
                        }
                    }
                } else {
                    // B past L2 (ResNet50's conv5 at batch 1: 8 MB of weights for 49 rows) comes
                    // from memory in 24 KB pieces per panel and K block, each cut into pages that
                    // the hardware prefetcher stops at: the first row tile of a chunk prefetches
                    // B ahead itself (conv5's 1×1 layers 7.3 → 6.8 ms per image, medians of 8
                    // interleaved rounds; the later tiles find it in L1 and L2). So does a short
                    // call against weights this thread has not read lately (`coldShortB`):
                    // MobileNetV2 1.9 %, ResNet50 1.5 % faster at batch 1 (in-process A/B).
                    int streams = (size_t)k * (size_t)n > ROW_ORDER_FLOATS || coldShortB;
                    int tiles = (chunk1 - chunk0 + WIDE_ROWS - 1) / WIDE_ROWS;
                    for (int j0 = 0; j0 < n; j0 += 2 * PANEL)
                        for (int t = 0; t < tiles; t++) {
                            int i0 = even_tile_row(chunk0, chunk1, tiles, t);
                            int next = even_tile_row(chunk0, chunk1, tiles, t + 1);  // the next tile
                            const float *ahead = next + WIDE_ROWS <= m ? source + (size_t)next * lds + j0 : NULL;
                            block.streamB = streams && t == 0 ? STREAM_AHEAD : 0;
                            tile_avx512(&block, i0, next - i0, j0, n, k0, a, lda, b, columnScale,
                                        ldb, bias, residual, ldr, c, ldc, ahead, lds);
                        }
                }
                continue;
            }
#endif
            int tiles = (chunk1 - chunk0 + ROWS - 1) / ROWS;
            for (int j0 = 0; j0 < n; j0 += PANEL) {
                int columns = tl_min(PANEL, n - j0);
                const float *panel = b + (size_t)j0 * columnScale + (size_t)k0 * ldb;
                const float *panelBias = bias ? bias + j0 : NULL;
                for (int t = 0; t < tiles; t++) {
                    int i0 = even_tile_row(chunk0, chunk1, tiles, t), rows = even_tile_row(chunk0, chunk1, tiles, t + 1) - i0;
                    const float *blockA = a + (size_t)i0 * lda + k0;
                    float *blockC = c + (size_t)i0 * ldc + j0;
                    const float *blockResidual = residual ? residual + (size_t)i0 * ldr + j0 : NULL;
#if TL_X86
                    if (level == 1) {
                        switch (rows) {
                        case 6: kernel_avx2_6(columns, &block, blockA, panel, blockC, panelBias, blockResidual); break;
                        case 5: kernel_avx2_5(columns, &block, blockA, panel, blockC, panelBias, blockResidual); break;
                        case 4: kernel_avx2_4(columns, &block, blockA, panel, blockC, panelBias, blockResidual); break;
                        case 3: kernel_avx2_3(columns, &block, blockA, panel, blockC, panelBias, blockResidual); break;
                        case 2: kernel_avx2_2(columns, &block, blockA, panel, blockC, panelBias, blockResidual); break;
                        default: kernel_avx2_1(columns, &block, blockA, panel, blockC, panelBias, blockResidual); break;
                        }
                        continue;
                    }
#endif
                    kernel_portable(rows, columns, &block, blockA, panel, blockC, panelBias, blockResidual);
                }
            }
        }
    }
}

/// An empty sum (k = 0): the epilogue alone.
static void gemm_empty(int m, int n, const float *bias, const float *residual, int ldr, float low, float high,
                       float *c, int ldc) {
    int accumulate = residual == c && ldr == ldc;  // c += nothing
    for (int i = 0; i < m; i++) {
        float *row = c + (size_t)i * ldc;
        if (!accumulate) memset(row, 0, sizeof(float) * (size_t)n);
        if (residual && !accumulate) for (int j = 0; j < n; j++) row[j] += residual[(size_t)i * ldr + j];
        tl_bias_clamp(row, 1, n, bias, low, high);
    }
}

void tl_gemm_packed_level(int level, int m, int n, int k, const float *a, int lda, const float *packed,
                          const float *bias, const float *residual, int ldr, float low, float high,
                          float *c, int ldc) {
    level = tl_min(level, tl_cpu_kernel_level());
    if (m <= 0 || n <= 0) return;
    if (k <= 0) { gemm_empty(m, n, bias, residual, ldr, low, high, c, ldc); return; }
    gemm_blocked(level, m, n, k, a, lda, packed, (size_t)k, PANEL, bias, residual, ldr, low, high, c, ldc);
}

int tl_gemm(int m, int n, int k, const float *a, int lda, const float *b, int ldb,
            const float *bias, const float *residual, int ldr, float low, float high, float *c, int ldc) {
    return tl_gemm_level(tl_cpu_kernel_level(), m, n, k, a, lda, b, ldb, bias, residual, ldr, low, high, c, ldc);
}

int tl_gemm_level(int level, int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                  const float *bias, const float *residual, int ldr, float low, float high, float *c, int ldc) {
    level = tl_min(level, tl_cpu_kernel_level());
    if (m <= 0 || n <= 0) return 0;
    if (k <= 0) { gemm_empty(m, n, bias, residual, ldr, low, high, c, ldc); return 0; }
    // Whole panels straight from `b`; the last partial panel (its loads would run past a row)
    // packed with zero padding.
    int whole = n / PANEL * PANEL;
    if (whole > 0)
        gemm_blocked(level, m, whole, k, a, lda, b, 1, ldb, bias, residual, ldr, low, high, c, ldc);
    if (whole == n) return 0;
    float *tail = malloc(sizeof(float) * tl_gemm_packed_count(k, n - whole));
    if (!tail) return -1;
    tl_gemm_pack(b + whole, ldb, k, n - whole, tail);
    gemm_blocked(level, m, n - whole, k, a, lda, tail, (size_t)k, PANEL, bias ? bias + whole : NULL,
                 residual ? residual + whole : NULL, ldr, low, high, c + whole, ldc);
    free(tail);
    return 0;
}
