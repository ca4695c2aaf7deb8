import CKernels
import Foundation
import TLTensor

/// Keras `Conv2D`: a 2-D convolution over NHWC activations, computed as a GEMM.
///
/// - `kernel`: HWIO `[kernelHeight, kernelWidth, inputChannels / groups, filters]`
/// - `bias`: `[filters]` when `useBias`
///
/// Output pixels run in blocks sized to stay in L2, handed to the engine's threads one at a time:
/// 1×1 stride-1 convolutions multiply the block's NHWC input rows directly, every other case
/// first gathers its image patches (im2col) into the thread's part of the scratch buffer. The
/// kernel is packed once, when set, for `CKernels`' GEMM, whose epilogue adds the bias and
/// applies clamp-type activations (ReLU, ReLU6) while the block is in registers; other
/// activations follow while the block is still in cache.
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
    public var kernel: Tensor {
        didSet {
            packedKernel.invalidate(); amxKernel.invalidate()
            winogradKernels.values.forEach { $0.invalidate() }; winogradAMXKernels.values.forEach { $0.invalidate() }
            version.bump()
        }
    }
    /// The kernel as `CKernels` GEMM panels, one packed matrix per group.
    private let packedKernel = PackedKernel()
    /// Those panels split into bfloat16 hi and lo tiles for AMX (`tl_gemm_amx_pack`), when `usesAMX`.
    private let amxKernel = PackedKernel()
    /// Whether the GEMMs (1×1, im2col and Winograd) may run on AMX tiles where the CPU has them
    /// (`tl_gemm_amx`: each product as three bfloat16 products, a few 1e-6 from fp32 per layer).
    /// Off by default: `Model` turns it on in the fused copies it runs after checking them
    /// (`AMXUse.whereAccurate`), since through a deep network with large BatchNorm gains the
    /// difference can pass 1e-4; `TLHUB_AMX=1` turns it on everywhere, tests per layer.
    package var allowsAMX = Conv2D.amxUse == .always
    /// When convolutions take AMX: `TLHUB_AMX=0` never, `TLHUB_AMX=1` always (training too, no
    /// check), otherwise in inference where a check finds it accurate.
    package enum AMXUse { case never, whereAccurate, always }
    /// `TLHUB_AMX`'s choice; `.never` where the CPU has no AMX.
    package static let amxUse: AMXUse = {
        guard amxSupported else { return .never }
        switch ProcessInfo.processInfo.environment["TLHUB_AMX"] {
        case "0": return .never
        case "1": return .always
        default: return .whereAccurate
        }
    }()
    /// Whether `allowsAMX` can put this layer's GEMMs on AMX (`takesAMX(depth:)` for its patch).
    package var takesAMX: Bool { takesAMX(depth: patchLength) }
    /// Whether this layer's GEMMs run on AMX: allowed and supported, and `takesAMX`.
    /// It depends on the layer alone, not the pass, so a row's bits never depend on the batch.
    package var usesAMX: Bool { usesAMX(depth: patchLength) }
    /// Whether GEMMs `depth` deep (a patch; Winograd's: the input channels) run on AMX.
    private func usesAMX(depth: Int) -> Bool { allowsAMX && Conv2D.amxSupported && takesAMX(depth: depth) }
    /// Whether GEMMs `depth` deep gain from AMX: one group, and 64 deep, or 32 deep with 64
    /// filters or more. `tl_gemm_amx` pads K to 32 and splits each row of A into bfloat16s per
    /// call, work that only enough columns repay: MobileNetV2's 32-deep expansions to 192 run
    /// about 15 % faster on AMX (`bench/layer_ab.py`, `block_[456]`, batch 1 and 32),
    /// EfficientNetB0's 32-deep projection to 16 about 3 % slower, and 16-deep ones no faster.
    private func takesAMX(depth: Int) -> Bool { groups == 1 && (depth >= 64 || depth >= 32 && filters >= 64) }
    private static let amxSupported = tl_gemm_amx_supported() != 0
    /// The kernel Winograd-transformed and packed (`tl_winograd_pack`) for output tiles of 2 and
    /// 4, each packed when a pass first takes it.
    private let winogradKernels = [2: PackedKernel(), 4: PackedKernel()]
    /// Those split for AMX, one position's matrix after another, when `usesAMX(depth:)` holds for
    /// the input channels.
    private let winogradAMXKernels = [2: PackedKernel(), 4: PackedKernel()]
    /// Whether a 3×3 or 5×5 stride-1 convolution may run as Winograd: yes unless
    /// `TLHUB_WINOGRAD=0` (tests turn it off per layer to compare both paths).
    package var allowsWinograd = Conv2D.winogradByDefault
    private static let winogradByDefault = ProcessInfo.processInfo.environment["TLHUB_WINOGRAD"] != "0"
    /// The largest output tile the Winograd path may take: 4 for F(4×4, 3×3) (2.25 multiplies
    /// per output), 2 for F(2×2, 3×3) (4 multiplies, a quarter of the rounding);
    /// `TLHUB_WINOGRAD=2` keeps every layer at 2.
    package var winogradTile = Conv2D.winogradTileByDefault
    private static let winogradTileByDefault = ProcessInfo.processInfo.environment["TLHUB_WINOGRAD"] == "2" ? 2 : 4
    /// Tiles a pass needs before a Winograd tile size pays (`path`); 0 forces the largest tile
    /// (`winogradTile`) wherever Winograd applies, as tests do.
    package var winogradMinimumTiles = 40
    /// Whether a stride-1 k×k convolution may read its padded input in place (`usesDirect`)
    /// instead of gathering im2col patches: yes unless `TLHUB_DIRECT=0` (tests turn it off per
    /// layer to compare both paths).
    package var allowsDirect = Conv2D.directByDefault
    private static let directByDefault = ProcessInfo.processInfo.environment["TLHUB_DIRECT"] != "0"
    /// `[filters]` bias, or nil.
    public var bias: Tensor? { didSet { biasBuffer = bias.map { FloatBuffer($0.scalars) }; version.bump() } }
    private let version = ParameterVersion()
    public var parameterVersion: Int { version.value }
    /// The bias at a stable address for the kernels.
    private var biasBuffer: FloatBuffer?
    /// `((top, bottom), (left, right))` zeros of a preceding `ZeroPadding2D` merged in by
    /// `Graph.fused()` (only with `valid` padding), or set by training for a transposed pass.
    package var extraPadding: ((Int, Int), (Int, Int)) = ((0, 0), (0, 0))
    /// Whether a second input of the output's shape is added before the activation (an `Add`
    /// merged in by `Graph.fused()`).
    public internal(set) var addsResidual = false
    /// Whether the last input is a per-image channel vector (`[1, 1, C]`) the input is multiplied
    /// by before a 1×1 convolution (a squeeze-and-excitation `Multiply` merged in by
    /// `Graph.fused()`): each block of input rows is scaled as it is read, into the scratch the
    /// GEMM then reads, so the scaled tensor is never written out. Same bits as the two layers.
    public internal(set) var scalesInput = false
    /// The residual: every path reads a residual element only to write the output element in
    /// its place (the GEMM adds into C when they are one buffer).
    public var overwritableInput: Int? { addsResidual ? 1 : nil }

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
        result.addsResidual = addsResidual
        result.scalesInput = scalesInput
        result.allowsWinograd = allowsWinograd
        result.winogradTile = winogradTile
        result.winogradMinimumTiles = winogradMinimumTiles
        result.allowsDirect = allowsDirect
        return result
    }

    /// Output size and zeros before, per spatial axis, including merged zero padding.
    package func geometry(height: Int, width: Int) -> (rows: (output: Int, before: Int), columns: (output: Int, before: Int)) {
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
        let output = [rows.output, columns.output, filters]
        // The input, then the residual, then the scale.
        let inputCount = 1 + (addsResidual ? 1 : 0) + (scalesInput ? 1 : 0)
        if scalesInput {
            guard isPointwise, inputShapes.count == inputCount, inputShapes.last == [1, 1, input[2]] else {
                throw EngineError.incompatibleShapes(layer: name, detail: "a scaled input needs a 1×1 convolution and a [1, 1, \(input[2])] scale, got \(inputShapes)")
            }
        }
        if addsResidual {
            guard inputShapes.count == inputCount, inputShapes[1] == output else {
                throw EngineError.incompatibleShapes(layer: name, detail: "the residual input \(inputShapes.dropFirst().first ?? []) does not match the output \(output)")
            }
        }
        return output
    }

    public func expectedWeights(inputShapes: [[Int]]) -> [WeightSpec] {
        let inputChannels = inputShapes[0].last ?? 0
        var specs = [WeightSpec("kernel", [kernelSize.0, kernelSize.1, inputChannels / groups, filters])]
        if useBias { specs.append(WeightSpec("bias", [filters])) }
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

    /// Packed kernel panels (see `tl_gemm_pack`), valid while the layer lives.
    var packedKernelPointer: UnsafePointer<Float> {
        guard let pointer = packedKernel.pointer(packingWith: packKernel) else {
            preconditionFailure("\(name): kernel \(kernel.shape) does not fit \(filters) filters (weights not loaded?)")
        }
        return pointer
    }
    /// The GEMM weights as `forward`'s GEMMs read them: the packed panels, and their AMX split
    /// when `usesAMX`. Valid until the kernel changes.
    var gemmWeights: GEMMWeights {
        let packed = packedKernelPointer
        let amx = usesAMX ? amxKernel.halfwordPointer { amxSplit(packed, depth: patchLength, columns: filters, reusing: $0) } : nil
        return GEMMWeights(packed: packed, amx: amx, depth: patchLength)
    }
    /// The bias, or nil; valid while the layer lives.
    var biasPointer: UnsafePointer<Float>? { biasBuffer.map { UnsafePointer($0.pointer) } }

    /// Whether this is a 1×1, stride-1, ungrouped, unpadded convolution: a GEMM over NHWC rows.
    var isPointwise: Bool {
        kernelSize == (1, 1) && strides == (1, 1) && groups == 1 && extraPadding.0 == (0, 0) && extraPadding.1 == (0, 0)
    }

    /// Rows (`kh·kw·in/groups`) of each group's GEMM right-hand side.
    private var patchLength: Int { kernel.shape.count == 4 ? kernel.shape[0] * kernel.shape[1] * kernel.shape[2] : 0 }

    /// Packs the GEMM panels; a Winograd layer waits for a pass's shape (`prepare(inputShapes:)`).
    public func prepare() {
        if !usesWinograd { packedKernel.prepare(packKernel) }
    }

    /// Packs the kernel for the path passes over `inputShapes` take.
    public func prepare(inputShapes: [[Int]]) {
        guard let input = inputShapes.first, input.count == 4,
              let output = try? outputShape(inputShapes: [Array(input.dropFirst())]) else { return prepare() }
        prepare(path(batch: input[0], outputHeight: output[0], outputWidth: output[1]))
    }

    private func prepare(_ path: ConvolutionPath) {
        if case .winograd(let tile) = path {
            winogradKernels[tile]?.prepare { packWinograd(tile: tile, reusing: $0) }
        } else {
            packedKernel.prepare(packKernel)
        }
    }

    /// How `forward` computes a pass.
    package enum ConvolutionPath: Equatable {
        /// Winograd F(tile×tile, r×r) for the layer's r×r kernel.
        case winograd(tile: Int)
        /// The padded input read in place (`forwardDirect`).
        case direct
        /// Patches gathered, one GEMM (1×1 convolutions read the input as it lies).
        case im2col
    }

    /// The path for a pass of `batch` images with an output of `outputHeight × outputWidth`.
    /// Winograd takes the largest tile that gives the pass `winogradMinimumTiles` tiles: each
    /// tile is a row of the GEMMs against the transformed kernel (F(4×4)'s is 4× the kernel), and
    /// a pass of few rows streams that kernel through the cache for little work. Below it, the
    /// direct path. Per-layer times (`tlhub bench --profile`, ResNet50 and InceptionV3): at batch
    /// 1, F(4×4) is fastest on 28×28 and larger maps (49+ tiles), F(2×2) on 14×14 (49 tiles
    /// against F(4×4)'s 16), the direct path on 7×7 and 8×8 (4 and 16 tiles); with 16 images
    /// per pass F(4×4) is fastest everywhere. F(4×4) is skipped where its tiles cover over 40 %
    /// more than the map (AlexNet's 13×13: F(2×2) 10–20 % faster in training).
    package func path(batch: Int, outputHeight: Int, outputWidth: Int) -> ConvolutionPath {
        if usesWinograd {
            let tiles = kernelSize.0 == 3 ? [4, 2].filter { $0 <= winogradTile } : [2]
            if winogradMinimumTiles == 0 { return .winograd(tile: tiles[0]) }
            for tile in tiles {
                let (tilesY, tilesX) = winogradTiles(tile, height: outputHeight, width: outputWidth)
                // F(4×4) on a map it covers with over 40 % to spare (13×13 in 16×16) loses to F(2×2).
                if tile == 4 && 10 * tilesY * tilesX * 16 > 14 * outputHeight * outputWidth { continue }
                if batch * tilesY * tilesX >= winogradMinimumTiles { return .winograd(tile: tile) }
            }
            return usesDirect ? .direct : .winograd(tile: 2)
        }
        return usesDirect ? .direct : .im2col
    }

    /// Whether `forward` may run as Winograd (`path` picks the tile): 3×3 (F(4×4) or F(2×2)) or
    /// 5×5 (F(2×2), 9 multiplies per output instead of 25), stride 1, undilated, ungrouped, at
    /// least 16 channels in and out (below that the GEMMs are too thin to gain), and an
    /// activation that works per channel (not softmax).
    package var usesWinograd: Bool {
        allowsWinograd && (kernelSize == (3, 3) || kernelSize == (5, 5)) && strides == (1, 1) && dilation == (1, 1) && groups == 1
            && kernel.shape.count == 4 && kernel.shape[2] >= 16 && filters >= 16 && activation != .softmax
    }

    /// The kernel Winograd-transformed for output tiles of `tile`, packed.
    private func packWinograd(tile: Int, reusing spare: FloatBuffer?) -> FloatBuffer? {
        let channels = kernel.shape[2], size = kernelSize.0
        guard kernel.shape == [size, size, channels, filters] else { return nil }
        let tile = Int32(tile)
        let count = tl_winograd_packed_count(tile, Int32(size), Int32(channels), Int32(filters))
        let packed = spare.flatMap { $0.count == count ? $0 : nil } ?? FloatBuffer(count: count)
        let status = kernel.scalars.withUnsafeBufferPointer {
            tl_winograd_pack(tile, Int32(size), $0.baseAddress!, Int32(channels), Int32(filters), packed.pointer)
        }
        return status == 0 ? packed : nil
    }

    /// Positions of a transformed Winograd tile: n², n = tile + kernel size − 1 (the GEMMs per
    /// chunk of tiles).
    private func winogradPositions(_ tile: Int) -> Int { (tile + kernelSize.0 - 1) * (tile + kernelSize.0 - 1) }

    /// Winograd tiles of `tile` × `tile` for an output of `height × width`: (rows, columns).
    private func winogradTiles(_ tile: Int, height: Int, width: Int) -> (Int, Int) {
        ((height + tile - 1) / tile, (width + tile - 1) / tile)
    }

    /// Tiles per Winograd work item: their transformed input and output matrices take about
    /// 1 MB (at least 16 tiles), so what the input transform writes and the GEMMs' results stay in
    /// a core's L2 until the next phase reads them. With 8 MB (a chunk of 256 tiles in ResNet50's
    /// 64-channel layers: 4.7 MB) they went to L3 and back; 1 MB against 8 MB in one process
    /// (`tlhub bench --alternate`, Zen 4 with 1 MB L2, A/A 0.985–1.004): ResNet50 batch 32 1.028 and
    /// 1.041, batch 1 1.025; VGG16 batch 32 1.069, batch 1 1.025; InceptionV3 batch 32 1.027
    /// (512 KB and 256 KB: 1.021 and 1.012; 2 MB 1.003).
    private func winogradTiling(tiles: Int, channels: Int, tile: Int) -> (chunk: Int, filterParts: Int, threads: Int) {
        let positions = winogradPositions(tile)
        var chunk = min(256, max(16, (1 << 18) / (positions * (channels + filters))))
        chunk = chunk / 8 * 8
        let threads = tiles * positions * channels * filters >= 200_000 ? engineThreads : 1
        chunk = min(chunk, max(8, ((tiles + threads - 1) / threads + 7) / 8 * 8))
        let chunks = (tiles + chunk - 1) / chunk
        let panels = (filters + Int(TL_GEMM_PANEL) - 1) / Int(TL_GEMM_PANEL)
        let filterParts = threads > 1 && chunks < 2 * threads && panels >= 2 * threads ? threads : 1
        return (chunk, filterParts, threads)
    }

    /// Floats of one thread's Winograd buffers for up to `chunk` tiles: the transformed input and
    /// the GEMM results, n² positions each (`tl_winograd_stride` apart).
    private func winogradScratch(chunk: Int, tile: Int, channels: Int) -> Int {
        winogradPositions(tile) * (tl_winograd_stride(Int32(chunk), Int32(channels)) + tl_winograd_stride(Int32(chunk), Int32(filters)))
    }

    /// The kernel as GEMM panels, one packed matrix per group.
    private func packKernel(reusing spare: FloatBuffer?) -> FloatBuffer? {
        do {
            let patch = patchLength, groupFilters = filters / groups
            guard patch > 0, kernel.shape.last == filters else { return nil }
            let groupCount = tl_gemm_packed_count(Int32(patch), Int32(groupFilters))
            let packed = spare.flatMap { $0.count == groupCount * groups ? $0 : nil } ?? FloatBuffer(count: groupCount * groups)
            kernel.scalars.withUnsafeBufferPointer { source in
                for group in 0..<groups {
                    tl_gemm_pack(source.baseAddress! + group * groupFilters, Int32(filters), Int32(patch),
                                 Int32(groupFilters), packed.pointer + group * groupCount)
                }
            }
            return packed
        }
    }

    /// How `forward` splits the work: output pixels (batch × height × width) in blocks of
    /// `blocks` runs of at most `blockPixels` rows whose patches (up to the GEMM's 384-deep K
    /// block) and outputs fit in L2, and the filters in `filterChunks` runs of 32-wide panel pairs.
    /// Fewer pixels than filters (ResNet's later stages at batch 1, whose weights outweigh their
    /// activations) split the filters, each work item taking all the pixels in one block, so the
    /// weights stream once (in two blocks of 25 and 24 rows, conv5's 1×1 layers read their 4–8 MB
    /// of weights twice: 6 % slower); up to four runs of filters per core (of equal panels), so
    /// a core the host slows down takes fewer runs;
    /// otherwise pixel blocks are spread over the cores, cut at the micro-kernel's row tile as
    /// evenly as they go (`evenRun`: MobileNetV2's 14×14 projections at batch 1 split 25 tiles
    /// 6, 6, 6, 7, where blocks of 7 tiles left one core 112 rows to the other's 84), and few
    /// blocks come in a multiple of the thread count so no core idles at the end. `threads` is 1
    /// when the work is too small to share.
    private func tiling(pixels: Int, patch: Int) -> (blockPixels: Int, blocks: Int, filterChunks: Int, threads: Int) {
        let threads = (pixels * filters * patch >= 200_000 && pixels >= 12) ? engineThreads : 1
        let rowTile = Int(tl_gemm_row_tile())
        var rows = min(512, 32_768 / max(1, min(patch, 384)), 65_536 / max(1, filters))
        rows = max(rowTile, rows / rowTile * rowTile)
        let panels = (filters / groups + Int(TL_GEMM_PANEL) - 1) / Int(TL_GEMM_PANEL)
        let splitsFilters = threads > 1 && pixels < filters / groups && panels >= 2 * threads && groups == 1
            && activation != .softmax
        var blocks = splitsFilters ? 1 : max(1, (pixels + rows - 1) / rows)
        if !splitsFilters && blocks < 8 * threads { blocks = (blocks + threads - 1) / threads * threads }
        let tiles = (pixels + rowTile - 1) / rowTile
        blocks = min(blocks, tiles)  // none for an empty batch
        rows = blocks > 0 ? (tiles + blocks - 1) / blocks * rowTile : rowTile
        // Filter runs: 4, 2 or 1 per core, the most that cut the panels evenly (a 160-filter
        // projection's 10 panels in five pairs would leave one core three pairs to the other's two).
        let filterChunks = [4, 2].map { $0 * threads }.first { panels % $0 == 0 } ?? threads
        return (max(1, min(rows, pixels)), blocks, splitsFilters ? filterChunks : 1, threads)
    }

    public func scratchCount(inputs: [[Int]], output: [Int]) -> Int {
        if isPointwise && !scalesInput { return 0 }
        switch path(batch: output[0], outputHeight: output[1], outputWidth: output[2]) {
        case .direct:
            let padded = directPadded(height: output[1], width: output[2])
            return output[0] * padded.height * padded.width * inputs[0][3]
        case .winograd(let tile):
            let (tilesY, tilesX) = winogradTiles(tile, height: output[1], width: output[2])
            let (chunk, _, threads) = winogradTiling(tiles: output[0] * tilesY * tilesX, channels: inputs[0][3], tile: tile)
            return threads * winogradScratch(chunk: chunk, tile: tile, channels: inputs[0][3])
        case .im2col:
            break
        }
        let patch = kernelSize.0 * kernelSize.1 * (inputs[0][3] / groups)
        let (blockPixels, _, _, threads) = tiling(pixels: output[0] * output[1] * output[2], patch: patch)
        return threads * blockPixels * patch
    }

    public func forward(_ inputs: [ActivationView], into output: MutableActivationView, scratch: UnsafeMutablePointer<Float>) {
        switch path(batch: output.shape[0], outputHeight: output.shape[1], outputWidth: output.shape[2]) {
        case .winograd(let tile): return forwardWinograd(inputs, into: output, scratch: scratch, tile: tile)
        case .direct: return forwardDirect(inputs, into: output, scratch: scratch)
        case .im2col: break
        }
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
        let (blockPixels, blockCount, filterChunks, threads) = tiling(pixels: pixels, patch: patch)
        let filters = filters, groups = groups, activation = activation
        let (low, high) = activation.clampBounds ?? (-.infinity, .infinity)
        let activationPass = activation.clampBounds == nil
        let groupPacked = tl_gemm_packed_count(Int32(patch), Int32(groupFilters))
        // One group: its GEMMs (on AMX where the layer takes it); several: each group's panels.
        let weights = groups == 1 ? gemmWeights : nil
        let packed = weights?.packed ?? packedKernelPointer, biasPointer = self.biasPointer
        let residual = addsResidual ? inputs[1].data : nil
        let scale = scalesInput ? inputs[inputs.count - 1].data : nil

        /// Input rows `start..<start + count` (1×1: one per output pixel) times their image's
        /// channel scale.
        func scaleRows(start: Int, count: Int, by scale: UnsafePointer<Float>, into destination: UnsafeMutablePointer<Float>) {
            let imagePixels = height * width
            for row in start..<start + count {
                let source = input.data + row * channels, factors = scale + row / imagePixels * channels
                let target = destination + (row - start) * channels
                for c in 0..<channels { target[c] = source[c] * factors[c] }
            }
        }

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

        let run = { (item: Int, thread: Int) in
            let block = item / filterChunks, chunk = item % filterChunks
            let region = scratch + thread * blockPixels * patch
            let range = evenRun(block, of: blockCount, count: pixels, unit: Int(tl_gemm_row_tile()))
            let start = range.lowerBound, count = range.count
            // This item's filters within each group: whole tiles, the last one possibly partial.
            let (first, last) = gemmColumnRun(chunk, of: filterChunks, columns: groupFilters)
            guard first < last else { return }
            let destination = output.data + start * filters
            for group in 0..<groups {
                let a: UnsafePointer<Float>
                let lda: Int
                if let scale {
                    scaleRows(start: start, count: count, by: scale, into: region)
                    (a, lda) = (UnsafePointer(region), patch)
                } else if pointwise {
                    (a, lda) = (UnsafePointer(input.data + start * channels), channels)
                } else {
                    gatherPatches(start: start, count: count, group: group, into: region)
                    (a, lda) = (UnsafePointer(region), patch)
                }
                let column = group * groupFilters + first
                (weights ?? GEMMWeights(packed: packed + group * groupPacked, amx: nil, depth: patch))
                    .multiply(rows: count, a, lda: lda, columns: first, last, bias: biasPointer.map { $0 + column },
                              residual: residual.map { $0 + start * filters + column }, ldr: filters,
                              low: low, high: high, into: destination + column, ldc: filters)
            }
            guard activationPass else { return }
            if filterChunks == 1 {
                activation.apply(destination, count: count * filters, lastAxis: filters)
            } else {
                for pixel in 0..<count {
                    activation.apply(destination + pixel * filters + first, count: last - first, lastAxis: last - first)
                }
            }
        }
        if threads == 1 {
            for item in 0..<blockCount * filterChunks { run(item, 0) }
        } else {
            concurrentPerform(iterations: blockCount * filterChunks, run)
        }
    }
}

