import ArgumentParser
import Foundation
import TLEngine
import TLFormats
import TLHubClient
import TLImaging
import TLPipeline
import TLTensor

/// Which model the engine commands run: a weight file, or a hub name pulled into the cache on
/// demand, plus the architecture for a weights-only file.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "A weight file (.h5, .weights.h5, .keras, .safetensors) or a hub name such as mobilenet_v2_100_224 (see `tlhub list`).",
        valueName: "model"))
    var model: String

    @Option(name: .long, help: "Architecture for a weights-only file (e.g. mobilenetv2, resnet50, efficientnetb0); default: detected.")
    var arch: String?

    @OptionGroup var cache: CacheOptions

    /// Resolves `--model` (pulling it when it is a hub name) and loads it strictly.
    func load() async throws -> LoadedModel {
        try await ModelResolver(hub: try cache.makeHub()).load(model, architecture: arch, progress: pullProgress(for: model))
    }
}

/// One progress line on stderr per pulled file (nothing when stderr is not a terminal or in CI);
/// `tlhub pull` draws the full bar.
func pullProgress(for name: String) -> (@Sendable (PullProgress) -> Void)? {
    guard isatty(2) == 1, ProcessInfo.processInfo.environment["CI"] != "true" else { return nil }
    let reported = LockedFlag()
    return { _ in
        if reported.setOnce() { FileHandle.standardError.write(Data("pulling \(name)…\n".utf8)) }
    }
}

/// A flag that is set once across threads.
final class LockedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var isSet = false
    /// Sets the flag; true only for the first caller.
    func setOnce() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        if isSet { return false }
        isSet = true
        return true
    }
}

/// How image files (or a preprocessed `.npy`) become the model's input batches.
struct ImageInputOptions: ParsableArguments {
    @Argument(help: ArgumentHelp("Image files (JPEG/PNG) or directories of them (class subfolders are walked as flow_from_directory does).",
                                 valueName: "image-or-dir"))
    var images: [String] = []

    @Option(help: ArgumentHelp("Use this preprocessed NHWC batch (.npy) instead of images; no preprocessing is applied. float32 is used as is, float16/float64 are converted with a note, integer arrays (raw pixels) are refused.",
                               valueName: "X.npy"),
            transform: URL.init(fileURLWithPath:))
    var input: URL?

    @Option(help: "Image size HxW or S (default: the model config's, else the hub entry's, else the one in the weight file's name, else the architecture's).")
    var size: String?

    @Option(help: "Resize filter as in Keras load_img: nearest (default), bilinear, bicubic, lanczos, box, hamming.")
    var interpolation = "nearest"

    @Option(help: "Preprocessing: caffe, tf, torch, none or unit (default: what keras.applications uses for the model).")
    var preprocess: String?

    @Flag(help: "Skip images that cannot be read (they are listed on stderr; the files list shows the rows written).")
    var skipBad = false

    @Option(help: ArgumentHelp("Run one share of the inputs: K/N, or auto (Slurm job arrays: SLURM_ARRAY_TASK_ID; Kubernetes indexed Jobs: JOB_COMPLETION_INDEX with auto/N). -o is then a folder of part-K-of-N files; merge them with `tlhub features merge`.",
                               valueName: "K/N|auto"))
    var shard: String?

    @Flag(help: "With --shard: redo a shard whose part is already complete.")
    var force = false

    func validate() throws {
        guard (input == nil) != images.isEmpty else {
            throw ValidationError("give either image files/directories or --input X.npy (exactly one of them)")
        }
        _ = try Interpolation(name: interpolation)
        if let preprocess { _ = try Preprocessing(name: preprocess) }
        if let size { _ = try LoadedModel.parseSize(size) }
    }

    /// The batch run these options describe.
    func inference(batchSize: Int) throws -> BatchInference {
        var inference = BatchInference(inputs: input.map { .array($0) } ?? .images(images), batchSize: batchSize, size: size,
                                       interpolation: try Interpolation(name: interpolation), preprocess: preprocess, skipsUnreadable: skipBad)
        inference.shard = try shard.map { try Shard.parse($0) }
        return inference
    }

    /// Every setting that changes the numbers, recorded with each shard so parts of different
    /// runs are never merged.
    func shardSettings(command: String, extra: String) -> String {
        [command, extra, size ?? "-", interpolation, preprocess ?? "-", skipBad ? "skip-bad" : "strict",
         input.map { "input:" + $0.lastPathComponent } ?? "images:" + images.joined(separator: ",")].joined(separator: "|")
    }
}

/// A problem with what the user asked for, found while running (printed as one `Error:` line,
/// exit status 1, without the usage text `ValidationError` adds).
struct InputError: Error, LocalizedError, CustomStringConvertible {
    var message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
    var errorDescription: String? { message }
}
