import CKernels
import Foundation
import TLTensor

/// A 1×1 expansion, a depthwise convolution and a 1×1 projection (either 1×1 may be missing, not
/// both) run as one layer, row by row, so the wide intermediate tensors never leave the core's cache.
///
/// `Graph.fused()` builds it from MobileNetV2's `block_N_expand` → `block_N_depthwise` →
/// `block_N_project` (each already carrying its folded BatchNorm and activation, the projection
/// possibly its residual `Add`), and from MobileNet's `conv_pw` → `conv_dw` → `conv_pw` chains.
/// Unfused, a 112×112 block writes and re-reads two 4.8 MB tensors per image; here each thread
/// keeps a ring of the expanded input rows the depthwise windows of a group of output rows need
/// (3 rows for a 3×3 kernel and a group of one) and the group's depthwise output rows, and
/// computes, group by group:
///
/// 1. the expanded rows the group needs that are not in the ring yet (a GEMM over those image
///    rows: pixels × input channels · input channels × expanded channels);
/// 2. the depthwise output rows from the ring's row pointers (`tl_depthwise_row`);
/// 3. the projected output rows (a GEMM whose epilogue adds the bias and the residual rows).
///
/// A group holds enough output rows for about `groupPixels` pixels: one GEMM over a 14-pixel row
/// re-reads all of the block's weights for two row tiles, so narrow maps take several rows per
/// call (a GEMM row's sums do not depend on how many rows the call has, so the bits are the same).
///
/// Rows of one image are split between threads at batch 1 (each thread recomputes the one or
/// two expanded rows its range shares with the neighbour's). When the expanded tensor of one
/// image fits in L2 anyway (the 14×14 and 7×7 blocks, whose weights are the larger part), the
/// three layers run one after another on each image instead, since row-wise GEMMs would re-read
/// the weights once per row.
///
/// The expansion may also be a k×k convolution that runs by the direct path (`Conv2D.usesDirect`):
/// MobileNetV2's stem `Conv1` (3×3/2 from RGB) before `expanded_conv`, whose 112×112×32 output
/// (1.6 MB per image) then never leaves the cache either. Its ring rows are computed from a band
/// of zero-padded input rows (`Conv2D.forwardDirectRows`) instead of one GEMM over input rows.
///
/// Without a projection the block ends at the depthwise convolution, whose rows go straight to
/// the output: EfficientNet's `blockNx_expand_conv` → `blockNx_dwconv` (and `stem_conv` →
/// `block1a_dwconv`), where the squeeze-and-excitation needs the whole depthwise output before
/// anything is projected. Only the expanded tensor (block2a's 112×112×96, 4.8 MB per image) stays
/// in the cache then: EfficientNetB0 at batch 1 runs about 6 % faster (6 interleaved pairs of
/// `tlhub bench`, median 1.067); at batch 32 the swish after each layer, not memory, bounds
/// those blocks, and the fused ones run as fast as the unfused did.
public final class InvertedResidual: Layer {
    public let name: String
    /// The 1×1 expansion (or a k×k one by the direct path: a stem), or nil when the depthwise
    /// convolution reads the block input directly.
    let expand: Conv2D?
    /// Depth multiplier 1.
    let depthwise: DepthwiseConv2D
    /// The 1×1 projection, with `addsResidual` when the block ends in a residual `Add`; nil when
    /// the block ends at the depthwise convolution.
    let project: Conv2D?
    /// One image's expanded tensor from this size (bytes) on streams rows.
    let rowStreamingBytes: Int

    /// Joins two or three already-fused layers.
    /// - Precondition: `project` is a 1×1 stride-1 ungrouped convolution, `expand` one too or one
    ///   that `usesDirect`, `depthwise` has depth multiplier 1, and only `project` may add a residual;
    ///   `expand` and `project` are not both nil.
    init(expand: Conv2D?, depthwise: DepthwiseConv2D, project: Conv2D?, rowStreamingBytes: Int) {
        precondition(depthwise.depthMultiplier == 1 && (project?.isPointwise ?? (expand != nil)) && !(expand?.addsResidual ?? false)
                     && (expand.map { $0.isPointwise || $0.usesDirect } ?? true), "not an inverted residual chain")
        self.expand = expand
        self.depthwise = depthwise
        self.project = project
        self.rowStreamingBytes = rowStreamingBytes
        name = "\(expand?.name ?? depthwise.name)…\(project?.name ?? depthwise.name)"
    }

