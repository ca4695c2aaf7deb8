import Foundation
import TLEngine
import TLTensor

extension Dense: DifferentiableLayer {
    /// `z = x · kernel + bias`, then the activation; `z` is kept for the backward pass unless the
    /// activation's derivative follows from the output (relu, linear…): then the engine's fused
    /// forward pass runs (reading a changed kernel in place for a small batch). A sigmoid keeps
    /// `z`: as an output layer its logits fuse with the loss.
    public func trainingForward(_ inputs: [Tensor], mode: Mode, random: inout SeededRandom) throws -> (output: Tensor, saved: [Tensor]) {
        let input = inputs[0]
        let features = input.shape.last ?? 0
        let rows = input.count / max(features, 1)
        guard kernel.shape == [features, units] else {
            throw TrainingError(name, "kernel \(kernel.shape) does not take \(features) features")
        }
        if activation.derivativeFollowsOutput && activation != .sigmoid { return (try inferenceForward(inputs), []) }
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
                         accumulate: GradientSink) throws -> [Tensor] {
        let input = inputs[0]
        let features = input.shape.last ?? 0
        let rows = input.count / max(features, 1)
        let dz = try preActivationGradient(outputGradient, activation: activation, isPreActivation: isPreActivation, saved: saved, output: output)
        let inputTransposed = input.scalars.withUnsafeBufferPointer {
            MatrixMultiply.transposed($0.baseAddress!, rows: rows, columns: features)
        }
        accumulate.write("kernel", count: features * units) { gradient, accumulating in
            inputTransposed.withUnsafeBufferPointer { a in
                dz.withUnsafeBufferPointer { b in
                    MatrixMultiply.multiply(a.baseAddress!, b.baseAddress!, m: features, k: rows, n: units,
                                            into: gradient, accumulating: accumulating)
                }
            }
        }
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

    /// Nothing: after each step the kernel has changed, and a training batch's forward pass reads
    /// it in place rather than repacking it (a larger batch packs it there).
    public func prepareForStep() {}
}
