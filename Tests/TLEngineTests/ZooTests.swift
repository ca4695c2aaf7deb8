import Foundation
import Testing
import TLEngine
import TLTensor

/// A weight source with its model config hidden, as a weights-only file presents itself.
struct WeightsOnly: WeightSource {
    let base: WeightSource
    var layerNames: [String] { base.layerNames }
    func weightNames(layer: String) -> [String] { base.weightNames(layer: layer) }
    func shape(layer: String, weight: String) -> [Int]? { base.shape(layer: layer, weight: weight) }
    func tensor(layer: String, weight: String) throws -> Tensor { try base.tensor(layer: layer, weight: weight) }
    var modelConfig: String? { nil }
}

@Suite("Native architectures match keras.applications")
struct ZooTests {
    func expectParity(_ graph: Graph, fixture: String) throws {
        try graph.loadWeights(from: try EngineFixtures.weights(fixture))
        let input = try EngineFixtures.input(fixture)
        let expected = try EngineFixtures.output(fixture)
        for candidate in [graph, try graph.fused(), try graph.fused(rowStreamingBytes: 0)] {
            let actual = try GraphExecutor(graph: candidate, inputShapes: [input.shape]).run([input])[0]
            #expect(actual.shape == expected.shape)
            #expect(actual.maxAbsoluteDifference(expected) <= EngineFixtures.tolerance(expected))
        }
        // One image alone: at batch 1 streaming blocks split each image's rows between threads.
        let first = Tensor(shape: [1] + input.shape.dropFirst(), scalars: Array(input.scalars.prefix(input.count / input.shape[0])))
        let firstExpected = Array(expected.scalars.prefix(expected.count / expected.shape[0]))
        let streamed = try GraphExecutor(graph: try graph.fused(rowStreamingBytes: 0), inputShapes: [first.shape]).run([first])[0]
        #expect(zip(streamed.scalars, firstExpected).map { abs($0 - $1) }.max() ?? .infinity <= EngineFixtures.tolerance(expected))
    }

    @Test("MobileNetV2 alpha 0.35 at 32 px")
    func mobileNetV2() throws {
        let options = ApplicationOptions(inputShape: [32, 32, 3], classes: 10)
        try expectParity(try MobileNetV2.build(alpha: 0.35, options: options), fixture: "mobilenetv2_035_32")
    }

    @Test("VGG16 layout at reduced width")
    func vgg() throws {
        let options = ApplicationOptions(inputShape: [32, 32, 3], classes: 10)
        let graph = try VGG.build(convolutionsPerBlock: VGG.vgg16Blocks, filters: [8, 12, 16, 16, 16], denseUnits: 24,
                                  options: options)
        try expectParity(graph, fixture: "vgg_small")
    }

    @Test("ResNet v1 layout with narrow stages")
    func resNet() throws {
        let stages = [ResNet.Stage(filters: 8, blocks: 1, stride: 1), ResNet.Stage(filters: 8, blocks: 2, stride: 2),
                      ResNet.Stage(filters: 16, blocks: 1, stride: 2), ResNet.Stage(filters: 16, blocks: 1, stride: 2)]
        let graph = try ResNet.build(stages: stages, options: ApplicationOptions(classes: 10), name: "resnet_small")
        try expectParity(graph, fixture: "resnet_small")
        // Each block's `add` then `relu` runs inside the block's last convolution in the fused graph.
        let fused = try graph.fused()
        let residualConvolutions = fused.nodes.filter { node in
            guard let conv = node.layer as? Conv2D else { return false }
            return conv.addsResidual && conv.activation == .relu && node.inputs.count == 2
        }
        #expect(residualConvolutions.count == 5)
        #expect(!fused.nodes.contains { $0.layer is ElementwiseMerge })
        #expect(fused.nodes.count < graph.nodes.count)
    }

