import Foundation
import Testing
import TLEngine
import TLTensor

/// Weights live in one place; everything derived from them (packed panels, folded BatchNorm,
/// fused copies, planned executors) follows a change without any call to `prepare()`.
@Suite("Parameters cannot go stale")
struct StaleParameterTests {
    static let demo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/demo_hub/files/mobilenet_v2_demo_0.35_96.h5")

    func input(_ shape: [Int]) -> Tensor {
        Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { Float(sin(Double($0) * 0.37)) })
    }

    func reference(_ graph: Graph, _ x: Tensor) throws -> Tensor {
        try GraphExecutor(graph: graph, inputShapes: [x.shape]).run([x])[0]
    }

    @Test("a convolution whose kernel changes after packing computes with the new kernel, no prepare() needed")
    func convolutionRepacks() throws {
        let conv = Conv2D(name: "c", filters: 5, kernelSize: (3, 3), padding: .same)
        conv.setWeights(["kernel": input([3, 3, 4, 5]), "bias": Tensor(shape: [5], repeating: 0.5)])
        conv.prepare()
        let builder = GraphBuilder()
        let x = builder.input(shape: [6, 7, 4], name: "in")
        let graph = try builder.build(outputs: [try builder.apply(conv, to: [x])], name: "g")
        let data = input([2, 6, 7, 4])
        // One executor for both runs: it calls prepare() once, when planned.
        let executor = try GraphExecutor(graph: graph, inputShapes: [data.shape])
        let before = try executor.run([data])[0]
        conv.kernel = Tensor(shape: [3, 3, 4, 5], scalars: conv.kernel.scalars.map { $0 * 2 })
        let after = try executor.run([data])[0]
        // Doubling the kernel doubles everything but the bias.
        let expected = before.scalars.map { ($0 - 0.5) * 2 + 0.5 }
        #expect(zip(after.scalars, expected).allSatisfy { abs($0 - $1) <= 1e-4 * max(1, abs($1)) })
    }

    @Test("writing BatchNormalization.gamma changes its output")
    func batchNormFollowsGamma() throws {
        let bn = BatchNormalization(name: "bn")
        bn.setWeights(["gamma": Tensor(shape: [3], repeating: 1), "beta": Tensor(shape: [3], repeating: 0),
                       "moving_mean": Tensor(shape: [3], repeating: 0), "moving_variance": Tensor(shape: [3], repeating: 1)])
        let builder = GraphBuilder()
        let x = builder.input(shape: [2, 2, 3], name: "in")
        let graph = try builder.build(outputs: [try builder.apply(bn, to: [x])], name: "g")
        let data = input([1, 2, 2, 3])
        let executor = try GraphExecutor(graph: graph, inputShapes: [data.shape])
        let before = try executor.run([data])[0]
        bn.gamma = Tensor(shape: [3], scalars: [2, 2, 2])
        let after = try executor.run([data])[0]
        #expect(zip(after.scalars, before.scalars).allSatisfy { abs($0 - 2 * $1) <= 1e-5 })
    }

    @Test("a model's fused path (folded BatchNorm, fused blocks) sees weights changed in its graph")
    func fusedModelFollowsGraph() throws {
        let model = try Model.load(from: Self.demo)
        let x = input([2, 96, 96, 3])
        let first = try model.predict(input: x)
        // Change a convolution and a BatchNorm inside a fused inverted-residual block.
        for node in model.graph.nodes {
            if let conv = node.layer as? Conv2D, conv.name == "block_3_expand" {
                conv.kernel = Tensor(shape: conv.kernel.shape, scalars: conv.kernel.scalars.map { $0 * 1.5 })
            }
            if let bn = node.layer as? BatchNormalization, bn.name == "block_5_project_BN", let gamma = bn.gamma {
                bn.gamma = Tensor(shape: gamma.shape, scalars: gamma.scalars.map { -$0 })
            }
        }
        let second = try model.predict(input: x)
        let expected = try reference(model.graph, x)
        #expect(first.maxAbsoluteDifference(second) > 1e-3, "the change must show")
        #expect(second.maxAbsoluteDifference(expected) <= 1e-4 * max(1, expected.maxAbsolute))
        let features = try model.features(input: x, pooling: .avg)
        #expect(features.shape == [2, 1280])
    }
}
