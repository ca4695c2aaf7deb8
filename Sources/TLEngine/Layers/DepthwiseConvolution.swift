import CKernels
import Foundation
import TLTensor

/// Keras `DepthwiseConv2D`: one small filter bank per input channel.
///
/// - `depthwise_kernel`: `[kernelHeight, kernelWidth, inputChannels, depthMultiplier]`
/// - `bias`: `[inputChannels * depthMultiplier]` when `useBias`
///
/// Output channel `c * depthMultiplier + m` reads input channel `c`. Output rows are split
/// across cores; with multiplier 1 each row runs in `CKernels`' `tl_depthwise_row` (AVX2 or AVX-512,
/// bias and clamp-type activations fused), otherwise in the loop below.
public final class DepthwiseConv2D: Layer {
    public let name: String
    /// `(height, width)` of the window.
    public let kernelSize: (Int, Int)
    /// `(vertical, horizontal)` step.
    public let strides: (Int, Int)
    /// `(vertical, horizontal)` spacing of kernel taps.
    public let dilation: (Int, Int)
    /// `same` or `valid`.
    public let padding: Padding
    /// Output channels per input channel.
    public let depthMultiplier: Int
    /// Whether a bias is added.
    public let useBias: Bool
    /// Applied after the bias.
    public let activation: Activation
    /// `[kh, kw, in, multiplier]` kernel.
    public var kernel: Tensor { didSet { version.bump() } }
    /// `[in * multiplier]` bias, or nil.
    public var bias: Tensor? { didSet { version.bump() } }
    private let version = ParameterVersion()
    public var parameterVersion: Int { version.value }
    /// Zeros of a preceding `ZeroPadding2D` merged in by `Graph.fused()` (only with `valid`).
    var extraPadding: ((Int, Int), (Int, Int)) = ((0, 0), (0, 0))

    /// Creates a depthwise convolution with weights to be loaded later.
    public init(name: String, kernelSize: (Int, Int), strides: (Int, Int) = (1, 1), dilation: (Int, Int) = (1, 1),
                padding: Padding = .valid, depthMultiplier: Int = 1, useBias: Bool = true,
                activation: Activation = .linear) {
        self.name = name
        self.kernelSize = kernelSize
        self.strides = strides
        self.dilation = dilation
        self.padding = padding
        self.depthMultiplier = depthMultiplier
        self.useBias = useBias
        self.activation = activation
        self.kernel = Tensor(shape: [0])
    }

    func copy(kernel: Tensor, bias: Tensor?, activation: Activation) -> DepthwiseConv2D {
        let result = DepthwiseConv2D(name: name, kernelSize: kernelSize, strides: strides, dilation: dilation,
                                     padding: padding, depthMultiplier: depthMultiplier,
                                     useBias: bias != nil, activation: activation)
        result.kernel = kernel
        result.bias = bias
        result.extraPadding = extraPadding
        return result
    }

    package func geometry(height: Int, width: Int) -> (rows: (output: Int, before: Int), columns: (output: Int, before: Int)) {
        spatialGeometry(height: height, width: width, kernelSize: kernelSize, strides: strides, dilation: dilation,
                        padding: padding, extraPadding: extraPadding)
    }

    public func outputShape(inputShapes: [[Int]]) throws -> [Int] {
        let input = inputShapes[0]
        guard input.count == 3 else {
            throw EngineError.incompatibleShapes(layer: name, detail: "DepthwiseConv2D needs a rank-4 NHWC input, got per-sample shape \(input)")
        }
        let (rows, columns) = geometry(height: input[0], width: input[1])
        return [rows.output, columns.output, input[2] * depthMultiplier]
    }

    public func expectedWeights(inputShapes: [[Int]]) -> [WeightSpec] {
        let channels = inputShapes[0].last ?? 0
        var specs = [WeightSpec("depthwise_kernel", [kernelSize.0, kernelSize.1, channels, depthMultiplier])]
        if useBias { specs.append(WeightSpec("bias", [channels * depthMultiplier])) }
        return specs
    }

