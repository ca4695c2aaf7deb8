import Foundation
import TLTensor

/// A `keras.applications` architecture tlhub can build natively (no model config needed).
///
/// Adding one: write `Zoo/<Name>.swift` with an enum whose `build(…, options:)` creates the graph
/// with `GraphBuilder`, using exactly the Keras layer names and epsilons of
/// `keras/src/applications/<name>.py` (end with `applicationHead` for the usual GAP + `predictions`
/// top). Then add a case here and extend `init(name:)`, `description`, `build(options:)`,
/// `detect(from:)` (a layer name unique to the family, plus a kernel shape for its width) and, if
/// the graph depends on the image size, `paddingDependsOnInputSize`. Strict loading then rejects
/// any file the builder does not match exactly.
public enum Architecture: Sendable, Equatable, CustomStringConvertible {
    /// MobileNetV2 with width multiplier `alpha`.
    case mobileNetV2(alpha: Double)
    /// VGG16.
    case vgg16
    /// VGG19.
    case vgg19
    /// ResNet v1 with 50, 101 or 152 layers.
    case resNet(depth: Int)
    /// ResNet v2 (pre-activation) with 50, 101 or 152 layers.
    case resNetV2(depth: Int)
    /// InceptionV3.
    case inceptionV3
    /// Xception.
    case xception
    /// InceptionResNetV2.
    case inceptionResNetV2
    /// DenseNet with 121, 169 or 201 layers.
    case denseNet(depth: Int)
    /// NASNetMobile (NASNet-A 4 @ 1056).
    case nasNetMobile
    /// NASNetLarge (NASNet-A 6 @ 4032).
    case nasNetLarge

    /// MobileNet v1 with width `alpha` (0: read from the weights) and depthwise `depthMultiplier`.
    case mobileNet(alpha: Double, depthMultiplier: Int)
    /// MobileNetV3 Small or Large.
    case mobileNetV3(MobileNetV3.Configuration)
    /// EfficientNet B0…B7; `imagenetScaling` adds Keras' fix-up for the published ImageNet weights.
    case efficientNet(EfficientNet.Variant, imagenetScaling: Bool)
    /// EfficientNetV2 B0…B3, S, M, L.
    case efficientNetV2(EfficientNetV2.Variant, includePreprocessing: Bool)
    /// ConvNeXt Tiny…XLarge.
    case convNeXt(ConvNeXt.Variant, includePreprocessing: Bool)

    /// Every name `init(name:)` accepts, for help texts.
    public static let names = ["mobilenetv2[_ALPHA]", "vgg16", "vgg19", "resnet50", "resnet101", "resnet152",
                               "resnet50v2", "resnet101v2", "resnet152v2",
                               "inceptionv3", "xception", "inceptionresnetv2", "densenet121", "densenet169", "densenet201",
                               "nasnetmobile", "nasnetlarge"] + mobileEfficientConvNeXtNames

    /// Parses `mobilenetv2`, `mobilenet_v2_0.35`, `vgg16`, `resnet50`, `resnet50v2`, … (case-insensitive).
    /// A MobileNetV2 without alpha gets `alpha = 0`, meaning "read it from the weights".
    /// - Throws: `EngineError.unknownArchitecture`.
    public init(name: String) throws {
        let lowered = name.lowercased().replacingOccurrences(of: "-", with: "_")
        let compact = lowered.replacingOccurrences(of: "_", with: "")
        if compact.hasPrefix("mobilenetv2") {
            let rest = compact.dropFirst("mobilenetv2".count)
            if rest.isEmpty { self = .mobileNetV2(alpha: 0); return }
            guard let alpha = Double(rest), alpha > 0 else {
                throw EngineError.unknownArchitecture("unknown MobileNetV2 width '\(rest)' in architecture '\(name)'")
            }
            self = .mobileNetV2(alpha: alpha)
            return
        }
        if let architecture = try Architecture.parseMobileEfficientConvNeXt(compact: compact, original: name) {
            self = architecture
            return
        }
        switch compact {
        case "vgg16": self = .vgg16
        case "vgg19": self = .vgg19
        case "resnet50": self = .resNet(depth: 50)
        case "resnet101": self = .resNet(depth: 101)
        case "resnet152": self = .resNet(depth: 152)
        case "resnet50v2": self = .resNetV2(depth: 50)
        case "resnet101v2": self = .resNetV2(depth: 101)
        case "resnet152v2": self = .resNetV2(depth: 152)
        case "inceptionv3": self = .inceptionV3
        case "xception": self = .xception
        case "inceptionresnetv2": self = .inceptionResNetV2
        case "densenet121": self = .denseNet(depth: 121)
        case "densenet169": self = .denseNet(depth: 169)
        case "densenet201": self = .denseNet(depth: 201)
        case "nasnetmobile": self = .nasNetMobile
        case "nasnetlarge": self = .nasNetLarge
        default:
            throw EngineError.unknownArchitecture("unknown architecture '\(name)'; known: \(Architecture.names.joined(separator: ", "))")
        }
    }

    public var description: String {
        switch self {
        case .mobileNetV2(let alpha): return "mobilenetv2_\(String(format: "%.2f", alpha))"
        case .vgg16: return "vgg16"
        case .vgg19: return "vgg19"
        case .resNet(let depth): return "resnet\(depth)"
        case .resNetV2(let depth): return "resnet\(depth)v2"
        case .inceptionV3: return "inception_v3"
        case .xception: return "xception"
        case .inceptionResNetV2: return "inception_resnet_v2"
        case .denseNet(let depth): return "densenet\(depth)"
        case .nasNetMobile: return "nasnet_mobile"
        case .nasNetLarge: return "nasnet_large"
        default: return mobileEfficientConvNeXtDescription ?? "unknown"
        }
    }

