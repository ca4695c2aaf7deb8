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
                         accumulate: (String, [Float]) -> Void) throws -> [Tensor] {
        guard let mask = saved.first else { return [outputGradient] }
        return [Tensor(shape: outputGradient.shape, scalars: zip(outputGradient.scalars, mask.scalars).map { $0 * $1 })]
    }
}

extension IdentityLayer: DifferentiableLayer {
    /// Flatten, Reshape and pass-through layers move no values: the gradient takes the input's shape.
    public func trainingForward(_ inputs: [Tensor], mode: Mode, random: inout SeededRandom) throws -> (output: Tensor, saved: [Tensor]) {
        (try inferenceForward(inputs), [])
    }

    public func backward(_ outputGradient: Tensor, isPreActivation: Bool, needsInputGradients: Bool, inputs: [Tensor], output: Tensor, saved: [Tensor],
                         accumulate: (String, [Float]) -> Void) throws -> [Tensor] {
        [outputGradient.reshaped(inputs[0].shape)]
    }
}

extension GlobalPooling2D: DifferentiableLayer {
    public func trainingForward(_ inputs: [Tensor], mode: Mode, random: inout SeededRandom) throws -> (output: Tensor, saved: [Tensor]) {
        (try inferenceForward(inputs), [])
    }

    /// Average: the gradient spread evenly over the pixels; max: all of it to the (first) largest.
    public func backward(_ outputGradient: Tensor, isPreActivation: Bool, needsInputGradients: Bool, inputs: [Tensor], output: Tensor, saved: [Tensor],
                         accumulate: (String, [Float]) -> Void) throws -> [Tensor] {
        let input = inputs[0]
        let (batch, pixels, channels) = (input.shape[0], input.shape[1] * input.shape[2], input.shape[3])
        var result = [Float](repeating: 0, count: input.count)
        for image in 0..<batch {
            for c in 0..<channels {
                let g = outputGradient.scalars[image * channels + c]
                if kind == .average {
                    let share = g / Float(pixels)
                    for p in 0..<pixels { result[(image * pixels + p) * channels + c] = share }
                } else {
                    let best = output.scalars[image * channels + c]
                    if let p = (0..<pixels).first(where: { input.scalars[(image * pixels + $0) * channels + c] == best }) {
                        result[(image * pixels + p) * channels + c] = g
                    }
                }
            }
        }
        return [Tensor(shape: input.shape, scalars: result)]
    }
}
