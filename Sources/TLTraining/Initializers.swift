import Foundation
import TLEngine
import TLTensor

/// Keras' weight initializers, seeded: what a model built from a config (`model.to_json()`) or a
/// built-in spec starts from.
public enum Initializer: Sendable, Equatable {
    case glorotUniform, glorotNormal, heNormal, heUniform, lecunNormal, lecunUniform
    case zeros, ones
    /// `RandomNormal(mean, stddev)`.
    case randomNormal(mean: Float, standardDeviation: Float)
    /// `RandomUniform(minval, maxval)`.
    case randomUniform(minimum: Float, maximum: Float)

    /// The initializer of a Keras config's class name (`GlorotUniform`, `he_normal`), or nil.
    public init?(kerasName name: String) {
        switch name.replacingOccurrences(of: "_", with: "").lowercased() {
        case "glorotuniform": self = .glorotUniform
        case "glorotnormal": self = .glorotNormal
        case "henormal": self = .heNormal
        case "heuniform": self = .heUniform
        case "lecunnormal": self = .lecunNormal
        case "lecununiform": self = .lecunUniform
        case "zeros": self = .zeros
        case "ones": self = .ones
        case "randomnormal": self = .randomNormal(mean: 0, standardDeviation: 0.05)
        case "randomuniform": self = .randomUniform(minimum: -0.05, maximum: 0.05)
        default: return nil
        }
    }

    /// Values for a weight of `shape`, with Keras' fans (`receptive field · channels`).
    public func values(shape: [Int], random: inout SeededRandom) -> [Float] {
        let count = shape.reduce(1, *)
        let receptive = shape.count > 2 ? shape.dropLast(2).reduce(1, *) : 1
        let fanIn = Float(shape.count >= 2 ? shape[shape.count - 2] * receptive : (shape.first ?? 1))
        let fanOut = Float(shape.count >= 2 ? shape[shape.count - 1] * receptive : (shape.first ?? 1))
        func uniform(_ limit: Float) -> [Float] {
            Self.generated(count: count, random: &random) { random, out in
                for i in out.indices { out[i] = (random.unit() * 2 - 1) * limit }
            }
        }
        /// Keras' truncated normal: within two deviations, the deviation corrected for the cut.
        func truncated(_ deviation: Float) -> [Float] {
            let corrected = deviation / 0.879_625_661
            return Self.generated(count: count, random: &random) { random, out in
                var i = 0
                while i < out.count {
                    // Box–Muller gives two independent normals per draw; both are used.
                    let (a, b) = Self.gaussianPair(&random)
                    if abs(a) <= 2 { out[i] = a * corrected; i += 1 }
                    if i < out.count && abs(b) <= 2 { out[i] = b * corrected; i += 1 }
                }
            }
        }
        switch self {
        case .glorotUniform: return uniform((6 / (fanIn + fanOut)).squareRoot())
        case .glorotNormal: return truncated((2 / (fanIn + fanOut)).squareRoot())
        case .heNormal: return truncated((2 / fanIn).squareRoot())
        case .heUniform: return uniform((6 / fanIn).squareRoot())
        case .lecunNormal: return truncated((1 / fanIn).squareRoot())
        case .lecunUniform: return uniform((3 / fanIn).squareRoot())
        case .zeros: return [Float](repeating: 0, count: count)
        case .ones: return [Float](repeating: 1, count: count)
        case let .randomNormal(mean, deviation):
            return Self.generated(count: count, random: &random) { random, out in
                var i = 0
                while i < out.count {
                    let (a, b) = Self.gaussianPair(&random)
                    out[i] = mean + a * deviation; i += 1
                    if i < out.count { out[i] = mean + b * deviation; i += 1 }
                }
            }
        case let .randomUniform(low, high):
            return Self.generated(count: count, random: &random) { random, out in
                for i in out.indices { out[i] = low + random.unit() * (high - low) }
            }
        }
    }

