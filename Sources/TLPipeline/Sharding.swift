import Foundation
import TLTensor

/// One task's share of a run split over a cluster job array: shard `index` of `count` takes the
/// contiguous, balanced range `index·n/count ..< (index+1)·n/count` of the inputs, listed exactly
/// as a single-machine run lists them, so merging the parts in order is a concatenation.
public struct Shard: Sendable, Equatable, CustomStringConvertible {
    public var index: Int
    public var count: Int

    public init(index: Int, count: Int) throws {
        guard count > 0, index >= 0, index < count else {
            throw PipelineError("--shard", "shard \(index) of \(count) does not exist (K/N needs 0 ≤ K < N)")
        }
        self.index = index
        self.count = count
    }

    /// `K/N`, `auto/N` (shard = `SLURM_ARRAY_TASK_ID` or a Kubernetes indexed Job's
    /// `JOB_COMPLETION_INDEX`, of N; robust to resubmitting single tasks), or `auto`: Slurm's
    /// `SLURM_ARRAY_TASK_ID` with `SLURM_ARRAY_TASK_COUNT` (or `SLURM_ARRAY_TASK_MIN`/`MAX`); N
    /// may also come from `TLHUB_SHARD_COUNT`.
    /// - Throws: ``PipelineError`` naming what is missing.
    public static func parse(_ text: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Shard {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        if parts[0] == "auto" {
            guard parts.count <= 2 else { throw PipelineError("--shard", "expected auto or auto/N, got '\(text)'") }
            let given = parts.count == 2 ? Int(parts[1]) : environment["TLHUB_SHARD_COUNT"].flatMap(Int.init)
            if parts.count == 2 && given == nil { throw PipelineError("--shard", "expected auto/N with a number, got '\(text)'") }
            let task = environment["SLURM_ARRAY_TASK_ID"].flatMap(Int.init) ?? environment["JOB_COMPLETION_INDEX"].flatMap(Int.init)
            guard let task else {
                throw PipelineError("--shard auto", "not in a Slurm job array (SLURM_ARRAY_TASK_ID) nor a Kubernetes indexed Job (JOB_COMPLETION_INDEX); give --shard K/N")
            }
            // With the total given, the task id is the shard: resubmitting one task
            // (`sbatch --array=2`) keeps its share, although Slurm then says COUNT=1.
            if let given { return try Shard(index: task, count: given) }
            if environment["SLURM_ARRAY_TASK_ID"] != nil {
                if let count = environment["SLURM_ARRAY_TASK_COUNT"].flatMap(Int.init) {
                    let minimum = environment["SLURM_ARRAY_TASK_MIN"].flatMap(Int.init) ?? 0
                    return try Shard(index: task - minimum, count: count)
                }
                if let minimum = environment["SLURM_ARRAY_TASK_MIN"].flatMap(Int.init),
                   let maximum = environment["SLURM_ARRAY_TASK_MAX"].flatMap(Int.init) {
                    return try Shard(index: task - minimum, count: maximum - minimum + 1)
                }
                throw PipelineError("--shard auto", "SLURM_ARRAY_TASK_ID is set but neither SLURM_ARRAY_TASK_COUNT nor SLURM_ARRAY_TASK_MIN/MAX")
            }
            throw PipelineError("--shard auto", "JOB_COMPLETION_INDEX is set: give the job's completions as --shard auto/N or TLHUB_SHARD_COUNT")
        }
        guard parts.count == 2, let index = Int(parts[0]), let count = Int(parts[1]) else {
            throw PipelineError("--shard", "expected K/N or auto, got '\(text)'")
        }
        return try Shard(index: index, count: count)
    }

    /// This shard's inputs among `total`.
    public func range(of total: Int) -> Range<Int> { (index * total / count)..<((index + 1) * total / count) }

    /// `part-K-of-N`.
    public var partName: String { "part-\(index)-of-\(count)" }
    public var description: String { "\(index)/\(count)" }
}

/// What a shard's `part-K-of-N.json` records, so `merge` can check the parts belong together.
public struct ShardRecord: Codable, Sendable, Equatable {
    public var shard: Int
    public var shards: Int
    /// SHA-256 of the model's weights.
    public var modelSHA256: String
    /// The command and every setting that changes the numbers (pooling, size, preprocessing…).
    public var settings: String
    /// Inputs of the whole run, and this shard's range of them.
    public var inputCount: Int
    public var start: Int
    public var end: Int
    /// Rows written (fewer than `end - start` when unreadable images were skipped).
    public var rows: Int
    /// Per-row output shape.
    public var rowShape: [Int]

    public init(shard: Int, shards: Int, modelSHA256: String, settings: String, inputCount: Int, start: Int, end: Int,
                rows: Int, rowShape: [Int]) {
        self.shard = shard
        self.shards = shards
        self.modelSHA256 = modelSHA256
        self.settings = settings
        self.inputCount = inputCount
        self.start = start
        self.end = end
        self.rows = rows
        self.rowShape = rowShape
    }