    /// The smallest image side `keras.applications` accepts for this architecture
    /// (`obtain_input_shape`'s `min_size`): 75 for InceptionV3 and InceptionResNetV2, 71 for
    /// Xception, 32 for every other family.
    public var minimumInputSize: Int {
        switch self {
        case .inceptionV3, .inceptionResNetV2: return 75
        case .xception: return 71
        default: return 32
        }
    }

    /// Whether the graph depends on the image size (MobileNetV2's `correct_pad` before each
    /// stride-2 depthwise convolution), so a new size needs a rebuilt graph.
    public var paddingDependsOnInputSize: Bool {
        if case .mobileNetV2 = self { return true }
        return false
    }

    /// Builds the architecture's graph (weights still to be loaded).
    public func build(options: ApplicationOptions) throws -> Graph {
        switch self {
        case .mobileNetV2(let alpha):
            return try MobileNetV2.build(alpha: alpha, options: options)
        case .vgg16:
            return try VGG.build(convolutionsPerBlock: VGG.vgg16Blocks, options: options, name: "vgg16")
        case .vgg19:
            return try VGG.build(convolutionsPerBlock: VGG.vgg19Blocks, options: options, name: "vgg19")
        case .resNet(let depth):
            return try ResNet.build(stages: ResNet.stagesV1(depth: depth), options: options, name: "resnet\(depth)")
        case .resNetV2(let depth):
            return try ResNet.build(stages: ResNet.stagesV2(depth: depth), preActivation: true, options: options,
                                    name: "resnet\(depth)v2")
        case .inceptionV3:
            return try InceptionV3.build(options: options)
        case .xception:
            return try Xception.build(options: options)
        case .inceptionResNetV2:
            return try InceptionResNetV2.build(options: options)
        case .denseNet(let depth):
            return try DenseNet.build(blocks: try DenseNet.blocks(depth: depth), options: options)
        case .nasNetMobile:
            return try NASNet.build(configuration: .mobile, options: options)
        case .nasNetLarge:
            return try NASNet.build(configuration: .large, options: options)
        default:
            guard let graph = try buildMobileEfficientConvNeXt(options: options) else {
                throw EngineError.unknownArchitecture("no builder for architecture \(self)")
            }
            return graph
        }
    }

    // MARK: - Detection

    /// Recognises the architecture of a weights-only file from its layer names and kernel shapes.
    ///
    /// MobileNetV2's alpha comes from `block_16_project`'s output channels (unique per alpha);
    /// VGG19 has `block5_conv4`; ResNet depth from the number of blocks in stages 3 and 4;
    /// Inception, Xception, DenseNet and NASNet rules are in `detectZooB(layers:weights:)`.
    /// - Throws: `EngineError.unknownArchitecture` when nothing matches.
    public static func detect(from weights: WeightSource) throws -> Architecture {
        let layers = Set(weights.layerNames)
        if layers.contains("Conv1") && layers.contains("block_16_project") {
            guard let shape = weights.shape(layer: "block_16_project", weight: "kernel"), shape.count == 4 else {
                throw EngineError.unknownArchitecture("MobileNetV2-like file without block_16_project/kernel")
            }
            return .mobileNetV2(alpha: try mobileNetV2Alpha(projectFilters: shape[3]))
        }
        if layers.contains("block5_conv3") && layers.contains("block1_conv1") {
            return layers.contains("block5_conv4") ? .vgg19 : .vgg16
        }
        if let architecture = try detectZooB(layers: layers, weights: weights) { return architecture }
        if layers.contains("conv1_conv") {
            let depth: Int
            if layers.contains("conv3_block8_1_conv") { depth = 152 }
            else if layers.contains("conv4_block23_1_conv") { depth = 101 }
            else { depth = 50 }
            return layers.contains("post_bn") ? .resNetV2(depth: depth) : .resNet(depth: depth)
        }
        if let architecture = try detectMobileEfficientConvNeXt(from: weights) { return architecture }
        throw EngineError.unknownArchitecture(
            "cannot recognise the architecture from the layer names (\(weights.layerNames.prefix(3).joined(separator: ", ")), …); pass --arch (\(names.joined(separator: ", ")))")
    }

    /// The published alpha whose `block_16_project` has `projectFilters` outputs.
    static func mobileNetV2Alpha(projectFilters: Int) throws -> Double {
        for alpha in MobileNetV2.alphas where MobileNetV2.makeDivisible(Double(Int(320 * alpha))) == projectFilters {
            return alpha
        }
        throw EngineError.unknownArchitecture("MobileNetV2 with \(projectFilters) filters in block_16_project matches no published alpha")
    }

    /// The constructor options a weights-only file implies: top or no top (presence of
    /// `predictions`), class count, and for VGG with a top the input size `fc1` was built for.
    public static func options(for weights: WeightSource, architecture: Architecture) -> ApplicationOptions {
        var options = ApplicationOptions()
        guard let predictions = classifierKernelShape(in: weights), let classes = predictions.last else {
            options.includeTop = false
            return options
        }
        options.classes = classes
        if case .vgg16 = architecture, let fc1 = weights.shape(layer: "fc1", weight: "kernel") {
            options.inputShape = vggInputShape(fc1Inputs: fc1[0])
        } else if case .vgg19 = architecture, let fc1 = weights.shape(layer: "fc1", weight: "kernel") {
            options.inputShape = vggInputShape(fc1Inputs: fc1[0])
        }
        return options
    }

    private static func vggInputShape(fc1Inputs: Int) -> [Int]? {
        let side = Int((Double(fc1Inputs / 512)).squareRoot().rounded())
        return side * side * 512 == fc1Inputs ? [side * 32, side * 32, 3] : nil
    }
}
