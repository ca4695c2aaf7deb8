import ArgumentParser
import Foundation
import TLEngine
import TLTensor

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
        abstract: "Extract pooled convolutional features (the base's output before any classifier).",
        discussion: """
        Images are decoded, resized as Keras load_img does and preprocessed as keras.applications
        does for the model; with --input, X.npy is an already-preprocessed float32 NHWC batch.
        Output is [N, C] for avg/max pooling, [N, h, w, C] for none; .csv writes one row per image.
        With images, OUT.files.txt lists the image of each row.

        Examples:
          tlhub features --model mobilenet_v2_100_224 photos/ -o features.npy
          tlhub features --model vgg16.h5 --pooling max cat.jpg dog.png -o features.csv
          tlhub features --model mobilenet_v2.safetensors --input batch.npy -o features.npy
        """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var imageOptions: ImageInputOptions

    @Option(help: "Global pooling of the last feature map: avg, max or none.")
    var pooling: FeaturePooling = .avg

    @Option(help: "Images per forward pass.")
    var batch = 32

    @Option(name: [.short, .customLong("output")], help: "Output file (.npy or .csv).", transform: URL.init(fileURLWithPath:))
    var output: URL

    func validate() throws {
        guard batch > 0 else { throw ValidationError("--batch must be positive") }
        guard ["npy", "csv"].contains(output.pathExtension.lowercased()) else {
            throw ValidationError("--output must end in .npy or .csv")
        }
    }

    func run() async throws {
        let loaded = try await modelOptions.load()
        let (images, files) = try imageOptions.batch(for: loaded)
        let features = try inBatches(images, batchSize: batch) { try loaded.model.features(input: $0, pooling: pooling) }
        try writeOutput(features, to: output)
        try writeRowFiles(files, beside: output)
    }
}