// MARK: - Direct (no im2col)

extension Conv2D {
    /// Whether `forward` may read a zero-padded copy of the input in place (`tl_conv_direct`)
    /// instead of gathering patches (`path` decides against Winograd): undilated, ungrouped, k×k
    /// past 1×1, on AVX-512; at stride 1 with at least 16 channels, strided with at most 4 (an
    /// RGB stem, whose 27-long im2col rows made its GEMM run at a fifth of peak: MobileNetV2's
    /// 3×3/2 stem took 11 % of a batch). The same bits as the im2col path.
    package var usesDirect: Bool {
        guard allowsDirect && !isPointwise && dilation == (1, 1) && groups == 1 && kernel.shape.count == 4
            && activation != .softmax && tl_conv_direct_available() != 0 else { return false }
        return strides == (1, 1) ? kernel.shape[2] >= 16 : kernel.shape[2] <= 4
    }

    /// The zero-padded input the direct paths (forward, and training's kernel gradient) read for
    /// an output of `height × width`.
    package func directPadded(height: Int, width: Int) -> (height: Int, width: Int) {
        ((height - 1) * strides.0 + kernelSize.0, (width - 1) * strides.1 + kernelSize.1)
    }

    /// `tl_conv_direct`'s view of a padded input `paddedWidth` pixels wide and an output
    /// `outputWidth` wide.
    private func directShape(paddedWidth: Int, channels: Int, outputWidth: Int) -> TLDirectShape {
        TLDirectShape(paddedWidth: Int32(paddedWidth), channels: Int32(channels), kernelHeight: Int32(kernelSize.0),
                      kernelWidth: Int32(kernelSize.1), strideX: Int32(strides.1), strideY: Int32(strides.0),
                      outputWidth: Int32(outputWidth))
    }

