// Depthwise convolution (depth multiplier 1) over NHWC, one output row per call.
//
// Interior pixels (every horizontal tap inside the image) run in blocks (AVX2: four pixels, 8
// channels; AVX-512: eight pixels, 16 channels): each kernel tap is loaded once per block and
// multiplied into independent accumulators, which hides the FMA latency; in 3×3 windows each
// input vector is also loaded once per block and multiplied into every output it reaches. Border
// pixels skip their missing taps one pixel at a time.
#include "CKernels.h"
#include "internal.h"

#include <stddef.h>

/// The valid tap range `[first, last)` of a window starting at `start` with `count` taps `step` apart.
static inline void tap_range(int start, int count, int step, int size, int *first, int *last) {
    int lo = start >= 0 ? 0 : (-start + step - 1) / step;
    int hi = size - start <= 0 ? 0 : (size - start + step - 1) / step;
    *first = tl_min(lo, count);
    *last = tl_max(*first, tl_min(hi, count));
}

typedef struct {
    const float *const *rows;       // per kernel row: the input row it reads, NULL outside the image
    int width, channels;
    const float *kernel;
    int kernelWidth, strideX, dilationX, padLeft;
    int firstRow, lastRow;          // kernel rows with an input row
    const float *bias;
    float low, high;
    float *output;
    int outputWidth;
} Row;

/// One output pixel, any taps, scalar (portable path and the channel tail).
static void pixel_portable(const Row *row, int x, int channelStart) {
    int left = x * row->strideX - row->padLeft, firstColumn, lastColumn;
    tap_range(left, row->kernelWidth, row->dilationX, row->width, &firstColumn, &lastColumn);
    float *out = row->output + (size_t)x * row->channels;
    for (int c = channelStart; c < row->channels; c++) {
        float sum = row->bias ? row->bias[c] : 0.0f;
        for (int ky = row->firstRow; ky < row->lastRow; ky++) {
            const float *source = row->rows[ky];
            const float *taps = row->kernel + (size_t)ky * row->kernelWidth * row->channels;
            for (int kx = firstColumn; kx < lastColumn; kx++)
                sum += source[(size_t)(left + kx * row->dilationX) * row->channels + c] * taps[(size_t)kx * row->channels + c];
        }
        sum = sum < row->low ? row->low : sum;
        out[c] = sum > row->high ? row->high : sum;
    }
}

#if TL_X86
/// One output pixel with AVX2 (image borders), 32 channels at a time in four independent
/// accumulators so the FMAs do not wait on each other, then 8 at a time; any tail scalar.
TL_AVX2 static void pixel_avx2(const Row *row, int x) {
    int left = x * row->strideX - row->padLeft, firstColumn, lastColumn;
    tap_range(left, row->kernelWidth, row->dilationX, row->width, &firstColumn, &lastColumn);
    const int channels = row->channels;
    float *out = row->output + (size_t)x * channels;
    __m256 low = _mm256_set1_ps(row->low), high = _mm256_set1_ps(row->high);
    int c = 0;
    for (; c + 32 <= channels; c += 32) {
        __m256 s[4];
        for (int i = 0; i < 4; i++) s[i] = row->bias ? _mm256_loadu_ps(row->bias + c + 8 * i) : _mm256_setzero_ps();
        for (int ky = row->firstRow; ky < row->lastRow; ky++) {
            const float *source = row->rows[ky] + c;
            const float *taps = row->kernel + (size_t)ky * row->kernelWidth * channels + c;
            for (int kx = firstColumn; kx < lastColumn; kx++) {
                const float *p = source + (size_t)(left + kx * row->dilationX) * channels;
                const float *t = taps + (size_t)kx * channels;
                for (int i = 0; i < 4; i++) s[i] = _mm256_fmadd_ps(_mm256_loadu_ps(p + 8 * i), _mm256_loadu_ps(t + 8 * i), s[i]);
            }
        }
        for (int i = 0; i < 4; i++) _mm256_storeu_ps(out + c + 8 * i, _mm256_min_ps(_mm256_max_ps(s[i], low), high));
    }
    for (; c + 8 <= channels; c += 8) {
        __m256 sum = row->bias ? _mm256_loadu_ps(row->bias + c) : _mm256_setzero_ps();
        for (int ky = row->firstRow; ky < row->lastRow; ky++) {
            const float *source = row->rows[ky] + c;
            const float *taps = row->kernel + (size_t)ky * row->kernelWidth * channels + c;
            for (int kx = firstColumn; kx < lastColumn; kx++)
                sum = _mm256_fmadd_ps(_mm256_loadu_ps(source + (size_t)(left + kx * row->dilationX) * channels),
                                      _mm256_loadu_ps(taps + (size_t)kx * channels), sum);
        }
        _mm256_storeu_ps(out + c, _mm256_min_ps(_mm256_max_ps(sum, low), high));
    }
    if (c < channels) pixel_portable(row, x, c);
}

