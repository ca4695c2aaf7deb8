import Foundation
import Testing
import TLEngine
import TLPipeline
import TLTensor

/// `model.h5` for networks with layers Keras has no built-in class for (ConvNeXt's LayerScale,
/// InceptionResNetV2's scaled residual): written with built-in layers in their place, read back,
/// the same outputs as Keras' own on the zoo fixtures.
@Suite("A full-model .h5 of ConvNeXt and InceptionResNetV2")
struct KerasModelExportTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    func roundTrip(_ graph: Graph, fixture: URL) throws {
        try graph.loadWeights(from: try SafeTensorsFile(contentsOf: fixture.appendingPathExtension("safetensors")))
        let input = try NumPy.read(contentsOf: URL(fileURLWithPath: fixture.path + "_input.npy"))
        let expected = try NumPy.read(contentsOf: URL(fileURLWithPath: fixture.path + "_output.npy"))
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("export-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("model.h5")
        try KerasModelExport.write(graph, to: file)

        let reloaded = try Model.load(from: file)
        let classes = Set(reloaded.graph.nodes.map { "\(type(of: $0.layer))" })
        #expect(!classes.contains("LayerScale") && !classes.contains("ScaledResidual"), "\(classes)")
        let actual = try reloaded.predict(input: input)
        let error = actual.maxAbsoluteDifference(expected)
        #expect(error <= 1e-4 * max(1, expected.maxAbsolute), "max error \(error) of \(expected.maxAbsolute)")
    }

    @Test("ConvNeXt: LayerScale as a 1×1 DepthwiseConv2D, the groups=channels Conv2D, LayerNormalization")
    func convNeXt() throws {
        let graph = try ConvNeXt.build(depths: [1, 1, 2, 1], projectionDimensions: [8, 16, 24, 32],
                                       options: ApplicationOptions(inputShape: [32, 32, 3], classes: 10), name: "convnext_test")
        try roundTrip(graph, fixture: Self.fixtures.appendingPathComponent("zoo-mobile-efficient-convnext/convnext_test_32"))
    }

    @Test("InceptionResNetV2: the scaled residual as a Rescaling and an Add")
    func inceptionResNetV2() throws {
        let graph = try InceptionResNetV2.build(options: ApplicationOptions(inputShape: [75, 75, 3], classes: 10), filterDivisor: 16)
        try roundTrip(graph, fixture: Self.fixtures.appendingPathComponent("zoo-inception-densenet-nasnet/inception_resnet_v2_narrow"))
    }
}
