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
        case let .clippedReLU(maxValue, slope, threshold):
            let top = maxValue ?? .infinity
            for i in result.indices {
                let x = input[i]
                result[i] = x >= top ? 0 : (x >= threshold ? outputGradient[i] : outputGradient[i] * slope)
            }
        case .hardSigmoidKeras2:
            for i in result.indices { result[i] = input[i] > -2.5 && input[i] < 2.5 ? outputGradient[i] * 0.2 : 0 }
        case .hardSigmoid:
            for i in result.indices { result[i] = input[i] > -3 && input[i] < 3 ? outputGradient[i] / 6 : 0 }
        case .hardSwish:
            for i in result.indices {
                let x = input[i]
                result[i] = x <= -3 ? 0 : (x >= 3 ? outputGradient[i] : outputGradient[i] * (2 * x + 3) / 6)
            }
        case let .gelu(approximate):
            for i in result.indices {
                let x = Double(input[i])
                let derivative: Double
                if approximate {
                    let c = (2 / Double.pi).squareRoot()
                    let t = Foundation.tanh(c * (x + 0.044715 * x * x * x))
                    derivative = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * 0.044715 * x * x)
                } else {
                    derivative = 0.5 * (1 + erf(x / 2.0.squareRoot())) + x * exp(-x * x / 2) / (2 * Double.pi).squareRoot()
                }
                result[i] = outputGradient[i] * Float(derivative)
            }
        case .selu:
            let alpha: Float = 1.6732632423543772, scale: Float = 1.0507009873554805
            for i in result.indices { result[i] = outputGradient[i] * (input[i] > 0 ? scale : output[i] + scale * alpha) }
        case .softsign:
            for i in result.indices { let d = 1 + abs(input[i]); result[i] = outputGradient[i] / (d * d) }
        case .exponential:
            for i in result.indices { result[i] = outputGradient[i] * output[i] }
        }
        return result
    }
}

extension ActivationLayer: DifferentiableLayer {
    public func backward(_ outputGradient: Tensor, isPreActivation: Bool, needsInputGradients: Bool, inputs: [Tensor], output: Tensor, saved: [Tensor],
                         accumulate: GradientSink) throws -> [Tensor] {
        if isPreActivation { return [outputGradient] }
        let values = try activation.backward(outputGradient.scalars, input: inputs[0].scalars, output: output.scalars,
                                             lastAxis: output.shape.last ?? 1)
        return [Tensor(shape: inputs[0].shape, scalars: values)]
    }

    public var finalActivation: Activation? { activation }
}
