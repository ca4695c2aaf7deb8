import Foundation
import TLEngine
import TLTensor

extension BatchNormalization: DifferentiableLayer {
    /// Training mode normalizes with the batch's own mean and (biased) variance over every
    /// position of each channel, and moves the moving statistics toward them:
    /// `moving = moving · momentum + batch · (1 − momentum)` (Keras 3's formula), with the variance
    /// scaled by `n / (n − 1)` first when `correctsMovingVariance` (tf.keras 2's fused kernel).
    /// Inference mode uses the moving statistics and changes nothing. Either way `[mean, inv]`
    /// (`inv = 1 / √(variance + ε)`) is kept.
    public func trainingForward(_ inputs: [Tensor], mode: Mode, random: inout SeededRandom) throws -> (output: Tensor, saved: [Tensor]) {
        let input = inputs[0]
        let channels = input.shape.last ?? 1
        let positions = input.count / max(channels, 1)
        var mean: [Float], variance: [Float]
        if mode == .training {
            (mean, variance) = Self.moments(input.scalars, channels: channels)
            let keep = momentum, take = 1 - momentum
            let correction: Float = correctsMovingVariance && input.shape.count == 4 && positions > 1
                ? Float(positions) / Float(positions - 1) : 1
            movingMean = Tensor(shape: [channels], scalars: (0..<channels).map { movingMean.scalars[$0] * keep + mean[$0] * take })
            movingVariance = Tensor(shape: [channels], scalars: (0..<channels).map {
                movingVariance.scalars[$0] * keep + variance[$0] * correction * take
            })
        } else {
            mean = movingMean.scalars
            variance = movingVariance.scalars
        }
        let inv = variance.map { 1 / ($0 + epsilon).squareRoot() }
        let multiplier = (0..<channels).map { inv[$0] * (gamma?.scalars[$0] ?? 1) }
        let offset = (0..<channels).map { (beta?.scalars[$0] ?? 0) - mean[$0] * multiplier[$0] }
        var output = [Float](repeating: 0, count: input.count)
        for position in 0..<positions {
            for c in 0..<channels { output[position * channels + c] = input.scalars[position * channels + c] * multiplier[c] + offset[c] }
        }
        return (Tensor(shape: input.shape, scalars: output),
                [Tensor(shape: [channels], scalars: mean), Tensor(shape: [channels], scalars: inv), Tensor(shape: [1], scalars: [mode == .training ? 1 : 0])])
    }

    /// Per-channel mean and biased variance (two passes, summed in Double).
    static func moments(_ values: [Float], channels: Int) -> (mean: [Float], variance: [Float]) {
        let positions = values.count / max(channels, 1)
        var sums = [Double](repeating: 0, count: channels)
        for position in 0..<positions { for c in 0..<channels { sums[c] += Double(values[position * channels + c]) } }
        let mean = sums.map { $0 / Double(max(positions, 1)) }
        var squares = [Double](repeating: 0, count: channels)
        for position in 0..<positions {
            for c in 0..<channels {
                let d = Double(values[position * channels + c]) - mean[c]
                squares[c] += d * d
            }
        }
        return (mean.map { Float($0) }, squares.map { Float($0 / Double(max(positions, 1))) })
    }

    /// With batch statistics: `dx = γ·inv·(dy − Σdy/n − x̂·Σ(dy·x̂)/n)`; with moving statistics
    /// `dx = γ·inv·dy`. Both: `dγ = Σ dy·x̂`, `dβ = Σ dy`.
    public func backward(_ outputGradient: Tensor, isPreActivation: Bool, needsInputGradients: Bool, inputs: [Tensor], output: Tensor, saved: [Tensor],
                         accumulate: GradientSink) throws -> [Tensor] {
        let input = inputs[0], dy = outputGradient.scalars
        let channels = input.shape.last ?? 1
        let positions = input.count / max(channels, 1)
        let mean = saved[0].scalars, inv = saved[1].scalars, batchStatistics = saved[2].scalars[0] == 1
        var gammaGradient = [Double](repeating: 0, count: channels), betaGradient = [Double](repeating: 0, count: channels)
        for position in 0..<positions {
            for c in 0..<channels {
                let i = position * channels + c
                betaGradient[c] += Double(dy[i])
                gammaGradient[c] += Double(dy[i] * (input.scalars[i] - mean[c]) * inv[c])
            }
        }
        if scale { accumulate("gamma", gammaGradient.map { Float($0) }) }
        if center { accumulate("beta", betaGradient.map { Float($0) }) }
        guard needsInputGradients else { return [Tensor(shape: [0])] }
        var dx = [Float](repeating: 0, count: input.count)
        let factor = (0..<channels).map { inv[$0] * (gamma?.scalars[$0] ?? 1) }
        if batchStatistics {
            let n = Float(positions)
            let meanGradient = betaGradient.map { Float($0) / n }, scaleGradient = gammaGradient.map { Float($0) / n }
            for position in 0..<positions {
                for c in 0..<channels {
                    let i = position * channels + c
                    let normalized = (input.scalars[i] - mean[c]) * inv[c]
                    dx[i] = factor[c] * (dy[i] - meanGradient[c] - normalized * scaleGradient[c])
                }
            }
        } else {
            for position in 0..<positions { for c in 0..<channels { dx[position * channels + c] = dy[position * channels + c] * factor[c] } }
        }
        return [Tensor(shape: input.shape, scalars: dx)]
    }
}

