import Foundation
import Testing
@testable import TLEngine
import TLTensor

/// The check `Model` makes when it plans a graph on a CPU with AMX tiles (`Graph.choosingAMX`):
/// the first sample with fp32 GEMMs and with AMX ones, AMX kept when they agree within 3e-5 of
/// the largest output. Off where the CPU has no AMX or `TLHUB_AMX` is set.
@Suite("AMX where accurate", .enabled(if: Conv2D.amxUse == .whereAccurate))
struct AMXCheckTests {
    /// The features map of `graph` with every GEMM in fp32: a fused copy nobody turned AMX on in.
    func exactFeatures(_ graph: Graph, _ input: Tensor) throws -> Tensor {
        let node = try #require(graph.lastSpatialNode)
        return try GraphExecutor(graph: graph.truncated(at: node).fused(), inputShapes: [input.shape]).run([input])[0]
    }

    /// The first image of `input`, a batch of one.
    func first(_ input: Tensor) -> Tensor {
        Tensor(shape: [1] + input.shape.dropFirst(), scalars: Array(input.scalars.prefix(input.count / input.shape[0])))
    }

    @Test("MobileNetV2 runs on AMX within the parity tolerance; a row's bits do not depend on its batch")
    func choosesAMX() throws {
        let model = try Model(weights: try EngineFixtures.weights("mobilenetv2_035_32"))
        let input = try EngineFixtures.input("mobilenetv2_035_32")  // two images
        let features = try model.features(input: input, pooling: .none)
        let check = try #require(model.lastAMXCheck)
        #expect(check.chosen && check.convolutions >= 10 && check.difference <= AMXCheck.tolerance)
        let exact = try exactFeatures(model.graph, input)
        #expect(features != exact, "the AMX pass gave fp32's bits: AMX did not run")
        #expect(features.maxAbsoluteDifference(exact) <= 1e-4 * max(1, exact.maxAbsolute))
        // Alone, the first image plans a new graph (batch 1): checked again, it gives the bits
        // it had in the batch of two.
        let alone = try model.features(input: first(input), pooling: .none)
        #expect(alone.scalars == Array(features.scalars.prefix(alone.count)))
        // The check flags only the fused copies: the model's own layers stay fp32 (training reads them).
        let own = model.graph.uniqueLayers.compactMap { $0.layer as? Conv2D }
        #expect(!own.isEmpty && own.allSatisfy { !$0.allowsAMX })
    }

    @Test("convolutions fused() keeps as they are (VGG's) are copied before AMX is turned on in them")
    func ownsConvolutions() throws {
        let options = ApplicationOptions(inputShape: [32, 32, 3], classes: 10)
        let graph = try VGG.build(convolutionsPerBlock: VGG.vgg16Blocks, filters: [8, 12, 16, 16, 16], denseUnits: 24,
                                  options: options)
        try graph.loadWeights(from: try EngineFixtures.weights("vgg_small"))
        let model = Model(graph: graph)
        let input = try EngineFixtures.input("vgg_small")
        let expected = try EngineFixtures.output("vgg_small")
        let output = try model.predict(input: input)
        #expect(output.maxAbsoluteDifference(expected) <= EngineFixtures.tolerance(expected))
        let check = try #require(model.lastAMXCheck)
        #expect(check.convolutions > 0)
        let fused = try graph.fused()
        #expect(fused.amxConvolutions(apartFrom: graph).isEmpty, "fused() alone shares VGG's convolutions")
        #expect(try fused.owningConvolutions(apartFrom: graph).amxConvolutions(apartFrom: graph).count == check.convolutions)
        #expect(graph.uniqueLayers.compactMap { $0.layer as? Conv2D }.allSatisfy { !$0.allowsAMX })
    }
}