    enum CodingKeys: String, CodingKey {
        case shard, shards, settings, start, end, rows
        case modelSHA256 = "model_sha256", inputCount = "input_count", rowShape = "row_shape"
    }
}

/// The per-shard files in a run's output folder, and their merge.
public enum ShardedOutput {
    /// Whether `folder` already holds this shard's finished part for the same model and settings.
    public static func isComplete(_ folder: URL, shard: Shard, modelSHA256: String, settings: String) -> Bool {
        guard let record = try? JSONDecoder().decode(ShardRecord.self, from: Data(contentsOf: folder.appendingPathComponent("\(shard.partName).json"))) else {
            return false
        }
        return record.modelSHA256 == modelSHA256 && record.settings == settings
            && FileManager.default.fileExists(atPath: folder.appendingPathComponent("\(shard.partName).npy").path)
    }

    /// Writes the part's `.npy`, `.files.txt` and, last, `.json`, each atomically: a task killed
    /// before the JSON leaves a part that `merge` and `isComplete` do not count.
    public static func write(_ output: Tensor, files: [URL], record: ShardRecord, to folder: URL) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let name = "part-\(record.shard)-of-\(record.shards)"
        let listing = Data(files.map { $0.path + "\n" }.joined().utf8)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try AtomicFile.write([(folder.appendingPathComponent("\(name).npy"), NumPy.encode(output)),
                              (folder.appendingPathComponent("\(name).files.txt"), listing),
                              (folder.appendingPathComponent("\(name).json"), try encoder.encode(record))])
    }

    /// Merges every part in `folder` into `output` (`.npy` or `.csv`) and its files list, in
    /// shard order, one part in memory at a time.
    /// - Throws: ``PipelineError`` naming missing or inconsistent parts.
    /// - Returns: the rows written and the number of parts.
    @discardableResult
    public static func merge(_ folder: URL, into output: URL) throws -> (rows: Int, parts: Int) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        let records = try names.filter { $0.hasPrefix("part-") && $0.hasSuffix(".json") }.map { name -> ShardRecord in
            do { return try JSONDecoder().decode(ShardRecord.self, from: Data(contentsOf: folder.appendingPathComponent(name))) } catch {
                throw PipelineError(folder.appendingPathComponent(name).path, "not a readable shard record")
            }
        }.sorted { $0.shard < $1.shard }
        guard let first = records.first else { throw PipelineError(folder.path, "no finished parts (part-K-of-N.json)") }
        let rowShape = records.first { $0.rows > 0 }?.rowShape ?? first.rowShape
        for record in records where record.shards != first.shards || record.modelSHA256 != first.modelSHA256
            || record.settings != first.settings || record.inputCount != first.inputCount || (record.rows > 0 && record.rowShape != rowShape) {
            throw PipelineError(folder.appendingPathComponent("part-\(record.shard)-of-\(record.shards).json").path,
                                "belongs to another run than part-\(first.shard)-of-\(first.shards) (model, settings, inputs or shard count differ)")
        }
        let present = Set(records.map(\.shard))
        let missing = (0..<first.shards).filter { !present.contains($0) }
        guard missing.isEmpty else {
            throw PipelineError(folder.path, "missing \(missing.count) of \(first.shards) parts: \(missing.prefix(20).map { "part-\($0)-of-\(first.shards)" }.joined(separator: ", ")) — rerun those tasks")
        }
        var expectedStart = 0
        for record in records {
            guard record.start == expectedStart else {
                throw PipelineError(folder.path, "parts do not cover the inputs exactly once (part \(record.shard) starts at \(record.start), expected \(expectedStart))")
            }
            expectedStart = record.end
        }
        guard expectedStart == first.inputCount else {
            throw PipelineError(folder.path, "parts cover \(expectedStart) of \(first.inputCount) inputs")
        }
        let rows = records.reduce(0) { $0 + $1.rows }
        let isCSV = output.pathExtension.lowercased() == "csv"
        let width = rowShape.reduce(1, *)
        let list = OutputFiles.rowList(for: output)
        var listing = Data()
        try AtomicFile.write(to: output) { handle, _ in
            if !isCSV { try handle.write(contentsOf: NumPy.header(shape: [rows] + rowShape)) }
            for record in records where record.rows > 0 {
                let name = "part-\(record.shard)-of-\(record.shards)"
                let part = try NumPy.read(contentsOf: folder.appendingPathComponent("\(name).npy"))
                guard part.count == record.rows * width else {
                    throw PipelineError(folder.appendingPathComponent("\(name).npy").path, "holds \(part.count) values, its record says \(record.rows) rows of \(width)")
                }
                if isCSV {
                    var text = ""
                    for row in 0..<record.rows {
                        text += part.scalars[(row * width)..<((row + 1) * width)].map { "\($0)" }.joined(separator: ",") + "\n"
                    }
                    try handle.write(contentsOf: Data(text.utf8))
                } else {
                    try part.scalars.withUnsafeBytes { try handle.write(contentsOf: Data($0)) }
                }
                listing.append(try Data(contentsOf: folder.appendingPathComponent("\(name).files.txt")))
            }
        }
        try AtomicFile.write([(list, listing)])
        return (rows, records.count)
    }
}
