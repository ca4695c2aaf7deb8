import Foundation
import TLEngine
import TLTensor

extension ScaledResidual: DifferentiableLayer {
    /// `y = shortcut + scale · residual`: the shortcut gets `dy`, the residual branch `scale · dy`.
    public func backward(_ outputGradient: Tensor, isPreActivation: Bool, needsInputGradients: Bool, inputs: [Tensor], output: Tensor, saved: [Tensor],
                         accumulate: GradientSink) throws -> [Tensor] {
        let scale = self.scale
        return [outputGradient.reshaped(inputs[0].shape),
                Tensor(shape: inputs[1].shape, scalars: outputGradient.scalars.map { $0 * scale })]
    }
}
