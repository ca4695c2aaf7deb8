import ArgumentParser
import Foundation
import TLEngine
import TLTensor

struct Predict: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a whole model on a preprocessed image batch and print the top classes.",
        discussion: """
        The input is an .npy of float32 NHWC images already preprocessed for the model.

        Example:
          tlhub predict --model mobilenet_v2.safetensors --input batch.npy --top 5 -o scores.npy
        """)

    @OptionGroup var modelOptions: EngineModelOptions

    @Option(help: "Preprocessed float32 NHWC batch (.npy).", transform: URL.init(fileURLWithPath:))
    var input: URL

    @Option(help: "Classes to print per image (0 prints nothing).")
    var top = 5

    @Option(help: "Images per forward pass.")
    var batch = 32

    @Option(name: [.short, .customLong("output")], help: "Write the full output (.npy or .csv).",
            transform: URL.init(fileURLWithPath:))
    var output: URL?

    func validate() throws {
        guard batch > 0 else { throw ValidationError("--batch must be positive") }
        guard top >= 0 else { throw ValidationError("--top must not be negative") }
    }

    func run() async throws {
        let model = try modelOptions.load()
        let images = try readInputBatch(input)
        let scores = try inBatches(images, batchSize: batch) { try model.predict(input: $0) }
        if let output { try writeOutput(scores, to: output) }
        guard top > 0 else { return }
        let rows = scores.shape[0], width = scores.count / max(rows, 1)
        for row in 0..<rows {
            let values = scores.scalars[(row * width)..<((row + 1) * width)]
            let best = values.indices.sorted { values[$0] > values[$1] }.prefix(top)
            let text = best.map { "\($0 - row * width) (\(String(format: "%.4f", values[$0])))" }.joined(separator: ", ")
            print("image \(row): \(text)")
        }
    }
}
