import CKernels
import Foundation
import TLTensor

/// Dense matrix products on the engine's packed GEMM, for callers outside the layers (training's
/// backward passes). Row-major float32; each output element sums over `k` in one fixed order, so
/// results do not depend on the thread count.
public enum MatrixMultiply {
    /// `c[m × n] = a[m × k] · b[k × n]`, or `+=` into `accumulating` when given (`m × n`).
    public static func multiply(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, m: Int, k: Int, n: Int,
                                into c: UnsafeMutablePointer<Float>, accumulating: Bool = false) {
        guard m > 0, n > 0 else { return }
        guard k > 0 else {
            if !accumulating { c.update(repeating: 0, count: m * n) }
            return
        }
        let packed = packedForGEMM(b, rows: k, columns: n, leadingDimension: n)
        let rowsPerChunk = max(6, (m + engineThreads - 1) / engineThreads)
        let chunks = m * n * k >= 200_000 ? (m + rowsPerChunk - 1) / rowsPerChunk : 1
        let residual = accumulating ? UnsafePointer(c) : nil
        concurrentPerform(iterations: chunks) { chunk in
            let first = chunks == 1 ? 0 : chunk * rowsPerChunk
            let last = chunks == 1 ? m : min(m, first + rowsPerChunk)
            guard first < last else { return }
            tl_gemm_packed(Int32(last - first), Int32(n), Int32(k), a + first * k, Int32(k), packed.pointer, nil,
                           residual.map { $0 + first * n }, Int32(n), -.infinity, .infinity, c + first * n, Int32(n))
        }
    }

    /// A right-hand side packed once (`tl_gemm_pack`'s 16-column panels) for many products.
    public final class PackedOperand {
        let buffer: FloatBuffer
        /// The matrix's shape, `rows × columns` (`k × n` of the products it enters).
        public let rows: Int, columns: Int

        /// Packs the row-major `rows × columns` matrix at `matrix`, rows `leadingDimension` apart,
        /// into `reusing`'s memory when that is the same size (it must not be used afterwards).
        public init(_ matrix: UnsafePointer<Float>, rows: Int, columns: Int, leadingDimension: Int,
                    reusing spare: PackedOperand? = nil) {
            (self.rows, self.columns) = (rows, columns)
            buffer = packedForGEMM(matrix, rows: rows, columns: columns, leadingDimension: leadingDimension,
                                   reusing: spare?.buffer)
        }
    }

    /// `c = a · b` (or `c += a · b` when `accumulating`) on the calling thread alone, for callers
    /// that split their own work between cores: `a` is `m × b.rows` with rows `lda` apart, `c` is
    /// `m × b.columns` with rows `ldc` apart.
    public static func multiply(_ a: UnsafePointer<Float>, lda: Int, m: Int, by b: PackedOperand,
                                into c: UnsafeMutablePointer<Float>, ldc: Int, accumulating: Bool) {
        guard m > 0, b.columns > 0 else { return }
        tl_gemm_packed(Int32(m), Int32(b.columns), Int32(b.rows), a, Int32(lda), b.buffer.pointer, nil,
                       accumulating ? UnsafePointer(c) : nil, Int32(ldc), -.infinity, .infinity, c, Int32(ldc))
    }

    /// `c = a · b` (or `c += a · b` when `accumulating`) on the calling thread alone, with `b`
    /// (`k × n`, rows `ldb` apart) read where it lies: for a right-hand side used in one product,
    /// where packing it would be a copy for nothing. Same bits as packing it.
    public static func multiply(_ a: UnsafePointer<Float>, lda: Int, m: Int, _ b: UnsafePointer<Float>, ldb: Int, k: Int, n: Int,
                                into c: UnsafeMutablePointer<Float>, ldc: Int, accumulating: Bool) {
        guard m > 0, n > 0 else { return }
        let status = tl_gemm(Int32(m), Int32(n), Int32(k), a, Int32(lda), b, Int32(ldb), nil, accumulating ? UnsafePointer(c) : nil,
                             Int32(ldc), -.infinity, .infinity, c, Int32(ldc))
        precondition(status == 0, "out of memory")
    }

    /// The transpose of a row-major `rows × columns` matrix.
    public static func transposed(_ a: UnsafePointer<Float>, rows: Int, columns: Int) -> [Float] {
        var result = [Float](repeating: 0, count: rows * columns)
        let tile = 32
        result.withUnsafeMutableBufferPointer { out in
            // In 32 × 32 tiles, so reads and writes both stay in cache lines already loaded.
            for rowStart in stride(from: 0, to: rows, by: tile) {
                for columnStart in stride(from: 0, to: columns, by: tile) {
                    for r in rowStart..<min(rows, rowStart + tile) {
                        for c in columnStart..<min(columns, columnStart + tile) { out[c * rows + r] = a[r * columns + c] }
                    }
                }
            }
        }
        return result
    }
}

