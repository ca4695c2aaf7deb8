import Foundation
import TLTensor

/// Keras `Dense` over the last axis: `activation(x · kernel + bias)`.
///
/// - `kernel`: `[inputFeatures, units]`
/// - `bias`: `[units]` when `useBias`
public final class Dense: Layer {
    public let name: String
    /// Output features.
    public let units: Int
    /// Whether a bias is added.
    public let useBias: Bool
    /// Applied after the bias (softmax over the units).
    public let activation: Activation
    /// `[in, units]` kernel.
    public var kernel = Tensor(shape: [0])
    /// `[units]` bias, or nil.
    public var bias: Tensor?

    /// Creates a dense layer with weights to be loaded later.
    public init(name: String, units: Int, useBias: Bool = true, activation: Activation = .linear) {
        self.name = name
        self.units = units
        self.useBias = useBias
        self.activation = activation
    }

    /// Creates a dense layer with weights given (a new head).
    /// - Precondition: `kernel` is `[in, units]`, `bias` (if any) is `[units]`.
    public convenience init(name: String, kernel: Tensor, bias: Tensor?, activation: Activation = .linear) {
        precondition(kernel.rank == 2, "Dense kernel must be [in, units]")
        self.init(name: name, units: kernel.shape[1], useBias: bias != nil, activation: activation)
        self.kernel = kernel
        self.bias = bias
    }

    func copy(activation: Activation) -> Dense {
        Dense(name: name, kernel: kernel, bias: bias, activation: activation)
    }

    public func outputShape(inputShapes: [[Int]]) throws -> [Int] {
        guard let last = inputShapes[0].last, last > 0 else {
            throw EngineError.incompatibleShapes(layer: name, detail: "Dense needs a known last dimension, got per-sample shape \(inputShapes[0])")
        }
        return inputShapes[0].dropLast() + [units]
    }

    public func expectedWeights(inputShapes: [[Int]]) -> [WeightSpec] {
        var specs = [WeightSpec("kernel", [inputShapes[0].last ?? 0, units])]
        if useBias { specs.append(WeightSpec("bias", [units])) }
        return specs
    }

    public func setWeights(_ weights: [String: Tensor]) {
        if let kernel = weights["kernel"] { self.kernel = kernel }
        bias = useBias ? weights["bias"] : nil
    }

    public var weights: [String: Tensor] {
        var result = ["kernel": kernel]
        if let bias { result["bias"] = bias }
        return result
    }

    public func forward(_ inputs: [ActivationView], into output: MutableActivationView, scratch: UnsafeMutablePointer<Float>) {
        let features = inputs[0].shape.last ?? 1
        let rows = output.count / units
        kernel.scalars.withUnsafeBufferPointer { k in
            matrixMultiply(m: rows, n: units, k: features, a: inputs[0].data, lda: features, b: k.baseAddress!, ldb: units,
                           c: output.data, ldc: units)
        }
        applyBiasAndActivation(output.data, pixels: rows, channels: units, bias: bias, activation: activation)
    }
}

/// Keras `Activation`, `ReLU`, `LeakyReLU`, `ELU`, `Softmax`: an activation as its own layer.
public final class ActivationLayer: Layer {
    public let name: String
    /// The function applied.
    public let activation: Activation

    /// Creates an activation layer.
    public init(name: String, activation: Activation) {
        self.name = name
        self.activation = activation
    }

    public func outputShape(inputShapes: [[Int]]) throws -> [Int] { inputShapes[0] }

    public func forward(_ inputs: [ActivationView], into output: MutableActivationView, scratch: UnsafeMutablePointer<Float>) {
        let count = output.count, lastAxis = output.shape.last ?? 1
        if inputs[0].data != UnsafePointer(output.data) { output.data.update(from: inputs[0].data, count: count) }
        if activation == .softmax {
            activation.apply(output.data, count: count, lastAxis: lastAxis)
            return
        }
        let activation = self.activation
        parallelChunks(count / lastAxis, work: count) { rows in
            activation.apply(output.data + rows.lowerBound * lastAxis, count: rows.count * lastAxis, lastAxis: lastAxis)
        }
    }
}
