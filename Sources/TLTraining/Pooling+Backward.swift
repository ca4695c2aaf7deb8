import CKernels
import Foundation
import TLEngine
import TLTensor

extension Pooling2D: DifferentiableLayer {
    /// Max: each window's gradient goes to the first cell (row-major) holding its maximum, as
    /// TensorFlow's CPU kernel picks it; average: spread over the window's in-bounds cells (the
    /// count `same` padding divides by).
    public func backward(_ outputGradient: Tensor, isPreActivation: Bool, needsInputGradients: Bool, inputs: [Tensor], output: Tensor, saved: [Tensor],
                         accumulate: GradientSink) throws -> [Tensor] {
        let input = inputs[0]
        let (batch, height, width, channels) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
        let (outputHeight, outputWidth) = (output.shape[1], output.shape[2])
        let padTop = padding.window(input: height, kernel: poolSize.0, stride: strides.0, dilation: 1).before
        let padLeft = padding.window(input: width, kernel: poolSize.1, stride: strides.1, dilation: 1).before
        var result = [Float](repeating: 0, count: input.count)
        var geometry = TLPoolGeometry(height: Int32(height), width: Int32(width), channels: Int32(channels),
                                      outputHeight: Int32(outputHeight), outputWidth: Int32(outputWidth),
                                      poolY: Int32(poolSize.0), poolX: Int32(poolSize.1), strideY: Int32(strides.0),
                                      strideX: Int32(strides.1), padTop: Int32(padTop), padLeft: Int32(padLeft))
        let (imageSize, outputSize) = (height * width * channels, outputHeight * outputWidth * channels)
        let average: Int32 = kind == .max ? 0 : 1
        // Images write disjoint parts of the result: they run on the cores side by side.
        input.scalars.withUnsafeBufferPointer { x in
            output.scalars.withUnsafeBufferPointer { y in
                outputGradient.scalars.withUnsafeBufferPointer { g in
                    result.withUnsafeMutableBufferPointer { result in
                        let (x, y, g, result) = (x.baseAddress!, y.baseAddress!, g.baseAddress!, result.baseAddress!)
                        parallelChunks(batch, work: input.count) { images in
                            for image in images {
                                tl_pool_backward(x + image * imageSize, y + image * outputSize, g + image * outputSize,
                                                 result + image * imageSize, &geometry, average)
                            }
                        }
                    }
                }
            }
        }
        return [Tensor(shape: input.shape, scalars: result)]
    }
}

extension GlobalPooling2D: DifferentiableLayer {
    /// Average: the gradient spread evenly over the pixels; max: all of it to the (first) largest.
    public func backward(_ outputGradient: Tensor, isPreActivation: Bool, needsInputGradients: Bool, inputs: [Tensor], output: Tensor, saved: [Tensor],
                         accumulate: GradientSink) throws -> [Tensor] {
        let input = inputs[0]
        let (batch, pixels, channels) = (input.shape[0], input.shape[1] * input.shape[2], input.shape[3])
        var result = [Float](repeating: 0, count: input.count)
        for image in 0..<batch {
            for c in 0..<channels {
                let g = outputGradient.scalars[image * channels + c]
                if kind == .average {
                    let share = g / Float(pixels)
                    for p in 0..<pixels { result[(image * pixels + p) * channels + c] = share }
                } else {
                    let best = output.scalars[image * channels + c]
                    if let p = (0..<pixels).first(where: { input.scalars[(image * pixels + $0) * channels + c] == best }) {
                        result[(image * pixels + p) * channels + c] = g
                    }
                }
            }
        }
        return [Tensor(shape: input.shape, scalars: result)]
    }
}
