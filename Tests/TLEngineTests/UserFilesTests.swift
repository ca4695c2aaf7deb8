import Foundation
import Testing
import TLEngine
import TLFormats
import TLTensor

/// Weight files saved the way users save them (`make_user_files_fixtures.py`): tf.keras names
/// with `/`, automatic names offset by a busy session, Keras 3 fine-tuned models with a nested
/// base, subclassed models.
enum UserFiles {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/user-files")

    static func url(_ name: String) -> URL { directory.appendingPathComponent(name) }
    static func tensor(_ name: String) throws -> Tensor { try NumPy.read(contentsOf: url(name)) }

    /// Runs `graph` on the case's input (reference and fused graphs) and compares with Keras.
    static func expectParity(_ graph: Graph, case name: String) throws {
        let input = try tensor("\(name)_input.npy")
        let expected = try tensor("\(name)_output.npy")
        for candidate in [graph, try graph.fused()] {
            let actual = try GraphExecutor(graph: candidate, inputShapes: [input.shape]).run([input])[0]
            #expect(actual.shape == expected.shape, "\(name)")
            let error = actual.maxAbsoluteDifference(expected)
            #expect(error <= EngineFixtures.tolerance(expected), "\(name): max error \(error)")
        }
    }
}

@Suite("Files as users save them run with Keras's numbers")
struct UserFilesTests {
    @Test("tf.keras DenseNet save_weights: `conv1/conv` names are nested HDF5 groups")
    func denseNetSlashNames() throws {
        let file = try WeightFile.open(UserFiles.url("densenet_slash.h5"))
        #expect(file.layerNames.contains("conv1/conv"))
        #expect(file.layerNames.contains("conv2_block1_1_bn") || file.layerNames.contains("conv2_block1_1/bn"))
        #expect(file.shape(layer: "conv1/conv", weight: "kernel") == [7, 7, 3, 64])
        let graph = try DenseNet.build(blocks: [1, 2, 1, 1], options: ApplicationOptions(inputShape: [32, 32, 3], classes: 10))
        try graph.loadWeights(from: file)
        try UserFiles.expectParity(graph, case: "densenet_slash")
    }

    @Test("tf.keras MobileNetV3Small save_weights (`Conv/BatchNorm`): detected, loaded, Keras's output")
    func mobileNetV3SlashNames() throws {
        let file = try WeightFile.open(UserFiles.url("mobilenetv3small_slash.h5"))
        #expect(file.layerNames.contains("expanded_conv/depthwise/BatchNorm"))
        let model = try Model.load(from: UserFiles.url("mobilenetv3small_slash.h5"))
        let input = try UserFiles.tensor("mobilenetv3small_slash_input.npy")
        let expected = try UserFiles.tensor("mobilenetv3small_slash_output.npy")
        let actual = try model.predict(input: input)
        #expect(actual.count == expected.count)
        #expect(Tensor(shape: expected.shape, scalars: actual.scalars).maxAbsoluteDifference(expected) <= EngineFixtures.tolerance(expected))
    }

    @Test("InceptionV3 saved after other models (`conv2d_5`…, `batch_normalization_2`…) loads by order")
    func inceptionOffsetNames() throws {
        let file = try WeightFile.open(UserFiles.url("inception_v3_offset.h5"))
        #expect(file.layerNames.first == "conv2d_5")
        #expect(!file.layerNames.contains("conv2d"))
        let graph = try InceptionV3.build(options: ApplicationOptions(includeTop: false, inputShape: [75, 75, 3]), filterDivisor: 16)
        // By name alone the file does not load: that is the bug users hit.
        #expect(throws: (any Error).self) { try graph.loadWeights(from: file) }
        try graph.loadWeights(from: AutomaticNames.adapting(file))
        try UserFiles.expectParity(graph, case: "inception_v3_offset")
    }

