import Foundation

/// Reads Keras 3 `.weights.h5`: `layers/<snake_case_class>[_<n>]/vars/<index>`, nested
/// Sequential/Functional models as `layers/<model>/layers/…`, the real layer name in the `vars`
/// group's `name` attribute (Keras ≥ 3.8). Older files without it are matched to the model
/// config (when a `.keras` archive provides one) by class and position, as Keras itself does.
enum Keras3WeightsReader {
    /// Groups Keras saves beside the layers that are not layers: training state.
    static let nonLayerGroups: Set<String> = ["optimizer", "loss", "metrics", "compile_metrics", "compile_loss"]

    static func read(root: HDF5File, url: URL, config: String?, kerasVersion: String?, format: WeightFileFormat) throws -> WeightFile {
        let path = root.filePath
        let parsed = try config.map { try KerasModelConfig(json: $0, path: path) }
        var layers: [LayerInfo] = []
        var nested: [String: [String]] = [:]
        try walk(container: root, configLayers: parsed?.layers, parentModel: nil, into: &layers, nested: &nested)
        // A subclassed model saves each layer attribute under its attribute name
        // (`block1/layers/conv2d/vars/0`, `head/vars/0`), in Keras' sorted attribute order.
        for key in try root.linkNames().sorted() where !["layers", "vars"].contains(key) && !nonLayerGroups.contains(key)
            && !key.hasPrefix("seed_generator") && root.isGroup(key) {
            try walkAttribute(try root.group(key), key: key, parentModel: nil, into: &layers, nested: &nested)
        }
        if root.isGroup("vars") {
            // Variables owned by the model itself (rare: subclassed models).
            let vars = try root.group("vars")
            let weights = try variables(vars, classKey: "", configLayer: nil)
            if !weights.isEmpty {
                let name = (try? vars.string(attribute: "name")) ?? parsed?.name ?? "model"
                layers.append(LayerInfo(name: name, className: parsed?.className, parentModel: nil, weights: weights))
            }
        }
        guard layers.contains(where: { !$0.weights.isEmpty }) else {
            throw FormatError(path: url.path, problem: "no Keras layer variables found (no layers/…/vars/<i> nor <attribute>/vars/<i> groups)")
        }
        return try WeightFile(url: url, format: format, kerasVersion: kerasVersion, backend: nil, modelConfig: config,
                              layers: disambiguated(layers), nestedModels: nested, storage: .hdf5(root: root))
    }

    /// A layer saved as an attribute of a subclassed model or layer: its own `vars`, a `layers`
    /// list when it is a Sequential/Functional, and further attribute groups (custom layers
    /// holding layers).
    private static func walkAttribute(_ group: HDF5Group, key: String, parentModel: String?,
                                      into layers: inout [LayerInfo], nested: inout [String: [String]]) throws {
        let vars = group.isGroup("vars") ? try group.group("vars") : nil
        let recordedName = vars.flatMap { $0.hasAttribute("name") ? try? $0.string(attribute: "name") : nil }
        let name = recordedName ?? key
        if group.isGroup("layers") {
            let before = layers.count
            try walk(container: group, configLayers: nil, parentModel: name, into: &layers, nested: &nested)
            nested[name] = layers[before...].filter { $0.parentModel == name }.map(\.name)
        } else if let vars, try !vars.linkNames().isEmpty {
            let classKey = inferredClassKey(recordedName: recordedName, key: key, vars: vars)
            let weights = try variables(vars, classKey: classKey, configLayer: nil)
            layers.append(LayerInfo(name: name, className: classKey, parentModel: parentModel, weights: weights))
        }
        for child in try group.linkNames().sorted() where !["layers", "vars"].contains(child)
            && !child.hasPrefix("seed_generator") && group.isGroup(child) {
            try walkAttribute(try group.group(child), key: "\(key)/\(child)", parentModel: name, into: &layers, nested: &nested)
        }
    }

    /// The snake_case class of an attribute layer, which its path does not say: from its Keras
    /// name (`dense_1` → `dense`) when that is a known class, else from its variables' ranks.
    private static func inferredClassKey(recordedName: String?, key: String, vars: HDF5Group) -> String {
        for candidate in [recordedName, key.split(separator: "/").last.map(String.init)].compactMap({ $0 }) {
            let stripped = stripIndex(candidate)
            if !Keras3WeightNames.names(classKey: stripped, count: 1)[0].hasPrefix("var_") { return stripped }
        }
        let ranks = ((try? vars.linkNames()) ?? []).compactMap(Int.init).sorted()
            .compactMap { (try? vars.dataset(String($0)))?.shape.count }
        switch ranks {
        case [4], [4, 1]: return "conv2d"
        case [2], [2, 1]: return "dense"
        case [1, 1, 1, 1]: return "batch_normalization"
        default: return ""
        }
    }

    /// Layer names must be unique; a name recorded twice (older files without the `name`
    /// attribute, where `block1` and `block2` both hold a `conv2d`) becomes its attribute path.
    private static func disambiguated(_ layers: [LayerInfo]) -> [LayerInfo] {
        var counts: [String: Int] = [:]
        for layer in layers where !layer.weights.isEmpty { counts[layer.name, default: 0] += 1 }
        guard counts.values.contains(where: { $0 > 1 }) else { return layers }
        return layers.map { layer in
            guard counts[layer.name, default: 0] > 1, let locator = layer.weights.first?.locator else { return layer }
            var renamed = layer
            let varsPath = locator.split(separator: "/").dropLast().dropLast()
            renamed.name = varsPath.filter { $0 != "layers" }.joined(separator: "/")
            return renamed
        }
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
            // A custom layer's own layer attributes (`layers/my_block/conv/vars/0`).
            for attribute in try child.linkNames().sorted() where !["layers", "vars"].contains(attribute)
                && !attribute.hasPrefix("seed_generator") && child.isGroup(attribute) {
                try walkAttribute(try child.group(attribute), key: "\(key)/\(attribute)", parentModel: name,
                                  into: &layers, nested: &nested)
            }
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
