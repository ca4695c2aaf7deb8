import Crypto
import Foundation
import TLEngine
import TLFormats
import TLImaging
import TLTensor

/// The base's features of each image, kept on disk so every epoch and every later run with
/// another head or learning rate does no base work.
///
/// Entries live in `<cache>/features/<key>/<image SHA-256>.f32` (raw little-endian float32),
/// where `key` hashes the base weights' SHA-256, input size, interpolation, preprocessing and
/// pooling; each is written atomically, so an interrupted run keeps what it finished.
public struct FeatureCache {
    /// This key's folder.
    public let directory: URL

    /// The cache for one base and input pipeline.
    public init(cacheDirectory: URL, baseSHA256: String, settings: String) {
        let key = Self.digest(baseSHA256 + "|" + settings)
        directory = cacheDirectory.appendingPathComponent("features").appendingPathComponent(String(key.prefix(24)))
    }

    static func digest(_ text: String) -> String {
        SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// What `features(…)` did.
    public struct Statistics: Sendable {
        public var hits = 0, computed = 0, unreadable: [(file: URL, reason: String)] = []

        /// Adds another pass's counts.
        mutating func add(_ other: Statistics) {
            hits += other.hits
            computed += other.computed
            unreadable += other.unreadable
        }

        /// One note per skipped image, then their count.
        func reportUnreadable(_ note: ((String) -> Void)?) {
            for item in unreadable { note?("skipped \(item.file.path): \(item.reason)") }
            if !unreadable.isEmpty { note?("\(unreadable.count) unreadable images skipped") }
        }
    }

    /// The features of `files` in order (`[count] + shape`), computing only those not cached.
    /// Unreadable images are left out and reported (their rows are missing: see `kept`).
    /// - Parameters:
    ///   - compute: the base forward pass on a preprocessed batch.
    ///   - progress: (files done, total).
    public func features(of files: [URL], loader: ImageLoader, preprocessing: Preprocessing, batchSize: Int,
                         progress: ((Int, Int) -> Void)? = nil,
                         compute: (Tensor) throws -> Tensor) throws -> (features: Tensor, kept: [Int], statistics: Statistics) {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var statistics = Statistics()
        let hashes = try files.map { try SafeTensorsConversion.sha256(of: $0) }
        let entries = hashes.map { directory.appendingPathComponent("\($0).f32") }
        var missing = files.indices.filter { !FileManager.default.fileExists(atPath: entries[$0].path) }
        statistics.hits = files.count - missing.count
        var rowShape = try? readShape()
        if !missing.isEmpty {
            let batches = ImageBatches(files: missing.map { files[$0] }, batchSize: batchSize, loader: loader, preprocessing: preprocessing)
            var position = 0
            var failed = Set<URL>()
            let indexOf = Dictionary(missing.map { (files[$0], $0) }, uniquingKeysWith: { first, _ in first })
            while let batch = batches.next() {
                for failure in batch.failures {
                    statistics.unreadable.append((failure.file, (failure.error as? any FileProblem)?.problem ?? "\(failure.error)"))
                    failed.insert(failure.file)
                }
                if !batch.files.isEmpty {
                    let output = try compute(batch.tensor)
                    let shape = Array(output.shape.dropFirst())
                    if rowShape == nil { rowShape = shape; try writeShape(shape) }
                    let width = output.count / batch.files.count
                    for (row, file) in batch.files.enumerated() {
                        guard let index = indexOf[file] else { continue }
                        let values = Array(output.scalars[(row * width)..<((row + 1) * width)])
                        try AtomicFile.write([(entries[index], values.withUnsafeBytes { Data($0) })])
                        statistics.computed += 1
                    }
                }
                position += batch.files.count + batch.failures.count
                progress?(statistics.hits + position, files.count)
            }
            missing = missing.filter { failed.contains(files[$0]) }
        }
        guard let rowShape else { throw PipelineError(directory.path, "no image could be read") }
        let kept = files.indices.filter { !missing.contains($0) }
        let width = rowShape.reduce(1, *)
        var scalars = [Float]()
        scalars.reserveCapacity(kept.count * width)
        for index in kept {
            let data = try Data(contentsOf: entries[index])
            guard data.count == width * 4 else {
                throw PipelineError(entries[index].path, "cached features hold \(data.count) bytes, expected \(width * 4) (remove the folder)")
            }
            data.withUnsafeBytes { scalars.append(contentsOf: $0.bindMemory(to: Float.self)) }
        }
        return (Tensor(shape: [kept.count] + rowShape, scalars: scalars), kept, statistics)
    }

    /// Every feature cache under `cacheDirectory`: folder, entries, bytes.
    public static func list(cacheDirectory: URL) -> [(folder: URL, entries: Int, bytes: Int64)] {
        let root = cacheDirectory.appendingPathComponent("features")
        let manager = FileManager.default
        let keys = ((try? manager.contentsOfDirectory(atPath: root.path)) ?? []).sorted()
        return keys.compactMap { key in
            let folder = root.appendingPathComponent(key)
            guard let names = try? manager.contentsOfDirectory(atPath: folder.path) else { return nil }
            let entries = names.filter { $0.hasSuffix(".f32") }
            let bytes = names.reduce(Int64(0)) { total, name in
                total + ((try? manager.attributesOfItem(atPath: folder.appendingPathComponent(name).path)[.size] as? Int64) ?? 0)
            }
            return (folder, entries.count, bytes)
        }
    }

    /// Removes every feature cache under `cacheDirectory`; returns the bytes freed.
    @discardableResult
    public static func removeAll(cacheDirectory: URL) throws -> Int64 {
        let caches = list(cacheDirectory: cacheDirectory)
        for cache in caches { try FileManager.default.removeItem(at: cache.folder) }
        return caches.reduce(0) { $0 + $1.bytes }
    }

    private var shapeFile: URL { directory.appendingPathComponent("shape.json") }
    private func readShape() throws -> [Int] { try JSONDecoder().decode([Int].self, from: Data(contentsOf: shapeFile)) }
    private func writeShape(_ shape: [Int]) throws { try AtomicFile.write([(shapeFile, try JSONEncoder().encode(shape))]) }
}
