import Crypto
import Foundation
import Synchronization
import TLTensor

/// An artifact resolved to the URL it will be fetched from and its place in the cache.
public struct ResolvedArtifact: Sendable {
    /// The manifest entry (or a synthesised one for a raw URL).
    public var artifact: Artifact
    /// Where the bytes come from, after applying the mirror.
    public var location: URL
    /// Where it lives in the cache.
    public var paths: CachePaths
    /// A SHA-256 the caller requires (`tlhub pull URL --sha256 HEX`), on top of the published hash.
    public var requiredSHA256: String?
}

/// Resolves names against the manifests and pulls artifacts into the cache.
///
/// Guarantees: a file under its final name in the cache is always complete and verified (bytes
/// go to `<file>.<random>.incomplete`, are hashed while streaming, fsynced and renamed); N
/// processes pulling the same artifact download it once (a `flock` per artifact); an interrupted
/// download is resumed by the next pull; offline mode never touches the network (`file://`
/// sources are still read).
public final class Hub: Sendable {
    /// The cache root.
    public let cacheDirectory: URL
    /// Known artifacts: the manifests are read on first use, so loading a local weight file
    /// never parses them (the bundled ones alone took 20 ms of `tlhub features`' start-up).
    /// - Throws: ``HubError/invalidManifest(path:problem:)`` for a bad manifest.
    public var registry: Registry {
        get throws {
            try parsedRegistry.withLock { parsed in
                if let parsed { return parsed }
                let registry = try Registry(manifestDirectories: manifestDirectories)
                parsed = registry
                return registry
            }
        }
    }
    private let manifestDirectories: [URL]
    private let parsedRegistry = Mutex<Registry?>(nil)
    /// Replaces the scheme, host and port of published URLs (paths kept), when set.
    public let mirror: URL?
    /// Never touch the network.
    public let offline: Bool
    /// Time limits and retries.
    public let policy: DownloadPolicy

    /// Creates a hub. Unset arguments come from the environment: `TLHUB_CACHE` (see
    /// ``CacheDirectory``), `TLHUB_MANIFESTS` (colon-separated directories), `TLHUB_ENDPOINT`
    /// (mirror), `TLHUB_OFFLINE=1`.
    /// Manifests are read when a name is first resolved (``registry``).
    public init(cacheDirectory: URL? = nil, manifestDirectories: [URL] = [], mirror: URL? = nil,
                offline: Bool? = nil, policy: DownloadPolicy? = nil,
                environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        self.cacheDirectory = CacheDirectory.resolve(explicit: cacheDirectory, environment: environment).directory
        let fromEnvironment = (environment["TLHUB_MANIFESTS"] ?? "").split(separator: ":").map {
            URL(fileURLWithPath: String($0), isDirectory: true)
        }
        self.manifestDirectories = fromEnvironment + manifestDirectories
        self.mirror = mirror ?? environment["TLHUB_ENDPOINT"].flatMap { $0.isEmpty ? nil : URL(string: $0) }
        let offlineValue = environment["TLHUB_OFFLINE"]?.lowercased()
        self.offline = offline ?? ["1", "true", "yes"].contains(offlineValue ?? "")
        self.policy = policy ?? DownloadPolicy.fromEnvironment(environment)
    }

    // MARK: - Resolving

    /// Resolves `[source:]name[:variant]` (see ``Registry``) or an http(s)/file URL.
    /// - Parameter sha256: a SHA-256 the file must have (required for nothing, checked if given).
    /// - Throws: ``HubError`` when the name is unknown or malformed.
    public func resolve(_ reference: String, sha256: String? = nil) throws -> ResolvedArtifact {
        let entry: RegistryEntry
        if reference.contains("://") {
            entry = RegistryEntry(artifact: try Self.artifact(forURL: reference), manifestDirectory: nil)
        } else {
            entry = try registry.entry(for: reference)
        }
        let artifact = entry.artifact
        let directory = cacheDirectory.appendingPathComponent(artifact.source ?? "other", isDirectory: true)
        return ResolvedArtifact(
            artifact: artifact,
            location: try location(of: entry),
            paths: CachePaths(directory: directory, file: directory.appendingPathComponent(artifact.fileName)),
            requiredSHA256: sha256?.lowercased())
    }

