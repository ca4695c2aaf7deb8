import Foundation
import TLEngine
import TLTensor

extension SpatialPadding: DifferentiableLayer {
    /// Zero padding passes back the gradient of the inner cells; cropping puts the gradient back
    /// in the middle of zeros.
    public func backward(_ outputGradient: Tensor, isPreActivation: Bool, needsInputGradients: Bool, inputs: [Tensor], output: Tensor, saved: [Tensor],
                         accumulate: GradientSink) throws -> [Tensor] {
        let input = inputs[0]
        let (batch, height, width, channels) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
        let (outputHeight, outputWidth) = (output.shape[1], output.shape[2])
        let (top, left) = (amounts.0.0, amounts.1.0)
        var result = [Float](repeating: 0, count: input.count)
        let g = outputGradient.scalars
        for image in 0..<batch {
            for row in 0..<height {
                let outputRow = crops ? row - top : row + top
                guard outputRow >= 0 && outputRow < outputHeight else { continue }
                for column in 0..<width {
                    let outputColumn = crops ? column - left : column + left
                    guard outputColumn >= 0 && outputColumn < outputWidth else { continue }
                    let source = ((image * outputHeight + outputRow) * outputWidth + outputColumn) * channels
                    let destination = ((image * height + row) * width + column) * channels
                    for c in 0..<channels { result[destination + c] = g[source + c] }
                }
            }
        }
        return [Tensor(shape: input.shape, scalars: result)]
    }
}
