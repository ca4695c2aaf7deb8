import Foundation
import TLTensor

extension Graph {
    /// Where a layer's weights may be stored in a file, most specific first: the layer itself,
    /// then inside each enclosing nested model (`inner_model` → `inner_model/conv/kernel`).
    /// All name translation lives in this one table.
    static func storageCandidates(layer: String, scope: [String], weight: String) -> [(layer: String, weight: String)] {
        var candidates = [(layer: layer, weight: weight)]
        // Keras 3 names a DepthwiseConv2D's kernel plain `kernel`.
        if weight == "depthwise_kernel" { candidates.append((layer: layer, weight: "kernel")) }
        for depth in stride(from: scope.count, to: 0, by: -1) {
            let path = scope[..<depth].joined(separator: "/")
            candidates.append((layer: "\(path)/\(layer)", weight: weight))
            candidates.append((layer: scope[depth - 1], weight: "\(layer)/\(weight)"))
            candidates.append((layer: path, weight: "\(layer)/\(weight)"))
        }
        return candidates
    }

    /// Loads every layer's weights from `source`, strictly.
    ///
    /// Every weight a layer expects must be present with exactly the expected shape, and (when
    /// `allowUnused` is false) every weight in the file must be used.
    /// - Throws: `EngineError.missingWeight`, `.weightShapeMismatch` (naming the layer, weight,
    ///   expected and actual shape) or `.unusedWeights`.
    public func loadWeights(from source: WeightSource, allowUnused: Bool = false) throws {
        var used = Set<String>()
        var pending: [(any Layer, [String: Tensor])] = []
        for (layer, nodeIndex) in uniqueLayers {
            let node = nodes[nodeIndex]
            let specs = layer.expectedWeights(inputShapes: node.inputs.map { shapes[$0] })
            if specs.isEmpty { continue }
            var loaded: [String: Tensor] = [:]
            for spec in specs {
                let candidates = Self.storageCandidates(layer: layer.name, scope: node.scope, weight: spec.name)
                guard let found = candidates.first(where: { source.shape(layer: $0.layer, weight: $0.weight) != nil }),
                      let actual = source.shape(layer: found.layer, weight: found.weight) else {
                    throw EngineError.missingWeight(layer: layer.name, weight: spec.name, expectedShape: spec.shape)
                }
                // Scalars (Normalization `count`) may be stored as [] or [1].
                let matches = actual == spec.shape || (spec.shape.isEmpty && actual.reduce(1, *) == 1)
                guard matches else {
                    throw EngineError.weightShapeMismatch(layer: layer.name, weight: spec.name, expected: spec.shape, actual: actual)
                }
                loaded[spec.name] = try source.tensor(layer: found.layer, weight: found.weight)
                used.insert("\(found.layer)/\(found.weight)")
            }
            pending.append((layer, loaded))
        }
        if !allowUnused {
            var unused: [String] = []
            for layer in source.layerNames {
                for weight in source.weightNames(layer: layer) where !used.contains("\(layer)/\(weight)") {
                    unused.append("\(layer)/\(weight)")
                }
            }
            if !unused.isEmpty { throw EngineError.unusedWeights(names: unused) }
        }
        for (layer, weights) in pending { layer.setWeights(weights) }
    }
}
