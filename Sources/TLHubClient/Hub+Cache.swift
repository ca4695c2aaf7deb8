import Foundation
import TLTensor

/// A file in the cache.
public struct CachedEntry: Sendable {
    /// `<cache>/<source>/<file>`.
    public var file: URL
    /// The source directory it sits in.
    public var source: String
    /// Bytes on disk.
    public var size: Int64
    /// The metadata JSON, when present.
    public var record: CacheRecord?

    /// The artifact name from the record, else the file name.
    public var name: String { record?.name ?? "\(source):\(file.lastPathComponent)" }
}

/// What `prune` removed.
public struct PruneResult: Sendable {
    /// Removed files (partial downloads, orphaned metadata, unused lock files).
    public var removed: [URL]
    /// Bytes freed.
    public var freedBytes: Int64
}

extension Hub {
    /// Every complete file in the cache, sorted by source and name.
    public func cachedEntries() -> [CachedEntry] {
        var entries: [CachedEntry] = []
        let fileManager = FileManager.default
        let sources = (try? fileManager.contentsOfDirectory(atPath: cacheDirectory.path)) ?? []
        // `features/` (finetune's cached base features) and `hashes/` (remembered SHA-256 of local
        // weight files) are tlhub's own, not pulled files.
        for source in sources.sorted() where source != "features" && source != "hashes" {
            let directory = cacheDirectory.appendingPathComponent(source, isDirectory: true)
            var isDirectory: ObjCBool = false
            guard fileManager.fileExists(atPath: directory.path, isDirectory: &isDirectory), isDirectory.boolValue else { continue }
            let names = (try? fileManager.contentsOfDirectory(atPath: directory.path)) ?? []
            for name in names.sorted() where !Self.isSidecar(name) {
                let file = directory.appendingPathComponent(name)
                var isFolder: ObjCBool = false
                // Directories are unpacked archives, listed with their archive.
                if fileManager.fileExists(atPath: file.path, isDirectory: &isFolder), isFolder.boolValue { continue }
                let size = (try? fileManager.attributesOfItem(atPath: file.path)[.size] as? Int64) ?? 0
                let record = Self.readJSON(CacheRecord.self, at: directory.appendingPathComponent(name + ".tlhub.json"))
                entries.append(CachedEntry(file: file, source: source, size: size, record: record))
            }
        }
        return entries
    }

    /// Where an archive is unpacked: beside it, without `.tar.gz`.
    static func extractedDirectory(for archive: URL) -> URL {
        let name = archive.lastPathComponent
        let stem = name.hasSuffix(".tar.gz") ? String(name.dropLast(7)) : name + ".d"
        return archive.deletingLastPathComponent().appendingPathComponent(stem, isDirectory: true)
    }

    /// Pulls an artifact and, for a TF Hub SavedModel archive, unpacks it (once, safely, under the
    /// artifact's lock) and returns the SavedModel directory; other files are returned as is.
    /// - Throws: ``HubError`` from the pull, ``ArchiveError`` for a refused archive.
    public func pullUnpacked(_ reference: String, sha256: String? = nil,
                             progress: (@Sendable (PullProgress) -> Void)? = nil) async throws -> URL {
        let resolved = try resolve(reference, sha256: sha256)
        let archive = try await pull(resolved, progress: progress)
        guard archive.lastPathComponent.hasSuffix(".tar.gz") else { return archive }
        let directory = Self.extractedDirectory(for: archive)
        if FileManager.default.fileExists(atPath: directory.path) { return directory }
        let lock = try await FileLock.acquire(path: resolved.paths.lock.path)
        defer { lock.unlock() }
        if !FileManager.default.fileExists(atPath: directory.path) {
            try TarExtractor.extractTarGz(archive, into: directory)
        }
        return directory
    }

    /// Files that belong to an artifact rather than being one.
    /// The SHA-256 recorded for a cached file, which every `pull` has just checked against the
    /// file's bytes (so callers need not hash it again); nil when there is no record.
    public func recordedSHA256(of file: URL) -> String? {
        Self.readJSON(CacheRecord.self, at: file.deletingLastPathComponent()
            .appendingPathComponent(file.lastPathComponent + ".tlhub.json"))?.sha256
    }

    static func isSidecar(_ name: String) -> Bool {
        name.hasPrefix(".") || name.hasSuffix(".tlhub.json") || name.hasSuffix(".lock") || name.contains(".lock.claim")
            || name.hasSuffix(".incomplete") || name.hasSuffix(".incomplete.json")
    }