    @Test("MobileNetV2 layer names and widths for every published alpha")
    func mobileNetV2Widths() throws {
        // Conv1 filters and the last block's projection, from keras.applications' _make_divisible.
        let expected: [Double: (Int, Int, Int)] = [0.35: (16, 112, 1280), 0.5: (16, 160, 1280), 0.75: (24, 240, 1280),
                                                   1.0: (32, 320, 1280), 1.3: (40, 416, 1664), 1.4: (48, 448, 1792)]
        for alpha in MobileNetV2.alphas {
            let graph = try MobileNetV2.build(alpha: alpha, options: ApplicationOptions(includeTop: false))
            let conv1 = try #require(graph.node(named: "Conv1"))
            let project = try #require(graph.node(named: "block_16_project"))
            let last = try #require(graph.node(named: "out_relu"))
            let want = try #require(expected[alpha])
            #expect(graph.shapes[conv1].last == want.0)
            #expect(graph.shapes[project].last == want.1)
            #expect(graph.shapes[last] == [7, 7, want.2])
            #expect(graph.node(named: "block_1_pad") != nil && graph.node(named: "expanded_conv_depthwise") != nil)
        }
    }

    @Test("activation buffers are reused across layers")
    func bufferReuse() throws {
        let graph = try MobileNetV2.build(alpha: 0.35, options: ApplicationOptions(inputShape: [64, 64, 3]))
        let executor = try GraphExecutor(graph: graph, inputShapes: [[1, 64, 64, 3]])
        let sum = graph.shapes.reduce(0) { $0 + $1.reduce(1, *) } * MemoryLayout<Float>.size
        let largest = graph.shapes.map { $0.reduce(1, *) }.max()! * MemoryLayout<Float>.size
        #expect(executor.allocatedBytes < sum / 4)
        #expect(executor.allocatedBytes >= 2 * largest)
    }

    @Test("ResNet50/101/152 and VGG shapes")
    func largeShapes() throws {
        for depth in [50, 101, 152] {
            let graph = try Architecture.resNet(depth: depth).build(options: ApplicationOptions(inputShape: [224, 224, 3]))
            #expect(graph.shapes[graph.outputs[0]] == [1000])
            #expect(graph.shapes[try #require(graph.node(named: "conv5_block3_out"))] == [7, 7, 2048])
        }
        let v2 = try Architecture.resNetV2(depth: 50).build(options: ApplicationOptions(inputShape: [224, 224, 3]))
        #expect(v2.shapes[try #require(v2.node(named: "post_relu"))] == [7, 7, 2048])
        let vgg19 = try Architecture.vgg19.build(options: ApplicationOptions())
        #expect(vgg19.shapes[try #require(vgg19.node(named: "flatten"))] == [25088])
    }
}

@Suite("Model API, detection and strict loading")
struct ModelTests {
    @Test("weights-only MobileNetV2 is detected with its alpha and matches Keras")
    func detection() throws {
        let weights = WeightsOnly(base: try EngineFixtures.weights("mobilenetv2_035_32"))
        #expect(try Architecture.detect(from: weights) == .mobileNetV2(alpha: 0.35))
        let model = try Model(weights: weights)
        #expect(model.options?.classes == 10)
        let input = try EngineFixtures.input("mobilenetv2_035_32")
        let expected = try EngineFixtures.output("mobilenetv2_035_32")
        let output = try model.predict(input: input)
        #expect(output.maxAbsoluteDifference(expected) <= EngineFixtures.tolerance(expected))
        // Twice, to exercise buffer reuse.
        #expect(try model.predict(input: input) == output)
        let features = try model.features(input: input, pooling: .avg)
        #expect(features.shape == [2, 1280])
        let map = try model.features(input: input, pooling: .none)
        #expect(map.shape == [2, 1, 1, 1280])
    }

