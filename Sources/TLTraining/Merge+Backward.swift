import Foundation
import TLEngine
import TLTensor

extension ElementwiseMerge: DifferentiableLayer {
    public func trainingForward(_ inputs: [Tensor], mode: Mode, random: inout SeededRandom) throws -> (output: Tensor, saved: [Tensor]) {
        (try inferenceForward(inputs), [])
    }

    /// Add/average spread the gradient to every input, subtract negates the second, multiply
    /// scales by the other inputs, maximum/minimum send it to the chosen input. Inputs of equal
    /// shape only (broadcast channel vectors come with backprop through squeeze-excite).
    public func backward(_ outputGradient: Tensor, isPreActivation: Bool, needsInputGradients: Bool, inputs: [Tensor], output: Tensor, saved: [Tensor],
                         accumulate: (String, [Float]) -> Void) throws -> [Tensor] {
        guard inputs.allSatisfy({ $0.count == output.count }) else {
            throw TrainingError(name, "backward through a broadcasting merge is not supported yet")
        }
        guard activation == .linear else { throw TrainingError(name, "backward through a fused merge activation") }
        let g = outputGradient.scalars
        return inputs.enumerated().map { position, input in
            var result = [Float](repeating: 0, count: g.count)
            switch operation {
            case .add: result = g
            case .average: result = g.map { $0 / Float(inputs.count) }
            case .subtract: result = position == 0 ? g : g.map { -$0 }
            case .multiply:
                for i in result.indices {
                    var product = g[i]
                    for (other, tensor) in inputs.enumerated() where other != position { product *= tensor.scalars[i] }
                    result[i] = product
                }
            case .maximum, .minimum:
                for i in result.indices {
                    // The first input holding the result takes the gradient, as TensorFlow's does.
                    let chosen = inputs.firstIndex { $0.scalars[i] == output.scalars[i] }
                    result[i] = chosen == position ? g[i] : 0
                }
            }
            return Tensor(shape: input.shape, scalars: result)
        }
    }
}
