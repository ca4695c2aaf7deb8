import Foundation
import TLTensor

extension Graph {
    /// The same function with inference-time rewrites: pass-through nodes (inference `Dropout`)
    /// are dropped, each ZeroPadding2D read only by a `valid` convolution becomes that
    /// convolution's zero border, each BatchNormalization that is the only
    /// reader of a convolution is folded into the convolution's kernel and bias, and each
    /// activation layer that is the only reader of a convolution, dense or merge layer is applied inside
    /// it, and each two-input `Add` of a convolution's result and an earlier tensor of the same shape
    /// becomes part of that convolution (the sum is made in the GEMM's epilogue: MobileNetV2's
    /// `block_N_add`, ResNet's `*_add` + `*_out`). Finally each 1×1 → depthwise → 1×1 chain
    /// (or stem k×k → depthwise → 1×1) becomes one `InvertedResidual` layer that streams rows
    /// through the cache, and so does each remaining 1×1 (or stem) → depthwise pair (EfficientNet's
    /// and MobileNetV3's blocks with squeeze-and-excitation), and each squeeze-and-excitation
    /// `Multiply` read only by a 1×1 convolution becomes part of it. The original
    /// graph (and its layers) is left untouched as the reference.
    ///
    /// Folding: `kernel'[…, o] = kernel[…, o] · γ[o] / √(var[o] + ε)`,
    /// `bias'[o] = (bias[o] − mean[o]) · γ[o] / √(var[o] + ε) + β[o]`.
    /// - Parameter rowStreamingBytes: an `InvertedResidual` whose expanded tensor per image has at
    ///   least this many bytes streams rows (the default, 256 KB, is half an L2); smaller ones run
    ///   their three layers in turn. Tests pass 0 to exercise streaming on small models.
    public func fused(rowStreamingBytes: Int = 256 * 1024) throws -> Graph {
        try withoutPassThroughs().mergingLayers(rowStreamingBytes: rowStreamingBytes)
    }

    /// The graph without its single-input identity nodes that keep their input's shape (inference
    /// `Dropout`; EfficientNet's `blockNx_drop` stood between each projection and its residual
    /// `Add`, which therefore did not merge into the projection).
    private func withoutPassThroughs() throws -> Graph {
        let outputSet = Set(outputs)
        func passThrough(_ index: Int) -> Bool {
            let node = nodes[index]
            return node.layer.isIdentity && node.inputs.count == 1 && shapes[node.inputs[0]] == shapes[index]
                && !outputSet.contains(index) && !inputs.contains(index)
        }
        let aliases = Dictionary(uniqueKeysWithValues: nodes.indices.filter(passThrough).map { ($0, nodes[$0].inputs[0]) })
        return aliases.isEmpty ? self : try rewritten(aliases: aliases)
    }

    /// A copy rewritten node by node: a node in `aliases` is left out and its readers read the
    /// earlier node it names; one in `dropped` is left out (read only by nodes a replacement
    /// absorbs); each other node becomes `replacement(index, remap)`, or stays as it is when that
    /// is nil, with `remap` giving a kept node's position in the copy.
    private func rewritten(aliases: [Int: Int] = [:], dropped: Set<Int> = [],
                           replacing replacement: (_ index: Int, _ remap: (Int) -> Int) -> GraphNode? = { _, _ in nil }) throws -> Graph {
        var result: [GraphNode] = []
        var remap = [Int](repeating: -1, count: nodes.count)
        for (index, node) in nodes.enumerated() {
            if let alias = aliases[index] {
                remap[index] = remap[alias]
                continue
            }
            if dropped.contains(index) { continue }
            let kept = replacement(index) { remap[$0] }
                ?? GraphNode(layer: node.layer, inputs: node.inputs.map { remap[$0] }, scope: node.scope)
            remap[index] = result.count
            result.append(kept)
        }
        return try Graph(name: name, nodes: result, inputs: inputs.map { remap[$0] }, outputs: outputs.map { remap[$0] })
    }