/// Four adjacent interior output pixels `x..<x+4` (all horizontal taps inside the image).
TL_AVX2 static void four_pixels_avx2(const Row *row, int x) {
    int channels = row->channels;
    size_t step = (size_t)row->strideX * channels, tapStep = (size_t)row->dilationX * channels;
    float *out = row->output + (size_t)x * channels;
    __m256 low = _mm256_set1_ps(row->low), high = _mm256_set1_ps(row->high);
    int c = 0;
    for (; c + 8 <= channels; c += 8) {
        __m256 start = row->bias ? _mm256_loadu_ps(row->bias + c) : _mm256_setzero_ps();
        __m256 s0 = start, s1 = start, s2 = start, s3 = start;
        for (int ky = row->firstRow; ky < row->lastRow; ky++) {
            const float *source = row->rows[ky] + (size_t)(x * row->strideX - row->padLeft) * channels + c;
            const float *taps = row->kernel + (size_t)ky * row->kernelWidth * channels + c;
            for (int kx = 0; kx < row->kernelWidth; kx++) {
                __m256 tap = _mm256_loadu_ps(taps + (size_t)kx * channels);
                const float *p = source + kx * tapStep;
                s0 = _mm256_fmadd_ps(_mm256_loadu_ps(p), tap, s0);
                s1 = _mm256_fmadd_ps(_mm256_loadu_ps(p + step), tap, s1);
                s2 = _mm256_fmadd_ps(_mm256_loadu_ps(p + 2 * step), tap, s2);
                s3 = _mm256_fmadd_ps(_mm256_loadu_ps(p + 3 * step), tap, s3);
            }
        }
        _mm256_storeu_ps(out + c, _mm256_min_ps(_mm256_max_ps(s0, low), high));
        _mm256_storeu_ps(out + channels + c, _mm256_min_ps(_mm256_max_ps(s1, low), high));
        _mm256_storeu_ps(out + 2 * channels + c, _mm256_min_ps(_mm256_max_ps(s2, low), high));
        _mm256_storeu_ps(out + 3 * channels + c, _mm256_min_ps(_mm256_max_ps(s3, low), high));
    }
    if (c < channels) for (int i = 0; i < 4; i++) pixel_portable(row, x + i, c);
}

