import CKernels
import Foundation
import TLTensor

/// Keras `Dense` over the last axis: `activation(x · kernel + bias)`.
///
/// - `kernel`: `[inputFeatures, units]`
/// - `bias`: `[units]` when `useBias`
///
/// The kernel is packed for `CKernels`' GEMM whenever it is set. A few rows (a classifier at
/// small batch) split the units between cores; many rows (Dense over NHWC pixels) split the rows.
public final class Dense: Layer {
    public let name: String
    /// Output features.
    public let units: Int
    /// Whether a bias is added.
    public let useBias: Bool
    /// Applied after the bias (softmax over the units).
    public let activation: Activation
    /// `[in, units]` kernel.
    public var kernel = Tensor(shape: [0]) { didSet { packedKernel.invalidate(); version.bump() } }
    /// The kernel as GEMM panels of 16 units.
    private let packedKernel = PackedKernel()
    /// `[units]` bias, or nil.
    public var bias: Tensor? { didSet { version.bump() } }
    private let version = ParameterVersion()
    public var parameterVersion: Int { version.value }

    /// Creates a dense layer with weights to be loaded later.
    public init(name: String, units: Int, useBias: Bool = true, activation: Activation = .linear) {
        self.name = name
        self.units = units
        self.useBias = useBias
        self.activation = activation
    }

    /// Creates a dense layer with weights given (a new head).
    /// - Precondition: `kernel` is `[in, units]`, `bias` (if any) is `[units]`.
    public convenience init(name: String, kernel: Tensor, bias: Tensor?, activation: Activation = .linear) {
        precondition(kernel.rank == 2, "Dense kernel must be [in, units]")
        self.init(name: name, units: kernel.shape[1], useBias: bias != nil, activation: activation)
        self.kernel = kernel
        self.bias = bias
    }

    func copy(activation: Activation) -> Dense {
        Dense(name: name, kernel: kernel, bias: bias, activation: activation)
    }

    public func outputShape(inputShapes: [[Int]]) throws -> [Int] {
        guard let last = inputShapes[0].last, last > 0 else {
            throw EngineError.incompatibleShapes(layer: name, detail: "Dense needs a known last dimension, got per-sample shape \(inputShapes[0])")
        }
        return inputShapes[0].dropLast() + [units]
    }

    public func expectedWeights(inputShapes: [[Int]]) -> [WeightSpec] {
        var specs = [WeightSpec("kernel", [inputShapes[0].last ?? 0, units])]
        if useBias { specs.append(WeightSpec("bias", [units])) }
        return specs
    }

    /// In place: the kernel's observer (which drops the packed panels) does not read the old value,
    /// so the kernel is modified where it lies, without a copy.
    public func updateWeight(named name: String, _ body: (inout Tensor) -> Void) {
        switch name {
        case "kernel": body(&kernel)
        case "bias" where bias != nil: body(&bias!)
        default: break
        }
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

    public func prepare() { packedKernel.prepare(packKernel) }

    /// The kernel as GEMM panels of 16 units.
    private func packKernel(reusing spare: FloatBuffer?) -> FloatBuffer? {
        guard kernel.rank == 2, kernel.shape[1] == units else { return nil }
        return kernel.scalars.withUnsafeBufferPointer { source in
            packedForGEMM(source.baseAddress!, rows: kernel.shape[0], columns: units, leadingDimension: units, reusing: spare)
        }
    }

    public func forward(_ inputs: [ActivationView], into output: MutableActivationView, scratch: UnsafeMutablePointer<Float>) {
        let features = inputs[0].shape.last ?? 1
        let rows = output.count / units, units = units
        let (low, high) = activation.clampBounds ?? (-.infinity, .infinity)
        let input = inputs[0].data, result = output.data
        let panelWidth = Int(TL_GEMM_PANEL), panels = (units + panelWidth - 1) / panelWidth
        let threads = rows * units * features >= 200_000 ? engineThreads : 1
        // A kernel that changed since it was packed (each step of training) is read in place
        // when the batch is small: packing it would cost more than the product (fc6 of AlexNet:
        // 38 M weights copied for 32 rows). Same bits either way.
        let readsInPlace = packedKernel.currentPointer == nil && rows <= Self.inPlaceRows
        let packed = readsInPlace ? nil : packedKernel.pointer(packingWith: packKernel)
        guard readsInPlace || packed != nil, kernel.shape == [features, units] else {
            preconditionFailure("\(name): kernel \(kernel.shape) does not fit \(units) units (weights not loaded?)")
        }
        /// `rows` from `firstRow`, units `first..<last` (whole panels but for the last unit).
        func product(firstRow: Int, rows: Int, units range: Range<Int>, bias: UnsafePointer<Float>?, kernel: UnsafePointer<Float>) {
            let a = input + firstRow * features, c = result + firstRow * units + range.lowerBound
            let bias = bias.map { $0 + range.lowerBound }
            if let packed {
                tl_gemm_packed(Int32(rows), Int32(range.count), Int32(features), a, Int32(features),
                               packed + range.lowerBound * features, bias, nil, 0, low, high, c, Int32(units))
            } else {
                let status = tl_gemm(Int32(rows), Int32(range.count), Int32(features), a, Int32(features), kernel + range.lowerBound,
                                     Int32(units), bias, nil, 0, low, high, c, Int32(units))
                precondition(status == 0, "\(name): out of memory")
            }
        }
        kernel.scalars.withUnsafeBufferPointer { kernelBuffer in
            (bias?.scalars ?? []).withUnsafeBufferPointer { biasBuffer in
                let biasPointer = biasBuffer.isEmpty ? nil : biasBuffer.baseAddress, kernel = kernelBuffer.baseAddress!
                if rows >= 96 * threads {
                    // Rows in blocks of 96, handed out to the threads.
                    let blockRows = threads == 1 ? rows : 96, blocks = (rows + blockRows - 1) / blockRows
                    concurrentPerform(iterations: blocks) { block, _ in
                        let first = block * blockRows
                        product(firstRow: first, rows: min(rows, first + blockRows) - first, units: 0..<units, bias: biasPointer, kernel: kernel)
                    }
                } else {
                    // Few rows: each thread takes a contiguous run of the units (whole GEMM tiles).
                    let chunks = min(threads, panels)
                    concurrentPerform(iterations: chunks) { chunk, _ in
                        let (first, last) = gemmColumnRun(chunk, of: chunks, columns: units)
                        guard first < last else { return }
                        product(firstRow: 0, rows: rows, units: first..<last, bias: biasPointer, kernel: kernel)
                    }
                }
            }
        }
        if activation.clampBounds == nil {
            applyActivation(activation, to: output.data, rows: rows, lastAxis: units)
        }
    }

    /// Batches up to this many rows read a changed kernel in place rather than repacking it.
    static let inPlaceRows = 64
}