    /// `fused()` once the pass-through nodes are gone.
    private func mergingLayers(rowStreamingBytes: Int) throws -> Graph {
        let usage = Usage(self)

        var result: [GraphNode] = []
        var remap = [Int](repeating: -1, count: nodes.count)
        for (index, node) in nodes.enumerated() {
            if let source = node.inputs.first, node.inputs.count == 1, usage.readers[source] == 1, !usage.outputs.contains(source),
               usage.calls(node.layer) == 1, usage.calls(nodes[source].layer) == 1 {
                let target = remap[source]
                let producer = result[target]
                if let replacement = Self.merge(producer.layer, with: node.layer) {
                    result[target] = GraphNode(layer: replacement, inputs: producer.inputs, scope: producer.scope)
                    remap[index] = target
                    continue
                }
            }
            remap[index] = result.count
            result.append(GraphNode(layer: node.layer, inputs: node.inputs.map { remap[$0] }, scope: node.scope))
        }
        return try Graph(name: name, nodes: result, inputs: inputs.map { remap[$0] }, outputs: outputs.map { remap[$0] })
            .fusingResidualAdds()
            .fusingInvertedResiduals(rowStreamingBytes: rowStreamingBytes)
            .fusingInputScales()
    }

    /// Each two-input `Multiply` of a tensor and a per-image channel vector (`[1, 1, C]`: the
    /// squeeze-and-excitation scale of EfficientNet and MobileNetV3) read only by a 1×1
    /// convolution, merged into that convolution (`Conv2D.scalesInput`, the scale its last
    /// input): the convolution scales its input rows as it reads them, so the scaled tensor is
    /// never written and read back. EfficientNetB0 spends about a tenth of a batch of 32 in
    /// those multiplies.
    private func fusingInputScales() throws -> Graph {
        let usage = Usage(self)
        // convolution node → (multiply node, its tensor input, its scale input)
        var fusions: [Int: (multiply: Int, tensor: Int, scale: Int)] = [:]
        for (index, node) in nodes.enumerated() {
            guard let conv = node.layer as? Conv2D, conv.isPointwise, !conv.scalesInput, usage.calls(conv) == 1,
                  let source = node.inputs.first, let multiply = nodes[source].layer as? ElementwiseMerge,
                  multiply.operation == .multiply, multiply.activation.isLinear, nodes[source].inputs.count == 2,
                  usage.isPrivate(source), shapes[source].count == 3, let channels = shapes[source].last else { continue }
            let (first, second) = (nodes[source].inputs[0], nodes[source].inputs[1])
            for (tensor, scale) in [(first, second), (second, first)]
            where shapes[tensor] == shapes[source] && shapes[scale] == [1, 1, channels] {
                fusions[index] = (source, tensor, scale)
                break
            }
        }
        if fusions.isEmpty { return self }
        return try rewritten(dropped: Set(fusions.values.map(\.multiply))) { index, remap in
            guard let fusion = fusions[index], let conv = nodes[index].layer as? Conv2D else { return nil }
            let merged = conv.copy(kernel: conv.kernel, bias: conv.bias, activation: conv.activation)
            merged.scalesInput = true
            let inputs = [remap(fusion.tensor)] + nodes[index].inputs.dropFirst().map(remap) + [remap(fusion.scale)]
            return GraphNode(layer: merged, inputs: inputs, scope: nodes[index].scope)
        }
    }