/// The columns that run `chunk` of `chunks` takes when `columns` GEMM columns are split between
/// threads: whole micro-kernel tiles (two 16-wide panels), so no thread computes a half-width tile
/// in the middle — unless the tiles do not share out evenly and the panels do: then whole panels
/// (MobileNetV2's 160-filter projections at batch 1 split 80/80 columns, two tiles and a half tile
/// each, instead of 96/64, where one core waited a third of the layer for the other). The last run
/// ends at `columns`. Empty (`first == last`) when there are more runs than panels. A column's
/// sum runs in the same order in a full or a half tile, so the split never changes the bits.
package func gemmColumnRun(_ chunk: Int, of chunks: Int, columns: Int) -> (first: Int, last: Int) {
    let panel = Int(TL_GEMM_PANEL)
    let tiles = (columns + 2 * panel - 1) / (2 * panel), panels = (columns + panel - 1) / panel
    let unit = tiles % chunks != 0 && panels % chunks == 0 ? panel : 2 * panel
    let run = evenRun(chunk, of: chunks, count: columns, unit: unit)
    return (run.lowerBound, run.upperBound)
}

/// Run `part` of `parts` when `count` items are split in whole units of `unit` (a micro-kernel's
/// rows or columns, a Winograd chunk's 8 tiles) as evenly as they go: runs differ by at most one
/// unit and only the last unit may be partial. Empty when there are more parts than units.
package func evenRun(_ part: Int, of parts: Int, count: Int, unit: Int) -> Range<Int> {
    let units = (count + unit - 1) / unit
    return min(count, units * part / parts * unit) ..< min(count, units * (part + 1) / parts * unit)
}

/// A layer's right-hand side as its GEMMs read it: `tl_gemm_pack`'s fp32 panels, and their AMX
/// split (`tl_gemm_amx_pack`) when the layer runs on AMX tiles.
struct GEMMWeights {
    let packed: UnsafePointer<Float>
    let amx: UnsafePointer<UInt16>?
    /// K: rows of the right-hand side.
    let depth: Int

    /// `c[0..<rows, 0..<last − first] = clamp(a · b[:, first..<last] + bias + residual, low, high)`
    /// on AMX when there is a split, else `tl_gemm_packed`; `bias`, `residual` and `c` start at
    /// column `first` (a multiple of 16).
    func multiply(rows: Int, _ a: UnsafePointer<Float>, lda: Int, columns first: Int, _ last: Int,
                  bias: UnsafePointer<Float>?, residual: UnsafePointer<Float>?, ldr: Int, low: Float, high: Float,
                  into c: UnsafeMutablePointer<Float>, ldc: Int) {
        if let amx, tl_gemm_amx(Int32(rows), Int32(last - first), Int32(depth), a, Int32(lda), amx, Int32(first),
                                bias, residual, Int32(ldr), low, high, c, Int32(ldc)) == 0 {
            return
        }
        tl_gemm_packed(Int32(rows), Int32(last - first), Int32(depth), a, Int32(lda), packed + first * depth,
                       bias, residual, Int32(ldr), low, high, c, Int32(ldc))
    }
}

/// `matrices` consecutive `tl_gemm_pack` matrices (`depth` × `columns` each) split for AMX
/// (`tl_gemm_amx_pack`), one after another, into `reusing` when it has the right size.
func amxSplit(_ packed: UnsafePointer<Float>, depth: Int, columns: Int, matrices: Int = 1,
              reusing spare: FloatBuffer?) -> FloatBuffer {
    let each = tl_gemm_amx_packed_count(Int32(depth), Int32(columns))
    let floats = (matrices * each + 1) / 2
    let buffer = spare.flatMap { $0.count == floats ? $0 : nil } ?? FloatBuffer(count: floats)
    let split = UnsafeMutableRawPointer(buffer.pointer).assumingMemoryBound(to: UInt16.self)
    let packedEach = tl_gemm_packed_count(Int32(depth), Int32(columns))
    for matrix in 0..<matrices {
        tl_gemm_amx_pack(packed + matrix * packedEach, Int32(depth), Int32(columns), split + matrix * each)
    }
    return buffer
}
