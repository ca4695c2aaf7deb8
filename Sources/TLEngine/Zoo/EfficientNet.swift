import Foundation
import TLTensor

/// `keras.applications.EfficientNetB0` … `B7` (Tan & Le 2019), with Keras' layer names
/// (`stem_conv`, `block1a_dwconv`, `block2b_se_reduce`, …, `top_conv`, `predictions`).
///
/// The model starts with `Rescaling(1/255)` and an adapted `Normalization` whose `mean`,
/// `variance` and `count` are weights. The published ImageNet files store the standard
/// deviation where the variance belongs, and Keras (tf.keras ≥ 2.13 and Keras 3) compensates
/// with a second `Rescaling(1/√stddev)` whenever it loads them: `imagenetScaling` adds it.
public enum EfficientNet {
    /// B0 … B7.
    public enum Variant: Int, Sendable, CaseIterable {
        case b0, b1, b2, b3, b4, b5, b6, b7

        /// `(width, depth, default size, dropout)` as `keras.applications` defines them.
        public var coefficients: (width: Double, depth: Double, size: Int, dropout: Double) {
            switch self {
            case .b0: return (1.0, 1.0, 224, 0.2)
            case .b1: return (1.0, 1.1, 240, 0.2)
            case .b2: return (1.1, 1.2, 260, 0.3)
            case .b3: return (1.2, 1.4, 300, 0.3)
            case .b4: return (1.4, 1.8, 380, 0.4)
            case .b5: return (1.6, 2.2, 456, 0.4)
            case .b6: return (1.8, 2.6, 528, 0.5)
            case .b7: return (2.0, 3.1, 600, 0.5)
            }
        }

        /// `b0` … `b7`.
        public var name: String { "b\(rawValue)" }
    }

    /// The standard deviations the published files store as `normalization/variance`.
    public static let imagenetStandardDeviation: [Float] = [0.229, 0.224, 0.225]

    /// One stage of `DEFAULT_BLOCKS_ARGS` (every stage has squeeze-excite ratio 0.25 and id skip).
    struct Stage {
        var kernelSize: Int, repeats: Int, filtersIn: Int, filtersOut: Int, expansion: Int, stride: Int
    }

    static let stages: [Stage] = [
        Stage(kernelSize: 3, repeats: 1, filtersIn: 32, filtersOut: 16, expansion: 1, stride: 1),
        Stage(kernelSize: 3, repeats: 2, filtersIn: 16, filtersOut: 24, expansion: 6, stride: 2),
        Stage(kernelSize: 5, repeats: 2, filtersIn: 24, filtersOut: 40, expansion: 6, stride: 2),
        Stage(kernelSize: 3, repeats: 3, filtersIn: 40, filtersOut: 80, expansion: 6, stride: 2),
        Stage(kernelSize: 5, repeats: 3, filtersIn: 80, filtersOut: 112, expansion: 6, stride: 1),
        Stage(kernelSize: 5, repeats: 4, filtersIn: 112, filtersOut: 192, expansion: 6, stride: 2),
        Stage(kernelSize: 3, repeats: 1, filtersIn: 192, filtersOut: 320, expansion: 6, stride: 1),
    ]

    /// Keras' `round_filters`: width-scaled, rounded to a multiple of 8, never 10% below.
    static func roundFilters(_ filters: Int, width: Double) -> Int { makeDivisible(Double(filters) * width) }

    /// Keras' `round_repeats`: `ceil(depth * repeats)`.
    static func roundRepeats(_ repeats: Int, depth: Double) -> Int { Int((depth * Double(repeats)).rounded(.up)) }

    /// Builds a named variant.
    /// - Parameters:
    ///   - variant: B0 … B7.
    ///   - imagenetScaling: add Keras' `Rescaling(1/√stddev)` after the normalization (true for
    ///     weights that descend from the published ImageNet files).
    ///   - options: Keras constructor options; with the top the input defaults to the variant's
    ///     size, without it to any size.
    public static func build(_ variant: Variant, imagenetScaling: Bool = false,
                             options: ApplicationOptions = .init()) throws -> Graph {
        let c = variant.coefficients
        return try build(width: c.width, depth: c.depth, defaultSize: c.size, imagenetScaling: imagenetScaling,
                         options: options, name: "efficientnet\(variant.name)")
    }