    @Test("EfficientNet saved after other models (`normalization_1`) loads by order")
    func efficientNetOffsetNames() throws {
        let file = try WeightFile.open(UserFiles.url("efficientnet_offset.h5"))
        #expect(file.layerNames.contains("normalization_1"))
        let graph = try EfficientNet.build(width: 0.125, depth: 0.5, defaultSize: 32,
                                           options: ApplicationOptions(inputShape: [32, 32, 3], classes: 10))
        try graph.loadWeights(from: AutomaticNames.adapting(file))
        try UserFiles.expectParity(graph, case: "efficientnet_offset")
    }

    @Test("a wrong architecture is still refused by order-based names (shapes are checked)")
    func offsetNamesStayStrict() throws {
        let file = try WeightFile.open(UserFiles.url("inception_v3_offset.h5"))
        let wider = try InceptionV3.build(options: ApplicationOptions(includeTop: false, inputShape: [75, 75, 3]), filterDivisor: 8)
        #expect(throws: (any Error).self) { try wider.loadWeights(from: AutomaticNames.adapting(file)) }
    }

    /// The full-size zoo with every automatic name offset as a busy session leaves it.
    @Test("full-size InceptionV3, Xception, InceptionResNetV2, EfficientNetB0 are detected with offset names",
          arguments: [(Architecture.inceptionV3, "inception"), (.xception, "xception"),
                      (.inceptionResNetV2, "inception_resnet"), (.efficientNet(.b0, imagenetScaling: false), "efficientnet")])
    func detectionWithOffsetNames(architecture: Architecture, label: String) throws {
        let options = ApplicationOptions(includeTop: false)
        let shapes = OffsetNames(ExpectedShapes(graph: try architecture.build(options: options)), offset: 94)
        #expect(!shapes.layerNames.contains("conv2d") && !shapes.layerNames.contains("normalization"), "\(label)")
        let detected = try Architecture.detect(from: AutomaticNames.adapting(shapes))
        #expect(detected.description == architecture.description, "\(label)")
    }

    @Test("Keras 3 fine-tuned model, nested MobileNetV2 base, saved as .h5 and .keras: predict and features equal Keras",
          arguments: ["finetuned_k3.h5", "finetuned_k3.keras", "finetuned_seq_k3.keras"])
    func nestedFineTuned(file: String) throws {
        let name = String(file.prefix { $0 != "." })
        let model = try Model.load(from: UserFiles.url(file))
        let input = try UserFiles.tensor("\(name)_input.npy")
        let expected = try UserFiles.tensor("\(name)_output.npy")
        let scores = try model.predict(input: input)
        #expect(scores.shape == expected.shape)
        #expect(scores.maxAbsoluteDifference(expected) <= EngineFixtures.tolerance(expected), "\(file)")
        let features = try model.features(input: input, pooling: .avg)
        let expectedFeatures = try UserFiles.tensor("\(name)_features.npy")
        #expect(features.maxAbsoluteDifference(expectedFeatures) <= EngineFixtures.tolerance(expectedFeatures), "\(file)")
    }
}

/// A weight source whose automatic names (`conv2d`, `normalization`, …) are numbered from `offset`.
struct OffsetNames: WeightSource {
    let base: WeightSource
    let offset: Int
    init(_ base: WeightSource, offset: Int) { self.base = base; self.offset = offset }

    private func shifted(_ name: String) -> String {
        for prefix in AutomaticNames.prefixes {
            if name == prefix { return "\(prefix)_\(offset)" }
            if name.hasPrefix(prefix + "_"), let number = Int(name.dropFirst(prefix.count + 1)) { return "\(prefix)_\(number + offset)" }
        }
        return name
    }

    private func original(_ name: String) -> String {
        base.layerNames.first { shifted($0) == name } ?? "\u{0}"
    }

    var layerNames: [String] { base.layerNames.map(shifted) }
    func weightNames(layer: String) -> [String] { base.weightNames(layer: original(layer)) }
    func shape(layer: String, weight: String) -> [Int]? { base.shape(layer: original(layer), weight: weight) }
    func tensor(layer: String, weight: String) throws -> Tensor { try base.tensor(layer: original(layer), weight: weight) }
    var modelConfig: String? { nil }
}
