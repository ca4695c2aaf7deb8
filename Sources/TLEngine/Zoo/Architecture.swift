import Foundation
import TLTensor

/// One `keras.applications` architecture family tlhub builds natively: the names it answers to,
/// how it is recognised in a weights-only file, and how a variant is built.
///
/// Adding a family: write `Zoo/<Name>.swift` with the builder (using `GraphBuilder`, exactly the
/// Keras layer names and epsilons of `keras/src/applications/<name>.py`, ending with
/// `applicationHead`) and a value type conforming to this protocol that holds a variant's
/// parameters; then add one line to ``Architecture/builtInFamilies``. Strict loading rejects any
/// file the builder does not match exactly.
public protocol ArchitectureFamily: Sendable, Hashable, CustomStringConvertible {
    /// The names `Architecture(name:)` accepts for this family, for help texts (`vgg16`,
    /// `mobilenetv2[_ALPHA]`).
    static var nameForms: [String] { get }
    /// The variant a name denotes, or nil when the name is not this family's.
    /// - Parameters:
    ///   - compactName: the name lower-cased, without `-` and `_` (`mobilenetv20.35`).
    ///   - original: the name as given, for error messages.
    /// - Throws: `EngineError.unknownArchitecture` for a name of this family with a bad variant.
    static func parse(compactName: String, original: String) throws -> Self?
    /// The variant a weights-only file holds, or nil when it is not this family's.
    /// - Parameters:
    ///   - weights: the file, automatic names already renumbered (`AutomaticNames`).
    ///   - layers: its layer names.
    /// - Throws: `EngineError.unknownArchitecture` for a file of this family that fits no variant.
    static func detect(in weights: WeightSource, layers: Set<String>) throws -> Self?
    /// Fills in what only the weights can tell (an omitted width, a layer-name flavour).
    func resolved(using weights: WeightSource) throws -> Self
    /// Builds the variant's graph (weights still to be loaded).
    func build(options: ApplicationOptions) throws -> Graph
    /// The input shape a weights-only file with its classifier fixes (VGG's `fc1`), or nil.
    func inputShape(fixedBy weights: WeightSource) -> [Int]?
    /// The smallest image side `keras.applications` accepts (`obtain_input_shape`'s `min_size`).
    var minimumInputSize: Int { get }
    /// Whether the graph depends on the image size, so a new size needs a rebuilt graph.
    var paddingDependsOnInputSize: Bool { get }
}

extension ArchitectureFamily {
    public func resolved(using weights: WeightSource) throws -> Self { self }

    /// `parse`, `detect` and `resolved` wrapped as an ``Architecture`` (opening the existential).
    static func parsedArchitecture(_ compactName: String, original: String) throws -> Architecture? {
        try parse(compactName: compactName, original: original).map { Architecture($0) }
    }
    static func detectedArchitecture(in weights: WeightSource, layers: Set<String>) throws -> Architecture? {
        try detect(in: weights, layers: layers).map { Architecture($0) }
    }
    func resolvedArchitecture(using weights: WeightSource) throws -> Architecture { Architecture(try resolved(using: weights)) }
    public func inputShape(fixedBy weights: WeightSource) -> [Int]? { nil }
    public var minimumInputSize: Int { 32 }
    public var paddingDependsOnInputSize: Bool { false }
}

/// A `keras.applications` architecture tlhub can build natively (no model config needed): one
/// variant of a registered ``ArchitectureFamily``.
///
/// ```swift
/// let architecture = try Architecture(name: "resnet50")           // or .resNet(depth: 50)
/// let graph = try architecture.build(options: ApplicationOptions(includeTop: false))
/// let detected = try Architecture.detect(from: weightFile)          // for weights-only files
/// ```
public struct Architecture: Sendable, Hashable, CustomStringConvertible {
    /// The family and its variant parameters.
    public let family: any ArchitectureFamily

    /// Wraps a family's variant.
    public init(_ family: some ArchitectureFamily) { self.family = family }

    // MARK: - The registry

    /// The families tlhub ships, in detection order (more specific rules first).
    public static let builtInFamilies: [any ArchitectureFamily.Type] = [
        MobileNetV2.Family.self,
        VGG.Family.self,
        InceptionResNetV2.Family.self,
        InceptionV3.Family.self,
        Xception.Family.self,
        DenseNet.Family.self,
        NASNet.Family.self,
        ResNet.Family.self,
        MobileNet.Family.self,
        MobileNetV3.Family.self,
        EfficientNet.Family.self,
        EfficientNetV2.Family.self,
        ConvNeXt.Family.self,
    ]

    private static let registry = Registry()

    /// Every registered family: the built-in ones, then those added with ``register(_:)``.
    public static var families: [any ArchitectureFamily.Type] { builtInFamilies + registry.added }

    /// Adds a family (a library user's own architecture) after the built-in ones, so names and
    /// weights-only files resolve to it too.
    public static func register(_ family: any ArchitectureFamily.Type) { registry.add(family) }

