import CKernels
import COpenBLAS
import Foundation
import Testing
import TLEngine
import TLTensor

/// Deterministic pseudo-random floats in `[-scale, scale)`.
private struct Noise {
    var state: UInt64
    mutating func next(_ scale: Float = 1) -> Float {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return (Float(state >> 40) / Float(1 << 24) * 2 - 1) * scale
    }
    mutating func tensor(_ shape: [Int], scale: Float = 1) -> Tensor {
        Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in next(scale) })
    }
}

/// Gives every layer of `graph` random weights of the shapes it expects.
private func randomizeWeights(_ graph: Graph, noise: inout Noise) {
    for (layer, node) in graph.uniqueLayers {
        let inputShapes = graph.nodes[node].inputs.map { graph.shapes[$0] }
        var weights: [String: Tensor] = [:]
        for spec in layer.expectedWeights(inputShapes: inputShapes) {
            // Variances must be positive; everything else may be any sign.
            weights[spec.name] = spec.name == "moving_variance"
                ? Tensor(shape: spec.shape, scalars: (0..<spec.shape.reduce(1, *)).map { _ in 0.5 + abs(noise.next()) })
                : noise.tensor(spec.shape, scale: 0.5)
        }
        layer.setWeights(weights)
    }
}

/// OpenBLAS 0.3's threaded build can deadlock when several threads call it at once (Swift Testing
/// runs test cases in parallel), so the reference runs single-threaded, one call at a time.
private let openBLASLock: NSLock = {
    openblas_set_num_threads(1)
    return NSLock()
}()

private func run(_ graph: Graph, _ input: Tensor) throws -> Tensor {
    try GraphExecutor(graph: graph, inputShapes: [input.shape]).run([input])[0]
}

/// Expects `fused` to give `graph`'s output shape and values (within 1e-4 of the largest) on noise
/// inputs of 1 and 3 images of `sample` (one image's shape); `context` names the variant.
private func expectSameOutputs(_ fused: Graph, as graph: Graph, sample: [Int], noise: inout Noise, _ context: String,
                               sourceLocation: SourceLocation = #_sourceLocation) throws {
    for batch in [1, 3] {
        let input = noise.tensor([batch] + sample)
        let expected = try run(graph, input)
        let actual = try run(fused, input)
        #expect(actual.shape == expected.shape, sourceLocation: sourceLocation)
        #expect(actual.maxAbsoluteDifference(expected) <= 1e-4 * max(1, expected.maxAbsolute),
                "batch \(batch), \(context)", sourceLocation: sourceLocation)
    }
}

@Suite("C kernels: GEMM against OpenBLAS, convolution work splits, streamed inverted residuals")
struct KernelTests {
    struct GEMMCase: CustomStringConvertible, Sendable {
        let m: Int, k: Int, n: Int, bias: Bool, residual: Bool, low: Float, high: Float
        var description: String { "\(m)×\(k) · \(k)×\(n) bias \(bias) residual \(residual) clamp [\(low), \(high)]" }
    }

    /// A case's operands drawn from `seed`, with padded leading dimensions (as when a GEMM reads
    /// a slice of a wider tensor) and B packed, and the check against OpenBLAS.
    struct GEMMOperands {
        let config: GEMMCase
        let lda: Int, ldc: Int, ldr: Int
        let a: [Float], b: [Float], bias: [Float], residual: [Float], packed: [Float]

        init(_ config: GEMMCase, seed: Int) {
            var noise = Noise(state: UInt64(seed))
            let (m, k, n) = (config.m, config.k, config.n)
            self.config = config
            (lda, ldc, ldr) = (k + 3, n + 5, n + 2)
            a = (0..<(m * lda)).map { _ in noise.next() }
            b = (0..<(max(k, 1) * n)).map { _ in noise.next() }
            bias = (0..<n).map { _ in noise.next() }
            residual = (0..<(m * ldr)).map { _ in noise.next() }
            var packed = [Float](repeating: .nan, count: max(tl_gemm_packed_count(Int32(k), Int32(n)), 1))
            tl_gemm_pack(b, Int32(n), Int32(k), Int32(n), &packed)
            self.packed = packed
        }

