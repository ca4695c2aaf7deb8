import CKernels
import Foundation
import TLTensor

/// A read-only activation: `shape` includes the batch dimension, data is contiguous NHWC.
public struct ActivationView {
    /// First element.
    public let data: UnsafePointer<Float>
    /// Full shape, batch first.
    public let shape: [Int]
    /// The number of elements.
    public var count: Int { shape.reduce(1, *) }
}

/// A writable activation: `shape` includes the batch dimension, data is contiguous NHWC.
public struct MutableActivationView {
    /// First element.
    public let data: UnsafeMutablePointer<Float>
    /// Full shape, batch first.
    public let shape: [Int]
    /// The number of elements.
    public var count: Int { shape.reduce(1, *) }
}

/// One Keras weight a layer expects: its short Keras name and shape.
public struct WeightSpec: Sendable, Equatable {
    /// `kernel`, `bias`, `gamma`, `beta`, `moving_mean`, `moving_variance`, `depthwise_kernel`, …
    public var name: String
    /// The Keras layout, e.g. HWIO `[kh, kw, in, out]` for a conv kernel.
    public var shape: [Int]
    public init(_ name: String, _ shape: [Int]) { self.name = name; self.shape = shape }
}

/// A network layer running on float32 NHWC activations.
///
/// Shapes passed to `outputShape` and `expectedWeights` are per sample (no batch dimension);
/// a dimension of `-1` is unknown until an input arrives (e.g. the image size of a fully
/// convolutional network). Layers are classes so one instance can be shared by several graph
/// nodes, as Keras shares a layer called twice.
public protocol Layer: AnyObject {
    /// The Keras layer name (`block_1_expand`).
    var name: String { get }
    /// The per-sample output shape for per-sample input shapes.
    /// - Throws: `EngineError.incompatibleShapes` when the inputs cannot flow through.
    func outputShape(inputShapes: [[Int]]) throws -> [Int]
    /// The weights this layer needs, in Keras order, for the given per-sample input shapes.
    func expectedWeights(inputShapes: [[Int]]) -> [WeightSpec]
    /// Installs weights already checked against `expectedWeights`.
    func setWeights(_ weights: [String: Tensor])
    /// The current weights under their Keras names (empty when the layer has none).
    var weights: [String: Tensor] { get }
    /// Floats of scratch memory `forward` needs for these inputs (0 by default).
    func scratchCount(inputs: [[Int]], output: [Int]) -> Int
    /// Whether the output is the first input's data unchanged (reshape, dropout): no copy is made.
    var isIdentity: Bool { get }
    /// Readies state derived from the weights (packed GEMM panels) before the first `forward`.
    /// `GraphExecutor` calls it for every node when it plans a graph; layers that wrap others
    /// forward the call. Weights set later invalidate that state until the next `prepare()`.
    func prepare()
    /// Computes the output. `inputs`/`output` shapes include the batch dimension.
    func forward(_ inputs: [ActivationView], into output: MutableActivationView, scratch: UnsafeMutablePointer<Float>)
}

extension Layer {
    public func expectedWeights(inputShapes: [[Int]]) -> [WeightSpec] { [] }
    public func setWeights(_ weights: [String: Tensor]) {}
    public var weights: [String: Tensor] { [:] }
    public func scratchCount(inputs: [[Int]], output: [Int]) -> Int { 0 }
    public var isIdentity: Bool { false }
    public func prepare() {}
}

/// Threads the engine's parallel loops run on, the caller included (one per core, or `TLHUB_THREADS`).
var engineThreads: Int { Int(tl_parallel_threads()) }

/// Runs `body(i)` for `i in 0..<count` on all cores when the work is large enough.
@inline(__always)
func parallelFor(_ count: Int, work: Int, _ body: (Int) -> Void) {
    if count > 1 && work >= 32_768 {
        concurrentPerform(iterations: count, body)
    } else {
        for i in 0..<count { body(i) }
    }
}

/// Splits `0..<count` into one contiguous chunk per core and runs them concurrently.
@inline(__always)
func parallelChunks(_ count: Int, work: Int, _ body: (Range<Int>) -> Void) {
    let chunks = (work >= 65_536 && count > 1) ? min(engineThreads, count) : 1
    if chunks == 1 { body(0..<count); return }
    concurrentPerform(iterations: chunks) { c in
        let start = count * c / chunks, end = count * (c + 1) / chunks
        if start < end { body(start..<end) }
    }
}

/// Runs `body(i)` for `i in 0..<iterations` on the engine's thread pool.
@inline(__always)
func concurrentPerform(iterations: Int, _ body: (Int) -> Void) {
    concurrentPerform(iterations: iterations) { index, _ in body(index) }
}

/// Runs `body(i, thread)` for `i in 0..<iterations` on the engine's thread pool (`CKernels`'
/// `tl_parallel_for`); `thread` in `0..<engineThreads` names the thread running the iteration,
/// so each can use its own part of a scratch buffer.
///
/// The iterations write disjoint memory and the call returns only after all of them finish,
/// so the non-escaping closure (capturing raw pointers) cannot race or outlive the call.
func concurrentPerform(iterations: Int, _ body: (_ index: Int, _ thread: Int) -> Void) {
    withoutActuallyEscaping(body) { escapable in
        var closure = escapable
        withUnsafeMutablePointer(to: &closure) { pointer in
            tl_parallel_for(Int32(iterations), { context, index, thread in
                context!.assumingMemoryBound(to: ((Int, Int) -> Void).self).pointee(Int(index), Int(thread))
            }, pointer)
        }
    }
}
