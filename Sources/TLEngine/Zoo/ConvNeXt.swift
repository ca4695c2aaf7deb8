import Foundation
import TLTensor

/// `keras.applications.ConvNeXtTiny` … `ConvNeXtXLarge` (Liu et al. 2022), with Keras' layer
/// names, all prefixed by the model name (`convnext_tiny_stem_conv`,
/// `convnext_tiny_stage_2_block_5_pointwise_conv_1`, …, `convnext_tiny_head_dense`).
///
/// The stem and the three downsampling blocks are nested `Sequential` models in Keras
/// (`convnext_tiny_stem`, `convnext_tiny_downsampling_block_0`); their layers carry that scope so
/// weights stored inside the nested model are found. LayerNormalization uses epsilon 1e-6 and
/// `gelu` is the exact (erf) form. Stochastic depth is the identity at inference.
public enum ConvNeXt {
    /// The published variants.
    public enum Variant: String, Sendable, CaseIterable {
        case tiny, small, base, large, xlarge

        /// Blocks per stage.
        public var depths: [Int] { self == .tiny ? [3, 3, 9, 3] : [3, 3, 27, 3] }

        /// Channels per stage.
        public var projectionDimensions: [Int] {
            switch self {
            case .tiny, .small: return [96, 192, 384, 768]
            case .base: return [128, 256, 512, 1024]
            case .large: return [192, 384, 768, 1536]
            case .xlarge: return [256, 512, 1024, 2048]
            }
        }

        /// The Keras model name and layer-name prefix, `convnext_tiny` ….
        public var modelName: String { "convnext_\(rawValue)" }
    }

    static let epsilon: Float = 1e-6

    /// Builds a named variant.
    /// - Parameters:
    ///   - variant: Tiny … XLarge.
    ///   - includePreprocessing: whether the ImageNet `Normalization` (pixels in 0…255) starts the model.
    ///   - options: Keras constructor options; with the top the input defaults to 224×224×3,
    ///     without it to any size.
    public static func build(_ variant: Variant, includePreprocessing: Bool = true,
                             options: ApplicationOptions = .init()) throws -> Graph {
        try build(depths: variant.depths, projectionDimensions: variant.projectionDimensions,
                  includePreprocessing: includePreprocessing, options: options, name: variant.modelName)
    }

    /// Builds any stage layout (Keras' internal `ConvNeXt(depths, projection_dims, …)`).
    /// - Precondition: four depths and four projection dimensions.
    public static func build(depths: [Int], projectionDimensions: [Int], includePreprocessing: Bool = true,
                             options: ApplicationOptions = .init(), name: String = "convnext") throws -> Graph {
        precondition(depths.count == 4 && projectionDimensions.count == 4, "ConvNeXt has four stages")
        let shape = options.inputShape ?? (options.includeTop ? [224, 224, 3] : [-1, -1, 3])
        let builder = GraphBuilder()
        var x = builder.input(shape: shape, name: "input_1")
        if includePreprocessing && shape[2] == 3 {
            let mean: [Float] = [0.485, 0.456, 0.406].map { Float($0 * 255) }
            let variance: [Float] = [0.229, 0.224, 0.225].map { Float(($0 * 255) * ($0 * 255)) }
            x = try builder.apply(Normalization(name: "\(name)_prestem_normalization", mean: mean, variance: variance), to: [x])
        }
        for stage in 0..<4 {
            let dimension = projectionDimensions[stage]
            if stage == 0 {
                builder.scope = ["\(name)_stem"]
                x = try builder.conv2D(x, filters: dimension, kernelSize: 4, strides: 4, name: "\(name)_stem_conv")
                x = try builder.apply(LayerNormalization(name: "\(name)_stem_layernorm", epsilon: epsilon), to: [x])
            } else {
                let index = stage - 1
                builder.scope = ["\(name)_downsampling_block_\(index)"]
                x = try builder.apply(LayerNormalization(name: "\(name)_downsampling_layernorm_\(index)", epsilon: epsilon), to: [x])
                x = try builder.conv2D(x, filters: dimension, kernelSize: 2, strides: 2, name: "\(name)_downsampling_conv_\(index)")
            }
            builder.scope = []
            for blockIndex in 0..<depths[stage] {
                x = try block(builder, x, projectionDimension: dimension, name: "\(name)_stage_\(stage)_block_\(blockIndex)")
            }
        }
        if options.includeTop {
            x = try builder.globalAveragePooling2D(x, name: "\(name)_head_gap")
            x = try builder.apply(LayerNormalization(name: "\(name)_head_layernorm", epsilon: epsilon), to: [x])
            x = try builder.dense(x, units: options.classes, activation: options.classifierActivation, name: "\(name)_head_dense")
        } else {
            switch options.pooling {
            case .avg: x = try builder.globalAveragePooling2D(x, name: "global_average_pooling2d")
            case .max: x = try builder.globalMaxPooling2D(x, name: "global_max_pooling2d")
            case .none: break
            }
            // Keras normalizes the features even without pooling.
            x = try builder.apply(LayerNormalization(name: "layer_normalization", epsilon: epsilon), to: [x])
        }
        return try builder.build(outputs: [x], name: name)
    }