    @Test("large batches run in micro-batches with the same result")
    func microBatches() throws {
        let fixture = "sequential"  // batch of 3
        let expected = try EngineFixtures.output(fixture)
        let input = try EngineFixtures.input(fixture)
        for budget in [1, 2 * 10 * 10 * 4] {  // one image at a time; two at a time (last slice padded)
            let model = try Model(weights: try EngineFixtures.weights(fixture))
            model.activationBudget = budget
            let output = try model.predict(input: input)
            #expect(output.shape == expected.shape)
            #expect(output.maxAbsoluteDifference(expected) <= EngineFixtures.tolerance(expected))
        }
    }

    @Test("an executor runs a range of a larger batch in place, zeros after it, and rejects what it was not planned for")
    func executorSampleRange() throws {
        let fixture = "sequential"  // batch of 3
        let model = try Model(weights: try EngineFixtures.weights(fixture))
        let input = try EngineFixtures.input(fixture)
        let graph = try model.graph.fused()
        let perImage = input.count / input.shape[0]
        let executor = try GraphExecutor(graph: graph, inputShapes: [[2] + input.shape.dropFirst()])
        for samples in [0..<2, 1..<3, 2..<3] {
            // What the range stands for: its samples copied out, zeros to the planned batch of 2.
            let padded = Tensor(shape: [2] + input.shape.dropFirst(),
                                scalars: Array(input.scalars[samples.lowerBound * perImage..<samples.upperBound * perImage])
                                    + [Float](repeating: 0, count: (2 - samples.count) * perImage))
            let whole = try executor.run([padded])[0]
            let perOutput = whole.count / 2
            let ranged = try executor.run(input, samples: samples)[0]
            #expect(ranged.shape == [samples.count] + whole.shape.dropFirst(), "samples \(samples)")
            #expect(ranged.scalars == Array(whole.scalars.prefix(samples.count * perOutput)), "samples \(samples)")
        }
        #expect(throws: EngineError.self) { try executor.run(input, samples: 0..<3) }  // more than planned
        #expect(throws: EngineError.self) { try executor.run(input, samples: 2..<4) }  // past the input
        let other = Tensor(shape: [3, 1] + input.shape.dropFirst(2), scalars: Array(input.scalars.prefix(3 * input.shape[2...].reduce(1, *))))
        #expect(throws: EngineError.self) { try executor.run(other, samples: 0..<1) }  // another sample shape
    }

