import CKernels
import Foundation

/// An element-wise (or, for softmax, last-axis) activation function, as Keras defines it.
///
/// Keras 2 and Keras 3 disagree on `hard_sigmoid`; the flavour is part of the case so a model
/// config from either version computes exactly what it computed in Python.
public enum Activation: Sendable, Equatable {
    /// Identity (`linear`, `None`).
    case linear
    /// `max(x, 0)`.
    case relu
    /// `min(max(x, 0), 6)`.
    case relu6
    /// The Keras `ReLU` layer: `maxValue` for `x >= maxValue`, `x` for `threshold <= x < maxValue`,
    /// else `negativeSlope * (x - threshold)`.
    case clippedReLU(maxValue: Float?, negativeSlope: Float, threshold: Float)
    /// `x` for `x >= 0`, else `slope * x`.
    case leakyReLU(slope: Float)
    /// `1 / (1 + exp(-x))`.
    case sigmoid
    /// Keras 2: `clip(0.2 x + 0.5, 0, 1)`.
    case hardSigmoidKeras2
    /// Keras 3: `relu6(x + 3) / 6`.
    case hardSigmoid
    /// `x * sigmoid(x)` (`swish`, `silu`).
    case swish
    /// `x * relu6(x + 3) / 6` (`hard_swish`, `hard_silu`).
    case hardSwish
    /// `tanh(x)`.
    case tanh
    /// Gaussian error linear unit; `approximate` selects the tanh formula.
    case gelu(approximate: Bool)
    /// Softmax over the last axis.
    case softmax
    /// `x` for `x > 0`, else `alpha * (exp(x) - 1)`.
    case elu(alpha: Float)
    /// Scaled ELU with the fixed constants of Klambauer et al.
    case selu
    /// `log(1 + exp(x))`.
    case softplus
    /// `x / (1 + |x|)`.
    case softsign
    /// `exp(x)`.
    case exponential

    /// Parses a Keras activation name (`"relu"`, `"hard_sigmoid"`, …).
    /// - Parameters:
    ///   - name: the Keras identifier.
    ///   - keras3: whether the config comes from Keras 3 (changes `hard_sigmoid`).
    /// - Throws: `EngineError.unsupportedOption` for an unknown name.
    public init(kerasName name: String, keras3: Bool, layer: String) throws {
        switch name {
        case "linear", "None", "": self = .linear
        case "relu": self = .relu
        case "relu6": self = .relu6
        case "sigmoid": self = .sigmoid
        case "hard_sigmoid": self = keras3 ? .hardSigmoid : .hardSigmoidKeras2
        case "swish", "silu": self = .swish
        case "hard_swish", "hard_silu": self = .hardSwish
        case "tanh": self = .tanh
        case "gelu": self = .gelu(approximate: false)
        case "softmax": self = .softmax
        case "elu": self = .elu(alpha: 1)
        case "selu": self = .selu
        case "softplus": self = .softplus
        case "softsign": self = .softsign
        case "exponential": self = .exponential
        case "leaky_relu": self = .leakyReLU(slope: 0.2)
        default: throw EngineError.unsupportedOption(layer: layer, option: "activation", value: name)
        }
    }

    /// Whether the activation is the identity.
    public var isLinear: Bool { self == .linear }

    /// `(low, high)` when the activation is `clamp(x, low, high)` (identity, ReLU, ReLU6,
    /// a capped ReLU), which the C kernels apply in their epilogue; nil otherwise.
    var clampBounds: (low: Float, high: Float)? {
        switch self {
        case .linear: return (-.infinity, .infinity)
        case .relu: return (0, .infinity)
        case .relu6: return (0, 6)
        case let .clippedReLU(maxValue, negativeSlope, threshold) where negativeSlope == 0 && threshold == 0:
            return (0, maxValue ?? .infinity)
        default: return nil
        }
    }