    private final class Registry: @unchecked Sendable {
        private let lock = NSLock()
        private var families: [any ArchitectureFamily.Type] = []
        var added: [any ArchitectureFamily.Type] { lock.lock(); defer { lock.unlock() }; return families }
        func add(_ family: any ArchitectureFamily.Type) {
            lock.lock(); defer { lock.unlock() }
            if !families.contains(where: { $0 == family }) { families.append(family) }
        }
    }

    /// Every name `init(name:)` accepts, for help texts.
    public static var names: [String] { families.flatMap { $0.nameForms } }

    // MARK: - Names

    /// Parses `mobilenetv2`, `mobilenet_v2_0.35`, `vgg16`, `resnet50`, `resnet50v2`, …
    /// (case-insensitive, `-` and `_` ignored). A width left out (`mobilenetv2`) is read from
    /// the weights later (``resolved(using:)``).
    /// - Throws: `EngineError.unknownArchitecture`.
    public init(name: String) throws {
        let compact = name.lowercased().replacingOccurrences(of: "-", with: "").replacingOccurrences(of: "_", with: "")
        for family in Self.families {
            if let architecture = try family.parsedArchitecture(compact, original: name) {
                self = architecture
                return
            }
        }
        throw EngineError.unknownArchitecture("unknown architecture '\(name)'; known: \(Self.names.joined(separator: ", "))")
    }

    public var description: String { family.description }

    public static func == (lhs: Architecture, rhs: Architecture) -> Bool { AnyHashable(lhs.family) == AnyHashable(rhs.family) }
    public func hash(into hasher: inout Hasher) { hasher.combine(AnyHashable(family)) }

    // MARK: - What the family says

    /// Builds the architecture's graph (weights still to be loaded).
    public func build(options: ApplicationOptions) throws -> Graph { try family.build(options: options) }

    /// Fills in what only the weights can tell: an omitted width, a depth multiplier, a
    /// layer-name flavour, EfficientNet's ImageNet rescaling.
    /// - Throws: `EngineError.unknownArchitecture` when the weights fit no variant.
    public func resolved(using weights: WeightSource) throws -> Architecture { try family.resolvedArchitecture(using: weights) }

    /// The smallest image side `keras.applications` accepts for this architecture (32; 75 for
    /// InceptionV3 and InceptionResNetV2, 71 for Xception).
    public var minimumInputSize: Int { family.minimumInputSize }

    /// Whether the graph depends on the image size (MobileNetV2's `correct_pad` before each
    /// stride-2 depthwise convolution), so a new size needs a rebuilt graph.
    public var paddingDependsOnInputSize: Bool { family.paddingDependsOnInputSize }

    // MARK: - Detection

    /// Recognises the architecture of a weights-only file from its layer names and kernel shapes,
    /// asking each family in registry order, and resolves what the weights tell.
    /// - Throws: `EngineError.unknownArchitecture` when nothing matches.
    public static func detect(from weights: WeightSource) throws -> Architecture {
        let layers = Set(weights.layerNames)
        for family in families {
            if let architecture = try family.detectedArchitecture(in: weights, layers: layers) {
                return try architecture.resolved(using: weights)
            }
        }
        throw EngineError.unknownArchitecture(
            "cannot recognise the architecture from the layer names (\(weights.layerNames.prefix(3).joined(separator: ", ")), …); pass --arch (\(names.joined(separator: ", ")))")
    }

    /// The constructor options a weights-only file implies: top or no top (a classifier kernel),
    /// class count, and the input size a classifier fixes (VGG's `fc1`).
    public static func options(for weights: WeightSource, architecture: Architecture) -> ApplicationOptions {
        var options = ApplicationOptions()
        guard let predictions = classifierKernelShape(in: weights), let classes = predictions.last else {
            options.includeTop = false
            return options
        }
        options.classes = classes
        options.inputShape = architecture.family.inputShape(fixedBy: weights)
        return options
    }

    /// The kernel shape of the classifier a weights-only file carries, whichever family named it
    /// (`predictions`, MobileNet's `conv_preds`, MobileNetV3's `Logits`/`logits`, ConvNeXt's
    /// `…_head_dense`); nil for a file without the top.
    static func classifierKernelShape(in weights: WeightSource) -> [Int]? {
        for layer in ["predictions", "conv_preds", "Logits", "logits"] {
            if let shape = weights.shape(layer: layer, weight: "kernel") { return shape }
        }
        if let prefix = ConvNeXt.prefix(of: weights) {
            return weights.shape(layer: "\(prefix)_head_dense", weight: "kernel")
        }
        return nil
    }

    /// The width a name gives after its family stem (`0.35` in `mobilenetv20.35`), 0 when
    /// omitted (read from the weights later).
    /// - Throws: `EngineError.unknownArchitecture` for text that is no positive number.
    static func width(_ text: Substring, family: String, original: String) throws -> Double {
        if text.isEmpty { return 0 }
        guard let value = Double(text), value > 0 else {
            throw EngineError.unknownArchitecture("unknown \(family) width '\(text)' in architecture '\(original)'")
        }
        return value
    }
}