/// One kernel row of a 3×3 window for four adjacent output pixels, eight channels: `q` is the
/// input row at the first pixel's window, `channels` apart per pixel; `STRIDE` is 1 or 2.
/// Each input vector is loaded once and multiplied into every output it reaches.
#define TL_ROW4(STRIDE, q, w0, w1, w2, s0, s1, s2, s3, channels)                                       \
    do {                                                                                              \
        const float *p_ = (q);                                                                        \
        __m256 a_;                                                                                    \
        if (STRIDE == 1) {                                                                            \
            a_ = _mm256_loadu_ps(p_); p_ += channels; s0 = _mm256_fmadd_ps(a_, w0, s0);               \
            a_ = _mm256_loadu_ps(p_); p_ += channels; s0 = _mm256_fmadd_ps(a_, w1, s0); s1 = _mm256_fmadd_ps(a_, w0, s1); \
            a_ = _mm256_loadu_ps(p_); p_ += channels; s0 = _mm256_fmadd_ps(a_, w2, s0); s1 = _mm256_fmadd_ps(a_, w1, s1); s2 = _mm256_fmadd_ps(a_, w0, s2); \
            a_ = _mm256_loadu_ps(p_); p_ += channels; s1 = _mm256_fmadd_ps(a_, w2, s1); s2 = _mm256_fmadd_ps(a_, w1, s2); s3 = _mm256_fmadd_ps(a_, w0, s3); \
            a_ = _mm256_loadu_ps(p_); p_ += channels; s2 = _mm256_fmadd_ps(a_, w2, s2); s3 = _mm256_fmadd_ps(a_, w1, s3); \
            a_ = _mm256_loadu_ps(p_); s3 = _mm256_fmadd_ps(a_, w2, s3);                               \
        } else {                                                                                      \
            a_ = _mm256_loadu_ps(p_); p_ += channels; s0 = _mm256_fmadd_ps(a_, w0, s0);               \
            a_ = _mm256_loadu_ps(p_); p_ += channels; s0 = _mm256_fmadd_ps(a_, w1, s0);               \
            a_ = _mm256_loadu_ps(p_); p_ += channels; s0 = _mm256_fmadd_ps(a_, w2, s0); s1 = _mm256_fmadd_ps(a_, w0, s1); \
            a_ = _mm256_loadu_ps(p_); p_ += channels; s1 = _mm256_fmadd_ps(a_, w1, s1);               \
            a_ = _mm256_loadu_ps(p_); p_ += channels; s1 = _mm256_fmadd_ps(a_, w2, s1); s2 = _mm256_fmadd_ps(a_, w0, s2); \
            a_ = _mm256_loadu_ps(p_); p_ += channels; s2 = _mm256_fmadd_ps(a_, w1, s2);               \
            a_ = _mm256_loadu_ps(p_); p_ += channels; s2 = _mm256_fmadd_ps(a_, w2, s2); s3 = _mm256_fmadd_ps(a_, w0, s3); \
            a_ = _mm256_loadu_ps(p_); p_ += channels; s3 = _mm256_fmadd_ps(a_, w1, s3);               \
            a_ = _mm256_loadu_ps(p_); s3 = _mm256_fmadd_ps(a_, w2, s3);                               \
        }                                                                                             \
    } while (0)

