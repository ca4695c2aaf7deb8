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
        var z = [Float](repeating: 0, count: rows * units)
        input.scalars.withUnsafeBufferPointer { x in
            kernel.scalars.withUnsafeBufferPointer { w in
                z.withUnsafeMutableBufferPointer { out in
                    MatrixMultiply.multiply(x.baseAddress!, w.baseAddress!, m: rows, k: features, n: units, into: out.baseAddress!)
                }
            }
        }
        if let bias {
            for row in 0..<rows { for unit in 0..<units { z[row * units + unit] += bias.scalars[unit] } }
        }
        let shape = Array(input.shape.dropLast()) + [units]
        var activated = z
        activated.withUnsafeMutableBufferPointer { activation.apply($0.baseAddress!, count: $0.count, lastAxis: units) }
        return (Tensor(shape: shape, scalars: activated), [Tensor(shape: shape, scalars: z)])
    }

    /// dKernel = xᵀ · dz, dBias = Σ dz over rows, dx = dz · kernelᵀ.
    public func backward(_ outputGradient: Tensor, isPreActivation: Bool, inputs: [Tensor], output: Tensor, saved: [Tensor],
                         accumulate: (String, [Float]) -> Void) throws -> [Tensor] {
        let input = inputs[0]
        let features = input.shape.last ?? 0
        let rows = input.count / max(features, 1)
        let dz = isPreActivation ? outputGradient.scalars
            : try activation.backward(outputGradient.scalars, input: saved[0].scalars, output: output.scalars, lastAxis: units)
        var kernelGradient = [Float](repeating: 0, count: features * units)
        let inputTransposed = input.scalars.withUnsafeBufferPointer {
            MatrixMultiply.transposed($0.baseAddress!, rows: rows, columns: features)
        }
        inputTransposed.withUnsafeBufferPointer { xt in
            dz.withUnsafeBufferPointer { g in
                kernelGradient.withUnsafeMutableBufferPointer { out in
                    MatrixMultiply.multiply(xt.baseAddress!, g.baseAddress!, m: features, k: rows, n: units, into: out.baseAddress!)
                }
            }
        }
        accumulate("kernel", kernelGradient)
        if useBias {
            var biasGradient = [Float](repeating: 0, count: units)
            for row in 0..<rows { for unit in 0..<units { biasGradient[unit] += dz[row * units + unit] } }
            accumulate("bias", biasGradient)
        }
        var inputGradient = [Float](repeating: 0, count: rows * features)
        let kernelTransposed = kernel.scalars.withUnsafeBufferPointer {
            MatrixMultiply.transposed($0.baseAddress!, rows: features, columns: units)
        }
        dz.withUnsafeBufferPointer { g in
            kernelTransposed.withUnsafeBufferPointer { wt in
                inputGradient.withUnsafeMutableBufferPointer { out in
                    MatrixMultiply.multiply(g.baseAddress!, wt.baseAddress!, m: rows, k: units, n: features, into: out.baseAddress!)
                }
            }
        }
        return [Tensor(shape: input.shape, scalars: inputGradient)]
    }

    public var finalActivation: Activation? { activation }
}
