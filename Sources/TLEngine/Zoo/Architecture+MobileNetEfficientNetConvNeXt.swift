import Foundation
import TLTensor

/// Names, detection and weight-dependent settings of MobileNet v1/v3, EfficientNet (v1/v2) and
/// ConvNeXt, kept apart from `Architecture.swift` so each family's rules read in one place.
extension Architecture {
    /// Accepted names of these families, for help texts.
    static let mobileEfficientConvNeXtNames = [
        "mobilenet[_ALPHA]", "mobilenetv3small[_minimalistic][_ALPHA]", "mobilenetv3large[_minimalistic][_ALPHA]",
        "efficientnetb0…b7", "efficientnetv2b0…b3", "efficientnetv2s/m/l",
        "convnexttiny", "convnextsmall", "convnextbase", "convnextlarge", "convnextxlarge",
    ]

    /// Parses a compact lower-case name (no `-`/`_`) of these families; nil when it is none of them.
    /// An omitted alpha is 0, meaning "read it from the weights".
    static func parseMobileEfficientConvNeXt(compact: String, original: String) throws -> Architecture? {
        func alpha(_ text: Substring, family: String) throws -> Double {
            if text.isEmpty { return 0 }
            guard let value = Double(text), value > 0 else {
                throw EngineError.unknownArchitecture("unknown \(family) width '\(text)' in architecture '\(original)'")
            }
            return value
        }
        for size in MobileNetV3.Size.allCases {
            let stem = "mobilenetv3\(size.rawValue)"
            guard compact.hasPrefix(stem) else { continue }
            var rest = compact.dropFirst(stem.count)
            let minimalistic = rest.hasPrefix("minimalistic")
            if minimalistic { rest = rest.dropFirst("minimalistic".count) }
            let configuration = MobileNetV3.Configuration(size: size, alpha: try alpha(rest, family: "MobileNetV3"),
                                                          minimalistic: minimalistic)
            return .mobileNetV3(configuration)
        }
        for stem in ["mobilenetv1", "mobilenet"] where compact.hasPrefix(stem) {
            let rest = compact.dropFirst(stem.count)
            if rest.hasPrefix("v") { break }
            return .mobileNet(alpha: try alpha(rest, family: "MobileNet"), depthMultiplier: 1)
        }
        if compact.hasPrefix("efficientnetv2"), let variant = EfficientNetV2.Variant(rawValue: String(compact.dropFirst("efficientnetv2".count))) {
            return .efficientNetV2(variant, includePreprocessing: true)
        }
        if compact.hasPrefix("efficientnetb"), let number = Int(compact.dropFirst("efficientnetb".count)),
           let variant = EfficientNet.Variant(rawValue: number) {
            return .efficientNet(variant, imagenetScaling: false)
        }
        if compact.hasPrefix("convnext"), let variant = ConvNeXt.Variant(rawValue: String(compact.dropFirst("convnext".count))) {
            return .convNeXt(variant, includePreprocessing: true)
        }
        return nil
    }

    /// Recognises these families from a weights-only file; nil when it is none of them.
    static func detectMobileEfficientConvNeXt(from weights: WeightSource) throws -> Architecture? {
        let layers = Set(weights.layerNames)
        if layers.contains("conv1") && layers.contains("conv_pw_13") {
            return try Architecture.mobileNet(alpha: 0, depthMultiplier: 1).resolved(using: weights)
        }
        if layers.contains("expanded_conv/depthwise") || layers.contains("expanded_conv_depthwise") {
            let large = layers.contains("expanded_conv_14/project") || layers.contains("expanded_conv_14_project")
            let minimalistic = !layers.contains { $0.contains("squeeze_excite") }
            let configuration = MobileNetV3.Configuration(size: large ? .large : .small, alpha: 0, minimalistic: minimalistic)
            return try Architecture.mobileNetV3(configuration).resolved(using: weights)
        }
        if layers.contains("stem_conv") && layers.contains("top_conv") {
            if layers.contains("block1a_dwconv") {
                return try .efficientNet(efficientNetVariant(weights), imagenetScaling: false).resolved(using: weights)
            }
            return .efficientNetV2(try efficientNetV2Variant(weights), includePreprocessing: true)
        }
        if let prefix = convNeXtPrefix(weights) {
            guard let variant = ConvNeXt.Variant.allCases.first(where: { $0.modelName == prefix }) else {
                throw EngineError.unknownArchitecture("ConvNeXt-like file with layer prefix '\(prefix)' is no published variant (convnext_tiny … convnext_xlarge)")
            }
            return .convNeXt(variant, includePreprocessing: true)
        }
        return nil
    }

