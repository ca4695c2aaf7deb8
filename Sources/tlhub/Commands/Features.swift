import ArgumentParser
import Foundation
import TLEngine
import TLTensor

/// Options shared by the engine commands: which model file, and which architecture if the file
/// carries no Keras config.
struct EngineModelOptions: ParsableArguments {
    @Option(name: .long, help: "Model file (.safetensors; Keras .h5/.keras once TLFormats is linked).",
            transform: URL.init(fileURLWithPath:))
    var model: URL

    @Option(name: .long, help: "Architecture for a weights-only file (\(Architecture.names.joined(separator: ", "))); default: detected.")
    var arch: String?

    func load() throws -> Model {
        try Model.load(from: model, architecture: try arch.map { try Architecture(name: $0) })
    }
}

extension FeaturePooling: ExpressibleByArgument {}

/// Reads a preprocessed NHWC float32 batch (`[N, H, W, C]`, or one `[H, W, C]` image).
func readInputBatch(_ url: URL) throws -> Tensor {
    let tensor = try NumPy.read(contentsOf: url)
    if tensor.rank == 3 { return tensor.reshaped([1] + tensor.shape) }
    guard tensor.rank == 4 else {
        throw ValidationError("\(url.path): expected an NHWC array [N, H, W, C], got shape \(tensor.shape)")
    }
    return tensor
}

/// Runs `body` on consecutive slices of at most `batchSize` images and stacks the results.
func inBatches(_ input: Tensor, batchSize: Int, _ body: (Tensor) throws -> Tensor) throws -> Tensor {
    let count = input.shape[0]
    let perImage = input.count / max(count, 1)
    var scalars: [Float] = []
    var tail: [Int] = []
    var start = 0
    while start < count {
        let end = min(start + batchSize, count)
        let slice = Tensor(shape: [end - start] + input.shape.dropFirst(),
                           scalars: Array(input.scalars[(start * perImage)..<(end * perImage)]))
        let output = try body(slice)
        tail = Array(output.shape.dropFirst())
        scalars.append(contentsOf: output.scalars)
        start = end
    }
    return Tensor(shape: [count] + tail, scalars: scalars)
}

/// Writes `.npy` or `.csv` (one row per image, features flattened) atomically.
func writeOutput(_ tensor: Tensor, to url: URL) throws {
    if url.pathExtension.lowercased() == "csv" {
        let rows = tensor.shape.first ?? 1
        let width = tensor.count / max(rows, 1)
        var text = ""
        for row in 0..<rows {
            text += tensor.scalars[(row * width)..<((row + 1) * width)].map { "\($0)" }.joined(separator: ",")
            text += "\n"
        }
        let data = Data(text.utf8)
        try AtomicFile.write(to: url) { handle, _ in try handle.write(contentsOf: data) }
    } else {
        try NumPy.write(tensor, to: url)
    }
}

struct Features: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Extract pooled convolutional features from a preprocessed image batch.",
        discussion: """
        The input is an .npy of float32 NHWC images already preprocessed for the model
        (e.g. scaled to [-1, 1] for MobileNetV2). Output is [N, C] for avg/max pooling,
        [N, h, w, C] for none; .csv writes one row per image.

        Example:
          tlhub features --model mobilenet_v2.safetensors --input batch.npy -o features.npy
        """)

    @OptionGroup var modelOptions: EngineModelOptions

    @Option(help: "Global pooling of the last feature map: avg, max or none.")
    var pooling: FeaturePooling = .avg

    @Option(help: "Images per forward pass.")
    var batch = 32

    @Option(help: "Preprocessed float32 NHWC batch (.npy).", transform: URL.init(fileURLWithPath:))
    var input: URL

    @Option(name: [.short, .customLong("output")], help: "Output file (.npy or .csv).", transform: URL.init(fileURLWithPath:))
    var output: URL

    func validate() throws {
        guard batch > 0 else { throw ValidationError("--batch must be positive") }
        guard ["npy", "csv"].contains(output.pathExtension.lowercased()) else {
            throw ValidationError("--output must end in .npy or .csv")
        }
    }

    func run() async throws {
        let model = try modelOptions.load()
        let images = try readInputBatch(input)
        let features = try inBatches(images, batchSize: batch) { try model.features(input: $0, pooling: pooling) }
        try writeOutput(features, to: output)
    }
}
