import Foundation
import TLTensor

/// `keras.applications.EfficientNetV2B0` … `B3`, `S`, `M`, `L` (Tan & Le 2021), with Keras'
/// layer names (`stem_conv`, `block1a_project_conv`, `block4a_se_reduce`, …, `top_conv`,
/// `predictions`).
///
/// With `includePreprocessing` (Keras' default) the B variants start with `Rescaling(1/255)` and
/// a `Normalization` configured with ImageNet mean and variance (no weights); S, M and L start
/// with `Rescaling(1/128, offset: -1)`.
public enum EfficientNetV2 {
    /// The published variants.
    public enum Variant: String, Sendable, CaseIterable {
        case b0, b1, b2, b3, s, m, l

        /// `(width, depth, default size)` as `keras.applications` defines them.
        public var coefficients: (width: Double, depth: Double, size: Int) {
            switch self {
            case .b0: return (1.0, 1.0, 224)
            case .b1: return (1.0, 1.1, 240)
            case .b2: return (1.1, 1.2, 260)
            case .b3: return (1.2, 1.4, 300)
            case .s: return (1.0, 1.0, 384)
            case .m: return (1.0, 1.0, 480)
            case .l: return (1.0, 1.0, 480)
            }
        }

        /// Whether the variant is one of the small B models (their stages and preprocessing differ).
        public var isB: Bool { rawValue.hasPrefix("b") }

        /// The stage table of Keras' `DEFAULT_BLOCKS_ARGS` (B1–B3 share B0's).
        var stages: [Stage] {
            switch self {
            case .b0, .b1, .b2, .b3: return EfficientNetV2.bStages
            case .s: return EfficientNetV2.sStages
            case .m: return EfficientNetV2.mStages
            case .l: return EfficientNetV2.lStages
            }
        }
    }

    /// One stage of `DEFAULT_BLOCKS_ARGS` (all kernels are 3×3).
    struct Stage {
        var repeats: Int, filtersIn: Int, filtersOut: Int, expansion: Int, squeezeExcite: Bool, stride: Int, fused: Bool
        init(_ repeats: Int, _ filtersIn: Int, _ filtersOut: Int, _ expansion: Int, _ squeezeExcite: Bool, _ stride: Int, _ fused: Bool) {
            (self.repeats, self.filtersIn, self.filtersOut, self.expansion) = (repeats, filtersIn, filtersOut, expansion)
            (self.squeezeExcite, self.stride, self.fused) = (squeezeExcite, stride, fused)
        }
    }

    static let bStages = [Stage(1, 32, 16, 1, false, 1, true), Stage(2, 16, 32, 4, false, 2, true),
                          Stage(2, 32, 48, 4, false, 2, true), Stage(3, 48, 96, 4, true, 2, false),
                          Stage(5, 96, 112, 6, true, 1, false), Stage(8, 112, 192, 6, true, 2, false)]
    static let sStages = [Stage(2, 24, 24, 1, false, 1, true), Stage(4, 24, 48, 4, false, 2, true),
                          Stage(4, 48, 64, 4, false, 2, true), Stage(6, 64, 128, 4, true, 2, false),
                          Stage(9, 128, 160, 6, true, 1, false), Stage(15, 160, 256, 6, true, 2, false)]
    static let mStages = [Stage(3, 24, 24, 1, false, 1, true), Stage(5, 24, 48, 4, false, 2, true),
                          Stage(5, 48, 80, 4, false, 2, true), Stage(7, 80, 160, 4, true, 2, false),
                          Stage(14, 160, 176, 6, true, 1, false), Stage(18, 176, 304, 6, true, 2, false),
                          Stage(5, 304, 512, 6, true, 1, false)]
    static let lStages = [Stage(4, 32, 32, 1, false, 1, true), Stage(7, 32, 64, 4, false, 2, true),
                          Stage(7, 64, 96, 4, false, 2, true), Stage(10, 96, 192, 4, true, 2, false),
                          Stage(19, 192, 224, 6, true, 1, false), Stage(25, 224, 384, 6, true, 2, false),
                          Stage(7, 384, 640, 6, true, 1, false)]

    /// Keras' `round_filters` for V2 (minimum depth 8, divisor 8, no 10% correction).
    static func roundFilters(_ filters: Int, width: Double) -> Int {
        makeDivisible(Double(filters) * width, correctingDown: false)
    }

    /// Builds a named variant.
    /// - Parameters:
    ///   - variant: B0 … B3, S, M, L.
    ///   - includePreprocessing: whether the rescaling/normalization layers start the model.
    ///   - options: Keras constructor options; with the top the input defaults to the variant's
    ///     size, without it to any size.
    public static func build(_ variant: Variant, includePreprocessing: Bool = true,
                             options: ApplicationOptions = .init()) throws -> Graph {
        let c = variant.coefficients
        return try build(variant: variant, width: c.width, depth: c.depth, includePreprocessing: includePreprocessing,
                         options: options)
    }