/// Interior output pixels `[start, end)` of an undilated 3×3 window at stride `STRIDE` whose
/// three rows exist: four pixels at a time, eight channels at a time.
#define TL_DEFINE_INTERIOR_3X3(STRIDE)                                                                \
TL_AVX2 static void interior_3x3_s##STRIDE(const Row *row, int start, int end) {                     \
    const int channels = row->channels;                                                               \
    const __m256 low = _mm256_set1_ps(row->low), high = _mm256_set1_ps(row->high);                    \
    const float *kernel = row->kernel, *bias = row->bias;                                             \
    int x = start;                                                                                    \
    for (; x + 4 <= end; x += 4) {                                                                    \
        const size_t offset = (size_t)(x * STRIDE - row->padLeft) * channels;                         \
        const float *r0 = row->rows[0] + offset, *r1 = row->rows[1] + offset, *r2 = row->rows[2] + offset; \
        float *out = row->output + (size_t)x * channels;                                              \
        for (int c = 0; c + 8 <= channels; c += 8) {                                                  \
            __m256 s0 = bias ? _mm256_loadu_ps(bias + c) : _mm256_setzero_ps();                       \
            __m256 s1 = s0, s2 = s0, s3 = s0;                                                         \
            const float *k = kernel + c;                                                              \
            TL_ROW4(STRIDE, r0 + c, _mm256_loadu_ps(k), _mm256_loadu_ps(k + channels),                \
                    _mm256_loadu_ps(k + 2 * channels), s0, s1, s2, s3, channels);                     \
            k += 3 * channels;                                                                        \
            TL_ROW4(STRIDE, r1 + c, _mm256_loadu_ps(k), _mm256_loadu_ps(k + channels),                \
                    _mm256_loadu_ps(k + 2 * channels), s0, s1, s2, s3, channels);                     \
            k += 3 * channels;                                                                        \
            TL_ROW4(STRIDE, r2 + c, _mm256_loadu_ps(k), _mm256_loadu_ps(k + channels),                \
                    _mm256_loadu_ps(k + 2 * channels), s0, s1, s2, s3, channels);                     \
            _mm256_storeu_ps(out + c, _mm256_min_ps(_mm256_max_ps(s0, low), high));                   \
            _mm256_storeu_ps(out + channels + c, _mm256_min_ps(_mm256_max_ps(s1, low), high));        \
            _mm256_storeu_ps(out + 2 * channels + c, _mm256_min_ps(_mm256_max_ps(s2, low), high));    \
            _mm256_storeu_ps(out + 3 * channels + c, _mm256_min_ps(_mm256_max_ps(s3, low), high));    \
        }                                                                                             \
        if (channels % 8) for (int i = 0; i < 4; i++) pixel_portable(row, x + i, channels - channels % 8); \
    }                                                                                                 \
    for (; x < end; x++) pixel_avx2(row, x);                                                          \
}

TL_DEFINE_INTERIOR_3X3(1)
TL_DEFINE_INTERIOR_3X3(2)

// MARK: - AVX-512

/// `count` adjacent output pixels `x..<x+count`, any kernel, 16 channels at a time (masked at the
/// tail), taps read from memory. `count` is a constant where inlined: the accumulators stay in
/// registers. Border pixels (`interior` 0) skip their missing taps; interior ones read every tap.
#define TL_DW_INLINE TL_AVX512 static inline __attribute__((always_inline))
TL_DW_INLINE void pixels_avx512(const Row *row, int x, int count, int interior) {
    const int channels = row->channels;
    int left = x * row->strideX - row->padLeft, firstColumn = 0, lastColumn = row->kernelWidth;
    if (!interior) tap_range(left, row->kernelWidth, row->dilationX, row->width, &firstColumn, &lastColumn);
    const size_t step = (size_t)row->strideX * channels, tapStep = (size_t)row->dilationX * channels;
    const __m512 low = _mm512_set1_ps(row->low), high = _mm512_set1_ps(row->high);
    float *out = row->output + (size_t)x * channels;
    for (int c = 0; c < channels; c += 16) {
        __mmask16 mask = tl_tile_mask(channels - c, 0);  // the lanes of channels c..<c+16
        __m512 start = row->bias ? _mm512_maskz_loadu_ps(mask, row->bias + c) : _mm512_setzero_ps(), s[8];
        for (int i = 0; i < count; i++) s[i] = start;
        for (int ky = row->firstRow; ky < row->lastRow; ky++) {
            const float *source = row->rows[ky] + (ptrdiff_t)left * channels + c;
            const float *taps = row->kernel + (size_t)ky * row->kernelWidth * channels + c;
            for (int kx = firstColumn; kx < lastColumn; kx++) {
                __m512 tap = _mm512_maskz_loadu_ps(mask, taps + (size_t)kx * channels);
                const float *p = source + kx * tapStep;
                for (int i = 0; i < count; i++)
                    s[i] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, p + i * step), tap, s[i]);
            }
        }
        for (int i = 0; i < count; i++)
            _mm512_mask_storeu_ps(out + (size_t)i * channels + c, mask, _mm512_min_ps(_mm512_max_ps(s[i], low), high));
    }
}