    @Test("a batch runs the classifier once after the base's micro-batches: the same bits as image by image")
    func classifierAfterMicroBatches() throws {
        for fixture in ["sequential", "vgg_small"] {
            let model = try Model(weights: try EngineFixtures.weights(fixture))
            let node = try #require(model.graph.lastSpatialNode)
            let tail = try #require(try model.graph.tail(after: node), "\(fixture): no classifier after the feature map")
            #expect(tail.shapes[0] == model.graph.shapes[node] && tail.nodes.count > 1)
            model.activationBudget = 1  // the base one image per pass
            let input = try EngineFixtures.input(fixture), expected = try EngineFixtures.output(fixture)
            let batch = try model.predict(input: input)
            #expect(batch.maxAbsoluteDifference(expected) <= EngineFixtures.tolerance(expected), "\(fixture)")
            let count = input.shape[0], perImage = input.count / count, perOutput = batch.count / count
            #expect(count > 1)
            for image in 0..<count {
                let single = Tensor(shape: [1] + input.shape.dropFirst(),
                                    scalars: Array(input.scalars[image * perImage..<(image + 1) * perImage]))
                #expect(try model.predict(input: single).scalars == Array(batch.scalars[image * perOutput..<(image + 1) * perOutput]),
                        "\(fixture) image \(image)")
            }
        }
    }

    @Test("a graph has no tail after a node that a later node skips over")
    func tailAcrossSkip() throws {
        let builder = GraphBuilder()
        let x = builder.input(shape: [6, 6, 4], name: "x")
        let a = try builder.apply(Conv2D(name: "a", filters: 4, kernelSize: (3, 3), padding: .same), to: [x])
        let b = try builder.apply(Conv2D(name: "b", filters: 4, kernelSize: (3, 3), padding: .same), to: [a])
        let sum = try builder.apply(ElementwiseMerge(name: "add", operation: .add), to: [b, a])
        let flat = try builder.apply(IdentityLayer(name: "flatten", kind: .flatten), to: [sum])
        let graph = try builder.build(outputs: [try builder.apply(Dense(name: "dense", units: 3), to: [flat])], name: "skip")
        let nodeB = try #require(graph.node(named: "b")), nodeSum = try #require(graph.node(named: "add"))
        #expect(try graph.tail(after: nodeB) == nil)
        let tail = try #require(try graph.tail(after: nodeSum))
        #expect(tail.nodes.map(\.layer.name) == ["add", "flatten", "dense"] && tail.shapes[0] == [6, 6, 4])
    }

    @Test("features of a config model equal Keras' pooled base")
    func configFeatures() throws {
        let model = try Model(weights: try EngineFixtures.weights("vgg_small"))
        let input = try EngineFixtures.input("vgg_small")
        let features = try model.features(input: input, pooling: .max)
        #expect(features.shape == [2, 16])
    }

    @Test("a wrong architecture is an error naming the layer")
    func wrongArchitecture() throws {
        let weights = WeightsOnly(base: try EngineFixtures.weights("mobilenetv2_035_32"))
        #expect(throws: EngineError.self) { try Model(weights: weights, architecture: .vgg16) }
        do {
            _ = try Model(weights: weights, architecture: .mobileNetV2(alpha: 0.5))
            Issue.record("alpha 0.5 loaded alpha 0.35 weights")
        } catch let error as EngineError {
            // Both widths give Conv1 16 filters and block_1_expand 48; block_1_project is the first to differ
            // (_make_divisible(int(24 * 0.5)) = 16 vs _make_divisible(int(24 * 0.35)) = 8).
            #expect(error == .weightShapeMismatch(layer: "block_1_project", weight: "kernel", expected: [1, 1, 48, 16], actual: [1, 1, 48, 8]))
        }
    }

    @Test("unused weights are rejected")
    func unusedWeights() throws {
        var entries = WeightDictionary(graph: try {
            let g = try KerasGraphReader.graph(fromJSON: try #require(try EngineFixtures.weights("batchnorm").modelConfig))
            try g.loadWeights(from: try EngineFixtures.weights("batchnorm"))
            return g
        }()).entries
        entries.append((layer: "stray", weights: [(name: "kernel", tensor: Tensor(shape: [1]))]))
        let graph = try KerasGraphReader.graph(fromJSON: try #require(try EngineFixtures.weights("batchnorm").modelConfig))
        #expect(throws: EngineError.unusedWeights(names: ["stray/kernel"])) {
            try graph.loadWeights(from: WeightDictionary(entries: entries))
        }
    }

    @Test("a wrong input shape names expected and actual")
    func inputShape() throws {
        let model = try Model(weights: try EngineFixtures.weights("conv_same_s1"))
        #expect(throws: EngineError.inputShapeMismatch(expected: "[N, 9, 11, 5]", actual: [1, 9, 11, 4])) {
            try model.predict(input: Tensor(shape: [1, 9, 11, 4]))
        }
    }

    @Test("an unsupported layer class is named with its layer")
    func unsupportedLayer() throws {
        let config = """
        {"class_name": "Sequential", "config": {"name": "s", "layers": [
          {"class_name": "InputLayer", "config": {"name": "in", "batch_input_shape": [null, 4, 4, 1]}},
          {"class_name": "Conv3D", "config": {"name": "volume", "filters": 2}}]}}
        """
        #expect(throws: EngineError.unsupportedLayer(className: "Conv3D", layer: "volume")) {
            try KerasGraphReader.graph(fromJSON: config)
        }
    }

    @Test("missing file and unknown architecture name")
    func badRequests() throws {
        #expect(throws: EngineError.unreadableFile(path: "/nonexistent/m.safetensors", problem: "no such file")) {
            try Model.load(from: URL(fileURLWithPath: "/nonexistent/m.safetensors"))
        }
        #expect(throws: EngineError.self) { try Architecture(name: "alexnet") }
        #expect(try Architecture(name: "mobilenet_v2_1.4") == .mobileNetV2(alpha: 1.4))
        #expect(try Architecture(name: "ResNet101") == .resNet(depth: 101))
    }
}