    /// Keras' `ConvNeXtBlock`: 7×7 channel-wise conv, LayerNorm, 4× MLP with gelu, LayerScale, residual.
    private static func block(_ builder: GraphBuilder, _ inputs: GraphTensor, projectionDimension: Int,
                              name: String) throws -> GraphTensor {
        var x = try builder.apply(ChannelwiseConv2D(name: "\(name)_depthwise_conv", channels: projectionDimension,
                                                    kernelSize: (7, 7), padding: .same), to: [inputs])
        x = try builder.apply(LayerNormalization(name: "\(name)_layernorm", epsilon: epsilon), to: [x])
        x = try builder.dense(x, units: 4 * projectionDimension, name: "\(name)_pointwise_conv_1")
        x = try builder.activation(x, .gelu(approximate: false), name: "\(name)_gelu")
        x = try builder.dense(x, units: projectionDimension, name: "\(name)_pointwise_conv_2")
        x = try builder.apply(LayerScale(name: "\(name)_layer_scale", projectionDimension: projectionDimension), to: [x])
        x = try builder.activation(x, .linear, name: "\(name)_identity")
        return try builder.add([inputs, x], name: "\(name)_add")
    }
}

// MARK: - The family

extension ConvNeXt {
    /// ConvNeXt Tiny…XLarge.
    public struct Family: ArchitectureFamily {
        public var variant: Variant
        public var includePreprocessing: Bool

        public static let nameForms = ["convnexttiny", "convnextsmall", "convnextbase", "convnextlarge", "convnextxlarge"]

        public static func parse(compactName: String, original: String) throws -> Family? {
            guard compactName.hasPrefix("convnext"),
                  let variant = Variant(rawValue: String(compactName.dropFirst("convnext".count))) else { return nil }
            return Family(variant: variant, includePreprocessing: true)
        }

        /// The variant from the layer-name prefix (`convnext_tiny_stem_conv`).
        public static func detect(in weights: WeightSource, layers: Set<String>) throws -> Family? {
            guard let prefix = ConvNeXt.prefix(of: weights) else { return nil }
            guard let variant = Variant.allCases.first(where: { $0.modelName == prefix }) else {
                throw EngineError.unknownArchitecture("ConvNeXt-like file with layer prefix '\(prefix)' is no published variant (convnext_tiny … convnext_xlarge)")
            }
            return Family(variant: variant, includePreprocessing: true)
        }

        public func build(options: ApplicationOptions) throws -> Graph {
            try ConvNeXt.build(variant, includePreprocessing: includePreprocessing, options: options)
        }

        public var description: String { variant.modelName }
    }

    /// The model-name prefix of a ConvNeXt file (`convnext_tiny`), from its stem convolution
    /// stored flat (`convnext_tiny_stem_conv`) or inside the nested stem (`convnext_tiny_stem`).
    static func prefix(of weights: WeightSource) -> String? {
        for layer in weights.layerNames {
            let leaf = layer.split(separator: "/").last.map(String.init) ?? layer
            if leaf.hasSuffix("_stem_conv") { return String(leaf.dropLast("_stem_conv".count)) }
            if layer.hasSuffix("_stem"), weights.weightNames(layer: layer).contains(where: { $0.hasPrefix("\(layer)_conv/") }) {
                return String(layer.dropLast("_stem".count))
            }
        }
        return nil
    }
}

extension Architecture {
    /// ConvNeXt Tiny…XLarge.
    public static func convNeXt(_ variant: ConvNeXt.Variant, includePreprocessing: Bool) -> Architecture {
        Architecture(ConvNeXt.Family(variant: variant, includePreprocessing: includePreprocessing))
    }
}
