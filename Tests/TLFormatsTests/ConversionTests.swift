import Foundation
import Testing
import TLTensor
@testable import TLFormats

/// A scratch directory removed when the test ends.
final class ScratchDirectory {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("tlhub-formats-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(at: url) }
    func file(_ name: String) -> URL { url.appendingPathComponent(name) }
    var contents: [String] { (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? [] }
}

@Suite("convert to safetensors and export back to Keras h5")
struct ConversionTests {
    static let sources = ["mobile_tiny_weights_tf.h5", "vgg_tiny_full.h5", "nested_full.h5", "small.keras", "nested.keras",
                          "low_precision.weights.h5"]

    @Test("convert writes every weight unchanged under <layer>/<weight> with tlhub metadata", arguments: sources)
    func convert(file: String) throws {
        let scratch = try ScratchDirectory()
        let source = try WeightFile.open(Fixtures.url(file))
        let output = scratch.file("out.safetensors")
        let report = try SafeTensorsConversion.convert(source, to: output, arch: "tiny")
        let converted = try SafeTensorsFile(contentsOf: output)
        #expect(converted.entries.map(\.name) == source.allWeights.map { "\($0.layer.name)/\($0.weight.name)" })
        #expect(converted.entries.allSatisfy { $0.dtype == "F32" })
        for (layer, weight) in source.allWeights {
            #expect(try converted.tensor(named: "\(layer.name)/\(weight.name)") == source.tensor(layer: layer.name, weight: weight.name))
        }
        let sums = try JSONDecoder().decode([String: String].self, from: Data(contentsOf: Fixtures.url("sha256.json")))
        #expect(converted.metadata["source_sha256"] == sums[file])
        #expect(report.sourceSHA256 == sums[file])
        #expect(converted.metadata["format"] == "tlhub")
        #expect(converted.metadata["format_version"] == "1")
        #expect(converted.metadata["source_format"] == source.format.rawValue)
        #expect(converted.metadata["keras_version"] == source.kerasVersion)
        let order = try JSONDecoder().decode([String].self, from: Data((converted.metadata["layer_order"] ?? "").utf8))
        #expect(order == source.layerNames)
        #expect(converted.layerNames == source.layerNames)
        if let config = source.modelConfig {
            #expect(converted.modelConfig == config)
            #expect(converted.metadata["arch"] == nil)
        } else {
            #expect(converted.metadata["arch"] == "tiny")
        }
        // Reopened through WeightFile, it presents the same tree.
        let reopened = try WeightFile.open(output)
        #expect(reopened.layerNames == source.layerNames)
        #expect(reopened.nestedModels == source.nestedModels)
    }

    @Test("h5 → safetensors → h5 keeps every name and value", arguments: ["mobile_tiny_weights_tf.h5", "mobile_tiny_h5py2_strings.h5", "nested_full.h5", "vgg_tiny_full.h5"])
    func roundTrip(file: String) throws {
        let scratch = try ScratchDirectory()
        let source = try WeightFile.open(Fixtures.url(file))
        try SafeTensorsConversion.convert(source, to: scratch.file("a.safetensors"))
        try KerasH5Export.write(try WeightFile.open(scratch.file("a.safetensors")), to: scratch.file("b.h5"))
        let back = try WeightFile.open(scratch.file("b.h5"))
        #expect(back.format == .kerasH5Weights)
        #expect(back.layerNames == source.layerNames)
        #expect(back.nestedModels.mapValues { Set($0) } == source.nestedModels.mapValues { Set($0).subtracting(["inner_relu"]) })
        for (layer, weight) in source.allWeights {
            #expect(back.weightNames(layer: layer.name) == source.weightNames(layer: layer.name))
            #expect(try back.tensor(layer: layer.name, weight: weight.name) == source.tensor(layer: layer.name, weight: weight.name))
        }
        // Exported files use the tf.keras 2 names Keras' loaders expect.
        let file = try HDF5File.open(scratch.file("b.h5"))
        let first = try #require(source.layerNames.first)
        let group = try file.group(source.layer(named: first)?.parentModel ?? first)
        #expect(try group.strings(attribute: "weight_names").first == "\(first)/\(source.weightNames(layer: first)[0]):0")
        #expect(try file.string(attribute: "backend") == "tensorflow")
    }

    @Test("many long layer names are written as chunked layer_names0, layer_names1, …")
    func chunkedExport() throws {
        let scratch = try ScratchDirectory()
        let names = (0..<400).map { "layer_with_a_long_name_\(String(repeating: "y", count: 200))_\($0)" }
        let file = try HDF5File.create(scratch.file("c.h5"))
        try file.setStrings(names, attribute: "layer_names")
        #expect(!file.hasAttribute("layer_names"))
        #expect(file.hasAttribute("layer_names0") && file.hasAttribute("layer_names1"))
        #expect(try file.chunkedStrings(attribute: "layer_names") == names)
    }

    @Test("a failed conversion or export leaves nothing at the target")
    func atomicOnError() throws {
        let scratch = try ScratchDirectory()
        // Opens fine; the second weight's compressed chunk is garbage.
        let source = try WeightFile.open(Fixtures.url("corrupt_chunk.h5"))
        #expect(source.layerNames == ["first", "second"])
        #expect(try source.tensor(layer: "first", weight: "kernel").scalars == (0..<256).map(Float.init))
        let readError = #expect(throws: HDF5Error.self) { try source.tensor(layer: "second", weight: "kernel") }
        #expect(readError?.objectPath == "/second/second/kernel:0")
        #expect(throws: HDF5Error.self) { try SafeTensorsConversion.convert(source, to: scratch.file("out.safetensors")) }
        #expect(throws: HDF5Error.self) { try KerasH5Export.write(source, to: scratch.file("out.h5")) }
        #expect(scratch.contents.isEmpty)
        #expect(throws: (any Error).self) {
            try SafeTensorsConversion.convert(try WeightFile.open(Fixtures.url("small.keras")), to: scratch.file("missing-dir/out.safetensors"))
        }
        #expect(throws: FormatError.self) {
            try SafeTensorsConversion.convert(try WeightFile.open(Fixtures.url("small.keras")), to: Fixtures.url("small.keras"))
        }
    }
}

