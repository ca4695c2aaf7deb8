import Foundation
import Testing
import TLEngine
import TLTensor

@Suite("Keras parity of every layer and small model")
struct KerasParityTests {
    @Test("reference graph matches Keras", arguments: EngineFixtures.cases)
    func referenceMatchesKeras(_ fixture: EngineFixtures.Case) throws {
        let weights = try EngineFixtures.weights(fixture.name)
        let config = try #require(weights.modelConfig)
        let graph = try KerasGraphReader.graph(fromJSON: config)
        try graph.loadWeights(from: weights)
        let input = try EngineFixtures.input(fixture.name)
        let expected = try EngineFixtures.output(fixture.name)
        let actual = try GraphExecutor(graph: graph, inputShapes: [input.shape]).run([input])[0]
        #expect(actual.shape == expected.shape)
        #expect(actual.maxAbsoluteDifference(expected) <= EngineFixtures.tolerance(expected), "\(fixture.name)")
    }

    @Test("fused graph matches the unfused reference and Keras", arguments: EngineFixtures.cases)
    func fusedMatchesReference(_ fixture: EngineFixtures.Case) throws {
        let weights = try EngineFixtures.weights(fixture.name)
        let graph = try KerasGraphReader.graph(fromJSON: try #require(weights.modelConfig))
        try graph.loadWeights(from: weights)
        let fused = try graph.fused()
        let input = try EngineFixtures.input(fixture.name)
        let expected = try EngineFixtures.output(fixture.name)
        let reference = try GraphExecutor(graph: graph, inputShapes: [input.shape]).run([input])[0]
        let actual = try GraphExecutor(graph: fused, inputShapes: [input.shape]).run([input])[0]
        #expect(actual.maxAbsoluteDifference(reference) <= EngineFixtures.tolerance(reference))
        #expect(actual.maxAbsoluteDifference(expected) <= EngineFixtures.tolerance(expected), "\(fixture.name)")
    }
}
