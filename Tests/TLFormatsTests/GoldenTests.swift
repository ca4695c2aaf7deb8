import Foundation
import Testing
import TLTensor
@testable import TLFormats

/// What Keras itself reported for each fixture (written by make_formats_fixtures.py).
struct Golden: Decodable {
    struct Weight: Decodable {
        var name: String
        var shape: [Int]
        var sum: Double
        var sum_of_squares: Double
        var first: [Double]
    }
    struct Layer: Decodable {
        var name: String
        var `class`: String
        var weights: [Weight]
    }
    struct File: Decodable {
        var keras_version: String
        var layers: [Layer]
        var nested: [String: [String]]?
    }

    static let all: [String: File] = {
        var result: [String: File] = [:]
        for name in ["golden_keras2.json", "golden_keras3.json"] {
            guard let data = try? Data(contentsOf: Fixtures.url(name)),
                  let files = try? JSONDecoder().decode([String: File].self, from: data) else { continue }
            result.merge(files) { first, _ in first }
        }
        return result
    }()
}

@Suite("Keras layouts match what Keras saved")
struct GoldenTests {
    static let files = [
        "mobile_tiny_weights_tf.h5", "mobile_tiny_h5py2_strings.h5", "vgg_tiny_full.h5", "nested_full.h5",
        "chunked_layer_names.h5", "small.weights.h5", "small.keras", "nested.weights.h5", "nested.keras",
        "low_precision.weights.h5", "small_pre38.keras",
    ]

    @Test("every weight's name, shape and values", arguments: files)
    func weightsMatchKeras(file: String) throws {
        // small_pre38.keras is small.keras without Keras 3.8's layer-name attributes.
        let golden = try #require(Golden.all[file == "small_pre38.keras" ? "small.keras" : file], "no golden entry for \(file)")
        let weights = try WeightFile.open(Fixtures.url(file))
        let expected = golden.layers.filter { !$0.weights.isEmpty }
        // Keras 3 .weights.h5 alone does not record the model's layer order (h5py lists groups
        // by name); every other layout does.
        if weights.format == .keras3Weights {
            #expect(Set(weights.layerNames) == Set(expected.map(\.name)))
        } else {
            #expect(weights.layerNames == expected.map(\.name))
        }
        for layer in expected {
            #expect(weights.weightNames(layer: layer.name) == layer.weights.map(\.name), "layer \(layer.name)")
            for weight in layer.weights {
                #expect(weights.shape(layer: layer.name, weight: weight.name) == weight.shape, "\(layer.name)/\(weight.name)")
                let tensor = try weights.tensor(layer: layer.name, weight: weight.name)
                let values = tensor.scalars.map(Double.init)
                let sum = values.reduce(0, +)
                let squares = values.reduce(0) { $0 + $1 * $1 }
                let tolerance = 1e-9 * max(1, squares)
                #expect(abs(sum - weight.sum) <= tolerance, "\(layer.name)/\(weight.name) sum \(sum) vs Keras \(weight.sum)")
                #expect(abs(squares - weight.sum_of_squares) <= tolerance, "\(layer.name)/\(weight.name)")
                #expect(Array(values.prefix(weight.first.count)) == weight.first, "\(layer.name)/\(weight.name)")
            }
        }
    }

    @Test("Keras version and format are detected", arguments: [
        ("mobile_tiny_weights_tf.h5", WeightFileFormat.kerasH5Weights, "2.21.0"),
        ("mobile_tiny_h5py2_strings.h5", .kerasH5Weights, "2.21.0"),
        ("vgg_tiny_full.h5", .kerasH5Model, "2.21.0"),
        ("small.keras", .kerasArchive, "3.15.1"),
    ])
    func formatAndVersion(file: String, format: WeightFileFormat, version: String) throws {
        let weights = try WeightFile.open(Fixtures.url(file))
        #expect(weights.format == format)
        #expect(weights.kerasVersion == Golden.all[file]?.keras_version)
        #expect(weights.kerasVersion == version)
    }