    /// Each depthwise convolution (multiplier 1) read only by a 1×1 convolution, with the 1×1
    /// convolution (or direct-path k×k one) before it when that is its only source, joined into one `InvertedResidual`
    /// placed where the last 1×1 convolution was (every input of the chain is computed by then).
    /// Then each other depthwise convolution whose input is such an expansion read by it alone
    /// joins it in an `InvertedResidual` without a projection, placed where the depthwise one was
    /// (EfficientNet's expansions, whose depthwise output the squeeze-and-excitation also reads).
    private func fusingInvertedResiduals(rowStreamingBytes: Int) throws -> Graph {
        let usage = Usage(self)
        // project node → (expand node or nil, depthwise node)
        var chains: [Int: (expand: Int?, depthwise: Int)] = [:]
        var absorbed = Set<Int>()
        /// The node before depthwise node `index` when it can stream rows into it.
        func expansion(before index: Int) -> Int? {
            guard let candidate = nodes[index].inputs.first, let expandLayer = nodes[candidate].layer as? Conv2D,
                  expandLayer.isPointwise || expandLayer.usesDirect,
                  !expandLayer.addsResidual, expandLayer.activation != .softmax, usage.isPrivate(candidate),
                  !absorbed.contains(candidate), nodes[candidate].inputs.count == 1 else { return nil }
            return candidate
        }
        for (index, node) in nodes.enumerated() {
            guard let depthwise = node.layer as? DepthwiseConv2D, depthwise.depthMultiplier == 1, usage.isPrivate(index),
                  node.inputs.count == 1, !absorbed.contains(index) else { continue }
            let project = usage.lastReader[index]
            guard let projectLayer = nodes[project].layer as? Conv2D, projectLayer.isPointwise,
                  nodes[project].inputs.first == index, usage.calls(projectLayer) == 1 else { continue }
            // A k×k expansion by the direct path (MobileNetV2's stem) streams its rows as well.
            let expand = expansion(before: index)
            if let expand { absorbed.insert(expand) }
            absorbed.insert(index)
            absorbed.insert(project)
            chains[project] = (expand, index)
        }
        // depthwise node → expand node, for the chains without a projection
        var openChains: [Int: Int] = [:]
        for (index, node) in nodes.enumerated() {
            guard let depthwise = node.layer as? DepthwiseConv2D, depthwise.depthMultiplier == 1, node.inputs.count == 1,
                  usage.calls(depthwise) == 1, !absorbed.contains(index), let expand = expansion(before: index) else { continue }
            absorbed.insert(expand)
            absorbed.insert(index)
            openChains[index] = expand
        }
        if chains.isEmpty && openChains.isEmpty { return self }
        let inner = Set(chains.values.flatMap { [$0.depthwise] + ($0.expand.map { [$0] } ?? []) } + openChains.values)
        return try rewritten(dropped: inner) { index, remap in
            let node = nodes[index]
            if let chain = chains[index], let project = node.layer as? Conv2D,
               let depthwise = nodes[chain.depthwise].layer as? DepthwiseConv2D {
                let expand = chain.expand.map { nodes[$0].layer as? Conv2D } ?? nil
                let first = chain.expand ?? chain.depthwise
                let block = InvertedResidual(expand: expand, depthwise: depthwise, project: project,
                                             rowStreamingBytes: rowStreamingBytes)
                return GraphNode(layer: block, inputs: nodes[first].inputs.map(remap) + node.inputs.dropFirst().map(remap),
                                 scope: node.scope)
            }
            if let expand = openChains[index], let expandLayer = nodes[expand].layer as? Conv2D,
               let depthwise = node.layer as? DepthwiseConv2D {
                let block = InvertedResidual(expand: expandLayer, depthwise: depthwise, project: nil,
                                             rowStreamingBytes: rowStreamingBytes)
                return GraphNode(layer: block, inputs: nodes[expand].inputs.map(remap), scope: node.scope)
            }
            return nil
        }
    }

    /// Each `Add` of exactly two equal-shaped inputs, one of them a linear, unshared convolution
    /// read only by the add and the other computed before that convolution, merged into the
    /// convolution as a residual input (the add's activation becomes the convolution's).
    private func fusingResidualAdds() throws -> Graph {
        let usage = Usage(self)
        // convolution node → (add node, residual node)
        var fusions: [Int: (add: Int, residual: Int)] = [:]
        for (index, node) in nodes.enumerated() {
            guard let add = node.layer as? ElementwiseMerge, add.operation == .add, node.inputs.count == 2,
                  usage.calls(add) == 1, add.activation != .softmax else { continue }
            for (convolution, residual) in [(node.inputs[0], node.inputs[1]), (node.inputs[1], node.inputs[0])] {
                guard let conv = nodes[convolution].layer as? Conv2D, conv.activation.isLinear, !conv.addsResidual,
                      usage.readers[convolution] == 1, !usage.outputs.contains(convolution), residual < convolution,
                      usage.calls(conv) == 1, shapes[convolution] == shapes[residual],
                      fusions[convolution] == nil else { continue }
                fusions[convolution] = (index, residual)
                break
            }
        }
        if fusions.isEmpty { return self }
        // Readers of an add read the convolution it became part of.
        let fusedAdds = Dictionary(uniqueKeysWithValues: fusions.map { ($0.value.add, $0.key) })
        return try rewritten(aliases: fusedAdds) { index, remap in
            guard let fusion = fusions[index], let conv = nodes[index].layer as? Conv2D,
                  let add = nodes[fusion.add].layer as? ElementwiseMerge else { return nil }
            let merged = conv.copy(kernel: conv.kernel, bias: conv.bias, activation: add.activation)
            merged.addsResidual = true
            return GraphNode(layer: merged, inputs: nodes[index].inputs.map(remap) + [remap(fusion.residual)], scope: nodes[index].scope)
        }
    }

