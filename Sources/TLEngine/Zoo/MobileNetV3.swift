import Foundation
import TLTensor

/// `keras.applications.MobileNetV3Small` / `MobileNetV3Large` (Howard et al. 2019).
///
/// tf.keras (Keras 2), which wrote the published weights, and Keras 3 name the layers
/// differently (`Conv/BatchNorm`, `expanded_conv_1/expand/BatchNorm` vs `conv_bn`,
/// `expanded_conv_1_expand_bn`); `LayerNames` holds both tables and the builder uses one.
public enum MobileNetV3 {
    /// The two published sizes.
    public enum Size: String, Sendable, CaseIterable {
        /// 11 inverted-residual blocks, 1024-wide head.
        case small
        /// 15 inverted-residual blocks, 1280-wide head.
        case large
    }

    /// Which Keras version's layer names the graph uses (weights are looked up by them).
    public enum LayerNames: String, Sendable, CaseIterable {
        /// tf.keras 2 names, as in the published `.h5` files: `Conv`, `expanded_conv/depthwise/BatchNorm`.
        case keras2
        /// Keras 3 names: `conv`, `expanded_conv_depthwise_bn`.
        case keras3
    }

    /// Everything `keras.applications.MobileNetV3*` lets a caller choose besides the head options.
    public struct Configuration: Sendable, Hashable, CustomStringConvertible {
        /// Small or Large.
        public var size: Size
        /// Width multiplier (published: 0.75 and 1.0; 1.0 only for minimalistic).
        public var alpha: Double
        /// Minimalistic variant: 3×3 kernels, ReLU only, no squeeze-excite.
        public var minimalistic: Bool
        /// Whether the model starts with `Rescaling(1/127.5, offset: -1)` (Keras' default).
        public var includePreprocessing: Bool
        /// The layer-name flavour.
        public var layerNames: LayerNames

        /// Creates a configuration; the defaults are Keras' (with the published tf.keras names).
        public init(size: Size, alpha: Double = 1.0, minimalistic: Bool = false, includePreprocessing: Bool = true,
                    layerNames: LayerNames = .keras2) {
            self.size = size
            self.alpha = alpha
            self.minimalistic = minimalistic
            self.includePreprocessing = includePreprocessing
            self.layerNames = layerNames
        }

        public var description: String {
            "mobilenetv3\(size.rawValue)\(minimalistic ? "_minimalistic" : "")_\(String(format: "%.2f", alpha))"
        }
    }

    /// One inverted-residual block: expansion, output filters (before alpha), kernel, stride,
    /// squeeze-excite, and whether it uses the variant's activation (else ReLU).
    struct Block {
        var expansion: Double, filters: Int, kernelSize: Int?, stride: Int, squeezeExcite: Bool, variantActivation: Bool
    }

    // `kernelSize: nil` means the variant's kernel (5, or 3 when minimalistic).
    static let smallBlocks: [Block] = [
        Block(expansion: 1, filters: 16, kernelSize: 3, stride: 2, squeezeExcite: true, variantActivation: false),
        Block(expansion: 72.0 / 16, filters: 24, kernelSize: 3, stride: 2, squeezeExcite: false, variantActivation: false),
        Block(expansion: 88.0 / 24, filters: 24, kernelSize: 3, stride: 1, squeezeExcite: false, variantActivation: false),
        Block(expansion: 4, filters: 40, kernelSize: nil, stride: 2, squeezeExcite: true, variantActivation: true),
        Block(expansion: 6, filters: 40, kernelSize: nil, stride: 1, squeezeExcite: true, variantActivation: true),
        Block(expansion: 6, filters: 40, kernelSize: nil, stride: 1, squeezeExcite: true, variantActivation: true),
        Block(expansion: 3, filters: 48, kernelSize: nil, stride: 1, squeezeExcite: true, variantActivation: true),
        Block(expansion: 3, filters: 48, kernelSize: nil, stride: 1, squeezeExcite: true, variantActivation: true),
        Block(expansion: 6, filters: 96, kernelSize: nil, stride: 2, squeezeExcite: true, variantActivation: true),
        Block(expansion: 6, filters: 96, kernelSize: nil, stride: 1, squeezeExcite: true, variantActivation: true),
        Block(expansion: 6, filters: 96, kernelSize: nil, stride: 1, squeezeExcite: true, variantActivation: true),
    ]

