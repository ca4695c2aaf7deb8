import ArgumentParser
import Foundation
import TLEngine
import TLPipeline
import TLTensor

extension FeaturePooling: ExpressibleByArgument {}

/// `tlhub features`: extraction (the default) and `merge` of sharded runs.
struct Features: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Extract pooled convolutional features (the base's output before any classifier); merge sharded runs.",
        discussion: """
        Examples:
          tlhub features --model mobilenet_v2_100_224 photos/ -o features.npy
          tlhub features --model mobilenet_v2_100_224 photos/ --shard auto -o feats/    # a Slurm array task
          tlhub features merge feats/ -o features.npy
        """,
        subcommands: [FeatureExtraction.self, Merge.self],
        defaultSubcommand: FeatureExtraction.self)
}

struct FeatureExtraction: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "extract",
        abstract: "Extract pooled convolutional features (the base's output before any classifier).",
        discussion: """
        Images are decoded, resized as Keras load_img does and preprocessed as keras.applications
        does for the model; with --input, X.npy is an already-preprocessed float32 NHWC batch.
        Output is [N, C] for avg/max pooling, [N, h, w, C] for none; .csv writes one row per image.
        With images, OUT.files.txt (OUT.csv.files.txt for .csv) lists the image of each row; it is
        written together with the output. Images stream in batches (memory does not grow with
        their number); unreadable ones are all listed, and --skip-bad leaves them out.

        Examples:
          tlhub features --model mobilenet_v2_100_224 photos/ -o features.npy
          tlhub features --model vgg16.h5 --pooling max cat.jpg dog.png -o features.csv
          tlhub features --model mobilenet_v2.safetensors --input batch.npy -o features.npy
          tlhub features --model mobilenet_v2_100_224 photos/ --shard auto -o feats/    # a Slurm array task
          tlhub features merge feats/ -o features.npy
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
        guard imageOptions.shard != nil || ["npy", "csv"].contains(output.pathExtension.lowercased()) else {
            throw ValidationError("--output must end in .npy or .csv (or be a folder, with --shard)")
        }
    }

    func run() async throws {
        Interruption.removeTemporariesOnSignal()
        let loaded = try await modelOptions.load()
        let inference = try imageOptions.inference(batchSize: batch)
        if let shard = inference.shard {
            try ShardedRun(command: "features", inputs: imageOptions, extraSettings: pooling.rawValue)
                .run(loaded, inference: inference, shard: shard, folder: output) { try loaded.model.features(input: $0, pooling: pooling) }
            return
        }
        let runner = BatchRun(command: "features", inference: inference)
        let result = try runner.run(loaded) { try loaded.model.features(input: $0, pooling: pooling) }
        try OutputFiles.write(result.output, files: result.files, to: output)
        FileHandle.standardError.write(Data((runner.summary(result, output: output) + "\n").utf8))
    }
}
