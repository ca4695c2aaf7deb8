import ArgumentParser
import Foundation
import TLEngine
import TLPipeline
import TLTensor

struct Predict: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the whole model (with its classifier) and print the top classes per image.",
        discussion: """
        Images are decoded, resized and preprocessed as Keras does for the model; with --input,
        X.npy is an already-preprocessed float32 NHWC batch. Class names come from --class-index,
        else from the model's hub entry, else (for 1000-class models) from imagenet_class_index,
        pulled into the cache like any model file; without one, class ids are printed.

        Examples:
          tlhub predict --model mobilenet_v2_100_224:top elephant.jpg
          tlhub predict --model resnet50.h5 --input batch.npy --top 3 -o scores.npy
        """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var imageOptions: ImageInputOptions

    @Option(help: "Class-index JSON as Keras writes it ({\"0\": [\"id\", \"name\"], …}): a file or a hub name.")
    var classIndex: String?

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
        Interruption.removeTemporariesOnSignal()
        let loaded = try await modelOptions.load()
        guard loaded.model.hasClassifier else {
            throw InputError("\(modelOptions.model) has no classifier (it was saved without its top): predict would print feature indices as classes; use `tlhub features` for its features, or a model with its classifier (e.g. NAME:top)")
        }
        // Class names are resolved before any work, so a bad --class-index fails fast.
        let names = top > 0 ? try await loaded.classNames(classIndex: classIndex, hub: try modelOptions.cache.makeHub(), note: printNote) : nil
        let inference = try imageOptions.inference(batchSize: batch)
        if let shard = inference.shard {
            guard let output else { throw InputError("--shard writes part files: give the folder as -o") }
            try ShardedRun(command: "predict", inputs: imageOptions, extraSettings: "scores")
                .run(loaded, inference: inference, shard: shard, folder: output) { try loaded.model.predict(input: $0) }
            return
        }
        let runner = BatchRun(command: "predict", inference: inference)
        let result = try runner.run(loaded) { try loaded.model.predict(input: $0) }
        if let output { try OutputFiles.write(result.output, files: result.files, to: output) }
        FileHandle.standardError.write(Data((runner.summary(result, output: output) + "\n").utf8))
        guard top > 0 else { return }
        let rows = result.output.shape[0]
        for (row, guesses) in Predictions.top(top, of: result.output.scalars, rows: rows, names: names).enumerated() {
            let subject = result.files.isEmpty ? "image \(row)" : result.files[row].lastPathComponent
            print("\(subject): " + guesses.map(\.text).joined(separator: ", "))
        }
    }
}