    /// Floats of the band `forwardDirectRows` pads for `outputRows` rows of an output
    /// `outputWidth` wide: the padded input rows their windows cover.
    package func directBandCount(outputRows: Int, outputWidth: Int, inputChannels: Int) -> Int {
        let (rows, columns) = directPadded(height: outputRows, width: outputWidth)
        return rows * columns * inputChannels
    }

    /// Output rows `outputRows` of one `height × width` image by the direct path, on the calling
    /// thread: the padded input rows their windows read copied into `band`
    /// (`directBandCount` floats), then `tl_conv_direct` into `destination` (the rows'
    /// `outputWidth × filters` floats, row-major). The same bits as `forward`. `packed` is
    /// `packedKernelPointer`, fetched once by a caller that runs many bands (it takes a lock).
    /// - Precondition: `usesDirect`, and no residual.
    package func forwardDirectRows(_ outputRows: Range<Int>, image: UnsafePointer<Float>, height: Int, width: Int,
                                   packed: UnsafePointer<Float>, band: UnsafeMutablePointer<Float>,
                                   into destination: UnsafeMutablePointer<Float>) {
        precondition(usesDirect && !addsResidual, "\(name): rows by the direct path need a direct, residual-free convolution")
        let channels = kernel.shape[2]
        let (rows, columns) = geometry(height: height, width: width)
        let outputWidth = columns.output
        let (bandRows, paddedWidth) = directPadded(height: outputRows.count, width: outputWidth)
        // The band is padded rows firstPadded..<firstPadded + bandRows of the whole padded image.
        let firstPadded = outputRows.lowerBound * strides.0
        fillPadded(image, height: height, width: width, channels: channels, top: rows.before - firstPadded,
                   left: columns.before, into: band, paddedHeight: bandRows, paddedWidth: paddedWidth, rows: 0..<bandRows)
        var shape = directShape(paddedWidth: paddedWidth, channels: channels, outputWidth: outputWidth)
        let (low, high) = activation.clampBounds ?? (-.infinity, .infinity)
        let pixels = outputRows.count * outputWidth, patch = kernelSize.0 * kernelSize.1 * channels
        let status = tl_conv_direct(band, &shape, 0, Int32(pixels), packed, Int32(patch), Int32(filters), biasPointer,
                                    nil, 0, low, high, destination, Int32(filters))
        precondition(status == 0, "direct convolution without AVX-512")
        if activation.clampBounds == nil {
            activation.apply(destination, count: pixels * filters, lastAxis: filters)
        }
    }