    /// `producer` followed by `consumer` as one layer, or nil when they do not combine.
    private static func merge(_ producer: any Layer, with consumer: any Layer) -> (any Layer)? {
        if let pad = producer as? SpatialPadding, !pad.crops {
            // Zero padding before a `valid` window becomes the window's own zero border.
            if let conv = consumer as? Conv2D, conv.padding == .valid, conv.extraPadding.0 == (0, 0) && conv.extraPadding.1 == (0, 0) {
                let merged = conv.copy(kernel: conv.kernel, bias: conv.bias, activation: conv.activation)
                merged.extraPadding = pad.amounts
                return merged
            }
            if let depthwise = consumer as? DepthwiseConv2D, depthwise.padding == .valid,
               depthwise.extraPadding.0 == (0, 0) && depthwise.extraPadding.1 == (0, 0) {
                let merged = depthwise.copy(kernel: depthwise.kernel, bias: depthwise.bias, activation: depthwise.activation)
                merged.extraPadding = pad.amounts
                return merged
            }
            return nil
        }
        if let batchNorm = consumer as? BatchNormalization {
            if let conv = producer as? Conv2D, conv.activation.isLinear {
                let (kernel, bias) = fold(kernel: conv.kernel, bias: conv.bias, into: batchNorm)
                return conv.copy(kernel: kernel, bias: bias, activation: .linear)
            }
            if let depthwise = producer as? DepthwiseConv2D, depthwise.activation.isLinear {
                let (kernel, bias) = fold(kernel: depthwise.kernel, bias: depthwise.bias, into: batchNorm)
                return depthwise.copy(kernel: kernel, bias: bias, activation: .linear)
            }
            return nil
        }
        if let activationLayer = consumer as? ActivationLayer {
            let activation = activationLayer.activation
            if let conv = producer as? Conv2D, conv.activation.isLinear, activation != .softmax {
                return conv.copy(kernel: conv.kernel, bias: conv.bias, activation: activation)
            }
            if let depthwise = producer as? DepthwiseConv2D, depthwise.activation.isLinear, activation != .softmax {
                return depthwise.copy(kernel: depthwise.kernel, bias: depthwise.bias, activation: activation)
            }
            if let dense = producer as? Dense, dense.activation.isLinear {
                return dense.copy(activation: activation)
            }
            if let merge = producer as? ElementwiseMerge, merge.activation.isLinear, activation != .softmax {
                return merge.copy(activation: activation)
            }
        }
        return nil
    }

    /// Scales a kernel whose flattened last axis is the output channel, and derives the bias.
    private static func fold(kernel: Tensor, bias: Tensor?, into batchNorm: BatchNormalization) -> (Tensor, Tensor) {
        let multiplier = batchNorm.multiplier, offset = batchNorm.offset
        let channels = multiplier.count
        var scalars = kernel.scalars
        // Output channels are the kernel's last axis: scale each row of `channels` values.
        scalars.withUnsafeMutableBufferPointer { values in
            multiplier.withUnsafeBufferPointer { multiplier in
                for row in stride(from: 0, to: values.count, by: channels) {
                    for c in 0..<channels { values[row + c] *= multiplier[c] }
                }
            }
        }
        let newBias = (0..<channels).map { c in (bias?.scalars[c] ?? 0) * multiplier[c] + offset[c] }
        return (Tensor(shape: kernel.shape, scalars: scalars), Tensor(shape: [channels], scalars: newBias))
    }
}

/// How a graph's node outputs and layers are used, which decides what may merge: a node can be
/// folded into its reader only if nothing else reads it and its layer runs nowhere else.
private struct Usage {
    /// Per node: how many nodes read its output.
    let readers: [Int]
    /// Per node: the last node reading its output (-1 for none).
    let lastReader: [Int]
    /// Graph outputs, which must stay nodes of their own.
    let outputs: Set<Int>
    private let layerCalls: [ObjectIdentifier: Int]
    private let nodes: [GraphNode]

    init(_ graph: Graph) {
        var readers = [Int](repeating: 0, count: graph.nodes.count)
        var lastReader = [Int](repeating: -1, count: graph.nodes.count)
        var layerCalls: [ObjectIdentifier: Int] = [:]
        for (index, node) in graph.nodes.enumerated() {
            layerCalls[ObjectIdentifier(node.layer), default: 0] += 1
            for input in node.inputs { readers[input] += 1; lastReader[input] = index }
        }
        (self.readers, self.lastReader, self.layerCalls) = (readers, lastReader, layerCalls)
        outputs = Set(graph.outputs)
        nodes = graph.nodes
    }

    /// How many nodes run `layer` (shared layers run more than once).
    func calls(_ layer: any Layer) -> Int { layerCalls[ObjectIdentifier(layer)] ?? 0 }

    /// Whether node `index` is read by exactly one node, is no graph output and runs an unshared layer.
    func isPrivate(_ index: Int) -> Bool {
        readers[index] == 1 && !outputs.contains(index) && calls(nodes[index].layer) == 1
    }
}