    /// The expansion when it reads windows of its input (a k×k stem by the direct path), else nil.
    private var stem: Conv2D? { expand.flatMap { $0.isPointwise ? nil : $0 } }

    /// Floats of the expansion's output for a full `inputShape` (batch first) when the executor
    /// sizes its micro-batches as if it were a tensor of its own: a stem's, or the expansion of a
    /// block without a projection (which unfused ran as a layer of its own); nil otherwise.
    package func expansionOutputCount(inputShape: [Int]) -> Int? {
        guard let expansion = stem ?? (project == nil ? expand : nil),
              let shape = try? expansion.outputShape(inputShapes: [Array(inputShape.dropFirst())]) else {
            return nil
        }
        return inputShape[0] * shape.reduce(1, *)
    }

    /// Per-sample shapes: block input, expanded, depthwise output.
    private func innerShapes(_ input: [Int]) throws -> (expanded: [Int], depthwise: [Int]) {
        let expanded = try expand?.outputShape(inputShapes: [input]) ?? input
        return (expanded, try depthwise.outputShape(inputShapes: [expanded]))
    }

    public var parameterVersion: Int {
        max(expand?.parameterVersion ?? 0, depthwise.parameterVersion, project?.parameterVersion ?? 0)
    }

    public func prepare() {
        expand?.prepare()
        depthwise.prepare()
        project?.prepare()
    }

    public func outputShape(inputShapes: [[Int]]) throws -> [Int] {
        let (_, middle) = try innerShapes(inputShapes[0])
        guard let project else { return middle }
        return try project.outputShape(inputShapes: [middle] + inputShapes.dropFirst())
    }

    /// Whether one image's expanded tensor is too large for L2, so rows stream instead.
    private func streamsRows(expanded: [Int]) -> Bool {
        expanded.reduce(1, *) * MemoryLayout<Float>.size >= rowStreamingBytes
    }

    /// Output pixels a streaming group aims at: 8 row tiles of the GEMM's micro-kernel (the
    /// 56-pixel rows take two at a time, the 14-pixel rows eight).
    static let groupPixels = 112

    /// Output rows per streaming group, for depthwise output rows `middle[2]` pixels wide.
    private func groupRows(middle: [Int]) -> Int {
        max(1, min(middle[1], (Self.groupPixels + middle[2] - 1) / middle[2]))
    }

    /// Expanded rows the ring holds: the depthwise windows of one group of output rows.
    private func ringRows(groupRows: Int) -> Int {
        (groupRows - 1) * depthwise.strides.0 + (depthwise.kernelSize.0 - 1) * depthwise.dilation.0 + 1
    }

    /// Per-thread scratch floats: the expanded-row ring and a group of depthwise rows when
    /// streaming rows (and a stem's band of padded input rows); one image's expanded and depthwise
    /// tensors otherwise (and a stem's scratch).
    private func scratchPerThread(input: [Int], expanded: [Int], middle: [Int]) -> Int {
        // Shapes are [1, height, width, channels].
        if streamsRows(expanded: expanded) {
            let group = groupRows(middle: middle), ring = ringRows(groupRows: group)
            let band = stem?.directBandCount(outputRows: ring, outputWidth: expanded[2], inputChannels: input[3]) ?? 0
            return (expand == nil ? 0 : ring * expanded[2] * expanded[3]) + (project == nil ? 0 : group * middle[2] * middle[3]) + band
        }
        let stemScratch = stem?.scratchCount(inputs: [input], output: expanded) ?? 0
        return (expand == nil ? 0 : expanded.reduce(1, *)) + (project == nil ? 0 : middle.reduce(1, *)) + stemScratch
    }