    /// A manifest-less artifact for a raw URL, cached as `url/<8 hex of the URL's hash>-<file name>`.
    static func artifact(forURL text: String) throws -> Artifact {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(),
              ["http", "https", "file"].contains(scheme) else {
            throw HubError.invalidReference(text)
        }
        let last = url.lastPathComponent.isEmpty || url.lastPathComponent == "/" ? "download" : url.lastPathComponent
        let tag = SHA256.hash(data: Data(text.utf8)).prefix(4).map { String(format: "%02x", $0) }.joined()
        let safe = last.replacingOccurrences(of: "/", with: "_")
        return Artifact(source: "url", name: "\(tag)-\(safe)", url: text, fileName: "\(tag)-\(safe)")
    }

    /// The URL an entry is fetched from: a relative URL is resolved against the mirror (or the
    /// manifest's directory); an absolute one keeps its path on the mirror's scheme and host.
    func location(of entry: RegistryEntry) throws -> URL {
        let text = entry.artifact.url
        guard let components = URLComponents(string: text) else { throw HubError.invalidReference(text) }
        if components.scheme == nil {
            guard let base = mirror ?? entry.manifestDirectory else {
                throw HubError.invalidManifest(path: entry.artifact.qualifiedName,
                                               problem: "relative URL '\(text)' needs a mirror (--mirror or TLHUB_ENDPOINT)")
            }
            return try Self.join(base, path: "/" + components.percentEncodedPath, query: nil)
        }
        guard let mirror else {
            guard let url = URL(string: text) else { throw HubError.invalidReference(text) }
            return url
        }
        let keepsQuery = mirror.scheme?.lowercased() != "file"
        return try Self.join(mirror, path: components.percentEncodedPath, query: keepsQuery ? components.percentEncodedQuery : nil)
    }

    private static func join(_ base: URL, path: String, query: String?) throws -> URL {
        var root = base.absoluteString
        while root.hasSuffix("/") { root.removeLast() }
        let text = root + path + (query.map { "?\($0)" } ?? "")
        guard let url = URL(string: text) else { throw HubError.invalidReference(text) }
        return url
    }

    // MARK: - Pulling

    /// Makes sure the artifact is in the cache and returns its local path.
    ///
    /// - Parameters:
    ///   - reference: `[source:]name[:variant]` or an http(s)/file URL.
    ///   - sha256: a SHA-256 the file must have, on top of any published hash.
    ///   - progress: called (from a background thread) as the pull advances.
    /// - Returns: the file in the cache, complete and verified.
    /// - Throws: ``HubError``: unknown name, HTTP status, timeout, DNS, hash mismatch, disk full,
    ///   offline and missing.
    public func pull(_ reference: String, sha256: String? = nil,
                     progress: (@Sendable (PullProgress) -> Void)? = nil) async throws -> URL {
        try await pull(try resolve(reference, sha256: sha256), progress: progress)
    }

    /// Pulls an already resolved artifact (see ``pull(_:sha256:progress:)``).
    public func pull(_ resolved: ResolvedArtifact, progress: (@Sendable (PullProgress) -> Void)? = nil) async throws -> URL {
        let paths = resolved.paths
        let name = resolved.artifact.qualifiedName
        let report: @Sendable (PullProgress.Phase, Int64, Int64?, Int64) -> Void = { phase, received, total, resumed in
            progress?(PullProgress(name: name, phase: phase, receivedBytes: received, totalBytes: total, resumedBytes: resumed))
        }
        let fileManager = FileManager.default
        // Offline means no network: a `file://` source (a mirror on disk, the bundled demo hub)
        // is still copied in.
        if offline && !resolved.location.isFileURL {
            guard fileManager.fileExists(atPath: paths.file.path) else {
                throw HubError.offlineAndMissing(name: name, url: resolved.location.absoluteString, path: paths.file.path)
            }
            report(.verifying, 0, nil, 0)
            let size = try verifyCachedFile(resolved)
            report(.cached, size, size, size)
            return paths.file
        }
        do {
            try fileManager.createDirectory(at: paths.directory, withIntermediateDirectories: true)
        } catch {
            throw HubError.fileSystem(path: paths.directory.path, problem: "cannot create the cache directory")
        }
        let lock = try await FileLock.acquire(path: paths.lock.path) { report(.waitingForLock, 0, nil, 0) }
        defer { lock.unlock() }
        if fileManager.fileExists(atPath: paths.file.path) {
            report(.verifying, 0, nil, 0)
            do {
                let size = try verifyCachedFile(resolved)
                report(.cached, size, size, size)
                return paths.file
            } catch let error as HubError {
                // A damaged or stale entry: replace it.
                report(.replacingDamaged(reason: error.description), 0, nil, 0)
                try? fileManager.removeItem(at: paths.file)
                try? fileManager.removeItem(at: paths.record)
            }
        }
        let policy = self.policy
        try await Self.onThread { try Self.download(resolved, policy: policy, report: report) }
        return paths.file
    }