    /// Fills in what only the weights can tell: an omitted width (alpha 0), the depth
    /// multiplier, the MobileNetV3 layer-name flavour, and EfficientNet's ImageNet rescaling.
    /// Other architectures are returned unchanged.
    /// - Throws: `EngineError.unknownArchitecture` when the weights fit no width.
    public func resolved(using weights: WeightSource) throws -> Architecture {
        switch self {
        case .mobileNet(let alpha, _):
            guard let conv1 = weights.shape(layer: "conv1", weight: "kernel"), conv1.count == 4 else { return self }
            let depthwise = weights.shape(layer: "conv_dw_1", weight: "depthwise_kernel") ?? weights.shape(layer: "conv_dw_1", weight: "kernel")
            let multiplier = depthwise?.last ?? 1
            if alpha > 0 { return .mobileNet(alpha: alpha, depthMultiplier: multiplier) }
            let candidates = MobileNet.alphas + [Double(conv1[3]) / 32]
            guard let found = candidates.first(where: { Int(32 * $0) == conv1[3] }) else {
                throw EngineError.unknownArchitecture("MobileNet with \(conv1[3]) filters in conv1 matches no alpha")
            }
            return .mobileNet(alpha: found, depthMultiplier: multiplier)
        case .mobileNetV3(var configuration):
            configuration.layerNames = Set(weights.layerNames).contains("conv_bn") ? .keras3 : .keras2
            if configuration.alpha == 0 { configuration.alpha = try Self.mobileNetV3Alpha(configuration, weights) }
            return .mobileNetV3(configuration)
        case .efficientNet(let variant, _):
            let variance = (try? weights.tensor(layer: "normalization", weight: "variance"))?.scalars ?? []
            let imagenet = variance.count == 3 && zip(variance, EfficientNet.imagenetStandardDeviation).allSatisfy { abs($0 - $1) < 1e-6 }
            return .efficientNet(variant, imagenetScaling: imagenet)
        default:
            return self
        }
    }

