import Foundation
import Testing
import TLEngine
import TLTensor

/// Locates and reads the Keras-generated goldens in `Tests/Fixtures/zoo-inception-densenet-nasnet`.
enum InceptionDenseNASNetFixtures {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/zoo-inception-densenet-nasnet")

    /// One reduced network from `make_zoo-inception-densenet-nasnet_fixtures.py` with its Keras constructor arguments.
    struct Case: Decodable, CustomStringConvertible, Sendable {
        var name: String
        var family: String
        var side: Int
        var top: Bool
        var classes: Int?
        var pooling: String?
        var divisor: Int?
        var blocks: Int?
        var denseBlocks: [Int]?
        var penultimate: Int?
        var stem: Int?
        var skip: Bool?
        var description: String { name }

        enum CodingKeys: String, CodingKey {
            case name, family, side, top, classes, pooling, divisor, blocks, penultimate, stem, skip
        }

        init(from decoder: Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            name = try container.decode(String.self, forKey: .name)
            family = try container.decode(String.self, forKey: .family)
            side = try container.decode(Int.self, forKey: .side)
            top = try container.decode(Bool.self, forKey: .top)
            classes = try container.decodeIfPresent(Int.self, forKey: .classes)
            pooling = try container.decodeIfPresent(String.self, forKey: .pooling)
            divisor = try container.decodeIfPresent(Int.self, forKey: .divisor)
            penultimate = try container.decodeIfPresent(Int.self, forKey: .penultimate)
            stem = try container.decodeIfPresent(Int.self, forKey: .stem)
            skip = try container.decodeIfPresent(Bool.self, forKey: .skip)
            // `blocks` is a list for DenseNet and a count for NASNet.
            denseBlocks = try? container.decodeIfPresent([Int].self, forKey: .blocks)
            blocks = try? container.decodeIfPresent(Int.self, forKey: .blocks)
        }

        var options: ApplicationOptions {
            ApplicationOptions(includeTop: top, inputShape: [side, side, 3],
                               pooling: FeaturePooling(rawValue: pooling ?? "none") ?? .none, classes: classes ?? 1000)
        }

        /// The native graph for this case's arguments.
        func build() throws -> Graph {
            switch family {
            case "inceptionv3": return try InceptionV3.build(options: options, filterDivisor: divisor ?? 1)
            case "xception": return try Xception.build(options: options, filterDivisor: divisor ?? 1)
            case "inceptionresnetv2": return try InceptionResNetV2.build(options: options, filterDivisor: divisor ?? 1)
            case "densenet": return try DenseNet.build(blocks: denseBlocks ?? [], options: options)
            default:
                let configuration = NASNet.Configuration(penultimateFilters: penultimate ?? 0, blockCount: blocks ?? 0,
                                                         stemFilters: stem ?? 0, skipReduction: skip ?? false)
                return try NASNet.build(configuration: configuration, options: options)
            }
        }
    }

    static var cases: [Case] {
        guard let data = try? Data(contentsOf: directory.appendingPathComponent("cases.json")),
              let cases = try? JSONDecoder().decode([Case].self, from: data) else { return [] }
        return cases
    }

    /// `model → [[layer name, per-sample output shape]]` of the full-size Keras models.
    static func names() throws -> [String: [(name: String, shape: [Int])]] {
        let data = try Data(contentsOf: directory.appendingPathComponent("names.json"))
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: [[Any]]])
        return object.mapValues { rows in
            rows.map { row in (name: row[0] as? String ?? "", shape: (row[1] as? [Any])?.map { ($0 as? Int) ?? -1 } ?? []) }
        }
    }

    static func tensor(_ file: String) throws -> Tensor {
        try NumPy.read(contentsOf: directory.appendingPathComponent(file))
    }
}

/// A weight source that knows a graph's expected weight names and shapes but holds no data:
/// enough for architecture detection without allocating a full-size model.
struct ExpectedShapes: WeightSource {
    var entries: [(layer: String, weights: [WeightSpec])]

    init(graph: Graph) {
        entries = graph.uniqueLayers.compactMap { item in
            let specs = item.layer.expectedWeights(inputShapes: graph.nodes[item.node].inputs.map { graph.shapes[$0] })
            return specs.isEmpty ? nil : (item.layer.name, specs)
        }
    }

