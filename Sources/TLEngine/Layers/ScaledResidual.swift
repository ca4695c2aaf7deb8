import Foundation
import TLTensor

/// InceptionResNetV2's scaled residual: `output = inputs[0] + scale · inputs[1]` over two inputs of
/// equal shape (Keras 3 and tf.keras' `CustomScaleLayer`; a `Lambda` in older Keras).
public final class ScaledResidual: Layer {
    public let name: String
    /// Factor applied to the second input (the residual branch).
    public let scale: Float

    /// Creates the layer.
    public init(name: String, scale: Float) {
        self.name = name
        self.scale = scale
    }

    public func outputShape(inputShapes: [[Int]]) throws -> [Int] {
        guard inputShapes.count == 2, inputShapes[0] == inputShapes[1] else {
            throw EngineError.incompatibleShapes(layer: name, detail: "a scaled residual needs two inputs of one shape, got \(inputShapes)")
        }
        return inputShapes[0]
    }

    public func forward(_ inputs: [ActivationView], into output: MutableActivationView, scratch: UnsafeMutablePointer<Float>) {
        let shortcut = inputs[0].data, residual = inputs[1].data, result = output.data
        let scale = self.scale
        parallelChunks(output.count, work: output.count) { range in
            for i in range { result[i] = shortcut[i] + residual[i] * scale }
        }
    }
}
