import Foundation
import TLTensor

/// One call of a layer inside a graph.
public struct GraphNode {
    /// The layer; several nodes share one instance when Keras calls a layer more than once.
    public let layer: any Layer
    /// Indices of the nodes whose outputs feed this node, in call order.
    public let inputs: [Int]
    /// Names of the nested models this call sits in, outermost first (empty at top level).
    public let scope: [String]

    public init(layer: any Layer, inputs: [Int], scope: [String]) {
        self.layer = layer
        self.inputs = inputs
        self.scope = scope
    }
}

/// A directed acyclic network of layer calls in topological order.
///
/// Built by `GraphBuilder` (native architectures) or `KerasGraphReader` (any Keras
/// Sequential/Functional config); run by `GraphExecutor`.
public final class Graph {
    /// The Keras model name.
    public let name: String
    /// Nodes in topological order: every input index is smaller than the node's own.
    public let nodes: [GraphNode]
    /// Indices of the `InputLayer` nodes, in model input order.
    public let inputs: [Int]
    /// Indices of the nodes whose outputs the model returns.
    public let outputs: [Int]
    /// Per-sample output shape of every node, `-1` where it depends on the input size.
    public let shapes: [[Int]]
    /// Layers a Keras config saved with `trainable: false`, directly or inside a frozen nested
    /// model: `tlhub train` leaves them as they are.
    public var frozenLayerNames: Set<String> = []
    /// Layers inside a nested model called with `training=False` (the fine-tuning recipe): a
    /// training pass runs them in inference mode (BatchNormalization on its moving statistics).
    public var inferenceModeLayerNames: Set<String> = []
    /// The class name of each layer's configured kernel initializer (`HeNormal`), from a Keras
    /// config: what training from a config without weights starts from.
    public var kernelInitializerNames: [String: String] = [:]

    /// Wraps nodes in topological order and infers their shapes.
    /// - Throws: `EngineError.incompatibleShapes` when a layer rejects its inputs.
    public init(name: String, nodes: [GraphNode], inputs: [Int], outputs: [Int]) throws {
        self.name = name
        self.nodes = nodes
        self.inputs = inputs
        self.outputs = outputs
        var shapes: [[Int]] = []
        for node in nodes {
            precondition(node.inputs.allSatisfy { $0 < shapes.count }, "graph nodes are not in topological order")
            shapes.append(try node.layer.outputShape(inputShapes: node.inputs.map { shapes[$0] }))
        }
        self.shapes = shapes
    }

    /// When any layer's weights last changed: a fused copy or planned executor made at an older
    /// version is stale.
    public var parameterVersion: Int { nodes.reduce(0) { max($0, $1.layer.parameterVersion) } }

    /// The index of the last node whose layer is called `name`.
    public func node(named name: String) -> Int? { nodes.lastIndex { $0.layer.name == name } }

    /// Distinct layers in first-use order, with the index of their first node.
    public var uniqueLayers: [(layer: any Layer, node: Int)] {
        var seen = Set<ObjectIdentifier>()
        var result: [(layer: any Layer, node: Int)] = []
        for (index, node) in nodes.enumerated() where seen.insert(ObjectIdentifier(node.layer)).inserted {
            result.append((node.layer, index))
        }
        return result
    }

    /// The same layers with every input fixed to per-sample `shape` (a fully convolutional
    /// config graph, whose sizes are `-1`, at one image size); the config's training flags kept.
    public func withInputShape(_ shape: [Int]) throws -> Graph {
        var fixed = nodes
        for index in inputs {
            fixed[index] = GraphNode(layer: InputLayer(name: nodes[index].layer.name, shape: shape), inputs: [], scope: nodes[index].scope)
        }
        let result = try Graph(name: name, nodes: fixed, inputs: inputs, outputs: outputs)
        result.frozenLayerNames = frozenLayerNames
        result.inferenceModeLayerNames = inferenceModeLayerNames
        result.kernelInitializerNames = kernelInitializerNames
        return result
    }

    /// The sub-graph that computes `output` (only its ancestors are kept).
    public func truncated(at output: Int) throws -> Graph { try truncated(at: [output]) }

    /// The sub-graph that computes `outputs`, in that order (only their ancestors are kept).
    public func truncated(at outputs: [Int]) throws -> Graph {
        var needed = Set(outputs)
        for index in stride(from: outputs.max() ?? -1, through: 0, by: -1) where needed.contains(index) {
            needed.formUnion(nodes[index].inputs)
        }
        var remap: [Int: Int] = [:]
        var kept: [GraphNode] = []
        for index in needed.sorted() {
            remap[index] = kept.count
            let node = nodes[index]
            kept.append(GraphNode(layer: node.layer, inputs: node.inputs.compactMap { remap[$0] }, scope: node.scope))
        }
        return try Graph(name: name, nodes: kept, inputs: inputs.compactMap { remap[$0] }, outputs: outputs.map { remap[$0] ?? 0 })
    }

