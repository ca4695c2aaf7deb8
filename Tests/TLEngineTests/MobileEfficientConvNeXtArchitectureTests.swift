import Foundation
import Testing
import TLEngine
import TLTensor

@Suite("MobileNet/EfficientNet/ConvNeXt names, detection, full-size structure and layers")
struct MobileEfficientConvNeXtArchitectureTests {
    /// Every weight the graph expects, counted as Keras' `count_params()` counts them.
    func parameterCount(_ graph: Graph) -> Int {
        graph.uniqueLayers.reduce(0) { total, item in
            let node = graph.nodes[item.node]
            let specs = item.layer.expectedWeights(inputShapes: node.inputs.map { graph.shapes[$0] })
            return total + specs.reduce(0) { $0 + $1.shape.reduce(1, *) }
        }
    }

    @Test("full-size variants have exactly Keras' parameter counts")
    func parameterCounts() throws {
        let url = MobileEfficientConvNeXtFixtures.directory.appendingPathComponent("parameter_counts.json")
        let counts = try JSONDecoder().decode([String: Int].self, from: Data(contentsOf: url))
        #expect(counts.count >= 20)
        for (name, expected) in counts.sorted(by: { $0.key < $1.key }) {
            let architecture = try Architecture(name: name)
            let graph = try architecture.build(options: ApplicationOptions())
            #expect(parameterCount(graph) == expected, "\(name)")
        }
    }