    public func scratchCount(inputs: [[Int]], output: [Int]) -> Int {
        guard let (expanded, middle) = try? innerShapes(Array(inputs[0].dropFirst())) else { return 0 }
        let perThread = scratchPerThread(input: [1] + inputs[0].dropFirst(), expanded: [1] + expanded, middle: [1] + middle)
        return perThread * (inputs[0][0] == 1 && !streamsRows(expanded: [1] + expanded) ? 1 : engineThreads)
    }

    public func forward(_ inputs: [ActivationView], into output: MutableActivationView, scratch: UnsafeMutablePointer<Float>) {
        let input = inputs[0]
        let batch = input.shape[0]
        guard let (expandedSample, middleSample) = try? innerShapes(Array(input.shape.dropFirst())) else { return }
        let expanded = [1] + expandedSample, middle = [1] + middleSample
        let perThread = scratchPerThread(input: [1] + input.shape.dropFirst(), expanded: expanded, middle: middle)
        let residual = inputs.count > 1 ? inputs[1] : nil
        if streamsRows(expanded: expanded) {
            let threads = engineThreads
            let outputHeight = output.shape[1]
            if batch >= threads {
                let group = groupRows(middle: middle)
                concurrentPerform(iterations: batch) { image, thread in
                    var next = 0
                    self.streamRows(0..<outputHeight, image: image, input: input, residual: residual, output: output,
                                    expanded: expanded, middle: middle, group: group, scratch: scratch + thread * perThread) {
                        defer { next += 1 }
                        return next * group < outputHeight ? next : nil
                    }
                }
                return
            }
            // Fewer images than cores: each image's rows in runs that two items stream from
            // opposite ends, group by group, until they meet, so a core the host slows down (or a
            // worker that wakes late) streams fewer rows instead of holding up the layer. Only
            // the expanded rows either side of where they meet are computed twice. A run has at
            // least four groups (the 14-row maps of MobileNetV2's 14×14 blocks take groups of 4
            // rows instead of 8), so the ends have some to share.
            let runs = max(1, (threads + 2 * batch - 1) / (2 * batch))
            let group = min(groupRows(middle: middle), max(1, (outputHeight / runs + 3) / 4))
            func rows(ofRun run: Int) -> Range<Int> { (outputHeight * run / runs)..<(outputHeight * (run + 1) / runs) }
            withUnsafeTemporaryAllocation(of: UInt64.self, capacity: batch * runs) { claims in
                for item in claims.indices {
                    claims[item] = UInt64((rows(ofRun: item % runs).count + group - 1) / group) << 32
                }
                concurrentPerform(iterations: batch * runs * 2) { item, thread in
                    let run = item / 2 % runs, image = item / 2 / runs, fromEnd = Int32(item % 2)
                    self.streamRows(rows(ofRun: run), image: image, input: input, residual: residual, output: output,
                                    expanded: expanded, middle: middle, group: group, scratch: scratch + thread * perThread) {
                        let index = tl_claim_from(claims.baseAddress! + item / 2, fromEnd)
                        return index < 0 ? nil : Int(index)
                    }
                }
            }
        } else if batch == 1 {
            runLayers(image: 0, input: input, residual: residual, output: output, expanded: expanded, middle: middle,
                      scratch: scratch)
        } else {
            // Nested parallel loops run serially, so each image runs on one thread.
            concurrentPerform(iterations: batch) { image, thread in
                runLayers(image: image, input: input, residual: residual, output: output, expanded: expanded,
                          middle: middle, scratch: scratch + thread * perThread)
            }
        }
    }