    static let largeBlocks: [Block] = [
        Block(expansion: 1, filters: 16, kernelSize: 3, stride: 1, squeezeExcite: false, variantActivation: false),
        Block(expansion: 4, filters: 24, kernelSize: 3, stride: 2, squeezeExcite: false, variantActivation: false),
        Block(expansion: 3, filters: 24, kernelSize: 3, stride: 1, squeezeExcite: false, variantActivation: false),
        Block(expansion: 3, filters: 40, kernelSize: nil, stride: 2, squeezeExcite: true, variantActivation: false),
        Block(expansion: 3, filters: 40, kernelSize: nil, stride: 1, squeezeExcite: true, variantActivation: false),
        Block(expansion: 3, filters: 40, kernelSize: nil, stride: 1, squeezeExcite: true, variantActivation: false),
        Block(expansion: 6, filters: 80, kernelSize: 3, stride: 2, squeezeExcite: false, variantActivation: true),
        Block(expansion: 2.5, filters: 80, kernelSize: 3, stride: 1, squeezeExcite: false, variantActivation: true),
        Block(expansion: 2.3, filters: 80, kernelSize: 3, stride: 1, squeezeExcite: false, variantActivation: true),
        Block(expansion: 2.3, filters: 80, kernelSize: 3, stride: 1, squeezeExcite: false, variantActivation: true),
        Block(expansion: 6, filters: 112, kernelSize: 3, stride: 1, squeezeExcite: true, variantActivation: true),
        Block(expansion: 6, filters: 112, kernelSize: 3, stride: 1, squeezeExcite: true, variantActivation: true),
        Block(expansion: 6, filters: 160, kernelSize: nil, stride: 2, squeezeExcite: true, variantActivation: true),
        Block(expansion: 6, filters: 160, kernelSize: nil, stride: 1, squeezeExcite: true, variantActivation: true),
        Block(expansion: 6, filters: 160, kernelSize: nil, stride: 1, squeezeExcite: true, variantActivation: true),
    ]

    /// The blocks of a size.
    static func blocks(_ size: Size) -> [Block] { size == .small ? smallBlocks : largeBlocks }

    /// Keras' `_depth` (same rule as MobileNetV2's `_make_divisible`).
    static func depth(_ value: Double) -> Int { MobileNetV2.makeDivisible(value) }

    /// Builds the network.
    /// - Parameters:
    ///   - configuration: size, alpha, minimalistic, preprocessing and layer-name flavour.
    ///   - options: Keras constructor options; the input defaults to any size, as in Keras.
    public static func build(_ configuration: Configuration, options: ApplicationOptions = .init()) throws -> Graph {
        let names = configuration.layerNames
        let keras2 = names == .keras2
        let builder = GraphBuilder()
        var x = builder.input(shape: options.inputShape ?? [-1, -1, 3], name: "input_1")
        let activation: Activation = configuration.minimalistic ? .relu : .hardSwish
        let variantKernel = configuration.minimalistic ? 3 : 5
        if configuration.includePreprocessing {
            x = try builder.rescaling(x, scale: 1 / 127.5, offset: -1, name: "rescaling")
        }
        x = try builder.conv2D(x, filters: 16, kernelSize: 3, strides: 2, padding: .same, useBias: false,
                               name: keras2 ? "Conv" : "conv")
        x = try builder.batchNormalization(x, epsilon: 1e-3, momentum: 0.999, name: keras2 ? "Conv/BatchNorm" : "conv_bn")
        x = try builder.activation(x, activation, name: "stem_activation")
        for (id, block) in blocks(configuration.size).enumerated() {
            x = try invertedResidual(builder, x, expansion: block.expansion,
                                     filters: depth(Double(block.filters) * configuration.alpha),
                                     kernelSize: block.kernelSize ?? variantKernel, stride: block.stride,
                                     squeezeExcite: block.squeezeExcite && !configuration.minimalistic,
                                     activation: block.variantActivation ? activation : .relu, id: id, names: names)
        }
        var lastPointChannels = configuration.size == .small ? 1024 : 1280
        if configuration.alpha > 1 { lastPointChannels = depth(Double(lastPointChannels) * configuration.alpha) }
        x = try builder.conv2D(x, filters: depth(Double(builder.channels(of: x) * 6)), kernelSize: 1, padding: .same,
                               useBias: false, name: keras2 ? "Conv_1" : "conv_1")
        x = try builder.batchNormalization(x, epsilon: 1e-3, momentum: 0.999, name: keras2 ? "Conv_1/BatchNorm" : "conv_1_bn")
        x = try builder.activation(x, activation, name: "top_activation")
        if options.includeTop {
            x = try builder.globalAveragePooling2D(x, keepDimensions: true, name: "global_average_pooling2d")
            x = try builder.conv2D(x, filters: lastPointChannels, kernelSize: 1, padding: .same,
                                   name: keras2 ? "Conv_2" : "conv_2")
            x = try builder.activation(x, activation, name: "head_activation")
            x = try builder.dropout(x, name: "dropout")
            x = try builder.conv2D(x, filters: options.classes, kernelSize: 1, padding: .same,
                                   name: keras2 ? "Logits" : "logits")
            x = try builder.flatten(x, name: "flatten")
            x = try builder.activation(x, options.classifierActivation, name: keras2 ? "Predictions" : "predictions")
        } else {
            switch options.pooling {
            case .avg: x = try builder.globalAveragePooling2D(x, name: "avg_pool")
            case .max: x = try builder.globalMaxPooling2D(x, name: "max_pool")
            case .none: break
            }
        }
        let modelName = keras2 ? "MobilenetV3\(configuration.size.rawValue)"
                               : "MobileNetV3\(configuration.size == .small ? "Small" : "Large")"
        return try builder.build(outputs: [x], name: modelName)
    }

