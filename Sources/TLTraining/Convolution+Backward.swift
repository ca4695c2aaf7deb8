import CKernels
import Foundation
import TLEngine
import TLTensor

// MARK: - Patches

/// Where a convolution's windows sit: the im2col layout shared by the forward and backward
/// passes. A patch row holds `[ky, kx, c]` for one output pixel and one channel group, the order
/// of an HWIO kernel's rows, so `patches · kernel` is the convolution.
struct ConvolutionWindows {
    let batch: Int, height: Int, width: Int, channels: Int
    let outputHeight: Int, outputWidth: Int
    let kernelHeight: Int, kernelWidth: Int
    let strideY: Int, strideX: Int, dilationY: Int, dilationX: Int
    let padTop: Int, padLeft: Int
    let groups: Int

    /// The windows of a layer with these settings between NHWC `input` and `output` shapes;
    /// `padding` is the layer's geometry (zeros before each spatial axis).
    init(input: [Int], output: [Int], kernelSize: (Int, Int), strides: (Int, Int), dilation: (Int, Int),
         padding: (rows: (output: Int, before: Int), columns: (output: Int, before: Int)), groups: Int) {
        (batch, height, width, channels) = (input[0], input[1], input[2], input[3])
        (outputHeight, outputWidth) = (output[1], output[2])
        (kernelHeight, kernelWidth) = kernelSize
        (strideY, strideX) = strides
        (dilationY, dilationX) = dilation
        (padTop, padLeft) = (padding.rows.before, padding.columns.before)
        self.groups = groups
    }

    var groupChannels: Int { channels / groups }
    /// Length of a patch row.
    var patchLength: Int { kernelHeight * kernelWidth * groupChannels }
    /// Output pixels over the whole batch.
    var pixels: Int { batch * outputHeight * outputWidth }

    /// The image of output pixel `pixel` (over the whole batch) and the input row and column of
    /// its window's first tap (negative inside the padding).
    func window(of pixel: Int) -> (image: Int, top: Int, left: Int) {
        let perImage = outputHeight * outputWidth
        let position = pixel % perImage
        return (pixel / perImage, position / outputWidth * strideY - padTop, position % outputWidth * strideX - padLeft)
    }

    /// Pixels per block, so a block's patches stay near 16 MB.
    var blockPixels: Int { max(1, min(pixels, 4_194_304 / max(1, patchLength))) }

    /// Copies the patches of output pixels `range` for channel group `group` into `patches`
    /// (`range.count × patchLength`); cells outside the image are zero.
    func gather(_ input: UnsafePointer<Float>, pixels range: Range<Int>, group: Int, into patches: UnsafeMutablePointer<Float>) {
        let gc = groupChannels, length = patchLength
        // With one group and undilated columns, a kernel row inside the image is one contiguous
        // run of the input (one copy instead of `kernelWidth` copies of a few channels: RGB stems).
        let rowsAreContiguous = groups == 1 && dilationX == 1, rowLength = kernelWidth * channels
        for (row, pixel) in range.enumerated() {
            let (image, top, left) = window(of: pixel)
            let destination = patches + row * length
            for ky in 0..<kernelHeight {
                let y = top + ky * dilationY
                if rowsAreContiguous && y >= 0 && y < height && left >= 0 && left + kernelWidth <= width {
                    (destination + ky * rowLength).update(from: input + ((image * height + y) * width + left) * channels, count: rowLength)
                    continue
                }
                for kx in 0..<kernelWidth {
                    let x = left + kx * dilationX
                    let cell = destination + (ky * kernelWidth + kx) * gc
                    if y < 0 || y >= height || x < 0 || x >= width {
                        cell.update(repeating: 0, count: gc)
                    } else {
                        cell.update(from: input + ((image * height + y) * width + x) * channels + group * gc, count: gc)
                    }
                }
            }
        }
    }

    /// Pixels per block in the backward pass: a block's patches (either layout) near 4 MB, so the
    /// weight-gradient product sums over a few hundred pixels per call or more.
    var backwardBlockPixels: Int { max(1, min(pixels, max(64, 1_048_576 / max(1, patchLength)))) }

