import Foundation
import TLTensor

/// `keras.applications.MobileNetV2` (Sandler et al. 2018), with Keras' layer names:
/// `Conv1`, `bn_Conv1`, `Conv1_relu`, `expanded_conv_depthwise`, …, `block_16_project_BN`,
/// `Conv_1`, `Conv_1_bn`, `out_relu`, `predictions`.
public enum MobileNetV2 {
    /// The width multipliers Keras publishes weights for.
    public static let alphas: [Double] = [0.35, 0.5, 0.75, 1.0, 1.3, 1.4]

    /// `(filters, stride, expansion)` of blocks 0…16.
    static let blocks: [(filters: Int, stride: Int, expansion: Int)] = [
        (16, 1, 1), (24, 2, 6), (24, 1, 6), (32, 2, 6), (32, 1, 6), (32, 1, 6),
        (64, 2, 6), (64, 1, 6), (64, 1, 6), (64, 1, 6), (96, 1, 6), (96, 1, 6), (96, 1, 6),
        (160, 2, 6), (160, 1, 6), (160, 1, 6), (320, 1, 6),
    ]

    /// Keras' `_make_divisible` (see the shared `makeDivisible`).
    static func makeDivisible(_ value: Double, _ divisor: Int = 8) -> Int {
        TLEngine.makeDivisible(value, divisor: divisor)
    }

    /// Builds the network.
    /// - Parameters:
    ///   - alpha: width multiplier (any positive value; Keras publishes `alphas`).
    ///   - options: Keras constructor options; input defaults to 224×224×3.
    public static func build(alpha: Double = 1.0, options: ApplicationOptions = .init()) throws -> Graph {
        let shape = options.inputShape ?? [224, 224, 3]
        let builder = GraphBuilder()
        var x = builder.input(shape: shape, name: "input_1")
        x = try builder.conv2D(x, filters: makeDivisible(32 * alpha), kernelSize: 3, strides: 2, padding: .same,
                               useBias: false, name: "Conv1")
        x = try builder.batchNormalization(x, epsilon: 1e-3, momentum: 0.999, name: "bn_Conv1")
        x = try builder.relu(x, maxValue: 6, name: "Conv1_relu")
        for (id, block) in blocks.enumerated() {
            x = try invertedResidual(builder, x, expansion: block.expansion, stride: block.stride, alpha: alpha,
                                     filters: block.filters, id: id)
        }
        let lastFilters = alpha > 1 ? makeDivisible(1280 * alpha) : 1280
        x = try builder.conv2D(x, filters: lastFilters, kernelSize: 1, useBias: false, name: "Conv_1")
        x = try builder.batchNormalization(x, epsilon: 1e-3, momentum: 0.999, name: "Conv_1_bn")
        x = try builder.relu(x, maxValue: 6, name: "out_relu")
        x = try builder.applicationHead(x, options: options, averageName: "global_average_pooling2d",
                                        maxName: "global_max_pooling2d")
        let rows = shape[0] > 0 ? shape[0] : 224
        return try builder.build(outputs: [x], name: "mobilenetv2_\(String(format: "%.2f", alpha))_\(rows)")
    }

