import Foundation
import Testing
import TLEngine
import TLTensor
@testable import TLTraining

/// Goldens from `Tests/Fixtures/make_training_fixtures.py`: Keras 3 `fit(shuffle=False)` on
/// fixed features, from saved initial weights.
enum TrainingFixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/training")

    struct Case: Decodable, CustomStringConvertible, Sendable {
        var name: String
        var head: [[HeadItem]]
        var optimizer: [String: OptimizerValue]
        var epochs: Int
        var batch: Int
        var maps: Bool
        var binary: Bool
        var label_smoothing: Float
        var class_weight: [String: Float]
        var description: String { name }

        enum HeadItem: Decodable, Sendable {
            case text(String), number(Int)
            init(from decoder: Decoder) throws {
                let container = try decoder.singleValueContainer()
                if let number = try? container.decode(Int.self) { self = .number(number) } else { self = .text(try container.decode(String.self)) }
            }
            var text: String { if case .text(let t) = self { return t }; return "" }
            var number: Int { if case .number(let n) = self { return n }; return 0 }
        }

        enum OptimizerValue: Decodable, Sendable {
            case text(String), number(Double), flag(Bool)
            init(from decoder: Decoder) throws {
                let container = try decoder.singleValueContainer()
                if let flag = try? container.decode(Bool.self) { self = .flag(flag) }
                else if let number = try? container.decode(Double.self) { self = .number(number) }
                else { self = .text(try container.decode(String.self)) }
            }
        }

        func number(_ key: String) -> Float? { if case .number(let n)? = optimizer[key] { return Float(n) }; return nil }
        var isAdam: Bool { if case .text("adam")? = optimizer["name"] { return true }; return false }
        var nesterov: Bool { if case .flag(true)? = optimizer["nesterov"] { return true }; return false }

        /// The Keras model of the fixture script, with its layer names.
        func graph(inputShape: [Int]) throws -> Graph {
            let builder = GraphBuilder()
            var x = builder.input(shape: inputShape, name: "input")
            for (index, item) in head.enumerated() {
                switch item[0].text {
                case "gap": x = try builder.globalAveragePooling2D(x, name: "gap_\(index)")
                case "flatten": x = try builder.flatten(x, name: "flatten_\(index)")
                default:
                    let activation = try Activation(kerasName: item[2].text, keras3: true, layer: "dense_\(index)")
                    x = try builder.apply(Dense(name: "dense_\(index)", units: item[1].number, activation: activation), to: [x])
                }
            }
            return try builder.build(outputs: [x], name: name)
        }

        var loss: Loss { binary ? .binaryCrossEntropy : .categoricalCrossEntropy(labelSmoothing: label_smoothing) }
    }

    static var cases: [Case] {
        guard let data = try? Data(contentsOf: directory.appendingPathComponent("cases.json")),
              let cases = try? JSONDecoder().decode([Case].self, from: data) else { return [] }
        return cases
    }

    static func tensor(_ name: String) throws -> Tensor { try NumPy.read(contentsOf: directory.appendingPathComponent(name)) }
    static func weights(_ name: String) throws -> SafeTensorsFile { try SafeTensorsFile(contentsOf: directory.appendingPathComponent(name)) }

    /// The case's inputs and targets.
    static func data(_ fixture: Case) throws -> (x: Tensor, y: Tensor) {
        let x = try tensor(fixture.maps ? "data_x4.npy" : "data_x.npy")
        let y = try tensor("data_y.npy")
        if fixture.binary {
            let rows = y.shape[0]
            return (x, Tensor(shape: [rows, 1], scalars: (0..<rows).map { y.scalars[$0 * 3 + 1] }))
        }
        return (x, y)
    }

    /// The case's graph with Keras' initial weights, wrapped for training.
    static func model(_ fixture: Case, x: Tensor) throws -> TrainingGraph {
        let graph = try fixture.graph(inputShape: Array(x.shape.dropFirst()))
        try graph.loadWeights(from: try weights("\(fixture.name)_initial.safetensors"))
        return try TrainingGraph(graph: graph)
    }
}

@Suite("Head training equals Keras fit step for step")
struct KerasFitParityTests {
    @Test("weights after fit(shuffle=False) equal Keras's within 1e-4", arguments: TrainingFixtures.cases)
    func weightsAfterFit(fixture: TrainingFixtures.Case) throws {
        let (x, y) = try TrainingFixtures.data(fixture)
        let model = try TrainingFixtures.model(fixture, x: x)
        let optimizer: Optimizer = fixture.isAdam ? Adam()
            : SGD(momentum: fixture.number("momentum") ?? 0, nesterov: fixture.nesterov)
        var options = TrainingOptions()
        options.epochs = fixture.epochs
        options.batchSize = fixture.batch
        options.learningRate = fixture.number("learning_rate") ?? 0.01
        options.shuffle = false
        if !fixture.class_weight.isEmpty {
            options.classWeights = (0..<3).map { fixture.class_weight[String($0)] ?? 1 }
        }
        let history = try Trainer(model: model, loss: fixture.loss, optimizer: optimizer).fit(x: x, y: y, options: options)

        let expected = try TrainingFixtures.weights("\(fixture.name)_final.safetensors")
        for parameter in model.parameters {
            let want = try expected.tensor(named: parameter.path)
            let error = parameter.value.maxAbsoluteDifference(want)
            #expect(error <= 1e-4 * max(1, want.maxAbsolute), "\(fixture.name) \(parameter.path): max error \(error)")
        }
        let keras = try JSONSerialization.jsonObject(with: Data(contentsOf: TrainingFixtures.directory
            .appendingPathComponent("\(fixture.name)_history.json"))) as? [String: [Double]]
        let losses = try #require(keras?["loss"])
        #expect(history.count == losses.count)
        for (record, loss) in zip(history, losses) {
            #expect(abs(Double(record.loss) - loss) <= 1e-4 * max(1, abs(loss)), "\(fixture.name) epoch \(record.epoch): \(record.loss) vs \(loss)")
        }
        let accuracy = try #require(keras?[fixture.binary ? "binary_accuracy" : "categorical_accuracy"])
        for (record, value) in zip(history, accuracy) {
            #expect(abs(Double(record.accuracy) - value) < 1e-6, "\(fixture.name) epoch \(record.epoch) accuracy")
        }
    }

    @Test("first-batch gradients equal tf.GradientTape's", arguments: TrainingFixtures.cases)
    func gradientsMatchTape(fixture: TrainingFixtures.Case) throws {
        let (x, y) = try TrainingFixtures.data(fixture)
        let model = try TrainingFixtures.model(fixture, x: x)
        let rows = Array(0..<fixture.batch)
        var random = SeededRandom(seed: 0)
        let pass = try model.forward(Trainer.rows(x, rows), mode: .training, random: &random)
        let result = fixture.loss.evaluate(output: pass.output, logits: model.logits(pass), labels: Trainer.rows(y, rows), sampleWeights: nil)
        model.zeroGradients()
        try model.backward(pass, outputGradient: result.gradient, isPreActivation: result.isPreActivation)
        let tape = try TrainingFixtures.weights("\(fixture.name)_gradients.safetensors")
        for parameter in model.parameters {
            let want = try tape.tensor(named: parameter.path)
            let got = Tensor(shape: want.shape, scalars: parameter.gradient)
            #expect(got.maxAbsoluteDifference(want) <= 1e-5 * max(1, want.maxAbsolute), "\(fixture.name) \(parameter.path)")
        }
    }
}