    /// The alpha whose block projections all have the file's output channels.
    private static func mobileNetV3Alpha(_ configuration: MobileNetV3.Configuration, _ weights: WeightSource) throws -> Double {
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

    /// The B0…B7 whose top width and block count match the file.
    private static func efficientNetVariant(_ weights: WeightSource) throws -> EfficientNet.Variant {
        let top = weights.shape(layer: "top_conv", weight: "kernel")?.last ?? 0
        let blocks = weights.layerNames.filter { $0.hasPrefix("block") && $0.hasSuffix("_project_conv") }.count
        for variant in EfficientNet.Variant.allCases {
            let c = variant.coefficients
            let expectedBlocks = EfficientNet.stages.reduce(0) { $0 + EfficientNet.roundRepeats($1.repeats, depth: c.depth) }
            if EfficientNet.roundFilters(1280, width: c.width) == top && expectedBlocks == blocks { return variant }
        }
        throw EngineError.unknownArchitecture("EfficientNet with \(top) top_conv filters and \(blocks) blocks matches no B0…B7")
    }

    /// The EfficientNetV2 variant whose stem width, top width and block count match the file.
    private static func efficientNetV2Variant(_ weights: WeightSource) throws -> EfficientNetV2.Variant {
        let stem = weights.shape(layer: "stem_conv", weight: "kernel")?.last ?? 0
        let top = weights.shape(layer: "top_conv", weight: "kernel")?.last ?? 0
        let blocks = weights.layerNames.filter { $0.hasPrefix("block") && $0.hasSuffix("_project_conv") }.count
        for variant in EfficientNetV2.Variant.allCases {
            let c = variant.coefficients
            let stages = variant.stages
            let expectedBlocks = stages.reduce(0) { $0 + EfficientNet.roundRepeats($1.repeats, depth: c.depth) }
            if EfficientNetV2.roundFilters(stages[0].filtersIn, width: c.width) == stem,
               EfficientNetV2.roundFilters(1280, width: c.width) == top, expectedBlocks == blocks {
                return variant
            }
        }
        throw EngineError.unknownArchitecture("EfficientNetV2 with stem \(stem), top \(top) and \(blocks) blocks matches no B0…B3/S/M/L")
    }

    /// The model-name prefix of a ConvNeXt file (`convnext_tiny`), from its stem convolution
    /// stored flat (`convnext_tiny_stem_conv`) or inside the nested stem (`convnext_tiny_stem`).
    static func convNeXtPrefix(_ weights: WeightSource) -> String? {
        for layer in weights.layerNames {
            let leaf = layer.split(separator: "/").last.map(String.init) ?? layer
            if leaf.hasSuffix("_stem_conv") { return String(leaf.dropLast("_stem_conv".count)) }
            if layer.hasSuffix("_stem"), weights.weightNames(layer: layer).contains(where: { $0.hasPrefix("\(layer)_conv/") }) {
                return String(layer.dropLast("_stem".count))
            }
        }
        return nil
    }

    /// The kernel shape of the classifier a weights-only file carries, whichever family named it
    /// (`predictions`, MobileNet's `conv_preds`, MobileNetV3's `Logits`/`logits`, ConvNeXt's
    /// `…_head_dense`); nil for a file without the top.
    static func classifierKernelShape(in weights: WeightSource) -> [Int]? {
        for layer in ["predictions", "conv_preds", "Logits", "logits"] {
            if let shape = weights.shape(layer: layer, weight: "kernel") { return shape }
        }
        if let prefix = convNeXtPrefix(weights) {
            return weights.shape(layer: "\(prefix)_head_dense", weight: "kernel")
        }
        return nil
    }

    /// The name of these families' cases, for `description`.
    var mobileEfficientConvNeXtDescription: String? {
        switch self {
        case let .mobileNet(alpha, depthMultiplier):
            return "mobilenet_\(String(format: "%.2f", alpha))" + (depthMultiplier == 1 ? "" : "_dm\(depthMultiplier)")
        case .mobileNetV3(let configuration): return configuration.description
        case .efficientNet(let variant, _): return "efficientnet\(variant.name)"
        case .efficientNetV2(let variant, _): return "efficientnetv2-\(variant.rawValue)"
        case .convNeXt(let variant, _): return variant.modelName
        default: return nil
        }
    }

    /// Builds these families' cases; nil for other architectures.
    func buildMobileEfficientConvNeXt(options: ApplicationOptions) throws -> Graph? {
        switch self {
        case let .mobileNet(alpha, depthMultiplier):
            return try MobileNet.build(alpha: alpha == 0 ? 1 : alpha, depthMultiplier: depthMultiplier, options: options)
        case .mobileNetV3(var configuration):
            if configuration.alpha == 0 { configuration.alpha = 1 }
            return try MobileNetV3.build(configuration, options: options)
        case let .efficientNet(variant, imagenetScaling):
            return try EfficientNet.build(variant, imagenetScaling: imagenetScaling, options: options)
        case let .efficientNetV2(variant, includePreprocessing):
            return try EfficientNetV2.build(variant, includePreprocessing: includePreprocessing, options: options)
        case let .convNeXt(variant, includePreprocessing):
            return try ConvNeXt.build(variant, includePreprocessing: includePreprocessing, options: options)
        default:
            return nil
        }
    }
}
