import Foundation
import TLEngine
import TLTensor

extension ElementwiseMerge: DifferentiableLayer {
    public func trainingForward(_ inputs: [Tensor], mode: Mode, random: inout SeededRandom) throws -> (output: Tensor, saved: [Tensor]) {
        guard activation == .linear else { throw TrainingError(name, "a merge with a fused activation cannot be trained (train the unfused graph)") }
        return (try inferenceForward(inputs), [])
    }

    /// Add/average spread the gradient to every input, subtract negates the second, multiply
    /// scales by the other inputs, maximum/minimum send it to the first input holding the result
    /// (as TensorFlow does). An input broadcast over the pixels (`[N, 1, 1, C]`, squeeze-excite's
    /// gate) receives the sum over the pixels it was repeated to.
    public func backward(_ outputGradient: Tensor, isPreActivation: Bool, needsInputGradients: Bool, inputs: [Tensor], output: Tensor, saved: [Tensor],
                         accumulate: GradientSink) throws -> [Tensor] {
        let g = outputGradient.scalars
        let channels = output.shape.last ?? 1
        let perImage = output.count / max(output.shape[0], 1)
        /// Index into `input` of output element `i`.
        func source(_ input: Tensor, _ i: Int) -> Int {
            input.count == output.count ? i : (i / perImage) * channels + i % channels
        }
        return inputs.enumerated().map { position, input in
            var result = [Float](repeating: 0, count: input.count)
            for i in 0..<output.count {
                var value: Float
                switch operation {
                case .add: value = g[i]
                case .average: value = g[i] / Float(inputs.count)
                case .subtract: value = position == 0 ? g[i] : -g[i]
                case .multiply:
                    value = g[i]
                    for (other, tensor) in inputs.enumerated() where other != position { value *= tensor.scalars[source(tensor, i)] }
                case .maximum, .minimum:
                    let chosen = inputs.firstIndex { $0.scalars[source($0, i)] == output.scalars[i] }
                    value = chosen == position ? g[i] : 0
                }
                result[source(input, i)] += value
            }
            return Tensor(shape: input.shape, scalars: result)
        }
    }
}

extension Concatenate: DifferentiableLayer {
    /// Each input gets its own slice of the gradient along the axis.
    public func backward(_ outputGradient: Tensor, isPreActivation: Bool, needsInputGradients: Bool, inputs: [Tensor], output: Tensor, saved: [Tensor],
                         accumulate: GradientSink) throws -> [Tensor] {
        let rank = output.shape.count
        let along = axis < 0 ? rank + axis : axis
        let outer = output.shape[..<along].reduce(1, *)
        let outputRow = output.shape[along...].reduce(1, *)
        var offset = 0
        return inputs.map { input in
            let row = input.shape[along...].reduce(1, *)
            var result = [Float](repeating: 0, count: input.count)
            for index in 0..<outer {
                for j in 0..<row { result[index * row + j] = outputGradient.scalars[index * outputRow + offset + j] }
            }
            offset += row
            return Tensor(shape: input.shape, scalars: result)
        }
    }
}