    private static func invertedResidual(_ builder: GraphBuilder, _ inputs: GraphTensor, expansion: Double, filters: Int,
                                         kernelSize: Int, stride: Int, squeezeExcite: Bool, activation: Activation,
                                         id: Int, names: LayerNames) throws -> GraphTensor {
        let keras2 = names == .keras2
        let separator = keras2 ? "/" : "_"
        let prefix = id == 0 ? "expanded_conv\(separator)" : "expanded_conv_\(id)\(separator)"
        /// A block layer's name in the chosen flavour.
        func name(_ keras2Suffix: String, _ keras3Suffix: String) -> String {
            prefix + (keras2 ? keras2Suffix : keras3Suffix)
        }
        let inputChannels = builder.channels(of: inputs)
        let expanded = depth(Double(inputChannels) * expansion)
        var x = inputs
        if id > 0 {
            x = try builder.conv2D(x, filters: expanded, kernelSize: 1, padding: .same, useBias: false,
                                   name: name("expand", "expand"))
            x = try builder.batchNormalization(x, epsilon: 1e-3, momentum: 0.999, name: name("expand/BatchNorm", "expand_bn"))
            x = try builder.activation(x, activation, name: name("expand/activation", "expand_activation"))
        }
        if stride == 2 {
            x = try builder.zeroPadding2D(x, correctPad(builder.shape(of: x), kernelSize: kernelSize),
                                          name: name("depthwise/pad", "depthwise_pad"))
        }
        x = try builder.depthwiseConv2D(x, kernelSize: kernelSize, strides: stride, padding: stride == 1 ? .same : .valid,
                                        useBias: false, name: name("depthwise", "depthwise"))
        x = try builder.batchNormalization(x, epsilon: 1e-3, momentum: 0.999, name: name("depthwise/BatchNorm", "depthwise_bn"))
        x = try builder.activation(x, activation, name: name("depthwise/activation", "depthwise_activation"))
        if squeezeExcite {
            let channels = builder.channels(of: x)
            var se = try builder.globalAveragePooling2D(x, keepDimensions: true,
                                                        name: name("squeeze_excite/AvgPool", "squeeze_excite_avg_pool"))
            se = try builder.conv2D(se, filters: depth(Double(expanded) * 0.25), kernelSize: 1, padding: .same,
                                    name: name("squeeze_excite/Conv", "squeeze_excite_conv"))
            se = try builder.relu(se, name: name("squeeze_excite/Relu", "squeeze_excite_relu"))
            se = try builder.conv2D(se, filters: channels, kernelSize: 1, padding: .same,
                                    name: name("squeeze_excite/Conv_1", "squeeze_excite_conv_1"))
            // Keras: ReLU(6)(x + 3) * (1 / 6).
            se = try builder.activation(se, .hardSigmoid, name: name("squeeze_excite/hard_sigmoid", "squeeze_excite_hard_sigmoid"))
            x = try builder.apply(ElementwiseMerge(name: name("squeeze_excite/Mul", "squeeze_excite_mul"), operation: .multiply), to: [x, se])
        }
        x = try builder.conv2D(x, filters: filters, kernelSize: 1, padding: .same, useBias: false,
                               name: name("project", "project"))
        x = try builder.batchNormalization(x, epsilon: 1e-3, momentum: 0.999, name: name("project/BatchNorm", "project_bn"))
        if stride == 1 && inputChannels == filters {
            x = try builder.add([inputs, x], name: name("Add", "add"))
        }
        return x
    }
}

