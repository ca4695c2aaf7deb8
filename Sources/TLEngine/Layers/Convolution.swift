import Foundation
import TLTensor

/// Keras `Conv2D`: a 2-D convolution over NHWC activations, computed as a GEMM.
///
/// - `kernel`: HWIO `[kernelHeight, kernelWidth, inputChannels / groups, filters]`
/// - `bias`: `[filters]` when `useBias`
///
/// 1×1 stride-1 convolutions multiply the NHWC input directly; every other case gathers
/// image patches (im2col) into the scratch buffer, a bounded number of output rows at a time.
public final class Conv2D: Layer {
    public let name: String
    /// Output channels.
    public let filters: Int
    /// `(height, width)` of the window.
    public let kernelSize: (Int, Int)
    /// `(vertical, horizontal)` step.
    public let strides: (Int, Int)
    /// `(vertical, horizontal)` spacing of kernel taps.
    public let dilation: (Int, Int)
    /// `same` or `valid`, with TensorFlow's rule for `same`.
    public let padding: Padding
    /// Channel groups (`groups` in Keras); input and output channels split evenly.
    public let groups: Int
    /// Whether a bias is added.
    public let useBias: Bool
    /// Applied after the bias; `linear` unless fused or configured.
    public let activation: Activation
    /// HWIO kernel.
    public var kernel: Tensor
    /// `[filters]` bias, or nil.
    public var bias: Tensor?
    /// `((top, bottom), (left, right))` zeros of a preceding `ZeroPadding2D` merged in by
    /// `Graph.fused()` (only with `valid` padding).
    var extraPadding: ((Int, Int), (Int, Int)) = ((0, 0), (0, 0))

    /// Creates a convolution with weights to be loaded later (zero until then).
    public init(name: String, filters: Int, kernelSize: (Int, Int), strides: (Int, Int) = (1, 1),
                dilation: (Int, Int) = (1, 1), padding: Padding = .valid, groups: Int = 1,
                useBias: Bool = true, activation: Activation = .linear) {
        self.name = name
        self.filters = filters
        self.kernelSize = kernelSize
        self.strides = strides
        self.dilation = dilation
        self.padding = padding
        self.groups = groups
        self.useBias = useBias
        self.activation = activation
        self.kernel = Tensor(shape: [0])
        self.bias = nil
    }

    /// A copy with other weights and activation (used by BatchNorm folding and activation fusion).
    func copy(kernel: Tensor, bias: Tensor?, activation: Activation) -> Conv2D {
        let result = Conv2D(name: name, filters: filters, kernelSize: kernelSize, strides: strides,
                            dilation: dilation, padding: padding, groups: groups,
                            useBias: bias != nil, activation: activation)
        result.kernel = kernel
        result.bias = bias
        result.extraPadding = extraPadding
        return result
    }

    /// Output size and zeros before, per spatial axis, including merged zero padding.
    func geometry(height: Int, width: Int) -> (rows: (output: Int, before: Int), columns: (output: Int, before: Int)) {
        spatialGeometry(height: height, width: width, kernelSize: kernelSize, strides: strides, dilation: dilation,
                        padding: padding, extraPadding: extraPadding)
    }

    public func outputShape(inputShapes: [[Int]]) throws -> [Int] {
        let input = inputShapes[0]
        guard input.count == 3 else {
            throw EngineError.incompatibleShapes(layer: name, detail: "Conv2D needs a rank-4 NHWC input, got per-sample shape \(input)")
        }
        guard input[2] % groups == 0, filters % groups == 0 else {
            throw EngineError.incompatibleShapes(layer: name, detail: "\(input[2]) input channels and \(filters) filters are not divisible by groups=\(groups)")
        }
        let (rows, columns) = geometry(height: input[0], width: input[1])
        return [rows.output, columns.output, filters]
    }

    public func expectedWeights(inputShapes: [[Int]]) -> [WeightSpec] {
        let inputChannels = inputShapes[0].last ?? 0
        var specs = [WeightSpec("kernel", [kernelSize.0, kernelSize.1, inputChannels / groups, filters])]
        if useBias { specs.append(WeightSpec("bias", [filters])) }
        return specs
    }

    public func setWeights(_ weights: [String: Tensor]) {
        if let kernel = weights["kernel"] { self.kernel = kernel }
        bias = useBias ? weights["bias"] : nil
    }

    public var weights: [String: Tensor] {
        var result = ["kernel": kernel]
        if let bias { result["bias"] = bias }
        return result
    }

    private var isPointwise: Bool {
        kernelSize == (1, 1) && strides == (1, 1) && groups == 1 && extraPadding.0 == (0, 0) && extraPadding.1 == (0, 0)
    }

    /// Output rows (over batch × height) gathered per GEMM.
    private func chunkRows(outputWidth: Int, patch: Int, totalRows: Int) -> Int {
        let budget = 4 << 20
        return max(1, min(totalRows, budget / max(outputWidth * patch, 1)))
    }

