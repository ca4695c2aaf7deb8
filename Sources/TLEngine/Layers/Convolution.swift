import COpenBLAS
import Foundation
import TLTensor

/// Keras `Conv2D`: a 2-D convolution over NHWC activations, computed as a GEMM.
///
/// - `kernel`: HWIO `[kernelHeight, kernelWidth, inputChannels / groups, filters]`
/// - `bias`: `[filters]` when `useBias`
///
/// Output pixels run in blocks of up to 256, one thread per block: 1×1 stride-1 convolutions
/// multiply the block's NHWC input rows directly, every other case first gathers its image
/// patches (im2col) into the thread's part of the scratch buffer; bias and activation follow
/// while the block's output is still in cache.
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

    /// How `forward` tiles the output pixels (batch × height × width): blocks of `blockPixels`
    /// rows, each gathered, multiplied and finished (bias, activation) by one thread while it is
    /// still in cache; `threads` contiguous runs of blocks, one per core when the work is large.
    private func tiling(pixels: Int, patch: Int) -> (blockPixels: Int, threads: Int) {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let threads = (pixels * filters * patch >= 2_000_000 && pixels >= 2 * cores) ? cores : 1
        // 256 rows amortise OpenBLAS's packing of the kernel and keep a block's patches and
        // outputs within L2; smaller inputs still give every thread a block.
        let blockPixels = max(1, min(256, (pixels + threads - 1) / threads))
        return (blockPixels, threads)
    }

    public func scratchCount(inputs: [[Int]], output: [Int]) -> Int {
        if isPointwise { return 0 }
        let patch = kernelSize.0 * kernelSize.1 * (inputs[0][3] / groups)
        let (blockPixels, threads) = tiling(pixels: output[0] * output[1] * output[2], patch: patch)
        return threads * blockPixels * patch
    }

    public func forward(_ inputs: [ActivationView], into output: MutableActivationView, scratch: UnsafeMutablePointer<Float>) {
        OpenBLASThreads.configureOnce
        let input = inputs[0]
        let (batch, height, width, channels) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
        let (outputHeight, outputWidth) = (output.shape[1], output.shape[2])
        let groupChannels = channels / groups, groupFilters = filters / groups
        let (kernelHeight, kernelWidth) = kernelSize
        let (rows, columns) = geometry(height: height, width: width)
        let (padTop, padLeft) = (rows.before, columns.before)
        let (strideY, strideX, dilationY, dilationX) = (strides.0, strides.1, dilation.0, dilation.1)
        let pointwise = isPointwise
        let patch = kernelHeight * kernelWidth * groupChannels
        let pixels = batch * outputHeight * outputWidth
        let (blockPixels, threads) = tiling(pixels: pixels, patch: patch)
        let blockCount = (pixels + blockPixels - 1) / blockPixels
        let filters = filters, groups = groups, activation = activation
        let biasScalars = bias?.scalars ?? []

        /// im2col of output pixels `start..<start + count` for one group: one patch row per
        /// pixel, laid out (ky, kx, c) like the HWIO kernel.
        func gatherPatches(start: Int, count: Int, group: Int, into destination: UnsafeMutablePointer<Float>) {
            // With one group and undilated columns, a kernel row's taps are one contiguous run
            // (one copy instead of `kernelWidth` copies of a few channels, e.g. RGB stems).
            let rowsAreContiguous = groups == 1 && dilationX == 1
            let kernelRowCount = kernelWidth * channels
            var destination = destination
            var image = start / (outputHeight * outputWidth)
            var oy = (start / outputWidth) % outputHeight, ox = start % outputWidth
            for _ in 0..<count {
                let imageBase = input.data + image * height * width * channels + group * groupChannels
                let firstColumn = ox * strideX - padLeft
                for ky in 0..<kernelHeight {
                    let iy = oy * strideY - padTop + ky * dilationY
                    if rowsAreContiguous && iy >= 0 && iy < height && firstColumn >= 0 && firstColumn + kernelWidth <= width {
                        // The whole kernel row lies inside the image: its taps are adjacent pixels.
                        destination.update(from: imageBase + (iy * width + firstColumn) * channels, count: kernelRowCount)
                        destination += kernelRowCount
                        continue
                    }
                    for kx in 0..<kernelWidth {
                        let ix = ox * strideX - padLeft + kx * dilationX
                        if iy >= 0 && iy < height && ix >= 0 && ix < width {
                            destination.update(from: imageBase + (iy * width + ix) * channels, count: groupChannels)
                        } else {
                            destination.update(repeating: 0, count: groupChannels)
                        }
                        destination += groupChannels
                    }
                }
                ox += 1
                if ox == outputWidth {
                    ox = 0; oy += 1
                    if oy == outputHeight { oy = 0; image += 1 }
                }
            }
        }

        kernel.scalars.withUnsafeBufferPointer { kernelBuffer in
            biasScalars.withUnsafeBufferPointer { biasBuffer in
                let k = kernelBuffer.baseAddress!
                let biasPointer = biasBuffer.isEmpty ? nil : biasBuffer.baseAddress
                let run = { (thread: Int) in
                    let region = scratch + thread * blockPixels * patch
                    for block in (blockCount * thread / threads)..<(blockCount * (thread + 1) / threads) {
                        let start = block * blockPixels, count = min(blockPixels, pixels - start)
                        let destination = output.data + start * filters
                        for group in 0..<groups {
                            let a: UnsafePointer<Float>
                            let lda: Int
                            if pointwise {
                                (a, lda) = (UnsafePointer(input.data + start * channels), channels)
                            } else {
                                gatherPatches(start: start, count: count, group: group, into: region)
                                (a, lda) = (UnsafePointer(region), patch)
                            }
                            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(count), Int32(groupFilters),
                                        Int32(patch), 1, a, Int32(lda), k + group * groupFilters, Int32(filters),
                                        0, destination + group * groupFilters, Int32(filters))
                        }
                        addBiasAndActivate(destination, pixels: count, channels: filters, bias: biasPointer,
                                           activation: activation)
                    }
                }
                if threads == 1 { run(0) } else { concurrentPerform(iterations: threads, run) }
            }
        }
    }
}

/// Adds a per-channel bias (when given) and applies an activation over `pixels × channels`
/// values on the calling thread, for epilogues that run right after their block's GEMM.
@inline(__always)
func addBiasAndActivate(_ data: UnsafeMutablePointer<Float>, pixels: Int, channels: Int,
                        bias: UnsafePointer<Float>?, activation: Activation) {
    if let bias {
        for pixel in 0..<pixels {
            let row = data + pixel * channels
            for c in 0..<channels { row[c] += bias[c] }
        }
    }
    activation.apply(data, count: pixels * channels, lastAxis: channels)
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