    public func setWeights(_ weights: [String: Tensor]) {
        if let kernel = weights["depthwise_kernel"] { self.kernel = kernel }
        bias = useBias ? weights["bias"] : nil
    }

    public var weights: [String: Tensor] {
        var result = ["depthwise_kernel": kernel]
        if let bias { result["bias"] = bias }
        return result
    }

    public func forward(_ inputs: [ActivationView], into output: MutableActivationView, scratch: UnsafeMutablePointer<Float>) {
        let input = inputs[0]
        let (batch, height, width, channels) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
        let (outputHeight, outputWidth, outputChannels) = (output.shape[1], output.shape[2], output.shape[3])
        let (kernelHeight, kernelWidth) = kernelSize
        let (rows, columns) = geometry(height: height, width: width)
        let (padTop, padLeft) = (rows.before, columns.before)
        let (strideY, strideX, dilationY, dilationX) = (strides.0, strides.1, dilation.0, dilation.1)
        let multiplier = depthMultiplier
        let activation = self.activation
        let (low, high) = activation.clampBounds ?? (-.infinity, .infinity)
        let activationPass = activation.clampBounds == nil
        let outputData = output.data, inputData = input.data
        kernel.scalars.withUnsafeBufferPointer { kernelBuffer in
            (bias?.scalars ?? []).withUnsafeBufferPointer { biasBuffer in
                let k = kernelBuffer.baseAddress!, b = bias == nil ? nil : biasBuffer.baseAddress
                let work = batch * outputHeight * outputWidth * outputChannels * kernelHeight * kernelWidth
                parallelChunks(batch * outputHeight, work: work) { rows in
                    for row in rows {
                        let image = row / outputHeight, oy = row % outputHeight
                        let imageBase = inputData + image * height * width * channels
                        let outputRow = outputData + row * outputWidth * outputChannels
                        let rowTop = oy * strideY - padTop
                        let firstRow = max(0, (-rowTop + dilationY - 1) / dilationY)
                        let lastRow = min(kernelHeight, (height - rowTop + dilationY - 1) / dilationY)
                        if multiplier == 1 {
                            withUnsafeTemporaryAllocation(of: UnsafePointer<Float>?.self, capacity: kernelHeight) { taps in
                                for ky in 0..<kernelHeight {
                                    let iy = rowTop + ky * dilationY
                                    taps[ky] = iy >= 0 && iy < height ? UnsafePointer(imageBase + iy * width * channels) : nil
                                }
                                tl_depthwise_row(taps.baseAddress!, Int32(width), Int32(channels), k, Int32(kernelHeight),
                                                 Int32(kernelWidth), Int32(strideX), Int32(dilationX), Int32(padLeft),
                                                 Int32(outputWidth), b, low, high, outputRow)
                            }
                            if activationPass {
                                activation.apply(outputRow, count: outputWidth * outputChannels, lastAxis: outputChannels)
                            }
                            continue
                        }
                        for ox in 0..<outputWidth {
                            let o = outputRow + ox * outputChannels
                            let columnLeft = ox * strideX - padLeft
                            let firstColumn = max(0, (-columnLeft + dilationX - 1) / dilationX)
                            let lastColumn = min(kernelWidth, (width - columnLeft + dilationX - 1) / dilationX)
                            if let b { o.update(from: b, count: outputChannels) } else { o.update(repeating: 0, count: outputChannels) }
                            for ky in firstRow..<max(lastRow, firstRow) {
                                let iy = rowTop + ky * dilationY
                                for kx in firstColumn..<max(lastColumn, firstColumn) {
                                    let ix = columnLeft + kx * dilationX
                                    let source = imageBase + (iy * width + ix) * channels
                                    let taps = k + (ky * kernelWidth + kx) * outputChannels
                                    for c in 0..<channels {
                                        let value = source[c]
                                        for m in 0..<multiplier { o[c * multiplier + m] += value * taps[c * multiplier + m] }
                                    }
                                }
                            }
                        }
                        activation.apply(outputRow, count: outputWidth * outputChannels, lastAxis: outputChannels)
                    }
                }
            }
        }
    }
}
