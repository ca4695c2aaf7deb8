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

/// Keras `ZeroPadding2D` (positive `(top, bottom), (left, right)`) and `Cropping2D` (the same
/// amounts removed).
public final class SpatialPadding: Layer {
    public let name: String
    /// `((top, bottom), (left, right))` cells added (padding) or removed (cropping).
    public let amounts: ((Int, Int), (Int, Int))
    /// True for `Cropping2D`.
    public let crops: Bool

    /// Creates a zero-padding (`crops == false`) or cropping layer.
    public init(name: String, amounts: ((Int, Int), (Int, Int)), crops: Bool = false) {
        self.name = name
        self.amounts = amounts
        self.crops = crops
    }

    public func outputShape(inputShapes: [[Int]]) throws -> [Int] {
        let input = inputShapes[0]
        guard input.count == 3 else {
            throw EngineError.incompatibleShapes(layer: name, detail: "needs a rank-4 NHWC input, got per-sample shape \(input)")
        }
        let sign = crops ? -1 : 1
        let rows = input[0] < 0 ? -1 : input[0] + sign * (amounts.0.0 + amounts.0.1)
        let columns = input[1] < 0 ? -1 : input[1] + sign * (amounts.1.0 + amounts.1.1)
        if (input[0] >= 0 && rows <= 0) || (input[1] >= 0 && columns <= 0) {
            throw EngineError.incompatibleShapes(layer: name, detail: "cropping \(input) leaves nothing")
        }
        return [rows, columns, input[2]]
    }

    public func forward(_ inputs: [ActivationView], into output: MutableActivationView, scratch: UnsafeMutablePointer<Float>) {
        let input = inputs[0]
        let (batch, height, width, channels) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
        let (outputHeight, outputWidth) = (output.shape[1], output.shape[2])
        if crops {
            let (top, left) = (amounts.0.0, amounts.1.0)
            for image in 0..<batch {
                for y in 0..<outputHeight {
                    let source = input.data + ((image * height + y + top) * width + left) * channels
                    (output.data + (image * outputHeight + y) * outputWidth * channels).update(from: source, count: outputWidth * channels)
                }
            }
        } else {
            output.data.update(repeating: 0, count: output.count)
            let (top, left) = (amounts.0.0, amounts.1.0)
            for image in 0..<batch {
                for y in 0..<height {
                    let destination = output.data + ((image * outputHeight + y + top) * outputWidth + left) * channels
                    destination.update(from: input.data + (image * height + y) * width * channels, count: width * channels)
                }
            }
        }
    }
}
