import Foundation
import TLTensor

/// The output of one graph node while a graph is being built.
public struct GraphTensor: Hashable, Sendable {
    /// Index of the node in the builder.
    public let node: Int
}

/// Builds a `Graph` call by call, inferring shapes as it goes, so architecture code reads like
/// the Keras functional API:
///
/// ```swift
/// let builder = GraphBuilder()
/// var x = builder.input(shape: [224, 224, 3], name: "input_1")
/// x = try builder.conv2D(x, filters: 32, kernelSize: 3, strides: 2, padding: .same, useBias: false, name: "Conv1")
/// x = try builder.batchNormalization(x, epsilon: 1e-3, name: "bn_Conv1")
/// x = try builder.relu(x, maxValue: 6, name: "Conv1_relu")
/// let graph = try builder.build(outputs: [x], name: "tiny")
/// ```
///
/// Layer names must be the Keras names: weights are looked up by them.
public final class GraphBuilder {
    private var nodes: [GraphNode] = []
    private var shapes: [[Int]] = []
    private var inputNodes: [Int] = []
    /// Nested-model names recorded on the nodes added next (for weight lookup of nested models).
    public var scope: [String] = []

    /// Creates an empty builder.
    public init() {}

    /// Adds a model input with per-sample `shape` (`-1` for a free dimension, e.g. `[-1, -1, 3]`).
    public func input(shape: [Int], name: String) -> GraphTensor {
        nodes.append(GraphNode(layer: InputLayer(name: name, shape: shape), inputs: [], scope: scope))
        shapes.append(shape)
        inputNodes.append(nodes.count - 1)
        return GraphTensor(node: nodes.count - 1)
    }

    /// Calls `layer` on `inputs` (a layer may be called more than once: its weights are shared).
    /// - Throws: `EngineError.incompatibleShapes` when the layer rejects the input shapes.
    @discardableResult
    public func apply(_ layer: any Layer, to inputs: [GraphTensor]) throws -> GraphTensor {
        let shape = try layer.outputShape(inputShapes: inputs.map { shapes[$0.node] })
        nodes.append(GraphNode(layer: layer, inputs: inputs.map(\.node), scope: scope))
        shapes.append(shape)
        return GraphTensor(node: nodes.count - 1)
    }

    /// The per-sample shape of `tensor` (`-1` where unknown).
    public func shape(of tensor: GraphTensor) -> [Int] { shapes[tensor.node] }

    /// The channel count (last dimension) of `tensor`.
    public func channels(of tensor: GraphTensor) -> Int { shapes[tensor.node].last ?? 0 }

    /// Finishes the graph.
    public func build(outputs: [GraphTensor], name: String) throws -> Graph {
        try Graph(name: name, nodes: nodes, inputs: inputNodes, outputs: outputs.map(\.node))
    }

    // MARK: - Keras layer shorthands

    /// Keras `Conv2D` with square kernel/strides/dilation.
    public func conv2D(_ x: GraphTensor, filters: Int, kernelSize: Int, strides: Int = 1, padding: Padding = .valid,
                       dilation: Int = 1, groups: Int = 1, useBias: Bool = true, activation: Activation = .linear,
                       name: String) throws -> GraphTensor {
        try apply(Conv2D(name: name, filters: filters, kernelSize: (kernelSize, kernelSize), strides: (strides, strides),
                         dilation: (dilation, dilation), padding: padding, groups: groups, useBias: useBias,
                         activation: activation), to: [x])
    }

    /// Keras `DepthwiseConv2D` with square kernel/strides.
    public func depthwiseConv2D(_ x: GraphTensor, kernelSize: Int, strides: Int = 1, padding: Padding = .valid,
                                depthMultiplier: Int = 1, dilation: Int = 1, useBias: Bool = true,
                                activation: Activation = .linear, name: String) throws -> GraphTensor {
        try apply(DepthwiseConv2D(name: name, kernelSize: (kernelSize, kernelSize), strides: (strides, strides),
                                  dilation: (dilation, dilation), padding: padding, depthMultiplier: depthMultiplier,
                                  useBias: useBias, activation: activation), to: [x])
    }

    /// Keras `SeparableConv2D` with square kernel/strides.
    public func separableConv2D(_ x: GraphTensor, filters: Int, kernelSize: Int, strides: Int = 1,
                                padding: Padding = .valid, depthMultiplier: Int = 1, useBias: Bool = true,
                                activation: Activation = .linear, name: String) throws -> GraphTensor {
        try apply(SeparableConv2D(name: name, filters: filters, kernelSize: (kernelSize, kernelSize),
                                  strides: (strides, strides), padding: padding, depthMultiplier: depthMultiplier,
                                  useBias: useBias, activation: activation), to: [x])
    }

