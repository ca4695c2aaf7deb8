import Foundation
import TLEngine
import TLFormats
import TLTensor
import TLTraining

/// What `tlhub finetune -o DIR` writes to `DIR/model.json`: the base (reference and the SHA-256
/// of its weights, checked when the model is loaded again), the head, the classes and the input
/// pipeline. The head's weights are in `DIR/head.safetensors`.
public struct FineTunedDescription: Codable, Sendable, Equatable {
    public var format = "tlhub-finetuned"
    public var version = 1
    /// The base model as given to `finetune` (a path or a hub name).
    public var baseReference: String
    /// The base's weight file (or SavedModel directory) when the run happened.
    public var baseFile: String
    /// SHA-256 of the base weights.
    public var baseSHA256: String
    /// `avg`/`max` when the head reads the base's output pooled, `none` when it reads it as is.
    public var basePooling: String
    /// The head, as `--head` writes it (`gap,dense2-softmax`).
    public var head: String
    /// Per-sample shape the head takes.
    public var headInputShape: [Int]
    /// Class names in index order (the training folder's subfolders).
    public var classes: [String]
    public var preprocess: String
    public var inputSize: [Int]
    public var interpolation: String
    /// Base layers trained with the head (`--unfreeze`, `--trainable-from`), whose weights are in
    /// ``trainedBaseFile``; nil when the base stayed frozen.
    public var trainedBaseLayers: [String]?
    /// A whole trained model inside the folder (`tlhub train`: `model.h5`), loaded as is instead
    /// of base + head.
    public var modelFile: String?

    /// The trained base layers' weights, inside the folder.
    public static let trainedBaseFile = "base.safetensors"

    enum CodingKeys: String, CodingKey {
        case format, version, head, classes, preprocess, interpolation
        case baseReference = "base_reference", baseFile = "base_file", baseSHA256 = "base_sha256"
        case basePooling = "base_pooling", headInputShape = "head_input_shape", inputSize = "input_size"
        case trainedBaseLayers = "trained_base_layers", modelFile = "model_file"
    }

    public init(baseReference: String, baseFile: String, baseSHA256: String, basePooling: String, head: String,
                headInputShape: [Int], classes: [String], preprocess: String, inputSize: [Int], interpolation: String) {
        self.baseReference = baseReference
        self.baseFile = baseFile
        self.baseSHA256 = baseSHA256
        self.basePooling = basePooling
        self.head = head
        self.headInputShape = headInputShape
        self.classes = classes
        self.preprocess = preprocess
        self.inputSize = inputSize
        self.interpolation = interpolation
    }

    /// Whether `directory` holds a fine-tuned model.
    public static func isFineTuned(_ directory: URL) -> Bool {
        FileManager.default.fileExists(atPath: directory.appendingPathComponent("model.json").path)
    }

    /// Reads `directory/model.json`.
    /// - Throws: ``PipelineError`` naming the file.
    public static func read(_ directory: URL) throws -> FineTunedDescription {
        let url = directory.appendingPathComponent("model.json")
        do {
            let description = try JSONDecoder().decode(FineTunedDescription.self, from: Data(contentsOf: url))
            guard description.format == "tlhub-finetuned" else { throw PipelineError(url.path, "not a tlhub fine-tuned model") }
            return description
        } catch let error as PipelineError {
            throw error
        } catch {
            throw PipelineError(url.path, "not a readable tlhub model description (\(error.localizedDescription))")
        }
    }
}

extension ModelResolver {
    /// Loads a `finetune` output folder: the base (its hash checked), then the head appended to
    /// it, as one model whose `predict` gives class scores and whose class names are the folder's.
    func loadFineTuned(_ directory: URL, reference: String) async throws -> LoadedModel {
        let description = try FineTunedDescription.read(directory)
        if let modelFile = description.modelFile {
            let file = directory.appendingPathComponent(modelFile)
            var loaded = LoadedModel(model: try Model.load(from: file), file: file, artifact: nil, reference: reference)
            loaded.fineTuned = description
            return loaded
        }
        // A base given as a relative path is found by the absolute path recorded beside it, so the
        // folder works from any directory.
        var baseReference = description.baseReference
        if Self.looksLikePath(baseReference), !FileManager.default.fileExists(atPath: baseReference),
           FileManager.default.fileExists(atPath: description.baseFile) {
            baseReference = description.baseFile
        }
        let base = try await load(baseReference)
        let hash = try base.weightsSHA256()
        guard hash == description.baseSHA256 else {
            throw PipelineError(base.file.path, "base weights changed since \(directory.path) was trained (SHA-256 \(hash.prefix(12))…, expected \(description.baseSHA256.prefix(12))…)")
        }
        let head = try Head(parsing: description.head).build(inputShape: description.headInputShape, seed: 0)
        try head.loadWeights(from: try WeightFiles.open(directory.appendingPathComponent("head.safetensors")))
        let pooling = FeaturePooling(rawValue: description.basePooling) ?? .none
        let baseGraph = try base.model.graph(forImageSize: description.inputSize)
        if let trained = description.trainedBaseLayers {
            try Self.applyTrainedBase(directory.appendingPathComponent(FineTunedDescription.trainedBaseFile), layers: trained, to: baseGraph)
        }
        let combined = try baseGraph.appending(head, pooling: pooling, name: "finetuned")
        let model = Model(graph: combined)
        var loaded = LoadedModel(model: model, file: base.file, artifact: base.artifact, reference: reference)
        loaded.fineTuned = description
        return loaded
    }

    /// Installs the trained base layers' weights over the pulled base; every listed layer must be
    /// in the file with weights of the base's shapes.
    static func applyTrainedBase(_ file: URL, layers: [String], to graph: Graph) throws {
        let weights = try SafeTensorsFile(contentsOf: file)
        for (layer, _) in graph.uniqueLayers where layers.contains(layer.name) {
            var current = layer.weights
            guard !current.isEmpty else { continue }
            for (name, value) in current {
                let tensor = try weights.tensor(named: "\(layer.name)/\(name)")
                guard tensor.shape == value.shape else {
                    throw PipelineError(file.path, "\(layer.name)/\(name) has shape \(tensor.shape), the base \(value.shape)")
                }
                current[name] = tensor
            }
            layer.setWeights(current)
        }
    }

    /// SHA-256 of a weight file, or of a SavedModel's variables data.
    public static func sha256(of url: URL) throws -> String {
        var isDirectory: ObjCBool = false
        _ = FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory)
        if isDirectory.boolValue {
            return try SafeTensorsConversion.sha256(of: url.appendingPathComponent("variables/variables.data-00000-of-00001"))
        }
        return try SafeTensorsConversion.sha256(of: url)
    }
}
