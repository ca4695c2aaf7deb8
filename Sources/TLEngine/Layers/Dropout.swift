import Foundation
import TLTensor

/// Keras `Dropout(rate)`: the identity at inference; in training (TLTraining) each value is
/// zeroed with probability `rate` and the others scaled by `1 / (1 - rate)`.
public final class Dropout: Layer {
    public let name: String
    /// The fraction of values dropped in training, in `[0, 1)`.
    public let rate: Float

    /// Creates a dropout layer.
    public init(name: String, rate: Float) {
        self.name = name
        self.rate = rate
    }

    public func outputShape(inputShapes: [[Int]]) throws -> [Int] { inputShapes[0] }
    public var isIdentity: Bool { true }
    public func forward(_ inputs: [ActivationView], into output: MutableActivationView, scratch: UnsafeMutablePointer<Float>) {}
}
