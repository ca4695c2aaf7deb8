import Foundation
import TLEngine
import TLFormats
import TLTensor

/// Writes a graph with its weights as a full Keras model `.h5` (what `model.save("x.h5")` writes:
/// `model_config`, `keras_version`, `backend`, and `model_weights/<layer>/<layer>/<weight>:0`),
/// which `tf.keras.models.load_model` and Keras 3 `keras.models.load_model` open.
public enum KerasModelExport {
    /// Writes `graph` to `output` atomically.
    /// - Throws: `EngineError.unsupportedLayer` for a layer with no Keras config written here,
    ///   or the HDF5 error naming the file.
    public static func write(_ graph: Graph, to output: URL) throws {
        let graph = try graph.withKerasBuiltinLayers()
        let config = try KerasConfigWriter.config(of: graph)
        try AtomicFile.write(to: output) { _, temporary in
            let file = try HDF5File.create(temporary)
            try file.setString("tensorflow", attribute: "backend")
            try file.setString("2.21.0", attribute: "keras_version")
            try file.setString(config, attribute: "model_config")
            let weights = try file.createGroup("model_weights")
            try weights.setString("tensorflow", attribute: "backend")
            try weights.setString("2.21.0", attribute: "keras_version")
            let layers = kerasLayerOrder(graph)
            try weights.setStrings(layers.map(\.layer.name), attribute: "layer_names")
            for (layer, node) in layers {
                let group = try weights.groupCreatingIfNeeded(layer.name)
                let specs = layer.expectedWeights(inputShapes: graph.nodes[node].inputs.map { graph.shapes[$0] })
                let values = layer.weights
                if !specs.isEmpty {
                    let holder = try group.groupCreatingIfNeeded(layer.name)
                    for spec in specs {
                        guard let tensor = values[spec.name], tensor.count == spec.shape.reduce(1, *) else {
                            throw PipelineError(output.path, "layer '\(layer.name)' has no weight '\(spec.name)' of shape \(spec.shape)")
                        }
                        try tensor.scalars.withUnsafeBufferPointer { try holder.createDataset("\(spec.name):0", shape: spec.shape, values: $0) }
                    }
                }
                try group.setStrings(specs.map { "\(layer.name)/\($0.name):0" }, attribute: "weight_names")
            }
            try file.flush()
        }
    }

    /// The layers in the order Keras's `model.layers` lists them for this graph — what its
    /// `.h5` loader pairs the file's weights with, by position: depth from the outputs,
    /// deepest first, ties in the order a depth-first walk from the outputs first meets them
    /// (`_map_graph_network` and `_build_map` in keras/src/engine/functional.py).
    static func kerasLayerOrder(_ graph: Graph) -> [(layer: any Layer, node: Int)] {
        var layerIndices: [ObjectIdentifier: Int] = [:]
        var finished = Set<Int>()
        var decreasingDepth: [Int] = []
        func visit(_ node: Int) {
            guard !finished.contains(node) else { return }
            let id = ObjectIdentifier(graph.nodes[node].layer)
            if layerIndices[id] == nil { layerIndices[id] = layerIndices.count }
            for input in graph.nodes[node].inputs { visit(input) }
            finished.insert(node)
            decreasingDepth.append(node)
        }
        for output in graph.outputs { visit(output) }
        var nodeDepths: [Int: Int] = [:]
        var layerDepths: [ObjectIdentifier: Int] = [:]
        for node in decreasingDepth.reversed() {
            let id = ObjectIdentifier(graph.nodes[node].layer)
            let depth = max(nodeDepths[node, default: 0], layerDepths[id, default: 0])
            layerDepths[id] = depth
            nodeDepths[node] = depth
            for input in graph.nodes[node].inputs {
                nodeDepths[input] = max(depth + 1, nodeDepths[input, default: 0])
            }
        }
        let firstNode = Dictionary(graph.uniqueLayers.map { (ObjectIdentifier($0.layer), $0) }, uniquingKeysWith: { a, _ in a })
        let byDepth = Dictionary(grouping: layerDepths.keys) { layerDepths[$0]! }
        return byDepth.keys.sorted(by: >).flatMap { depth in
            byDepth[depth]!.sorted { layerIndices[$0]! < layerIndices[$1]! }.compactMap { firstNode[$0] }
        }
    }
}
