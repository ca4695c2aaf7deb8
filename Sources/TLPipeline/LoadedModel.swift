import Foundation
import TLEngine
import TLFormats
import TLHubClient
import TLImaging
import TLTensor

/// A model ready to run, with what its file or hub entry says about its inputs and classes.
///
/// ```swift
/// let loaded = try await ModelResolver(hub: Hub()).load("mobilenet_v2_100_224:top")
/// let (size, _) = try loaded.imageSize()
/// let batch = try ImageLoader(size: size).batch(files: [jpeg], preprocessing: try loaded.preprocessing())
/// let top5 = Predictions.top(5, of: try loaded.model.predict(input: batch), names: try await loaded.classNames(hub: hub))
/// ```
public struct LoadedModel {
    /// The loaded network.
    public var model: Model
    /// The weight file (or SavedModel directory) it came from.
    public var file: URL
    /// The hub entry when the reference was a hub name.
    public var artifact: Artifact?
    /// The reference as given (a path or a hub name).
    public var reference: String
    /// For a `finetune` output folder, its description (classes, input pipeline).
    public var fineTuned: FineTunedDescription?
    /// The weights' SHA-256 when already known (a hub pull checks it against the file).
    public var knownSHA256: String?

    /// Where the SHA-256 of a local weight file is remembered (the cache's `hashes/`), or nil.
    var hashCache: FileHashCache?

    /// SHA-256 of the weights (of a SavedModel's variables data), hashed only when not known.
    public func weightsSHA256() throws -> String {
        if let knownSHA256 { return knownSHA256 }
        if let hashCache { return try hashCache.sha256(of: file, compute: ModelResolver.sha256(of:)) }
        return try ModelResolver.sha256(of: file)
    }

    public init(model: Model, file: URL, artifact: Artifact?, reference: String) {
        self.model = model
        self.file = file
        self.artifact = artifact
        self.reference = reference
    }

    /// The largest image side accepted.
    public static let maximumSide = 8192

    /// The image size to feed the model and where it came from (for the user to see): `requested`
    /// (`S` or `HxW`), else the model config's input shape, else the size the weights fix, else
    /// the hub entry's `input_size`, else the size in a keras.applications file name, else the
    /// architecture's, else 224.
    /// - Throws: ``PipelineError`` for a malformed size or one below the architecture's minimum.
    public func imageSize(requested: String? = nil) throws -> (size: ImageSize, source: String) {
        let chosen: (size: ImageSize, source: String)
        let shape = model.inputShape
        let fixed = shape.count == 3 && shape[0] > 0 && shape[1] > 0 ? ImageSize(height: shape[0], width: shape[1]) : nil
        if let requested {
            chosen = (try Self.parseSize(requested), "--size")
        } else if let fineTuned, fineTuned.inputSize.count == 2 {
            chosen = (ImageSize(height: fineTuned.inputSize[0], width: fineTuned.inputSize[1]), "the fine-tuned model")
        } else if model.architecture == nil, let fixed {
            chosen = (fixed, "the model config")
        } else if let forced = model.options?.inputShape, forced.count == 3, forced[0] > 0, forced[1] > 0 {
            chosen = (ImageSize(height: forced[0], width: forced[1]), "the weights")
        } else if case .number(let side)? = artifact?.options["input_size"], side >= 1, side <= Double(Self.maximumSide) {
            chosen = (ImageSize(height: Int(side), width: Int(side)), "the hub entry")
        } else if let side = Self.publishedSize(fileName: file.lastPathComponent)
                    ?? Self.publishedSize(fileName: file.resolvingSymlinksInPath().lastPathComponent) {
            chosen = (ImageSize(height: side, width: side), "the file name")
        } else if let fixed {
            chosen = (fixed, "the architecture")
        } else {
            chosen = (ImageSize(height: 224, width: 224), "default")
        }
        if let architecture = model.architecture {
            let minimum = architecture.minimumInputSize
            guard chosen.size.height >= minimum, chosen.size.width >= minimum else {
                throw PipelineError("image size \(chosen.size.height)x\(chosen.size.width) is below \(architecture)'s minimum of \(minimum)x\(minimum)")
            }
        }
        return chosen
    }

