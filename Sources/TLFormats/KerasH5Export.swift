import Foundation
import TLTensor

/// Writes weights back into the legacy Keras HDF5 layout that `model.load_weights()` of both
/// tf.keras 2 and Keras 3 accept: root attributes `layer_names`, `backend`, `keras_version`;
/// one group per layer with a `weight_names` attribute (`<layer>/<weight>:0`) and the datasets at
/// `<layer>/<layer>/<weight>:0`. Layers of a nested model go back under the model's group, as
/// Keras wrote them.
public enum KerasH5Export {
    /// The Keras version recorded when the source does not say which wrote it.
    public static let defaultKerasVersion = "2.21.0"

    /// Writes `source`'s weights to `output` atomically (nothing is left there on error).
    /// - Throws: ``HDF5Error``, ``FormatError`` or ``TensorFileError`` naming the file and weight.
    public static func write(_ source: WeightFile, to output: URL) throws {
        if output.standardizedFileURL.path == source.url.standardizedFileURL.path {
            throw FormatError(path: output.path, problem: "output would overwrite the source file")
        }
        // Top-level entries in order: a plain layer, or a nested model with its inner layers.
        var groups: [(name: String, layers: [LayerInfo])] = []
        for layer in source.layers where !layer.weights.isEmpty {
            let groupName = layer.parentModel ?? layer.name
            if let last = groups.last, last.name == groupName, layer.parentModel != nil {
                groups[groups.count - 1].layers.append(layer)
            } else if layer.parentModel != nil, let position = groups.firstIndex(where: { $0.name == groupName }) {
                groups[position].layers.append(layer)
            } else {
                groups.append((groupName, [layer]))
            }
        }
        try AtomicFile.write(to: output) { _, temporary in
            let file = try HDF5File.create(temporary)
            try file.setString(source.backend ?? "tensorflow", attribute: "backend")
            try file.setString(source.kerasVersion ?? defaultKerasVersion, attribute: "keras_version")
            try file.setStrings(groups.map(\.name), attribute: "layer_names")
            for group in groups {
                let layerGroup = try file.createGroup(group.name)
                var weightNames: [String] = []
                for layer in group.layers {
                    let holder = try layerGroup.groupCreatingIfNeeded(layer.name)
                    for weight in layer.weights {
                        try holder.createDataset("\(weight.name):0", shape: weight.shape) { sink in
                            try source.stream(weight, sink)
                        }
                        weightNames.append("\(layer.name)/\(weight.name):0")
                    }
                }
                try layerGroup.setStrings(weightNames, attribute: "weight_names")
            }
            try file.flush()
        }
    }
}
