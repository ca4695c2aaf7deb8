import Foundation
import Testing
import TLEngine
import TLTensor

@Suite("MobileNet, MobileNetV3, EfficientNet, EfficientNetV2 and ConvNeXt match keras.applications")
struct MobileEfficientConvNeXtParityTests {
    /// Loads the fixture's weights strictly into `graph` and compares the unfused and the fused
    /// graph with Keras' output (tolerance 1e-4 × max(1, max|Keras|)).
    func expectParity(_ graph: Graph, fixture: String) throws {
        try graph.loadWeights(from: try MobileEfficientConvNeXtFixtures.weights(fixture))
        let input = try MobileEfficientConvNeXtFixtures.input(fixture)
        let expected = try MobileEfficientConvNeXtFixtures.output(fixture)
        for candidate in [graph, try graph.fused(), try graph.fused(rowStreamingBytes: 0)] {
            let actual = try GraphExecutor(graph: candidate, inputShapes: [input.shape]).run([input])[0]
            #expect(actual.shape == expected.shape, "\(fixture)")
            let error = actual.maxAbsoluteDifference(expected)
            #expect(error <= EngineFixtures.tolerance(expected), "\(fixture): max error \(error) in \(candidate.nodes.count)-node graph")
        }
        // One image alone: at batch 1 streaming blocks split each image's rows between threads.
        let first = Tensor(shape: [1] + input.shape.dropFirst(), scalars: Array(input.scalars.prefix(input.count / input.shape[0])))
        let firstExpected = Array(expected.scalars.prefix(expected.count / expected.shape[0]))
        let streamed = try GraphExecutor(graph: try graph.fused(rowStreamingBytes: 0), inputShapes: [first.shape]).run([first])[0]
        #expect(zip(streamed.scalars, firstExpected).map { abs($0 - $1) }.max() ?? .infinity <= EngineFixtures.tolerance(expected))
    }

    @Test("MobileNet alpha 0.25 with the top at 32 px")
    func mobileNet() throws {
        let options = ApplicationOptions(inputShape: [32, 32, 3], classes: 10)
        try expectParity(try MobileNet.build(alpha: 0.25, options: options), fixture: "mobilenet_025_32")
    }

    @Test("MobileNet alpha 0.125, depth multiplier 2, no top, max pooling at 35 px")
    func mobileNetDepthMultiplier() throws {
        let options = ApplicationOptions(includeTop: false, inputShape: [35, 35, 3], pooling: .max)
        try expectParity(try MobileNet.build(alpha: 0.125, depthMultiplier: 2, options: options),
                         fixture: "mobilenet_0125_dm2_35_notop_max")
    }

    @Test("MobileNetV3Small alpha 0.25 (squeeze-excite, hard-swish) with the top, tf.keras names")
    func mobileNetV3Small() throws {
        let options = ApplicationOptions(inputShape: [32, 32, 3], classes: 10)
        let graph = try MobileNetV3.build(.init(size: .small, alpha: 0.25), options: options)
        try expectParity(graph, fixture: "mobilenetv3small_025_32")
    }

    @Test("MobileNetV3Small minimalistic alpha 0.25 without the top, average pooling")
    func mobileNetV3Minimalistic() throws {
        let options = ApplicationOptions(includeTop: false, inputShape: [32, 32, 3], pooling: .avg)
        let graph = try MobileNetV3.build(.init(size: .small, alpha: 0.25, minimalistic: true), options: options)
        try expectParity(graph, fixture: "mobilenetv3small_minimalistic_025_32_notop")
    }

    @Test("MobileNetV3Large alpha 0.125 with Keras 3 layer names, no top, max pooling")
    func mobileNetV3LargeKeras3() throws {
        let options = ApplicationOptions(includeTop: false, inputShape: [32, 32, 3], pooling: .max)
        let graph = try MobileNetV3.build(.init(size: .large, alpha: 0.125, layerNames: .keras3), options: options)
        try expectParity(graph, fixture: "mobilenetv3large_0125_32_keras3")
    }

    @Test("EfficientNet block table at width 0.125, depth 1.1 (repeated stages), with the top")
    func efficientNet() throws {
        let options = ApplicationOptions(inputShape: [32, 32, 3], classes: 10)
        let graph = try EfficientNet.build(width: 0.125, depth: 1.1, defaultSize: 32, options: options)
        #expect(graph.node(named: "block2c_project_conv") != nil)
        try expectParity(graph, fixture: "efficientnet_w0125_d11_32")
    }

    @Test("EfficientNet's Keras config (broadcasting se_excite Multiply, adapted Normalization) loads generically")
    func efficientNetConfig() throws {
        let weights = try MobileEfficientConvNeXtFixtures.weights("efficientnet_w0125_d11_32")
        let graph = try KerasGraphReader.graph(fromJSON: try #require(weights.modelConfig))
        try expectParity(graph, fixture: "efficientnet_w0125_d11_32")
    }

    @Test("EfficientNetV2 B0 table at width 0.125, depth 0.5, with the top")
    func efficientNetV2B() throws {
        let options = ApplicationOptions(inputShape: [32, 32, 3], classes: 10)
        let graph = try EfficientNetV2.build(variant: .b0, width: 0.125, depth: 0.5, options: options)
        try expectParity(graph, fixture: "efficientnetv2b0_w0125_d05_32")
    }

    @Test("EfficientNetV2 S table at width 0.125, depth 0.25, no top, 33 px")
    func efficientNetV2S() throws {
        let options = ApplicationOptions(includeTop: false, inputShape: [33, 33, 3], pooling: .avg)
        let graph = try EfficientNetV2.build(variant: .s, width: 0.125, depth: 0.25, options: options)
        try expectParity(graph, fixture: "efficientnetv2s_w0125_d025_33_notop")
    }

    @Test("ConvNeXt blocks (depths 1-1-2-1, widths 8…32) with the head")
    func convNeXt() throws {
        let options = ApplicationOptions(inputShape: [32, 32, 3], classes: 10)
        let graph = try ConvNeXt.build(depths: [1, 1, 2, 1], projectionDimensions: [8, 16, 24, 32], options: options,
                                       name: "convnext_test")
        try expectParity(graph, fixture: "convnext_test_32")
    }

    @Test("ConvNeXt without the top keeps Keras' final LayerNormalization")
    func convNeXtNoTop() throws {
        let options = ApplicationOptions(includeTop: false, inputShape: [40, 40, 3])
        let graph = try ConvNeXt.build(depths: [1, 1, 1, 1], projectionDimensions: [8, 8, 16, 16], options: options,
                                       name: "convnext_notop")
        try expectParity(graph, fixture: "convnext_notop_40")
    }
}