    /// `S` or `HxW`, each side in 1…8192; anything else (`96x`, `x96`, `0`) is refused.
    /// - Throws: ``PipelineError``.
    public static func parseSize(_ text: String) throws -> ImageSize {
        let parts = text.lowercased().split(separator: "x", omittingEmptySubsequences: false)
        let sides = parts.compactMap { Int($0) }
        guard parts.count <= 2, sides.count == parts.count, sides.allSatisfy({ $0 > 0 }) else {
            throw PipelineError("--size must be S or HxW with positive integers, got '\(text)'")
        }
        guard sides.allSatisfy({ $0 <= maximumSide }) else {
            throw PipelineError("--size \(text) is larger than the maximum side of \(maximumSide)")
        }
        return ImageSize(height: sides[0], width: sides.last ?? sides[0])
    }

    /// The input side keras.applications file names carry (`…_0.35_96_no_top.h5`,
    /// `mobilenet_1_0_224_tf.h5`, `…_small_224_1.0_float.h5`): the one published size among the
    /// name's `_`-separated numbers, or nil.
    public static func publishedSize(fileName: String) -> Int? {
        let published: Set<Int> = [96, 128, 160, 192, 224, 240, 256, 260, 299, 300, 331, 380, 384, 456, 480, 512, 528, 600]
        var stem = fileName
        for suffix in [".weights.h5", ".h5", ".hdf5", ".keras", ".safetensors"] where stem.lowercased().hasSuffix(suffix) {
            stem.removeLast(suffix.count)
            break
        }
        let numbers = Set(stem.split(whereSeparator: { $0 == "_" || $0 == "-" }).compactMap { Int($0) }.filter(published.contains))
        return numbers.count == 1 ? numbers.first : nil
    }

    /// How images are preprocessed for the model: `requested` (`caffe`, `tf`, `torch`, `none`,
    /// `unit`), else the hub entry's, else what keras.applications uses for the architecture.
    /// - Throws: ``PipelineError`` when the model is not a known family and nothing was requested.
    public func preprocessing(requested: String? = nil) throws -> Preprocessing {
        if let requested { return try Preprocessing(name: requested) }
        if let fineTuned { return try Preprocessing(name: fineTuned.preprocess) }
        if case .string(let mode)? = artifact?.options["preprocess"] { return try Preprocessing(name: mode) }
        let name = model.architecture?.description ?? model.name
        guard let mode = Preprocessing(kerasApplication: name) else {
            throw PipelineError(reference, "cannot tell how model '\(name)' preprocesses images: pass --preprocess caffe|tf|torch|none|unit")
        }
        return mode
    }

    /// The number of scores `predict` returns per image.
    public var classCount: Int { model.graph.shapes[model.graph.outputs[0]].reduce(1, *) }

    /// Class names, in id order: from `classIndex` (a file or a hub name) when given — then a
    /// missing, malformed or wrong-sized index is an error — else from the hub entry's
    /// `class_index`, else, for 1000 classes, ImageNet's; nil when none can be had
    /// (`note` hears why a default one could not).
    /// - Throws: ``PipelineError`` for an explicit class index that cannot be used.
    public func classNames(classIndex: String? = nil, hub: Hub, note: ((String) -> Void)? = nil) async throws -> [String]? {
        if classIndex == nil, let fineTuned { return fineTuned.classes }
        if let classIndex {
            var file = URL(fileURLWithPath: classIndex)
            if !FileManager.default.fileExists(atPath: file.path) {
                let looksLikePath = classIndex.contains("/") || classIndex.lowercased().hasSuffix(".json")
                guard !looksLikePath else { throw PipelineError(classIndex, "no such class index file") }
                file = try await hub.pull(classIndex)
            }
            return try ClassIndex.names(contentsOf: file, classCount: classCount)
        }
        var reference: String?
        if case .string(let name)? = artifact?.options["class_index"] { reference = name }
        if reference == nil, classCount == 1000 { reference = "imagenet_class_index" }
        guard let reference else { return nil }
        do {
            let file = try await hub.pull(reference)
            return try ClassIndex.names(contentsOf: file, classCount: classCount)
        } catch {
            note?("printing class ids: class index \(reference) unavailable (\(error.localizedDescription))")
            return nil
        }
    }
}
