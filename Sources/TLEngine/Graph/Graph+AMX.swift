import Foundation
import TLTensor

/// What the AMX check (`Graph.choosingAMX`) found for one planned graph.
public struct AMXCheck: Sendable, Equatable {
    /// Convolutions whose GEMMs could take AMX.
    public let convolutions: Int
    /// The largest difference between the AMX and the fp32 outputs for the checked sample, as
    /// a fraction of the largest fp32 output (NaN when one side overflowed).
    public let difference: Float
    /// Whether those convolutions run on AMX: `difference` within `tolerance`.
    public let chosen: Bool

    /// The worst difference the check allows between a pass with AMX GEMMs and the fp32 one, as a
    /// fraction of the largest fp32 output: under a third of the 1e-4 the parity tests hold to
    /// Keras. On `tlhub bench`'s noise in [-1, 1] the zoo's five workhorses differ by 6e-6
    /// (MobileNetV2, VGG16, InceptionV3) to 1.1e-5 (ResNet50, EfficientNetB0).
    public static let tolerance: Float = 3e-5
}

extension Graph {
    /// The convolutions this graph runs (at its top level and inside `InvertedResidual` blocks)
    /// whose GEMMs AMX can take (`Conv2D.takesAMX`), leaving out layers of `original`: a flag set
    /// on those would change the graph `fused()` was made from.
    func amxConvolutions(apartFrom original: Graph) -> [Conv2D] {
        let originals = Set(original.uniqueLayers.map { ObjectIdentifier($0.layer) })
        return uniqueLayers.flatMap { entry -> [Conv2D] in
            if let block = entry.layer as? InvertedResidual { return [block.expand, block.project].compactMap { $0 } }
            return (entry.layer as? Conv2D).map { [$0] } ?? []
        }.filter { $0.takesAMX && !originals.contains(ObjectIdentifier($0)) }
    }

    /// The same graph with each top-level convolution that is a layer of `original` (one
    /// `fused()` had nothing to fold into: VGG16's) replaced by a copy of its own, one copy per
    /// shared layer, so `amxConvolutions(apartFrom:)` finds it. The copies share the weights'
    /// storage; they pack their own panels.
    func owningConvolutions(apartFrom original: Graph) throws -> Graph {
        let originals = Set(original.uniqueLayers.map { ObjectIdentifier($0.layer) })
        var copies: [ObjectIdentifier: Conv2D] = [:]
        let owned = nodes.map { node -> GraphNode in
            guard let conv = node.layer as? Conv2D, conv.takesAMX, originals.contains(ObjectIdentifier(conv)) else { return node }
            let copy = copies[ObjectIdentifier(conv)] ?? conv.copy(kernel: conv.kernel, bias: conv.bias, activation: conv.activation)
            copies[ObjectIdentifier(conv)] = copy
            return GraphNode(layer: copy, inputs: node.inputs, scope: node.scope)
        }
        return copies.isEmpty ? self : try Graph(name: name, nodes: owned, inputs: inputs, outputs: outputs)
    }

    /// Puts `convolutions` (this graph's, from `amxConvolutions(apartFrom:)`) on AMX when that
    /// keeps `executor`'s outputs for `sample` within `AMXCheck.tolerance` of the fp32 pass, and leaves
    /// them on fp32 otherwise: through a deep network with large folded BatchNorm gains the three
    /// bfloat16 products' few 1e-6 per layer can add up past what fp32 keeps (a TF Hub
    /// MobileNetV2 with randomized BatchNorm statistics lands 8e-5 to 2e-3 of its largest feature
    /// away; the keras.applications zoo 5e-6 to 1.2e-5). The check costs two passes over `sample`.
    /// - Parameters:
    ///   - executor: planned for this graph, a batch of one.
    ///   - sample: one input, `executor`'s shape.
    /// - Returns: the outputs for `sample` as the graph now computes them, and what the check found.
    func choosingAMX(for convolutions: [Conv2D], executor: GraphExecutor, sample: Tensor) throws -> (outputs: [Tensor], check: AMXCheck) {
        convolutions.forEach { $0.allowsAMX = false }
        let reference = try executor.run([sample])
        convolutions.forEach { $0.allowsAMX = true }
        let tiles = try executor.run([sample])
        var largest: Float = 0, worst: Float = 0
        for (exact, approximate) in zip(reference, tiles) {
            for (x, y) in zip(exact.scalars, approximate.scalars) {
                largest = max(largest, abs(x))
                let difference = abs(x - y)
                if !(difference <= worst) { worst = difference }  // a NaN stays, and fails the check
            }
        }
        let difference = largest > 0 ? worst / largest : worst
        let chosen = worst <= AMXCheck.tolerance * largest
        convolutions.forEach { $0.allowsAMX = chosen }
        return (chosen ? tiles : reference, AMXCheck(convolutions: convolutions.count, difference: difference, chosen: chosen))
    }
}
