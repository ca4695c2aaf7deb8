import Foundation
import TLEngine
import TLImaging
import TLTensor

/// Runs a model over many inputs batch by batch: images are decoded a batch ahead on another
/// thread (``ImageBatches``), so memory does not grow with the number of images; a `.npy` input
/// is sliced. Every unreadable image is collected, not just the first.
public struct BatchInference {
    /// What the model reads.
    public enum Inputs {
        /// Image files and folders (see ``ImageInputs/files(from:)``).
        case images([String])
        /// A preprocessed NHWC `.npy` batch.
        case array(URL)
    }

    public var inputs: Inputs
    /// Inputs per forward pass.
    public var batchSize: Int
    /// `S` or `HxW`; nil for the model's published size (``LoadedModel/imageSize(requested:)``).
    public var size: String?
    /// The resize filter (Keras `load_img`'s default: nearest).
    public var interpolation: Interpolation
    /// The preprocessing name; nil for the model's own.
    public var preprocess: String?
    /// Leave unreadable images out instead of failing after listing them.
    public var skipsUnreadable: Bool
    /// Run only this shard's contiguous range of the inputs (a cluster array task).
    public var shard: Shard?

    public init(inputs: Inputs, batchSize: Int = 32, size: String? = nil, interpolation: Interpolation = .nearest,
                preprocess: String? = nil, skipsUnreadable: Bool = false) {
        self.inputs = inputs
        self.batchSize = batchSize
        self.size = size
        self.interpolation = interpolation
        self.preprocess = preprocess
        self.skipsUnreadable = skipsUnreadable
    }

    /// What a run produced.
    public struct Result {
        /// One row per input that was read, stacked.
        public var output: Tensor
        /// The image of each row (empty for a `.npy` input).
        public var files: [URL]
        /// Unreadable images left out (only with ``skipsUnreadable``), with the reason.
        public var skipped: [(file: URL, reason: String)]
        /// The image size used and where it came from (`96x96 (the hub entry)`); nil for `.npy`.
        public var sizeNote: String?
        /// Wall time of the whole run.
        public var seconds: Double
        /// Inputs of the whole (unsharded) run, and the range this run covered.
        public var inputCount = 0
        public var range = 0..<0
    }

    /// Progress after each batch: inputs done (read or not), total, unreadable so far.
    public typealias Progress = (_ done: Int, _ total: Int, _ unreadable: Int) -> Void

    /// Runs `body` (e.g. `model.features`) on every batch and stacks the results.
    /// - Throws: ``PipelineError`` listing every unreadable image (unless skipped), or what
    ///   reading inputs or `body` throws.
    public func run(_ loaded: LoadedModel, note: ((String) -> Void)? = nil, progress: Progress? = nil,
                    _ body: (Tensor) throws -> Tensor) throws -> Result {
        let clock = ContinuousClock()
        let started = clock.now
        var stacked = Stacked()
        // A run of one input never repays the AMX check's second pass.
        let checksAMX = loaded.model.checksAMX
        defer { loaded.model.checksAMX = checksAMX }
        switch inputs {
        case .array(let url):
            let batch = try ImageInputs.readBatch(url, note: note)
            let total = batch.shape[0], perImage = batch.count / max(total, 1)
            let range = shard?.range(of: total) ?? 0..<total
            let count = range.count
            if count == 1 { loaded.model.checksAMX = false }
            var start = range.lowerBound
            while start < range.upperBound {
                let end = min(start + batchSize, range.upperBound)
                let slice = Tensor(shape: [end - start] + batch.shape.dropFirst(),
                                   scalars: Array(batch.scalars[(start * perImage)..<(end * perImage)]))
                try stacked.append(try body(slice))
                start = end
                progress?(end - range.lowerBound, count, 0)
            }
            var result = Result(output: stacked.tensor(rows: count), files: [], skipped: [], sizeNote: nil,
                                seconds: Self.seconds(clock.now - started))
            result.inputCount = total
            result.range = range
            return result
        case .images(let paths):
            let allFiles = try ImageInputs.files(from: paths)
            let range = shard?.range(of: allFiles.count) ?? 0..<allFiles.count
            let files = Array(allFiles[range])
            if files.count == 1 { loaded.model.checksAMX = false }
            let (size, source) = try loaded.imageSize(requested: self.size)
            let batches = ImageBatches(files: files, batchSize: batchSize, loader: ImageLoader(size: size, interpolation: interpolation),
                                       preprocessing: try loaded.preprocessing(requested: preprocess))
            var rows: [URL] = []
            var failures: [(file: URL, reason: String)] = []
            while let batch = batches.next() {
                failures += batch.failures.map { ($0.file, Self.reason($0.error)) }
                if !batch.files.isEmpty {
                    try stacked.append(try body(batch.tensor))
                    rows += batch.files
                }
                progress?(rows.count + failures.count, files.count, failures.count)
            }
            if !failures.isEmpty && !skipsUnreadable || (rows.isEmpty && !files.isEmpty) {
                let shown = failures.prefix(10).map { "\($0.file.path) (\($0.reason))" }.joined(separator: "; ")
                let more = failures.count > 10 ? "; and \(failures.count - 10) more" : ""
                let advice = rows.isEmpty ? "" : " (pass --skip-bad to leave them out)"
                throw PipelineError("\(failures.count) of \(files.count) images cannot be read\(advice): \(shown)\(more)")
            }
            var result = Result(output: stacked.tensor(rows: rows.count), files: rows, skipped: failures,
                                sizeNote: "\(size.height)x\(size.width) (\(source))", seconds: Self.seconds(clock.now - started))
            result.inputCount = allFiles.count
            result.range = range
            return result
        }
    }

    private static func reason(_ error: any Error) -> String {
        if let problem = error as? any FileProblem { return problem.problem }
        return (error as? LocalizedError)?.errorDescription ?? "\(error)"
    }

    private static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    /// Output rows appended batch by batch.
    private struct Stacked {
        var scalars: [Float] = []
        var rowShape: [Int]?

        mutating func append(_ tensor: Tensor) throws {
            let shape = Array(tensor.shape.dropFirst())
            if let rowShape, rowShape != shape {
                throw PipelineError("the model's output changed shape between batches (\(rowShape) then \(shape))")
            }
            rowShape = shape
            scalars.append(contentsOf: tensor.scalars)
        }

        func tensor(rows: Int) -> Tensor { Tensor(shape: [rows] + (rowShape ?? [0]), scalars: scalars) }
    }
}
