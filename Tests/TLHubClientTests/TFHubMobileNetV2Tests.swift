import Foundation
import Testing
import TLEngine
import TLFormats
import TLHubClient
import TLTensor

/// A TF-Slim-named tensor bundle written by TensorFlow (`Tests/Fixtures/make_tfhub_fixtures.py`),
/// opened with `TensorBundle`, renamed by `TFSlimMobileNetV2` and run by the native MobileNetV2,
/// against the outputs of the tf-keras model the bundle was made from.
@Suite("TF Hub MobileNetV2 (TF-Slim names)")
struct TFHubMobileNetV2Tests {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tfhub")

    static func bundle() throws -> TensorBundle {
        try TensorBundle(prefix: directory.appendingPathComponent("mobilenet_v2_035/variables/variables"))
    }

    static func golden(_ name: String) throws -> Tensor {
        try NumPy.read(contentsOf: directory.appendingPathComponent("\(name).npy"))
    }

    @Test("reads alpha, scope and the classifier from the slim variables")
    func describesCheckpoint() throws {
        let slim = try TFSlimMobileNetV2(Self.bundle())
        #expect(slim.alpha == 0.35)
        #expect(slim.scope == "module/")
        #expect(slim.classCount == 17)
        #expect(slim.hasClassifier)
        #expect(slim.architecture == .mobileNetV2(alpha: 0.35))
        #expect(slim.options.includeTop && slim.options.classes == 17)
        #expect(slim.layerNames.first == "Conv1" && slim.layerNames.last == "predictions")
        #expect(slim.shape(layer: "predictions", weight: "kernel") == [1280, 17])
        #expect(slim.shape(layer: "block_16_project", weight: "kernel") == [1, 1, 336, 112])
        #expect(slim.weightNames(layer: "expanded_conv_depthwise") == ["depthwise_kernel"])
        #expect(TFSlimMobileNetV2.recognises(try Self.bundle()))
    }

    @Test("matches Keras at an even and an odd image size", arguments: [32, 33])
    func matchesKeras(size: Int) throws {
        let slim = try TFSlimMobileNetV2(Self.bundle())
        let model = try Model(weights: slim, architecture: slim.architecture)
        let input = try Self.golden("input_\(size)")
        for (name, actual) in [("predictions", try model.predict(input: input)),
                               ("features", try model.features(input: input, pooling: .avg))] {
            let expected = try Self.golden("\(name)_\(size)")
            let difference = actual.maxAbsoluteDifference(expected)
            #expect(difference <= 1e-4 * max(1, expected.maxAbsolute), "\(name) at \(size)×\(size): max difference \(difference)")
        }
    }

    /// Its randomized BatchNorm statistics fold into gains large enough that AMX's three
    /// bfloat16 products per fp32 one land 8e-5 to 2e-3 of the largest feature from fp32 after 17
    /// blocks: the check `Model` makes on a CPU with AMX keeps every GEMM in fp32.
    @Test("the AMX check keeps this checkpoint in fp32", .enabled(if: Conv2D.amxUse == .whereAccurate))
    func staysExact() throws {
        let slim = try TFSlimMobileNetV2(Self.bundle())
        let model = try Model(weights: slim, architecture: slim.architecture)
        let input = try Self.golden("input_32")
        let features = try model.features(input: input, pooling: .none)
        let check = try #require(model.lastAMXCheck)
        #expect(!check.chosen && check.difference > 3e-5, "AMX was \(check.difference) of the largest feature from fp32")
        let node = try #require(model.graph.lastSpatialNode)
        let exact = try GraphExecutor(graph: model.graph.truncated(at: node).fused(), inputShapes: [input.shape]).run([input])[0]
        #expect(features == exact)
    }

    @Test("detects the architecture without being told")
    func detectsArchitecture() throws {
        let model = try Model(weights: TFSlimMobileNetV2(Self.bundle()))
        #expect(model.architecture == .mobileNetV2(alpha: 0.35))
        #expect(model.options?.classes == 17)
    }

    @Test("a checkpoint without the logits is a feature extractor")
    func withoutClassifier() throws {
        let source = Hiding(base: try Self.bundle(), hidden: ["module/MobilenetV2/Logits/Conv2d_1c_1x1"])
        let slim = try TFSlimMobileNetV2(source)
        #expect(!slim.hasClassifier && slim.classCount == nil)
        let model = try Model(weights: slim, architecture: slim.architecture)
        let input = try Self.golden("input_32")
        let expected = try Self.golden("features_32")
        #expect(try model.features(input: input).maxAbsoluteDifference(expected) <= 1e-4 * max(1, expected.maxAbsolute))
    }

    @Test("a missing variable is named in the error")
    func missingVariable() throws {
        let name = "module/MobilenetV2/expanded_conv_7/depthwise/BatchNorm/moving_variance"
        let source = Hiding(base: try Self.bundle(), hidden: [name])
        #expect(throws: EngineError.missingVariable(name: name, layer: "block_7_depthwise_BN", weight: "moving_variance")) {
            try TFSlimMobileNetV2(source)
        }
        do {
            _ = try TFSlimMobileNetV2(source)
        } catch {
            #expect(error.localizedDescription.contains(name))
        }
    }

    @Test("a checkpoint that is not MobileNetV2 is refused")
    func notMobileNetV2() throws {
        let source = Hiding(base: try Self.bundle(), hidden: ["module/MobilenetV2/Conv/weights"])
        #expect(throws: EngineError.self) { try TFSlimMobileNetV2(source) }
    }
}

/// A weight source without some variables (`layer/weight`) or whole layers.
private struct Hiding: WeightSource {
    let base: WeightSource
    let hidden: Set<String>

    private func isHidden(_ layer: String, _ weight: String) -> Bool {
        hidden.contains(layer) || hidden.contains("\(layer)/\(weight)")
    }

    var layerNames: [String] { base.layerNames.filter { !weightNames(layer: $0).isEmpty } }
    func weightNames(layer: String) -> [String] { base.weightNames(layer: layer).filter { !isHidden(layer, $0) } }
    func shape(layer: String, weight: String) -> [Int]? { isHidden(layer, weight) ? nil : base.shape(layer: layer, weight: weight) }
    func tensor(layer: String, weight: String) throws -> Tensor {
        guard !isHidden(layer, weight) else { throw EngineError.missingWeight(layer: layer, weight: weight, expectedShape: []) }
        return try base.tensor(layer: layer, weight: weight)
    }
    var modelConfig: String? { nil }
}
