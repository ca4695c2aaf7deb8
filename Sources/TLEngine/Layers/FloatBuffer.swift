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

/// A row-major `[rows, columns]` matrix (leading dimension `columns`) packed for `tl_gemm_packed`,
/// into `reusing` when it has the right size (a kernel repacked after every training step then
/// costs no fresh pages).
func packedForGEMM(_ matrix: UnsafePointer<Float>, rows: Int, columns: Int, leadingDimension: Int,
                   reusing spare: FloatBuffer? = nil) -> FloatBuffer {
    let count = tl_gemm_packed_count(Int32(rows), Int32(columns))
    let packed = spare.flatMap { $0.count == count ? $0 : nil } ?? FloatBuffer(count: count)
    tl_gemm_pack(matrix, Int32(leadingDimension), Int32(rows), Int32(columns), packed.pointer)
    return packed
}

/// A layer's kernel packed for `tl_gemm_packed`: made by the layer's `prepare()` (so only layers
/// that run pay for the copy), dropped when the kernel changes. Preparing is locked, so executors
/// planned on several threads share one packing.
final class PackedKernel {
    private var buffer: FloatBuffer?
    private var isStale = true
    private let lock = NSLock()

    /// Marks the packing out of date (the kernel changed); its memory is kept for the repacking.
    func invalidate() { lock.withLock { isStale = true } }

    /// Packs with `pack` (handed the old buffer to reuse) unless already packed.
    func prepare(_ pack: (_ reusing: FloatBuffer?) -> FloatBuffer?) {
        lock.withLock { repackIfStale(pack) }
    }

    /// The packed panels, packing them now with `pack` when the kernel changed since the last
    /// packing; valid until the kernel changes again.
    func pointer(packingWith pack: (_ reusing: FloatBuffer?) -> FloatBuffer?) -> UnsafePointer<Float>? {
        lock.withLock {
            repackIfStale(pack)
            return buffer.map { UnsafePointer($0.pointer) }
        }
    }

    /// `pointer(packingWith:)` for a packing of `UInt16`s (AMX's bfloat16 tiles) kept in floats.
    func halfwordPointer(packingWith pack: (_ reusing: FloatBuffer?) -> FloatBuffer?) -> UnsafePointer<UInt16>? {
        pointer(packingWith: pack).map { UnsafeRawPointer($0).assumingMemoryBound(to: UInt16.self) }
    }

    /// The packed panels when they match the kernel as it is now; nil (packing nothing) when the
    /// kernel changed since, for a caller that can read the kernel in place instead.
    var currentPointer: UnsafePointer<Float>? {
        lock.withLock { isStale ? nil : buffer.map { UnsafePointer($0.pointer) } }
    }

    private func repackIfStale(_ pack: (FloatBuffer?) -> FloatBuffer?) {
        guard isStale else { return }
        buffer = pack(buffer)
        isStale = false
    }
}
