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
        let (kind, poolSize, strides) = (self.kind, self.poolSize, self.strides)
        // Images write disjoint parts of the result: they run on the cores side by side.
        input.scalars.withUnsafeBufferPointer { x in
            output.scalars.withUnsafeBufferPointer { y in
                outputGradient.scalars.withUnsafeBufferPointer { g in
                    result.withUnsafeMutableBufferPointer { result in
                        let (x, y, g, result) = (x.baseAddress!, y.baseAddress!, g.baseAddress!, result.baseAddress!)
                        parallelChunks(batch, work: input.count) { images in
                            for image in images {
                                for oy in 0..<outputHeight {
                                    let y0 = max(oy * strides.0 - padTop, 0), y1 = min(oy * strides.0 - padTop + poolSize.0, height)
                                    for ox in 0..<outputWidth {
                                        let x0 = max(ox * strides.1 - padLeft, 0), x1 = min(ox * strides.1 - padLeft + poolSize.1, width)
                                        let outputBase = ((image * outputHeight + oy) * outputWidth + ox) * channels
                                        guard y1 > y0, x1 > x0 else { continue }
                                        for c in 0..<channels {
                                            let gradient = g[outputBase + c]
                                            if kind == .max {
                                                let best = y[outputBase + c]
                                                search: for row in y0..<y1 {
                                                    for column in x0..<x1 where x[((image * height + row) * width + column) * channels + c] == best {
                                                        result[((image * height + row) * width + column) * channels + c] += gradient
                                                        break search
                                                    }
                                                }
                                            } else {
                                                let share = gradient / Float((y1 - y0) * (x1 - x0))
                                                for row in y0..<y1 {
                                                    for column in x0..<x1 { result[((image * height + row) * width + column) * channels + c] += share }
                                                }
                                            }
                                        }
                                    }
                                }
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
