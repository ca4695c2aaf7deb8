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
    /// Views `shape.reduce(1, *)` floats at `data`.
    public init(data: UnsafePointer<Float>, shape: [Int]) { self.data = data; self.shape = shape }
}

/// A writable activation: `shape` includes the batch dimension, data is contiguous NHWC.
public struct MutableActivationView {
    /// First element.
    public let data: UnsafeMutablePointer<Float>
    /// Full shape, batch first.
    public let shape: [Int]
    /// The number of elements.
    public var count: Int { shape.reduce(1, *) }
    /// Views `shape.reduce(1, *)` writable floats at `data`.
    public init(data: UnsafeMutablePointer<Float>, shape: [Int]) { self.data = data; self.shape = shape }
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
    /// Changes weight `name` through `body` (an optimizer step). Layers with large weights do it
    /// in place; by default the weight is read, changed and set back (one copy).
    func updateWeight(named name: String, _ body: (inout Tensor) -> Void)
    /// Floats of scratch memory `forward` needs for these inputs (0 by default).
    func scratchCount(inputs: [[Int]], output: [Int]) -> Int
    /// Whether the output is the first input's data unchanged (reshape, dropout): no copy is made.
    var isIdentity: Bool { get }
    /// When the weights last changed (0 for a layer without weights or before they are set):
    /// derived state made from an older version is rebuilt (see `ParameterVersion`).
    var parameterVersion: Int { get }
    /// Readies state derived from the weights (packed GEMM panels) ahead of the first `forward`,
    /// so the first pass is not slower. `GraphExecutor` calls it for every node when it plans a
    /// graph; layers that wrap others forward the call. Optional: `forward` rebuilds whatever a
    /// weight change made stale.
    func prepare()
    /// `prepare()` for passes over inputs of `inputShapes` (batch included): a layer whose
    /// derived state depends on the pass (Conv2D's Winograd tile) readies what those passes use.
    func prepare(inputShapes: [[Int]])
    /// The input `forward` may write its output over, or nil: each output element reads only the
    /// element of that input it replaces (a fused residual `Add`), so the executor can give the
    /// output that input's buffer when nothing reads the input afterwards.
    var overwritableInput: Int? { get }
    /// Computes the output. `inputs`/`output` shapes include the batch dimension.
    func forward(_ inputs: [ActivationView], into output: MutableActivationView, scratch: UnsafeMutablePointer<Float>)
}

extension Layer {
    public func expectedWeights(inputShapes: [[Int]]) -> [WeightSpec] { [] }
    public func setWeights(_ weights: [String: Tensor]) {}
    public var weights: [String: Tensor] { [:] }
    public func updateWeight(named name: String, _ body: (inout Tensor) -> Void) {
        var weights = self.weights
        guard var tensor = weights.removeValue(forKey: name) else { return }
        body(&tensor)
        weights[name] = tensor
        setWeights(weights)
    }
    public func scratchCount(inputs: [[Int]], output: [Int]) -> Int { 0 }
    public var isIdentity: Bool { false }
    public var parameterVersion: Int { 0 }
    public func prepare() {}
    public func prepare(inputShapes: [[Int]]) { prepare() }
    public var overwritableInput: Int? { nil }
}
