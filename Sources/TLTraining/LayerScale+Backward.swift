import Foundation
import TLEngine
import TLTensor

extension LayerScale: DifferentiableLayer {
    /// `y = x · γ` over the last axis: `dγ = Σ dy · x` over every other position, `dx = dy · γ`.
    public func backward(_ outputGradient: Tensor, isPreActivation: Bool, needsInputGradients: Bool, inputs: [Tensor], output: Tensor, saved: [Tensor],
                         accumulate: GradientSink) throws -> [Tensor] {
        let input = inputs[0].scalars, dy = outputGradient.scalars, gamma = self.gamma.scalars
        let features = projectionDimension, rows = input.count / max(features, 1)
        var gammaGradient = [Double](repeating: 0, count: features)
        for row in 0..<rows {
            for j in 0..<features { gammaGradient[j] += Double(dy[row * features + j] * input[row * features + j]) }
        }
        accumulate("gamma", gammaGradient.map { Float($0) })
        guard needsInputGradients else { return [Tensor(shape: [0])] }
        let dx = dy.indices.map { dy[$0] * gamma[$0 % features] }
        return [Tensor(shape: inputs[0].shape, scalars: dx)]
    }
}
