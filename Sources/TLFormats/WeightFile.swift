import Foundation
import TLTensor

/// The on-disk layouts tlhub reads.
public enum WeightFileFormat: String, Sendable, Codable {
    /// Legacy Keras `.h5` written by `save_weights` (root `layer_names`, one group per layer).
    case kerasH5Weights = "keras-h5-weights"
    /// Legacy Keras `.h5` written by `model.save` (`model_config` plus a `model_weights` group).
    case kerasH5Model = "keras-h5-model"
    /// Keras 3 `.weights.h5` (`layers/<snake_case_class>/vars/<index>`).
    case keras3Weights = "keras3-weights-h5"
    /// Keras 3 `.keras` zip archive (`config.json`, `metadata.json`, `model.weights.h5`).
    case kerasArchive = "keras-archive"
    /// `.safetensors` (tlhub's converted files carry Keras metadata).
    case safetensors

    /// A short human description.
    public var summary: String {
        switch self {
        case .kerasH5Weights: "Keras HDF5 weights (save_weights, legacy layout)"
        case .kerasH5Model: "Keras HDF5 full model (model_config + model_weights)"
        case .keras3Weights: "Keras 3 .weights.h5"
        case .kerasArchive: "Keras 3 .keras archive"
        case .safetensors: "safetensors"
        }
    }
}

/// One weight of a layer: its short Keras name, shape and how it is stored.
public struct WeightInfo: Sendable, Equatable {
    /// The short Keras name (`kernel`, `moving_mean`), without layer prefix or `:0`.
    public var name: String
    /// The Keras-layout shape.
    public var shape: [Int]
    /// The stored element type (`float32`, `float16`, `float64`, `bfloat16`, `integer`).
    public var dtype: String
    /// Where the values are: an HDF5 dataset path relative to the weights root, or a
    /// safetensors tensor name.
    var locator: String

    /// The number of values.
    public var elementCount: Int { shape.reduce(1, *) }
}

/// One Keras layer in file order.
public struct LayerInfo: Sendable, Equatable {
    /// The Keras layer name (for a layer of a nested model, its own inner name).
    public var name: String
    /// The Keras class name when the file says it (model config or Keras 3 path), else nil.
    public var className: String?
    /// The nested model this layer belongs to, if any (nil for top-level layers).
    public var parentModel: String?
    /// The layer's weights, in Keras order (empty for layers without weights).
    public var weights: [WeightInfo]
}

/// A Keras weight file of any supported layout, read as one tree: layers in file order, each
/// with named weights whose values are read lazily.
///
/// Nested models are flattened: a functional backbone's layers appear under their own names
/// (`block_1_expand`), with ``LayerInfo/parentModel`` and ``nestedModels`` recording the nesting.
/// Conforms to ``WeightSource`` so the engine can load any of these files. It is immutable after
/// opening and every HDF5 call is serialised by the library lock, so it may be shared between
/// tasks.
public final class WeightFile: WeightSource, @unchecked Sendable {
    /// The file that was opened.
    public let url: URL
    /// The detected layout.
    public let format: WeightFileFormat
    /// The Keras version that wrote the file, when recorded.
    public let kerasVersion: String?
    /// The Keras backend recorded in the file (`tensorflow`), when present.
    public let backend: String?
    /// The Keras model config (JSON text), when the file carries one.
    public let modelConfig: String?
    /// Every layer the file lists, in file order, including layers without weights.
    public let layers: [LayerInfo]
    /// Nested models by name → their layers' names, in order.
    public let nestedModels: [String: [String]]
    /// Extra string metadata (safetensors `__metadata__`).
    public let metadata: [String: String]

    private let storage: Storage
    private let index: [String: Int]

    enum Storage {
        case hdf5(root: HDF5Group)
        case safetensors(SafeTensorsFile)
    }