    /// The direct path: the batch copied into zero-padded images in `scratch`, then one work
    /// item per output row (and filter chunk, for few rows and many filters).
    func forwardDirect(_ inputs: [ActivationView], into output: MutableActivationView, scratch: UnsafeMutablePointer<Float>) {
        let input = inputs[0]
        let (batch, height, width, channels) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
        let (outputHeight, outputWidth) = (output.shape[1], output.shape[2])
        let (rows, columns) = geometry(height: height, width: width)
        let (kh, kw) = kernelSize
        let (paddedHeight, paddedWidth) = directPadded(height: outputHeight, width: outputWidth)
        let paddedImage = paddedHeight * paddedWidth * channels
        let patch = kh * kw * channels, filters = filters, activation = activation
        let packed = packedKernelPointer, biasPointer = self.biasPointer
        let residual = addsResidual ? inputs[1].data : nil
        let (low, high) = activation.clampBounds ?? (-.infinity, .infinity)
        let threads = batch * outputHeight * outputWidth * filters * patch >= 200_000 ? engineThreads : 1
        // The padded copies, in bands of rows when there are fewer images than cores (at batch
        // 1 MobileNetV2's stem copied its 600 KB input on one core while the other waited).
        let bands = threads > 1 && batch < threads && batch * paddedImage >= 65_536 ? threads : 1
        let fill = { (item: Int) in
            let image = item / bands
            fillPadded(input.data + image * height * width * channels, height: height, width: width, channels: channels,
                       top: rows.before, left: columns.before, into: scratch + image * paddedImage,
                       paddedHeight: paddedHeight, paddedWidth: paddedWidth,
                       rows: evenRun(item % bands, of: bands, count: paddedHeight, unit: 1))
        }
        if bands > 1 {
            concurrentPerform(iterations: batch * bands) { item, _ in fill(item) }
        } else {
            parallelChunks(batch, work: threads > 1 ? batch * paddedImage : 0) { images in
                for image in images { fill(image) }
            }
        }
        let panelWidth = Int(TL_GEMM_PANEL), panels = (filters + panelWidth - 1) / panelWidth
        // An image's output pixels in strips of 8 (the micro-kernel's rows; a strip may run on
        // into the next row), about a row's worth of strips per work item.
        let pixels = outputHeight * outputWidth, strips = (pixels + 7) / 8, rowStrips = (outputWidth + 7) / 8
        let itemsPerImage = (strips + rowStrips - 1) / rowStrips
        // Few of them (batch 1, a 7×7 map): the work items are slices of filters, one
        // micro-kernel tile (32) wide, each over every pixel, so each slice of the weights (32 ×
        // patch, 590 KB for ResNet50's conv5) comes into L2 once and every strip reads it there.
        // Items of one row against half the filters re-read that half (4.7 MB) from L3 for every
        // row: conv5's 3×3 layers took 2.4 ms each that way at batch 1, 1.4 this way.
        let slicesFilters = threads > 1 && batch * itemsPerImage < 4 * threads
        let filterChunks = (panels + 1) / 2
        var shape = directShape(paddedWidth: paddedWidth, channels: channels, outputWidth: outputWidth)
        // Pixels `run` of `image`, filters `first..<last`.
        func runPixels(image: Int, _ run: Range<Int>, filters first: Int, _ last: Int) {
            let pixel = image * pixels + run.lowerBound, count = run.count
            let status = tl_conv_direct(scratch + image * paddedImage, &shape, Int32(run.lowerBound), Int32(count), packed + first * patch,
                                        Int32(patch), Int32(last - first), biasPointer.map { $0 + first },
                                        residual.map { UnsafePointer($0 + pixel * filters + first) },
                                        Int32(filters), low, high, output.data + pixel * filters + first, Int32(filters))
            precondition(status == 0, "direct convolution without AVX-512")
            guard activation.clampBounds == nil else { return }
            if first == 0 && last == filters {
                activation.apply(output.data + pixel * filters, count: count * filters, lastAxis: filters)
            } else {
                for p in 0..<count {
                    activation.apply(output.data + (pixel + p) * filters + first, count: last - first, lastAxis: last - first)
                }
            }
        }
        let items = slicesFilters ? filterChunks : batch * itemsPerImage
        let run = { (item: Int, _: Int) in
            if slicesFilters {
                let (first, last) = gemmColumnRun(item, of: filterChunks, columns: filters)
                for image in 0..<batch where first < last { runPixels(image: image, 0..<pixels, filters: first, last) }
            } else {
                let part = evenRun(item % itemsPerImage, of: itemsPerImage, count: pixels, unit: 8)
                runPixels(image: item / itemsPerImage, part, filters: 0, filters)
            }
        }
        if threads == 1 {
            for item in 0..<items { run(item, 0) }
        } else {
            concurrentPerform(iterations: items, run)
        }
    }
}

