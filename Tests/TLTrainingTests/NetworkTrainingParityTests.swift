import Foundation
import Testing
import TLEngine
import TLTensor
@testable import TLTraining

/// Goldens from `Tests/Fixtures/make_network_training_fixtures.py`: models saved by Keras 3 and
/// tf.keras 2 before training (BN statistics randomized), tf.GradientTape gradients, and every
/// weight after `fit(shuffle=False)`.
enum NetworkFixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/network-training")

    struct Case: Decodable, CustomStringConvertible, Sendable {
        var name: String
        var model: String
        var data: String
        var optimizer: [String: TrainingFixtures.Case.OptimizerValue]
        var epochs: Int
        var batch: Int
        var description: String { name }

        func number(_ key: String) -> Float? { if case .number(let n)? = optimizer[key] { return Float(n) }; return nil }
        var isAdam: Bool { if case .text("adam")? = optimizer["name"] { return true }; return false }
    }

    static var cases: [Case] {
        guard let data = try? Data(contentsOf: directory.appendingPathComponent("cases.json")),
              let cases = try? JSONDecoder().decode([Case].self, from: data) else { return [] }
        return cases
    }

    /// The saved models, one per data set.
    static var models: [String] { Array(Set(cases.map(\.data))).sorted() }

    static func file(_ name: String) -> URL { directory.appendingPathComponent(name) }

    static func load(_ modelFile: String) throws -> TrainingGraph {
        try TrainingGraph(graph: try Model.load(from: file(modelFile)).graph)
    }

    static func data(_ name: String) throws -> (x: Tensor, y: Tensor) {
        (try NumPy.read(contentsOf: file("\(name)_x.npy")), try NumPy.read(contentsOf: file("\(name)_y.npy")))
    }
}

@Suite("Training through the network equals Keras")
struct NetworkTrainingParityTests {
    @Test("first-batch gradients equal tf.GradientTape's, with BN on batch and on moving statistics",
          arguments: NetworkFixtures.models, [Mode.training, .inference])
    func gradientsMatchTape(dataName: String, mode: Mode) throws {
        let modelFile = try #require(NetworkFixtures.cases.first { $0.data == dataName }).model
        let model = try NetworkFixtures.load(modelFile)
        let (x, y) = try NetworkFixtures.data(dataName)
        let rows = Array(0..<8)
        var random = SeededRandom(seed: 0)
        let loss = Loss.categoricalCrossEntropy(labelSmoothing: 0)
        let pass = try model.forward(Trainer.rows(x, rows), mode: mode, random: &random)
        let result = loss.evaluate(output: pass.output, logits: model.logits(pass), labels: Trainer.rows(y, rows), sampleWeights: nil)
        model.zeroGradients()
        try model.backward(pass, outputGradient: result.gradient, isPreActivation: result.isPreActivation)
        let tape = try SafeTensorsFile(contentsOf: NetworkFixtures.file("\(dataName)_gradients_\(mode == .training ? "train" : "infer").safetensors"))
        let trainable = model.trainableParameters
        #expect(Set(trainable.map(\.path)) == Set(tape.entries.map(\.name)), "\(dataName): trainable weights differ from Keras'")
        for parameter in trainable {
            let want = try tape.tensor(named: parameter.path)
            let got = Tensor(shape: want.shape, scalars: parameter.gradient)
            let error = got.maxAbsoluteDifference(want)
            #expect(error <= 1e-4 * max(1, want.maxAbsolute), "\(dataName) \(mode) \(parameter.path): max error \(error) of \(want.maxAbsolute)")
        }
    }

    @Test("every weight after fit(shuffle=False) equals Keras's within 1e-4, moving statistics included",
          arguments: NetworkFixtures.cases)
    func weightsAfterFit(fixture: NetworkFixtures.Case) throws {
        let model = try NetworkFixtures.load(fixture.model)
        let (x, y) = try NetworkFixtures.data(fixture.data)
        let optimizer: Optimizer = fixture.isAdam ? Adam() : SGD(momentum: fixture.number("momentum") ?? 0)
        var options = TrainingOptions()
        options.epochs = fixture.epochs
        options.batchSize = fixture.batch
        options.learningRate = fixture.number("learning_rate") ?? 0.01
        options.shuffle = false
        let history = try Trainer(model: model, loss: .categoricalCrossEntropy(labelSmoothing: 0), optimizer: optimizer)
            .fit(x: x, y: y, options: options)

        let expected = try SafeTensorsFile(contentsOf: NetworkFixtures.file("\(fixture.name)_final.safetensors"))
        #expect(Set(model.parameters.map(\.path)) == Set(expected.entries.map(\.name)))
        for parameter in model.parameters {
            let want = try expected.tensor(named: parameter.path)
            let error = parameter.value.maxAbsoluteDifference(want)
            #expect(error <= 1e-4 * max(1, want.maxAbsolute), "\(fixture.name) \(parameter.path): max error \(error)")
        }
        let keras = try JSONSerialization.jsonObject(with: Data(contentsOf: NetworkFixtures.file("\(fixture.name)_history.json"))) as? [String: [Double]]
        let losses = try #require(keras?["loss"])
        for (record, loss) in zip(history, losses) {
            #expect(abs(Double(record.loss) - loss) <= 1e-4 * max(1, abs(loss)), "\(fixture.name) epoch \(record.epoch): \(record.loss) vs \(loss)")
        }
    }

    @Test("a frozen nested base called with training=False: frozen layers and inference-mode layers come from the file")
    func nestedRecipeFlags() throws {
        for file in ["nested_frozen.keras", "tfkeras_nested.h5"] {
            let model = try NetworkFixtures.load(file)
            #expect(model.frozenLayers == ["b_conv1", "b_bn1", "b_relu1"], "\(file)")
            #expect(model.inferenceModeLayers.isSuperset(of: ["b_conv1", "b_bn1", "b_conv2", "b_bn2"]) == file.hasSuffix(".h5"), "\(file): Keras 3 fit overrides training=False")
            #expect(!model.inferenceModeLayers.contains("head"), "\(file)")
        }
    }

    @Test("the frozen prefix on the fused inference path, the rest trained on its outputs: the same weights as Keras",
          arguments: NetworkFixtures.cases.filter { $0.data.contains("nested") })
    func frozenPrefixSplit(fixture: NetworkFixtures.Case) throws {
        let model = try NetworkFixtures.load(fixture.model)
        let (x, y) = try NetworkFixtures.data(fixture.data)
        let split = try model.splitAtFrozenPrefix()
        #expect(split.cut == ["b_relu1"])
        let executor = try GraphExecutor(graph: try split.prefix.fused(), inputShapes: [x.shape])
        let cut = try executor.run([x])
        let optimizer: Optimizer = fixture.isAdam ? Adam() : SGD(momentum: fixture.number("momentum") ?? 0)
        var options = TrainingOptions()
        options.epochs = fixture.epochs
        options.batchSize = fixture.batch
        options.learningRate = fixture.number("learning_rate") ?? 0.01
        options.shuffle = false
        _ = try Trainer(model: split.suffix, loss: .categoricalCrossEntropy(labelSmoothing: 0), optimizer: optimizer)
            .fit(x: cut, y: y, options: options)
        let expected = try SafeTensorsFile(contentsOf: NetworkFixtures.file("\(fixture.name)_final.safetensors"))
        for parameter in model.parameters {
            let want = try expected.tensor(named: parameter.path)
            let error = parameter.value.maxAbsoluteDifference(want)
            #expect(error <= 1e-4 * max(1, want.maxAbsolute), "\(fixture.name) \(parameter.path): max error \(error)")
        }
    }
}
