import Foundation
import TLTensor

/// A TF-Slim MobileNetV2 checkpoint (the variables of TF Hub's `imagenet/mobilenet_v2_*` models)
/// presented under the Keras names of `MobileNetV2`, so the native builder loads it strictly.
///
/// ```swift
/// let slim = try TFSlimMobileNetV2(TensorBundle(prefix: savedModel.appending(path: "variables/variables")))
/// let model = try Model(weights: slim, architecture: slim.architecture)
/// let probabilities = try model.predict(input: pixels)   // pixels in [0, 1], [N, H, W, 3]
/// ```
///
/// Renaming (one table, `layers(includingClassifier:)`): `MobilenetV2/Conv` → `Conv1`,
/// `Conv/BatchNorm` → `bn_Conv1`, `expanded_conv/{depthwise,project}` → `expanded_conv_{depthwise,project}`,
/// `expanded_conv_N/{expand,depthwise,project}` → `block_N_{expand,depthwise,project}`, each
/// `…/BatchNorm` → the Keras `…_BN` layer, `Conv_1` → `Conv_1`, `Conv_1/BatchNorm` → `Conv_1_bn`,
/// `Logits/Conv2d_1c_1x1` → `predictions`. Weights: `weights` → `kernel`, `depthwise_weights` →
/// `depthwise_kernel` (both `[kh, kw, in, multiplier]`), `biases` → `bias`, BatchNorm names are
/// the same. The 1×1 logits convolution `[1, 1, 1280, classes]` becomes the Dense kernel
/// `[1280, classes]`. Any scope before `MobilenetV2/` (`module/` in hub.Module exports) is ignored.
///
/// The two networks compute the same function: slim uses TensorFlow `SAME` padding on its stride-2
/// convolutions, Keras `ZeroPadding2D(correct_pad)` + `valid`, and both pad (0 before, 1 after) on
/// an even side and (1, 1) on an odd one; BatchNorm epsilon is 0.001 in both (slim's
/// `batch_norm` default, which the MobileNet scopes leave unchanged). Slim's widths for alpha < 1
/// are Keras' only with `finegrain_classification_mode` (a 1280-channel `Conv_1`), which TF Hub's
/// published models use; other checkpoints fail strict loading with a shape mismatch.
///
/// Using TF Hub's models:
/// - Inputs are RGB in [0, 1] (tlhub preprocessing `unit`), not Keras' [-1, 1].
/// - The classifier has 1001 classes: class 0 is "background", so ImageNet class `i` of the
///   Keras models (`imagenet_class_index.json`) is class `i + 1` here.
/// - TF Hub's modules output logits; the Keras-named `predictions` layer applies softmax, so
///   `Model.predict` returns probabilities (same ranking).
///
/// Strict like every weight source: construction fails when a variable of the architecture is
/// missing (naming the full variable) or when the `MobilenetV2/` scope holds variables the
/// architecture does not use. Variables outside that scope (e.g. `global_step`) are ignored.
public struct TFSlimMobileNetV2: WeightSource {
    /// The wrapped checkpoint.
    public let source: WeightSource
    /// What stands before `MobilenetV2/` in the variable names (`""` or e.g. `"module/"`).
    public let scope: String
    /// The width multiplier, read from the last projection's output channels (unique per alpha;
    /// the first convolution's 16 channels are shared by 0.35 and 0.5).
    public let alpha: Double
    /// The classifier's class count (1001 for TF Hub's classification models), nil for a
    /// feature-vector checkpoint without `Logits/Conv2d_1c_1x1`.
    public let classCount: Int?
    /// Keras layer names in network order.
    public let layerNames: [String]
    private let layers: [String: SlimLayer]

    /// Whether the checkpoint has the classification head (`predictions` in Keras names).
    public var hasClassifier: Bool { classCount != nil }

    /// The native architecture to build: `.mobileNetV2(alpha: alpha)`.
    public var architecture: Architecture { .mobileNetV2(alpha: alpha) }

    /// The constructor options the checkpoint implies (`includeTop` and `classes` from the head),
    /// as `Architecture.options(for:architecture:)` derives them from `predictions`.
    public var options: ApplicationOptions {
        Architecture.options(for: self, architecture: architecture)
    }

