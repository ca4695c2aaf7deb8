import Foundation
import TLTensor

/// Writes weights as a Keras 3 `.weights.h5` (`layers/<snake_case_class>[_<n>]/vars/<i>`, the
/// layer name in each `vars` group's `name` attribute), which Keras 3's
/// `model.load_weights("x.weights.h5")` reads for the same architecture.
///
/// Keras 3 finds a layer by its class and its position among the container's layers of that
/// class, so every layer's class must be known: from the model config, from a Keras 3 source, or
/// inferred from its weights (kernel rank 4 → Conv2D, depthwise_kernel → DepthwiseConv2D,
/// gamma/beta/moving statistics → BatchNormalization, kernel rank 2 → Dense, …).
public enum Keras3WeightsExport {
    /// Writes `source` to `output` atomically (nothing is left there on error).
    /// - Throws: ``FormatError`` when a layer's class cannot be determined, or an HDF5 error.
    public static func write(_ source: WeightFile, to output: URL) throws {
        if output.standardizedFileURL.path == source.url.standardizedFileURL.path {
            throw FormatError(path: output.path, problem: "output would overwrite the source file")
        }
        let config = try source.modelConfig.map { try KerasModelConfig(json: $0, path: source.url.path) }
        let classes = config?.layersByName ?? [:]

        // Containers in order: the model itself, and nested models (by name) placed where their
        // first layer appears.
        struct Entry { var key: String; var layer: LayerInfo? ; var children: [LayerInfo] }
        var root: [Entry] = []
        var counters: [String: Int] = [:]
        func key(for classKey: String, counters: inout [String: Int]) -> String {
            let count = counters[classKey, default: 0]
            counters[classKey] = count + 1
            return count == 0 ? classKey : "\(classKey)_\(count)"
        }
        for layer in source.layers where !layer.weights.isEmpty {
            if let parent = layer.parentModel {
                if let position = root.firstIndex(where: { $0.layer == nil && $0.children.first?.parentModel == parent }) {
                    root[position].children.append(layer)
                } else {
                    let modelClass = classes[parent]?.className ?? "Functional"
                    root.append(Entry(key: key(for: classKey(modelClass), counters: &counters), layer: nil, children: [layer]))
                }
            } else {
                root.append(Entry(key: key(for: try classKey(for: layer, path: source.url.path), counters: &counters), layer: layer, children: []))
            }
        }

        try AtomicFile.write(to: output) { _, temporary in
            let file = try HDF5File.create(temporary)
            let layersGroup = try file.createGroup("layers")
            for entry in root {
                let group = try layersGroup.createGroup(entry.key)
                if let layer = entry.layer {
                    try writeVariables(of: layer, into: group, source: source)
                    continue
                }
                let inner = try group.createGroup("layers")
                var innerCounters: [String: Int] = [:]
                for layer in entry.children {
                    let child = try inner.createGroup(key(for: try classKey(for: layer, path: source.url.path), counters: &innerCounters))
                    try writeVariables(of: layer, into: child, source: source)
                }
                let vars = try group.createGroup("vars")
                if let parent = entry.children.first?.parentModel { try vars.setString(parent, attribute: "name") }
            }
            let vars = try file.createGroup("vars")
            if let name = config?.name { try vars.setString(name, attribute: "name") }
            try file.flush()
        }
    }

    private static func writeVariables(of layer: LayerInfo, into group: HDF5Group, source: WeightFile) throws {
        let vars = try group.createGroup("vars")
        try vars.setString(layer.name, attribute: "name")
        for (index, weight) in layer.weights.enumerated() {
            try vars.createDataset(String(index), shape: weight.shape) { sink in try source.stream(weight, sink) }
        }
    }

    private static func classKey(_ className: String) -> String {
        className.contains(where: \.isUppercase) ? KerasModelConfig.snakeCase(className) : className
    }

    /// The snake_case class key of `layer`, from its recorded class or inferred from its weights.
    static func classKey(for layer: LayerInfo, path: String) throws -> String {
        if let className = layer.className { return classKey(className) }
        let names = layer.weights.map(\.name)
        let kernelRank = layer.weights.first { $0.name == "kernel" }?.shape.count ?? 0
        let firstRank = layer.weights.first?.shape.count ?? 4
        if names.contains("pointwise_kernel") { return "separable_conv\(firstRank - 2)d" }
        if names.contains("depthwise_kernel") { return "depthwise_conv\(firstRank - 2)d" }
        if names.contains("moving_mean") && names.contains("moving_variance") { return "batch_normalization" }
        if kernelRank == 2 { return "dense" }
        if (3...5).contains(kernelRank) { return "conv\(kernelRank - 2)d" }
        if names == ["gamma", "beta"] { return "layer_normalization" }
        if names == ["embeddings"] { return "embedding" }
        throw FormatError(path: path, problem: "layer '\(layer.name)' has weights \(names) of unknown class; give a model config")
    }
}
