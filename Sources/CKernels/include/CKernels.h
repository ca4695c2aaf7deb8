// Hot loops of the tlhub engine, in C so they can use AVX2/FMA intrinsics chosen at run time.
//
// Every kernel has a portable C version and, where it pays, an AVX2+FMA version compiled with
// a function-level target attribute; `tl_cpu_has_avx2_fma()` picks one per call, so the
// binary runs on any x86-64 (and builds on other architectures). All kernels are
// single-threaded: the Swift engine splits work between cores itself.
#ifndef TL_KERNELS_H
#define TL_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Columns per packed panel of a GEMM right-hand side.
#define TL_GEMM_PANEL 16

/// Whether the AVX2+FMA kernels run on this CPU (cached after the first call).
int tl_cpu_has_avx2_fma(void);

/// Whether the AVX-512F kernels run (the GEMM's 8 × 32 micro-kernel); `TLHUB_KERNELS=avx2` or
/// `portable` turns them off.
int tl_cpu_has_avx512(void);

/// The kernels this process uses: 0 portable, 1 AVX2 + FMA, 2 AVX-512F.
int tl_cpu_kernel_level(void);

/// The C side of `EngineVariant.isOn` (a development switch for `tlhub bench --alternate`): a
/// kernel under trial reads `tl_engine_variant` where its two versions differ; nothing else does.
extern int tl_engine_variant;

/// Sets `tl_engine_variant` (what `EngineVariant.isOn` does).
void tl_set_engine_variant(int on);

/// `tl_gemm_packed` with a row-major right-hand side read where it lies (`k × n`, row stride
/// `ldb`), for a matrix that changes between products (a kernel being trained) and would
/// otherwise be repacked each time. Same bits as packing `b` first. Returns 0, or -1 when the
/// small buffer for the last partial panel cannot be allocated.
int tl_gemm(int m, int n, int k, const float *a, int lda, const float *b, int ldb,
            const float *bias, const float *residual, int ldr, float low, float high, float *c, int ldc);

/// `tl_gemm` on the kernels of `level` (capped at `tl_cpu_kernel_level()`).
int tl_gemm_level(int level, int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                  const float *bias, const float *residual, int ldr, float low, float high, float *c, int ldc);

/// Rows of the GEMM micro-kernel tile at the level this CPU runs (8 on AVX-512, 6 otherwise):
/// callers that split rows across threads cut at multiples of it.
int tl_gemm_row_tile(void);

/// Floats needed to pack a `k × n` right-hand side: panels of 16 columns, zero-padded.
size_t tl_gemm_packed_count(int k, int n);

/// Packs row-major `b` (`k × n`, row stride `ldb`) into `packed`: for each panel of 16 columns,
/// `k` rows of 16 floats; columns past `n` are zero.
void tl_gemm_pack(const float *b, int ldb, int k, int n, float *packed);

/// `c[m × n] = clamp(a[m × k] · b + bias + residual, low, high)`, row-major with strides
/// `lda`, `ldc`, `ldr`; `b` packed by `tl_gemm_pack`. `bias` (n floats) and `residual`
/// (m × n, stride `ldr`) may be NULL. `low`/`high` may be ±INFINITY. `residual` may be `c`
/// itself (same stride): then the product accumulates into `c` (`c += a · b`), summed from c on.
void tl_gemm_packed(int m, int n, int k, const float *a, int lda, const float *packed,
                    const float *bias, const float *residual, int ldr, float low, float high,
                    float *c, int ldc);

/// `tl_gemm_packed` on the kernels of `level` (capped at `tl_cpu_kernel_level()`), so tests
/// and benchmarks can compare the levels in one process.
void tl_gemm_packed_level(int level, int m, int n, int k, const float *a, int lda, const float *packed,
                          const float *bias, const float *residual, int ldr, float low, float high,
                          float *c, int ldc);

/// Keras 3's Adam step over `count` weights: `m += (g − m)(1 − β₁)`, `v += (g² − v)(1 − β₂)`,
/// `w −= m·α / (√v + ε)`, with `α` the bias-corrected rate. Element-wise, no fused multiply-add:
/// every level and every split of the array gives the same bits.
void tl_adam_update(float *w, const float *g, float *m, float *v, int count,
                    float alpha, float beta1, float beta2, float epsilon);
void tl_adam_update_level(int level, float *w, const float *g, float *m, float *v, int count,
                          float alpha, float beta1, float beta2, float epsilon);

