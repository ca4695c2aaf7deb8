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
    /// with respect to the output; parameter gradients go to `accumulate(weightName, values)`.
    /// - Parameters:
    ///   - outputGradient: dLoss/dOutput, or, when `isPreActivation` is true,
    ///     dLoss/d(pre-activation) — a loss fused with the layer's activation (softmax + cross-
    ///     entropy) hands that over directly, as Keras computes it from logits.
    ///   - needsInputGradients: false when nothing upstream learns (the layer reads the model
    ///     input): a layer may then skip computing them and return empty tensors.
    func backward(_ outputGradient: Tensor, isPreActivation: Bool, needsInputGradients: Bool, inputs: [Tensor], output: Tensor, saved: [Tensor],
                  accumulate: (String, [Float]) -> Void) throws -> [Tensor]

    /// The activation applied last, when a loss may fuse with it (`Dense(…, softmax)`).
    var finalActivation: Activation? { get }
}

extension DifferentiableLayer {
    public var finalActivation: Activation? { nil }

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
        prepare()
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
    private var state: UInt64

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