    /// Builds a variant's stage table with any coefficients (Keras' internal `EfficientNetV2(...)`).
    public static func build(variant: Variant, width: Double, depth: Double, includePreprocessing: Bool = true,
                             options: ApplicationOptions = .init()) throws -> Graph {
        let size = variant.coefficients.size
        let shape = options.inputShape ?? (options.includeTop ? [size, size, 3] : [-1, -1, 3])
        let builder = GraphBuilder()
        var x = builder.input(shape: shape, name: "input_1")
        if includePreprocessing {
            if variant.isB && shape[2] == 3 {
                x = try builder.rescaling(x, scale: 1 / 255, name: "rescaling")
                let mean: [Float] = [0.485, 0.456, 0.406]
                let variance = [0.229, 0.224, 0.225].map { Float($0 * $0) }
                x = try builder.apply(Normalization(name: "normalization", mean: mean, variance: variance), to: [x])
            } else {
                x = try builder.rescaling(x, scale: 1 / 128, offset: -1, name: "rescaling")
            }
        }
        let stages = variant.stages
        x = try builder.conv2D(x, filters: roundFilters(stages[0].filtersIn, width: width), kernelSize: 3, strides: 2,
                               padding: .same, useBias: false, name: "stem_conv")
        x = try builder.batchNormalization(x, epsilon: 1e-3, name: "stem_bn")
        x = try builder.activation(x, .swish, name: "stem_activation")
        for (index, stage) in stages.enumerated() {
            var filtersIn = roundFilters(stage.filtersIn, width: width)
            let filtersOut = roundFilters(stage.filtersOut, width: width)
            for repeatIndex in 0..<EfficientNet.roundRepeats(stage.repeats, depth: depth) {
                let letter = String(UnicodeScalar(UInt8(97 + repeatIndex)))
                let name = "block\(index + 1)\(letter)_"
                let stride = repeatIndex == 0 ? stage.stride : 1
                if stage.fused {
                    x = try fusedBlock(builder, x, filtersIn: filtersIn, filtersOut: filtersOut, expansion: stage.expansion,
                                       stride: stride, squeezeExcite: stage.squeezeExcite, name: name)
                } else {
                    x = try block(builder, x, filtersIn: filtersIn, filtersOut: filtersOut, expansion: stage.expansion,
                                  stride: stride, squeezeExcite: stage.squeezeExcite, name: name)
                }
                filtersIn = filtersOut
            }
        }
        x = try builder.conv2D(x, filters: roundFilters(1280, width: width), kernelSize: 1, padding: .same,
                               useBias: false, name: "top_conv")
        x = try builder.batchNormalization(x, epsilon: 1e-3, name: "top_bn")
        x = try builder.activation(x, .swish, name: "top_activation")
        x = try builder.applicationHead(x, options: options, top: .pooled(dropoutName: "top_dropout"),
                                        averageName: "avg_pool", maxName: "max_pool")
        return try builder.build(outputs: [x], name: "efficientnetv2-\(variant.rawValue)")
    }

    /// Keras' `MBConvBlock`.
    private static func block(_ builder: GraphBuilder, _ inputs: GraphTensor, filtersIn: Int, filtersOut: Int,
                              expansion: Int, stride: Int, squeezeExcite useSqueezeExcite: Bool, name: String) throws -> GraphTensor {
        var x = inputs
        if expansion != 1 {
            x = try builder.conv2D(x, filters: filtersIn * expansion, kernelSize: 1, padding: .same, useBias: false,
                                   name: "\(name)expand_conv")
            x = try builder.batchNormalization(x, epsilon: 1e-3, name: "\(name)expand_bn")
            x = try builder.activation(x, .swish, name: "\(name)expand_activation")
        }
        x = try builder.depthwiseConv2D(x, kernelSize: 3, strides: stride, padding: .same, useBias: false, name: "\(name)dwconv2")
        x = try builder.batchNormalization(x, epsilon: 1e-3, name: "\(name)bn")
        x = try builder.activation(x, .swish, name: "\(name)activation")
        if useSqueezeExcite {
            x = try squeezeExcite(builder, x, reducedFilters: max(1, Int(Double(filtersIn) * 0.25)), name: name)
        }
        x = try builder.conv2D(x, filters: filtersOut, kernelSize: 1, padding: .same, useBias: false, name: "\(name)project_conv")
        x = try builder.batchNormalization(x, epsilon: 1e-3, name: "\(name)project_bn")
        return try residual(builder, x, inputs: inputs, stride: stride, filtersIn: filtersIn, filtersOut: filtersOut, name: name)
    }

