import Foundation
import TLEngine
import TLTensor

extension Dense: DifferentiableLayer {
    /// `z = x · kernel + bias`, then the activation; `z` is kept for the backward pass.
    public func trainingForward(_ inputs: [Tensor], mode: Mode, random: inout SeededRandom) throws -> (output: Tensor, saved: [Tensor]) {
        let input = inputs[0]
        let features = input.shape.last ?? 0
        let rows = input.count / max(features, 1)
        guard kernel.shape == [features, units] else {
            throw TrainingError(name, "kernel \(kernel.shape) does not take \(features) features")
        }
        var z = product(input.scalars, kernel.scalars, m: rows, k: features, n: units)
        if let bias {
            for row in 0..<rows { for unit in 0..<units { z[row * units + unit] += bias.scalars[unit] } }
        }
        let shape = Array(input.shape.dropLast()) + [units]
        var activated = z
        activated.withUnsafeMutableBufferPointer { activation.apply($0.baseAddress!, count: $0.count, lastAxis: units) }
        return (Tensor(shape: shape, scalars: activated), [Tensor(shape: shape, scalars: z)])
    }

    /// dKernel = xᵀ · dz, dBias = Σ dz over rows, dx = dz · kernelᵀ. Only the small matrices
    /// (the batch's rows) are transposed: dxᵀ = kernel · dzᵀ reads the kernel as it is stored.
    public func backward(_ outputGradient: Tensor, isPreActivation: Bool, needsInputGradients: Bool, inputs: [Tensor], output: Tensor, saved: [Tensor],
                         accumulate: (String, [Float]) -> Void) throws -> [Tensor] {
        let input = inputs[0]
        let features = input.shape.last ?? 0
        let rows = input.count / max(features, 1)
        let dz = isPreActivation ? outputGradient.scalars
            : try activation.backward(outputGradient.scalars, input: saved[0].scalars, output: output.scalars, lastAxis: units)
        let inputTransposed = input.scalars.withUnsafeBufferPointer {
            MatrixMultiply.transposed($0.baseAddress!, rows: rows, columns: features)
        }
        accumulate("kernel", product(inputTransposed, dz, m: features, k: rows, n: units))
        if useBias { accumulate("bias", channelSums(dz, channels: units)) }
        guard needsInputGradients else { return [Tensor(shape: [0])] }
        let dzTransposed = dz.withUnsafeBufferPointer { MatrixMultiply.transposed($0.baseAddress!, rows: rows, columns: units) }
        let inputGradientTransposed = product(kernel.scalars, dzTransposed, m: features, k: units, n: rows)
        let inputGradient = inputGradientTransposed.withUnsafeBufferPointer {
            MatrixMultiply.transposed($0.baseAddress!, rows: features, columns: rows)
        }
        return [Tensor(shape: input.shape, scalars: inputGradient)]
    }

    /// `a[m × k] · b[k × n]`.
    private func product(_ a: [Float], _ b: [Float], m: Int, k: Int, n: Int) -> [Float] {
        a.withUnsafeBufferPointer { matrixProduct($0.baseAddress!, b, m: m, k: k, n: n) }
    }

    public var finalActivation: Activation? { activation }
}