extension Rescaling: DifferentiableLayer {
    /// `dx = dy · scale`.
    public func backward(_ outputGradient: Tensor, isPreActivation: Bool, needsInputGradients: Bool, inputs: [Tensor], output: Tensor, saved: [Tensor],
                         accumulate: GradientSink) throws -> [Tensor] {
        let channels = outputGradient.shape.last ?? 1
        let values = outputGradient.scalars.enumerated().map { $1 * scale[scale.count == 1 ? 0 : $0 % channels] }
        return [Tensor(shape: inputs[0].shape, scalars: values)]
    }
}

extension Normalization: DifferentiableLayer {
    /// `dx = dy / √variance` (the statistics are not trained).
    public func backward(_ outputGradient: Tensor, isPreActivation: Bool, needsInputGradients: Bool, inputs: [Tensor], output: Tensor, saved: [Tensor],
                         accumulate: GradientSink) throws -> [Tensor] {
        let channels = outputGradient.shape.last ?? 1
        let m = multiplier
        let values = outputGradient.scalars.enumerated().map { $1 * m[m.count == 1 ? 0 : $0 % channels] }
        return [Tensor(shape: inputs[0].shape, scalars: values)]
    }
}

extension LayerNormalization: DifferentiableLayer {
    /// Per row of the last axis, with `x̂ = (x − μ) · inv`, `inv = 1 / √(σ² + ε)` (recomputed as
    /// the forward pass computes them): `dγ = Σ dy · x̂`, `dβ = Σ dy` over the rows, and
    /// `dx = inv · (g − mean(g) − x̂ · mean(g · x̂))` with `g = dy · γ`. Training and inference
    /// passes are the same: a layer normalization keeps no statistics.
    public func backward(_ outputGradient: Tensor, isPreActivation: Bool, needsInputGradients: Bool, inputs: [Tensor], output: Tensor, saved: [Tensor],
                         accumulate: GradientSink) throws -> [Tensor] {
        let input = inputs[0].scalars, dy = outputGradient.scalars
        let features = inputs[0].shape.last ?? 1, rows = input.count / max(features, 1)
        let gamma = self.gamma?.scalars
        var gammaGradient = [Double](repeating: 0, count: features), betaGradient = [Double](repeating: 0, count: features)
        var dx = [Float](repeating: 0, count: needsInputGradients ? input.count : 0)
        var normalized = [Float](repeating: 0, count: features), g = [Float](repeating: 0, count: features)
        for row in 0..<rows {
            let offset = row * features
            let (mean, inverse) = input.withUnsafeBufferPointer { statistics(of: $0.baseAddress! + offset, features: features) }
            var gSum: Double = 0, gxSum: Double = 0
            for j in 0..<features {
                normalized[j] = (input[offset + j] - mean) * inverse
                gammaGradient[j] += Double(dy[offset + j] * normalized[j])
                betaGradient[j] += Double(dy[offset + j])
                g[j] = dy[offset + j] * (gamma?[j] ?? 1)
                gSum += Double(g[j])
                gxSum += Double(g[j] * normalized[j])
            }
            guard needsInputGradients else { continue }
            let gMean = Float(gSum / Double(features)), gxMean = Float(gxSum / Double(features))
            for j in 0..<features { dx[offset + j] = inverse * (g[j] - gMean - normalized[j] * gxMean) }
        }
        if scale { accumulate("gamma", gammaGradient.map { Float($0) }) }
        if center { accumulate("beta", betaGradient.map { Float($0) }) }
        return needsInputGradients ? [Tensor(shape: inputs[0].shape, scalars: dx)] : [Tensor(shape: [0])]
    }
}
