import Foundation
import TLTensor

/// The graph's entry point (Keras `InputLayer`): its per-sample shape, `-1` for a free dimension.
public final class InputLayer: Layer {
    public let name: String
    /// Per-sample shape; `-1` where any size is accepted.
    public let shape: [Int]

    /// Creates an input.
    public init(name: String, shape: [Int]) {
        self.name = name
        self.shape = shape
    }

    public func outputShape(inputShapes: [[Int]]) throws -> [Int] { shape }
    public var isIdentity: Bool { true }
    public func forward(_ inputs: [ActivationView], into output: MutableActivationView, scratch: UnsafeMutablePointer<Float>) {}
}

/// Layers whose output is their input's data: `Dropout` and friends at inference, `Flatten`, `Reshape`.
public final class IdentityLayer: Layer {
    /// What happens to the shape.
    public enum Kind: Sendable, Equatable {
        /// Shape unchanged (Dropout, SpatialDropout2D, GaussianNoise, …).
        case passThrough
        /// Per-sample shape flattened to one dimension.
        case flatten
        /// Keras `Reshape(target_shape)`; one `-1` is inferred.
        case reshape([Int])
    }

    public let name: String
    /// The shape change.
    public let kind: Kind

    /// Creates an identity-data layer.
    public init(name: String, kind: Kind) {
        self.name = name
        self.kind = kind
    }

    public func outputShape(inputShapes: [[Int]]) throws -> [Int] {
        let input = inputShapes[0]
        let known = input.allSatisfy { $0 >= 0 }
        switch kind {
        case .passThrough:
            return input
        case .flatten:
            return [known ? input.reduce(1, *) : -1]
        case .reshape(let target):
            guard known else { return target.map { $0 } }
            let total = input.reduce(1, *)
            let fixed = target.filter { $0 >= 0 }.reduce(1, *)
            let result = target.map { $0 < 0 ? (fixed == 0 ? 0 : total / fixed) : $0 }
            guard result.reduce(1, *) == total else {
                throw EngineError.incompatibleShapes(layer: name, detail: "cannot reshape \(input) to \(target)")
            }
            return result
        }
    }

    public var isIdentity: Bool { true }
    public func forward(_ inputs: [ActivationView], into output: MutableActivationView, scratch: UnsafeMutablePointer<Float>) {}
}