/// `COUNT` adjacent interior output pixels of an undilated 3×3 window at stride `STRIDE`, over
/// the `rowCount` input rows that exist (1 to 3), 16 channels at a time: each input vector is
/// loaded once and multiplied into every output it reaches. Every accumulator still sums its
/// taps row by row, left to right, after the bias, as `pixels_avx512` does: the same bits.
///
/// `skipFirst` / `skipLast`: the block's first or last input column lies in the padding (a row's
/// border pixels inside a block): its taps are skipped, as `pixels_avx512` skips a border's.
TL_DW_INLINE void block_3x3_avx512(const Row *row, int x, int COUNT, int STRIDE, int rowCount, int skipFirst,
                                   int skipLast) {
    // Locals, so the stores below (which may alias *row as far as the compiler knows) do not
    // make it reload the row pointers for every channel block.
    const int channels = row->channels;
    const ptrdiff_t offset = (ptrdiff_t)(x * STRIDE - row->padLeft) * channels;
    const float *source[3], *kernel[3];
    for (int r = 0; r < rowCount; r++) {
        source[r] = row->rows[row->firstRow + r] + offset;
        kernel[r] = row->kernel + (size_t)(row->firstRow + r) * 3 * channels;
    }
    const float *const bias = row->bias;
    const __m512 low = _mm512_set1_ps(row->low), high = _mm512_set1_ps(row->high);
    float *const out = row->output + (size_t)x * channels;
    for (int c = 0; c < channels; c += 16) {
        __mmask16 mask = tl_tile_mask(channels - c, 0);  // the lanes of channels c..<c+16
        __m512 start = bias ? _mm512_maskz_loadu_ps(mask, bias + c) : _mm512_setzero_ps(), s[8];
        for (int i = 0; i < COUNT; i++) s[i] = start;
        for (int r = 0; r < rowCount; r++) {
            const float *p = source[r] + c, *k = kernel[r] + c;
            __m512 w0 = _mm512_maskz_loadu_ps(mask, k), w1 = _mm512_maskz_loadu_ps(mask, k + channels);
            __m512 w2 = _mm512_maskz_loadu_ps(mask, k + 2 * channels);
            _Pragma("clang loop unroll(full)")
            for (int j = 0; j < (COUNT - 1) * STRIDE + 3; j++, p += channels) {
                if ((j == 0 && skipFirst) || (j == (COUNT - 1) * STRIDE + 2 && skipLast)) continue;
                __m512 a = _mm512_maskz_loadu_ps(mask, p);
                for (int i = 0; i < COUNT; i++) {
                    int kx = j - i * STRIDE;
                    if (kx == 0) s[i] = _mm512_fmadd_ps(a, w0, s[i]);
                    else if (kx == 1) s[i] = _mm512_fmadd_ps(a, w1, s[i]);
                    else if (kx == 2) s[i] = _mm512_fmadd_ps(a, w2, s[i]);
                }
            }
        }
        float *o = out + c;
        for (int i = 0; i < COUNT; i++, o += channels)
            _mm512_mask_storeu_ps(o, mask, _mm512_min_ps(_mm512_max_ps(s[i], low), high));
    }
}

/// A block of `COUNT` at `x`, flagged where its first or last input column is padding (the
/// unflagged blocks, all but the ends, in a copy with the flags constant: no test per tap).
#define TL_WHOLE_BLOCK(COUNT, STRIDE, ROWS)                                                           \
    {                                                                                                 \
        const int skipFirst = x * STRIDE - padLeft < 0;                                               \
        const int skipLast = (x + COUNT - 1) * STRIDE - padLeft + 2 >= width;                         \
        if (skipFirst || skipLast)                                                                    \
            block_3x3_avx512(row, x, COUNT, STRIDE, ROWS, skipFirst, skipLast);                       \
        else                                                                                          \
            block_3x3_avx512(row, x, COUNT, STRIDE, ROWS, 0, 0);                                      \
        x += COUNT;                                                                                   \
    }
