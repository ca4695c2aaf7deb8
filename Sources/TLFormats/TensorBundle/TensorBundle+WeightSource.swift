import TLTensor

/// A tensor bundle seen as weights grouped by layer: the checkpoint key without its
/// `/.ATTRIBUTES/VARIABLE_VALUE` suffix is split at its last `/` into layer and weight
/// (`MobilenetV2/Conv/weights` → layer `MobilenetV2/Conv`, weight `weights`). String tensors
/// (the object graph) and optimizer slots are left out. Names are TensorFlow's, not Keras's:
/// mapping TF-Slim names onto Keras layers is the engine's job.
extension TensorBundle: WeightSource {
    private static let suffix = "/.ATTRIBUTES/VARIABLE_VALUE"

    private var weightEntries: [(layer: String, weight: String, entry: Entry)] {
        entries.compactMap { entry in
            guard entry.dataType != .string, !entry.name.contains("/.OPTIMIZER_SLOT/") else { return nil }
            var key = entry.name
            if key.hasSuffix(Self.suffix) { key.removeLast(Self.suffix.count) }
            guard let slash = key.lastIndex(of: "/") else { return ("", key, entry) }
            return (String(key[..<slash]), String(key[key.index(after: slash)...]), entry)
        }
    }

    public var layerNames: [String] {
        var seen = Set<String>()
        return weightEntries.map(\.layer).filter { seen.insert($0).inserted }
    }

    public func weightNames(layer: String) -> [String] {
        weightEntries.filter { $0.layer == layer }.map(\.weight)
    }

    public func shape(layer: String, weight: String) -> [Int]? {
        weightEntries.first { $0.layer == layer && $0.weight == weight }?.entry.shape
    }

    public func tensor(layer: String, weight: String) throws -> Tensor {
        guard let match = weightEntries.first(where: { $0.layer == layer && $0.weight == weight }) else {
            throw TensorFileError(path: prefix.path + ".index", problem: "no weight '\(weight)' in layer '\(layer)'")
        }
        return try tensor(named: match.entry.name)
    }

    public var modelConfig: String? { nil }
}