    /// Keras `BatchNormalization` over channels.
    public func batchNormalization(_ x: GraphTensor, epsilon: Float = 1e-3, momentum: Float = 0.99, center: Bool = true,
                                   scale: Bool = true, name: String) throws -> GraphTensor {
        let layer = BatchNormalization(name: name, epsilon: epsilon, center: center, scale: scale)
        layer.momentum = momentum
        return try apply(layer, to: [x])
    }

    /// Keras `ReLU(max_value)` layer.
    public func relu(_ x: GraphTensor, maxValue: Float? = nil, name: String) throws -> GraphTensor {
        let activation: Activation = maxValue == 6 ? .relu6 : (maxValue == nil ? .relu : .clippedReLU(maxValue: maxValue, negativeSlope: 0, threshold: 0))
        return try apply(ActivationLayer(name: name, activation: activation), to: [x])
    }

    /// Keras `Activation(name)` layer.
    public func activation(_ x: GraphTensor, _ activation: Activation, name: String) throws -> GraphTensor {
        try apply(ActivationLayer(name: name, activation: activation), to: [x])
    }

    /// Keras `ZeroPadding2D(((top, bottom), (left, right)))`.
    public func zeroPadding2D(_ x: GraphTensor, _ amounts: ((Int, Int), (Int, Int)), name: String) throws -> GraphTensor {
        try apply(SpatialPadding(name: name, amounts: amounts), to: [x])
    }

    /// Keras `MaxPooling2D`.
    public func maxPooling2D(_ x: GraphTensor, poolSize: Int, strides: Int? = nil, padding: Padding = .valid,
                             name: String) throws -> GraphTensor {
        try apply(Pooling2D(name: name, kind: .max, poolSize: (poolSize, poolSize),
                            strides: strides.map { ($0, $0) }, padding: padding), to: [x])
    }

    /// Keras `AveragePooling2D`.
    public func averagePooling2D(_ x: GraphTensor, poolSize: Int, strides: Int? = nil, padding: Padding = .valid,
                                 name: String) throws -> GraphTensor {
        try apply(Pooling2D(name: name, kind: .average, poolSize: (poolSize, poolSize),
                            strides: strides.map { ($0, $0) }, padding: padding), to: [x])
    }

    /// Keras `GlobalAveragePooling2D`.
    public func globalAveragePooling2D(_ x: GraphTensor, keepDimensions: Bool = false, name: String) throws -> GraphTensor {
        try apply(GlobalPooling2D(name: name, kind: .average, keepDimensions: keepDimensions), to: [x])
    }

    /// Keras `GlobalMaxPooling2D`.
    public func globalMaxPooling2D(_ x: GraphTensor, keepDimensions: Bool = false, name: String) throws -> GraphTensor {
        try apply(GlobalPooling2D(name: name, kind: .max, keepDimensions: keepDimensions), to: [x])
    }

    /// Keras `Flatten`.
    public func flatten(_ x: GraphTensor, name: String) throws -> GraphTensor {
        try apply(IdentityLayer(name: name, kind: .flatten), to: [x])
    }

    /// Keras `Reshape(target_shape)`.
    public func reshape(_ x: GraphTensor, to shape: [Int], name: String) throws -> GraphTensor {
        try apply(IdentityLayer(name: name, kind: .reshape(shape)), to: [x])
    }

    /// Keras `Dropout` (identity at inference).
    public func dropout(_ x: GraphTensor, rate: Float = 0.2, name: String) throws -> GraphTensor {
        try apply(Dropout(name: name, rate: rate), to: [x])
    }

    /// Keras `Dense`.
    public func dense(_ x: GraphTensor, units: Int, useBias: Bool = true, activation: Activation = .linear,
                      name: String) throws -> GraphTensor {
        try apply(Dense(name: name, units: units, useBias: useBias, activation: activation), to: [x])
    }

    /// Keras `Add`.
    public func add(_ inputs: [GraphTensor], name: String) throws -> GraphTensor {
        try apply(ElementwiseMerge(name: name, operation: .add), to: inputs)
    }

    /// Keras `Multiply`.
    public func multiply(_ inputs: [GraphTensor], name: String) throws -> GraphTensor {
        try apply(ElementwiseMerge(name: name, operation: .multiply), to: inputs)
    }

    /// Keras `Concatenate(axis=-1)`.
    public func concatenate(_ inputs: [GraphTensor], axis: Int = -1, name: String) throws -> GraphTensor {
        try apply(Concatenate(name: name, axis: axis), to: inputs)
    }

    /// Keras `Rescaling`.
    public func rescaling(_ x: GraphTensor, scale: Float, offset: Float = 0, name: String) throws -> GraphTensor {
        try apply(Rescaling(name: name, scale: scale, offset: offset), to: [x])
    }
}
