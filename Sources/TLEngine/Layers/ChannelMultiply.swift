import Foundation
import TLTensor

/// Keras `Multiply` of a feature map by per-image channel weights, as squeeze-and-excite blocks
/// call it: `[N, H, W, C] × [N, 1, 1, C]` (or `[N, C]`) broadcast over height and width.
///
/// The first input is the feature map, the second the channel weights; Keras' own broadcasting
/// accepts them in either order, and so does this layer.
public final class ChannelMultiply: Layer {
    public let name: String

    /// Creates a broadcasting multiply.
    public init(name: String) {
        self.name = name
    }

    /// Which input is the full map (the other holds one value per channel).
    private static func mapIndex(_ shapes: [[Int]]) -> Int {
        shapes[0].count == 3 && (shapes[0][0] != 1 || shapes[0][1] != 1) ? 0 : 1
    }

    public func outputShape(inputShapes: [[Int]]) throws -> [Int] {
        guard inputShapes.count == 2 else {
            throw EngineError.incompatibleShapes(layer: name, detail: "a channel multiply needs exactly two inputs")
        }
        let map = inputShapes[Self.mapIndex(inputShapes)], weights = inputShapes[1 - Self.mapIndex(inputShapes)]
        let weightChannels = weights.last ?? 0
        let broadcastable = weights.count == 1 || (weights.count == 3 && weights[0] == 1 && weights[1] == 1)
        guard map.count == 3, broadcastable, weightChannels == map[2] || map[2] < 0 else {
            throw EngineError.incompatibleShapes(layer: name, detail: "cannot broadcast \(weights) over \(map) channel-wise")
        }
        return map
    }

    public func forward(_ inputs: [ActivationView], into output: MutableActivationView, scratch: UnsafeMutablePointer<Float>) {
        let index = Self.mapIndex(inputs.map { Array($0.shape.dropFirst()) })
        let map = inputs[index], weights = inputs[1 - index]
        let (batch, channels) = (map.shape[0], map.shape[3])
        let pixels = map.shape[1] * map.shape[2]
        parallelChunks(batch * pixels, work: map.count) { range in
            for row in range {
                let scale = weights.data + (row / pixels) * channels
                let source = map.data + row * channels, destination = output.data + row * channels
                for c in 0..<channels { destination[c] = source[c] * scale[c] }
            }
        }
    }
}

/// Keras `Multiply` as a model config describes it: element-wise over equal shapes, or the
/// squeeze-excite broadcast of `[H, W, C]` by `[1, 1, C]` (EfficientNet's `se_excite`).
public final class BroadcastingMultiply: Layer {
    public let name: String
    private let elementwise: ElementwiseMerge
    private let channelwise: ChannelMultiply

    /// Creates a multiply that picks its kernel from the input shapes.
    public init(name: String) {
        self.name = name
        elementwise = ElementwiseMerge(name: name, operation: .multiply)
        channelwise = ChannelMultiply(name: name)
    }

    private static func isElementwise(_ shapes: [[Int]]) -> Bool { shapes.allSatisfy { $0 == shapes.first } }

    public func outputShape(inputShapes: [[Int]]) throws -> [Int] {
        Self.isElementwise(inputShapes) ? try elementwise.outputShape(inputShapes: inputShapes)
                                        : try channelwise.outputShape(inputShapes: inputShapes)
    }

    public func forward(_ inputs: [ActivationView], into output: MutableActivationView, scratch: UnsafeMutablePointer<Float>) {
        if Self.isElementwise(inputs.map(\.shape)) {
            elementwise.forward(inputs, into: output, scratch: scratch)
        } else {
            channelwise.forward(inputs, into: output, scratch: scratch)
        }
    }
}
