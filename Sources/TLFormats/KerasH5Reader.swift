import Foundation

/// Reads the Keras layouts stored in HDF5: legacy weights-only and full-model `.h5`, and Keras 3
/// `.weights.h5` (alone or inside a `.keras` archive).
enum KerasH5Reader {
    /// Recognises the layout of an open HDF5 file and lists its layers and weights.
    /// - Parameters:
    ///   - file: the open file (on disk, or an in-memory image from a `.keras` archive).
    ///   - url: the file the user named (the archive for a `.keras`).
    ///   - archive: for a `.keras` archive, its `config.json` text and Keras version.
    static func open(_ file: HDF5File, url: URL, archive: (config: String?, kerasVersion: String?)? = nil) throws -> WeightFile {
        let path = file.filePath
        if file.hasAttribute("layer_names") || file.hasAttribute("layer_names0") {
            return try legacy(root: file, url: url, format: .kerasH5Weights, attributes: file, modelConfig: nil)
        }
        if file.isGroup("model_weights") {
            let config = file.hasAttribute("model_config") ? try file.string(attribute: "model_config") : nil
            return try legacy(root: try file.group("model_weights"), url: url, format: .kerasH5Model, attributes: file, modelConfig: config)
        }
        if file.isGroup("layers") || file.isGroup("vars") {
            return try Keras3WeightsReader.read(root: file, url: url, config: archive?.config, kerasVersion: archive?.kerasVersion,
                                                format: archive == nil ? .keras3Weights : .kerasArchive)
        }
        throw FormatError(path: path, problem: "HDF5 file is not a Keras weight file (no layer_names, model_weights or layers)")
    }

    // MARK: - Legacy layouts

    /// Reads `root/<layer>/<weight path>` as listed by `layer_names` and each layer's `weight_names`.
    static func legacy(root: HDF5Group, url: URL, format: WeightFileFormat, attributes: HDF5Group, modelConfig: String?) throws -> WeightFile {
        let path = root.filePath
        let config = try modelConfig.map { try KerasModelConfig(json: $0, path: path) }
        let classes = config?.layersByName ?? [:]
        var nested = config?.nestedModels ?? [:]
        guard let layerNames = try root.chunkedStrings(attribute: "layer_names") else {
            throw FormatError(path: path, problem: "\(root.objectPath) has no layer_names attribute")
        }
        let kerasVersion = try optionalString(root, attributes, "keras_version")
        let backend = try optionalString(root, attributes, "backend")

        var layers: [LayerInfo] = []
        for name in layerNames {
            guard root.isGroup(name) else {
                throw FormatError(path: path, problem: "layer '\(name)' is listed in layer_names but has no group")
            }
            let group = try root.group(name)
            let weightNames = try group.chunkedStrings(attribute: "weight_names") ?? []
            // Weight names are `<layer>/<weight>:0` (tf.keras 2) or `<layer>/<weight>` (Keras 3's
            // legacy writer); a nested model's group lists its inner layers' weights.
            var inner: [(name: String, weights: [WeightInfo])] = []
            for weightName in weightNames {
                let components = weightName.split(separator: "/").map(String.init)
                guard let last = components.last else {
                    throw FormatError(path: path, problem: "layer '\(name)' lists an empty weight name")
                }
                // The owner is everything before the weight's own name. Layer names may contain
                // `/` (tf.keras' DenseNet `conv1/bn`, MobileNetV3 `Conv/BatchNorm`): a weight
                // under the layer's full name is its own, however many components that has
                // (also RNN cells, `lstm/lstm_cell/kernel:0`).
                let owner = weightName.hasPrefix(name + "/") || components.count < 2
                    ? name : components.dropLast().joined(separator: "/")
                let dataset = try group.dataset(weightName)
                let info = WeightInfo(name: shortName(last), shape: dataset.shape, dtype: dataset.storageType.rawValue,
                                      locator: "\(name)/\(weightName)")
                if let position = inner.firstIndex(where: { $0.name == owner }) {
                    inner[position].weights.append(info)
                } else {
                    inner.append((owner, [info]))
                }
            }
            let isNested = classes[name]?.isModel == true || inner.contains { $0.name != name }
            if isNested && !inner.isEmpty {
                let innerNames = inner.map(\.name)
                if nested[name] == nil { nested[name] = innerNames }
                for layer in inner {
                    layers.append(LayerInfo(name: layer.name, className: classes[layer.name]?.className, parentModel: name, weights: layer.weights))
                }
            } else {
                layers.append(LayerInfo(name: name, className: classes[name]?.className, parentModel: nil,
                                        weights: inner.flatMap(\.weights)))
            }
        }
        return try WeightFile(url: url, format: format, kerasVersion: kerasVersion, backend: backend, modelConfig: modelConfig,
                              layers: layers, nestedModels: nested, storage: .hdf5(root: root))
    }

    /// `conv1/kernel:0` → `kernel`: the last path component without a `:<n>` suffix.
    static func shortName(_ component: String) -> String {
        guard let colon = component.lastIndex(of: ":"),
              !component[component.index(after: colon)...].isEmpty,
              component[component.index(after: colon)...].allSatisfy(\.isNumber)
        else { return component }
        return String(component[..<colon])
    }

    private static func optionalString(_ first: HDF5Group, _ second: HDF5Group, _ name: String) throws -> String? {
        if first.hasAttribute(name) { return try first.string(attribute: name) }
        if second.hasAttribute(name) { return try second.string(attribute: name) }
        return nil
    }
}
