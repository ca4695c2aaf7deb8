import CKernels
import Foundation
import TLTensor

/// Keras `MaxPooling2D` and `AveragePooling2D` over NHWC activations.
///
/// With `same` padding the average counts only the cells inside the input, as TensorFlow does.
public final class Pooling2D: Layer {
    /// Which reduction a window computes.
    public enum Kind: Sendable {
        /// Largest value in the window.
        case max
        /// Mean of the in-bounds values in the window.
        case average
    }

    public let name: String
    /// Reduction.
    public let kind: Kind
    /// `(height, width)` of the window.
    public let poolSize: (Int, Int)
    /// `(vertical, horizontal)` step (Keras defaults it to `poolSize`).
    public let strides: (Int, Int)
    /// `same` or `valid`.
    public let padding: Padding

    /// Creates a pooling layer.
    public init(name: String, kind: Kind, poolSize: (Int, Int), strides: (Int, Int)? = nil, padding: Padding = .valid) {
        self.name = name
        self.kind = kind
        self.poolSize = poolSize
        self.strides = strides ?? poolSize
        self.padding = padding
    }

    public func outputShape(inputShapes: [[Int]]) throws -> [Int] {
        let input = inputShapes[0]
        guard input.count == 3 else {
            throw EngineError.incompatibleShapes(layer: name, detail: "pooling needs a rank-4 NHWC input, got per-sample shape \(input)")
        }
        return [padding.window(input: input[0], kernel: poolSize.0, stride: strides.0, dilation: 1).output,
                padding.window(input: input[1], kernel: poolSize.1, stride: strides.1, dilation: 1).output, input[2]]
    }

    public func forward(_ inputs: [ActivationView], into output: MutableActivationView, scratch: UnsafeMutablePointer<Float>) {
        let input = inputs[0]
        let (batch, height, width, channels) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
        let (outputHeight, outputWidth) = (output.shape[1], output.shape[2])
        let padTop = padding.window(input: height, kernel: poolSize.0, stride: strides.0, dilation: 1).before
        let padLeft = padding.window(input: width, kernel: poolSize.1, stride: strides.1, dilation: 1).before
        let (poolHeight, poolWidth, strideY, strideX) = (poolSize.0, poolSize.1, strides.0, strides.1)
        let geometry = TLPoolGeometry(height: Int32(height), width: Int32(width), channels: Int32(channels),
                                      outputHeight: Int32(outputHeight), outputWidth: Int32(outputWidth),
                                      poolY: Int32(poolHeight), poolX: Int32(poolWidth), strideY: Int32(strideY),
                                      strideX: Int32(strideX), padTop: Int32(padTop), padLeft: Int32(padLeft))
        let average: Int32 = kind == .average ? 1 : 0
        let inputData = input.data, outputData = output.data
        parallelChunks(batch * outputHeight, work: output.count * poolHeight * poolWidth) { rows in
            var geometry = geometry
            var row = rows.lowerBound
            while row < rows.upperBound {  // the chunk's rows, image by image
                let image = row / outputHeight, first = row % outputHeight
                let last = min(outputHeight, first + rows.upperBound - row)
                tl_pool_forward(inputData + image * height * width * channels, outputData + image * outputHeight * outputWidth * channels,
                                &geometry, Int32(first), Int32(last), average)
                row += last - first
            }
        }
    }
}

/// Keras `GlobalAveragePooling2D` / `GlobalMaxPooling2D`: `[N, H, W, C]` → `[N, C]`
/// (`[N, 1, 1, C]` with `keepDimensions`).
public final class GlobalPooling2D: Layer {
    public let name: String
    /// Reduction.
    public let kind: Pooling2D.Kind
    /// Keras `keepdims`.
    public let keepDimensions: Bool

    /// Creates a global pooling layer.
    public init(name: String, kind: Pooling2D.Kind, keepDimensions: Bool = false) {
        self.name = name
        self.kind = kind
        self.keepDimensions = keepDimensions
    }

    public func outputShape(inputShapes: [[Int]]) throws -> [Int] {
        let input = inputShapes[0]
        guard input.count == 3 else {
            throw EngineError.incompatibleShapes(layer: name, detail: "global pooling needs a rank-4 NHWC input, got per-sample shape \(input)")
        }
        return keepDimensions ? [1, 1, input[2]] : [input[2]]
    }

    public func forward(_ inputs: [ActivationView], into output: MutableActivationView, scratch: UnsafeMutablePointer<Float>) {
        let input = inputs[0]
        let (batch, pixels, channels) = (input.shape[0], input.shape[1] * input.shape[2], input.shape[3])
        // One window over the whole map, through the windowed pooling's kernel (channels summed
        // or maxed in registers, the cells in row-major order); images split between the cores.
        // EfficientNet's squeeze-and-excite pools every block's map: a scalar loop here, one
        // image at a time, took 5 % of a batch-32 pass.
        let geometry = TLPoolGeometry(height: Int32(input.shape[1]), width: Int32(input.shape[2]), channels: Int32(channels),
                                      outputHeight: 1, outputWidth: 1, poolY: Int32(input.shape[1]),
                                      poolX: Int32(input.shape[2]), strideY: 1, strideX: 1, padTop: 0, padLeft: 0)
        let average: Int32 = kind == .average ? 1 : 0
        let inputData = input.data, outputData = output.data
        parallelChunks(batch, work: batch * pixels * channels) { images in
            var geometry = geometry
            for image in images {
                tl_pool_forward(inputData + image * pixels * channels, outputData + image * channels, &geometry, 0, 1, average)
            }
        }
    }
}
