import Foundation

/// An artifact together with where its relative URL is anchored.
public struct RegistryEntry: Sendable {
    /// The manifest entry, with its source filled in.
    public var artifact: Artifact
    /// Directory of the manifest file that listed it (nil for the bundled manifests); relative
    /// URLs resolve against it when no mirror is set.
    public var manifestDirectory: URL?
}

/// Every artifact tlhub knows: the bundled manifests plus private registries (`--manifests DIR`,
/// `TLHUB_MANIFESTS`). A private entry with the same `source:name:variant` replaces the bundled one.
///
/// Names read `[source:]name[:variant]`:
/// - `mobilenet_v2_100_224` — Keras weights without the classifier (`notop`), the default;
/// - `mobilenet_v2_100_224:top` — Keras weights with the classifier;
/// - `tfhub:mobilenet_v2_100_224` — the TF Hub feature vector (default TF Hub variant);
/// - `tfhub:mobilenet_v2_100_224:classification` — the TF Hub classifier;
/// - `imagenet_class_index` — an asset.
/// Without a source prefix the first source holding the name wins, in the order
/// `keras`, `asset`, `tfhub`, then private sources alphabetically. Without a variant, `notop`,
/// then `feature_vector`, then the only one.
public struct Registry: Sendable {
    /// All entries, bundled first, in manifest order.
    public private(set) var entries: [RegistryEntry] = []
    private var positions: [String: Int] = [:]

    static let sourceOrder = ["keras", "asset", "tfhub"]
    static let variantOrder = ["notop", "feature_vector"]

    /// The bundled manifests plus every `*.json` manifest in `directories`.
    /// - Throws: ``HubError/invalidManifest(path:problem:)`` naming the bad file.
    public init(manifestDirectories directories: [URL] = [], includeBundled: Bool = true) throws {
        if includeBundled {
            for file in BundledManifests.files {
                let manifest = try Manifest.parse(Data(file.json.utf8), path: "manifests/\(file.name)")
                add(manifest, directory: nil)
            }
        }
        for directory in directories {
            let files: [String]
            do {
                files = try FileManager.default.contentsOfDirectory(atPath: directory.path)
                    .filter { $0.hasSuffix(".json") }.sorted()
            } catch {
                throw HubError.invalidManifest(path: directory.path, problem: "cannot list the manifest directory")
            }
            for name in files {
                let file = directory.appendingPathComponent(name)
                guard let data = FileManager.default.contents(atPath: file.path) else {
                    throw HubError.invalidManifest(path: file.path, problem: "cannot read")
                }
                add(try Manifest.parse(data, path: file.path), directory: directory)
            }
        }
    }

    private mutating func add(_ manifest: Manifest, directory: URL?) {
        for artifact in manifest.artifacts {
            let entry = RegistryEntry(artifact: artifact, manifestDirectory: directory)
            if let index = positions[artifact.qualifiedName] {
                entries[index] = entry
            } else {
                positions[artifact.qualifiedName] = entries.count
                entries.append(entry)
            }
        }
    }

    /// Source prefixes in resolution order.
    public var sources: [String] {
        let present = Set(entries.compactMap(\.artifact.source))
        return Self.sourceOrder.filter(present.contains) + present.subtracting(Self.sourceOrder).sorted()
    }

    /// Finds the entry a name refers to (see the type's documentation for the syntax).
    /// - Throws: ``HubError/unknownArtifact(reference:suggestions:)`` or
    ///   ``HubError/invalidReference(_:)``.
    public func entry(for reference: String) throws -> RegistryEntry {
        let parts = reference.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard (1...3).contains(parts.count), !parts.contains(where: \.isEmpty) else {
            throw HubError.invalidReference(reference)
        }
        var source: String?
        var rest = parts[...]
        if parts.count >= 2, sources.contains(parts[0]) {
            source = parts[0]
            rest = parts[1...]
        }
        guard rest.count <= 2 else { throw HubError.invalidReference(reference) }
        let name = rest[rest.startIndex]
        let variant = rest.count == 2 ? rest[rest.startIndex + 1] : nil

        var candidates = entries.filter { $0.artifact.name == name && (source == nil || $0.artifact.source == source) }
        if source == nil, let first = sources.first(where: { s in candidates.contains { $0.artifact.source == s } }) {
            candidates = candidates.filter { $0.artifact.source == first }
        }
        if let variant {
            candidates = candidates.filter { $0.artifact.variant == variant }
        } else if candidates.count > 1 {
            for preferred in Self.variantOrder {
                if let match = candidates.first(where: { $0.artifact.variant == preferred }) {
                    return match
                }
            }
        }
        if candidates.count == 1 { return candidates[0] }
        if candidates.isEmpty {
            throw HubError.unknownArtifact(reference: reference, suggestions: suggestions(for: name))
        }
        throw HubError.ambiguousReference(reference: reference, candidates: candidates.map(\.artifact.qualifiedName))
    }

    private func suggestions(for name: String) -> [String] {
        let names = Set(entries.map(\.artifact.name))
        let close = names.filter { $0.hasPrefix(name) || name.hasPrefix($0) || $0.contains(name) }
        return Array(close.sorted().prefix(4))
    }
}
