import Foundation
import TLEngine
import TLTensor

extension Dropout: DifferentiableLayer {
    /// In training, each value is kept with probability `1 - rate` and scaled by `1 / (1 - rate)`
    /// (Keras' inverted dropout); the mask, drawn from the seeded source, is kept.
    public func trainingForward(_ inputs: [Tensor], mode: Mode, random: inout SeededRandom) throws -> (output: Tensor, saved: [Tensor]) {
        guard mode == .training, rate > 0 else { return (inputs[0], []) }
        let scale = 1 / (1 - rate)
        var mask = [Float](repeating: 0, count: inputs[0].count)
        for index in mask.indices where random.unit() >= rate { mask[index] = scale }
        let output = zip(inputs[0].scalars, mask).map { $0 * $1 }
        return (Tensor(shape: inputs[0].shape, scalars: output), [Tensor(shape: inputs[0].shape, scalars: mask)])
    }

    public func backward(_ outputGradient: Tensor, isPreActivation: Bool, needsInputGradients: Bool, inputs: [Tensor], output: Tensor, saved: [Tensor],
                         accumulate: GradientSink) throws -> [Tensor] {
        guard let mask = saved.first else { return [outputGradient] }
        return [Tensor(shape: outputGradient.shape, scalars: zip(outputGradient.scalars, mask.scalars).map { $0 * $1 })]
    }
}

extension IdentityLayer: DifferentiableLayer {
    public func backward(_ outputGradient: Tensor, isPreActivation: Bool, needsInputGradients: Bool, inputs: [Tensor], output: Tensor, saved: [Tensor],
                         accumulate: GradientSink) throws -> [Tensor] {
        [outputGradient.reshaped(inputs[0].shape)]
    }
}