    /// One image through the three layers in turn, intermediates in `scratch`.
    private func runLayers(image: Int, input: ActivationView, residual: ActivationView?, output: MutableActivationView,
                           expanded: [Int], middle: [Int], scratch: UnsafeMutablePointer<Float>) {
        func slice(_ view: ActivationView) -> ActivationView {
            let count = view.count / view.shape[0]
            return ActivationView(data: view.data + image * count, shape: [1] + view.shape.dropFirst())
        }
        let outputCount = output.count / output.shape[0]
        let blockOutput = MutableActivationView(data: output.data + image * outputCount, shape: [1] + output.shape.dropFirst())
        var depthwiseInput = slice(input)
        var next = scratch
        if let expand {
            let expandedView = MutableActivationView(data: next, shape: expanded)
            // A stem's padded copy goes past the intermediate tensors; a 1×1 expansion needs none.
            let expandScratch = stem == nil ? next : next + expanded.reduce(1, *) + (project == nil ? 0 : middle.reduce(1, *))
            expand.forward([depthwiseInput], into: expandedView, scratch: expandScratch)
            depthwiseInput = ActivationView(data: next, shape: expanded)
            next += expanded.reduce(1, *)
        }
        guard let project else {
            depthwise.forward([depthwiseInput], into: blockOutput, scratch: next)
            return
        }
        depthwise.forward([depthwiseInput], into: MutableActivationView(data: next, shape: middle), scratch: next)
        let projectInputs = [ActivationView(data: next, shape: middle)] + (residual.map { [slice($0)] } ?? [])
        project.forward(projectInputs, into: blockOutput, scratch: next)
    }