        /// The largest difference of `actual` (m × ldc) from OpenBLAS sgemm plus bias, residual and
        /// clamp, and whether every row's columns past n were left alone (NaN).
        func check(_ actual: [Float]) -> (worst: Float, paddingUntouched: Bool) {
            let (m, k, n) = (config.m, config.k, config.n)
            var expected = [Float](repeating: 0, count: m * ldc)
            if k > 0 {
                openBLASLock.lock()
                defer { openBLASLock.unlock() }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), 1, a, Int32(lda),
                            b, Int32(n), 0, &expected, Int32(ldc))
            }
            var worst: Float = 0
            var paddingUntouched = true
            for row in 0..<m {
                for column in 0..<n {
                    var value = expected[row * ldc + column]
                    if config.bias { value += bias[column] }
                    if config.residual { value += residual[row * ldr + column] }
                    value = min(max(value, config.low), config.high)
                    worst = max(worst, abs(value - actual[row * ldc + column]))
                }
                paddingUntouched = paddingUntouched && actual[(row * ldc + n)..<(row * ldc + ldc)].allSatisfy { $0.isNaN }
            }
            return (worst, paddingUntouched)
        }
    }

    static let gemmCases = [
        // Every row count of the last strip (1…6), partial panels (≤ 8 and > 8 columns), one and
        // several K blocks (K > 384), an empty K.
        GEMMCase(m: 1, k: 1280, n: 1000, bias: true, residual: false, low: -.infinity, high: .infinity),
        GEMMCase(m: 2, k: 7, n: 5, bias: false, residual: false, low: -.infinity, high: .infinity),
        GEMMCase(m: 13, k: 100, n: 24, bias: true, residual: true, low: -.infinity, high: .infinity),
        GEMMCase(m: 29, k: 1000, n: 37, bias: true, residual: false, low: 0, high: 6),
        GEMMCase(m: 64, k: 385, n: 16, bias: false, residual: true, low: 0, high: .infinity),
        GEMMCase(m: 47, k: 16, n: 96, bias: true, residual: true, low: -0.5, high: 0.5),
        GEMMCase(m: 3, k: 0, n: 9, bias: true, residual: true, low: -.infinity, high: .infinity),
        // The AVX-512 tile: 8 rows (every last-strip count 1…8), two panels (≤ 16, 17…31, 32
        // columns and a pair plus a partial panel), and more rows than one L2 chunk (192).
        GEMMCase(m: 15, k: 33, n: 32, bias: true, residual: true, low: -.infinity, high: .infinity),
        GEMMCase(m: 23, k: 400, n: 40, bias: true, residual: false, low: 0, high: 6),
        GEMMCase(m: 407, k: 70, n: 29, bias: false, residual: true, low: -1, high: .infinity),
        GEMMCase(m: 9, k: 5, n: 70, bias: true, residual: true, low: -.infinity, high: .infinity),
        // A 7×7 map's rows in seven tiles of 7, and 50 rows in six of 7 and one of 8.
        GEMMCase(m: 49, k: 160, n: 96, bias: true, residual: true, low: 0, high: 6),
        GEMMCase(m: 50, k: 576, n: 40, bias: true, residual: false, low: -.infinity, high: .infinity),
        // One K block over more than one row chunk, A and C small enough for L2: panel order.
        GEMMCase(m: 203, k: 24, n: 72, bias: true, residual: true, low: 0, high: .infinity),
        // The same with A and C over 512 KB: the AVX-512 path walks row tiles across every panel
        // (as in an expanding 1×1 convolution at batch size), prefetching the next row tile's A and C.
        GEMMCase(m: 1403, k: 24, n: 72, bias: true, residual: true, low: 0, high: .infinity),
        // B past 1 MB (as ResNet50's conv5 at batch 1): each row chunk's first tile prefetches B
        // ahead; three K blocks, a partial last panel pair, 200 rows in two chunks.
        GEMMCase(m: 200, k: 900, n: 400, bias: true, residual: true, low: 0, high: .infinity),
        // Tiles 17 to 24 columns wide (second panel on ymm): MobileNetV2's 24-filter projection
        // with a residual and ReLU6, and a 32 + 24 pair over three K blocks (C reloaded between them).
        GEMMCase(m: 203, k: 144, n: 24, bias: true, residual: true, low: 0, high: 6),
        GEMMCase(m: 37, k: 900, n: 56, bias: true, residual: true, low: -.infinity, high: .infinity),
        GEMMCase(m: 13, k: 7, n: 17, bias: false, residual: false, low: -.infinity, high: .infinity),
    ]

    /// Every kernel level this CPU runs: portable, AVX2, AVX-512.
    static let kernelLevels = Array(0...Int(tl_cpu_kernel_level()))

    @Test("the packed GEMM with its epilogue equals OpenBLAS sgemm plus bias, residual and clamp, at every kernel level",
          arguments: gemmCases, kernelLevels)
    func gemm(_ config: GEMMCase, level: Int) {
        let operands = GEMMOperands(config, seed: config.m * 31 + config.k * 7 + config.n)
        let (m, k, n) = (config.m, config.k, config.n)
        var actual = [Float](repeating: .nan, count: m * operands.ldc)
        operands.bias.withUnsafeBufferPointer { biasBuffer in
            operands.residual.withUnsafeBufferPointer { residualBuffer in
                tl_gemm_packed_level(Int32(level), Int32(m), Int32(n), Int32(k), operands.a, Int32(operands.lda), operands.packed,
                                     config.bias ? biasBuffer.baseAddress : nil, config.residual ? residualBuffer.baseAddress : nil,
                                     Int32(operands.ldr), config.low, config.high, &actual, Int32(operands.ldc))
            }
        }
        let (worst, paddingUntouched) = operands.check(actual)
        // Columns past n in each output row are left alone.
        #expect(paddingUntouched)
        #expect(worst <= 1e-4 * max(1, Float(k).squareRoot()), "max error \(worst)")
    }

    @Test("the GEMM reading its right-hand side in place gives the packed GEMM's bits, at every kernel level",
          arguments: gemmCases, kernelLevels)
    func unpackedGEMM(_ config: GEMMCase, level: Int) {
        var noise = Noise(state: UInt64(config.m * 13 + config.k * 5 + config.n))
        let (m, k, n) = (config.m, config.k, config.n)
        // B a slice of a wider matrix (ldb > n), as a kernel column block would be.
        let (lda, ldb, ldc) = (k + 1, n + 7, n + 3)
        let a = (0..<(m * lda)).map { _ in noise.next() }
        let b = (0..<(max(k, 1) * ldb)).map { _ in noise.next() }
        let bias = (0..<n).map { _ in noise.next() }
        let residual = (0..<(m * ldc)).map { _ in noise.next() }
        var packed = [Float](repeating: .nan, count: max(tl_gemm_packed_count(Int32(k), Int32(n)), 1))
        tl_gemm_pack(b, Int32(ldb), Int32(k), Int32(n), &packed)
        var viaPacking = [Float](repeating: .nan, count: m * ldc), inPlace = viaPacking
        let biasPointer = config.bias ? bias : nil, residualPointer = config.residual ? residual : nil
        tl_gemm_packed_level(Int32(level), Int32(m), Int32(n), Int32(k), a, Int32(lda), packed, biasPointer, residualPointer,
                             Int32(ldc), config.low, config.high, &viaPacking, Int32(ldc))
        let status = tl_gemm_level(Int32(level), Int32(m), Int32(n), Int32(k), a, Int32(lda), b, Int32(ldb), biasPointer,
                                   residualPointer, Int32(ldc), config.low, config.high, &inPlace, Int32(ldc))
        #expect(status == 0)
        let differing = zip(viaPacking, inPlace).filter { $0 != $1 && !($0.isNaN && $1.isNaN) }.count
        #expect(differing == 0, "\(differing) of \(m * n) values differ")
        #expect(inPlace.contains { !$0.isNaN } || m * n == 0)
    }

    @Test("a NaN in a row of A stays NaN through the epilogue (linear, ReLU, ReLU6), as the portable kernel keeps it, at every kernel level",
          arguments: kernelLevels)
    func gemmKeepsNaN(level: Int) {
        // 10 rows over two micro-kernel row tiles, 40 columns (a full tile and a half one).
        let operands = GEMMOperands(GEMMCase(m: 10, k: 37, n: 40, bias: true, residual: false, low: 0, high: 6), seed: 29)
        let (m, k, n, lda, ldc) = (10, 37, 40, operands.lda, operands.ldc)
        var a = operands.a
        a[3 * lda + 5] = .nan
        for (low, high) in [(-Float.infinity, Float.infinity), (0, .infinity), (0, 6)] {
            var c = [Float](repeating: 0, count: m * ldc)
            tl_gemm_packed_level(Int32(level), Int32(m), Int32(n), Int32(k), a, Int32(lda), operands.packed, operands.bias, nil, 0,
                                 low, high, &c, Int32(ldc))
            // Row 3 is NaN throughout (the SIMD clamps used to turn it into a bound); the other rows are finite.
            #expect((0..<n).allSatisfy { c[3 * ldc + $0].isNaN }, "bounds \(low)...\(high): \(c[(3 * ldc)..<(3 * ldc + 4)])")
            let others = (0..<m).filter { $0 != 3 }.flatMap { row in (0..<n).map { row * ldc + $0 } }
            #expect(others.allSatisfy { c[$0].isFinite && c[$0] >= low && c[$0] <= high })
        }
    }

    @Test("accumulating into C (the residual is C itself) adds the product once, however many K blocks it takes",
          arguments: [0, 5, 384, 385, 800, 2888], kernelLevels)
    func accumulatingGEMM(k: Int, level: Int) {
        var noise = Noise(state: UInt64(k + 17))
        // Odd depths take 24 columns (one tile of 16 + 8 on ymm), even ones 40 (32 + a half tile).
        let (m, n) = (11, k % 2 == 1 ? 24 : 40)
        let a = (0..<(m * k)).map { _ in noise.next() }, b = (0..<(k * n)).map { _ in noise.next() }
        let start = (0..<(m * n)).map { _ in noise.next() * 10 }
        var expected = start
        if k > 0 {
            openBLASLock.lock()
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), 1, a, Int32(k), b, Int32(n), 1,
                        &expected, Int32(n))
            openBLASLock.unlock()
        }
        var packed = [Float](repeating: 0, count: max(1, tl_gemm_packed_count(Int32(k), Int32(n))))
        tl_gemm_pack(b, Int32(n), Int32(k), Int32(n), &packed)
        var viaPacked = start, inPlace = start
        viaPacked.withUnsafeMutableBufferPointer { c in
            tl_gemm_packed_level(Int32(level), Int32(m), Int32(n), Int32(k), a, Int32(k), packed, nil, c.baseAddress, Int32(n),
                                 -.infinity, .infinity, c.baseAddress, Int32(n))
        }
        inPlace.withUnsafeMutableBufferPointer { c in
            _ = tl_gemm_level(Int32(level), Int32(m), Int32(n), Int32(k), a, Int32(k), b, Int32(n), nil, c.baseAddress, Int32(n),
                              -.infinity, .infinity, c.baseAddress, Int32(n))
        }
        let tolerance = 1e-4 * max(1, Float(k).squareRoot())
        #expect(zip(viaPacked, expected).allSatisfy { abs($0 - $1) <= tolerance }, "packed, k \(k)")
        #expect(viaPacked == inPlace, "in place, k \(k)")
    }

    @Test("pooling backward: every level gives the portable loop's bits (max with tied cells, average; 3/2 windows over 20 channels)",
          arguments: kernelLevels)
    func poolingBackward(level: Int) {
        var noise = Noise(state: 11)
        let (height, width, channels) = (9, 9, 20)
        // Values on a coarse grid, so windows hold ties: the first cell (row-major) must win.
        let x = (0..<(height * width * channels)).map { _ in (noise.next() * 4).rounded() }
        var geometry = TLPoolGeometry(height: 9, width: 9, channels: 20, outputHeight: 4, outputWidth: 4, poolY: 3, poolX: 3,
                                      strideY: 2, strideX: 2, padTop: 0, padLeft: 0)
        var y = [Float](repeating: -.infinity, count: 4 * 4 * channels)
        for oy in 0..<4 { for ox in 0..<4 { for c in 0..<channels { for dy in 0..<3 { for dx in 0..<3 {
            y[(oy * 4 + ox) * channels + c] = max(y[(oy * 4 + ox) * channels + c], x[((2 * oy + dy) * width + 2 * ox + dx) * channels + c])
        } } } } }
        let gradient = (0..<y.count).map { _ in noise.next() }
        for average: Int32 in [0, 1] {
            var portable = [Float](repeating: 0, count: x.count), leveled = portable
            tl_pool_backward_level(0, x, y, gradient, &portable, &geometry, average)
            tl_pool_backward_level(Int32(level), x, y, gradient, &leveled, &geometry, average)
            #expect(portable == leveled, "average \(average)")
            // Max: exactly one cell per window and channel takes each gradient.
            if average == 0 { #expect(abs(portable.reduce(0, +) - gradient.reduce(0, +)) < 1e-3) }
        }
    }

    @Test("depthwise rows: every level within 1e-5 of a sum in Double, and AVX-512 gives AVX2's bits where neither has a channel tail (3×3 at strides 1 and 2 with rows missing, 5×5, 5×3, dilation 2, channel tails, rows narrower than a block)",
          arguments: kernelLevels)
    func depthwiseRow(level: Int) {
        var noise = Noise(state: 17)
        // (width, channels, kernel height × width, stride, dilation, padLeft, rows present of the kernel's)
        let cases: [(Int, Int, (Int, Int), Int, Int, Int, ClosedRange<Int>)] = [
            (23, 48, (3, 3), 1, 1, 1, 0...2), (23, 40, (3, 3), 1, 1, 1, 1...2), (22, 20, (3, 3), 2, 1, 0, 0...1),
            (21, 144, (3, 3), 2, 1, 1, 0...2), (3, 16, (3, 3), 1, 1, 1, 0...2), (1, 24, (3, 3), 1, 1, 1, 0...0),
            (17, 36, (5, 5), 1, 1, 2, 0...4), (16, 32, (5, 5), 2, 1, 2, 2...4), (12, 24, (3, 3), 1, 2, 2, 0...2),
            // Three taps a row but five rows: not the 3×3 path's window.
            (19, 32, (5, 3), 1, 1, 1, 0...4),
            // Whole rows in blocks, border pixels inside them: MobileNetV2's 14- and 7-pixel rows
            // (blocks of 7), strided rows whose last window overhangs the right edge, 'valid' rows,
            // and rows narrower than any block.
            (14, 64, (3, 3), 1, 1, 1, 0...2), (7, 32, (3, 3), 1, 1, 1, 0...1), (14, 48, (3, 3), 2, 1, 0, 0...2),
            (28, 32, (3, 3), 2, 1, 0, 1...2), (15, 16, (3, 3), 2, 1, 1, 0...2), (10, 16, (3, 3), 1, 1, 0, 0...2),
            (2, 16, (3, 3), 1, 1, 1, 0...2), (12, 40, (3, 3), 1, 1, 1, 0...2),
        ]
        for (width, channels, (kernelHeight, kernelWidth), stride, dilation, padLeft, present) in cases {
            let span = (kernelWidth - 1) * dilation
            let outputWidth = (width + 2 * padLeft - span - 1) / stride + 1
            let inputRows = (0..<kernelHeight).map { _ in (0..<(width * channels)).map { _ in noise.next() } }
            let kernel = (0..<(kernelHeight * kernelWidth * channels)).map { _ in noise.next() }
            let bias = (0..<channels).map { _ in noise.next() }
            var expected = [Double](repeating: 0, count: outputWidth * channels)
            for x in 0..<outputWidth { for c in 0..<channels {
                var sum = Double(bias[c])
                for ky in present { for kx in 0..<kernelWidth {
                    let column = x * stride - padLeft + kx * dilation
                    guard column >= 0 && column < width else { continue }
                    sum += Double(inputRows[ky][column * channels + c]) * Double(kernel[(ky * kernelWidth + kx) * channels + c])
                } }
                expected[x * channels + c] = min(max(sum, -2), 2)
            } }
            let rowFloats = width * channels
            let flat = inputRows.flatMap { $0 }
            func row(level: Int) -> [Float] {
                var output = [Float](repeating: .nan, count: outputWidth * channels)
                flat.withUnsafeBufferPointer { data in
                    // Rows outside the image are NULL, as the engine passes them.
                    let pointers: [UnsafePointer<Float>?] = (0..<kernelHeight).map { ky in
                        present.contains(ky) ? data.baseAddress! + ky * rowFloats : nil
                    }
                    tl_depthwise_row_level(Int32(level), pointers, Int32(width), Int32(channels), kernel, Int32(kernelHeight),
                                           Int32(kernelWidth), Int32(stride), Int32(dilation), Int32(padLeft), Int32(outputWidth),
                                           bias, -2, 2, &output)
                }
                return output
            }
            let actual = row(level: level)
            let error = zip(actual, expected).map { abs(Double($0) - $1) }.max() ?? .nan
            let label = "width \(width), \(channels) channels, \(kernelHeight)×\(kernelWidth)/\(stride), dilation \(dilation), rows \(present)"
            #expect(error <= 1e-5, "\(label): \(error)")
            // AVX2 sums a channel tail past a multiple of 8 in the portable loop (a product, then
            // an add); AVX-512 fuses them in a masked vector. Elsewhere both fuse in the same order.
            if level >= 2 && channels % 8 == 0 {
                #expect(actual == row(level: 1), "\(label): level \(level) differs from AVX2's bits")
            }
        }
    }

    @Test("pooling forward: every level gives the bits of a plain window loop (same padding's clipped average, 3/1 and 3/2 windows, channels past a block of 64)",
          arguments: kernelLevels)
    func poolingForward(level: Int) {
        var noise = Noise(state: 5)
        let (height, width, channels) = (7, 8, 70)
        let x = (0..<(height * width * channels)).map { _ in noise.next() }
        for (stride, pad) in [(1, 1), (2, 0)] {
            let (outputHeight, outputWidth) = ((height + 2 * pad - 3) / stride + 1, (width + 2 * pad - 3) / stride + 1)
            var geometry = TLPoolGeometry(height: Int32(height), width: Int32(width), channels: Int32(channels),
                                          outputHeight: Int32(outputHeight), outputWidth: Int32(outputWidth), poolY: 3, poolX: 3,
                                          strideY: Int32(stride), strideX: Int32(stride), padTop: Int32(pad), padLeft: Int32(pad))
            for average: Int32 in [0, 1] {
                var expected = [Float](repeating: 0, count: outputHeight * outputWidth * channels)
                for oy in 0..<outputHeight { for ox in 0..<outputWidth { for c in 0..<channels {
                    let y0 = max(oy * stride - pad, 0), y1 = min(oy * stride - pad + 3, height)
                    let x0 = max(ox * stride - pad, 0), x1 = min(ox * stride - pad + 3, width)
                    var value: Float = average == 1 ? 0 : -.infinity
                    for row in y0..<y1 { for column in x0..<x1 {
                        let cell = x[(row * width + column) * channels + c]
                        value = average == 1 ? value + cell : max(value, cell)
                    } }
                    if average == 1 { value *= 1 / Float((y1 - y0) * (x1 - x0)) }
                    expected[(oy * outputWidth + ox) * channels + c] = value
                } } }
                var actual = [Float](repeating: .nan, count: expected.count)
                // Two calls over the rows, as the engine splits them between threads.
                tl_pool_forward_level(Int32(level), x, &actual, &geometry, 0, 2, average)
                tl_pool_forward_level(Int32(level), x, &actual, &geometry, 2, Int32(outputHeight), average)
                #expect(actual == expected, "stride \(stride), average \(average)")
            }
        }
    }

    @Test("a kernel gradient read from the padded input equals the direct sum at every level (channel and filter tails, strides)",
          arguments: kernelLevels, [(1, 1), (2, 3)])
    func convolutionKernelGradient(level: Int, strides: (Int, Int)) {
        var noise = Noise(state: 23)
        let (outputHeight, outputWidth, channels, filters, kernelHeight, kernelWidth) = (5, 7, 13, 40, 3, 2)
        let (paddedHeight, paddedWidth) = ((outputHeight - 1) * strides.0 + kernelHeight, (outputWidth - 1) * strides.1 + kernelWidth)
        let x = (0..<(paddedHeight * paddedWidth * channels)).map { _ in noise.next() }
        let dz = (0..<(outputHeight * outputWidth * filters)).map { _ in noise.next() }
        var shape = TLKernelGradientShape(paddedWidth: Int32(paddedWidth), channels: Int32(channels), outputHeight: Int32(outputHeight),
                                          outputWidth: Int32(outputWidth), filters: Int32(filters), kernelHeight: Int32(kernelHeight),
                                          kernelWidth: Int32(kernelWidth), strideY: Int32(strides.0), strideX: Int32(strides.1))
        let start = (0..<(kernelHeight * kernelWidth * channels * filters)).map { _ in noise.next() }
        var stored = start, added = start
        tl_conv_kernel_gradient_level(Int32(level), x, dz, &shape, &stored, 0)
        tl_conv_kernel_gradient_level(Int32(level), x, dz, &shape, &added, 1)
        var worst: Float = 0
        for ky in 0..<kernelHeight { for kx in 0..<kernelWidth { for c in 0..<channels { for f in 0..<filters {
            var sum = 0.0
            for oy in 0..<outputHeight { for ox in 0..<outputWidth {
                sum += Double(x[((oy * strides.0 + ky) * paddedWidth + ox * strides.1 + kx) * channels + c]) * Double(dz[(oy * outputWidth + ox) * filters + f])
            } }
            let index = ((ky * kernelWidth + kx) * channels + c) * filters + f
            worst = max(worst, abs(stored[index] - Float(sum)), abs(added[index] - Float(sum) - start[index]))
        } } } }
        #expect(worst < 1e-4, "worst error \(worst)")
    }

    @Test("Adam and SGD updates give the scalar formula's bits at every kernel level (a count that leaves a remainder)",
          arguments: kernelLevels)
    func optimizerUpdates(level: Int) {
        var noise = Noise(state: 5)
        let count = 1_000_003 % 4099 + 37
        let weights = (0..<count).map { _ in noise.next() }, gradient = (0..<count).map { _ in noise.next() * 0.1 }
        let firstMoment = (0..<count).map { _ in noise.next() * 0.01 }, secondMoment = (0..<count).map { _ in abs(noise.next()) * 0.001 }
        let (alpha, beta1, beta2, epsilon): (Float, Float, Float, Float) = (3e-3, 0.9, 0.999, 1e-7)
        var (w, m, v) = (weights, firstMoment, secondMoment)
        tl_adam_update_level(Int32(level), &w, gradient, &m, &v, Int32(count), alpha, beta1, beta2, epsilon)
        var (expectedW, expectedM, expectedV) = (weights, firstMoment, secondMoment)
        for i in 0..<count {
            expectedM[i] += (gradient[i] - expectedM[i]) * (1 - beta1)
            expectedV[i] += (gradient[i] * gradient[i] - expectedV[i]) * (1 - beta2)
            expectedW[i] -= expectedM[i] * alpha / (expectedV[i].squareRoot() + epsilon)
        }
        #expect(w == expectedW && m == expectedM && v == expectedV)
        #expect(w != weights)
        for nesterov in [false, true] {
            var (w, velocity) = (weights, firstMoment)
            tl_sgd_update_level(Int32(level), &w, gradient, &velocity, Int32(count), 0.05, 0.9, nesterov ? 1 : 0)
            var (expectedW, expectedVelocity) = (weights, firstMoment)
            for i in 0..<count {
                expectedVelocity[i] = expectedVelocity[i] * 0.9 - gradient[i] * 0.05
                expectedW[i] += nesterov ? expectedVelocity[i] * 0.9 - gradient[i] * 0.05 : expectedVelocity[i]
            }
            #expect(w == expectedW && velocity == expectedVelocity, "nesterov \(nesterov)")
        }
    }

    @Test("the AMX GEMM (three bfloat16 products per fp32 one) is within 2e-5·√K of OpenBLAS with its epilogue; a row's and a column run's bits depend on nothing else",
          arguments: gemmCases)
    func amxGEMM(_ config: GEMMCase) {
        let operands = GEMMOperands(config, seed: config.m * 17 + config.k * 5 + config.n)
        let (m, k, n) = (config.m, config.k, config.n)
        let (lda, ldc, ldr) = (operands.lda, operands.ldc, operands.ldr)
        var amx = [UInt16](repeating: 0xFFFF, count: max(tl_gemm_amx_packed_count(Int32(k), Int32(n)), 1))
        tl_gemm_amx_pack(operands.packed, Int32(k), Int32(n), &amx)
        /// Rows `rows` and columns `first..<n` into `out` (laid out like the whole C).
        func product(rows: Range<Int>, first: Int, into out: inout [Float]) -> Int32 {
            operands.a.withUnsafeBufferPointer { a in
                operands.bias.withUnsafeBufferPointer { bias in
                    operands.residual.withUnsafeBufferPointer { residual in
                        out.withUnsafeMutableBufferPointer { out in
                            tl_gemm_amx(Int32(rows.count), Int32(n - first), Int32(k), a.baseAddress! + rows.lowerBound * lda,
                                        Int32(lda), amx, Int32(first), config.bias ? bias.baseAddress! + first : nil,
                                        config.residual ? residual.baseAddress! + rows.lowerBound * ldr + first : nil,
                                        Int32(ldr), config.low, config.high, out.baseAddress! + rows.lowerBound * ldc + first, Int32(ldc))
                        }
                    }
                }
            }
        }
        var actual = [Float](repeating: .nan, count: m * ldc)
        let status = product(rows: 0..<m, first: 0, into: &actual)
        guard tl_gemm_amx_supported() != 0 else {
            #expect(status == -1 && actual.allSatisfy { $0.isNaN }, "without AMX nothing is written")
            return
        }
        #expect(status == 0)
        let (worst, paddingUntouched) = operands.check(actual)
        #expect(paddingUntouched)
        // One bfloat16 product per value would be off by about 4e-3·√K/3; fp32 FMAs by 1e-6·√K.
        #expect(worst <= 2e-5 * max(1, Float(k).squareRoot()), "max error \(worst)")
        // Rows in runs of 1, 3 and 17 (one row tile and a pair), and the columns from the second
        // panel on, give the whole product's bits.
        for runLength in [1, 3, 17] {
            var pieces = [Float](repeating: .nan, count: m * ldc)
            for first in stride(from: 0, to: m, by: runLength) { _ = product(rows: first..<min(first + runLength, m), first: 0, into: &pieces) }
            #expect(zip(pieces, actual).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) }, "rows in runs of \(runLength)")
        }
        if n > 16 {
            var right = [Float](repeating: .nan, count: m * ldc)
            _ = product(rows: 0..<m, first: 16, into: &right)
            let same = (0..<m).allSatisfy { row in (16..<n).allSatisfy { right[row * ldc + $0] == actual[row * ldc + $0] } }
            #expect(same, "columns 16..<\(n) alone")
        }
    }

    @Test("a row's bits do not depend on how many rows share the product (a batch and its shards agree)",
          arguments: kernelLevels)
    func rowIndependence(level: Int) {
        var noise = Noise(state: 99)
        // 49 rows: the whole product cuts them into seven tiles of 7 (heights as even as they go).
        let (m, k, n) = (49, 700, 45)
        let a = (0..<(m * k)).map { _ in noise.next() }
        let b = (0..<(k * n)).map { _ in noise.next() }
        let bias = (0..<n).map { _ in noise.next() }
        var packed = [Float](repeating: 0, count: tl_gemm_packed_count(Int32(k), Int32(n)))
        tl_gemm_pack(b, Int32(n), Int32(k), Int32(n), &packed)
        var whole = [Float](repeating: 0, count: m * n)
        tl_gemm_packed_level(Int32(level), Int32(m), Int32(n), Int32(k), a, Int32(k), packed, bias, nil, 0,
                             -.infinity, .infinity, &whole, Int32(n))
        // Every split of the rows: one at a time, runs of 3 (strips of every height) and runs of 8
        // (full tiles and a row alone).
        for runLength in [1, 3, 8] {
            var pieces = [Float](repeating: 0, count: m * n)
            for first in stride(from: 0, to: m, by: runLength) {
                let rows = min(runLength, m - first)
                a.withUnsafeBufferPointer { a in
                    pieces.withUnsafeMutableBufferPointer { out in
                        tl_gemm_packed_level(Int32(level), Int32(rows), Int32(n), Int32(k), a.baseAddress! + first * k, Int32(k),
                                             packed, bias, nil, 0, -.infinity, .infinity, out.baseAddress! + first * n, Int32(n))
                    }
                }
            }
            let differing = zip(pieces, whole).filter { $0 != $1 }.count
            #expect(differing == 0, "rows in runs of \(runLength): \(differing) values differ from the whole product")
        }
    }

    @Test("column runs cover every column once, split at whole tiles or, where tiles do not share out evenly and panels do, at a panel; the pieces give the whole product's bits",
          arguments: kernelLevels)
    func columnRuns(level: Int) {
        // (columns, runs) → the widths expected: 160 = 5 tiles of 32 splits 80/80 at a panel; 192
        // (6 tiles) at whole tiles; 112 (7 panels) and 45 (3 panels) split evenly neither way, nor
        // do 160 columns in 4 runs; one panel goes whole to one run.
        let cases: [(columns: Int, runs: Int, widths: [Int])] = [
            (160, 2, [80, 80]), (192, 2, [96, 96]), (96, 2, [48, 48]), (112, 2, [64, 48]), (45, 2, [32, 13]),
            (160, 4, [32, 32, 32, 64]), (16, 2, [0, 16]),
        ]
        for (columns, runs, widths) in cases {
            let pieces = (0..<runs).map { gemmColumnRun($0, of: runs, columns: columns) }
            #expect(pieces.map { $0.last - $0.first } == widths, "\(columns) columns in \(runs) runs: \(pieces)")
            #expect(pieces.first?.first == 0 && pieces.last?.last == columns, "\(columns) columns in \(runs) runs")
            #expect(zip(pieces, pieces.dropFirst()).allSatisfy { $0.last == $1.first && $1.first % Int(TL_GEMM_PANEL) == 0 },
                    "\(columns) columns in \(runs) runs: \(pieces)")
        }
        var noise = Noise(state: 5)
        let (m, k, n) = (49, 96, 160)
        let a = (0..<(m * k)).map { _ in noise.next() }
        let b = (0..<(k * n)).map { _ in noise.next() }
        let bias = (0..<n).map { _ in noise.next() }
        var packed = [Float](repeating: 0, count: tl_gemm_packed_count(Int32(k), Int32(n)))
        tl_gemm_pack(b, Int32(n), Int32(k), Int32(n), &packed)
        var whole = [Float](repeating: 0, count: m * n), pieces = whole
        tl_gemm_packed_level(Int32(level), Int32(m), Int32(n), Int32(k), a, Int32(k), packed, bias, nil, 0, 0, 6, &whole, Int32(n))
        for run in 0..<2 {
            let (first, last) = gemmColumnRun(run, of: 2, columns: n)
            packed.withUnsafeBufferPointer { packed in
                bias.withUnsafeBufferPointer { bias in
                    pieces.withUnsafeMutableBufferPointer { out in
                        tl_gemm_packed_level(Int32(level), Int32(m), Int32(last - first), Int32(k), a, Int32(k),
                                             packed.baseAddress! + first * k, bias.baseAddress! + first,
                                             nil, 0, 0, 6, out.baseAddress! + first, Int32(n))
                    }
                }
            }
        }
        #expect(pieces == whole, "the 80/80 column split changed \(zip(pieces, whole).filter { $0 != $1 }.count) values")
    }

    /// Direct NHWC convolution with TF `same`/`valid` padding, in Double.
    func directConvolution(_ input: Tensor, kernel: Tensor, bias: Tensor, stride: Int, padding: Padding) -> Tensor {
        let (batch, height, width, channels) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
        let (kernelHeight, kernelWidth, filters) = (kernel.shape[0], kernel.shape[1], kernel.shape[3])
        let rows = padding.window(input: height, kernel: kernelHeight, stride: stride, dilation: 1)
        let columns = padding.window(input: width, kernel: kernelWidth, stride: stride, dilation: 1)
        var output = [Float](repeating: 0, count: batch * rows.output * columns.output * filters)
        for n in 0..<batch {
            for oy in 0..<rows.output {
                for ox in 0..<columns.output {
                    for f in 0..<filters {
                        var sum = Double(bias.scalars[f])
                        for ky in 0..<kernelHeight {
                            for kx in 0..<kernelWidth {
                                let iy = oy * stride - rows.before + ky, ix = ox * stride - columns.before + kx
                                guard iy >= 0, iy < height, ix >= 0, ix < width else { continue }
                                for c in 0..<channels {
                                    sum += Double(input.scalars[((n * height + iy) * width + ix) * channels + c])
                                        * Double(kernel.scalars[((ky * kernelWidth + kx) * channels + c) * filters + f])
                                }
                            }
                        }
                        output[((n * rows.output + oy) * columns.output + ox) * filters + f] = Float(sum)
                    }
                }
            }
        }
        return Tensor(shape: [batch, rows.output, columns.output, filters], scalars: output)
    }

    struct ConvolutionCase: CustomStringConvertible, Sendable {
        let input: [Int], filters: Int, kernelSize: Int, stride: Int, activation: Activation
        var padding = Padding.same
        var kernelWidth: Int?  // kernelSize when nil
        var description: String {
            "\(input) → \(filters) filters, \(kernelSize)×\(kernelWidth ?? kernelSize)/\(stride) \(padding), \(activation)"
        }
    }

    static let convolutionCases = [
        // Few pixels, many filters: the filters are split between threads.
        ConvolutionCase(input: [1, 6, 6, 16], filters: 80, kernelSize: 3, stride: 1, activation: .relu6),
        ConvolutionCase(input: [1, 7, 7, 64], filters: 96, kernelSize: 1, stride: 1, activation: .swish),
        // MobileNetV2's 7×7 projections at batch 1: five tiles of filters, split at a panel (80/80).
        ConvolutionCase(input: [1, 7, 7, 96], filters: 160, kernelSize: 1, stride: 1, activation: .linear),
        // Many pixels: blocks of pixels per thread, a partial last panel (24 = 16 + 8).
        ConvolutionCase(input: [2, 21, 19, 8], filters: 24, kernelSize: 3, stride: 2, activation: .relu),
        // RGB stems on the direct path: MobileNetV2's 3×3/2 (same padding, odd sizes), ResNet's 7×7/2.
        ConvolutionCase(input: [2, 23, 20, 3], filters: 32, kernelSize: 3, stride: 2, activation: .relu6),
        ConvolutionCase(input: [1, 19, 17, 3], filters: 40, kernelSize: 7, stride: 2, activation: .linear, padding: .valid),
        // One image past 64 K padded floats: the padded copy is written in bands of rows, one per thread.
        ConvolutionCase(input: [1, 151, 149, 3], filters: 32, kernelSize: 3, stride: 2, activation: .relu6),
        ConvolutionCase(input: [3, 16, 16, 40], filters: 17, kernelSize: 1, stride: 1, activation: .linear),
        // Deep patches: K runs in several blocks (5·5·40 = 1000).
        ConvolutionCase(input: [1, 9, 9, 40], filters: 70, kernelSize: 5, stride: 1, activation: .linear),
        // The direct path: strips of 1–8 pixels (widths 13 and 27), filter tails, swish after it.
        ConvolutionCase(input: [2, 27, 13, 96], filters: 40, kernelSize: 5, stride: 1, activation: .relu),
        ConvolutionCase(input: [1, 11, 27, 20], filters: 33, kernelSize: 5, stride: 1, activation: .swish, padding: .valid),
        // InceptionV3's 1×7 and 7×1 on a 17×17 map: strips of 8 that run on into the next row.
        ConvolutionCase(input: [2, 17, 17, 24], filters: 40, kernelSize: 1, stride: 1, activation: .relu, kernelWidth: 7),
        ConvolutionCase(input: [1, 17, 17, 24], filters: 72, kernelSize: 7, stride: 1, activation: .linear, kernelWidth: 1),
        // Winograd F(2×2, 3×3): odd sizes (edge tiles with one row or column), a per-pixel
        // activation; few tiles and many filters (the filters split); many chunks of tiles on
        // both threads, channels not a multiple of 8; valid padding.
        ConvolutionCase(input: [2, 13, 11, 24], filters: 40, kernelSize: 3, stride: 1, activation: .swish),
        ConvolutionCase(input: [1, 5, 5, 32], filters: 96, kernelSize: 3, stride: 1, activation: .relu),
        ConvolutionCase(input: [3, 30, 30, 17], filters: 20, kernelSize: 3, stride: 1, activation: .linear),
        ConvolutionCase(input: [2, 9, 12, 16], filters: 33, kernelSize: 3, stride: 1, activation: .relu6, padding: .valid),
    ]

    @Test("Conv2D equals a direct convolution for every way its work is split", arguments: convolutionCases)
    func convolution(_ config: ConvolutionCase) throws {
        var noise = Noise(state: 7)
        let input = noise.tensor(config.input)
        let kernelSize = (config.kernelSize, config.kernelWidth ?? config.kernelSize)
        let kernel = noise.tensor([kernelSize.0, kernelSize.1, config.input[3], config.filters], scale: 0.3)
        let bias = noise.tensor([config.filters])
        var expected = directConvolution(input, kernel: kernel, bias: bias, stride: config.stride, padding: config.padding)
        expected.scalars.withUnsafeMutableBufferPointer {
            config.activation.apply($0.baseAddress!, count: $0.count, lastAxis: config.filters)
        }
        // Winograd F(4×4) and F(2×2) where they apply (tile 0: off), the direct path where it
        // applies, im2col.
        var outputs: [Tensor] = []
        // Last, im2col on AMX tiles where the CPU has them.
        for (winograd, direct, amx) in [(4, true, false), (2, true, false), (0, true, false), (0, false, false), (0, false, true)] {
            let layer = Conv2D(name: "conv", filters: config.filters, kernelSize: kernelSize,
                               strides: (config.stride, config.stride), padding: config.padding, activation: config.activation)
            layer.allowsAMX = amx
            layer.allowsWinograd = winograd > 0
            layer.winogradTile = max(winograd, 2)
            layer.winogradMinimumTiles = 0  // that tile, however few tiles the case has
            layer.allowsDirect = direct
            layer.setWeights(["kernel": kernel, "bias": bias])
            let builder = GraphBuilder()
            let x = builder.input(shape: Array(config.input.dropFirst()), name: "x")
            let graph = try builder.build(outputs: [try builder.apply(layer, to: [x])], name: "conv")
            let actual = try run(graph, input)
            #expect(actual.shape == expected.shape)
            #expect(actual.maxAbsoluteDifference(expected) <= 1e-4 * max(1, expected.maxAbsolute),
                    "Winograd \(winograd), direct \(direct), AMX \(amx)")
            outputs.append(actual)
        }
        // The direct path sums in the im2col product's order: the same bits.
        #expect(outputs[2].scalars == outputs[3].scalars)
    }

    @Test("global average and max pooling (16-channel registers and a 5-channel tail, images split between cores) equal a sum in Double and a max",
          arguments: [Pooling2D.Kind.average, .max])
    func globalPooling(_ kind: Pooling2D.Kind) throws {
        var noise = Noise(state: 11)
        let input = noise.tensor([4, 30, 30, 37])  // 133,200 values: the images split between cores
        let builder = GraphBuilder()
        let x = builder.input(shape: [30, 30, 37], name: "x")
        let graph = try builder.build(outputs: [try builder.apply(GlobalPooling2D(name: "pool", kind: kind), to: [x])], name: "pool")
        let actual = try run(graph, input)
        #expect(actual.shape == [4, 37])
        var worst: Double = 0
        for image in 0..<4 {
            for channel in 0..<37 {
                let values = (0..<900).map { Double(input.scalars[(image * 900 + $0) * 37 + channel]) }
                let expected = kind == .max ? values.max()! : values.reduce(0, +) / 900
                worst = max(worst, abs(Double(actual.scalars[image * 37 + channel]) - expected))
            }
        }
        #expect(worst <= 1e-5, "worst difference \(worst)")
    }

    @Test("sigmoid and swish: every kernel level within 2e-6 relative of double precision")
    func sigmoidAndSwish() {
        var inputs: [Float] = stride(from: -100.0, through: 100.0, by: 0.0371).map { Float($0) }
        inputs += [0, -0, 1e-8, -1e-8, 88.5, -88.5, 87.3, -87.3, 20, -20, 1e30, -1e30]
        for swish in [false, true] {
            let expected = inputs.map { x -> Double in
                let s = 1 / (1 + Foundation.exp(-Double(x)))
                return swish ? Double(x) * s : s
            }
            for level in 0...tl_cpu_kernel_level() {
                var values = inputs
                tl_sigmoid_level(level, &values, Int32(values.count), swish ? 1 : 0)
                let worst = zip(values, expected).map { abs(Double($0) - $1) / max(abs($1), 1e-30) }
                    .enumerated().filter { abs(expected[$0.offset]) > 1e-30 }.map(\.element).max() ?? 0
                #expect(worst <= 2e-6, "level \(level) swish \(swish): worst relative error \(worst)")
            }
        }
    }

    @Test("Winograd transforms: every kernel level equals the portable one (edge tiles, channel tails, residual, clamp)",
          arguments: [(2, 3), (4, 3), (2, 5)])
    func winogradLevels(tile: Int, kernelSize: Int) throws {
        var noise = Noise(state: 13)
        let wide = tile + kernelSize > 5  // the 6×6 windows: channels and filters span two blocks of 64
        let (height, width, channels, filters) = (7, 9, 37 + (wide ? 64 : 0), 21 + (wide ? 64 : 0))
        // 7×9 output ("same"): the last tile row and column are partly outside.
        let (tilesY, tilesX) = ((height + tile - 1) / tile, (width + tile - 1) / tile)
        let window = tile + kernelSize - 1, positions = window * window, pad = kernelSize / 2
        let input = noise.tensor([2, height, width, channels]).scalars
        let tiles = 2 * tilesY * tilesX, first = 3, count = tiles - 4
        // Each position's matrix `tl_winograd_stride` floats after the last (a cache line of skew).
        let (vStride, mStride) = (tl_winograd_stride(Int32(count), Int32(channels)), tl_winograd_stride(Int32(count), Int32(filters)))
        #expect(vStride == count * channels + Int(TL_WINOGRAD_SKEW) && mStride == count * filters + Int(TL_WINOGRAD_SKEW))
        let m = noise.tensor([positions, mStride]).scalars, bias = noise.tensor([filters]).scalars
        let residual = noise.tensor([2, height, width, filters]).scalars
        func transforms(level: Int32) -> (v: [Float], y: [Float]) {
            var v = [Float](repeating: .nan, count: positions * vStride)
            var y = [Float](repeating: 0, count: 2 * height * width * filters)
            tl_winograd_input_level(level, Int32(tile), Int32(kernelSize), input, Int32(height), Int32(width), Int32(channels),
                                    Int32(tilesY), Int32(tilesX), Int32(pad), Int32(pad), Int32(first), Int32(count), &v)
            tl_winograd_output_level(level, Int32(tile), Int32(kernelSize), m, Int32(first), Int32(count), Int32(tilesY), Int32(tilesX),
                                     Int32(height), Int32(width), Int32(filters), 2, Int32(filters - 2), bias, residual, -0.5, 1.5, &y)
            return (v, y)
        }
        let reference = transforms(level: 0)
        // Every position's matrix written, the skew between them left alone.
        func written(_ v: [Float]) -> [Float] { (0..<positions).flatMap { xi in v[xi * vStride..<xi * vStride + count * channels] } }
        #expect(!written(reference.v).contains { $0.isNaN } && reference.y.contains { $0 != 0 })
        #expect((0..<positions).allSatisfy { xi in reference.v[xi * vStride + count * channels..<(xi + 1) * vStride].allSatisfy(\.isNaN) })
        for level in 1...tl_cpu_kernel_level() {
            let result = transforms(level: level)
            #expect(written(result.v) == written(reference.v), "input transform, level \(level)")
            #expect(result.y == reference.y, "output transform, level \(level)")
        }
    }

    @Test("a 3×3 layer takes F(4×4) with tiles enough, then F(2×2), then the direct path; TLHUB_WINOGRAD=2's tile cap holds")
    func convolutionPaths() {
        let conv = Conv2D(name: "conv", filters: 64, kernelSize: (3, 3), padding: .same)
        conv.setWeights(["kernel": Tensor(shape: [3, 3, 64, 64]), "bias": Tensor(shape: [64])])
        conv.allowsWinograd = true
        conv.allowsDirect = true
        conv.winogradTile = 4
        let small: Conv2D.ConvolutionPath = tl_conv_direct_available() != 0 ? .direct : .winograd(tile: 2)
        #expect(conv.path(batch: 1, outputHeight: 56, outputWidth: 56) == .winograd(tile: 4))  // 196 tiles
        #expect(conv.path(batch: 1, outputHeight: 14, outputWidth: 14) == .winograd(tile: 2))  // 16 of 4×4, 49 of 2×2
        #expect(conv.path(batch: 1, outputHeight: 7, outputWidth: 7) == small)                 // 4 and 16
        #expect(conv.path(batch: 16, outputHeight: 7, outputWidth: 7) == .winograd(tile: 4))   // 64
        #expect(conv.path(batch: 32, outputHeight: 13, outputWidth: 13) == .winograd(tile: 2)) // 16×16 for 13×13
        conv.winogradTile = 2
        #expect(conv.path(batch: 1, outputHeight: 56, outputWidth: 56) == .winograd(tile: 2))
        conv.allowsWinograd = false
        #expect(conv.path(batch: 1, outputHeight: 56, outputWidth: 56) == (tl_conv_direct_available() != 0 ? .direct : .im2col))
        let five = Conv2D(name: "five", filters: 64, kernelSize: (5, 5), padding: .same)
        five.setWeights(["kernel": Tensor(shape: [5, 5, 32, 64]), "bias": Tensor(shape: [64])])
        five.allowsWinograd = true
        five.winogradTile = 4
        #expect(five.path(batch: 1, outputHeight: 27, outputWidth: 27) == .winograd(tile: 2))  // F(2×2, 5×5): 196 tiles
        #expect(five.path(batch: 1, outputHeight: 8, outputWidth: 8) == small)
    }

    @Test("a fused residual convolution writes over its residual only when nothing reads the residual later (every path)",
          arguments: [(3, true), (3, false), (1, false)])
    func residualInPlace(kernelSize: Int, winograd: Bool) throws {
        var noise = Noise(state: 17)
        let input = noise.tensor([2, 9, 8, 24])
        func conv(_ name: String, _ size: Int) -> Conv2D {
            let layer = Conv2D(name: name, filters: 24, kernelSize: (size, size), padding: .same, activation: .linear)
            layer.allowsWinograd = winograd
            layer.setWeights(["kernel": noise.tensor([size, size, 24, 24], scale: 0.3), "bias": noise.tensor([24])])
            return layer
        }
        let (a, b, c, d) = (conv("a", 3), conv("b", kernelSize), conv("c", kernelSize), conv("d", 1))
        // b(x) + a(x): a's output is read again by add3, so b must not write over it; c(x) + the
        // first sum: the sum has no later reader, so c may; d reads the last sum.
        let builder = GraphBuilder()
        let x = builder.input(shape: [9, 8, 24], name: "x")
        let outA = try builder.apply(a, to: [x])
        let first = try builder.apply(ElementwiseMerge(name: "add1", operation: .add), to: [try builder.apply(b, to: [x]), outA])
        let second = try builder.apply(ElementwiseMerge(name: "add2", operation: .add), to: [try builder.apply(c, to: [x]), first])
        let third = try builder.apply(ElementwiseMerge(name: "add3", operation: .add), to: [second, outA])
        let graph = try builder.build(outputs: [try builder.apply(d, to: [third])], name: "residuals")
        let reference = try run(graph, input)
        let fused = try graph.fused()
        #expect(fused.nodes.filter { ($0.layer as? Conv2D)?.addsResidual == true }.count == 2, "the Adds were not fused")
        #expect(try run(fused, input).maxAbsoluteDifference(reference) <= 1e-4 * max(1, reference.maxAbsolute))
    }

    @Test("Winograd with a residual Add and a zero padding merged in by fused() equals the unfused GEMM path", arguments: [2, 4])
    func winogradFusions(tile: Int) throws {
        var noise = Noise(state: 11)
        let input = noise.tensor([2, 7, 9, 24])
        let weights = ["kernel": noise.tensor([3, 3, 24, 24], scale: 0.3), "bias": noise.tensor([24])]
        func graph(winograd: Bool) throws -> Graph {
            let builder = GraphBuilder()
            let x = builder.input(shape: [7, 9, 24], name: "x")
            let padded = try builder.apply(SpatialPadding(name: "pad", amounts: ((1, 1), (1, 1)), crops: false), to: [x])
            let conv = Conv2D(name: "conv", filters: 24, kernelSize: (3, 3), activation: .linear)
            conv.allowsWinograd = winograd
            conv.winogradTile = tile
            conv.winogradMinimumTiles = 0
            conv.setWeights(weights)
            let sum = try builder.apply(ElementwiseMerge(name: "add", operation: .add), to: [try builder.apply(conv, to: [padded]), x])
            let out = try builder.apply(ActivationLayer(name: "relu", activation: .relu), to: [sum])
            return try builder.build(outputs: [out], name: "residual")
        }
        let reference = try run(try graph(winograd: false), input)
        let fused = try graph(winograd: true).fused()
        let conv = try #require(fused.nodes.compactMap { $0.layer as? Conv2D }.first)
        #expect(conv.addsResidual && conv.extraPadding.0 == (1, 1) && conv.path(batch: 2, outputHeight: 7, outputWidth: 9) == .winograd(tile: tile),
                "the fusions this test is about did not happen")
        #expect(try run(fused, input).maxAbsoluteDifference(reference) <= 1e-4 * max(1, reference.maxAbsolute))
    }

    struct BlockCase: CustomStringConvertible, Sendable {
        let size: Int, channels: Int, expansion: Int, kernelSize: Int, stride: Int, activation: Activation, zeroPadded: Bool
        var description: String {
            "\(size)×\(size)×\(channels) ×\(expansion) \(kernelSize)×\(kernelSize)/\(stride) \(activation)\(zeroPadded ? " zero-padded" : "")"
        }
    }

    static let blockCases = [
        BlockCase(size: 17, channels: 24, expansion: 6, kernelSize: 3, stride: 1, activation: .relu6, zeroPadded: false),
        BlockCase(size: 18, channels: 16, expansion: 6, kernelSize: 3, stride: 2, activation: .relu6, zeroPadded: true),
        BlockCase(size: 15, channels: 20, expansion: 3, kernelSize: 5, stride: 2, activation: .hardSwish, zeroPadded: false),
        BlockCase(size: 9, channels: 12, expansion: 4, kernelSize: 3, stride: 1, activation: .swish, zeroPadded: false),
    ]

    @Test("an inverted residual streamed row by row equals its three layers", arguments: blockCases)
    func invertedResidual(_ config: BlockCase) throws {
        let builder = GraphBuilder()
        let x = builder.input(shape: [config.size, config.size, config.channels], name: "x")
        var y = try builder.conv2D(x, filters: config.channels * config.expansion, kernelSize: 1, name: "expand")
        y = try builder.batchNormalization(y, name: "expand_bn")
        y = try builder.activation(y, config.activation, name: "expand_act")
        if config.zeroPadded {
            // MobileNetV2's stride-2 blocks: explicit zero padding, then a `valid` depthwise convolution.
            y = try builder.zeroPadding2D(y, ((0, 1), (0, 1)), name: "pad")
        }
        y = try builder.depthwiseConv2D(y, kernelSize: config.kernelSize, strides: config.stride,
                                        padding: config.zeroPadded ? .valid : .same, name: "depthwise")
        y = try builder.batchNormalization(y, name: "depthwise_bn")
        y = try builder.activation(y, config.activation, name: "depthwise_act")
        y = try builder.conv2D(y, filters: config.channels, kernelSize: 1, useBias: false, name: "project")
        y = try builder.batchNormalization(y, name: "project_bn")
        if config.stride == 1 { y = try builder.add([x, y], name: "add") }
        let graph = try builder.build(outputs: [y], name: "block")
        var noise = Noise(state: 11)
        randomizeWeights(graph, noise: &noise)

        let streamed = try graph.fused(rowStreamingBytes: 0)
        #expect(streamed.nodes.contains { $0.layer is InvertedResidual })
        for batch in [1, 3] {
            let input = noise.tensor([batch, config.size, config.size, config.channels])
            let expected = try run(graph, input)
            let tolerance = 1e-4 * max(1, expected.maxAbsolute)
            #expect(try run(streamed, input).maxAbsoluteDifference(expected) <= tolerance, "batch \(batch), streamed")
            #expect(try run(try graph.fused(), input).maxAbsoluteDifference(expected) <= tolerance, "batch \(batch), fused")
        }
    }

    @Test("an expansion streamed into a depthwise convolution that a squeeze-and-excitation also reads equals its layers",
          arguments: blockCases)
    func expansionWithoutProjection(_ config: BlockCase) throws {
        // EfficientNet's MBConv: the depthwise output feeds the excitation's pooling and the
        // multiply, so only the expansion and the depthwise convolution join (no projection).
        let builder = GraphBuilder()
        let x = builder.input(shape: [config.size, config.size, config.channels], name: "x")
        let expandedChannels = config.channels * config.expansion
        var y = try builder.conv2D(x, filters: expandedChannels, kernelSize: 1, useBias: false, name: "expand")
        y = try builder.batchNormalization(y, name: "expand_bn")
        y = try builder.activation(y, config.activation, name: "expand_act")
        if config.zeroPadded { y = try builder.zeroPadding2D(y, ((0, 1), (0, 1)), name: "pad") }
        y = try builder.depthwiseConv2D(y, kernelSize: config.kernelSize, strides: config.stride,
                                        padding: config.zeroPadded ? .valid : .same, useBias: false, name: "dwconv")
        y = try builder.batchNormalization(y, name: "dw_bn")
        let depthwise = try builder.activation(y, config.activation, name: "dw_act")
        var se = try builder.globalAveragePooling2D(depthwise, name: "se_squeeze")
        se = try builder.reshape(se, to: [1, 1, expandedChannels], name: "se_reshape")
        se = try builder.conv2D(se, filters: 4, kernelSize: 1, activation: .swish, name: "se_reduce")
        se = try builder.conv2D(se, filters: expandedChannels, kernelSize: 1, activation: .sigmoid, name: "se_expand")
        y = try builder.multiply([depthwise, se], name: "se_excite")
        y = try builder.conv2D(y, filters: config.channels, kernelSize: 1, useBias: false, name: "project")
        y = try builder.batchNormalization(y, name: "project_bn")
        let graph = try builder.build(outputs: [y], name: "mbconv")
        var noise = Noise(state: 17)
        randomizeWeights(graph, noise: &noise)

        for rowStreamingBytes in [0, Int.max] {  // streamed rows; the two layers in turn inside the block
            let fused = try graph.fused(rowStreamingBytes: rowStreamingBytes)
            let block = try #require(fused.nodes.compactMap { $0.layer as? InvertedResidual }.first)
            #expect(block.name == "expand…dwconv")
            #expect(!fused.nodes.contains { $0.layer.name == "dwconv" }, "the depthwise layer also ran on its own")
            try expectSameOutputs(fused, as: graph, sample: [config.size, config.size, config.channels], noise: &noise,
                                  "streaming from \(rowStreamingBytes) bytes")
        }
    }

    struct ScaleCase: CustomStringConvertible, Sendable {
        let size: Int, channels: Int, filters: Int
        /// The multiply's inputs as `[scale, tensor]` (else `[tensor, scale]`).
        let scaleFirst: Bool
        /// A residual `Add` after the projection (merged in as well).
        let residual: Bool
        var description: String {
            "\(size)×\(size)×\(channels) → \(filters)\(scaleFirst ? " scale first" : "")\(residual ? " + residual" : "")"
        }
    }

    static let scaleCases = [
        // 5×5 maps: at batch 3 a block of GEMM rows spans several images, each with its own scale.
        ScaleCase(size: 5, channels: 37, filters: 24, scaleFirst: false, residual: true),
        ScaleCase(size: 5, channels: 37, filters: 24, scaleFirst: true, residual: false),
        // More pixels than a block, more filters than pixels (the filters split between cores).
        ScaleCase(size: 29, channels: 48, filters: 40, scaleFirst: true, residual: true),
        ScaleCase(size: 3, channels: 64, filters: 96, scaleFirst: false, residual: false),
    ]

    @Test("a squeeze-and-excitation multiply (and a residual add after a dropout) merged into the 1×1 convolution equals the layers",
          arguments: scaleCases)
    func scaledInputConvolution(_ config: ScaleCase) throws {
        let builder = GraphBuilder()
        let x = builder.input(shape: [config.size, config.size, config.channels], name: "x")
        // Computed before the projection, so the add merges into the projection.
        let shortcut = try builder.conv2D(x, filters: config.filters, kernelSize: 1, name: "shortcut")
        let features = try builder.conv2D(x, filters: config.channels, kernelSize: 3, padding: .same, activation: .swish, name: "features")
        var se = try builder.globalAveragePooling2D(features, name: "se_squeeze")
        se = try builder.reshape(se, to: [1, 1, config.channels], name: "se_reshape")
        se = try builder.conv2D(se, filters: 8, kernelSize: 1, activation: .swish, name: "se_reduce")
        se = try builder.conv2D(se, filters: config.channels, kernelSize: 1, activation: .sigmoid, name: "se_expand")
        var y = try builder.multiply(config.scaleFirst ? [se, features] : [features, se], name: "se_excite")
        y = try builder.conv2D(y, filters: config.filters, kernelSize: 1, useBias: false, name: "project")
        y = try builder.batchNormalization(y, name: "project_bn")
        if config.residual {
            // EfficientNet's drop-connect `Dropout` (identity at inference) sits between the two.
            y = try builder.dropout(y, name: "drop")
            y = try builder.add([shortcut, y], name: "add")
        }
        let graph = try builder.build(outputs: config.residual ? [y] : [y, shortcut], name: "se")
        var noise = Noise(state: 23)
        randomizeWeights(graph, noise: &noise)

        let fused = try graph.fused()
        let project = try #require(fused.nodes.compactMap { $0.layer as? Conv2D }.first { $0.name == "project" })
        #expect(project.scalesInput)
        #expect(project.addsResidual == config.residual)
        #expect(!fused.nodes.contains { $0.layer is ElementwiseMerge || $0.layer is Dropout },
                "the multiply, the add or the dropout still runs on its own")
        try expectSameOutputs(fused, as: graph, sample: [config.size, config.size, config.channels], noise: &noise, "fused")
    }

    struct StemCase: CustomStringConvertible, Sendable {
        let height: Int, width: Int, channels: Int, filters: Int, kernelSize: Int, stride: Int, activation: Activation
        /// A `ZeroPadding2D` and a `valid` stem (older tf.keras MobileNetV2's `Conv1_pad`), else `same`.
        let zeroPadded: Bool
        var description: String {
            "\(height)×\(width)×\(channels) → \(filters) \(kernelSize)×\(kernelSize)/\(stride) \(activation)\(zeroPadded ? " zero-padded" : "")"
        }
    }

    static let stemCases = [
        // MobileNetV2's stem (3×3/2 from RGB, ReLU6) on an even and an odd size.
        StemCase(height: 32, width: 24, channels: 3, filters: 32, kernelSize: 3, stride: 2, activation: .relu6, zeroPadded: false),
        StemCase(height: 29, width: 31, channels: 3, filters: 16, kernelSize: 3, stride: 2, activation: .relu6, zeroPadded: true),
        // MobileNetV3's activation (not a clamp: applied after the rows), a 5×5 window.
        StemCase(height: 21, width: 21, channels: 4, filters: 24, kernelSize: 5, stride: 2, activation: .hardSwish, zeroPadded: false),
        // A stride-1 k×k expansion by the direct path (at least 16 channels).
        StemCase(height: 12, width: 10, channels: 16, filters: 40, kernelSize: 3, stride: 1, activation: .relu, zeroPadded: false),
    ]

    @Test("a stem convolution fused into the inverted residual after it equals the layers run one by one", arguments: stemCases)
    func stemInvertedResidual(_ config: StemCase) throws {
        let builder = GraphBuilder()
        let x = builder.input(shape: [config.height, config.width, config.channels], name: "x")
        var y = x
        if config.zeroPadded { y = try builder.zeroPadding2D(y, ((0, 1), (0, 1)), name: "stem_pad") }
        y = try builder.conv2D(y, filters: config.filters, kernelSize: config.kernelSize, strides: config.stride,
                               padding: config.zeroPadded ? .valid : .same, useBias: false, name: "stem")
        y = try builder.batchNormalization(y, name: "stem_bn")
        y = try builder.activation(y, config.activation, name: "stem_act")
        y = try builder.depthwiseConv2D(y, kernelSize: 3, padding: .same, name: "depthwise")
        y = try builder.batchNormalization(y, name: "depthwise_bn")
        y = try builder.activation(y, config.activation, name: "depthwise_act")
        y = try builder.conv2D(y, filters: 8, kernelSize: 1, useBias: false, name: "project")
        y = try builder.batchNormalization(y, name: "project_bn")
        let graph = try builder.build(outputs: [y], name: "stem_block")
        var noise = Noise(state: 23)
        randomizeWeights(graph, noise: &noise)

        for rowStreamingBytes in [0, Int.max] {  // streamed rows; the layers in turn inside the block
            let fused = try graph.fused(rowStreamingBytes: rowStreamingBytes)
            let block = try #require(fused.nodes.compactMap { $0.layer as? InvertedResidual }.first)
            if tl_conv_direct_available() != 0 {
                #expect(block.name == "stem…project", "the stem was not fused: \(block.name)")
            }
            try expectSameOutputs(fused, as: graph, sample: [config.height, config.width, config.channels], noise: &noise,
                                  "streaming from \(rowStreamingBytes) bytes")
        }
    }
}