    /// Wraps a checkpoint holding TF-Slim MobileNetV2 variables.
    /// - Parameter source: any weight source whose layers are slim scopes
    ///   (`[scope]MobilenetV2/expanded_conv_3/depthwise`) and weights slim names (`depthwise_weights`),
    ///   as `TensorBundle` presents a SavedModel's `variables/variables`.
    /// - Throws: `EngineError.unknownArchitecture` when there is no `MobilenetV2/Conv/weights`
    ///   or the width matches no published alpha, `.missingVariable` naming the first absent
    ///   variable, `.unusedWeights` for variables under `MobilenetV2/` the architecture lacks.
    public init(_ source: WeightSource) throws {
        self.source = source
        guard let convolution = source.layerNames.first(where: { $0 == "MobilenetV2/Conv" || $0.hasSuffix("/MobilenetV2/Conv") }),
              source.shape(layer: convolution, weight: "weights") != nil else {
            throw EngineError.unknownArchitecture(
                "not a TF-Slim MobileNetV2 checkpoint: no variable 'MobilenetV2/Conv/weights' (layers: \(source.layerNames.prefix(3).joined(separator: ", ")), …)")
        }
        scope = String(convolution.dropLast("MobilenetV2/Conv".count))
        let root = scope + "MobilenetV2/"
        let classifier = root + Self.classifierScope
        let hasHead = !source.weightNames(layer: classifier).isEmpty
        let table = Self.layers(includingClassifier: hasHead)

        var layers: [String: SlimLayer] = [:]
        var used = Set<String>()
        for (kerasName, slimName, kind) in table {
            let layer = SlimLayer(scope: root + slimName, kind: kind)
            for (kerasWeight, slimWeight) in kind.weights {
                guard source.shape(layer: layer.scope, weight: slimWeight) != nil else {
                    throw EngineError.missingVariable(name: "\(layer.scope)/\(slimWeight)", layer: kerasName, weight: kerasWeight)
                }
                used.insert("\(layer.scope)/\(slimWeight)")
            }
            layers[kerasName] = layer
        }
        var unused: [String] = []
        for layer in source.layerNames where layer.hasPrefix(root) {
            unused += source.weightNames(layer: layer).map { "\(layer)/\($0)" }.filter { !used.contains($0) }
        }
        if !unused.isEmpty { throw EngineError.unusedWeights(names: unused) }

        let project = root + "expanded_conv_\(MobileNetV2.blocks.count - 1)/project"
        alpha = try MobileNetV2.Family.alpha(projectFilters: source.shape(layer: project, weight: "weights")?.last ?? 0)
        classCount = hasHead ? source.shape(layer: classifier, weight: "weights")?.last : nil
        layerNames = table.map(\.keras)
        self.layers = layers
    }

    /// Whether `source` looks like a TF-Slim MobileNetV2 checkpoint (has `…MobilenetV2/Conv/weights`).
    public static func recognises(_ source: WeightSource) -> Bool {
        source.layerNames.contains { ($0 == "MobilenetV2/Conv" || $0.hasSuffix("/MobilenetV2/Conv"))
            && source.shape(layer: $0, weight: "weights") != nil }
    }

    public func weightNames(layer: String) -> [String] {
        layers[layer]?.kind.weights.map(\.keras) ?? []
    }

    public func shape(layer: String, weight: String) -> [Int]? {
        guard let (slim, kind) = resolve(layer: layer, weight: weight),
              let shape = source.shape(layer: slim.scope, weight: slim.weight) else { return nil }
        return kind == .classifier && weight == "kernel" ? Self.denseShape(shape) : shape
    }

    public func tensor(layer: String, weight: String) throws -> Tensor {
        guard let (slim, kind) = resolve(layer: layer, weight: weight) else {
            throw EngineError.missingWeight(layer: layer, weight: weight, expectedShape: [])
        }
        let tensor = try source.tensor(layer: slim.scope, weight: slim.weight)
        return kind == .classifier && weight == "kernel" ? tensor.reshaped(Self.denseShape(tensor.shape)) : tensor
    }

    public var modelConfig: String? { nil }

    // MARK: - Renaming table

    static let classifierScope = "Logits/Conv2d_1c_1x1"

    /// What a slim scope holds, which fixes its weight names.
    enum Kind: Equatable {
        case convolution, depthwise, batchNormalization, classifier

        /// `(Keras weight, slim weight)` in Keras order.
        var weights: [(keras: String, slim: String)] {
            switch self {
            case .convolution: return [("kernel", "weights")]
            case .depthwise: return [("depthwise_kernel", "depthwise_weights")]
            case .batchNormalization:
                return ["gamma", "beta", "moving_mean", "moving_variance"].map { ($0, $0) }
            case .classifier: return [("kernel", "weights"), ("bias", "biases")]
            }
        }
    }

    struct SlimLayer {
        /// The full slim scope, e.g. `module/MobilenetV2/expanded_conv_3/depthwise/BatchNorm`.
        var scope: String
        var kind: Kind
    }

    /// Every Keras layer with weights and its slim scope below `MobilenetV2/`, in network order.
    static func layers(includingClassifier: Bool) -> [(keras: String, slim: String, kind: Kind)] {
        var table: [(keras: String, slim: String, kind: Kind)] = [
            ("Conv1", "Conv", .convolution), ("bn_Conv1", "Conv/BatchNorm", .batchNormalization),
        ]
        for id in MobileNetV2.blocks.indices {
            let keras = id == 0 ? "expanded_conv_" : "block_\(id)_"
            let slim = id == 0 ? "expanded_conv/" : "expanded_conv_\(id)/"
            let parts: [(String, Kind)] = id == 0
                ? [("depthwise", .depthwise), ("project", .convolution)]
                : [("expand", .convolution), ("depthwise", .depthwise), ("project", .convolution)]
            for (part, kind) in parts {
                table.append(("\(keras)\(part)", "\(slim)\(part)", kind))
                table.append(("\(keras)\(part)_BN", "\(slim)\(part)/BatchNorm", .batchNormalization))
            }
        }
        table += [("Conv_1", "Conv_1", .convolution), ("Conv_1_bn", "Conv_1/BatchNorm", .batchNormalization)]
        if includingClassifier { table.append(("predictions", classifierScope, .classifier)) }
        return table
    }

    private func resolve(layer: String, weight: String) -> ((scope: String, weight: String), Kind)? {
        guard let slim = layers[layer], let pair = slim.kind.weights.first(where: { $0.keras == weight }) else { return nil }
        return ((slim.scope, pair.slim), slim.kind)
    }

    /// `[1, 1, in, out]` → `[in, out]`; any other shape is passed through for the loader to reject.
    private static func denseShape(_ shape: [Int]) -> [Int] {
        shape.count == 4 && shape[0] == 1 && shape[1] == 1 ? [shape[2], shape[3]] : shape
    }
}
