import Foundation
import TLTensor

/// Keras `Rescaling` with one scale per channel (`Rescaling([s0, s1, s2])`), broadcast over the
/// last axis: `x[..., c] * scale[c] + offset`.
public final class ChannelRescaling: Layer {
    public let name: String
    /// One factor per channel.
    public let scale: [Float]
    /// Added after scaling.
    public let offset: Float

    /// Creates a per-channel rescaling.
    public init(name: String, scale: [Float], offset: Float = 0) {
        self.name = name
        self.scale = scale
        self.offset = offset
    }

    public func outputShape(inputShapes: [[Int]]) throws -> [Int] {
        guard let channels = inputShapes[0].last, channels == scale.count || channels < 0 else {
            throw EngineError.incompatibleShapes(layer: name, detail: "\(scale.count) scales for per-sample shape \(inputShapes[0])")
        }
        return inputShapes[0]
    }

    public func forward(_ inputs: [ActivationView], into output: MutableActivationView, scratch: UnsafeMutablePointer<Float>) {
        applyChannelAffine(inputs[0].data, output.data, count: output.count, multiplier: scale,
                           offset: [Float](repeating: offset, count: scale.count))
    }
}
