import Foundation
import Testing
import TLEngine
import TLTensor
@testable import TLTraining

/// Analytic gradients against central finite differences, per layer, in double-checked float32.
@Suite("Gradients against finite differences")
struct GradientCheckTests {
    /// Checks dLoss/dParameter for a few entries of each parameter, and dLoss/dInput, where
    /// loss = Σ output · probe (a fixed random probe makes every output matter).
    func check(_ graph: Graph, input: Tensor, tolerance: Float = 2e-2) throws {
        let model = try TrainingGraph(graph: graph)
        var random = SeededRandom(seed: 3)
        let probeSource = try model.forward(input, mode: .inference, random: &random).output
        let probe = (0..<probeSource.count).map { _ in random.unit() * 2 - 1 }
        func loss(_ x: Tensor) throws -> Float {
            var r = SeededRandom(seed: 0)
            let output = try model.forward(x, mode: .inference, random: &r).output
            return zip(output.scalars, probe).reduce(0) { $0 + $1.0 * $1.1 }
        }
        var r = SeededRandom(seed: 0)
        let pass = try model.forward(input, mode: .inference, random: &r)
        model.zeroGradients()
        // Track the input gradient through an identity reader of the input.
        try model.backward(pass, outputGradient: Tensor(shape: pass.output.shape, scalars: probe), isPreActivation: false)
        let epsilon: Float = 1e-2
        for parameter in model.parameters {
            let original = parameter.value
            for index in Set([0, original.count / 2, original.count - 1]) {
                var plus = original, minus = original
                plus.scalars[index] += epsilon
                minus.scalars[index] -= epsilon
                parameter.value = plus
                let up = try loss(input)
                parameter.value = minus
                let down = try loss(input)
                parameter.value = original
                let numeric = (up - down) / (2 * epsilon)
                let analytic = parameter.gradient[index]
                #expect(abs(numeric - analytic) <= tolerance * max(1, abs(numeric)), "\(parameter.path)[\(index)]: \(analytic) vs \(numeric)")
            }
        }
    }

    func input(_ shape: [Int], seed: UInt64 = 1) -> Tensor {
        var random = SeededRandom(seed: seed)
        return Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in random.unit() * 2 - 1 })
    }

    @Test("dense layers with every head activation", arguments: ["linear", "relu", "tanh", "sigmoid", "softmax", "elu", "swish"])
    func dense(activation: String) throws {
        let builder = GraphBuilder()
        var x = builder.input(shape: [5], name: "in")
        x = try builder.apply(Dense(name: "d1", units: 4, activation: try Activation(kerasName: activation, keras3: true, layer: "d1")), to: [x])
        x = try builder.apply(Dense(name: "d2", units: 3), to: [x])
        let graph = try builder.build(outputs: [x], name: "g")
        let head = try Head(parsing: "dense4,dense3").build(inputShape: [5], seed: 1)
        try graph.loadWeights(from: WeightDictionary(graph: head).renamed(["dense": "d1", "dense_1": "d2"]))
        try check(graph, input: input([3, 5]))
    }

    @Test("global average and max pooling, flatten")
    func poolingAndFlatten() throws {
        for head in ["gap,dense3", "gmp,dense3", "flatten,dense3-tanh,dense2"] {
            let graph = try Head(parsing: head).build(inputShape: [3, 2, 4], seed: 5)
            try check(graph, input: input([2, 3, 2, 4], seed: 9))
        }
    }

    @Test("a tensor read twice sums both gradients (a shortcut Add)")
    func severalReaders() throws {
        let builder = GraphBuilder()
        let x = builder.input(shape: [4], name: "in")
        let a = try builder.apply(Dense(name: "a", units: 4, activation: .tanh), to: [x])
        let b = try builder.apply(Dense(name: "b", units: 4), to: [a])
        let sum = try builder.apply(ElementwiseMerge(name: "add", operation: .add), to: [a, b])
        let graph = try builder.build(outputs: [sum], name: "g")
        var random = SeededRandom(seed: 4)
        for (name, units) in [("a", 4), ("b", 4)] {
            let layer = graph.nodes.first { $0.layer.name == name }!.layer
            layer.setWeights(["kernel": Tensor(shape: [4, units], scalars: (0..<16).map { _ in random.unit() - 0.5 }),
                              "bias": Tensor(shape: [units], scalars: (0..<units).map { _ in random.unit() - 0.5 })])
        }
        try check(graph, input: input([2, 4]))
    }
}

extension WeightDictionary {
    /// The same weights under other layer names.
    func renamed(_ names: [String: String]) -> WeightDictionary {
        WeightDictionary(entries: entries.map { (names[$0.layer] ?? $0.layer, $0.weights) })
    }
}
