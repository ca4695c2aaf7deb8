import Foundation
import TLTensor

/// Keras `BatchNormalization` in inference mode over the last axis.
///
/// - `gamma` `[channels]` (when `scale`), `beta` `[channels]` (when `center`),
///   `moving_mean` `[channels]`, `moving_variance` `[channels]`
///
/// Computes `x * inv + (beta - mean * inv)` with `inv = gamma / sqrt(variance + epsilon)`, the
/// same arithmetic TensorFlow's fused kernel uses.
public final class BatchNormalization: Layer {
    public let name: String
    /// Added to the variance before the square root (Keras default 1e-3; ResNet 1.001e-5).
    public let epsilon: Float
    /// Whether `beta` exists.
    public let center: Bool
    /// Whether `gamma` exists.
    public let scale: Bool
    /// Weight of the old moving statistics in a training step's update (Keras default 0.99;
    /// MobileNetV2/V3 0.999).
    public var momentum: Float = 0.99
    /// Whether a training step updates the moving variance with the unbiased batch variance
    /// (`n / (n − 1)`), as tf.keras 2's fused kernel does for NHWC inputs; Keras 3 does not.
    public var correctsMovingVariance = false
    /// The Keras axis normalized over (batch included): `-1`, or the input's last axis.
    public var axis = -1
    /// `[channels]` scale, when `scale`.
    public var gamma: Tensor? { didSet { version.bump() } }
    /// `[channels]` shift, when `center`.
    public var beta: Tensor? { didSet { version.bump() } }
    /// `[channels]` running mean.
    public var movingMean = Tensor(shape: [0]) { didSet { version.bump() } }
    /// `[channels]` running variance.
    public var movingVariance = Tensor(shape: [0]) { didSet { version.bump() } }
    private let version = ParameterVersion()
    public var parameterVersion: Int { version.value }
    /// `inv` and `beta - mean * inv` with the version they were computed from.
    private var folded: (version: Int, multiplier: [Float], offset: [Float]) = (-1, [], [])
    private let foldLock = NSLock()

    /// `inv = gamma / sqrt(variance + epsilon)` per channel, from the current weights.
    var multiplier: [Float] { affine().multiplier }
    /// `beta - mean * inv` per channel, from the current weights.
    var offset: [Float] { affine().offset }

    private func affine() -> (multiplier: [Float], offset: [Float]) {
        foldLock.withLock {
            if folded.version != version.value {
                let count = movingMean.count
                let multiplier = (0..<count).map { c in
                    (1 / (movingVariance.scalars[c] + epsilon).squareRoot()) * (gamma?.scalars[c] ?? 1)
                }
                let offset = (0..<count).map { c in (beta?.scalars[c] ?? 0) - movingMean.scalars[c] * multiplier[c] }
                folded = (version.value, multiplier, offset)
            }
            return (folded.multiplier, folded.offset)
        }
    }

    /// Creates a batch normalization with statistics to be loaded later.
    public init(name: String, epsilon: Float = 1e-3, center: Bool = true, scale: Bool = true) {
        self.name = name
        self.epsilon = epsilon
        self.center = center
        self.scale = scale
    }

    public func outputShape(inputShapes: [[Int]]) throws -> [Int] {
        guard axis == -1 || axis == inputShapes[0].count else {
            throw EngineError.unsupportedOption(layer: name, option: "axis", value: "\(axis) (only the last axis, \(inputShapes[0].count), is supported)")
        }
        return inputShapes[0]
    }

    public func expectedWeights(inputShapes: [[Int]]) -> [WeightSpec] {
        let channels = inputShapes[0].last ?? 0
        var specs: [WeightSpec] = []
        if scale { specs.append(WeightSpec("gamma", [channels])) }
        if center { specs.append(WeightSpec("beta", [channels])) }
        specs.append(WeightSpec("moving_mean", [channels]))
        specs.append(WeightSpec("moving_variance", [channels]))
        return specs
    }

    public func setWeights(_ weights: [String: Tensor]) {
        gamma = scale ? weights["gamma"] : nil
        beta = center ? weights["beta"] : nil
        movingMean = weights["moving_mean"] ?? movingMean
        movingVariance = weights["moving_variance"] ?? movingVariance
    }

    public var weights: [String: Tensor] {
        var result = ["moving_mean": movingMean, "moving_variance": movingVariance]
        if let gamma { result["gamma"] = gamma }
        if let beta { result["beta"] = beta }
        return result
    }