    init(url: URL, format: WeightFileFormat, kerasVersion: String?, backend: String?, modelConfig: String?,
         layers: [LayerInfo], nestedModels: [String: [String]], metadata: [String: String] = [:], storage: Storage) throws {
        self.url = url
        self.format = format
        self.kerasVersion = kerasVersion
        self.backend = backend
        self.modelConfig = modelConfig
        self.layers = layers
        self.nestedModels = nestedModels
        self.metadata = metadata
        self.storage = storage
        var index: [String: Int] = [:]
        for (position, layer) in layers.enumerated() where !layer.weights.isEmpty {
            guard index.updateValue(position, forKey: layer.name) == nil else {
                throw FormatError(path: url.path, problem: "layer '\(layer.name)' appears twice")
            }
        }
        self.index = index
    }

    // MARK: - Opening

    /// Opens any supported weight file, recognising the layout by content (HDF5 signature, zip
    /// signature, safetensors header), not by extension.
    /// - Parameter probeHDF5: read HDF5 structure in a forked child first (see `HDF5File.open`);
    ///   false only for a file known to have passed.
    /// - Throws: ``HDF5Error``, ``FormatError`` or ``TensorFileError`` naming the file and the problem.
    public static func open(_ url: URL, probeHDF5: Bool = true) throws -> WeightFile {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw FormatError(path: url.path, problem: "no such file")
        }
        guard !isDirectory.boolValue else { throw FormatError(path: url.path, problem: "is a directory, not a weight file") }
        let prefix: Data
        do {
            let handle = try FileHandle(forReadingFrom: url)
            defer { try? handle.close() }
            prefix = try handle.read(upToCount: 16) ?? Data()
        } catch {
            throw FormatError(path: url.path, problem: "cannot read: \(Self.reason(error))")
        }
        let bytes = Array(prefix)
        if bytes.starts(with: HDF5File.signature) {
            return try KerasH5Reader.open(try HDF5File.open(url, probe: probeHDF5), url: url)
        }
        if bytes.starts(with: [0x50, 0x4B, 0x03, 0x04]) {
            return try KerasArchiveReader.open(url, probe: probeHDF5)
        }
        if bytes.count >= 9, bytes[8] == UInt8(ascii: "{") {
            return try Self.openSafeTensors(url)
        }
        if bytes.isEmpty { throw FormatError(path: url.path, problem: "file is empty") }
        throw FormatError(path: url.path, problem: "unrecognised format: not HDF5, a .keras zip or safetensors")
    }

    private static func reason(_ error: Error) -> String {
        ((error as NSError).userInfo[NSUnderlyingErrorKey] as? NSError)?.localizedDescription ?? error.localizedDescription
    }

    private static func openSafeTensors(_ url: URL) throws -> WeightFile {
        let file = try SafeTensorsFile(contentsOf: url)
        let config = file.metadata["model_config"]
        let parsed = try config.map { try KerasModelConfig(json: $0, path: url.path) }
        let classes = parsed?.layersByName ?? [:]
        var nested: [String: [String]] = parsed?.nestedModels ?? [:]
        if let text = file.metadata["nested_models"],
           let decoded = try? JSONDecoder().decode([String: [String]].self, from: Data(text.utf8)) {
            nested = decoded
        }
        var parentOf: [String: String] = [:]
        for (model, inner) in nested { for name in inner { parentOf[name] = model } }
        // Each layer's weights in data order, grouped in one pass (a filter over every tensor per
        // layer split 40,000 names for MobileNetV2: 10 % of a one-image `tlhub features`).
        var weightsByLayer: [String: [WeightInfo]] = [:]
        for entry in file.entries {
            let (layer, weight) = SafeTensorsFile.split(entry.name)
            weightsByLayer[layer, default: []].append(WeightInfo(name: weight, shape: entry.shape, dtype: entry.dtype, locator: entry.name))
        }
        let layers = file.layerNames.map { name in
            LayerInfo(name: name, className: classes[name]?.className, parentModel: parentOf[name],
                      weights: weightsByLayer[name] ?? [])
        }
        return try WeightFile(url: url, format: .safetensors, kerasVersion: file.metadata["keras_version"],
                              backend: file.metadata["backend"], modelConfig: config, layers: layers,
                              nestedModels: nested, metadata: file.metadata, storage: .safetensors(file))
    }

    // MARK: - Reading

    /// The weights-holding layers' total parameter count.
    public var parameterCount: Int { layers.reduce(0) { $0 + $1.weights.reduce(0) { $0 + $1.elementCount } } }

    /// Every weight in file order as (layer, weight).
    public var allWeights: [(layer: LayerInfo, weight: WeightInfo)] {
        layers.flatMap { layer in layer.weights.map { (layer, $0) } }
    }

    /// The layer called `name` (the first, for a name listed twice without weights).
    public func layer(named name: String) -> LayerInfo? {
        if let position = index[name] { return layers[position] }
        return layers.first { $0.name == name }
    }

    /// Reads one weight's values as float32 into `buffer` (of exactly the weight's element count).
    /// - Throws: ``HDF5Error`` or ``FormatError`` naming file, layer and weight.
    public func read(_ weight: WeightInfo, into buffer: UnsafeMutableBufferPointer<Float>) throws {
        switch storage {
        case .hdf5(let root):
            try root.dataset(weight.locator).read(into: buffer)
        case .safetensors(let file):
            guard let entry = file.entry(named: weight.locator) else {
                throw FormatError(path: url.path, problem: "no tensor named '\(weight.locator)'")
            }
            file.read(entry, into: buffer)
        }
    }

    /// Streams one weight's float32 values in row-major order, in pieces of whole rows along the
    /// first dimension of at most about `limit` values (more only when one row is larger), so
    /// memory stays bounded however large the tensor.
    /// - Throws: ``HDF5Error`` or ``FormatError`` naming file, layer and weight.
    public func stream(_ weight: WeightInfo, limit: Int = 1 << 22, _ body: (UnsafeBufferPointer<Float>) throws -> Void) throws {
        switch storage {
        case .hdf5(let root):
            try root.dataset(weight.locator).stream(limit: limit, body)
        case .safetensors(let file):
            let tensor = try file.tensor(named: weight.locator)
            // Whole rows along the first dimension, like the HDF5 path, so writers can use them.
            let rowSize = weight.shape.isEmpty || weight.shape[0] == 0 ? max(1, weight.elementCount) : weight.elementCount / weight.shape[0]
            let piece = max(1, limit / max(1, rowSize)) * rowSize
            try tensor.scalars.withUnsafeBufferPointer { all in
                var start = 0
                repeat {
                    let end = min(all.count, start + piece)
                    try body(UnsafeBufferPointer(rebasing: all[start..<end]))
                    start = end
                } while start < all.count
            }
        }
    }

    // MARK: - WeightSource

    public var layerNames: [String] { layers.filter { !$0.weights.isEmpty }.map(\.name) }

    public func weightNames(layer: String) -> [String] {
        self.layer(named: layer)?.weights.map(\.name) ?? []
    }

    public func shape(layer: String, weight: String) -> [Int]? {
        self.layer(named: layer)?.weights.first { $0.name == weight }?.shape
    }

    public func tensor(layer: String, weight: String) throws -> Tensor {
        guard let info = self.layer(named: layer) else {
            throw FormatError(path: url.path, problem: "no layer named '\(layer)'")
        }
        guard let entry = info.weights.first(where: { $0.name == weight }) else {
            throw FormatError(path: url.path, problem: "layer '\(layer)' has no weight '\(weight)' (it has \(info.weights.map(\.name)))")
        }
        let scalars = try [Float](unsafeUninitializedCapacity: entry.elementCount) { buffer, initialized in
            try read(entry, into: buffer)
            initialized = buffer.count
        }
        return Tensor(shape: entry.shape, scalars: scalars)
    }
}