#define TL_WHOLE_BLOCKS(STRIDE, ROWS)                                                                 \
    if (outputWidth == 7 || outputWidth == 14) {                                                      \
        while (x < outputWidth) TL_WHOLE_BLOCK(7, STRIDE, ROWS)                                       \
    } else {                                                                                          \
        while (x + 8 <= outputWidth) TL_WHOLE_BLOCK(8, STRIDE, ROWS)                                  \
        while (x + 4 <= outputWidth) TL_WHOLE_BLOCK(4, STRIDE, ROWS)                                  \
        while (x < outputWidth) TL_WHOLE_BLOCK(1, STRIDE, ROWS)                                       \
    }

/// Interior output pixels `[start, end)` of an undilated 3×3 window at stride `STRIDE` with
/// `ROWS` input rows: eight pixels at a time, then four, then one.
#define TL_DEFINE_INTERIOR_3X3_AVX512(STRIDE, ROWS)                                                   \
TL_AVX512 static void interior_3x3_avx512_s##STRIDE##_r##ROWS(const Row *row, int start, int end) {   \
    int x = start;                                                                                    \
    for (; x + 8 <= end; x += 8) block_3x3_avx512(row, x, 8, STRIDE, ROWS, 0, 0);                     \
    for (; x + 4 <= end; x += 4) block_3x3_avx512(row, x, 4, STRIDE, ROWS, 0, 0);                     \
    for (; x < end; x++) block_3x3_avx512(row, x, 1, STRIDE, ROWS, 0, 0);                             \
}                                                                                                     \
/* A whole row in blocks, its border pixels inside the first and last (at most one padding       \
   column either side). 7- and 14-pixel rows take blocks of 7: one border pixel, a block of 4 or  \
   8, single pixels and the other border one at a time ran MobileNetV2's 7×7×960 rows 2.4× slower \
   (21 GMAC/s on one core). */                                                                    \
TL_AVX512 static void whole_3x3_avx512_s##STRIDE##_r##ROWS(const Row *row) {                          \
    const int outputWidth = row->outputWidth, width = row->width, padLeft = row->padLeft;             \
    int x = 0;                                                                                        \
    TL_WHOLE_BLOCKS(STRIDE, ROWS)                                                                     \
}
TL_DEFINE_INTERIOR_3X3_AVX512(1, 1)
TL_DEFINE_INTERIOR_3X3_AVX512(1, 2)
TL_DEFINE_INTERIOR_3X3_AVX512(1, 3)
TL_DEFINE_INTERIOR_3X3_AVX512(2, 1)
TL_DEFINE_INTERIOR_3X3_AVX512(2, 2)
TL_DEFINE_INTERIOR_3X3_AVX512(2, 3)

/// Border pixels one at a time; interior ones eight, four, then one at a time.
TL_AVX512 static void border_avx512(const Row *row, int x) { pixels_avx512(row, x, 1, 0); }
TL_AVX512 static void interior_avx512(const Row *row, int start, int end) {
    int x = start;
    for (; x + 8 <= end; x += 8) pixels_avx512(row, x, 8, 1);
    for (; x + 4 <= end; x += 4) pixels_avx512(row, x, 4, 1);
    for (; x < end; x++) pixels_avx512(row, x, 1, 1);
}

