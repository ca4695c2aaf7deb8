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

    /// Weights no optimizer touches: BatchNormalization's moving statistics (a training pass
    /// updates them itself) and an adapted Normalization's statistics.
    static let statisticNames: Set<String> = ["moving_mean", "moving_variance", "mean", "variance", "count"]

    /// Wraps `graph`; layers the Keras config saved as `trainable: false` start frozen, and layers
    /// of a nested model called with `training=False` run in inference mode.
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
                let parameter = Parameter(layer: layer, name: spec.name, isTrainable: !Self.statisticNames.contains(spec.name))
                parameters.append(parameter)
                index[ObjectIdentifier(layer), default: [:]][spec.name] = parameter
            }
        }
        self.parameters = parameters
        parameterIndex = index
        inferenceModeLayers = graph.inferenceModeLayerNames
        setTrainable(false, layers: graph.frozenLayerNames)
    }

    /// When set, every layer's forward and backward wall time is added to it.
    public var profile: TrainingProfile?

    /// Names of the layers whose weights are frozen (Keras `layer.trainable = False`).
    public private(set) var frozenLayers: Set<String> = []

    /// Freezes or unfreezes every weight of the named layers, as Keras' `layer.trainable`
    /// (statistics stay untrained either way). A frozen BatchNormalization runs in inference mode.
    public func setTrainable(_ trainable: Bool, layers names: Set<String>) {
        for parameter in parameters where names.contains(parameter.layer.name) && !Self.statisticNames.contains(parameter.name) {
            parameter.isTrainable = trainable
        }
        if trainable { frozenLayers.subtract(names) } else { frozenLayers.formUnion(names) }
    }

    /// Layers that run in inference mode even in a training pass: those of a base called with
    /// `training=False` (BatchNormalization on its moving statistics, Dropout off) while their
    /// weights may still learn.
    public var inferenceModeLayers: Set<String>

    /// The mode `layer` runs in during a pass in `mode`.
    func mode(of layer: any Layer, in mode: Mode) -> Mode {
        guard mode == .training else { return .inference }
        if inferenceModeLayers.contains(layer.name) { return .inference }
        if layer is BatchNormalization && frozenLayers.contains(layer.name) { return .inference }
        return .training
    }

    /// Per node: whether a trainable weight sits at or before it (only then does a gradient
    /// need to flow back to it).
    public var learnsUpstream: [Bool] {
        var learns = [Bool](repeating: false, count: graph.nodes.count)
        for (position, node) in graph.nodes.enumerated() {
            let own = parameterIndex[ObjectIdentifier(node.layer)]?.values.contains { $0.isTrainable } ?? false
            learns[position] = own || node.inputs.contains { learns[$0] }
        }
        return learns
    }

    /// The trainable parameters.
    public var trainableParameters: [Parameter] { parameters.filter(\.isTrainable) }

    /// Whether `backward` computes dLoss/dInput for the model input too (gradient checks); off
    /// by default, since nothing before the input learns.
    public var tracksInputGradient = false

    /// dLoss/dInput of the last ``backward(_:outputGradient:isPreActivation:)`` when
    /// ``tracksInputGradient`` is set (the first model input).
    public private(set) var inputGradient: Tensor?

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
        try forward([input], mode: mode, random: &random)
    }

    /// Runs the graph on one tensor per model input (in `graph.inputs` order), keeping every
    /// activation.
    public func forward(_ inputs: [Tensor], mode: Mode, random: inout SeededRandom) throws -> Pass {
        var outputs: [Tensor] = []
        var saved: [[Tensor]] = []
        outputs.reserveCapacity(graph.nodes.count)
        for (index, node) in graph.nodes.enumerated() {
            if node.layer is InputLayer {
                let position = graph.inputs.firstIndex(of: index) ?? 0
                guard position < inputs.count else { throw TrainingError(node.layer.name, "no tensor given for this model input") }
                outputs.append(inputs[position])
                saved.append([])
                continue
            }
            guard let layer = node.layer as? DifferentiableLayer else {
                throw TrainingError(node.layer.name, "no training forward pass")
            }
            let layerInputs = node.inputs.map { outputs[$0] }, layerMode = self.mode(of: layer, in: mode)
            let result = try profile.measure(layer.name) { try layer.trainingForward(layerInputs, mode: layerMode, random: &random) }
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
        let upstreamLearns = learnsUpstream
        for index in stride(from: graph.nodes.count - 1, through: 0, by: -1) {
            guard let gradient = gradients[index] else { continue }
            let node = graph.nodes[index]
            guard let layer = node.layer as? DifferentiableLayer else { continue }
            let parameters = (parameterIndex[ObjectIdentifier(node.layer)] ?? [:]).filter { $0.value.isTrainable }
            let needsInputGradients = tracksInputGradient || node.inputs.contains { upstreamLearns[$0] }
            if !needsInputGradients && parameters.isEmpty { continue }
            let inputGradients = try profile.measure(layer.name, backward: true) {
                try layer.backward(
                    gradient, isPreActivation: isPreActivation && index == pass.outputNode, needsInputGradients: needsInputGradients,
                    inputs: node.inputs.map { pass.outputs[$0] }, output: pass.outputs[index], saved: pass.saved[index],
                    accumulate: GradientSink(parameters: parameters))
            }
            for (input, inputGradient) in zip(node.inputs, inputGradients) where inputGradient.shape != [0] {
                if let existing = gradients[input] {
                    gradients[input] = Tensor(shape: existing.shape, scalars: zip(existing.scalars, inputGradient.scalars).map { $0 + $1 })
                } else {
                    gradients[input] = inputGradient
                }
            }
        }
        inputGradient = tracksInputGradient ? graph.inputs.first.flatMap { gradients[$0] } : nil
    }
}