    @Test("names parse to the right variants")
    func names() throws {
        #expect(try Architecture(name: "MobileNet") == .mobileNet(alpha: 0, depthMultiplier: 1))
        #expect(try Architecture(name: "mobilenet_0.5") == .mobileNet(alpha: 0.5, depthMultiplier: 1))
        #expect(try Architecture(name: "mobilenet_v1_0.75") == .mobileNet(alpha: 0.75, depthMultiplier: 1))
        #expect(try Architecture(name: "MobileNetV3Small") == .mobileNetV3(.init(size: .small, alpha: 0)))
        #expect(try Architecture(name: "mobilenet_v3_large_minimalistic_1.0")
                == .mobileNetV3(.init(size: .large, alpha: 1, minimalistic: true)))
        #expect(try Architecture(name: "EfficientNetB3") == .efficientNet(.b3, imagenetScaling: false))
        #expect(try Architecture(name: "efficientnet-v2-s") == .efficientNetV2(.s, includePreprocessing: true))
        #expect(try Architecture(name: "EfficientNetV2B2") == .efficientNetV2(.b2, includePreprocessing: true))
        #expect(try Architecture(name: "convnext_xlarge") == .convNeXt(.xlarge, includePreprocessing: true))
        #expect(try Architecture(name: "mobilenetv2") == .mobileNetV2(alpha: 0))
        #expect(throws: EngineError.self) { try Architecture(name: "efficientnetb9") }
        #expect(throws: EngineError.self) { try Architecture(name: "mobilenet_x") }
    }

    @Test("full-size feature maps and Keras layer names")
    func fullSizeShapes() throws {
        func shape(_ graph: Graph, _ layer: String) throws -> [Int] { graph.shapes[try #require(graph.node(named: layer))] }
        let mobileNet = try MobileNet.build(alpha: 1, options: ApplicationOptions())
        #expect(try shape(mobileNet, "conv_pw_13_relu") == [7, 7, 1024])
        #expect(mobileNet.lastSpatialNode == mobileNet.node(named: "conv_pw_13_relu"))
        let large = try MobileNetV3.build(.init(size: .large), options: ApplicationOptions(inputShape: [224, 224, 3]))
        #expect(try shape(large, "Conv_1/BatchNorm") == [7, 7, 960])
        #expect(try shape(large, "expanded_conv_14/squeeze_excite/Mul") == [7, 7, 960])
        #expect(try shape(large, "Conv_2") == [1, 1, 1280])
        let small = try MobileNetV3.build(.init(size: .small, layerNames: .keras3), options: ApplicationOptions(inputShape: [224, 224, 3]))
        #expect(try shape(small, "conv_1_bn") == [7, 7, 576])
        #expect(small.lastSpatialNode == small.node(named: "top_activation"))
        let b7 = try EfficientNet.build(.b7, options: ApplicationOptions())
        #expect(try shape(b7, "top_conv") == [19, 19, 2560])
        #expect(b7.node(named: "block7d_project_conv") != nil && b7.node(named: "block7e_project_conv") == nil)
        let v2s = try EfficientNetV2.build(.s, options: ApplicationOptions())
        #expect(try shape(v2s, "top_activation") == [12, 12, 1280])
        #expect(v2s.node(named: "block6o_project_conv") != nil)
        let tiny = try ConvNeXt.build(.tiny, options: ApplicationOptions())
        #expect(try shape(tiny, "convnext_tiny_stage_3_block_2_layer_scale") == [7, 7, 768])
        #expect(tiny.node(named: "convnext_tiny_stage_2_block_8_pointwise_conv_1") != nil)
    }

    @Test("weights-only MobileNet files are detected with alpha and depth multiplier and match Keras")
    func detectMobileNet() throws {
        let weights = WeightsOnly(base: try MobileEfficientConvNeXtFixtures.weights("mobilenet_025_32"))
        #expect(try Architecture.detect(from: weights) == .mobileNet(alpha: 0.25, depthMultiplier: 1))
        let model = try Model(weights: weights)
        #expect(model.options?.classes == 10 && model.options?.includeTop == true)
        let input = try MobileEfficientConvNeXtFixtures.input("mobilenet_025_32")
        let expected = try MobileEfficientConvNeXtFixtures.output("mobilenet_025_32")
        #expect(try model.predict(input: input).maxAbsoluteDifference(expected) <= EngineFixtures.tolerance(expected))
        #expect(try model.features(input: input, pooling: .avg).shape == [2, 256])
        // `tlhub bench --features --profile`: the layers of the features pass only.
        let everyLayer = try model.profile(input: input).map(\.layer)
        let featureLayers = try model.profile(input: input, features: true).map(\.layer)
        #expect(everyLayer.contains { $0.contains("conv_preds") })
        #expect(!featureLayers.isEmpty && !featureLayers.contains { $0.contains("conv_preds") })
        #expect(featureLayers.contains { $0.contains("conv_pw_13") })

        let multiplied = WeightsOnly(base: try MobileEfficientConvNeXtFixtures.weights("mobilenet_0125_dm2_35_notop_max"))
        #expect(try Architecture.detect(from: multiplied) == .mobileNet(alpha: 0.125, depthMultiplier: 2))
    }

    @Test("weights-only MobileNetV3 files are detected with size, alpha, variant and name flavour")
    func detectMobileNetV3() throws {
        let small = WeightsOnly(base: try MobileEfficientConvNeXtFixtures.weights("mobilenetv3small_025_32"))
        #expect(try Architecture.detect(from: small) == .mobileNetV3(.init(size: .small, alpha: 0.25)))
        let model = try Model(weights: small)
        let input = try MobileEfficientConvNeXtFixtures.input("mobilenetv3small_025_32")
        let expected = try MobileEfficientConvNeXtFixtures.output("mobilenetv3small_025_32")
        #expect(try model.predict(input: input).maxAbsoluteDifference(expected) <= EngineFixtures.tolerance(expected))

        let minimalistic = WeightsOnly(base: try MobileEfficientConvNeXtFixtures.weights("mobilenetv3small_minimalistic_025_32_notop"))
        #expect(try Architecture.detect(from: minimalistic) == .mobileNetV3(.init(size: .small, alpha: 0.25, minimalistic: true)))

        // Keras 3 names; the width is given, the flavour comes from the weights.
        let keras3 = WeightsOnly(base: try MobileEfficientConvNeXtFixtures.weights("mobilenetv3large_0125_32_keras3"))
        let largeModel = try Model(weights: keras3, architecture: .mobileNetV3(.init(size: .large, alpha: 0.125)))
        #expect(largeModel.architecture == .mobileNetV3(.init(size: .large, alpha: 0.125, layerNames: .keras3)))
        let largeInput = try MobileEfficientConvNeXtFixtures.input("mobilenetv3large_0125_32_keras3")
        let largeExpected = try MobileEfficientConvNeXtFixtures.output("mobilenetv3large_0125_32_keras3")
        let features = try largeModel.features(input: largeInput, pooling: .max)
        #expect(features.maxAbsoluteDifference(largeExpected) <= EngineFixtures.tolerance(largeExpected))
    }

    @Test("EfficientNet files are told apart from EfficientNetV2 and ConvNeXt by their layers")
    func detectOtherFamilies() throws {
        // Reduced-width fixtures match no published variant: detection must say so, not guess.
        let efficientNet = WeightsOnly(base: try MobileEfficientConvNeXtFixtures.weights("efficientnet_w0125_d11_32"))
        #expect(throws: EngineError.self) { try Architecture.detect(from: efficientNet) }
        let convNeXt = WeightsOnly(base: try MobileEfficientConvNeXtFixtures.weights("convnext_test_32"))
        #expect(throws: EngineError.self) { try Architecture.detect(from: convNeXt) }

        // A full-size B0 graph's own (zero) weights are detected as B0, and V2-S as V2-S.
        for architecture: Architecture in [.efficientNet(.b0, imagenetScaling: false), .efficientNet(.b1, imagenetScaling: false),
                                           .efficientNetV2(.s, includePreprocessing: true),
                                           .efficientNetV2(.b3, includePreprocessing: true),
                                           .convNeXt(.small, includePreprocessing: true)] {
            let graph = try architecture.build(options: ApplicationOptions(includeTop: false))
            let weights = WeightDictionary(entries: try zeroWeights(graph))
            #expect(try Architecture.detect(from: weights) == architecture)
        }
    }

    @Test("the published EfficientNet normalization (stddev as variance) switches on Keras' rescaling")
    func efficientNetImagenetScaling() throws {
        let graph = try EfficientNet.build(.b0, options: ApplicationOptions(includeTop: false))
        var entries = try zeroWeights(graph)
        let index = try #require(entries.firstIndex { $0.layer == "normalization" })
        entries[index].weights = [("mean", Tensor(shape: [3], scalars: [0.485, 0.456, 0.406])),
                                  ("variance", Tensor(shape: [3], scalars: [0.229, 0.224, 0.225])),
                                  ("count", Tensor(shape: [], scalars: [0]))]
        let published = WeightDictionary(entries: entries)
        #expect(try Architecture.detect(from: published) == .efficientNet(.b0, imagenetScaling: true))
        let scaled = try EfficientNet.build(.b0, imagenetScaling: true, options: ApplicationOptions(includeTop: false, inputShape: [32, 32, 3]))
        try scaled.loadWeights(from: published)
        // Pixel 255·(mean + stddev) normalizes to stddev/√stddev, then × 1/√stddev = 1.
        let stem = try scaled.truncated(at: try #require(scaled.node(named: "rescaling_1")))
        var pixels = [Float]()
        for _ in 0..<(32 * 32) { pixels += [255 * (0.485 + 0.229), 255 * (0.456 + 0.224), 255 * (0.406 + 0.225)] }
        let output = try GraphExecutor(graph: stem, inputShapes: [[1, 32, 32, 3]]).run([Tensor(shape: [1, 32, 32, 3], scalars: pixels)])[0]
        #expect(output.scalars.allSatisfy { abs($0 - 1) < 1e-5 })
    }

    @Test("squeeze-excite multiply and LayerScale broadcast over the channels")
    func broadcastLayers() throws {
        let map = Tensor(shape: [2, 1, 2, 3], scalars: [1, 2, 3, 4, 5, 6, -1, -2, -3, -4, -5, -6])
        let weights = Tensor(shape: [2, 1, 1, 3], scalars: [1, 0.5, 2, 10, 0, -1])
        let builder = GraphBuilder()
        let x = builder.input(shape: [1, 2, 3], name: "map")
        let w = builder.input(shape: [1, 1, 3], name: "weights")
        let product = try builder.apply(ElementwiseMerge(name: "mul", operation: .multiply), to: [x, w])
        let scaled = try builder.apply(LayerScale(name: "scale", gamma: Tensor(shape: [3], scalars: [2, 3, 4])), to: [product])
        let graph = try builder.build(outputs: [scaled], name: "broadcast")
        let output = try GraphExecutor(graph: graph, inputShapes: [map.shape, weights.shape]).run([map, weights])[0]
        #expect(output.scalars == [2, 3, 24, 8, 7.5, 48, -20, 0, 12, -80, 0, 24])
    }

    /// Zero weights of the expected shapes for every layer of `graph` (a stand-in weights file).
    func zeroWeights(_ graph: Graph) throws -> [(layer: String, weights: [(name: String, tensor: Tensor)])] {
        graph.uniqueLayers.compactMap { item in
            let node = graph.nodes[item.node]
            let specs = item.layer.expectedWeights(inputShapes: node.inputs.map { graph.shapes[$0] })
            return specs.isEmpty ? nil : (item.layer.name, specs.map { ($0.name, Tensor(shape: $0.shape)) })
        }
    }
}