    /// What follows node `split`: a graph whose one input is that node's output (per-sample
    /// shape `shapes[split]`) and whose outputs are this graph's, or nil when a node after the
    /// split also reads an earlier node (a connection that skips over it) or an output lies
    /// before it. Layers are shared, not copied.
    public func tail(after split: Int) throws -> Graph? {
        guard outputs.allSatisfy({ $0 > split }) else { return nil }
        var needed = Set(outputs)
        for index in stride(from: outputs.max() ?? split, to: split, by: -1) where needed.contains(index) {
            guard nodes[index].inputs.allSatisfy({ $0 >= split }) else { return nil }
            needed.formUnion(nodes[index].inputs)
        }
        var remap = [split: 0]
        var kept = [GraphNode(layer: InputLayer(name: nodes[split].layer.name, shape: shapes[split]), inputs: [], scope: [])]
        for index in needed.sorted() where index > split {
            remap[index] = kept.count
            kept.append(GraphNode(layer: nodes[index].layer, inputs: nodes[index].inputs.compactMap { remap[$0] }, scope: nodes[index].scope))
        }
        return try Graph(name: name, nodes: kept, inputs: [0], outputs: outputs.compactMap { remap[$0] })
    }

    /// The last node with a spatial (`[H, W, C]`) output: where the features of a classifier are
    /// read before its pooling/flatten head.
    ///
    /// Nodes computed only from a global pooling (a `keepdims` head such as MobileNet's
    /// `[1, 1, C]` → `conv_preds`) are part of the head, not the base; a squeeze-excite
    /// multiply still reads the full map and stays in the base.
    public var lastSpatialNode: Int? {
        var pooled = [Bool](repeating: false, count: nodes.count)
        for (index, node) in nodes.enumerated() {
            pooled[index] = node.layer is GlobalPooling2D || (!node.inputs.isEmpty && node.inputs.allSatisfy { pooled[$0] })
        }
        let candidates = outputs.count == 1 ? (0...outputs[0]).reversed() : (0..<nodes.count).reversed()
        return candidates.first { shapes[$0].count == 3 && !pooled[$0] && !(nodes[$0].layer is InputLayer) }
    }

    /// Whether the (single) output is computed by a head with weights after the last spatial
    /// feature map: a classifier (`predictions`, VGG's `fc1`…, MobileNet's `conv_preds`), not
    /// a pooled or raw feature map (`include_top=False`).
    public var endsInClassifier: Bool {
        guard outputs.count == 1 else { return false }
        let output = outputs[0]
        guard let spatial = lastSpatialNode else { return shapes[output].count == 1 }
        var needed = Set([output])
        for index in stride(from: output, to: spatial, by: -1) where needed.contains(index) {
            let node = nodes[index]
            if !node.layer.expectedWeights(inputShapes: node.inputs.map { shapes[$0] }).isEmpty { return true }
            needed.formUnion(node.inputs)
        }
        return false
    }

    /// This graph followed by `head`: the head's input is this graph's (single) output, globally
    /// pooled first when `pooling` is `.avg`/`.max` (a head trained on pooled features). Layers
    /// are shared, not copied, so later weight changes in either show in the result.
    /// - Throws: `EngineError.incompatibleShapes` when the head does not take that output.
    public func appending(_ head: Graph, pooling: FeaturePooling = .none, name: String) throws -> Graph {
        var combined = nodes
        var source = outputs[0]
        if pooling != .none {
            combined.append(GraphNode(layer: GlobalPooling2D(name: "\(name)_base_pool", kind: pooling == .max ? .max : .average),
                                      inputs: [source], scope: []))
            source = combined.count - 1
        }
        var remap: [Int: Int] = [:]
        for (index, node) in head.nodes.enumerated() {
            if node.layer is InputLayer {
                remap[index] = source
                continue
            }
            combined.append(GraphNode(layer: node.layer, inputs: node.inputs.compactMap { remap[$0] }, scope: node.scope))
            remap[index] = combined.count - 1
        }
        return try Graph(name: name, nodes: combined, inputs: inputs, outputs: [remap[head.outputs[0]] ?? source])
    }
}

extension Graph {
    /// The distinct layers in the order Keras lists a Functional model's `layers` (what
    /// `base.layers[:-N]` slices): by depth — the longest path to an output — deepest first, ties
    /// in the order a depth-first walk from the outputs first meets them (Keras' `map_graph`).
    public var kerasLayerOrder: [any Layer] {
        var finished = Set<Int>(), postOrder: [Int] = []
        var discovery: [ObjectIdentifier: Int] = [:]
        func visit(_ index: Int) {
            guard !finished.contains(index) else { return }
            let id = ObjectIdentifier(nodes[index].layer)
            if discovery[id] == nil { discovery[id] = discovery.count }
            for input in nodes[index].inputs { visit(input) }
            finished.insert(index)
            postOrder.append(index)
        }
        for output in outputs { visit(output) }
        var nodeDepth: [Int: Int] = [:], layerDepth: [ObjectIdentifier: Int] = [:]
        for index in postOrder.reversed() {
            let id = ObjectIdentifier(nodes[index].layer)
            let depth = max(nodeDepth[index] ?? 0, layerDepth[id] ?? 0)
            layerDepth[id] = depth
            nodeDepth[index] = depth
            for input in nodes[index].inputs { nodeDepth[input] = max(depth + 1, nodeDepth[input] ?? 0) }
        }
        return uniqueLayers.map(\.layer).filter { layerDepth[ObjectIdentifier($0)] != nil }.sorted {
            let (a, b) = (ObjectIdentifier($0), ObjectIdentifier($1))
            return layerDepth[a]! != layerDepth[b]! ? layerDepth[a]! > layerDepth[b]! : discovery[a]! < discovery[b]!
        }
    }
}
