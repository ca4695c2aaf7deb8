import ArgumentParser
import Foundation
import TLEngine
import TLHubClient
import TLImaging
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

    /// A loaded model and what its hub entry (if any) says about its inputs.
    struct Loaded {
        var model: Model
        /// The file the weights came from.
        var file: URL
        /// The manifest entry when `--model` was a hub name.
        var artifact: Artifact?
    }

    /// Resolves `--model` (pulling it when it is a hub name) and loads it strictly.
    func load() async throws -> Loaded {
        let architecture = try arch.map { try Architecture(name: $0) }
        let path = URL(fileURLWithPath: model)
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path.path, isDirectory: &isDirectory) {
            if isDirectory.boolValue {
                return Loaded(model: try Self.loadSavedModel(path), file: path, artifact: nil)
            }
            return Loaded(model: try Model.load(from: path, architecture: architecture), file: path, artifact: nil)
        }
        let looksLikePath = model.contains("/") && !model.contains("://")
            || [".h5", ".keras", ".safetensors", ".hdf5"].contains { model.lowercased().hasSuffix($0) }
        if looksLikePath { throw InputError("\(model): no such file") }
        let hub = try cache.makeHub()
        let resolved = try hub.resolve(model)
        switch resolved.artifact.format {
        case "keras-h5":
            let file = try await hub.pull(resolved, progress: pullProgress(for: resolved.artifact.qualifiedName))
            return Loaded(model: try Model.load(from: file, architecture: architecture), file: file,
                          artifact: resolved.artifact)
        case "tfhub-saved-model-tar-gz":
            let directory = try await hub.pullUnpacked(model, progress: pullProgress(for: resolved.artifact.qualifiedName))
            return Loaded(model: try Self.loadSavedModel(directory), file: directory, artifact: resolved.artifact)
        default:
            throw InputError("\(resolved.artifact.qualifiedName) is a \(resolved.artifact.format) artifact, not a model tlhub can run yet")
        }
    }
}

extension ModelOptions {
    /// Loads a TF Hub MobileNetV2 SavedModel directory (TF-Slim variable names) onto the native
    /// MobileNetV2. TF Hub image models take inputs in [0, 1] (`--preprocess unit`, which the hub
    /// entry sets) and their classifier has 1001 classes, class 0 being "background".
    static func loadSavedModel(_ directory: URL) throws -> Model {
        let prefix = directory.appendingPathComponent("variables/variables")
        guard FileManager.default.fileExists(atPath: prefix.path + ".index") else {
            throw InputError("\(directory.path): a directory, but not a TF SavedModel (no variables/variables.index)")
        }
        let slim = try TFSlimMobileNetV2(try TensorBundle(prefix: prefix))
        return try Model(weights: slim, architecture: slim.architecture)
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

/// How image files become the model's input batch.
struct ImageInputOptions: ParsableArguments {
    @Argument(help: ArgumentHelp("Image files (JPEG/PNG) or directories of them (class subfolders are walked as flow_from_directory does).",
                                 valueName: "image-or-dir"))
    var images: [String] = []

    @Option(help: "Use this preprocessed float32 NHWC batch (.npy) instead of images; no preprocessing is applied.",
            transform: URL.init(fileURLWithPath:))
    var input: URL?

    @Option(help: "Image size HxW or S (default: the model's input size, else its hub entry's, else 224).")
    var size: String?

    @Option(help: "Resize filter as in Keras load_img: nearest (default), bilinear, bicubic, lanczos, box, hamming.")
    var interpolation = "nearest"

    @Option(help: "Preprocessing: caffe, tf, torch, none or unit (default: what keras.applications uses for the model).")
    var preprocess: String?

    func validate() throws {
        guard (input == nil) != images.isEmpty else {
            throw ValidationError("give either image files/directories or --input X.npy (exactly one of them)")
        }
        _ = try Interpolation(name: interpolation)
        if let preprocess { _ = try Preprocessing(name: preprocess) }
        if let size { _ = try parseSize(size) }
    }

    /// The input batch and, for images, the files in row order.
    func batch(for loaded: ModelOptions.Loaded) throws -> (tensor: Tensor, files: [URL]) {
        if let input { return (try readInputBatch(input), []) }
        let files = try imageFiles()
        let loader = ImageLoader(size: try imageSize(for: loaded), interpolation: try Interpolation(name: interpolation))
        return (try loader.batch(files: files, preprocessing: try preprocessing(for: loaded)), files)
    }

    func imageFiles() throws -> [URL] {
        var files: [URL] = []
        for path in images {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw InputError("\(path): no such file or directory")
            }
            let url = URL(fileURLWithPath: path)
            guard isDirectory.boolValue else { files.append(url); continue }
            let entries = try FileManager.default.contentsOfDirectory(at: url, includingPropertiesForKeys: [.isDirectoryKey])
            let direct = entries.filter { ImageDirectory.hasExtension($0) }.sorted { $0.path < $1.path }
            let hasClassFolders = entries.contains { (try? $0.resourceValues(forKeys: [.isDirectoryKey]).isDirectory) == true }
            files += direct
            if hasClassFolders { files += try ImageDirectory(root: url).files }
        }
        guard !files.isEmpty else { throw InputError("no JPEG/PNG images found in \(images.joined(separator: ", "))") }
        return files
    }

    func imageSize(for loaded: ModelOptions.Loaded) throws -> ImageSize {
        if let size { return try parseSize(size) }
        let shape = loaded.model.inputShape
        if shape.count == 3, shape[0] > 0, shape[1] > 0 { return ImageSize(height: shape[0], width: shape[1]) }
        if case .number(let side)? = loaded.artifact?.options["input_size"] { return ImageSize(height: Int(side), width: Int(side)) }
        return ImageSize(height: 224, width: 224)
    }

    func preprocessing(for loaded: ModelOptions.Loaded) throws -> Preprocessing {
        if let preprocess { return try Preprocessing(name: preprocess) }
        if case .string(let mode)? = loaded.artifact?.options["preprocess"] { return try Preprocessing(name: mode) }
        let name = loaded.model.architecture?.description ?? loaded.model.name
        guard let mode = Preprocessing(kerasApplication: name) else {
            throw InputError("cannot tell how model '\(name)' preprocesses images: pass --preprocess caffe|tf|torch|none|unit")
        }
        return mode
    }

    private func parseSize(_ text: String) throws -> ImageSize {
        let parts = text.lowercased().split(separator: "x").compactMap { Int($0) }
        guard (parts.count == 1 || parts.count == 2), parts.allSatisfy({ $0 > 0 && $0 <= 8192 }),
              text.lowercased().split(separator: "x").count == parts.count else {
            throw InputError("--size must be S or HxW with positive integers, got '\(text)'")
        }
        return ImageSize(height: parts[0], width: parts.last ?? parts[0])
    }
}

/// Writes the input file of each output row beside `output` (`features.npy` → `features.files.txt`).
func writeRowFiles(_ files: [URL], beside output: URL) throws {
    guard !files.isEmpty else { return }
    let list = output.deletingPathExtension().appendingPathExtension("files.txt")
    let data = Data((files.map(\.path).joined(separator: "\n") + "\n").utf8)
    try AtomicFile.write(to: list) { handle, _ in try handle.write(contentsOf: data) }
}

/// A problem with what the user asked for, found while running (printed as one `Error:` line,
/// exit status 1, without the usage text `ValidationError` adds).
struct InputError: Error, LocalizedError, CustomStringConvertible {
    var message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
    var errorDescription: String? { message }
}
