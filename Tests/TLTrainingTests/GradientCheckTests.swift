import Foundation
import Testing
import TLEngine
import TLTensor
@testable import TLTraining

/// Analytic gradients against central finite differences, per layer, in double-checked float32.
@Suite("Gradients against finite differences")
struct GradientCheckTests {
    /// Checks dLoss/dParameter for a few entries of each trainable parameter, and dLoss/dInput,
    /// where loss = Σ output · probe (a fixed random probe makes every output matter). A training
    /// pass changes nothing the loss reads (BatchNormalization's moving statistics only).
    func check(_ graph: Graph, input: Tensor, mode: Mode = .inference, tolerance: Float = 2e-2, epsilon: Float = 1e-2,
               label: String = "", inputGradient checksInput: Bool = true) throws {
        let model = try TrainingGraph(graph: graph)
        model.tracksInputGradient = checksInput
        var random = SeededRandom(seed: 3)
        let probeSource = try model.forward(input, mode: mode, random: &random).output
        let probe = (0..<probeSource.count).map { _ in random.unit() * 2 - 1 }
        func loss(_ x: Tensor) throws -> Float {
            var r = SeededRandom(seed: 0)
            let output = try model.forward(x, mode: mode, random: &r).output
            return Float(zip(output.scalars, probe).reduce(0.0) { $0 + Double($1.0) * Double($1.1) })
        }
        var r = SeededRandom(seed: 0)
        let pass = try model.forward(input, mode: mode, random: &r)
        model.zeroGradients()
        try model.backward(pass, outputGradient: Tensor(shape: pass.output.shape, scalars: probe), isPreActivation: false)
        func numeric(_ set: (Float) throws -> Void) throws -> Float {
            try set(epsilon)
            let up = try loss(input)
            try set(-epsilon)
            let down = try loss(input)
            try set(0)
            return (up - down) / (2 * epsilon)
        }
        for parameter in model.trainableParameters {
            let original = parameter.value
            for index in Set([0, original.count / 3, original.count / 2, original.count - 1]) {
                let value = try numeric { delta in
                    var changed = original
                    changed.scalars[index] += delta
                    parameter.value = changed
                }
                let analytic = parameter.gradient[index]
                #expect(abs(value - analytic) <= tolerance * max(1, abs(value)), "\(label) \(parameter.path)[\(index)]: \(analytic) vs \(value)")
            }
        }
        guard checksInput else { return }
        let inputGradient = try #require(model.inputGradient)
        for index in Set([0, input.count / 5, input.count / 2, input.count - 1]) {
            var up = input, down = input
            up.scalars[index] += epsilon
            down.scalars[index] -= epsilon
            let expected = (try loss(up) - loss(down)) / (2 * epsilon)
            #expect(abs(expected - inputGradient.scalars[index]) <= tolerance * max(1, abs(expected)),
                    "\(label) input[\(index)]: \(inputGradient.scalars[index]) vs \(expected)")
        }
    }

    /// Random weights for every layer of `graph` (BN statistics away from identity).
    func randomize(_ graph: Graph, seed: UInt64) {
        var random = SeededRandom(seed: seed)
        for (layer, node) in graph.uniqueLayers {
            var weights: [String: Tensor] = [:]
            for spec in layer.expectedWeights(inputShapes: graph.nodes[node].inputs.map { graph.shapes[$0] }) {
                let count = spec.shape.reduce(1, *)
                let values: [Float] = (0..<count).map { _ in
                    switch spec.name {
                    case "moving_variance", "gamma": return 0.5 + random.unit()
                    default: return random.unit() - 0.5
                    }
                }
                weights[spec.name] = Tensor(shape: spec.shape, scalars: values)
            }
            if !weights.isEmpty { layer.setWeights(weights) }
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

extension GradientCheckTests {
    func graph(input shape: [Int], _ body: (GraphBuilder, GraphTensor) throws -> GraphTensor) throws -> Graph {
        let builder = GraphBuilder()
        let x = builder.input(shape: shape, name: "in")
        let graph = try builder.build(outputs: [try body(builder, x)], name: "g")
        randomize(graph, seed: 17)
        return graph
    }

    @Test("Conv2D: strides, dilation, groups, same and valid, fused-able and other activations")
    func convolutions() throws {
        let cases: [(String, Conv2D)] = [
            ("3x3 same stride 2", Conv2D(name: "c", filters: 5, kernelSize: (3, 3), strides: (2, 2), padding: .same)),
            ("3x2 valid dilated", Conv2D(name: "c", filters: 3, kernelSize: (3, 2), dilation: (2, 1), activation: .relu)),
            ("grouped swish", Conv2D(name: "c", filters: 4, kernelSize: (2, 2), padding: .same, groups: 2, activation: .swish)),
            ("1x1 no bias", Conv2D(name: "c", filters: 3, kernelSize: (1, 1), useBias: false, activation: .tanh)),
            // Stride 1, one group: the input gradient is a convolution with the flipped kernel
            // (odd and even windows, same padding uneven for the even one, and valid).
            ("3x3 same relu", Conv2D(name: "c", filters: 6, kernelSize: (3, 3), padding: .same, activation: .relu)),
            ("4x2 same", Conv2D(name: "c", filters: 3, kernelSize: (4, 2), padding: .same)),
            ("2x3 valid", Conv2D(name: "c", filters: 2, kernelSize: (2, 3), activation: .sigmoid)),
        ]
        for (label, layer) in cases {
            let g = try graph(input: [6, 5, 4]) { builder, x in try builder.apply(layer, to: [x]) }
            try check(g, input: input([2, 6, 5, 4], seed: 21), epsilon: 1e-3, label: label)
        }
    }

    @Test("Conv2D kernel gradients summed over several pixel blocks of more than 384 pixels each (AlexNet's conv2 shape)")
    func convolutionOverManyPixelBlocks() throws {
        // 5×5×96 patches: blocks of 436 pixels, a 30×30 image (one per part) takes three, the
        // second added onto the first's sums in a product of two K blocks.
        let layer = Conv2D(name: "c", filters: 4, kernelSize: (5, 5), padding: .same)
        let g = try graph(input: [30, 30, 96]) { builder, x in try builder.apply(layer, to: [x]) }
        let windows = layer.windows(input: [2, 30, 30, 96], output: [2, 30, 30, 4])
        #expect(windows.backwardBlockPixels > 384 && 2 * windows.backwardBlockPixels < 30 * 30)
        try check(g, input: input([2, 30, 30, 96], seed: 8), epsilon: 1e-2, label: "5x5x96")
    }

    @Test("a first layer (no input gradient): strided and padded kernel gradients (im2col for few channels, direct for more)")
    func firstLayerConvolutions() throws {
        let cases: [(String, Conv2D, [Int])] = [
            ("11x11 stride 4 valid", Conv2D(name: "c", filters: 5, kernelSize: (11, 11), strides: (4, 4), activation: .relu), [27, 27, 3]),
            ("3x3 stride 2 same", Conv2D(name: "c", filters: 33, kernelSize: (3, 3), strides: (2, 2), padding: .same), [9, 8, 16]),
            ("3x2 stride 2,1 valid", Conv2D(name: "c", filters: 4, kernelSize: (3, 2), strides: (2, 1)), [8, 7, 17]),
            ("3x3 stride 2 valid, 20 channels", Conv2D(name: "c", filters: 7, kernelSize: (3, 3), strides: (2, 2)), [10, 9, 20]),
            ("5x5 same", Conv2D(name: "c", filters: 6, kernelSize: (5, 5), padding: .same), [7, 6, 4]),
        ]
        for (label, layer, shape) in cases {
            let g = try graph(input: shape) { builder, x in try builder.apply(layer, to: [x]) }
            try check(g, input: input([2] + shape, seed: 5), epsilon: 1e-3, label: label, inputGradient: false)
        }
    }

    @Test("DepthwiseConv2D with a multiplier, SeparableConv2D")
    func depthwise() throws {
        let d = try graph(input: [5, 6, 3]) { builder, x in
            try builder.apply(DepthwiseConv2D(name: "d", kernelSize: (3, 3), strides: (2, 1), padding: .same, depthMultiplier: 2,
                                              activation: .hardSwish), to: [x])
        }
        try check(d, input: input([2, 5, 6, 3], seed: 5))
        let s = try graph(input: [5, 6, 3]) { builder, x in
            try builder.apply(SeparableConv2D(name: "s", filters: 4, kernelSize: (3, 3), padding: .same, activation: .elu(alpha: 1)), to: [x])
        }
        try check(s, input: input([2, 5, 6, 3], seed: 6))
    }

    @Test("BatchNormalization on batch statistics (training) and on moving statistics", arguments: [Mode.training, .inference])
    func batchNormalization(mode: Mode) throws {
        let g = try graph(input: [3, 3, 4]) { builder, x in
            let y = try builder.apply(Conv2D(name: "c", filters: 4, kernelSize: (2, 2), padding: .same), to: [x])
            return try builder.batchNormalization(y, name: "bn")
        }
        try check(g, input: input([3, 3, 3, 4], seed: 8), mode: mode)
    }

    @Test("max and average pooling, same and valid; zero padding and cropping")
    func poolingAndPadding() throws {
        for (kind, padding) in [(Pooling2D.Kind.max, Padding.same), (.max, .valid), (.average, .same), (.average, .valid)] {
            let g = try graph(input: [5, 5, 2]) { builder, x in
                let y = try builder.apply(Conv2D(name: "c", filters: 2, kernelSize: (1, 1)), to: [x])
                return try builder.apply(Pooling2D(name: "p", kind: kind, poolSize: (3, 2), strides: (2, 2), padding: padding), to: [y])
            }
            // A small step, so no perturbation moves a window's maximum to another cell.
            try check(g, input: input([2, 5, 5, 2], seed: 9), epsilon: 1e-3, label: "\(kind) \(padding)")
        }
        for crops in [false, true] {
            let g = try graph(input: [5, 4, 2]) { builder, x in
                let y = try builder.apply(SpatialPadding(name: "p", amounts: ((1, 0), (2, 1)), crops: crops), to: [x])
                return try builder.apply(Conv2D(name: "c", filters: 2, kernelSize: (2, 2)), to: [y])
            }
            try check(g, input: input([2, 5, 4, 2], seed: 10), label: crops ? "cropping" : "padding")
        }
    }

    @Test("squeeze-excite: a broadcast Multiply; Concatenate; Subtract, Maximum")
    func merges() throws {
        let se = try graph(input: [3, 3, 4]) { builder, x in
            let s = try builder.globalAveragePooling2D(x, keepDimensions: true, name: "squeeze")
            let gate = try builder.apply(Conv2D(name: "gate", filters: 4, kernelSize: (1, 1), activation: .sigmoid), to: [s])
            return try builder.apply(ElementwiseMerge(name: "excite", operation: .multiply), to: [x, gate])
        }
        try check(se, input: input([2, 3, 3, 4], seed: 11))
        for operation in [ElementwiseMerge.Operation.subtract, .maximum, .average] {
            let g = try graph(input: [2, 2, 3]) { builder, x in
                let a = try builder.apply(Conv2D(name: "a", filters: 3, kernelSize: (1, 1)), to: [x])
                let merged = try builder.apply(ElementwiseMerge(name: "m", operation: operation), to: [x, a])
                let other = try builder.apply(Conv2D(name: "b", filters: 2, kernelSize: (1, 1)), to: [x])
                return try builder.apply(Concatenate(name: "cat"), to: [merged, other])
            }
            try check(g, input: input([2, 2, 2, 3], seed: 12))
        }
    }

    @Test("ConvNeXt block: groups=channels conv, LayerNormalization, Dense on pixels, gelu, LayerScale, residual Add")
    func convNeXtBlock() throws {
        let g = try graph(input: [4, 4, 6]) { builder, x in
            var y = try builder.apply(ChannelwiseConv2D(name: "dw", channels: 6, kernelSize: (3, 3), padding: .same), to: [x])
            y = try builder.apply(LayerNormalization(name: "ln", epsilon: 1e-6), to: [y])
            y = try builder.apply(Dense(name: "pw1", units: 12, activation: .gelu(approximate: false)), to: [y])
            y = try builder.apply(Dense(name: "pw2", units: 6), to: [y])
            y = try builder.apply(LayerScale(name: "scale", projectionDimension: 6), to: [y])
            return try builder.apply(ElementwiseMerge(name: "add", operation: .add), to: [x, y])
        }
        try check(g, input: input([2, 4, 4, 6], seed: 14))
        for (center, scale) in [(false, true), (true, false)] {
            let ln = try graph(input: [3, 5]) { builder, x in
                let y = try builder.apply(Dense(name: "d", units: 5), to: [x])
                return try builder.apply(LayerNormalization(name: "ln", epsilon: 1e-3, center: center, scale: scale), to: [y])
            }
            try check(ln, input: input([2, 3, 5], seed: 15), label: "center \(center) scale \(scale)")
        }
    }

    @Test("InceptionResNetV2's scaled residual: the shortcut and the scaled branch")
    func scaledResidual() throws {
        let g = try graph(input: [3, 3, 4]) { builder, x in
            let branch = try builder.apply(Conv2D(name: "branch", filters: 4, kernelSize: (1, 1), activation: .tanh), to: [x])
            let y = try builder.apply(ScaledResidual(name: "custom_scale_layer", scale: 0.17), to: [x, branch])
            return try builder.apply(Conv2D(name: "after", filters: 3, kernelSize: (1, 1)), to: [y])
        }
        try check(g, input: input([2, 3, 3, 4], seed: 16))
    }

    @Test("activations: every one the engine runs", arguments: ["hard_swish", "hard_sigmoid", "gelu", "selu", "softsign", "exponential", "softplus", "relu6", "leaky_relu"])
    func activations(name: String) throws {
        let g = try graph(input: [6]) { builder, x in
            let y = try builder.apply(Dense(name: "d", units: 5), to: [x])
            let activation = try Activation(kerasName: name, keras3: true, layer: "a")
            return try builder.apply(ActivationLayer(name: "a", activation: activation), to: [y])
        }
        try check(g, input: input([3, 6], seed: 13))
    }
}

extension WeightDictionary {
    /// The same weights under other layer names.
    func renamed(_ names: [String: String]) -> WeightDictionary {
        WeightDictionary(entries: entries.map { (names[$0.layer] ?? $0.layer, $0.weights) })
    }
}
