import Foundation
import TLEngine
import TLTensor

extension Activation {
    /// dLoss/dInput from dLoss/dOutput for `output = activation(input)` over rows of `lastAxis`
    /// values (softmax works within a row).
    /// - Throws: `TrainingError` for an activation without a derivative here yet.
    func backward(_ outputGradient: [Float], input: [Float], output: [Float], lastAxis: Int) throws -> [Float] {
        var result = [Float](repeating: 0, count: outputGradient.count)
        switch self {
        case .linear:
            return outputGradient
        case .relu:
            for i in result.indices { result[i] = input[i] > 0 ? outputGradient[i] : 0 }
        case .relu6:
            for i in result.indices { result[i] = input[i] > 0 && input[i] < 6 ? outputGradient[i] : 0 }
        case .leakyReLU(let slope):
            for i in result.indices { result[i] = input[i] > 0 ? outputGradient[i] : outputGradient[i] * slope }
        case .sigmoid:
            for i in result.indices { result[i] = outputGradient[i] * output[i] * (1 - output[i]) }
        case .tanh:
            for i in result.indices { result[i] = outputGradient[i] * (1 - output[i] * output[i]) }
        case .swish:
            for i in result.indices {
                let s = 1 / (1 + exp(-input[i]))
                result[i] = outputGradient[i] * (s + input[i] * s * (1 - s))
            }
        case .elu(let alpha):
            for i in result.indices { result[i] = input[i] > 0 ? outputGradient[i] : outputGradient[i] * (output[i] + alpha) }
        case .softplus:
            for i in result.indices { result[i] = outputGradient[i] / (1 + exp(-input[i])) }
        case .softmax:
            let rows = outputGradient.count / max(lastAxis, 1)
            for row in 0..<rows {
                let base = row * lastAxis
                var dot: Float = 0
                for j in 0..<lastAxis { dot += outputGradient[base + j] * output[base + j] }
                for j in 0..<lastAxis { result[base + j] = output[base + j] * (outputGradient[base + j] - dot) }
            }
        default:
            throw TrainingError("", "no derivative for activation \(self) yet")
        }
        return result
    }
}

extension ActivationLayer: DifferentiableLayer {
    public func trainingForward(_ inputs: [Tensor], mode: Mode, random: inout SeededRandom) throws -> (output: Tensor, saved: [Tensor]) {
        (try inferenceForward(inputs), [])
    }

    public func backward(_ outputGradient: Tensor, isPreActivation: Bool, needsInputGradients: Bool, inputs: [Tensor], output: Tensor, saved: [Tensor],
                         accumulate: (String, [Float]) -> Void) throws -> [Tensor] {
        if isPreActivation { return [outputGradient] }
        let values = try activation.backward(outputGradient.scalars, input: inputs[0].scalars, output: output.scalars,
                                             lastAxis: output.shape.last ?? 1)
        return [Tensor(shape: inputs[0].shape, scalars: values)]
    }

    public var finalActivation: Activation? { activation }
}