    public func scratchCount(inputs: [[Int]], output: [Int]) -> Int {
        if isPointwise { return 0 }
        let patch = kernelSize.0 * kernelSize.1 * (inputs[0][3] / groups)
        let rows = chunkRows(outputWidth: output[2], patch: patch, totalRows: output[0] * output[1])
        return rows * output[2] * patch
    }

    public func forward(_ inputs: [ActivationView], into output: MutableActivationView, scratch: UnsafeMutablePointer<Float>) {
        let input = inputs[0]
        let (batch, height, width, channels) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
        let (outputHeight, outputWidth) = (output.shape[1], output.shape[2])
        let groupChannels = channels / groups, groupFilters = filters / groups
        let (kernelHeight, kernelWidth) = kernelSize
        let (rows, columns) = geometry(height: height, width: width)
        let (padTop, padLeft) = (rows.before, columns.before)
        kernel.scalars.withUnsafeBufferPointer { kernelBuffer in
            let k = kernelBuffer.baseAddress!
            if isPointwise {
                matrixMultiply(m: batch * height * width, n: filters, k: channels, a: input.data, lda: channels,
                               b: k, ldb: filters, c: output.data, ldc: filters)
                return
            }
            let patch = kernelHeight * kernelWidth * groupChannels
            let totalRows = batch * outputHeight
            let rowsPerChunk = chunkRows(outputWidth: outputWidth, patch: patch, totalRows: totalRows)
            let (strideY, strideX, dilationY, dilationX) = (strides.0, strides.1, dilation.0, dilation.1)
            for group in 0..<groups {
                var start = 0
                while start < totalRows {
                    let end = min(start + rowsPerChunk, totalRows)
                    // im2col: one patch row per output pixel, laid out (ky, kx, c) like the HWIO kernel.
                    parallelFor(end - start, work: (end - start) * outputWidth * patch) { local in
                        let row = start + local
                        let image = row / outputHeight, oy = row % outputHeight
                        let imageBase = input.data + image * height * width * channels + group * groupChannels
                        var destination = scratch + local * outputWidth * patch
                        for ox in 0..<outputWidth {
                            for ky in 0..<kernelHeight {
                                let iy = oy * strideY - padTop + ky * dilationY
                                for kx in 0..<kernelWidth {
                                    let ix = ox * strideX - padLeft + kx * dilationX
                                    if iy >= 0 && iy < height && ix >= 0 && ix < width {
                                        let source = imageBase + (iy * width + ix) * channels
                                        destination.update(from: source, count: groupChannels)
                                    } else {
                                        destination.update(repeating: 0, count: groupChannels)
                                    }
                                    destination += groupChannels
                                }
                            }
                        }
                    }
                    matrixMultiply(m: (end - start) * outputWidth, n: groupFilters, k: patch, a: scratch, lda: patch,
                                   b: k + group * groupFilters, ldb: filters,
                                   c: output.data + start * outputWidth * filters + group * groupFilters, ldc: filters)
                    start = end
                }
            }
        }
        applyBiasAndActivation(output.data, pixels: output.count / filters, channels: filters,
                               bias: bias, activation: activation)
    }
}

/// Output size and zeros before for each spatial axis of a convolution window, where
/// `extraPadding` zeros (merged from a `ZeroPadding2D`) surround the input before `padding` applies.
func spatialGeometry(height: Int, width: Int, kernelSize: (Int, Int), strides: (Int, Int), dilation: (Int, Int),
                     padding: Padding, extraPadding: ((Int, Int), (Int, Int)))
    -> (rows: (output: Int, before: Int), columns: (output: Int, before: Int)) {
    let paddedHeight = height < 0 ? -1 : height + extraPadding.0.0 + extraPadding.0.1
    let paddedWidth = width < 0 ? -1 : width + extraPadding.1.0 + extraPadding.1.1
    let rows = padding.window(input: paddedHeight, kernel: kernelSize.0, stride: strides.0, dilation: dilation.0)
    let columns = padding.window(input: paddedWidth, kernel: kernelSize.1, stride: strides.1, dilation: dilation.1)
    return ((rows.output, rows.before + extraPadding.0.0), (columns.output, columns.before + extraPadding.1.0))
}

/// Adds a per-channel bias and applies an activation over `pixels × channels` values, on all cores.
func applyBiasAndActivation(_ data: UnsafeMutablePointer<Float>, pixels: Int, channels: Int,
                            bias: Tensor?, activation: Activation) {
    if bias == nil && activation.isLinear { return }
    let biasScalars = bias?.scalars
    parallelChunks(pixels, work: pixels * channels) { range in
        let base = data + range.lowerBound * channels
        if let biasScalars {
            biasScalars.withUnsafeBufferPointer { b in
                let bp = b.baseAddress!
                for pixel in 0..<range.count {
                    let row = base + pixel * channels
                    for c in 0..<channels { row[c] += bp[c] }
                }
            }
        }
        activation.apply(base, count: range.count * channels, lastAxis: channels)
    }
}
