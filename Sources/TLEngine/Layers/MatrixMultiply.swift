import CKernels
import COpenBLAS
import Foundation

/// Row-major `C[m×n] = A[m×k] · B[k×n]` (`beta = 0`) on OpenBLAS, split by rows across cores.
///
/// OpenBLAS is kept single-threaded and the engine splits work itself: OpenBLAS's own worker
/// threads spin after each call, and on a small machine they would compete with the engine's
/// depthwise and element-wise threads. One thread pool (GCD) for everything avoids that.
func matrixMultiply(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                    c: UnsafeMutablePointer<Float>, ldc: Int) {
    OpenBLASThreads.configureOnce
    let cores = ProcessInfo.processInfo.activeProcessorCount
    let large = m * n * k >= 2_000_000
    if large && m < 2 * cores && n >= 64 * cores {
        // A few rows (dense layers at small batch): split the columns instead.
        concurrentPerform(iterations: cores) { chunk in
            let start = n * chunk / cores, end = n * (chunk + 1) / cores
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(end - start), Int32(k),
                        1, a, Int32(lda), b + start, Int32(ldb), 0, c + start, Int32(ldc))
        }
        return
    }
    let chunks = (large && m >= 2 * cores) ? cores : 1
    concurrentPerform(iterations: chunks) { chunk in
        let start = m * chunk / chunks, end = m * (chunk + 1) / chunks
        guard start < end else { return }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(end - start), Int32(n), Int32(k),
                    1, a + start * lda, Int32(lda), b, Int32(ldb), 0, c + start * ldc, Int32(ldc))
    }
}

enum OpenBLASThreads {
    /// Evaluated once, before the first multiplication.
    static let configureOnce: Void = { openblas_set_num_threads(1) }()
}

/// Floats at a stable address for C kernels, freed with the object (packed GEMM weights and
/// biases that a layer hands to `CKernels` on every call).
final class FloatBuffer {
    /// The first float; 64-byte aligned.
    let pointer: UnsafeMutablePointer<Float>
    /// The number of floats.
    let count: Int

    /// Zeroed storage for `count` floats.
    init(count: Int) {
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * MemoryLayout<Float>.size, alignment: 64)
        pointer = raw.initializeMemory(as: Float.self, repeating: 0, count: max(count, 1))
    }

    /// A copy of `scalars`.
    convenience init(_ scalars: [Float]) {
        self.init(count: scalars.count)
        scalars.withUnsafeBufferPointer { source in
            if let base = source.baseAddress { pointer.update(from: base, count: source.count) }
        }
    }

    deinit { pointer.deallocate() }
}

/// A row-major `[rows, columns]` matrix (leading dimension `columns`) packed for `tl_gemm_packed`.
func packedForGEMM(_ matrix: UnsafePointer<Float>, rows: Int, columns: Int, leadingDimension: Int) -> FloatBuffer {
    let packed = FloatBuffer(count: tl_gemm_packed_count(Int32(rows), Int32(columns)))
    tl_gemm_pack(matrix, Int32(leadingDimension), Int32(rows), Int32(columns), packed.pointer)
    return packed
}
