import Foundation
import TLTensor

/// Weights held in memory, grouped by layer: a `WeightSource` made from a loaded graph, used to
/// rebuild a native architecture for another input size without reading the file again.
public struct WeightDictionary: WeightSource {
    /// `(layer, [(weight, tensor)])` in layer order.
    public private(set) var entries: [(layer: String, weights: [(name: String, tensor: Tensor)])]
    public let modelConfig: String?

    /// Wraps explicit weights.
    public init(entries: [(layer: String, weights: [(name: String, tensor: Tensor)])], modelConfig: String? = nil) {
        self.entries = entries
        self.modelConfig = modelConfig
    }

    /// The current weights of every layer of `graph`, under the layers' own names.
    public init(graph: Graph) {
        entries = graph.uniqueLayers.compactMap { item in
            let weights = item.layer.weights
            return weights.isEmpty ? nil : (item.layer.name, weights.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
        }
        modelConfig = nil
    }

    public var layerNames: [String] { entries.map(\.layer) }

    public func weightNames(layer: String) -> [String] {
        entries.first { $0.layer == layer }?.weights.map(\.name) ?? []
    }

    public func shape(layer: String, weight: String) -> [Int]? {
        entries.first { $0.layer == layer }?.weights.first { $0.name == weight }?.tensor.shape
    }

    public func tensor(layer: String, weight: String) throws -> Tensor {
        guard let tensor = entries.first(where: { $0.layer == layer })?.weights.first(where: { $0.name == weight })?.tensor else {
            throw EngineError.missingWeight(layer: layer, weight: weight, expectedShape: [])
        }
        return tensor
    }
}