    @Test("a nested functional model is flattened to its inner layer names")
    func nestedLegacyModel() throws {
        let weights = try WeightFile.open(Fixtures.url("nested_full.h5"))
        #expect(weights.layerNames == ["stem", "inner_conv", "inner_bn", "head"])
        #expect(weights.layer(named: "inner_bn")?.parentModel == "backbone")
        #expect(weights.layer(named: "stem")?.parentModel == nil)
        #expect(weights.nestedModels["backbone"] == Golden.all["nested_full.h5"]?.nested?["backbone"])
        #expect(weights.layer(named: "inner_conv")?.className == "Conv2D")
        #expect(weights.modelConfig?.contains("\"Functional\"") == true)
    }

    @Test("a nested Sequential inside a .keras archive keeps its nesting")
    func nestedKeras3Model() throws {
        let weights = try WeightFile.open(Fixtures.url("nested.keras"))
        #expect(weights.layerNames == ["stem", "bb_conv", "bb_bn", "head"])
        #expect(weights.layer(named: "bb_bn")?.parentModel == "backbone")
        #expect(weights.layer(named: "bb_bn")?.className == "BatchNormalization")
    }

    @Test("layer_names split into layer_names0, layer_names1 are joined")
    func chunkedLayerNames() throws {
        let weights = try WeightFile.open(Fixtures.url("chunked_layer_names.h5"))
        let golden = try #require(Golden.all["chunked_layer_names.h5"])
        #expect(weights.layers.map(\.name) == golden.layers.map(\.name))
        #expect(weights.layers.count > 300)
    }

    @Test("the layout is recognised by content, not by extension")
    func detectionByContent() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tlhub-formats-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        for (file, format) in [("small.keras", WeightFileFormat.kerasArchive), ("vgg_tiny_full.h5", .kerasH5Model)] {
            let copy = directory.appendingPathComponent(file + ".bin")
            try FileManager.default.copyItem(at: Fixtures.url(file), to: copy)
            #expect(try WeightFile.open(copy).format == format)
        }
    }

    @Test("Keras 3 variable indices get Keras weight names")
    func keras3WeightNames() {
        #expect(Keras3WeightNames.names(classKey: "batch_normalization", count: 4) == ["gamma", "beta", "moving_mean", "moving_variance"])
        #expect(Keras3WeightNames.names(classKey: "batch_normalization", count: 3, center: false, scale: true) == ["gamma", "moving_mean", "moving_variance"])
        #expect(Keras3WeightNames.names(classKey: "batch_normalization", count: 3) == ["beta", "moving_mean", "moving_variance"])
        #expect(Keras3WeightNames.names(classKey: "separable_conv2d", count: 2) == ["depthwise_kernel", "pointwise_kernel"])
        #expect(Keras3WeightNames.names(classKey: "conv2d", count: 1) == ["kernel"])
        #expect(Keras3WeightNames.names(classKey: "normalization", count: 3) == ["mean", "variance", "count"])
        #expect(Keras3WeightNames.names(classKey: "mystery", count: 2) == ["var_0", "var_1"])
        #expect(KerasModelConfig.snakeCase("BatchNormalization") == "batch_normalization")
        #expect(KerasModelConfig.snakeCase("DepthwiseConv2D") == "depthwise_conv2d")
        #expect(KerasModelConfig.snakeCase("Conv2DTranspose") == "conv2d_transpose")
        #expect(KerasModelConfig.snakeCase("PReLU") == "p_re_lu")
    }
}

@Suite("element types")
struct ElementTypeTests {
    @Test("float64 and int64 datasets read as float32")
    func float64AndInteger() throws {
        let weights = try WeightFile.open(Fixtures.url("float64_weights.h5"))
        #expect(weights.layer(named: "wide")?.weights.first?.dtype == "float64")
        #expect(try weights.tensor(layer: "wide", weight: "kernel") == Tensor(shape: [2, 3], scalars: [-0.5, -0.25, 0, 0.25, 0.5, 0.75]))
        #expect(weights.layer(named: "norm")?.weights.first?.dtype == "integer")
        #expect(try weights.tensor(layer: "norm", weight: "count") == Tensor(shape: [], scalars: [7]))
    }
}