    /// Adds patch gradients (`range.count × patchLength`, `gather`'s layout) back onto the input
    /// gradient: the transpose of `gather`.
    func scatter(_ patches: UnsafePointer<Float>, pixels range: Range<Int>, group: Int, into input: UnsafeMutablePointer<Float>) {
        let gc = groupChannels, length = patchLength
        for (row, pixel) in range.enumerated() {
            let (image, top, left) = window(of: pixel)
            let source = patches + row * length
            for ky in 0..<kernelHeight {
                let y = top + ky * dilationY
                guard y >= 0 && y < height else { continue }
                for kx in 0..<kernelWidth {
                    let x = left + kx * dilationX
                    guard x >= 0 && x < width else { continue }
                    let cell = source + (ky * kernelWidth + kx) * gc
                    let destination = input + ((image * height + y) * width + x) * channels + group * gc
                    for c in 0..<gc { destination[c] += cell[c] }
                }
            }
        }
    }
}

/// Columns `first..<first + count` of a row-major matrix with `columns` columns, contiguous.
func columnSlice(_ matrix: [Float], columns: Int, first: Int, count: Int) -> [Float] {
    if first == 0 && count == columns { return matrix }
    let rows = matrix.count / max(columns, 1)
    var result = [Float](repeating: 0, count: rows * count)
    for row in 0..<rows {
        for column in 0..<count { result[row * count + column] = matrix[row * columns + first + column] }
    }
    return result
}

/// `a[m × k] · b[k × n]` into a new array (every element written by the GEMM, so not zeroed first).
func matrixProduct(_ a: UnsafePointer<Float>, _ b: [Float], m: Int, k: Int, n: Int) -> [Float] {
    guard m > 0, n > 0, k > 0 else { return [Float](repeating: 0, count: max(0, m * n)) }
    return [Float](unsafeUninitializedCapacity: m * n) { out, initialized in
        b.withUnsafeBufferPointer { b in
            MatrixMultiply.multiply(a, b.baseAddress!, m: m, k: k, n: n, into: out.baseAddress!)
        }
        initialized = m * n
    }
}

extension Activation {
    /// Whether the derivative can be read off the output alone (`relu`: output > 0), so the
    /// engine's fused forward pass can serve training with nothing extra kept.
    var derivativeFollowsOutput: Bool {
        switch self {
        case .linear, .relu, .relu6, .sigmoid, .tanh: return true
        default: return false
        }
    }

    /// dLoss/dInput for an activation whose derivative follows its output.
    /// Element by element on the cores (a large activation, such as a stem's, is tens of MB).
    func backward(_ outputGradient: [Float], output: [Float]) -> [Float] {
        let rule: (Float, Float) -> Float
        switch self {
        case .relu: rule = { gradient, y in y > 0 ? gradient : 0 }
        case .relu6: rule = { gradient, y in y > 0 && y < 6 ? gradient : 0 }
        case .sigmoid: rule = { gradient, y in gradient * y * (1 - y) }
        case .tanh: rule = { gradient, y in gradient * (1 - y * y) }
        default: return outputGradient
        }
        let count = min(outputGradient.count, output.count)
        return [Float](unsafeUninitializedCapacity: count) { result, initialized in
            outputGradient.withUnsafeBufferPointer { g in
                output.withUnsafeBufferPointer { y in
                    let (g, y, result) = (g.baseAddress!, y.baseAddress!, result.baseAddress!)
                    parallelChunks(count, work: count) { range in for i in range { result[i] = rule(g[i], y[i]) } }
                }
            }
            initialized = count
        }
    }
}

/// The gradient with respect to a layer's pre-activation, from whichever of the saved
/// pre-activation or the output the forward pass kept.
func preActivationGradient(_ outputGradient: Tensor, activation: Activation, isPreActivation: Bool, saved: [Tensor],
                           output: Tensor) throws -> [Float] {
    if isPreActivation || activation == .linear { return outputGradient.scalars }
    if let z = saved.first {
        return try activation.backward(outputGradient.scalars, input: z.scalars, output: output.scalars, lastAxis: output.shape.last ?? 1)
    }
    return activation.backward(outputGradient.scalars, output: output.scalars)
}

// MARK: - Conv2D

extension Conv2D: DifferentiableLayer {
    func windows(input: [Int], output: [Int]) -> ConvolutionWindows {
        ConvolutionWindows(input: input, output: output, kernelSize: kernelSize, strides: strides, dilation: dilation,
                           padding: geometry(height: input[1], width: input[2]), groups: groups)
    }

