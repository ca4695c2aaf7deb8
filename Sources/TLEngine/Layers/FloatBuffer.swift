import CKernels
import Foundation

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

/// A layer's kernel packed for `tl_gemm_packed`: made by the layer's `prepare()` (so only layers
/// that run pay for the copy), dropped when the kernel changes. Preparing is locked, so executors
/// planned on several threads share one packing.
final class PackedKernel {
    private var buffer: FloatBuffer?
    private let lock = NSLock()

    /// Forgets the packing (the kernel changed).
    func invalidate() { lock.withLock { buffer = nil } }

    /// Packs with `pack` unless already packed.
    func prepare(_ pack: () -> FloatBuffer?) {
        lock.withLock { if buffer == nil { buffer = pack() } }
    }

    /// The packed panels, packing them now with `pack` when the kernel changed since the last
    /// packing; valid until the kernel changes again.
    func pointer(packingWith pack: () -> FloatBuffer?) -> UnsafePointer<Float>? {
        lock.withLock {
            if buffer == nil { buffer = pack() }
            return buffer.map { UnsafePointer($0.pointer) }
        }
    }
}