    var layerNames: [String] { entries.map(\.layer) }
    func weightNames(layer: String) -> [String] { entries.first { $0.layer == layer }?.weights.map(\.name) ?? [] }
    func shape(layer: String, weight: String) -> [Int]? {
        entries.first { $0.layer == layer }?.weights.first { $0.name == weight }?.shape
    }
    func tensor(layer: String, weight: String) throws -> Tensor {
        throw EngineError.missingWeight(layer: layer, weight: weight, expectedShape: [])
    }
    var modelConfig: String? { nil }
}

@Suite("InceptionV3, Xception, InceptionResNetV2, DenseNet and NASNet match keras.applications")
struct InceptionDenseNASNetParityTests {
    @Test("reduced networks match Keras (unfused and fused)", arguments: InceptionDenseNASNetFixtures.cases)
    func parity(_ fixture: InceptionDenseNASNetFixtures.Case) throws {
        let graph = try fixture.build()
        try graph.loadWeights(from: try SafeTensorsFile(contentsOf: InceptionDenseNASNetFixtures.directory.appendingPathComponent("\(fixture.name).safetensors")))
        let input = try InceptionDenseNASNetFixtures.tensor("\(fixture.name)_input.npy")
        let expected = try InceptionDenseNASNetFixtures.tensor("\(fixture.name)_output.npy")
        for candidate in [graph, try graph.fused()] {
            let actual = try GraphExecutor(graph: candidate, inputShapes: [input.shape]).run([input])[0]
            #expect(actual.shape == expected.shape)
            let error = actual.maxAbsoluteDifference(expected)
            #expect(error <= EngineFixtures.tolerance(expected), "max error \(error) vs max |Keras| \(expected.maxAbsolute)")
        }
    }

    @Test("fixtures are present")
    func fixturesPresent() {
        #expect(InceptionDenseNASNetFixtures.cases.count >= 7)
    }
}

@Suite("Full-size layer names, shapes and detection")
struct InceptionDenseNASNetNamesTests {
    static let architectures: [(key: String, architecture: Architecture)] = [
        ("inceptionv3", .inceptionV3), ("xception", .xception), ("inceptionresnetv2", .inceptionResNetV2),
        ("densenet121", .denseNet(depth: 121)), ("densenet169", .denseNet(depth: 169)),
        ("densenet201", .denseNet(depth: 201)), ("nasnetmobile", .nasNetMobile), ("nasnetlarge", .nasNetLarge),
    ]

    @Test("every Keras layer exists under its name with Keras' output shape", arguments: architectures.map(\.key))
    func names(_ key: String) throws {
        let keras = try #require(try InceptionDenseNASNetFixtures.names()[key])
        let architecture = try Architecture(name: key)
        let graph = try architecture.build(options: ApplicationOptions())
        let swiftNames = graph.nodes.map(\.layer.name)
        #expect(Set(swiftNames).count == swiftNames.count, "duplicate layer names")
        #expect(Set(swiftNames) == Set(keras.map(\.name)),
                "only in tlhub: \(Set(swiftNames).subtracting(keras.map(\.name)).sorted().prefix(5)), only in Keras: \(Set(keras.map(\.name)).subtracting(swiftNames).sorted().prefix(5))")
        for layer in keras {
            guard let node = graph.node(named: layer.name) else { continue }
            #expect(graph.shapes[node] == layer.shape, "\(layer.name)")
        }
    }

    @Test("a weights-only file is recognised from its layer names and kernel shapes", arguments: architectures.map(\.key))
    func detection(_ key: String) throws {
        let architecture = try Architecture(name: key)
        let weights = ExpectedShapes(graph: try architecture.build(options: ApplicationOptions()))
        #expect(try Architecture.detect(from: weights) == architecture)
        let options = Architecture.options(for: weights, architecture: architecture)
        #expect(options.includeTop && options.classes == 1000)
        let noTop = ExpectedShapes(graph: try architecture.build(options: ApplicationOptions(includeTop: false)))
        #expect(try Architecture.detect(from: noTop) == architecture)
        #expect(!Architecture.options(for: noTop, architecture: architecture).includeTop)
    }

    @Test("Keras 2.0 files numbering automatic names from 1 are detected and read under tf.keras' names")
    func oneBasedNames() throws {
        let modern = ExpectedShapes(graph: try InceptionV3.build(options: ApplicationOptions(includeTop: false)))
        var legacy = modern
        legacy.entries = modern.entries.map { entry in
            for prefix in ["conv2d", "batch_normalization"] {
                if entry.layer == prefix { return ("\(prefix)_1", entry.weights) }
                if entry.layer.hasPrefix("\(prefix)_"), let index = Int(entry.layer.dropFirst(prefix.count + 1)) {
                    return ("\(prefix)_\(index + 1)", entry.weights)
                }
            }
            return entry
        }
        #expect(legacy.layerNames.contains("conv2d_94") && !legacy.layerNames.contains("conv2d"))
        // Detection and every shape check pass through the renumbering; the data read then asks the
        // file for its own name of the first layer, `conv2d` → `conv2d_1`.
        #expect(throws: EngineError.missingWeight(layer: "conv2d_1", weight: "kernel", expectedShape: [])) {
            try Model(weights: legacy)
        }
        #expect(throws: EngineError.missingWeight(layer: "conv2d", weight: "kernel", expectedShape: [])) {
            try Model(weights: modern)
        }
    }

    @Test("unpublished DenseNet and NASNet shapes are named in the error")
    func unpublished() throws {
        let dense = ExpectedShapes(graph: try DenseNet.build(blocks: [1, 2, 1, 1], options: ApplicationOptions(includeTop: false)))
        #expect(throws: EngineError.unknownArchitecture("DenseNet with dense blocks [1, 2, 1, 1] matches no published depth (121, 169, 201)")) {
            try Architecture.detect(from: dense)
        }
        #expect(throws: EngineError.self) {
            try NASNet.build(configuration: NASNet.Configuration(penultimateFilters: 100, blockCount: 1, stemFilters: 8,
                                                                 skipReduction: false))
        }
    }

    @Test("NASNet with an unknown input size builds the same cells as at a fixed size")
    func nasNetFreeSize() throws {
        let fixed = try NASNet.build(configuration: .mobile, options: ApplicationOptions(includeTop: false, inputShape: [224, 224, 3]))
        let free = try NASNet.build(configuration: .mobile, options: ApplicationOptions(includeTop: false))
        #expect(fixed.nodes.map(\.layer.name) == free.nodes.map(\.layer.name))
        #expect(free.shapes[free.outputs[0]] == [-1, -1, 1056])
    }
}