    /// Runs blocking work (libcurl, hashing) on its own thread instead of a cooperative one.
    private static func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread { continuation.resume(with: Result { try body() }) }
            thread.start()
        }
    }

    /// Downloads into a partial file (resuming one left by an earlier run), verifies, renames.
    /// Called with the artifact's lock held.
    private static func download(_ resolved: ResolvedArtifact, policy: DownloadPolicy,
                                 report: @escaping (PullProgress.Phase, Int64, Int64?, Int64) -> Void) throws {
        let paths = resolved.paths
        let artifact = resolved.artifact
        let fileManager = FileManager.default
        let url = resolved.location.absoluteString

        var partial = readJSON(PartialRecord.self, at: paths.partialRecord)
        if let existing = partial, existing.url != url
            || !fileManager.fileExists(atPath: paths.directory.appendingPathComponent(existing.partialFile).path) {
            partial = nil
        }
        if partial == nil {
            removeStalePartials(paths)
            partial = PartialRecord(url: url, partialFile: paths.newPartialFile().lastPathComponent, etag: nil)
            try writeJSON(partial, to: paths.partialRecord)
        }
        guard let partial else { return }
        let partialURL = paths.directory.appendingPathComponent(partial.partialFile)
        let discard = {
            try? fileManager.removeItem(at: partialURL)
            try? fileManager.removeItem(at: paths.partialRecord)
        }
        if let size = artifact.size, let available = FreeSpace.available(at: partialURL.path), available < size {
            throw HubError.notEnoughSpace(path: paths.file.path, needed: size, available: available)
        }

        let startSize = (try? fileManager.attributesOfItem(atPath: partialURL.path)[.size] as? Int64) ?? 0
        var lastReport = DispatchTime.now().uptimeNanoseconds
        let outcome: DownloadOutcome
        do {
            outcome = try Downloader(policy: policy).download(
                url: url, to: partialURL.path, etag: partial.etag,
                includeMD5: artifact.hash?.algorithm == .md5,
                onResponse: { etag in
                    guard etag != partial.etag else { return }
                    var updated = partial
                    updated.etag = etag
                    try? writeJSON(updated, to: paths.partialRecord)
                },
                onProgress: { received, total in
                    let now = DispatchTime.now().uptimeNanoseconds
                    if now - lastReport >= 50_000_000 || received == total {
                        lastReport = now
                        report(.downloading, received, total, startSize)
                    }
                },
                onRetry: { attempt, reason in report(.retrying(attempt: attempt, reason: reason), 0, nil, startSize) })
        } catch let error as HubError {
            // Keep the partial file only when a later pull can resume it.
            if !error.isTransient { discard() }
            throw error
        }
        if let expected = artifact.size, expected != outcome.size {
            discard()
            throw HubError.sizeMismatch(name: artifact.qualifiedName, expected: expected, actual: outcome.size)
        }
        if let hash = artifact.hash {
            let actual = hash.algorithm == .md5 ? (outcome.md5 ?? "") : outcome.sha256
            if actual != hash.value {
                discard()
                throw HubError.hashMismatch(name: artifact.qualifiedName, algorithm: hash.algorithm.rawValue,
                                            expected: hash.value, actual: actual)
            }
        }
        if let required = resolved.requiredSHA256, required != outcome.sha256 {
            discard()
            throw HubError.hashMismatch(name: artifact.qualifiedName, algorithm: "sha256", expected: required, actual: outcome.sha256)
        }
        let record = CacheRecord(
            name: artifact.qualifiedName, url: artifact.url, fetchedFrom: url, size: outcome.size,
            sha256: outcome.sha256, publishedHash: artifact.hash, etag: outcome.etag,
            downloadedAt: ISO8601DateFormatter().string(from: Date()))
        try writeJSON(record, to: paths.record)
        guard rename(partialURL.path, paths.file.path) == 0 else {
            let problem = errnoText()
            discard()
            throw HubError.fileSystem(path: paths.file.path, problem: "cannot rename into place: \(problem)")
        }
        syncDirectory(paths.directory)
        try? fileManager.removeItem(at: paths.partialRecord)
        report(.finished, outcome.size, outcome.size, startSize)
    }

    /// Re-hashes a cached file against its record, the published hash and a required SHA-256.
    /// A file published without a hash and without a record (cached by hand) gets one now.
    /// - Returns: the file's size.
    @discardableResult
    func verifyCachedFile(_ resolved: ResolvedArtifact) throws -> Int64 {
        let paths = resolved.paths
        let record = Self.readJSON(CacheRecord.self, at: paths.record)
        let published = resolved.artifact.hash ?? record?.publishedHash
        let (digest, size) = try StreamingDigest.hashFile(at: paths.file.path, includeMD5: published?.algorithm == .md5)
        let hashes = digest.finalize()
        try Self.check(path: paths.file.path, sha256: hashes.sha256, md5: hashes.md5, size: size,
                       record: record, published: published, required: resolved.requiredSHA256)
        if record == nil {
            let artifact = resolved.artifact
            try Self.writeJSON(CacheRecord(name: artifact.qualifiedName, url: artifact.url, fetchedFrom: "",
                                           size: size, sha256: hashes.sha256, publishedHash: published, etag: nil,
                                           downloadedAt: ISO8601DateFormatter().string(from: Date())), to: paths.record)
        }
        return size
    }

    static func check(path: String, sha256: String, md5: String?, size: Int64, record: CacheRecord?,
                      published: PublishedHash?, required: String?) throws {
        if let record, record.size != size {
            throw HubError.corruptCacheEntry(path: path, problem: "size \(size), recorded \(record.size)")
        }
        if let record, record.sha256 != sha256 {
            throw HubError.corruptCacheEntry(path: path, problem: "sha256 \(sha256), recorded \(record.sha256)")
        }
        if let published {
            let actual = published.algorithm == .md5 ? (md5 ?? "") : sha256
            if actual != published.value {
                throw HubError.corruptCacheEntry(path: path, problem: "\(published.algorithm.rawValue) \(actual), published \(published.value)")
            }
        }
        if let required, required != sha256 {
            throw HubError.corruptCacheEntry(path: path, problem: "sha256 \(sha256), required \(required)")
        }
    }

    // MARK: - Small file helpers

    static func readJSON<T: Decodable>(_ type: T.Type, at url: URL) -> T? {
        guard let data = FileManager.default.contents(atPath: url.path) else { return nil }
        return try? JSONDecoder().decode(type, from: data)
    }

    static func writeJSON<T: Encodable>(_ value: T, to url: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(value)
        do {
            try AtomicFile.write(to: url) { handle, _ in try handle.write(contentsOf: data) }
        } catch {
            throw HubError.fileSystem(path: url.path, problem: "cannot write: \(error.localizedDescription)")
        }
    }

    static func removeStalePartials(_ paths: CachePaths) {
        let prefix = paths.file.lastPathComponent + "."
        let names = (try? FileManager.default.contentsOfDirectory(atPath: paths.directory.path)) ?? []
        for name in names where name.hasPrefix(prefix) && name.hasSuffix(".incomplete") {
            try? FileManager.default.removeItem(at: paths.directory.appendingPathComponent(name))
        }
    }

    static func syncDirectory(_ directory: URL) {
        let descriptor = open(directory.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if descriptor >= 0 {
            fsync(descriptor)
            close(descriptor)
        }
    }
}