    /// Keras' `FusedMBConvBlock`: a full 3×3 convolution replaces expand + depthwise.
    private static func fusedBlock(_ builder: GraphBuilder, _ inputs: GraphTensor, filtersIn: Int, filtersOut: Int,
                                   expansion: Int, stride: Int, squeezeExcite useSqueezeExcite: Bool, name: String) throws -> GraphTensor {
        var x = inputs
        if expansion != 1 {
            x = try builder.conv2D(x, filters: filtersIn * expansion, kernelSize: 3, strides: stride, padding: .same,
                                   useBias: false, name: "\(name)expand_conv")
            x = try builder.batchNormalization(x, epsilon: 1e-3, name: "\(name)expand_bn")
            x = try builder.activation(x, .swish, name: "\(name)expand_activation")
        }
        if useSqueezeExcite {
            x = try squeezeExcite(builder, x, reducedFilters: max(1, Int(Double(filtersIn) * 0.25)), name: name)
        }
        x = try builder.conv2D(x, filters: filtersOut, kernelSize: expansion == 1 ? 3 : 1,
                               strides: expansion == 1 ? stride : 1, padding: .same, useBias: false,
                               name: "\(name)project_conv")
        x = try builder.batchNormalization(x, epsilon: 1e-3, name: "\(name)project_bn")
        if expansion == 1 {
            x = try builder.activation(x, .swish, name: "\(name)project_activation")
        }
        return try residual(builder, x, inputs: inputs, stride: stride, filtersIn: filtersIn, filtersOut: filtersOut, name: name)
    }

    private static func residual(_ builder: GraphBuilder, _ x: GraphTensor, inputs: GraphTensor, stride: Int,
                                 filtersIn: Int, filtersOut: Int, name: String) throws -> GraphTensor {
        guard stride == 1 && filtersIn == filtersOut else { return x }
        let dropped = try builder.dropout(x, name: "\(name)drop")
        return try builder.add([dropped, inputs], name: "\(name)add")
    }
}

// MARK: - The family

extension EfficientNetV2 {
    /// EfficientNetV2 B0…B3, S, M, L.
    public struct Family: ArchitectureFamily {
        public var variant: Variant
        public var includePreprocessing: Bool

        public static let nameForms = ["efficientnetv2b0…b3", "efficientnetv2s/m/l"]

        public static func parse(compactName: String, original: String) throws -> Family? {
            guard compactName.hasPrefix("efficientnetv2"),
                  let variant = Variant(rawValue: String(compactName.dropFirst("efficientnetv2".count))) else { return nil }
            return Family(variant: variant, includePreprocessing: true)
        }

        /// The variant whose stem width, top width and block count match the file.
        public static func detect(in weights: WeightSource, layers: Set<String>) throws -> Family? {
            guard layers.contains("stem_conv") && layers.contains("top_conv") && !layers.contains("block1a_dwconv") else { return nil }
            let stem = weights.shape(layer: "stem_conv", weight: "kernel")?.last ?? 0
            let top = weights.shape(layer: "top_conv", weight: "kernel")?.last ?? 0
            let blocks = weights.layerNames.filter { $0.hasPrefix("block") && $0.hasSuffix("_project_conv") }.count
            for variant in Variant.allCases {
                let c = variant.coefficients
                let stages = variant.stages
                let expectedBlocks = stages.reduce(0) { $0 + EfficientNet.roundRepeats($1.repeats, depth: c.depth) }
                if EfficientNetV2.roundFilters(stages[0].filtersIn, width: c.width) == stem,
                   EfficientNetV2.roundFilters(1280, width: c.width) == top, expectedBlocks == blocks {
                    return Family(variant: variant, includePreprocessing: true)
                }
            }
            throw EngineError.unknownArchitecture("EfficientNetV2 with stem \(stem), top \(top) and \(blocks) blocks matches no B0…B3/S/M/L")
        }

        public func build(options: ApplicationOptions) throws -> Graph {
            try EfficientNetV2.build(variant, includePreprocessing: includePreprocessing, options: options)
        }

        public var description: String { "efficientnetv2-\(variant.rawValue)" }
    }
}

extension Architecture {
    /// EfficientNetV2 B0…B3, S, M, L.
    public static func efficientNetV2(_ variant: EfficientNetV2.Variant, includePreprocessing: Bool) -> Architecture {
        Architecture(EfficientNetV2.Family(variant: variant, includePreprocessing: includePreprocessing))
    }
}