/// Keras' SGD with momentum: `velocity = momentum·velocity − rate·g`, then `w += velocity` or,
/// Nesterov, `w += momentum·velocity − rate·g`. Element-wise, same bits at every level.
void tl_sgd_update(float *w, const float *g, float *velocity, int count, float learningRate, float momentum,
                   int nesterov);
void tl_sgd_update_level(int level, float *w, const float *g, float *velocity, int count, float learningRate,
                         float momentum, int nesterov);

/// Makes glibc keep freed memory for reuse (one arena, no mmap for large blocks, no trimming),
/// for a process that frees and allocates the same large buffers over and over (training).
/// Call before other threads allocate. Returns 1 when set, 0 where the allocator has no such knobs.
int tl_keep_freed_memory(void);

/// `tl_keep_freed_memory` (always tried), and the heap grown by up to `bytes` (at most 1 GiB) of
/// address space that the kernel backs with transparent huge pages (`MADV_HUGEPAGE`) as it is
/// first touched: one fault per 2 MB instead of one per 4 KB (`ProcessMemory.useHugePages` says
/// why). Call before other threads allocate. Returns the bytes advised (0 where the system has no
/// such knobs).
size_t tl_heap_in_huge_pages(size_t bytes);

/// One image's pooling geometry (NHWC; the padding is the zeros before each axis).
typedef struct {
    int height, width, channels, outputHeight, outputWidth;
    int poolY, poolX, strideY, strideX, padTop, padLeft;
} TLPoolGeometry;

/// Output rows `firstRow ..< lastRow` of one image's max pooling (`average` 0) or average pooling
/// into `y` (`outputHeight × outputWidth × channels`): each window clipped to the image, the
/// average over its in-bounds cells (TensorFlow's `same` padding), the cells taken row-major.
void tl_pool_forward(const float *x, float *y, const TLPoolGeometry *geometry, int firstRow, int lastRow, int average);
void tl_pool_forward_level(int level, const float *x, float *y, const TLPoolGeometry *geometry, int firstRow, int lastRow,
                           int average);

/// Adds one image's pooling gradient to `dx` (`height × width × channels`): max pooling gives
/// each window's gradient `dy` to the first cell (row-major) equal to the window's output `y`,
/// as TensorFlow's CPU kernel does; average pooling (`average` ≠ 0) spreads it over the
/// window's in-bounds cells.
void tl_pool_backward(const float *x, const float *y, const float *dy, float *dx, const TLPoolGeometry *geometry,
                      int average);
void tl_pool_backward_level(int level, const float *x, const float *y, const float *dy, float *dx,
                            const TLPoolGeometry *geometry, int average);

/// One image of an undilated convolution's kernel gradient: the zero-padded input is
/// `((outputHeight − 1)·strideY + kernelHeight) × paddedWidth × channels`, `paddedWidth =
/// (outputWidth − 1)·strideX + kernelWidth`; dz is `outputHeight × outputWidth × filters`.
typedef struct {
    int paddedWidth, channels, outputHeight, outputWidth, filters, kernelHeight, kernelWidth, strideY, strideX;
} TLKernelGradientShape;

/// `dw[ky][kx][c][f] = Σ xpad[oy·strideY + ky][ox·strideX + kx][c] · dz[oy][ox][f]` over one image's output
/// pixels (HWIO, the kernel's layout), or added to `dw` when `accumulate`. Each sum runs over the
/// pixels in row-major order.
void tl_conv_kernel_gradient(const float *xpad, const float *dz, const TLKernelGradientShape *shape, float *dw, int accumulate);
void tl_conv_kernel_gradient_level(int level, const float *xpad, const float *dz, const TLKernelGradientShape *shape,
                                   float *dw, int accumulate);

/// Whether `tl_conv_kernel_gradient` runs its vector kernel here (else callers keep im2col).
int tl_conv_kernel_gradient_runs_direct(void);

/// An undilated convolution over a zero-padded NHWC image: output pixel (oy, ox), row-major in
/// rows of `outputWidth`, reads its window from padded pixel (oy·strideY, ox·strideX) on.
typedef struct {
    int paddedWidth, channels, kernelHeight, kernelWidth, strideX, strideY, outputWidth;
} TLDirectShape;

/// Whether `tl_conv_direct` runs on this CPU (AVX-512).
int tl_conv_direct_available(void);