    /// Re-hashes one cached file against its metadata (size, SHA-256, published hash).
    /// - Throws: ``HubError/corruptCacheEntry(path:problem:)``.
    public func verify(_ entry: CachedEntry) throws {
        guard let record = entry.record else {
            throw HubError.corruptCacheEntry(path: entry.file.path, problem: "no metadata (\(entry.file.lastPathComponent).tlhub.json)")
        }
        let (digest, size) = try StreamingDigest.hashFile(at: entry.file.path, includeMD5: record.publishedHash?.algorithm == .md5)
        let hashes = digest.finalize()
        try Self.check(path: entry.file.path, sha256: hashes.sha256, md5: hashes.md5, size: size,
                       record: record, published: record.publishedHash, required: nil)
    }

    /// Removes the cached files that a name refers to: a manifest name, a qualified name as
    /// `cache ls` prints it, or a file name in the cache.
    /// - Returns: the removed files (empty when nothing matched).
    @discardableResult
    public func remove(_ reference: String) throws -> [URL] {
        var targets = cachedEntries().filter {
            $0.name == reference || $0.file.lastPathComponent == reference
        }.map(\.file)
        if targets.isEmpty, let resolved = try? resolve(reference),
           FileManager.default.fileExists(atPath: resolved.paths.file.path) {
            targets = [resolved.paths.file]
        }
        var removed: [URL] = []
        for file in targets {
            let paths = CachePaths(directory: file.deletingLastPathComponent(), file: file)
            let lock = try FileLock.tryAcquire(path: paths.lock.path)
            guard lock != nil else {
                throw HubError.fileSystem(path: file.path, problem: "being downloaded by another process; try again later")
            }
            for url in [paths.file, paths.record, Self.extractedDirectory(for: paths.file)]
            where FileManager.default.fileExists(atPath: url.path) {
                do { try FileManager.default.removeItem(at: url) } catch {
                    throw HubError.fileSystem(path: url.path, problem: "cannot remove: \(error.localizedDescription)")
                }
                removed.append(url)
            }
            Self.removeStalePartials(paths)
            try? FileManager.default.removeItem(at: paths.partialRecord)
        }
        return removed
    }

    /// Removes partial downloads, metadata without a file, and lock files, skipping every
    /// artifact whose lock is held (a download in progress).
    public func prune() -> PruneResult {
        var result = PruneResult(removed: [], freedBytes: 0)
        let fileManager = FileManager.default
        let sources = (try? fileManager.contentsOfDirectory(atPath: cacheDirectory.path)) ?? []
        for source in sources {
            let directory = cacheDirectory.appendingPathComponent(source, isDirectory: true)
            guard let names = try? fileManager.contentsOfDirectory(atPath: directory.path) else { continue }
            // Temporaries of atomic writes whose process was killed (metadata, unpacked files).
            for url in AtomicFile.removeStaleTemporaries(in: directory) { result.removed.append(url) }
            let files = Set(names.filter { !Self.isSidecar($0) })
            // Every artifact base name that has some sidecar.
            var bases = Set<String>()
            for name in names where Self.isSidecar(name) && !name.hasPrefix(".") {
                if name.hasSuffix(".lock") { bases.insert(String(name.dropLast(5))) }
                if name.hasSuffix(".tlhub.json") { bases.insert(String(name.dropLast(11))) }
                if name.hasSuffix(".incomplete.json") { bases.insert(String(name.dropLast(16))) }
                if name.hasSuffix(".incomplete"), let cut = name.dropLast(11).lastIndex(of: ".") {
                    bases.insert(String(name[..<cut]))
                }
            }
            for base in bases.sorted() {
                let paths = CachePaths(directory: directory, file: directory.appendingPathComponent(base))
                guard let lock = try? FileLock.tryAcquire(path: paths.lock.path) else { continue }
                var doomed = names.filter { $0.hasPrefix(base + ".") && $0.hasSuffix(".incomplete") }
                doomed.append(base + ".incomplete.json")
                if !files.contains(base) { doomed.append(base + ".tlhub.json") }
                for name in doomed {
                    let url = directory.appendingPathComponent(name)
                    guard let size = try? fileManager.attributesOfItem(atPath: url.path)[.size] as? Int64 else { continue }
                    if (try? fileManager.removeItem(at: url)) != nil {
                        result.removed.append(url)
                        result.freedBytes += size
                    }
                }
                // Unlinking the lock while holding it is safe: FileLock re-checks the inode.
                try? fileManager.removeItem(at: paths.lock)
                lock.unlock()
            }
        }
        return result
    }
}
