import Foundation
import TLEngine
import TLTensor

extension TrainingGraph {
    /// A training graph cut where learning starts: the frozen part upstream of every trainable
    /// weight (run on the engine's fused inference path, its output cacheable per image) and the
    /// part that trains.
    public struct FrozenSplit {
        /// The frozen prefix, whose outputs are the tensors the trainable part reads (`cut` order).
        public let prefix: Graph
        /// The trainable part: one model input per cut tensor, in order, sharing the layers (and
        /// so the weights) of the whole graph.
        public let suffix: TrainingGraph
        /// Names of the layers whose outputs cross the cut.
        public let cut: [String]
        /// Per-sample shapes of the cut tensors.
        public let cutShapes: [[Int]]
    }

    /// Splits the graph at its frozen prefix. The prefix runs in inference mode, which is what a
    /// training pass would run it in unless it holds a Dropout or a BatchNormalization left in
    /// training mode — those are refused here, so the cut never changes the numbers.
    /// - Throws: `TrainingError` when nothing is trainable, or when a frozen layer upstream of the
    ///   trainable part would behave differently in training mode.
    public func splitAtFrozenPrefix() throws -> FrozenSplit {
        let learns = learnsUpstream
        let output = graph.outputs[0]
        guard learns[output] else { throw TrainingError("", "no layer is trainable") }
        var cutNodes: [Int] = []
        for (index, node) in graph.nodes.enumerated() where learns[index] {
            for input in node.inputs where !learns[input] && !cutNodes.contains(input) { cutNodes.append(input) }
        }
        cutNodes.sort()
        // The prefix: every frozen node some cut node needs.
        let prefix = try graph.truncated(at: cutNodes)
        for node in prefix.nodes {
            if mode(of: node.layer, in: .training) == .training && (node.layer is Dropout || node.layer is BatchNormalization) {
                throw TrainingError(node.layer.name, "runs in training mode but sits before every trainable layer; freeze it or run it in inference mode")
            }
        }

        var suffixRemap: [Int: Int] = [:]
        var suffixNodes: [GraphNode] = []
        for cut in cutNodes {
            suffixRemap[cut] = suffixNodes.count
            let name = graph.nodes[cut].layer.name
            suffixNodes.append(GraphNode(layer: InputLayer(name: "\(name)_cut", shape: graph.shapes[cut]), inputs: [], scope: []))
        }
        let suffixInputs = Array(0..<cutNodes.count)
        for (index, node) in graph.nodes.enumerated() where learns[index] {
            suffixRemap[index] = suffixNodes.count
            suffixNodes.append(GraphNode(layer: node.layer, inputs: node.inputs.map { suffixRemap[$0]! }, scope: node.scope))
        }
        let suffixGraph = try Graph(name: graph.name, nodes: suffixNodes, inputs: suffixInputs, outputs: [suffixRemap[output]!])
        let suffix = try TrainingGraph(graph: suffixGraph)
        suffix.setTrainable(false, layers: frozenLayers)
        suffix.inferenceModeLayers = inferenceModeLayers
        return FrozenSplit(prefix: prefix, suffix: suffix, cut: cutNodes.map { graph.nodes[$0].layer.name },
                           cutShapes: cutNodes.map { graph.shapes[$0] })
    }
}