// MARK: - Winograd

extension Conv2D {
    /// The stride-1 r×r convolution as Winograd F(m×m, r×r), m = `tile`: the output in m×m
    /// tiles, a chunk of tiles per work item — its n×n input windows (n = m + r − 1) transformed
    /// (`tl_winograd_input`), n² GEMMs against the transformed kernel, the results transformed
    /// back with bias, residual and clamp (`tl_winograd_output`); other activations follow per
    /// pixel. Few tiles and many filters split the filters between the cores, as the GEMM path does.
    func forwardWinograd(_ inputs: [ActivationView], into output: MutableActivationView, scratch: UnsafeMutablePointer<Float>, tile tileSize: Int) {
        let input = inputs[0]
        let (batch, height, width, channels) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
        let (outputHeight, outputWidth) = (output.shape[1], output.shape[2])
        let (rows, columns) = geometry(height: height, width: width)
        let positions = winogradPositions(tileSize), size = Int32(kernelSize.0)
        let (tilesY, tilesX) = winogradTiles(tileSize, height: outputHeight, width: outputWidth)
        let tiles = batch * tilesY * tilesX
        let (chunk, filterParts, threads) = winogradTiling(tiles: tiles, channels: channels, tile: tileSize)
        // Chunks of whole 8-tile units, as even as they can be, and few of them in a multiple of
        // the thread count (at most `chunk` tiles each, the scratch's size).
        var chunks = (tiles + chunk - 1) / chunk
        if threads > 1 && filterParts == 1 && chunks < 8 * threads {
            chunks = min((tiles + 7) / 8, (chunks + threads - 1) / threads * threads)
        }
        guard let packed = winogradKernels[tileSize]?.pointer(packingWith: { packWinograd(tile: tileSize, reusing: $0) }) else {
            preconditionFailure("\(name): kernel \(kernel.shape) does not fit \(filters) filters (weights not loaded?)")
        }
        let each = tl_gemm_packed_count(Int32(channels), Int32(filters))
        let amxEach = tl_gemm_amx_packed_count(Int32(channels), Int32(filters))
        let amx = !usesAMX(depth: channels) ? nil : winogradAMXKernels[tileSize]?.halfwordPointer {
            amxSplit(packed, depth: channels, columns: self.filters, matrices: positions, reusing: $0)
        }
        let filters = filters, activation = activation
        let (low, high) = activation.clampBounds ?? (-.infinity, .infinity)
        let activationPass = activation.clampBounds == nil
        let biasPointer = self.biasPointer
        let residual = addsResidual ? inputs[1].data : nil
        let perThread = winogradScratch(chunk: chunk, tile: tileSize, channels: channels)

        let run = { (item: Int, thread: Int) in
            let block = item / filterParts, part = item % filterParts
            let (first, last) = gemmColumnRun(part, of: filterParts, columns: filters)
            guard first < last else { return }
            let run = evenRun(block, of: chunks, count: tiles, unit: 8)
            let firstTile = run.lowerBound, count = run.count
            let (vStride, mStride) = (tl_winograd_stride(Int32(count), Int32(channels)), tl_winograd_stride(Int32(count), Int32(filters)))
            let v = scratch + thread * perThread, m = v + positions * vStride
            tl_winograd_input(Int32(tileSize), size, input.data, Int32(height), Int32(width), Int32(channels), Int32(tilesY), Int32(tilesX),
                              Int32(rows.before), Int32(columns.before), Int32(firstTile), Int32(count), v)
            for xi in 0..<positions {
                GEMMWeights(packed: packed + xi * each, amx: amx.map { $0 + xi * amxEach }, depth: channels)
                    .multiply(rows: count, v + xi * vStride, lda: channels, columns: first, last, bias: nil, residual: nil,
                              ldr: 0, low: -.infinity, high: .infinity, into: m + xi * mStride + first, ldc: filters)
            }
            tl_winograd_output(Int32(tileSize), size, m, Int32(firstTile), Int32(count), Int32(tilesY), Int32(tilesX), Int32(outputHeight), Int32(outputWidth),
                               Int32(filters), Int32(first), Int32(last - first), biasPointer, residual.map { UnsafePointer($0) },
                               low, high, output.data)
            guard activationPass else { return }
            for tile in firstTile..<firstTile + count {
                let image = tile / (tilesY * tilesX), ty = (tile / tilesX) % tilesY, tx = tile % tilesX
                for y in tileSize * ty..<min(tileSize * (ty + 1), outputHeight) {
                    for x in tileSize * tx..<min(tileSize * (tx + 1), outputWidth) {
                        let pixel = output.data + ((image * outputHeight + y) * outputWidth + x) * filters + first
                        activation.apply(pixel, count: last - first, lastAxis: last - first)
                    }
                }
            }
        }
        if threads == 1 {
            for item in 0..<chunks * filterParts { run(item, 0) }
        } else {
            concurrentPerform(iterations: chunks * filterParts, run)
        }
    }
}