    /// Builds the family's network for any coefficients (Keras' internal `EfficientNet(...)`).
    public static func build(width: Double, depth: Double, defaultSize: Int = 224, imagenetScaling: Bool = false,
                             options: ApplicationOptions = .init(), name: String = "efficientnet") throws -> Graph {
        let shape = options.inputShape ?? (options.includeTop ? [defaultSize, defaultSize, 3] : [-1, -1, 3])
        let builder = GraphBuilder()
        var x = builder.input(shape: shape, name: "input_1")
        x = try builder.rescaling(x, scale: 1 / 255, name: "rescaling")
        x = try builder.apply(Normalization(name: "normalization", mean: nil, variance: nil), to: [x])
        if imagenetScaling {
            let factors = imagenetStandardDeviation.map { 1 / $0.squareRoot() }
            x = try builder.apply(Rescaling(name: "rescaling_1", scales: factors, offsets: [0]), to: [x])
        }
        x = try builder.zeroPadding2D(x, correctPad(builder.shape(of: x), kernelSize: 3), name: "stem_conv_pad")
        x = try builder.conv2D(x, filters: roundFilters(32, width: width), kernelSize: 3, strides: 2, useBias: false,
                               name: "stem_conv")
        x = try builder.batchNormalization(x, epsilon: 1e-3, name: "stem_bn")
        x = try builder.activation(x, .swish, name: "stem_activation")
        for (index, stage) in stages.enumerated() {
            var filtersIn = roundFilters(stage.filtersIn, width: width)
            let filtersOut = roundFilters(stage.filtersOut, width: width)
            for repeatIndex in 0..<roundRepeats(stage.repeats, depth: depth) {
                let letter = String(UnicodeScalar(UInt8(97 + repeatIndex)))
                x = try block(builder, x, filtersIn: filtersIn, filtersOut: filtersOut, kernelSize: stage.kernelSize,
                              stride: repeatIndex == 0 ? stage.stride : 1, expansion: stage.expansion,
                              name: "block\(index + 1)\(letter)_")
                filtersIn = filtersOut
            }
        }
        x = try builder.conv2D(x, filters: roundFilters(1280, width: width), kernelSize: 1, padding: .same,
                               useBias: false, name: "top_conv")
        x = try builder.batchNormalization(x, epsilon: 1e-3, name: "top_bn")
        x = try builder.activation(x, .swish, name: "top_activation")
        x = try builder.applicationHead(x, options: options, top: .pooled(dropoutName: "top_dropout"),
                                        averageName: "avg_pool", maxName: "max_pool")
        return try builder.build(outputs: [x], name: name)
    }

    /// Keras' `block`: expand, depthwise, squeeze-excite (ratio 0.25), project, residual.
    private static func block(_ builder: GraphBuilder, _ inputs: GraphTensor, filtersIn: Int, filtersOut: Int,
                              kernelSize: Int, stride: Int, expansion: Int, name: String) throws -> GraphTensor {
        let filters = filtersIn * expansion
        var x = inputs
        if expansion != 1 {
            x = try builder.conv2D(x, filters: filters, kernelSize: 1, padding: .same, useBias: false, name: "\(name)expand_conv")
            x = try builder.batchNormalization(x, epsilon: 1e-3, name: "\(name)expand_bn")
            x = try builder.activation(x, .swish, name: "\(name)expand_activation")
        }
        if stride == 2 {
            x = try builder.zeroPadding2D(x, correctPad(builder.shape(of: x), kernelSize: kernelSize), name: "\(name)dwconv_pad")
        }
        x = try builder.depthwiseConv2D(x, kernelSize: kernelSize, strides: stride, padding: stride == 2 ? .valid : .same,
                                        useBias: false, name: "\(name)dwconv")
        x = try builder.batchNormalization(x, epsilon: 1e-3, name: "\(name)bn")
        x = try builder.activation(x, .swish, name: "\(name)activation")
        x = try squeezeExcite(builder, x, reducedFilters: max(1, Int(Double(filtersIn) * 0.25)), name: name)
        x = try builder.conv2D(x, filters: filtersOut, kernelSize: 1, padding: .same, useBias: false, name: "\(name)project_conv")
        x = try builder.batchNormalization(x, epsilon: 1e-3, name: "\(name)project_bn")
        if stride == 1 && filtersIn == filtersOut {
            x = try builder.dropout(x, name: "\(name)drop")
            x = try builder.add([x, inputs], name: "\(name)add")
        }
        return x
    }
}