@Suite("Keras 3 .weights.h5 export")
struct Keras3ExportTests {
    @Test("safetensors → .weights.h5 keeps names, values and Keras 3 paths", arguments: ["small.keras", "nested.keras", "vgg_tiny_full.h5", "mobile_tiny_weights_tf.h5"])
    func roundTrip(file: String) throws {
        let scratch = try ScratchDirectory()
        let source = try WeightFile.open(Fixtures.url(file))
        try SafeTensorsConversion.convert(source, to: scratch.file("a.safetensors"))
        try Keras3WeightsExport.write(try WeightFile.open(scratch.file("a.safetensors")), to: scratch.file("b.weights.h5"))
        let back = try WeightFile.open(scratch.file("b.weights.h5"))
        #expect(back.format == .keras3Weights)
        #expect(Set(back.layerNames) == Set(source.layerNames))
        for (layer, weight) in source.allWeights {
            #expect(back.weightNames(layer: layer.name) == source.weightNames(layer: layer.name), "\(layer.name)")
            #expect(try back.tensor(layer: layer.name, weight: weight.name) == source.tensor(layer: layer.name, weight: weight.name))
        }
    }

    @Test("paths follow Keras 3 naming: class in snake case, numbered per class")
    func paths() throws {
        let scratch = try ScratchDirectory()
        try Keras3WeightsExport.write(try WeightFile.open(Fixtures.url("vgg_tiny_full.h5")), to: scratch.file("v.weights.h5"))
        let file = try HDF5File.open(scratch.file("v.weights.h5"))
        #expect(try file.group("layers").linkNames() == ["conv2d", "conv2d_1", "conv2d_2", "dense", "dense_1"])
        #expect(try file.group("layers/conv2d_2/vars").string(attribute: "name") == "block2_conv1")
        #expect(try file.group("layers/dense_1/vars").dataset("0").shape == [8, 3])
    }

    @Test("a layer whose class cannot be inferred is an error naming it")
    func unknownClass() throws {
        let layer = LayerInfo(name: "mystery", className: nil, parentModel: nil,
                              weights: [WeightInfo(name: "w", shape: [3], dtype: "float32", locator: "mystery/w")])
        let error = #expect(throws: FormatError.self) { try Keras3WeightsExport.classKey(for: layer, path: "x.h5") }
        #expect(error?.problem.contains("mystery") == true)
        let dense = LayerInfo(name: "d", className: nil, parentModel: nil,
                              weights: [WeightInfo(name: "kernel", shape: [3, 2], dtype: "float32", locator: ""),
                                        WeightInfo(name: "bias", shape: [2], dtype: "float32", locator: "")])
        #expect(try Keras3WeightsExport.classKey(for: dense, path: "x.h5") == "dense")
    }
}
