import Foundation
import TLEngine
import TLTensor

/// Whether a pass is a training pass (dropout active) or an inference pass, as Keras' `training=`.
public enum Mode: Sendable, CustomStringConvertible {
    case training
    case inference

    public var description: String { self == .training ? "training" : "inference" }
}

/// A layer with a backward pass. The engine's layers stay inference-only; each differentiable
/// one gets this protocol in `<Layer>+Backward.swift`.
///
/// A training pass keeps every node's inputs and output; a layer may keep more (`saved`, e.g. a
/// dropout mask or the pre-activation of a dense layer) for its backward pass.
public protocol DifferentiableLayer: Layer {
    /// The training-mode forward pass over whole tensors (batch first).
    /// - Returns: the output and whatever `backward` needs besides inputs and output.
    func trainingForward(_ inputs: [Tensor], mode: Mode, random: inout SeededRandom) throws -> (output: Tensor, saved: [Tensor])

    /// The backward pass: gradients of the loss with respect to each input, given the gradient
    /// with respect to the output; parameter gradients go to `accumulate(weightName, values)`
    /// (or are written in place through `accumulate.write`).
    /// - Parameters:
    ///   - outputGradient: dLoss/dOutput, or, when `isPreActivation` is true,
    ///     dLoss/d(pre-activation) — a loss fused with the layer's activation (softmax + cross-
    ///     entropy) hands that over directly, as Keras computes it from logits.
    ///   - needsInputGradients: false when nothing upstream learns (the layer reads the model
    ///     input): a layer may then skip computing them and return empty tensors.
    func backward(_ outputGradient: Tensor, isPreActivation: Bool, needsInputGradients: Bool, inputs: [Tensor], output: Tensor, saved: [Tensor],
                  accumulate: GradientSink) throws -> [Tensor]

    /// The activation applied last, when a loss may fuse with it (`Dense(…, softmax)`).
    var finalActivation: Activation? { get }

    /// Builds what the engine's forward pass needs before a training step runs it (the engine's
    /// `prepare()` unless the layer builds it lazily when it pays).
    func prepareForStep()
}

extension DifferentiableLayer {
    public var finalActivation: Activation? { nil }

    public func prepareForStep() { prepare() }

    /// A layer whose training pass is its inference pass (no statistics, no randomness) keeps
    /// nothing beyond its inputs and output.
    public func trainingForward(_ inputs: [Tensor], mode: Mode, random: inout SeededRandom) throws -> (output: Tensor, saved: [Tensor]) {
        (try inferenceForward(inputs), [])
    }

    /// The engine's inference forward on whole tensors.
    func inferenceForward(_ inputs: [Tensor]) throws -> Tensor {
        let outputShape = [inputs[0].shape[0]] + (try outputShape(inputShapes: inputs.map { Array($0.shape.dropFirst()) }))
        if isIdentity { return inputs[0].reshaped(outputShape) }
        var output = Tensor(shape: outputShape)
        var scratch = [Float](repeating: 0, count: max(1, scratchCount(inputs: inputs.map(\.shape), output: outputShape)))
        prepareForStep()
        try withViews(inputs) { views in
            output.scalars.withUnsafeMutableBufferPointer { out in
                scratch.withUnsafeMutableBufferPointer { scratchBuffer in
                    forward(views, into: MutableActivationView(data: out.baseAddress!, shape: outputShape),
                            scratch: scratchBuffer.baseAddress!)
                }
            }
        }
        return output
    }
}

/// Calls `body` with read-only views of `tensors`.
func withViews<T>(_ tensors: [Tensor], _ body: ([ActivationView]) throws -> T) throws -> T {
    func recurse(_ index: Int, _ views: [ActivationView]) throws -> T {
        if index == tensors.count { return try body(views) }
        return try tensors[index].scalars.withUnsafeBufferPointer { buffer in
            try recurse(index + 1, views + [ActivationView(data: buffer.baseAddress!, shape: tensors[index].shape)])
        }
    }
    return try recurse(0, [])
}

/// A seeded random source (SplitMix64): dropout masks, initial weights and shuffling are
/// reproducible from `--seed`, never from global state.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    /// Where the sequence stands: `SeededRandom(seed: state)` continues it (a resumed run).
    public private(set) var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform float in `[0, 1)`.
    public mutating func unit() -> Float { Float(next() >> 40) / Float(1 << 24) }
}

/// Why training could not go on.
public struct TrainingError: FileProblem, LocalizedError, Equatable {
    /// The layer, file or option concerned.
    public var path: String
    public var problem: String
    public init(_ subject: String, _ problem: String) { path = subject; self.problem = problem }
    public var description: String { path.isEmpty ? problem : "\(path): \(problem)" }
    public var errorDescription: String? { description }
}

/// Where a backward pass puts its weight gradients. `sink("kernel", values)` adds an array;
/// `sink.write("kernel", count:)` hands a layer with a large weight the gradient's storage, to
/// write (first reader) or add to in place, so no fresh array (fresh pages) is made every step.
public struct GradientSink {
    private let add: (String, [Float]) -> Void
    private let storage: (String) -> Parameter?

    /// Gradients handed to `add`; `write` builds an array and hands that over.
    public init(_ add: @escaping (String, [Float]) -> Void) {
        self.add = add
        storage = { _ in nil }
    }

    /// Gradients summed into the named parameters (names without one are dropped).
    init(parameters: [String: Parameter]) {
        add = { name, values in parameters[name]?.accumulate(values) }
        storage = { parameters[$0] }
    }

    private init(add: @escaping (String, [Float]) -> Void, storage: @escaping (String) -> Parameter?) {
        self.add = add
        self.storage = storage
    }

    /// Adds `values` to weight `name`'s gradient.
    public func callAsFunction(_ name: String, _ values: [Float]) { add(name, values) }

    /// Lets `body(gradient, accumulating)` write weight `name`'s `count` gradient values in place:
    /// set them when `accumulating` is false, add to them when it is true.
    public func write(_ name: String, count: Int, _ body: (UnsafeMutablePointer<Float>, _ accumulating: Bool) -> Void) {
        if let parameter = storage(name), parameter.gradientCount == count {
            parameter.accumulate(inPlace: body)
            return
        }
        var values = [Float](repeating: 0, count: count)
        values.withUnsafeMutableBufferPointer { body($0.baseAddress!, false) }
        add(name, values)
    }

    /// The same sink under other names: `rename(layerName)` is the weight's name here, or nil to drop it
    /// (a wrapped layer's `kernel` is its wrapper's `pointwise_kernel`).
    public func renamed(_ rename: @escaping (String) -> String?) -> GradientSink {
        let (add, storage) = (self.add, self.storage)
        return GradientSink(add: { name, values in if let name = rename(name) { add(name, values) } },
                            storage: { name in rename(name).flatMap(storage) })
    }
}