/// The squeeze-and-excite of EfficientNet and EfficientNetV2 blocks: `se_squeeze` (global
/// average), `se_reshape`, `se_reduce` (swish), `se_expand` (sigmoid), `se_excite` (multiply).
func squeezeExcite(_ builder: GraphBuilder, _ x: GraphTensor, reducedFilters: Int, name: String) throws -> GraphTensor {
    let filters = builder.channels(of: x)
    var se = try builder.globalAveragePooling2D(x, name: "\(name)se_squeeze")
    se = try builder.reshape(se, to: [1, 1, filters], name: "\(name)se_reshape")
    se = try builder.conv2D(se, filters: reducedFilters, kernelSize: 1, padding: .same, activation: .swish, name: "\(name)se_reduce")
    se = try builder.conv2D(se, filters: filters, kernelSize: 1, padding: .same, activation: .sigmoid, name: "\(name)se_expand")
    return try builder.apply(ElementwiseMerge(name: "\(name)se_excite", operation: .multiply), to: [x, se])
}

// MARK: - The family

extension EfficientNet {
    /// EfficientNet B0…B7; `imagenetScaling` adds Keras' fix-up for the published ImageNet weights.
    public struct Family: ArchitectureFamily {
        public var variant: Variant
        public var imagenetScaling: Bool

        public static let nameForms = ["efficientnetb0…b7"]

        public static func parse(compactName: String, original: String) throws -> Family? {
            guard compactName.hasPrefix("efficientnetb"), let number = Int(compactName.dropFirst("efficientnetb".count)),
                  let variant = Variant(rawValue: number) else { return nil }
            return Family(variant: variant, imagenetScaling: false)
        }

        /// B0…B7 from the top width and the number of blocks.
        public static func detect(in weights: WeightSource, layers: Set<String>) throws -> Family? {
            guard layers.contains("stem_conv") && layers.contains("top_conv") && layers.contains("block1a_dwconv") else { return nil }
            let top = weights.shape(layer: "top_conv", weight: "kernel")?.last ?? 0
            let blocks = weights.layerNames.filter { $0.hasPrefix("block") && $0.hasSuffix("_project_conv") }.count
            for variant in Variant.allCases {
                let c = variant.coefficients
                let expectedBlocks = EfficientNet.stages.reduce(0) { $0 + EfficientNet.roundRepeats($1.repeats, depth: c.depth) }
                if EfficientNet.roundFilters(1280, width: c.width) == top && expectedBlocks == blocks {
                    return Family(variant: variant, imagenetScaling: false)
                }
            }
            throw EngineError.unknownArchitecture("EfficientNet with \(top) top_conv filters and \(blocks) blocks matches no B0…B7")
        }

        /// ImageNet rescaling when the `normalization` variance is ImageNet's.
        public func resolved(using weights: WeightSource) throws -> Family {
            let variance = (try? weights.tensor(layer: "normalization", weight: "variance"))?.scalars ?? []
            let imagenet = variance.count == 3 && zip(variance, EfficientNet.imagenetStandardDeviation).allSatisfy { abs($0 - $1) < 1e-6 }
            return Family(variant: variant, imagenetScaling: imagenet)
        }

        public func build(options: ApplicationOptions) throws -> Graph {
            try EfficientNet.build(variant, imagenetScaling: imagenetScaling, options: options)
        }

        public var description: String { "efficientnet\(variant.name)" }
    }
}

extension Architecture {
    /// EfficientNet B0…B7; `imagenetScaling` adds Keras' fix-up for the published ImageNet weights.
    public static func efficientNet(_ variant: EfficientNet.Variant, imagenetScaling: Bool) -> Architecture {
        Architecture(EfficientNet.Family(variant: variant, imagenetScaling: imagenetScaling))
    }
}