    /// The engine's forward pass when the activation's derivative follows from the output;
    /// otherwise the pre-activation is computed here (patches · kernel + bias) and kept.
    public func trainingForward(_ inputs: [Tensor], mode: Mode, random: inout SeededRandom) throws -> (output: Tensor, saved: [Tensor]) {
        guard !addsResidual && !scalesInput else { throw TrainingError(name, "a fused convolution cannot be trained (train the unfused graph)") }
        if activation.derivativeFollowsOutput { return (try inferenceForward(inputs), []) }
        let input = inputs[0]
        let shape = [input.shape[0]] + (try outputShape(inputShapes: [Array(input.shape.dropFirst())]))
        let windows = self.windows(input: input.shape, output: shape)
        let groupFilters = filters / groups, length = windows.patchLength
        var z = [Float](repeating: 0, count: windows.pixels * filters)
        input.scalars.withUnsafeBufferPointer { source in
            var patches = [Float](repeating: 0, count: windows.blockPixels * length)
            for group in 0..<groups {
                let kernelColumns = columnSlice(kernel.scalars, columns: filters, first: group * groupFilters, count: groupFilters)
                for start in stride(from: 0, to: windows.pixels, by: windows.blockPixels) {
                    let range = start..<min(windows.pixels, start + windows.blockPixels)
                    patches.withUnsafeMutableBufferPointer { windows.gather(source.baseAddress!, pixels: range, group: group, into: $0.baseAddress!) }
                    let block = patches.withUnsafeBufferPointer { matrixProduct($0.baseAddress!, kernelColumns, m: range.count, k: length, n: groupFilters) }
                    for (row, pixel) in range.enumerated() {
                        for f in 0..<groupFilters { z[pixel * filters + group * groupFilters + f] = block[row * groupFilters + f] }
                    }
                }
            }
        }
        if let bias {
            for pixel in 0..<windows.pixels { for f in 0..<filters { z[pixel * filters + f] += bias.scalars[f] } }
        }
        var activated = z
        activated.withUnsafeMutableBufferPointer { activation.apply($0.baseAddress!, count: $0.count, lastAxis: filters) }
        return (Tensor(shape: shape, scalars: activated), [Tensor(shape: shape, scalars: z)])
    }