    public func forward(_ inputs: [ActivationView], into output: MutableActivationView, scratch: UnsafeMutablePointer<Float>) {
        let (multiplier, offset) = affine()
        applyChannelAffine(inputs[0].data, output.data, count: output.count, multiplier: multiplier, offset: offset)
    }
}

/// `output[i] = input[i] * multiplier[c] + offset[c]` with `c = i % channels`, on all cores.
///
/// Few channels (an RGB input's `Rescaling` and `Normalization`, EfficientNet's first layers) run
/// over runs of 16 pixels against the factors repeated 16 times, one loop as long as the run, so
/// the compiler vectorizes across pixels: a loop of 3 channels per pixel took about 3 ns per value
/// (EfficientNetB0's two at batch 32: 12.3 ms of a 420 ms pass, now 4.5). Same bits either way.
func applyChannelAffine(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, count: Int,
                        multiplier: [Float], offset: [Float]) {
    let channels = multiplier.count
    let group = channels < 16 ? 16 : 1  // pixels per run
    let run = group * channels
    let repeatedMultiplier = (0..<group).flatMap { _ in multiplier }, repeatedOffset = (0..<group).flatMap { _ in offset }
    repeatedMultiplier.withUnsafeBufferPointer { m in
        repeatedOffset.withUnsafeBufferPointer { o in
            let mp = m.baseAddress!, op = o.baseAddress!
            let pixels = count / channels, runs = (pixels + group - 1) / group
            parallelChunks(runs, work: count) { chunk in
                for index in chunk {
                    let first = index * run, length = min(run, count - first)
                    let source = input + first, destination = output + first
                    for j in 0..<length { destination[j] = source[j] * mp[j] + op[j] }
                }
            }
        }
    }
}

/// Keras `LayerNormalization` over the last axis.
///
/// - `gamma` `[features]` (when `scale`), `beta` `[features]` (when `center`)
public final class LayerNormalization: Layer {
    public let name: String
    /// Added to the variance.
    public let epsilon: Float
    /// Whether `beta` exists.
    public let center: Bool
    /// Whether `gamma` exists.
    public let scale: Bool
    /// Affine parameters.
    /// `[features]` scale and shift, when `scale`/`center`.
    public var gamma: Tensor? { didSet { version.bump() } }
    public var beta: Tensor? { didSet { version.bump() } }
    private let version = ParameterVersion()
    public var parameterVersion: Int { version.value }

    /// Creates a layer normalization with weights to be loaded later.
    public init(name: String, epsilon: Float = 1e-3, center: Bool = true, scale: Bool = true) {
        self.name = name
        self.epsilon = epsilon
        self.center = center
        self.scale = scale
    }

    public func outputShape(inputShapes: [[Int]]) throws -> [Int] { inputShapes[0] }

    public func expectedWeights(inputShapes: [[Int]]) -> [WeightSpec] {
        let features = inputShapes[0].last ?? 0
        var specs: [WeightSpec] = []
        if scale { specs.append(WeightSpec("gamma", [features])) }
        if center { specs.append(WeightSpec("beta", [features])) }
        return specs
    }

    public func setWeights(_ weights: [String: Tensor]) {
        gamma = scale ? weights["gamma"] : nil
        beta = center ? weights["beta"] : nil
    }

    public var weights: [String: Tensor] {
        var result: [String: Tensor] = [:]
        if let gamma { result["gamma"] = gamma }
        if let beta { result["beta"] = beta }
        return result
    }

    public func forward(_ inputs: [ActivationView], into output: MutableActivationView, scratch: UnsafeMutablePointer<Float>) {
        let features = output.shape.last ?? 1
        let rows = output.count / features
        let input = inputs[0].data
        for row in 0..<rows {
            let source = input + row * features, destination = output.data + row * features
            let (mean, inverse) = statistics(of: source, features: features)
            for j in 0..<features {
                var value = (source[j] - mean) * inverse
                if let gamma { value *= gamma.scalars[j] }
                if let beta { value += beta.scalars[j] }
                destination[j] = value
            }
        }
    }
}

