import Crypto
import Foundation
import TLTensor

/// Converts any Keras weight file to one tlhub `.safetensors` file.
///
/// Tensors are little-endian float32 named `<layer>/<weight>` with Keras layouts unchanged;
/// nested models are flattened to their inner layer names. `__metadata__` holds `format`
/// (`tlhub`), `format_version` (`1`), `source_sha256`, `source_format`, `keras_version`,
/// `backend`, `layer_order` (JSON array of the layers, in file order), `nested_models` (JSON
/// object, when there are any), and `model_config` (JSON text) when the source has one or else
/// `arch` when given.
public enum SafeTensorsConversion {
    /// What a conversion did.
    public struct Report: Sendable, Equatable {
        /// The file written.
        public var output: URL
        /// The number of tensors written.
        public var tensorCount: Int
        /// The number of float32 values written.
        public var parameterCount: Int
        /// The SHA-256 of the source file (hex).
        public var sourceSHA256: String
    }

    /// The `format_version` tlhub writes.
    public static let formatVersion = "1"

    /// Converts `source` to `output` (written atomically: on any error nothing is left there).
    /// - Parameters:
    ///   - arch: the architecture name to record when the source carries no model config.
    /// - Throws: ``HDF5Error``, ``FormatError`` or ``TensorFileError`` naming the file and weight.
    @discardableResult
    public static func convert(_ source: WeightFile, to output: URL, arch: String? = nil) throws -> Report {
        if output.standardizedFileURL.path == source.url.standardizedFileURL.path {
            throw FormatError(path: output.path, problem: "output would overwrite the source file")
        }
        let digest = try sha256(of: source.url)
        let weights = source.allWeights
        var metadata: [String: String] = [
            "format": "tlhub",
            "format_version": formatVersion,
            "source_sha256": digest,
            "source_format": source.format.rawValue,
        ]
        metadata["keras_version"] = source.kerasVersion
        metadata["backend"] = source.backend
        let layerOrder = try JSONSerialization.data(withJSONObject: source.layerNames, options: [.withoutEscapingSlashes])
        metadata["layer_order"] = String(decoding: layerOrder, as: UTF8.self)
        if !source.nestedModels.isEmpty {
            let nested = try JSONSerialization.data(withJSONObject: source.nestedModels, options: [.sortedKeys, .withoutEscapingSlashes])
            metadata["nested_models"] = String(decoding: nested, as: UTF8.self)
        }
        if let config = source.modelConfig {
            metadata["model_config"] = config
        } else if let arch = arch ?? source.metadata["arch"] {
            metadata["arch"] = arch
        }
        let specs = weights.map { SafeTensorsWriter.Spec(name: "\($0.layer.name)/\($0.weight.name)", shape: $0.weight.shape) }
        // HDF5 reads straight into a bounded buffer (whole rows of at most 4 Mi values) that the
        // writer streams out, so memory stays small even for VGG16's 400 MB fc1 kernel.
        try SafeTensorsWriter.write(to: output, metadata: metadata, specs: specs) { index, sink in
            try source.stream(weights[index].weight, sink)
        }
        return Report(output: output, tensorCount: specs.count, parameterCount: source.parameterCount, sourceSHA256: digest)
    }

    /// The SHA-256 of a file as lowercase hex, read in 4 MB chunks.
    public static func sha256(of url: URL) throws -> String {
        let handle: FileHandle
        do { handle = try FileHandle(forReadingFrom: url) } catch {
            throw FormatError(path: url.path, problem: "cannot read: \(error.localizedDescription)")
        }
        defer { try? handle.close() }
        var hasher = SHA256()
        while true {
            let chunk: Data?
            do { chunk = try handle.read(upToCount: 4 << 20) } catch {
                throw FormatError(path: url.path, problem: "cannot read: \(error.localizedDescription)")
            }
            guard let chunk, !chunk.isEmpty else { break }
            hasher.update(data: chunk)
        }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }
}