    /// Groups of output rows in `rows` of one image, streaming: expanded rows into a ring, then a
    /// group of depthwise rows and their projection at a time (without a projection, the
    /// depthwise rows are the output rows). `nextGroup` names the groups (of `group` ≤ `groupRows`
    /// rows from `rows.lowerBound`) one at a time, nil when done: consecutive ones, downwards or upwards.
    private func streamRows(_ rows: Range<Int>, image: Int, input: ActivationView, residual: ActivationView?,
                            output: MutableActivationView, expanded: [Int], middle: [Int], group: Int,
                            scratch: UnsafeMutablePointer<Float>, nextGroup: () -> Int?) {
        let (inputHeight, inputWidth, inputChannels) = (input.shape[1], input.shape[2], input.shape[3])
        // The depthwise convolution's input: the expanded rows (the block input's, but for a stem's).
        let (height, width, channels) = (expanded[1], expanded[2], expanded[3])
        let (outputWidth, filters) = (output.shape[2], output.shape[3])
        let (kernelHeight, kernelWidth) = depthwise.kernelSize
        let (strideY, strideX) = depthwise.strides
        let (dilationY, dilationX) = depthwise.dilation
        let geometry = depthwise.geometry(height: height, width: width)
        let (padTop, padLeft) = (geometry.rows.before, geometry.columns.before)
        let ringRows = ringRows(groupRows: group)
        let windowRows = (kernelHeight - 1) * dilationY + 1
        let rowFloats = width * channels
        let ring = scratch
        let groupRegion = expand == nil ? scratch : scratch + ringRows * rowFloats
        let band = groupRegion + (project == nil ? 0 : group * middle[2] * middle[3])  // a stem's padded input rows
        let imageInput = input.data + image * inputHeight * inputWidth * inputChannels
        let imageOutput = output.data + image * output.shape[1] * outputWidth * filters
        let imageResidual = residual.map { $0.data + image * output.shape[1] * outputWidth * filters }
        var computed = 0..<0  // expanded rows in the ring

        let stem = self.stem  // its rows by the direct path
        let expandPacked = expand?.packedKernelPointer, expandBias = expand?.biasPointer
        let expandWeights = stem == nil ? expand?.gemmWeights : nil
        // Fetched once: the packed panels are looked up under a lock (they repack after a
        // weight change), which the per-group loop below must not take.
        let projectWeights = project?.gemmWeights, projectBias = project?.biasPointer
        let expandActivation = expand?.activation ?? .linear
        let (expandLow, expandHigh) = expandActivation.clampBounds ?? (-.infinity, .infinity)
        let (depthwiseLow, depthwiseHigh) = depthwise.activation.clampBounds ?? (-.infinity, .infinity)
        let projectActivation = project?.activation ?? .linear
        let (projectLow, projectHigh) = projectActivation.clampBounds ?? (-.infinity, .infinity)

        depthwise.kernel.scalars.withUnsafeBufferPointer { depthwiseKernel in
            (depthwise.bias?.scalars ?? []).withUnsafeBufferPointer { depthwiseBiasBuffer in
                let depthwiseBias = depthwiseBiasBuffer.isEmpty ? nil : depthwiseBiasBuffer.baseAddress
                withUnsafeTemporaryAllocation(of: UnsafePointer<Float>?.self, capacity: kernelHeight) { taps in
                    while let groupIndex = nextGroup() {
                        let groupStart = rows.lowerBound + groupIndex * group
                        let groupEnd = min(groupStart + group, rows.upperBound)
                        if let expandPacked {
                            // The group's window rows not in the ring yet: below the computed ones
                            // going down, above them going up, all of them after a jump. They
                            // overwrite only rows outside the window (ring slots are rows modulo
                            // `ringRows`), in at most two runs of consecutive slots each.
                            func expandRows(_ span: Range<Int>) {
                                var row = span.lowerBound
                                while row < span.upperBound {
                                    let slot = row % ringRows, count = min(span.upperBound - row, ringRows - slot)
                                    let destination = ring + slot * rowFloats
                                    if let stem {
                                        stem.forwardDirectRows(row..<row + count, image: imageInput, height: inputHeight,
                                                               width: inputWidth, packed: expandPacked, band: band, into: destination)
                                    } else if let expandWeights {
                                        expandWeights.multiply(rows: count * width, imageInput + row * width * inputChannels,
                                                               lda: inputChannels, columns: 0, channels, bias: expandBias,
                                                               residual: nil, ldr: 0, low: expandLow, high: expandHigh,
                                                               into: destination, ldc: channels)
                                        if expandActivation.clampBounds == nil {
                                            expandActivation.apply(destination, count: count * rowFloats, lastAxis: channels)
                                        }
                                    }
                                    row += count
                                }
                            }
                            let window = max(groupStart * strideY - padTop, 0)..<min((groupEnd - 1) * strideY - padTop + windowRows, height)
                            if computed.overlaps(window) {
                                expandRows(window.lowerBound..<max(window.lowerBound, computed.lowerBound))
                                expandRows(min(window.upperBound, computed.upperBound)..<window.upperBound)
                            } else {
                                expandRows(window)
                            }
                            computed = window
                        }
                        let depthwiseRows = projectWeights == nil ? imageOutput + groupStart * outputWidth * filters : groupRegion
                        for outputRow in groupStart..<groupEnd {
                            let top = outputRow * strideY - padTop
                            for ky in 0..<kernelHeight {
                                let row = top + ky * dilationY
                                guard row >= 0 && row < height else { taps[ky] = nil; continue }
                                taps[ky] = expand == nil ? UnsafePointer(imageInput + row * rowFloats)
                                                         : UnsafePointer(ring + (row % ringRows) * rowFloats)
                            }
                            tl_depthwise_row(taps.baseAddress!, Int32(width), Int32(channels), depthwiseKernel.baseAddress!,
                                             Int32(kernelHeight), Int32(kernelWidth), Int32(strideX), Int32(dilationX),
                                             Int32(padLeft), Int32(outputWidth), depthwiseBias, depthwiseLow, depthwiseHigh,
                                             depthwiseRows + (outputRow - groupStart) * outputWidth * channels)
                        }
                        let pixels = (groupEnd - groupStart) * outputWidth
                        if depthwise.activation.clampBounds == nil {
                            depthwise.activation.apply(depthwiseRows, count: pixels * channels, lastAxis: channels)
                        }
                        guard let projectWeights else { continue }
                        let destination = imageOutput + groupStart * outputWidth * filters
                        projectWeights.multiply(rows: pixels, depthwiseRows, lda: channels, columns: 0, filters, bias: projectBias,
                                                 residual: imageResidual.map { UnsafePointer($0 + groupStart * outputWidth * filters) },
                                                 ldr: filters, low: projectLow, high: projectHigh, into: destination, ldc: filters)
                        if projectActivation.clampBounds == nil {
                            projectActivation.apply(destination, count: pixels * filters, lastAxis: filters)
                        }
                    }
                }
            }
        }
    }
}