/// Output pixels `first ..< first + count` of one image (row-major; a run may cross rows),
/// filters `0 ..< n` of the kernel packed by `tl_gemm_pack` (`patch = kh·kw·channels` rows, HWIO
/// order; `packed` at the first filter's panel): `x` is the image's padded input, `c` (and
/// `residual`) at pixel `first`, with the `tl_gemm_packed` epilogue (bias, residual of stride
/// `ldr`, clamp). The same bits as the im2col product. Returns -1 (nothing done) where AVX-512
/// is missing.
int tl_conv_direct(const float *x, const TLDirectShape *shape, int first, int count, const float *packed, int patch, int n,
                   const float *bias, const float *residual, int ldr, float low, float high, float *c, int ldc);

/// Floats `tl_winograd_pack` writes for a `kernelSize`² kernel of `channels` inputs and
/// `filters` outputs transformed for output tiles of `tile` × `tile`: n² packed `channels ×
/// filters` matrices (`tl_gemm_packed_count` each), n = tile + kernelSize − 1.
size_t tl_winograd_packed_count(int tile, int kernelSize, int channels, int filters);

/// Winograd F(tile×tile, kernelSize×kernelSize) for F(2×2, 3×3), F(4×4, 3×3) and F(2×2, 5×5):
/// transforms an HWIO `[kernelSize, kernelSize, channels, filters]` kernel (U = G g Gᵀ, in
/// double, rounded once) and packs the n² resulting `channels × filters` matrices for
/// `tl_gemm_packed`, matrix ξ at `packed + ξ · tl_gemm_packed_count(channels, filters)`. Returns
/// 0, or -1 without memory or for another variant.
int tl_winograd_pack(int tile, int kernelSize, const float *kernel, int channels, int filters, float *packed);

/// Floats between one position's matrix of `count × width` and the next in the Winograd
/// transforms' buffers: `count · width` and a cache line. Without the line, 256 tiles of 64
/// channels put the n² = 36 positions 64 KB apart, every one in the same L1 and L2 sets (36
/// lines a tile against 12–20 ways), and a 2 MB page keeps them there (VGG16's 3×3 layers ran
/// 10–38 % slower in transparent huge pages).
#define TL_WINOGRAD_SKEW 16
size_t tl_winograd_stride(int count, int width);

/// Input transform V = Bᵀ d B of tiles `firstTile ..< firstTile + count` of a stride-1
/// convolution over NHWC `input` (`height × width × channels` per image). Tiles run image by
/// image, `tilesY × tilesX` each, row-major; tile (ty, tx) reads the n×n window at input
/// `(tile·ty − padTop, tile·tx − padLeft)`, zeros outside the image. Writes n² matrices of
/// `count × channels`: `v[ξ · tl_winograd_stride(count, channels) + t · channels + c]`. Does
/// nothing for another variant.
void tl_winograd_input(int tile, int kernelSize, const float *input, int height, int width, int channels, int tilesY,
                       int tilesX, int padTop, int padLeft, int firstTile, int count, float *v);

/// Output transform Y = Aᵀ M A of the same tiles, for filters `firstFilter ..< firstFilter +
/// filterCount`, from the n² GEMM results `m[ξ · tl_winograd_stride(count, filters) + t ·
/// filters + k]`: adds `bias` and `residual` (NHWC like the output; either may be NULL), clamps
/// to `[low, high]` and writes the tile's output pixels that lie inside `outputHeight ×
/// outputWidth` (`filters` per pixel).
void tl_winograd_output(int tile, int kernelSize, const float *m, int firstTile, int count, int tilesY, int tilesX,
                        int outputHeight, int outputWidth, int filters, int firstFilter, int filterCount,
                        const float *bias, const float *residual, float low, float high, float *output);

/// `tl_winograd_input` / `tl_winograd_output` on the kernels of `level` (capped at
/// `tl_cpu_kernel_level()`), so tests can compare the levels in one process.
void tl_winograd_input_level(int level, int tile, int kernelSize, const float *input, int height, int width, int channels,
                             int tilesY, int tilesX, int padTop, int padLeft, int firstTile, int count, float *v);
void tl_winograd_output_level(int level, int tile, int kernelSize, const float *m, int firstTile, int count, int tilesY,
                              int tilesX, int outputHeight, int outputWidth, int filters, int firstFilter, int filterCount,
                              const float *bias, const float *residual, float low, float high, float *output);

/// In place over `count` floats: `sigmoid(x) = 1 / (1 + exp(−x))`, or with `swish` non-zero
/// `x · sigmoid(x)`; a vector exp (2ⁿ · degree-6 polynomial) within about one float ulp.
void tl_sigmoid(float *values, int count, int swish);
/// `tl_sigmoid` on the kernels of `level` (capped at `tl_cpu_kernel_level()`).
void tl_sigmoid_level(int level, float *values, int count, int swish);