@Suite("Scaled residual (CustomScaleLayer)")
struct ScaledResidualTests {
    @Test("x + scale · r, hand-computed")
    func forward() throws {
        let builder = GraphBuilder()
        let x = builder.input(shape: [1, 2, 2], name: "in")
        let r = try builder.activation(x, .relu, name: "relu")
        let layer = ScaledResidual(name: "custom_scale_layer", scale: 0.17)
        let output = try builder.apply(layer, to: [x, r])
        let graph = try builder.build(outputs: [output], name: "scaled")
        let input = Tensor(shape: [1, 1, 2, 2], scalars: [1, -2, 3, 0.5])
        let result = try GraphExecutor(graph: graph, inputShapes: [input.shape]).run([input])[0]
        // x + 0.17 · relu(x)
        let expected: [Float] = [1.17, -2, 3.51, 0.585]
        #expect(zip(result.scalars, expected).allSatisfy { abs($0 - $1) < 1e-6 })
        #expect(throws: EngineError.self) { try layer.outputShape(inputShapes: [[2, 2, 3], [2, 2, 4]]) }
    }

    @Test("a Keras config with CustomScaleLayer builds")
    func config() throws {
        let json = """
        {"class_name": "Functional", "config": {"name": "m", "layers": [
          {"class_name": "InputLayer", "name": "in", "config": {"name": "in", "batch_input_shape": [null, 2, 2, 3]}, "inbound_nodes": []},
          {"class_name": "Conv2D", "name": "up", "config": {"name": "up", "filters": 3, "kernel_size": [1, 1], "use_bias": false},
           "inbound_nodes": [[["in", 0, 0, {}]]]},
          {"class_name": "CustomScaleLayer", "name": "custom_scale_layer", "config": {"name": "custom_scale_layer", "scale": 0.5},
           "inbound_nodes": [[["in", 0, 0, {}], ["up", 0, 0, {}]]]}],
          "input_layers": [["in", 0, 0]], "output_layers": [["custom_scale_layer", 0, 0]]}}
        """
        let graph = try KerasGraphReader.graph(fromJSON: json)
        let node = try #require(graph.node(named: "custom_scale_layer"))
        #expect((graph.nodes[node].layer as? ScaledResidual)?.scale == 0.5)
        #expect(graph.nodes[node].inputs.count == 2)
    }
}
