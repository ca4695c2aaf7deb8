import Foundation
import TLTensor

extension Graph {
    /// The same network, computing the same values, with the layers Keras has no built-in class
    /// for (which tf.keras and Keras 3 load only with `custom_objects`) replaced by built-in ones:
    /// InceptionResNetV2's scaled residual by a Rescaling of the branch (`<name>_scale`) and an
    /// Add named as the layer; ConvNeXt's LayerScale by a 1×1 DepthwiseConv2D without bias whose
    /// kernel is γ. Every other layer is the same instance.
    public func withKerasBuiltinLayers() throws -> Graph {
        var rebuilt: [GraphNode] = []
        var newIndex: [Int] = []
        for node in nodes {
            let inputs = node.inputs.map { newIndex[$0] }
            switch node.layer {
            case let residual as ScaledResidual:
                rebuilt.append(GraphNode(layer: Rescaling(name: "\(residual.name)_scale", scale: residual.scale), inputs: [inputs[1]], scope: node.scope))
                rebuilt.append(GraphNode(layer: ElementwiseMerge(name: residual.name, operation: .add), inputs: [inputs[0], rebuilt.count - 1],
                                         scope: node.scope))
            case let scale as LayerScale where shapes[node.inputs[0]].count == 3:
                let depthwise = DepthwiseConv2D(name: scale.name, kernelSize: (1, 1), useBias: false)
                depthwise.setWeights(["depthwise_kernel": scale.gamma.reshaped([1, 1, scale.projectionDimension, 1])])
                rebuilt.append(GraphNode(layer: depthwise, inputs: inputs, scope: node.scope))
            default:
                rebuilt.append(GraphNode(layer: node.layer, inputs: inputs, scope: node.scope))
            }
            newIndex.append(rebuilt.count - 1)
        }
        let graph = try Graph(name: name, nodes: rebuilt, inputs: inputs.map { newIndex[$0] }, outputs: outputs.map { newIndex[$0] })
        graph.frozenLayerNames = frozenLayerNames
        graph.inferenceModeLayerNames = inferenceModeLayerNames
        graph.kernelInitializerNames = kernelInitializerNames
        return graph
    }
}