@Suite("Hand-computed layer semantics")
struct LayerSemanticsTests {
    @Test("TensorFlow same padding is asymmetric at stride 2")
    func samePadding() {
        // in 224, k 3, s 2: out 112, total = 111*2 + 3 - 224 = 1 → before 0 (extra cell after).
        #expect(Padding.same.window(input: 224, kernel: 3, stride: 2, dilation: 1) == (112, 0))
        // in 9, k 4, s 2: out 5, total = 8 + 4 - 9 = 3 → before 1.
        #expect(Padding.same.window(input: 9, kernel: 4, stride: 2, dilation: 1) == (5, 1))
        // dilation 2, k 3 → effective 5; in 7, s 1: total 4 → before 2.
        #expect(Padding.same.window(input: 7, kernel: 3, stride: 1, dilation: 2) == (7, 2))
        #expect(Padding.valid.window(input: 7, kernel: 3, stride: 2, dilation: 1) == (3, 0))
    }

    func apply(_ activation: Activation, _ values: [Float]) -> [Float] {
        var values = values
        values.withUnsafeMutableBufferPointer { activation.apply($0.baseAddress!, count: $0.count, lastAxis: $0.count) }
        return values
    }

    @Test("hard_sigmoid differs between Keras 2 and Keras 3")
    func hardSigmoid() throws {
        #expect(apply(try Activation(kerasName: "hard_sigmoid", keras3: false, layer: "a"), [-3, 1, 2.6]) == [0, 0.7, 1])
        let keras3 = apply(try Activation(kerasName: "hard_sigmoid", keras3: true, layer: "a"), [-3, 1, 2.6])
        #expect(keras3[0] == 0 && abs(keras3[1] - 4.0 / 6) < 1e-6 && abs(keras3[2] - 5.6 / 6) < 1e-6)
    }

    @Test("gelu exact and approximate")
    func gelu() {
        let exact = apply(.gelu(approximate: false), [1])[0]
        let approximate = apply(.gelu(approximate: true), [1])[0]
        #expect(abs(exact - 0.8413447) < 1e-6)
        #expect(abs(approximate - 0.8411920) < 1e-6)
    }

    @Test("Multiply broadcasts a per-channel vector (squeeze-and-excitation)")
    func broadcastMultiply() throws {
        let builder = GraphBuilder()
        let x = builder.input(shape: [2, 2, 3], name: "x")
        let gate = builder.input(shape: [1, 1, 3], name: "gate")
        let product = try builder.multiply([x, gate], name: "excite")
        let graph = try builder.build(outputs: [product], name: "se")
        let image = Tensor(shape: [1, 2, 2, 3], scalars: (0..<12).map(Float.init))
        let weights = Tensor(shape: [1, 1, 1, 3], scalars: [1, 10, -1])
        let output = try GraphExecutor(graph: graph, inputShapes: [image.shape, weights.shape]).run([image, weights])[0]
        #expect(output.scalars == [0, 10, -2, 3, 40, -5, 6, 70, -8, 9, 100, -11])
    }

    @Test("ReLU layer with max value, slope and threshold")
    func clippedReLU() {
        let values = apply(.clippedReLU(maxValue: 6, negativeSlope: 0.1, threshold: 0.5), [-1, 0.2, 3, 7])
        #expect(values.enumerated().allSatisfy { abs($0.element - [-0.15, -0.03, 3, 6][$0.offset]) < 1e-6 })
    }
}