/// One output row of a depthwise convolution with depth multiplier 1, NHWC.
///
/// `rows[ky]` is the input row (`width × channels`) kernel row `ky` reads, or NULL where it
/// falls outside the image (those taps read zero); rows need not be adjacent in memory, so a
/// caller can keep them in a ring buffer. Output column `x`'s window starts at input column
/// `x * strideX - padLeft`. `kernel` is `[kernelHeight, kernelWidth, channels]`; `bias` may be
/// NULL; the result is clamped to `[low, high]` and written to `output` (`outputWidth × channels`).
void tl_depthwise_row(const float *const *rows, int width, int channels,
                      const float *kernel, int kernelHeight, int kernelWidth,
                      int strideX, int dilationX, int padLeft,
                      int outputWidth, const float *bias, float low, float high, float *output);
/// `tl_depthwise_row` on the kernels of `level` (capped at `tl_cpu_kernel_level()`). Every level
/// sums each output's taps in the same order (the bias, then row by row, left to right); the
/// vector levels fuse each product into the sum, so AVX-512 gives AVX2's bits except in a
/// channel tail past a multiple of 8, which AVX2 sums in the portable loop.
void tl_depthwise_row_level(int level, const float *const *rows, int width, int channels,
                            const float *kernel, int kernelHeight, int kernelWidth,
                            int strideX, int dilationX, int padLeft,
                            int outputWidth, const float *bias, float low, float high, float *output);

/// `values[i] = clamp(values[i] + bias[i % channels], low, high)` over `pixels × channels`.
void tl_bias_clamp(float *values, int pixels, int channels, const float *bias, float low, float high);

/// Whether `tl_gemm_amx` runs here: AMX tiles with bfloat16 and Linux's permission to use them
/// (Sapphire Rapids and later), at the AVX-512 kernel level. Whether to use it is the caller's
/// choice (`Conv2D.allowsAMX`, which `Model` sets where a check finds it accurate).
int tl_gemm_amx_supported(void);

/// `uint16_t`s of the AMX packing of a k × n right-hand side (`tl_gemm_amx_pack`).
size_t tl_gemm_amx_packed_count(int k, int n);

/// Splits `tl_gemm_pack`'s fp32 panels of a k × n matrix into the bfloat16 hi and lo tiles
/// `tl_gemm_amx` reads. Does nothing where AMX is not available.
void tl_gemm_amx_pack(const float *packed, int k, int n, uint16_t *amx);

/// `tl_gemm_packed` on AMX tiles: `c = clamp(a · b + bias + residual, low, high)` for columns
/// `firstColumn..<firstColumn + n` (a multiple of 16) of the matrix packed in `amx`, each
/// product as three bfloat16 products (hi·hi + hi·lo + lo·hi), a few 1e-6 from fp32. A row's
/// bits depend only on that row. `bias` and `residual` start at `firstColumn`, like `c`.
/// - Returns: 0, or −1 (nothing written) when AMX is not supported or memory ran out.
int tl_gemm_amx(int m, int n, int k, const float *a, int lda, const uint16_t *amx, int firstColumn,
                const float *bias, const float *residual, int ldr, float low, float high, float *c, int ldc);

/// Runs `body(context, i, thread)` for `i` in `0..<count` on a pool of one spinning worker per
/// core (the caller is one of them, `thread` 0; workers are 1..<tl_parallel_threads()),
/// returning when all iterations are done. Iterations are handed out one at a time, in order.
/// Nested calls, and calls while another thread's loop runs, run serially as thread 0.
void tl_parallel_for(int count, void (*body)(void *context, int index, int thread), void *context);

/// Threads `tl_parallel_for` uses (the caller included).
int tl_parallel_threads(void);

/// A run of work items `first..<end` that two claimants take from opposite ends, so neither
/// part is fixed in advance: a core the host slows down, or a worker that starts late, takes
/// fewer items and the other core takes the rest. `*run` is `first | (unsigned long long)end << 32`
/// and is updated atomically.
/// - Returns: the next item from the front (`fromEnd` 0: first, first + 1, …) or from the back
///   (`fromEnd` ≠ 0: end − 1, end − 2, …); −1 when the two ends have met.
int tl_claim_from(unsigned long long *run, int fromEnd);

#ifdef __cplusplus
}
#endif

#endif
