import Foundation

/// Reads Keras 3 `.weights.h5`: `layers/<snake_case_class>[_<n>]/vars/<index>`, nested
/// Sequential/Functional models as `layers/<model>/layers/…`, the real layer name in the `vars`
/// group's `name` attribute (Keras ≥ 3.8). Older files without it are matched to the model
/// config (when a `.keras` archive provides one) by class and position, as Keras itself does.
enum Keras3WeightsReader {
    static func read(root: HDF5File, url: URL, config: String?, kerasVersion: String?, format: WeightFileFormat) throws -> WeightFile {
        let path = root.filePath
        let parsed = try config.map { try KerasModelConfig(json: $0, path: path) }
        var layers: [LayerInfo] = []
        var nested: [String: [String]] = [:]
        try walk(container: root, configLayers: parsed?.layers, parentModel: nil, into: &layers, nested: &nested)
        if root.isGroup("vars") {
            // Variables owned by the model itself (rare: subclassed models).
            let vars = try root.group("vars")
            let weights = try variables(vars, classKey: "", configLayer: nil)
            if !weights.isEmpty {
                let name = (try? vars.string(attribute: "name")) ?? parsed?.name ?? "model"
                layers.append(LayerInfo(name: name, className: parsed?.className, parentModel: nil, weights: weights))
            }
        }
        return try WeightFile(url: url, format: format, kerasVersion: kerasVersion, backend: nil, modelConfig: config,
                              layers: layers, nestedModels: nested, storage: .hdf5(root: root))
    }

    /// Lists the layers under `container/layers` (and, recursively, nested models' layers).
    private static func walk(container: HDF5Group, configLayers: [KerasModelConfig.Layer]?, parentModel: String?,
                             into layers: inout [LayerInfo], nested: inout [String: [String]]) throws {
        guard container.isGroup("layers") else { return }
        let group = try container.group("layers")
        // Keras names each child by its class in container order: conv2d, conv2d_1, …
        var configByKey: [String: (position: Int, layer: KerasModelConfig.Layer)] = [:]
        var seen: [String: Int] = [:]
        for (position, layer) in (configLayers ?? []).enumerated() {
            let base = KerasModelConfig.snakeCase(layer.className)
            let count = seen[base, default: 0]
            seen[base] = count + 1
            configByKey[count == 0 ? base : "\(base)_\(count)"] = (position, layer)
        }
        let keys = try group.linkNames().sorted { lhs, rhs in
            switch (configByKey[lhs]?.position, configByKey[rhs]?.position) {
            case let (left?, right?): left < right
            case (.some, nil): true
            case (nil, .some): false
            case (nil, nil): lhs.compare(rhs, options: .numeric) == .orderedAscending
            }
        }
        for key in keys where group.isGroup(key) {
            let child = try group.group(key)
            let configLayer = configByKey[key]?.layer
            let vars = child.isGroup("vars") ? try child.group("vars") : nil
            let recordedName = vars.flatMap { $0.hasAttribute("name") ? try? $0.string(attribute: "name") : nil }
            let name = recordedName ?? configLayer?.name ?? key
            let classKey = stripIndex(key)
            if child.isGroup("layers") {
                let before = layers.count
                try walk(container: child, configLayers: configLayer?.layers, parentModel: name, into: &layers, nested: &nested)
                let innerNames = layers[before...].filter { $0.parentModel == name }.map(\.name)
                nested[name] = configLayer.map { $0.layers.filter { $0.className != "InputLayer" }.map(\.name) } ?? innerNames
                continue
            }
            let weights = try vars.map { try variables($0, classKey: classKey, configLayer: configLayer) } ?? []
            layers.append(LayerInfo(name: name, className: configLayer?.className ?? classKey, parentModel: parentModel, weights: weights))
        }
    }

    /// The datasets `0`, `1`, … of a `vars` group, named by the layer class.
    private static func variables(_ vars: HDF5Group, classKey: String, configLayer: KerasModelConfig.Layer?) throws -> [WeightInfo] {
        let indices = try vars.linkNames().compactMap { Int($0) }.sorted()
        guard indices == Array(0..<indices.count) else {
            throw FormatError(path: vars.filePath, problem: "\(vars.objectPath) holds variables \(indices), expected 0..<\(indices.count)")
        }
        let names = Keras3WeightNames.names(classKey: classKey, count: indices.count,
                                            center: configLayer?.center, scale: configLayer?.scale)
        let prefix = String(vars.objectPath.dropFirst())
        return try indices.map { index in
            let dataset = try vars.dataset(String(index))
            return WeightInfo(name: names[index], shape: dataset.shape, dtype: dataset.storageType.rawValue, locator: "\(prefix)/\(index)")
        }
    }

    /// `conv2d_3` → `conv2d`, `batch_normalization` → itself.
    static func stripIndex(_ key: String) -> String {
        guard let underscore = key.lastIndex(of: "_") else { return key }
        let suffix = key[key.index(after: underscore)...]
        guard !suffix.isEmpty, suffix.allSatisfy(\.isNumber) else { return key }
        return String(key[..<underscore])
    }
}
