import Foundation
import TLEngine
import TLTensor

/// A graph of differentiable layers that can run a training pass and a backward pass.
///
/// Gradients are summed where a tensor has several readers (a shortcut read by an `Add` and the
/// next block), in reverse topological order; parameter gradients accumulate in each
/// ``Parameter`` until ``zeroGradients()``.
public final class TrainingGraph {
    /// The engine graph (its layers hold the weights; inference on it sees every update).
    public let graph: Graph
    /// Every weight of every layer, in layer order, Keras weight order.
    public let parameters: [Parameter]
    private let parameterIndex: [ObjectIdentifier: [String: Parameter]]

    /// Wraps `graph`.
    /// - Throws: `TrainingError` naming a layer that has no backward pass yet.
    public init(graph: Graph) throws {
        self.graph = graph
        var parameters: [Parameter] = []
        var index: [ObjectIdentifier: [String: Parameter]] = [:]
        for (layer, node) in graph.uniqueLayers {
            guard layer is InputLayer || layer is DifferentiableLayer else {
                throw TrainingError(layer.name, "\(type(of: layer)) layers cannot be trained yet (no backward pass)")
            }
            let specs = layer.expectedWeights(inputShapes: graph.nodes[node].inputs.map { graph.shapes[$0] })
            for spec in specs {
                let parameter = Parameter(layer: layer, name: spec.name)
                parameters.append(parameter)
                index[ObjectIdentifier(layer), default: [:]][spec.name] = parameter
            }
        }
        self.parameters = parameters
        parameterIndex = index
        // Whether anything at or before each node learns: only then does a gradient need to
        // flow back to it.
        var learns = [Bool](repeating: false, count: graph.nodes.count)
        for (position, node) in graph.nodes.enumerated() {
            learns[position] = index[ObjectIdentifier(node.layer)] != nil || node.inputs.contains { learns[$0] }
        }
        upstreamLearns = learns
    }

    private let upstreamLearns: [Bool]

    /// The trainable parameters.
    public var trainableParameters: [Parameter] { parameters.filter(\.isTrainable) }

    /// Whether `backward` computes dLoss/dInput for the model input too (gradient checks); off
    /// by default, since nothing before the input learns.
    public var tracksInputGradient = false

    /// Clears every parameter's gradient.
    public func zeroGradients() { for parameter in parameters { parameter.zeroGradient() } }

    /// What a training pass keeps for the backward pass.
    public struct Pass {
        /// Each node's output.
        public var outputs: [Tensor]
        var saved: [[Tensor]]
        /// The model output.
        public var output: Tensor { outputs[outputNode] }
        let outputNode: Int
    }

    /// Runs `input` through the graph, keeping every activation.
    public func forward(_ input: Tensor, mode: Mode, random: inout SeededRandom) throws -> Pass {
        var outputs: [Tensor] = []
        var saved: [[Tensor]] = []
        outputs.reserveCapacity(graph.nodes.count)
        for node in graph.nodes {
            if node.layer is InputLayer {
                outputs.append(input)
                saved.append([])
                continue
            }
            guard let layer = node.layer as? DifferentiableLayer else {
                throw TrainingError(node.layer.name, "no training forward pass")
            }
            let result = try layer.trainingForward(node.inputs.map { outputs[$0] }, mode: mode, random: &random)
            outputs.append(result.output)
            saved.append(result.saved)
        }
        return Pass(outputs: outputs, saved: saved, outputNode: graph.outputs[0])
    }

    /// The output layer's pre-activation (logits), when its activation can fuse with a loss.
    func logits(_ pass: Pass) -> (logits: Tensor, activation: Activation)? {
        let node = graph.nodes[pass.outputNode]
        if let dense = node.layer as? Dense, let z = pass.saved[pass.outputNode].first {
            return (z, dense.activation)
        }
        if let activation = node.layer as? ActivationLayer, let input = node.inputs.first {
            return (pass.outputs[input], activation.activation)
        }
        return nil
    }

    /// Back-propagates `outputGradient` (dLoss/dOutput, or dLoss/dLogits when `isPreActivation`),
    /// accumulating every parameter's gradient.
    public func backward(_ pass: Pass, outputGradient: Tensor, isPreActivation: Bool) throws {
        var gradients = [Tensor?](repeating: nil, count: graph.nodes.count)
        gradients[pass.outputNode] = outputGradient
        for index in stride(from: graph.nodes.count - 1, through: 0, by: -1) {
            guard let gradient = gradients[index] else { continue }
            let node = graph.nodes[index]
            guard let layer = node.layer as? DifferentiableLayer else { continue }
            let parameters = parameterIndex[ObjectIdentifier(node.layer)] ?? [:]
            let needsInputGradients = tracksInputGradient || node.inputs.contains { upstreamLearns[$0] }
            if !needsInputGradients && parameters.isEmpty { continue }
            let inputGradients = try layer.backward(
                gradient, isPreActivation: isPreActivation && index == pass.outputNode, needsInputGradients: needsInputGradients,
                inputs: node.inputs.map { pass.outputs[$0] }, output: pass.outputs[index], saved: pass.saved[index],
                accumulate: { name, values in parameters[name]?.accumulate(values) })
            for (input, inputGradient) in zip(node.inputs, inputGradients) where inputGradient.shape != [0] {
                if let existing = gradients[input] {
                    gradients[input] = Tensor(shape: existing.shape, scalars: zip(existing.scalars, inputGradient.scalars).map { $0 + $1 })
                } else {
                    gradients[input] = inputGradient
                }
            }
        }
    }
}