extension LayerNormalization {
    /// One row's mean and `1 / √(variance + ε)` (biased variance, summed in Double), as the
    /// forward pass normalizes with them and the backward pass differentiates them.
    package func statistics(of row: UnsafePointer<Float>, features: Int) -> (mean: Float, inverse: Float) {
        var mean: Double = 0
        for j in 0..<features { mean += Double(row[j]) }
        mean /= Double(features)
        var variance: Double = 0
        for j in 0..<features { let d = Double(row[j]) - mean; variance += d * d }
        variance /= Double(features)
        return (Float(mean), Float(1 / (variance + Double(epsilon)).squareRoot()))
    }
}

/// Keras `Normalization` (inference): `(x - mean) / max(sqrt(variance), 1e-7)` over the last axis.
///
/// Mean and variance come from the layer config or, for an adapted layer, from the weights
/// `mean`, `variance` `[features]` and `count` `[]`.
public final class Normalization: Layer {
    public let name: String
    /// Values from the config, when the layer was built with them.
    let configuredMean: [Float]?, configuredVariance: [Float]?
    package private(set) var multiplier: [Float] = [], offset: [Float] = []
    /// The adapted statistics; only `setWeights` changes them (and recomputes the factors).
    private var stored: [String: Tensor] = [:] { didSet { version.bump() } }
    private let version = ParameterVersion()
    public var parameterVersion: Int { version.value }

    /// Creates a normalization; pass `mean`/`variance` for a layer configured with them, nil when
    /// they are loaded as weights.
    public init(name: String, mean: [Float]?, variance: [Float]?) {
        self.name = name
        configuredMean = mean
        configuredVariance = variance
        if let mean, let variance { prepare(mean: mean, variance: variance) }
    }

    private func prepare(mean: [Float], variance: [Float]) {
        multiplier = variance.map { 1 / max($0.squareRoot(), 1e-7) }
        offset = zip(mean, multiplier).map { -$0 * $1 }
    }

    public func outputShape(inputShapes: [[Int]]) throws -> [Int] { inputShapes[0] }

    public func expectedWeights(inputShapes: [[Int]]) -> [WeightSpec] {
        guard configuredMean == nil else { return [] }
        let features = inputShapes[0].last ?? 0
        return [WeightSpec("mean", [features]), WeightSpec("variance", [features]), WeightSpec("count", [])]
    }

    public func setWeights(_ weights: [String: Tensor]) {
        guard configuredMean == nil, let mean = weights["mean"], let variance = weights["variance"] else { return }
        stored = weights
        prepare(mean: mean.scalars, variance: variance.scalars)
    }

    public var weights: [String: Tensor] { stored }

    public func forward(_ inputs: [ActivationView], into output: MutableActivationView, scratch: UnsafeMutablePointer<Float>) {
        // One factor for every channel is the one-channel case of the same product.
        applyChannelAffine(inputs[0].data, output.data, count: output.count, multiplier: multiplier, offset: offset)
    }
}

/// Keras `Rescaling`: `x * scale + offset`, with scalars or one value per channel.
public final class Rescaling: Layer {
    public let name: String
    /// Multiplier: one value, or one per channel.
    public let scale: [Float]
    /// Added after scaling: one value, or one per channel.
    public let offset: [Float]

    /// Creates a rescaling layer with scalar scale and offset.
    public convenience init(name: String, scale: Float, offset: Float = 0) {
        self.init(name: name, scales: [scale], offsets: [offset])
    }

    /// Creates a rescaling layer with per-channel (or single-element) scale and offset.
    public init(name: String, scales: [Float], offsets: [Float]) {
        self.name = name
        self.scale = scales
        self.offset = offsets
    }

    public func outputShape(inputShapes: [[Int]]) throws -> [Int] {
        let channels = inputShapes[0].last ?? 1
        for values in [scale, offset] where values.count != 1 && channels >= 0 && values.count != channels {
            throw EngineError.incompatibleShapes(layer: name, detail: "\(values.count) rescaling values for \(channels) channels")
        }
        return inputShapes[0]
    }

    public func forward(_ inputs: [ActivationView], into output: MutableActivationView, scratch: UnsafeMutablePointer<Float>) {
        let channels = output.shape.last ?? 1
        let multiplier = scale.count == 1 ? [Float](repeating: scale[0], count: channels) : scale
        let shift = offset.count == 1 ? [Float](repeating: offset[0], count: channels) : offset
        applyChannelAffine(inputs[0].data, output.data, count: output.count, multiplier: multiplier, offset: shift)
    }
}
