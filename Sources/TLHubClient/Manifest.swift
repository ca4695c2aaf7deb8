import Foundation

/// One manifest file: a family of published artifacts (`manifests/keras-applications.json`).
public struct Manifest: Codable, Sendable {
    /// Short family name (`keras-applications`).
    public var family: String
    /// Default source prefix of its artifacts (`keras`, `tfhub`, `asset`, …).
    public var source: String
    /// What the family holds.
    public var description: String?
    /// Licence note for the files.
    public var licence: String?
    /// The artifacts, each unique by source, name and variant.
    public var artifacts: [Artifact]
}

/// A hash as published with a file.
public struct PublishedHash: Codable, Sendable, Hashable {
    /// The hash function.
    public enum Algorithm: String, Codable, Sendable {
        /// MD5, as keras.applications publishes most hashes.
        case md5
        /// SHA-256.
        case sha256

        /// Hex digits in a digest of this algorithm.
        public var hexLength: Int { self == .md5 ? 32 : 64 }
    }

    /// The hash function.
    public var algorithm: Algorithm
    /// Lower-case hex digest.
    public var value: String

    /// A hash, with `value` lower-cased.
    public init(algorithm: Algorithm, value: String) {
        self.algorithm = algorithm
        self.value = value.lowercased()
    }
}

/// A JSON value, for the free-form `options` of an artifact.
public enum OptionValue: Codable, Sendable, Hashable, CustomStringConvertible {
    /// A string.
    case string(String)
    /// A number.
    case number(Double)
    /// A boolean.
    case bool(Bool)

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else if let value = try? container.decode(Double.self) { self = .number(value) }
        else { self = .string(try container.decode(String.self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case let .string(value): try container.encode(value)
        case let .number(value): try container.encode(value)
        case let .bool(value): try container.encode(value)
        }
    }

    public var description: String {
        switch self {
        case let .string(value): return value
        case let .number(value): return value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
        case let .bool(value): return String(value)
        }
    }
}

/// One downloadable file listed in a manifest.
public struct Artifact: Codable, Sendable, Hashable {
    /// Source prefix (`keras`, `tfhub`, `asset`, `url` for raw URLs); filled from the manifest
    /// when the entry leaves it out.
    public var source: String?
    /// Name in TF Hub style (`mobilenet_v2_100_224`: depth ×100, input resolution).
    public var name: String
    /// Variant (`notop`, `top`, `feature_vector`, `classification`), nil when there is one file.
    public var variant: String?
    /// Where the file is published: an absolute http(s)/file URL, or a path relative to the
    /// mirror root (or, without a mirror, to the manifest's directory).
    public var url: String
    /// File name in the cache (Keras's own file name for keras.applications weights).
    public var fileName: String
    /// Published hash, nil when the publisher gives none (then tlhub records a SHA-256 on first
    /// download and checks it on later use).
    public var hash: PublishedHash?
    /// Size in bytes when known.
    public var size: Int64?
    /// `keras-h5`, `tfhub-saved-model-tar-gz`, `json`, `raw`.
    public var format: String
    /// Keras application name (`MobileNetV2`), nil for assets.
    public var architecture: String?
    /// Model options: alpha, input_size, include_top, preprocess mode, …
    public var options: [String: OptionValue]
    /// Keras flavours that download this file (`keras3`, `tf_keras`).
    public var keras: [String]?

    enum CodingKeys: String, CodingKey {
        case source, name, variant, url, hash, size, format, architecture, options, keras
        case fileName = "file_name"
    }

    /// Creates an artifact.
    public init(source: String, name: String, variant: String? = nil, url: String, fileName: String,
                hash: PublishedHash? = nil, size: Int64? = nil, format: String = "raw",
                architecture: String? = nil, options: [String: OptionValue] = [:]) {
        self.source = source
        self.name = name
        self.variant = variant
        self.url = url
        self.fileName = fileName
        self.hash = hash
        self.size = size
        self.format = format
        self.architecture = architecture
        self.options = options
    }

    /// `source:name[:variant]`, the fully qualified reference.
    public var qualifiedName: String {
        ["\(source ?? "?")", name, variant].compactMap { $0 }.joined(separator: ":")
    }
}

extension Manifest {
    /// Parses and checks a manifest: artifacts get the manifest's source, hashes must be hex of
    /// the right length, URLs http(s)/file or relative, names unique.
    /// - Throws: ``HubError/invalidManifest(path:problem:)``.
    public static func parse(_ data: Data, path: String) throws -> Manifest {
        var manifest: Manifest
        do {
            manifest = try JSONDecoder().decode(Manifest.self, from: data)
        } catch {
            throw HubError.invalidManifest(path: path, problem: "not a valid manifest: \(describe(error))")
        }
        var seen = Set<String>()
        for index in manifest.artifacts.indices {
            if manifest.artifacts[index].source == nil { manifest.artifacts[index].source = manifest.source }
            let artifact = manifest.artifacts[index]
            if !seen.insert(artifact.qualifiedName).inserted {
                throw HubError.invalidManifest(path: path, problem: "\(artifact.qualifiedName) is listed twice")
            }
            if artifact.name.isEmpty || artifact.name.contains(":") || artifact.variant?.contains(":") == true {
                throw HubError.invalidManifest(path: path, problem: "bad name '\(artifact.qualifiedName)'")
            }
            if let hash = artifact.hash {
                let hex = hash.value.allSatisfy { $0.isHexDigit }
                if !hex || hash.value.count != hash.algorithm.hexLength {
                    throw HubError.invalidManifest(
                        path: path, problem: "\(artifact.qualifiedName): \(hash.algorithm.rawValue) '\(hash.value)' is not \(hash.algorithm.hexLength) hex digits")
                }
            }
            if let scheme = URLComponents(string: artifact.url)?.scheme?.lowercased() {
                if !["http", "https", "file"].contains(scheme) {
                    throw HubError.invalidManifest(path: path, problem: "\(artifact.qualifiedName): unsupported URL \(artifact.url)")
                }
            } else if URLComponents(string: artifact.url) == nil || artifact.url.hasPrefix("/") {
                throw HubError.invalidManifest(path: path, problem: "\(artifact.qualifiedName): bad URL \(artifact.url)")
            }
            if artifact.fileName.isEmpty || artifact.fileName.contains("/") || artifact.fileName.hasPrefix(".") {
                throw HubError.invalidManifest(path: path, problem: "\(artifact.qualifiedName): bad file name '\(artifact.fileName)'")
            }
        }
        return manifest
    }

    private static func describe(_ error: Error) -> String {
        switch error {
        case let DecodingError.keyNotFound(key, context):
            return "missing '\(key.stringValue)' at \(context.codingPath.map(\.stringValue).joined(separator: "."))"
        case let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context),
             let DecodingError.dataCorrupted(context):
            return "\(context.debugDescription) at \(context.codingPath.map(\.stringValue).joined(separator: "."))"
        default:
            return error.localizedDescription
        }
    }
}