    private static func invertedResidual(_ builder: GraphBuilder, _ inputs: GraphTensor, expansion: Int, stride: Int,
                                         alpha: Double, filters: Int, id: Int) throws -> GraphTensor {
        let inputChannels = builder.channels(of: inputs)
        let pointwiseFilters = makeDivisible(Double(Int(Double(filters) * alpha)))
        var x = inputs
        var prefix = "block_\(id)_"
        if id > 0 {
            x = try builder.conv2D(x, filters: expansion * inputChannels, kernelSize: 1, padding: .same,
                                   useBias: false, name: "\(prefix)expand")
            x = try builder.batchNormalization(x, epsilon: 1e-3, momentum: 0.999, name: "\(prefix)expand_BN")
            x = try builder.relu(x, maxValue: 6, name: "\(prefix)expand_relu")
        } else {
            prefix = "expanded_conv_"
        }
        if stride == 2 {
            x = try builder.zeroPadding2D(x, correctPad(builder.shape(of: x), kernelSize: 3), name: "\(prefix)pad")
        }
        x = try builder.depthwiseConv2D(x, kernelSize: 3, strides: stride, padding: stride == 1 ? .same : .valid,
                                        useBias: false, name: "\(prefix)depthwise")
        x = try builder.batchNormalization(x, epsilon: 1e-3, momentum: 0.999, name: "\(prefix)depthwise_BN")
        x = try builder.relu(x, maxValue: 6, name: "\(prefix)depthwise_relu")
        x = try builder.conv2D(x, filters: pointwiseFilters, kernelSize: 1, padding: .same, useBias: false,
                               name: "\(prefix)project")
        x = try builder.batchNormalization(x, epsilon: 1e-3, momentum: 0.999, name: "\(prefix)project_BN")
        if inputChannels == pointwiseFilters && stride == 1 {
            return try builder.add([inputs, x], name: "\(prefix)add")
        }
        return x
    }
}

/// Keras `imagenet_utils.correct_pad`: the zero padding before a stride-2 `valid` convolution that
/// reproduces TensorFlow's `same` alignment; unknown sizes are treated as even, as Keras does.
func correctPad(_ shape: [Int], kernelSize: Int) -> ((Int, Int), (Int, Int)) {
    let adjustRows = shape[0] < 0 ? 1 : 1 - shape[0] % 2
    let adjustColumns = shape[1] < 0 ? 1 : 1 - shape[1] % 2
    let correct = kernelSize / 2
    return ((correct - adjustRows, correct), (correct - adjustColumns, correct))
}

// MARK: - The family

extension MobileNetV2 {
    /// MobileNetV2 with width multiplier `alpha` (0: read from the weights).
    public struct Family: ArchitectureFamily {
        /// The width multiplier; 0 until resolved from the weights.
        public var alpha: Double

        public static let nameForms = ["mobilenetv2[_ALPHA]"]

        public static func parse(compactName: String, original: String) throws -> Family? {
            guard compactName.hasPrefix("mobilenetv2") else { return nil }
            return Family(alpha: try Architecture.width(compactName.dropFirst("mobilenetv2".count), family: "MobileNetV2", original: original))
        }

        public static func detect(in weights: WeightSource, layers: Set<String>) throws -> Family? {
            guard layers.contains("Conv1") && layers.contains("block_16_project") else { return nil }
            return Family(alpha: 0)
        }

        /// The published alpha whose `block_16_project` has the file's output channels.
        public func resolved(using weights: WeightSource) throws -> Family {
            guard alpha == 0 else { return self }
            guard let shape = weights.shape(layer: "block_16_project", weight: "kernel"), shape.count == 4 else {
                throw EngineError.unknownArchitecture("MobileNetV2-like file without block_16_project/kernel")
            }
            return Family(alpha: try Self.alpha(projectFilters: shape[3]))
        }

        /// The published alpha whose `block_16_project` has `projectFilters` outputs.
        static func alpha(projectFilters: Int) throws -> Double {
            guard let found = MobileNetV2.alphas.first(where: { MobileNetV2.makeDivisible(Double(Int(320 * $0))) == projectFilters }) else {
                throw EngineError.unknownArchitecture("MobileNetV2 with \(projectFilters) filters in block_16_project matches no published alpha")
            }
            return found
        }

        public func build(options: ApplicationOptions) throws -> Graph {
            try MobileNetV2.build(alpha: alpha == 0 ? 1 : alpha, options: options)
        }

        /// `correct_pad` before each stride-2 depthwise convolution depends on the image size.
        public var paddingDependsOnInputSize: Bool { true }
        public var description: String { "mobilenetv2_\(String(format: "%.2f", alpha))" }
    }
}

extension Architecture {
    /// MobileNetV2 with width multiplier `alpha` (0: read from the weights).
    public static func mobileNetV2(alpha: Double) -> Architecture { Architecture(MobileNetV2.Family(alpha: alpha)) }
}