    /// Applies the activation in place to `count` values laid out as rows of `lastAxis` values.
    /// - Parameters:
    ///   - values: the buffer to transform.
    ///   - count: number of floats.
    ///   - lastAxis: length of the last axis (used by softmax only).
    public func apply(_ values: UnsafeMutablePointer<Float>, count: Int, lastAxis: Int) {
        switch self {
        case .linear:
            return
        case .relu:
            for i in 0..<count { values[i] = max(values[i], 0) }
        case .relu6:
            for i in 0..<count { values[i] = min(max(values[i], 0), 6) }
        case let .clippedReLU(maxValue, slope, threshold):
            let top = maxValue ?? .infinity
            for i in 0..<count {
                let x = values[i]
                values[i] = x >= top ? top : (x >= threshold ? x : slope * (x - threshold))
            }
        case let .leakyReLU(slope):
            for i in 0..<count { let x = values[i]; values[i] = x >= 0 ? x : slope * x }
        case .sigmoid:
            tl_sigmoid(values, Int32(count), 0)
        case .hardSigmoidKeras2:
            for i in 0..<count { values[i] = min(max(0.2 * values[i] + 0.5, 0), 1) }
        case .hardSigmoid:
            for i in 0..<count { values[i] = min(max(values[i] + 3, 0), 6) / 6 }
        case .swish:
            tl_sigmoid(values, Int32(count), 1)
        case .hardSwish:
            for i in 0..<count { let x = values[i]; values[i] = x * (min(max(x + 3, 0), 6) / 6) }
        case .tanh:
            for i in 0..<count { values[i] = Foundation.tanh(values[i]) }
        case let .gelu(approximate):
            if approximate {
                let c = Float((2 / Double.pi).squareRoot())
                for i in 0..<count {
                    let x = values[i]
                    values[i] = 0.5 * x * (1 + Foundation.tanh(c * (x + 0.044715 * x * x * x)))
                }
            } else {
                for i in 0..<count {
                    let x = Double(values[i])
                    values[i] = Float(0.5 * x * (1 + erf(x / 2.0.squareRoot())))
                }
            }
        case .softmax:
            let axis = max(lastAxis, 1)
            var row = 0
            while row < count {
                let p = values + row
                var largest = -Float.infinity
                for j in 0..<axis { largest = max(largest, p[j]) }
                var sum: Float = 0
                for j in 0..<axis { let e = exp(p[j] - largest); p[j] = e; sum += e }
                let inverse = 1 / sum
                for j in 0..<axis { p[j] *= inverse }
                row += axis
            }
        case let .elu(alpha):
            for i in 0..<count { let x = values[i]; values[i] = x > 0 ? x : alpha * (exp(x) - 1) }
        case .selu:
            let alpha: Float = 1.6732632423543772, scale: Float = 1.0507009873554805
            for i in 0..<count { let x = values[i]; values[i] = scale * (x > 0 ? x : alpha * (exp(x) - 1)) }
        case .softplus:
            for i in 0..<count { let x = values[i]; values[i] = max(x, 0) + log1p(exp(-abs(x))) }
        case .softsign:
            for i in 0..<count { let x = values[i]; values[i] = x / (1 + abs(x)) }
        case .exponential:
            for i in 0..<count { values[i] = exp(values[i]) }
        }
    }

    @inline(__always) static func sigmoid(_ x: Float) -> Float { 1 / (1 + exp(-x)) }
}

// MARK: - The layer

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
        applyActivation(activation, to: output.data, rows: count / lastAxis, lastAxis: lastAxis)
    }
}

/// Applies an activation over `rows × lastAxis` values, rows split across cores (softmax and the
/// other row-wise activations stay within a row).
func applyActivation(_ activation: Activation, to data: UnsafeMutablePointer<Float>, rows: Int, lastAxis: Int) {
    if activation.isLinear { return }
    parallelChunks(rows, work: rows * lastAxis) { range in
        activation.apply(data + range.lowerBound * lastAxis, count: range.count * lastAxis, lastAxis: lastAxis)
    }
}