/// The whole row with AVX-512: an undilated 3×3 row with at most one padding column either side
/// in blocks from edge to edge; otherwise borders pixel by pixel, the interior in blocks.
TL_AVX512 static void row_avx512(const Row *row, int firstInterior, int end) {
    // Three taps a row over one to three rows (a 5×3 kernel away from the map's top and bottom
    // has five: the generic blocks).
    int rowCount = row->lastRow - row->firstRow;
    // At most one padding column either side (3×3 'same' and 'valid' layers): the whole row in blocks.
    if (row->kernelWidth == 3 && row->dilationX == 1 && (row->strideX == 1 || row->strideX == 2)
        && rowCount > 0 && rowCount <= 3 && row->padLeft >= 0 && row->padLeft <= 1 && row->outputWidth > 0
        && (row->outputWidth - 1) * row->strideX - row->padLeft + 2 <= row->width) {
        void (*const whole[2][3])(const Row *) = {
            {whole_3x3_avx512_s1_r1, whole_3x3_avx512_s1_r2, whole_3x3_avx512_s1_r3},
            {whole_3x3_avx512_s2_r1, whole_3x3_avx512_s2_r2, whole_3x3_avx512_s2_r3}};
        whole[row->strideX - 1][rowCount - 1](row);
        return;
    }
    int x = 0;
    for (; x < firstInterior; x++) border_avx512(row, x);
    if (row->kernelWidth == 3 && row->dilationX == 1 && (row->strideX == 1 || row->strideX == 2)
        && rowCount > 0 && rowCount <= 3) {
        void (*const interior[2][3])(const Row *, int, int) = {
            {interior_3x3_avx512_s1_r1, interior_3x3_avx512_s1_r2, interior_3x3_avx512_s1_r3},
            {interior_3x3_avx512_s2_r1, interior_3x3_avx512_s2_r2, interior_3x3_avx512_s2_r3}};
        interior[row->strideX - 1][rowCount - 1](row, x, end);
    } else {
        interior_avx512(row, x, end);
    }
    for (x = tl_max(x, end); x < row->outputWidth; x++) border_avx512(row, x);
}
#endif

void tl_depthwise_row(const float *const *rows, int width, int channels,
                      const float *kernel, int kernelHeight, int kernelWidth,
                      int strideX, int dilationX, int padLeft,
                      int outputWidth, const float *bias, float low, float high, float *output) {
    tl_depthwise_row_level(tl_cpu_kernel_level(), rows, width, channels, kernel, kernelHeight, kernelWidth, strideX,
                           dilationX, padLeft, outputWidth, bias, low, high, output);
}

void tl_depthwise_row_level(int level, const float *const *rows, int width, int channels,
                            const float *kernel, int kernelHeight, int kernelWidth,
                            int strideX, int dilationX, int padLeft,
                            int outputWidth, const float *bias, float low, float high, float *output) {
    level = tl_min(level, tl_cpu_kernel_level());
    int firstRow = 0, lastRow = kernelHeight;
    while (firstRow < kernelHeight && !rows[firstRow]) firstRow++;
    while (lastRow > firstRow && !rows[lastRow - 1]) lastRow--;
    Row row = {rows, width, channels, kernel, kernelWidth, strideX, dilationX, padLeft, firstRow, lastRow,
               bias, low, high, output, outputWidth};
#if TL_X86
    if (level >= 1) {
        // Interior columns: x * strideX - padLeft >= 0 and the last tap < width.
        int span = (kernelWidth - 1) * dilationX;
        int firstInterior = (padLeft + strideX - 1) / strideX;
        int lastInterior = width - 1 - span + padLeft < 0 ? -1 : (width - 1 - span + padLeft) / strideX;
        firstInterior = tl_min(firstInterior, outputWidth);
        int end = tl_max(firstInterior, tl_min(lastInterior + 1, outputWidth));
        if (level == 2) { row_avx512(&row, firstInterior, end); return; }
        int x = 0;
        for (; x < firstInterior; x++) pixel_avx2(&row, x);
        if (kernelHeight == 3 && kernelWidth == 3 && firstRow == 0 && lastRow == 3 && dilationX == 1
            && (strideX == 1 || strideX == 2)) {
            if (strideX == 1) interior_3x3_s1(&row, x, end); else interior_3x3_s2(&row, x, end);
            x = end;
        }
        for (; x + 4 <= end; x += 4) four_pixels_avx2(&row, x);
        for (; x < outputWidth; x++) pixel_avx2(&row, x);
        return;
    }
#endif
    for (int x = 0; x < outputWidth; x++) pixel_portable(&row, x, 0);
}