// MARK: - The family

extension MobileNetV3 {
    /// MobileNetV3 Small or Large, minimalistic or not, with its width and layer-name flavour.
    public struct Family: ArchitectureFamily {
        public var configuration: Configuration

        public static let nameForms = ["mobilenetv3small[_minimalistic][_ALPHA]", "mobilenetv3large[_minimalistic][_ALPHA]"]

        public static func parse(compactName: String, original: String) throws -> Family? {
            for size in Size.allCases {
                let stem = "mobilenetv3\(size.rawValue)"
                guard compactName.hasPrefix(stem) else { continue }
                var rest = compactName.dropFirst(stem.count)
                let minimalistic = rest.hasPrefix("minimalistic")
                if minimalistic { rest = rest.dropFirst("minimalistic".count) }
                let alpha = try Architecture.width(rest, family: "MobileNetV3", original: original)
                return Family(configuration: Configuration(size: size, alpha: alpha, minimalistic: minimalistic))
            }
            return nil
        }

        /// tf.keras names (`expanded_conv/depthwise`) or Keras 3's (`expanded_conv_depthwise`).
        public static func detect(in weights: WeightSource, layers: Set<String>) throws -> Family? {
            guard layers.contains("expanded_conv/depthwise") || layers.contains("expanded_conv_depthwise") else { return nil }
            let large = layers.contains("expanded_conv_14/project") || layers.contains("expanded_conv_14_project")
            let minimalistic = !layers.contains { $0.contains("squeeze_excite") }
            return Family(configuration: Configuration(size: large ? .large : .small, alpha: 0, minimalistic: minimalistic))
        }

        /// The layer-name flavour, and an omitted alpha from the block projections.
        public func resolved(using weights: WeightSource) throws -> Family {
            var configuration = self.configuration
            configuration.layerNames = Set(weights.layerNames).contains("conv_bn") ? .keras3 : .keras2
            if configuration.alpha == 0 { configuration.alpha = try Self.alpha(configuration, weights) }
            return Family(configuration: configuration)
        }

        /// The alpha whose block projections all have the file's output channels.
        private static func alpha(_ configuration: Configuration, _ weights: WeightSource) throws -> Double {
            let separator = configuration.layerNames == .keras2 ? "/" : "_"
            let blocks = MobileNetV3.blocks(configuration.size)
            let actual = blocks.indices.map { id in
                weights.shape(layer: (id == 0 ? "expanded_conv" : "expanded_conv_\(id)") + "\(separator)project", weight: "kernel")?.last
            }
            let candidates: [Double] = [0.75, 1.0, 0.5, 0.25, 0.35, 1.25, 1.4, 1.5, 2.0]
            guard let alpha = candidates.first(where: { alpha in
                zip(blocks, actual).allSatisfy { MobileNetV3.depth(Double($0.filters) * alpha) == $1 }
            }) else {
                throw EngineError.unknownArchitecture("MobileNetV3 \(configuration.size.rawValue) projections \(actual.map { $0 ?? 0 }) match no alpha")
            }
            return alpha
        }

        public func build(options: ApplicationOptions) throws -> Graph {
            var configuration = self.configuration
            if configuration.alpha == 0 { configuration.alpha = 1 }
            return try MobileNetV3.build(configuration, options: options)
        }

        public var description: String { configuration.description }
    }
}

extension Architecture {
    /// MobileNetV3 Small or Large.
    public static func mobileNetV3(_ configuration: MobileNetV3.Configuration) -> Architecture {
        Architecture(MobileNetV3.Family(configuration: configuration))
    }
}