    /// `count` values made by `fill` in chunks of 2¹⁸, each chunk from its own generator seeded by
    /// one draw of `random` and the chunk's index, so the chunks fill on all cores and the values
    /// do not depend on the thread count.
    private static func generated(count: Int, random: inout SeededRandom,
                                  _ fill: (inout SeededRandom, UnsafeMutableBufferPointer<Float>) -> Void) -> [Float] {
        let chunk = 1 << 18, base = random.next()
        return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            let start = buffer.baseAddress
            parallelFor((count + chunk - 1) / chunk, work: count * 16) { index in
                var generator = SeededRandom(seed: base &+ UInt64(index) &* 0x9E37_79B9_7F4A_7C15)
                let first = index * chunk, length = min(chunk, count - first)
                fill(&generator, UnsafeMutableBufferPointer(start: start! + first, count: length))
            }
            initialized = count
        }
    }

    private static func gaussianPair(_ random: inout SeededRandom) -> (Float, Float) {
        let u = max(random.unit(), 1e-7), v = random.unit()
        let radius = (-2 * log(u)).squareRoot(), angle = 2 * Float.pi * v
        return (radius * cos(angle), radius * sin(angle))
    }

}

extension Graph {
    /// Fresh weights for every layer, as Keras builds a model from its config: kernels from the
    /// layer's configured initializer (`kernelInitializers`, default glorot_uniform), biases and
    /// β zero, γ and moving variances one, moving means zero.
    public func initializeWeights(seed: UInt64, kernelInitializers: [String: Initializer] = [:]) throws {
        var random = SeededRandom(seed: seed)
        for (layer, node) in uniqueLayers {
            let specs = layer.expectedWeights(inputShapes: nodes[node].inputs.map { shapes[$0] })
            guard !specs.isEmpty else { continue }
            var weights: [String: Tensor] = [:]
            for spec in specs {
                let initializer: Initializer
                switch spec.name {
                case "kernel", "depthwise_kernel", "pointwise_kernel": initializer = kernelInitializers[layer.name] ?? .glorotUniform
                case "gamma", "moving_variance", "variance": initializer = .ones
                default: initializer = .zeros
                }
                weights[spec.name] = Tensor(shape: spec.shape, scalars: initializer.values(shape: spec.shape, random: &random))
            }
            layer.setWeights(weights)
        }
    }
}

/// Networks `tlhub train` builds from a name.
public enum BuiltInModels {
    /// The names `train --model` accepts.
    public static let names = ["alexnet"]

    /// AlexNet as the tutorials write it in Keras: Conv 96 11×11/4 valid → MaxPool 3/2 → Conv 256
    /// 5×5 same → MaxPool 3/2 → Conv 384 3×3 ×2 → Conv 256 3×3 → MaxPool 3/2 → Flatten → Dense
    /// 4096 ×2 → Dense 1000 → Dense `classes` softmax; ReLU, he_normal kernels, seeded.
    public static func alexNet(classes: Int, size: Int = 227, seed: UInt64) throws -> Graph {
        let builder = GraphBuilder()
        var x = builder.input(shape: [size, size, 3], name: "input")
        func conv(_ filters: Int, _ kernel: Int, stride: Int = 1, padding: Padding, _ name: String) throws {
            x = try builder.apply(Conv2D(name: name, filters: filters, kernelSize: (kernel, kernel), strides: (stride, stride),
                                         padding: padding, activation: .relu), to: [x])
        }
        func pool(_ name: String) throws {
            x = try builder.apply(Pooling2D(name: name, kind: .max, poolSize: (3, 3), strides: (2, 2)), to: [x])
        }
        try conv(96, 11, stride: 4, padding: .valid, "conv1")
        try pool("pool1")
        try conv(256, 5, padding: .same, "conv2")
        try pool("pool2")
        try conv(384, 3, padding: .same, "conv3")
        try conv(384, 3, padding: .same, "conv4")
        try conv(256, 3, padding: .same, "conv5")
        try pool("pool5")
        x = try builder.flatten(x, name: "flatten")
        for (index, units) in [4096, 4096, 1000].enumerated() {
            x = try builder.apply(Dense(name: "fc\(index + 6)", units: units, activation: .relu), to: [x])
        }
        x = try builder.apply(Dense(name: "predictions", units: classes, activation: .softmax), to: [x])
        let graph = try builder.build(outputs: [x], name: "alexnet")
        let kernels = Dictionary(uniqueKeysWithValues: graph.uniqueLayers.map { ($0.layer.name, Initializer.heNormal) })
        try graph.initializeWeights(seed: seed, kernelInitializers: kernels)
        return graph
    }
}
