import Foundation
import Testing
import TLEngine
import TLTensor

/// A toy architecture family, written as a library user would add one: this file and one
/// `Architecture.register` call.
struct ToyNet: ArchitectureFamily {
    /// Filters of the single convolution.
    var width: Int

    static let nameForms = ["toynet[_WIDTH]"]

    static func parse(compactName: String, original: String) throws -> ToyNet? {
        guard compactName.hasPrefix("toynet") else { return nil }
        let rest = compactName.dropFirst("toynet".count)
        return ToyNet(width: rest.isEmpty ? 0 : Int(rest) ?? 0)
    }

    static func detect(in weights: WeightSource, layers: Set<String>) throws -> ToyNet? {
        layers.contains("toy_conv") ? ToyNet(width: 0) : nil
    }

    func resolved(using weights: WeightSource) throws -> ToyNet {
        width > 0 ? self : ToyNet(width: weights.shape(layer: "toy_conv", weight: "kernel")?.last ?? 4)
    }

    func build(options: ApplicationOptions) throws -> Graph {
        let builder = GraphBuilder()
        var x = builder.input(shape: options.inputShape ?? [-1, -1, 3], name: "input")
        x = try builder.conv2D(x, filters: width, kernelSize: 3, padding: .same, activation: .relu, name: "toy_conv")
        x = try builder.applicationHead(x, options: options, averageName: "avg_pool", maxName: "max_pool")
        return try builder.build(outputs: [x], name: description)
    }

    var description: String { "toynet_\(width)" }
}

@Suite("Architecture registry")
struct ArchitectureRegistryTests {
    init() { Architecture.register(ToyNet.self) }

    @Test("a family registered in one line answers to its names")
    func byName() throws {
        #expect(try Architecture(name: "Toy-Net_6").description == "toynet_6")
        #expect(Architecture.names.contains("toynet[_WIDTH]"))
        #expect(try Architecture(name: "resnet50") == .resNet(depth: 50), "built-in families still resolve")
    }

    @Test("a weights-only source of the new family is detected, built and loaded strictly")
    func detectedAndLoaded() throws {
        let kernel = Tensor(shape: [3, 3, 3, 6], scalars: (0..<162).map { Float($0 % 7) * 0.01 })
        let weights = WeightDictionary(entries: [
            ("toy_conv", [("kernel", kernel), ("bias", Tensor(shape: [6], repeating: 0.1))]),
            ("predictions", [("kernel", Tensor(shape: [6, 2], scalars: [1, -1, 2, 0, 0, 1, -1, 1, 0.5, 0.5, 0, 2])),
                             ("bias", Tensor(shape: [2], repeating: 0))]),
        ])
        let model = try Model(weights: weights)
        #expect(model.architecture?.description == "toynet_6")
        let scores = try model.predict(input: Tensor(shape: [1, 8, 8, 3], repeating: 1))
        #expect(scores.shape == [1, 2])
        #expect(abs(scores.scalars.reduce(0, +) - 1) < 1e-5, "softmax classifier")
        // Strict: a file with a leftover weight is refused.
        let extra = WeightDictionary(entries: weights.entries + [("stray", [("kernel", Tensor(shape: [1], repeating: 0))])])
        #expect(throws: EngineError.self) { try Model(weights: extra, architecture: try Architecture(name: "toynet")) }
    }
}