/// Copies one NHWC image (`height × width × channels`) into `padded` (`paddedHeight ×
/// paddedWidth × channels`) `top` rows and `left` columns in; cells outside the copy keep their
/// value (zeroed once by the caller), rows and columns that fall outside are left out.
package func copyPadded(_ image: UnsafePointer<Float>, height: Int, width: Int, channels: Int, top: Int, left: Int,
                        into padded: UnsafeMutablePointer<Float>, paddedHeight: Int, paddedWidth: Int) {
    let firstColumn = max(0, -left), lastColumn = min(width, paddedWidth - left)
    guard firstColumn < lastColumn else { return }
    for y in 0..<height where y + top >= 0 && y + top < paddedHeight {
        (padded + ((y + top) * paddedWidth + firstColumn + left) * channels)
            .update(from: image + (y * width + firstColumn) * channels, count: (lastColumn - firstColumn) * channels)
    }
}

/// Writes rows `rows` of `padded` (`paddedHeight × paddedWidth × channels`): one NHWC image
/// (`height × width × channels`) placed `top` rows and `left` columns in, zeros around it. Only
/// the zeros are written beside the copy, so each cell is written once.
package func fillPadded(_ image: UnsafePointer<Float>, height: Int, width: Int, channels: Int, top: Int, left: Int,
                        into padded: UnsafeMutablePointer<Float>, paddedHeight: Int, paddedWidth: Int, rows: Range<Int>) {
    let firstColumn = max(0, -left), lastColumn = min(width, paddedWidth - left)
    // The copied columns of a padded row: [start, end) in padded columns (empty when none).
    let start = min(paddedWidth, max(0, firstColumn + left)), end = max(start, min(paddedWidth, lastColumn + left))
    for row in rows {
        let destination = padded + row * paddedWidth * channels
        let y = row - top
        guard y >= 0 && y < height && start < end else {
            destination.update(repeating: 0, count: paddedWidth * channels)
            continue
        }
        destination.update(repeating: 0, count: start * channels)
        (destination + start * channels).update(from: image + (y * width + firstColumn) * channels, count: (end - start) * channels)
        (destination + end * channels).update(repeating: 0, count: (paddedWidth - end) * channels)
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
