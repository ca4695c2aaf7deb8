import Foundation
import TLEngine
import TLFormats
import TLHubClient
import TLTensor

/// Turns a model reference — a weight file of any layout, a TF SavedModel directory, or a hub
/// name pulled into the cache on demand — into a strictly loaded ``LoadedModel``.
public struct ModelResolver {
    /// Where hub names are resolved and pulled.
    public let hub: Hub

    public init(hub: Hub) { self.hub = hub }

    /// Loads `reference`.
    /// - Parameters:
    ///   - reference: a path (`.h5`, `.weights.h5`, `.keras`, `.safetensors`, a SavedModel
    ///     directory) or a hub name (`mobilenet_v2_100_224:top`, `tfhub:…`, `demo:tiny_cnn`).
    ///   - architecture: the architecture of a weights-only file (`resnet50`); detected when nil.
    ///   - progress: download progress of a pulled file.
    /// - Throws: ``PipelineError`` for a missing file or an unusable hub entry; the format, engine
    ///   or hub error otherwise (each names the file or name).
    public func load(_ reference: String, architecture: String? = nil,
                     progress: (@Sendable (PullProgress) -> Void)? = nil) async throws -> LoadedModel {
        let architecture = try architecture.map { try Architecture(name: $0) }
        let path = URL(fileURLWithPath: reference)
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path.path, isDirectory: &isDirectory) {
            if isDirectory.boolValue && FineTunedDescription.isFineTuned(path) {
                return try await loadFineTuned(path, reference: reference)
            }
            if isDirectory.boolValue {
                return LoadedModel(model: try Self.loadSavedModel(path), file: path, artifact: nil, reference: reference)
            }
            // A file that opened before, unchanged since, skips the HDF5 crash probe's fork.
            let facts = FileHashCache(directory: hub.cacheDirectory.appendingPathComponent("hashes"))
            let probed = facts.passedProbe(path)
            let model = try Model.load(from: path, architecture: architecture, probeHDF5: !probed)
            if !probed { facts.rememberProbePassed(path) }
            var loaded = LoadedModel(model: model, file: path, artifact: nil, reference: reference)
            loaded.hashCache = facts
            return loaded
        }
        if Self.looksLikePath(reference) { throw PipelineError(reference, "no such file") }
        let resolved = try hub.resolve(reference)
        switch resolved.artifact.format {
        case "keras-h5":
            let file = try await hub.pull(resolved, progress: progress)
            var loaded = LoadedModel(model: try Model.load(from: file, architecture: architecture), file: file,
                                     artifact: resolved.artifact, reference: reference)
            loaded.knownSHA256 = hub.recordedSHA256(of: file)
            return loaded
        case "tfhub-saved-model-tar-gz":
            let directory = try await hub.pullUnpacked(reference, progress: progress)
            return LoadedModel(model: try Self.loadSavedModel(directory), file: directory,
                               artifact: resolved.artifact, reference: reference)
        default:
            throw PipelineError(resolved.artifact.qualifiedName, "a \(resolved.artifact.format) artifact, not a model tlhub can run")
        }
    }

    /// Whether `reference` names a file rather than a hub entry.
    static func looksLikePath(_ reference: String) -> Bool {
        reference.contains("/") && !reference.contains("://")
            || [".h5", ".keras", ".safetensors", ".hdf5"].contains { reference.lowercased().hasSuffix($0) }
    }

    /// Loads a TF Hub MobileNetV2 SavedModel directory (TF-Slim variable names) onto the native
    /// MobileNetV2. TF Hub image models take inputs in [0, 1] (`unit` preprocessing, which the
    /// hub entry sets) and their classifier has 1001 classes, class 0 being "background".
    /// - Throws: ``PipelineError`` for a directory that is no SavedModel.
    public static func loadSavedModel(_ directory: URL) throws -> Model {
        let prefix = directory.appendingPathComponent("variables/variables")
        guard FileManager.default.fileExists(atPath: prefix.path + ".index") else {
            throw PipelineError(directory.path, "a directory, but not a TF SavedModel (no variables/variables.index)")
        }
        let slim = try TFSlimMobileNetV2(try TensorBundle(prefix: prefix))
        return try Model(weights: slim, architecture: slim.architecture)
    }
}