    /// dKernelᵀ = dzᵀ · patches, dBias = Σ dz, dInput = col2im(dz · kernelᵀ) (or, at stride 1, a
    /// convolution of dz), per channel group and pixel block. Patches are gathered as the forward
    /// pass gathers them (contiguous runs) and read in place as the product's right-hand side.
    /// Undilated, ungrouped layers skip the patches (`directKernelGradientSums`).
    ///
    /// The batch is cut into a fixed number of parts (at most 4, by image) that run on the cores
    /// side by side, each with single-threaded products, its own kernel-gradient sum and its own
    /// images' input gradient; the parts' sums are added in order at the end, so the bits do not
    /// depend on the thread count. kernelᵀ is packed once per call.
    public func backward(_ outputGradient: Tensor, isPreActivation: Bool, needsInputGradients: Bool, inputs: [Tensor], output: Tensor, saved: [Tensor],
                         accumulate: GradientSink) throws -> [Tensor] {
        let input = inputs[0]
        let windows = self.windows(input: input.shape, output: output.shape)
        let dz = try preActivationGradient(outputGradient, activation: activation, isPreActivation: isPreActivation, saved: saved, output: output)
        let groupFilters = filters / groups, length = windows.patchLength, filters = self.filters, groups = self.groups
        let block = windows.backwardBlockPixels
        let imagePixels = windows.outputHeight * windows.outputWidth
        let parts = max(1, min(windows.batch, 4))
        // Stride 1, undilated, one group: dInput is itself a convolution, run on the engine's
        // blocked forward path instead of patch gradients scattered back.
        let asConvolution = needsInputGradients && strides == (1, 1) && dilation == (1, 1) && groups == 1
        let scatters = needsInputGradients && !asConvolution
        // Undilated, ungrouped layers take their kernel gradient straight from the padded input and
        // dz; a strided one only with channels enough to fill the kernel's 8-channel strips (an RGB
        // stem's 363-long patches suit im2col better).
        let direct = dilation == (1, 1) && groups == 1 && !scatters && (strides == (1, 1) || windows.channels >= 16)
        if direct && tl_conv_kernel_gradient_runs_direct() != 0 {
            let sums = directKernelGradientSums(input, dz: dz, windows: windows, parts: parts)
            let count = length * filters
            accumulate.write("kernel", count: count) { gradient, accumulating in
                sums.withUnsafeBufferPointer { sums in
                    parallelChunks(count, work: count * parts) { range in
                        for index in range {
                            var total = sums[index]
                            for part in 1..<parts { total += sums[part * count + index] }
                            gradient[index] = accumulating ? gradient[index] + total : total
                        }
                    }
                }
            }
            if useBias { accumulate("bias", channelSums(dz, channels: filters)) }
            if asConvolution { return [try inputGradientByConvolution(dz, windows: windows, outputShape: output.shape)] }
            return [Tensor(shape: [0])]
        }
        // kernelᵀ per group (`groupFilters × length`), the right-hand side of dz · kernelᵀ.
        let transposedKernels: [MatrixMultiply.PackedOperand] = !scatters ? [] : (0..<groups).map { group in
            let slice = columnSlice(kernel.scalars, columns: filters, first: group * groupFilters, count: groupFilters)
            let transposed = slice.withUnsafeBufferPointer { MatrixMultiply.transposed($0.baseAddress!, rows: length, columns: groupFilters) }
            return transposed.withUnsafeBufferPointer {
                MatrixMultiply.PackedOperand($0.baseAddress!, rows: groupFilters, columns: length, leadingDimension: length)
            }
        }
        var partSums = [Float](unsafeUninitializedCapacity: parts * length * filters) { _, count in count = parts * length * filters }
        var inputGradient = [Float](repeating: 0, count: scatters ? input.count : 0)
        let threads = engineThreads
        // Per thread: the block's patches, its patch gradients (strided convolutions) and dzᵀ.
        let perThread = (scatters ? 2 : 1) * block * length + block * groupFilters
        var scratch = [Float](unsafeUninitializedCapacity: threads * perThread) { _, count in count = threads * perThread }
        input.scalars.withUnsafeBufferPointer { source in
            dz.withUnsafeBufferPointer { dz in
                partSums.withUnsafeMutableBufferPointer { sums in
                    inputGradient.withUnsafeMutableBufferPointer { inputGradient in
                        scratch.withUnsafeMutableBufferPointer { scratch in
                            concurrentPerform(iterations: parts) { part, thread in
                                let patches = scratch.baseAddress! + thread * perThread
                                let dzTransposed = patches + block * length
                                let patchGradient = dzTransposed + block * groupFilters
                                let sum = sums.baseAddress! + part * length * filters
                                let first = windows.batch * part / parts * imagePixels
                                let last = windows.batch * (part + 1) / parts * imagePixels
                                // No output pixels (a window wider than the image): nothing to sum.
                                if first == last { sum.update(repeating: 0, count: length * filters) }
                                for group in 0..<groups {
                                    for start in stride(from: first, to: last, by: block) {
                                        let range = start..<min(last, start + block)
                                        let dzBlock = dz.baseAddress! + start * filters + group * groupFilters
                                        windows.gather(source.baseAddress!, pixels: range, group: group, into: patches)
                                        for row in 0..<range.count {
                                            for f in 0..<groupFilters { dzTransposed[f * range.count + row] = dzBlock[row * filters + f] }
                                        }
                                        // The patches, used once, are read where they lie (no packed copy).
                                        MatrixMultiply.multiply(dzTransposed, lda: range.count, m: groupFilters, patches, ldb: length,
                                                                k: range.count, n: length, into: sum + group * groupFilters * length,
                                                                ldc: length, accumulating: start > first)
                                        guard scatters else { continue }
                                        MatrixMultiply.multiply(dzBlock, lda: filters, m: range.count, by: transposedKernels[group],
                                                                into: patchGradient, ldc: length, accumulating: false)
                                        windows.scatter(patchGradient, pixels: range, group: group, into: inputGradient.baseAddress!)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        accumulate.write("kernel", count: length * filters) { gradient, accumulating in
            partSums.withUnsafeBufferPointer { sums in
                let count = length * filters
                // The parts hold dKernelᵀ (`filters × length`); the kernel is `length × filters`.
                parallelChunks(length, work: count * parts) { rows in
                    for row in rows {
                        for f in 0..<filters {
                            var total = sums[f * length + row]
                            for part in 1..<parts { total += sums[part * count + f * length + row] }
                            let index = row * filters + f
                            gradient[index] = accumulating ? gradient[index] + total : total
                        }
                    }
                }
            }
        }
        if useBias { accumulate("bias", channelSums(dz, channels: filters)) }
        if asConvolution { return [try inputGradientByConvolution(dz, windows: windows, outputShape: output.shape)] }
        return needsInputGradients ? [Tensor(shape: input.shape, scalars: inputGradient)] : [Tensor(shape: [0])]
    }

    /// The kernel gradient of an undilated, ungrouped convolution as per-part sums in
    /// the kernel's layout (`parts × length × filters`, parts as `backward` cuts the batch): each
    /// image is copied into a zero-padded buffer and `tl_conv_kernel_gradient` reads it and dz
    /// where they lie, with no patches gathered.
    private func directKernelGradientSums(_ input: Tensor, dz: [Float], windows: ConvolutionWindows, parts: Int) -> [Float] {
        let (kh, kw) = kernelSize, channels = windows.channels, filters = self.filters
        let (paddedHeight, paddedWidth) = directPadded(height: windows.outputHeight, width: windows.outputWidth)
        let count = windows.patchLength * filters, paddedSize = paddedHeight * paddedWidth * channels
        let (imageSize, outputSize) = (windows.height * windows.width * channels, windows.outputHeight * windows.outputWidth * filters)
        var shape = TLKernelGradientShape(paddedWidth: Int32(paddedWidth), channels: Int32(channels),
                                          outputHeight: Int32(windows.outputHeight), outputWidth: Int32(windows.outputWidth),
                                          filters: Int32(filters), kernelHeight: Int32(kh), kernelWidth: Int32(kw),
                                          strideY: Int32(strides.0), strideX: Int32(strides.1))
        var sums = [Float](repeating: 0, count: parts * count)
        // One padded image per thread; its border is written by nobody, so it stays zero.
        var padded = [Float](repeating: 0, count: engineThreads * paddedSize)
        input.scalars.withUnsafeBufferPointer { source in
            dz.withUnsafeBufferPointer { dz in
                sums.withUnsafeMutableBufferPointer { sums in
                    padded.withUnsafeMutableBufferPointer { padded in
                        concurrentPerform(iterations: parts) { part, thread in
                            let buffer = padded.baseAddress! + thread * paddedSize
                            let first = windows.batch * part / parts, last = windows.batch * (part + 1) / parts
                            for image in first..<last {
                                copyPadded(source.baseAddress! + image * imageSize, height: windows.height, width: windows.width,
                                           channels: channels, top: windows.padTop, left: windows.padLeft, into: buffer,
                                           paddedHeight: paddedHeight, paddedWidth: paddedWidth)
                                tl_conv_kernel_gradient(buffer, dz.baseAddress! + image * outputSize, &shape,
                                                        sums.baseAddress! + part * count, image > first ? 1 : 0)
                            }
                        }
                    }
                }
            }
        }
        return sums
    }

    /// dInput of a stride-1, undilated, ungrouped convolution: dz convolved with the kernel
    /// flipped in space, its channel axes swapped (`[kh, kw, filters, channels]`), padded so the
    /// result has the input's size: `kh − 1 − top` zeros before, the rest after.
    private func inputGradientByConvolution(_ dz: [Float], windows: ConvolutionWindows, outputShape: [Int]) throws -> Tensor {
        let (kh, kw) = kernelSize, channels = windows.channels, filters = self.filters
        var flipped = [Float](repeating: 0, count: kernel.count)
        kernel.scalars.withUnsafeBufferPointer { source in
            for ky in 0..<kh {
                for kx in 0..<kw {
                    let from = ((kh - 1 - ky) * kw + (kw - 1 - kx)) * channels * filters
                    let to = (ky * kw + kx) * filters * channels
                    for c in 0..<channels { for f in 0..<filters { flipped[to + f * channels + c] = source[from + c * filters + f] } }
                }
            }
        }
        let transposed = Conv2D(name: name + "/input_gradient", filters: channels, kernelSize: kernelSize, padding: .valid, useBias: false)
        let top = kh - 1 - windows.padTop, left = kw - 1 - windows.padLeft
        transposed.extraPadding = ((top, windows.height - windows.outputHeight + windows.padTop),
                                   (left, windows.width - windows.outputWidth + windows.padLeft))
        transposed.setWeights(["kernel": Tensor(shape: [kh, kw, filters, channels], scalars: flipped)])
        return try transposed.inferenceForward([Tensor(shape: outputShape, scalars: dz)])
    }

    public var finalActivation: Activation? { activation }
}

/// Σ over every position of each channel (the last axis), in position order.
func channelSums(_ values: [Float], channels: Int) -> [Float] {
    var sums = [Float](repeating: 0, count: channels)
    let positions = values.count / max(channels, 1)
    values.withUnsafeBufferPointer { v in
        sums.withUnsafeMutableBufferPointer { sums in
            let (v, sums) = (v.baseAddress!, sums.baseAddress!)
            for position in 0..<positions {
                let row = v + position * channels
                for c in 0..<channels { sums[c] += row[c] }
            }
        }
    }
    return sums
}

// MARK: - DepthwiseConv2D

extension DepthwiseConv2D: DifferentiableLayer {
    func windows(input: [Int], output: [Int]) -> ConvolutionWindows {
        ConvolutionWindows(input: input, output: output, kernelSize: kernelSize, strides: strides, dilation: dilation,
                           padding: geometry(height: input[1], width: input[2]), groups: 1)
    }

    public func trainingForward(_ inputs: [Tensor], mode: Mode, random: inout SeededRandom) throws -> (output: Tensor, saved: [Tensor]) {
        if activation.derivativeFollowsOutput { return (try inferenceForward(inputs), []) }
        let input = inputs[0]
        let shape = [input.shape[0]] + (try outputShape(inputShapes: [Array(input.shape.dropFirst())]))
        let windows = self.windows(input: input.shape, output: shape)
        let m = depthMultiplier, outChannels = windows.channels * m
        var z = [Float](repeating: 0, count: windows.pixels * outChannels)
        visit(windows) { pixel, inputOffset, tap in
            for c in 0..<windows.channels {
                let x = input.scalars[inputOffset + c]
                for j in 0..<m { z[pixel * outChannels + c * m + j] += x * kernel.scalars[(tap * windows.channels + c) * m + j] }
            }
        }
        if let bias {
            for pixel in 0..<windows.pixels { for c in 0..<outChannels { z[pixel * outChannels + c] += bias.scalars[c] } }
        }
        var activated = z
        activated.withUnsafeMutableBufferPointer { activation.apply($0.baseAddress!, count: $0.count, lastAxis: outChannels) }
        return (Tensor(shape: shape, scalars: activated), [Tensor(shape: shape, scalars: z)])
    }

    /// Calls `body(pixel, inputOffset, tap)` for every in-bounds kernel tap of every output pixel,
    /// in pixel order then tap order.
    private func visit(_ windows: ConvolutionWindows, _ body: (Int, Int, Int) -> Void) {
        for pixel in 0..<windows.pixels {
            let (image, top, left) = windows.window(of: pixel)
            for ky in 0..<windows.kernelHeight {
                let y = top + ky * windows.dilationY
                guard y >= 0 && y < windows.height else { continue }
                for kx in 0..<windows.kernelWidth {
                    let x = left + kx * windows.dilationX
                    guard x >= 0 && x < windows.width else { continue }
                    body(pixel, ((image * windows.height + y) * windows.width + x) * windows.channels, ky * windows.kernelWidth + kx)
                }
            }
        }
    }

    public func backward(_ outputGradient: Tensor, isPreActivation: Bool, needsInputGradients: Bool, inputs: [Tensor], output: Tensor, saved: [Tensor],
                         accumulate: GradientSink) throws -> [Tensor] {
        let input = inputs[0]
        let windows = self.windows(input: input.shape, output: output.shape)
        let dz = try preActivationGradient(outputGradient, activation: activation, isPreActivation: isPreActivation, saved: saved, output: output)
        let m = depthMultiplier, channels = windows.channels, outChannels = channels * m
        var kernelGradient = [Float](repeating: 0, count: kernel.count)
        var inputGradient = [Float](repeating: 0, count: needsInputGradients ? input.count : 0)
        input.scalars.withUnsafeBufferPointer { x in
            kernel.scalars.withUnsafeBufferPointer { k in
                dz.withUnsafeBufferPointer { g in
                    kernelGradient.withUnsafeMutableBufferPointer { dk in
                        inputGradient.withUnsafeMutableBufferPointer { dx in
                            visit(windows) { pixel, inputOffset, tap in
                                let gradientRow = g.baseAddress! + pixel * outChannels
                                let kernelRow = k.baseAddress! + tap * outChannels
                                let kernelGradientRow = dk.baseAddress! + tap * outChannels
                                for c in 0..<channels {
                                    let value = x[inputOffset + c]
                                    var sum: Float = 0
                                    for j in 0..<m {
                                        kernelGradientRow[c * m + j] += value * gradientRow[c * m + j]
                                        sum += kernelRow[c * m + j] * gradientRow[c * m + j]
                                    }
                                    if needsInputGradients { dx[inputOffset + c] += sum }
                                }
                            }
                        }
                    }
                }
            }
        }
        accumulate("depthwise_kernel", kernelGradient)
        if useBias { accumulate("bias", channelSums(dz, channels: outChannels)) }
        return needsInputGradients ? [Tensor(shape: input.shape, scalars: inputGradient)] : [Tensor(shape: [0])]
    }

    public var finalActivation: Activation? { activation }
}

// MARK: - SeparableConv2D

extension SeparableConv2D: DifferentiableLayer {
    /// The depthwise pass (kept) then the pointwise one.
    public func trainingForward(_ inputs: [Tensor], mode: Mode, random: inout SeededRandom) throws -> (output: Tensor, saved: [Tensor]) {
        let middle = try depthwise.trainingForward(inputs, mode: mode, random: &random)
        let result = try pointwise.trainingForward([middle.output], mode: mode, random: &random)
        return (result.output, [middle.output] + result.saved)
    }

    public func backward(_ outputGradient: Tensor, isPreActivation: Bool, needsInputGradients: Bool, inputs: [Tensor], output: Tensor, saved: [Tensor],
                         accumulate: GradientSink) throws -> [Tensor] {
        let middle = saved[0]
        let middleGradient = try pointwise.backward(outputGradient, isPreActivation: isPreActivation, needsInputGradients: true,
                                                    inputs: [middle], output: output, saved: Array(saved.dropFirst()),
                                                    accumulate: accumulate.renamed { $0 == "kernel" ? "pointwise_kernel" : $0 })
        return try depthwise.backward(middleGradient[0], isPreActivation: false, needsInputGradients: needsInputGradients,
                                      inputs: inputs, output: middle, saved: [],
                                      accumulate: accumulate.renamed { $0 == "depthwise_kernel" ? $0 : nil })
    }

    public var finalActivation: Activation? { pointwise.finalActivation }
}

// MARK: - ChannelwiseConv2D

extension ChannelwiseConv2D: DifferentiableLayer {
    /// ConvNeXt's `groups == channels` Conv2D is its depthwise layer; only the kernel's name and
    /// shape differ (`[kh, kw, 1, C]` against `[kh, kw, C, 1]`, the same memory order).
    public func trainingForward(_ inputs: [Tensor], mode: Mode, random: inout SeededRandom) throws -> (output: Tensor, saved: [Tensor]) {
        try depthwise.trainingForward(inputs, mode: mode, random: &random)
    }

    public func backward(_ outputGradient: Tensor, isPreActivation: Bool, needsInputGradients: Bool, inputs: [Tensor], output: Tensor, saved: [Tensor],
                         accumulate: GradientSink) throws -> [Tensor] {
        try depthwise.backward(outputGradient, isPreActivation: isPreActivation, needsInputGradients: needsInputGradients,
                               inputs: inputs, output: output, saved: saved,
                               accumulate: accumulate.renamed { $0 == "depthwise_kernel" ? "kernel" : $0 })
    }

    public var finalActivation: Activation? { depthwise.finalActivation }
}
