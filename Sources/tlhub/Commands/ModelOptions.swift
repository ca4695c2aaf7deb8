import ArgumentParser
import Foundation
import TLEngine
import TLFormats
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

    /// The largest side `--size` accepts.
    static let maximumSide = 8192

    func validate() throws {
        guard (input == nil) != images.isEmpty else {
            throw ValidationError("give either image files/directories or --input X.npy (exactly one of them)")
        }
        _ = try Interpolation(name: interpolation)
        if let preprocess { _ = try Preprocessing(name: preprocess) }
        if let size { _ = try Self.parseSize(size) }
    }

    /// Every image file named on the command line, folders walked (symbolic links to files and
    /// folders followed, as the shell and `os.walk` on a named folder do).
    func imageFiles() throws -> [URL] {
        var files: [URL] = []
        for path in images {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw InputError("\(path): no such file or directory")
            }
            let url = URL(fileURLWithPath: path)
            guard isDirectory.boolValue else { files.append(url); continue }
            // A symbolic link to a folder is listed as the folder it points to.
            let folder = url.resolvingSymlinksInPath()
            let entries = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted(by: ImageDirectory.pythonOrder)
            let direct = entries.map { url.appendingPathComponent($0) }.filter { entry in
                var isFolder: ObjCBool = false
                return ImageDirectory.hasExtension(entry)
                    && FileManager.default.fileExists(atPath: entry.path, isDirectory: &isFolder) && !isFolder.boolValue
            }
            let hasClassFolders = entries.contains { name in
                var isFolder: ObjCBool = false
                return FileManager.default.fileExists(atPath: folder.appendingPathComponent(name).path, isDirectory: &isFolder)
                    && isFolder.boolValue
            }
            files += direct
            if hasClassFolders { files += try ImageDirectory(root: folder).files }
        }
        guard !files.isEmpty else { throw InputError("no JPEG/PNG images found in \(images.joined(separator: ", "))") }
        return files
    }

    /// The image size and where it came from (said in the run's summary).
    func imageSize(for loaded: ModelOptions.Loaded) throws -> (size: ImageSize, source: String) {
        try Self.imageSize(requested: size, for: loaded)
    }

    /// The image size for `loaded` (`requested` is a `--size` value) and where it came from.
    static func imageSize(requested size: String?, for loaded: ModelOptions.Loaded) throws -> (size: ImageSize, source: String) {
        let chosen: (size: ImageSize, source: String)
        let shape = loaded.model.inputShape
        let fixed = shape.count == 3 && shape[0] > 0 && shape[1] > 0 ? ImageSize(height: shape[0], width: shape[1]) : nil
        if let size {
            chosen = (try parseSize(size), "--size")
        } else if loaded.model.architecture == nil, let fixed {
            chosen = (fixed, "the model config")
        } else if let forced = loaded.model.options?.inputShape, forced.count == 3, forced[0] > 0, forced[1] > 0 {
            chosen = (ImageSize(height: forced[0], width: forced[1]), "the weights")
        } else if case .number(let side)? = loaded.artifact?.options["input_size"], side >= 1, side <= Double(maximumSide) {
            chosen = (ImageSize(height: Int(side), width: Int(side)), "the hub entry")
        } else if let side = publishedSize(fileName: loaded.file.lastPathComponent)
                    ?? publishedSize(fileName: loaded.file.resolvingSymlinksInPath().lastPathComponent) {
            chosen = (ImageSize(height: side, width: side), "the file name")
        } else if let fixed {
            chosen = (fixed, "the architecture")
        } else {
            chosen = (ImageSize(height: 224, width: 224), "default")
        }
        if let architecture = loaded.model.architecture {
            let minimum = architecture.minimumInputSize
            guard chosen.size.height >= minimum, chosen.size.width >= minimum else {
                throw InputError("image size \(chosen.size.height)x\(chosen.size.width) is below \(architecture)'s minimum of \(minimum)x\(minimum)")
            }
        }
        return chosen
    }

    /// The input side keras.applications file names carry (`…_0.35_96_no_top.h5`,
    /// `mobilenet_1_0_224_tf.h5`, `…_small_224_1.0_float.h5`): the one published size among the
    /// name's `_`-separated numbers, or nil.
    static func publishedSize(fileName: String) -> Int? {
        let published: Set<Int> = [96, 128, 160, 192, 224, 240, 256, 260, 299, 300, 331, 380, 384, 456, 480, 512, 528, 600]
        var stem = fileName
        for suffix in [".weights.h5", ".h5", ".hdf5", ".keras", ".safetensors"] where stem.lowercased().hasSuffix(suffix) {
            stem.removeLast(suffix.count)
            break
        }
        let numbers = Set(stem.split(whereSeparator: { $0 == "_" || $0 == "-" }).compactMap { Int($0) }.filter(published.contains))
        return numbers.count == 1 ? numbers.first : nil
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

    /// `S` or `HxW`, each side in 1…8192; anything else (`96x`, `x96`, `0`) is refused.
    static func parseSize(_ text: String) throws -> ImageSize {
        let parts = text.lowercased().split(separator: "x", omittingEmptySubsequences: false)
        let sides = parts.compactMap { Int($0) }
        guard parts.count <= 2, sides.count == parts.count, sides.allSatisfy({ $0 > 0 }) else {
            throw InputError("--size must be S or HxW with positive integers, got '\(text)'")
        }
        guard sides.allSatisfy({ $0 <= maximumSide }) else {
            throw InputError("--size \(text) is larger than the maximum side of \(maximumSide)")
        }
        return ImageSize(height: sides[0], width: sides.last ?? sides[0])
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
