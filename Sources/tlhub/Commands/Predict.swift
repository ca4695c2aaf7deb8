import ArgumentParser
import Foundation
import TLEngine
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
        let classCount = loaded.model.graph.shapes[loaded.model.graph.outputs[0]].reduce(1, *)
        let names = top > 0 ? try await classNames(classCount: classCount, loaded: loaded) : nil
        let runner = BatchRun(command: "predict", inputs: imageOptions, batchSize: batch)
        let result = try runner.run(loaded) { try loaded.model.predict(input: $0) }
        let scores = result.output
        if let output { try writeOutputs(scores, files: result.files, to: output) }
        FileHandle.standardError.write(Data((runner.summary(result, output: output) + "\n").utf8))
        guard top > 0 else { return }
        let rows = scores.shape[0], width = scores.count / max(rows, 1)
        for row in 0..<rows {
            let values = scores.scalars[(row * width)..<((row + 1) * width)]
            let best = values.indices.sorted { values[$0] > values[$1] }.prefix(top)
            let text = best.map { index -> String in
                let id = index - row * width
                let label = names.flatMap { id < $0.count ? "\($0[id]) (\(id))" : nil } ?? "\(id)"
                return "\(label) \(String(format: "%.4f", values[index]))"
            }.joined(separator: ", ")
            let subject = result.files.isEmpty ? "image \(row)" : result.files[row].lastPathComponent
            print("\(subject): \(text)")
        }
    }

    /// Class names for `classCount` outputs, or nil (ids are printed) when none can be had.
    /// An explicit `--class-index` that is missing, malformed or names another number of
    /// classes is an error; a default one (hub entry, ImageNet) that cannot be had is a note.
    func classNames(classCount: Int, loaded: ModelOptions.Loaded) async throws -> [String]? {
        if let classIndex {
            var file = URL(fileURLWithPath: classIndex)
            if !FileManager.default.fileExists(atPath: file.path) {
                let looksLikePath = classIndex.contains("/") || classIndex.lowercased().hasSuffix(".json")
                guard !looksLikePath else { throw InputError("--class-index \(classIndex): no such file") }
                file = try await modelOptions.cache.makeHub().pull(classIndex)
            }
            return try ClassIndex.names(contentsOf: file, classCount: classCount)
        }
        var reference: String?
        if case .string(let name)? = loaded.artifact?.options["class_index"] { reference = name }
        if reference == nil, classCount == 1000 { reference = "imagenet_class_index" }
        guard let reference else { return nil }
        do {
            let file = try await modelOptions.cache.makeHub().pull(reference)
            return try ClassIndex.names(contentsOf: file, classCount: classCount)
        } catch {
            let message = "note: printing class ids: class index \(reference) unavailable (\(error.localizedDescription))\n"
            FileHandle.standardError.write(Data(message.utf8))
            return nil
        }
    }
}

/// Keras's class-index JSON (`imagenet_class_index.json`: `{"0": ["n01440764", "tench"], …}`).
enum ClassIndex {
    /// The human-readable name of each class id, in id order.
    /// - Throws: `InputError` naming the file when it is not such a JSON or does not cover `classCount` ids.
    static func names(contentsOf url: URL, classCount: Int) throws -> [String] {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw InputError("\(url.path): cannot read the class index (\(error.localizedDescription))")
        }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: [String]] else {
            throw InputError("\(url.path): not a Keras class-index JSON ({\"0\": [\"id\", \"name\"], …})")
        }
        guard object.count == classCount else {
            throw InputError("\(url.path): class index names \(object.count) classes but the model has \(classCount) outputs")
        }
        var names = [String](repeating: "", count: classCount)
        for (key, value) in object {
            guard let id = Int(key), id >= 0, id < classCount, let name = value.last else {
                throw InputError("\(url.path): class index key '\(key)' is not a class id 0…\(classCount - 1) with a name")
            }
            names[id] = name
        }
        guard !names.contains("") else {
            throw InputError("\(url.path): class index does not name all \(classCount) classes")
        }
        return names
    }
}
