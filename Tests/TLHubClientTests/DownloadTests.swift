import Foundation
import Testing
@testable import TLHubClient

/// Progress events collected from the transfer thread.
final class PhaseLog: @unchecked Sendable {
    private let lock = NSLock()
    private var events: [PullProgress] = []

    func append(_ event: PullProgress) {
        lock.lock()
        events.append(event)
        lock.unlock()
    }

    var all: [PullProgress] {
        lock.lock()
        defer { lock.unlock() }
        return events
    }
}

/// Downloads against a server on 127.0.0.1 with injected faults.
@Suite("Downloads", .serialized)
struct DownloadTests {
    let server: TestHTTPServer
    let scratch: ScratchDirectory
    let body = testBytes(300_000)

    init() throws {
        server = try TestHTTPServer()
        scratch = try ScratchDirectory()
    }

    var cache: URL { scratch.url.appendingPathComponent("cache", isDirectory: true) }

    /// A hub whose manifest lists `/model.bin` on the test server with the body's MD5.
    func hub(hash: Bool = true, size: Int? = nil, policy: DownloadPolicy = fastPolicy, offline: Bool = false,
             path: String = "/model.bin") throws -> Hub {
        let entry = artifactEntry(name: "model", url: server.baseURL + path, md5: hash ? md5Hex(body) : nil, size: size)
        return try Hub(cacheDirectory: cache, manifestDirectories: [try scratch.manifests([entry])],
                       offline: offline, policy: policy, environment: [:])
    }

    func cachedBytes(_ url: URL) throws -> [UInt8] { [UInt8](try Data(contentsOf: url)) }

    /// Files in the source directory other than the final file, its metadata and its lock.
    func leftovers() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: cache.appendingPathComponent("test").path)) ?? []
        return names.filter { !["model.bin", "model.bin.tlhub.json", "model.bin.lock"].contains($0) }.sorted()
    }

    @Test("a plain download lands under its name with metadata, following a redirect")
    func plainDownloadWithRedirect() async throws {
        server.setRoute("/real.bin", .init(body: body, etag: "\"v1\""))
        server.setRoute("/model.bin", .init(body: [], redirect: server.baseURL + "/real.bin"))
        let phases = PhaseLog()
        let file = try await hub().pull("test:model") { phases.append($0) }
        #expect(file == cache.appendingPathComponent("test/model.bin"))
        #expect(phases.all.last?.phase == .finished)
        #expect(phases.all.last?.receivedBytes == Int64(body.count))
        #expect(phases.all.contains { $0.phase == .downloading && $0.totalBytes == Int64(body.count) })
        _ = try await hub().pull("test:model") { phases.append($0) }
        #expect(phases.all.last?.phase == .cached)
        #expect(try cachedBytes(file) == body)
        let record = try #require(Hub.readJSON(CacheRecord.self, at: cache.appendingPathComponent("test/model.bin.tlhub.json")))
        #expect(record.sha256 == sha256Hex(body))
        #expect(record.size == Int64(body.count))
        #expect(record.etag == "\"v1\"")
        #expect(record.publishedHash == PublishedHash(algorithm: .md5, value: md5Hex(body)))
        #expect(leftovers().isEmpty)
    }

    @Test("a connection dropped mid-body is resumed with Range")
    func resumesAfterDrop() async throws {
        server.setRoute("/model.bin", .init(body: body, etag: "\"v1\"", faults: [.drop(afterBytes: 100_000, times: 1)]))
        let file = try await hub().pull("test:model")
        #expect(try cachedBytes(file) == body)
        let requests = server.requests(to: "/model.bin")
        #expect(requests.count == 2)
        let resumedFrom = requests.last?.range.flatMap { Int($0.dropFirst(6).dropLast()) } ?? 0
        #expect(resumedFrom >= 65_536 && resumedFrom <= 100_000)
        #expect(requests.last?.ifRange == "\"v1\"")
    }

    @Test("corrupted bytes: hash mismatch naming both hashes, nothing left in the cache")
    func corruptedBytes() async throws {
        server.setRoute("/model.bin", .init(body: body, faults: [.corrupt]))
        var corrupted = body
        corrupted[corrupted.count / 2] ^= 0xFF
        await #expect(throws: HubError.hashMismatch(name: "test:model", algorithm: "md5", expected: md5Hex(body), actual: md5Hex(corrupted))) {
            try await hub().pull("test:model")
        }
        #expect(!FileManager.default.fileExists(atPath: cache.appendingPathComponent("test/model.bin").path))
        #expect(leftovers().isEmpty)
    }

    @Test("404 and 403 fail at once without retrying", arguments: [404, 403])
    func clientErrorsAreNotRetried(status: Int) async throws {
        server.setRoute("/model.bin", .init(body: body, faults: [.status(status, times: 100)]))
        await #expect(throws: HubError.httpStatus(url: server.baseURL + "/model.bin", status: status)) {
            try await hub().pull("test:model")
        }
        #expect(server.requests(to: "/model.bin").count == 1)
        #expect(leftovers().isEmpty)
    }

    @Test("500 then success: retried")
    func serverErrorIsRetried() async throws {
        server.setRoute("/model.bin", .init(body: body, faults: [.status(500, times: 1)]))
        let file = try await hub().pull("test:model")
        #expect(try cachedBytes(file) == body)
        #expect(server.requests(to: "/model.bin").count == 2)
    }

    @Test("500 every time: gives up after the attempt limit")
    func serverErrorGivesUp() async throws {
        server.setRoute("/model.bin", .init(body: body, faults: [.status(503, times: 100)]))
        await #expect(throws: HubError.httpStatus(url: server.baseURL + "/model.bin", status: 503)) {
            try await hub().pull("test:model")
        }
        #expect(server.requests(to: "/model.bin").count == fastPolicy.maxAttempts)
    }

    @Test("a stalled server hits the low-speed timeout, then the retry resumes")
    func stallTimesOutThenResumes() async throws {
        server.setRoute("/model.bin", .init(body: body, etag: "\"v1\"", faults: [.stall(afterBytes: 50_000, seconds: 10, times: 1)]))
        let started = Date()
        let file = try await hub().pull("test:model")
        #expect(Date().timeIntervalSince(started) < 5)
        #expect(try cachedBytes(file) == body)
        #expect(server.requests(to: "/model.bin").last?.range == "bytes=50000-")
    }

    @Test("a server that always stalls gives a timeout error and keeps the partial file")
    func stallTimesOut() async throws {
        server.setRoute("/model.bin", .init(body: body, faults: [.stall(afterBytes: 50_000, seconds: 10, times: 100)]))
        var policy = fastPolicy
        policy.maxAttempts = 1
        do {
            _ = try await hub(policy: policy).pull("test:model")
            Issue.record("expected a timeout")
        } catch let error as HubError {
            guard case .timedOut = error else {
                Issue.record("expected a timeout, got \(error)")
                return
            }
        }
        #expect(leftovers().contains { $0.hasSuffix(".incomplete") })
        #expect(!FileManager.default.fileExists(atPath: cache.appendingPathComponent("test/model.bin").path))
    }

    @Test("200 to a Range request starts over")
    func ignoredRangeStartsOver() async throws {
        server.setRoute("/model.bin", .init(body: body, faults: [.drop(afterBytes: 100_000, times: 1), .ignoreRange]))
        let file = try await hub().pull("test:model")
        #expect(try cachedBytes(file) == body)
        let requests = server.requests(to: "/model.bin")
        #expect(requests.count == 2)
        #expect(requests.last?.range != nil)
    }

    @Test("a Content-Length larger than the body: dropped connection, resumed")
    func longerContentLength() async throws {
        server.setRoute("/model.bin", .init(body: body, faults: [.longerContentLength(extra: 1000, times: 1)]))
        let file = try await hub().pull("test:model")
        #expect(try cachedBytes(file) == body)
        #expect(server.requests(to: "/model.bin").count == 2)
    }

    @Test("a body shorter than published: size and hash checks reject it")
    func shorterBody() async throws {
        server.setRoute("/model.bin", .init(body: body, faults: [.shorterBody(missing: 10)]))
        await #expect(throws: HubError.sizeMismatch(name: "test:model", expected: Int64(body.count), actual: Int64(body.count - 10))) {
            try await hub(size: body.count).pull("test:model")
        }
        await #expect(throws: HubError.self) { try await hub().pull("test:model") }
        #expect(leftovers().isEmpty)
    }

    @Test("a file without a published hash gets its SHA-256 recorded and checked on later use")
    func recordsHashOnFirstDownload() async throws {
        server.setRoute("/model.bin", .init(body: body))
        let hub = try self.hub(hash: false)
        let file = try await hub.pull("test:model")
        let record = try #require(Hub.readJSON(CacheRecord.self, at: cache.appendingPathComponent("test/model.bin.tlhub.json")))
        #expect(record.sha256 == sha256Hex(body))
        #expect(record.publishedHash == nil)
        // Damage the cached file: verify reports it, the next pull replaces it.
        var damaged = body
        damaged[0] ^= 1
        try Data(damaged).write(to: file)
        let entry = try #require(hub.cachedEntries().first)
        #expect(throws: HubError.self) { try hub.verify(entry) }
        _ = try await hub.pull("test:model")
        #expect(try cachedBytes(file) == body)
        #expect(server.requests(to: "/model.bin").count == 2)
    }

    @Test("offline: a cached file is served without the network, a missing one is named")
    func offline() async throws {
        server.setRoute("/model.bin", .init(body: body))
        await #expect(throws: HubError.offlineAndMissing(name: "test:model", url: server.baseURL + "/model.bin",
                                                         path: cache.appendingPathComponent("test/model.bin").path)) {
            try await hub(offline: true).pull("test:model")
        }
        #expect(server.requests(to: "/model.bin").isEmpty)
        _ = try await hub().pull("test:model")
        let file = try await hub(offline: true).pull("test:model")
        #expect(try cachedBytes(file) == body)
        #expect(server.requests(to: "/model.bin").count == 1)
    }

    @Test("raw URLs with a required SHA-256")
    func rawURL() async throws {
        server.setRoute("/raw/weights.h5", .init(body: body))
        let hub = try self.hub()
        let file = try await hub.pull(server.baseURL + "/raw/weights.h5", sha256: sha256Hex(body))
        #expect(file.lastPathComponent.hasSuffix("-weights.h5"))
        #expect(file.deletingLastPathComponent().lastPathComponent == "url")
        await #expect(throws: HubError.self) {
            try await hub.pull(server.baseURL + "/raw/weights.h5", sha256: String(repeating: "0", count: 64))
        }
    }

    @Test("a mirror keeps the path and replaces the host")
    func mirror() async throws {
        server.setRoute("/tensorflow/keras-applications/model.bin", .init(body: body))
        let entry = artifactEntry(name: "model", url: "https://storage.example.com/tensorflow/keras-applications/model.bin", md5: md5Hex(body))
        let hub = try Hub(cacheDirectory: cache, manifestDirectories: [try scratch.manifests([entry])],
                          mirror: URL(string: server.baseURL), policy: fastPolicy, environment: [:])
        let file = try await hub.pull("test:model")
        #expect(try cachedBytes(file) == body)
    }

    @Test("threads with separate hubs pulling one artifact: one download, every pull succeeds")
    func concurrentPullsDownloadOnce() async throws {
        server.setRoute("/model.bin", .init(body: body, faults: [.slow(chunk: 30_000, pause: 0.02)]))
        let hubs = try (0..<4).map { _ in try hub() }
        let files = try await withThrowingTaskGroup(of: URL.self) { group in
            for hub in hubs { group.addTask { try await hub.pull("test:model") } }
            return try await group.reduce(into: [URL]()) { $0.append($1) }
        }
        #expect(files.count == 4)
        #expect(Set(files).count == 1)
        #expect(server.requests(to: "/model.bin").count == 1)
        #expect(try cachedBytes(files[0]) == body)
    }

    @Test("a full disk gives a clear error")
    func diskFull() throws {
        let descriptor = open("/dev/full", O_WRONLY)
        try #require(descriptor >= 0)
        defer { close(descriptor) }
        let sink = TransferSink(descriptor: descriptor, path: "/dev/full", digest: StreamingDigest(includeMD5: false),
                                size: 0, etag: nil, onResponse: { _ in }, onProgress: { _, _ in })
        let accepted = body.withUnsafeBytes { sink.receive($0) }
        #expect(accepted == 0)
        #expect(sink.failure == .diskFull(path: "/dev/full"))
    }

    @Test("cache ls, verify, rm and prune")
    func cacheManagement() async throws {
        server.setRoute("/model.bin", .init(body: body, faults: [.stall(afterBytes: 10_000, seconds: 10, times: 1)]))
        var policy = fastPolicy
        policy.maxAttempts = 1
        await #expect(throws: HubError.self) { try await self.hub(policy: policy).pull("test:model") }
        #expect(leftovers().count == 2)  // the partial file and its resume record
        let hub = try self.hub()
        #expect(hub.cachedEntries().isEmpty)
        let pruned = hub.prune()
        #expect(pruned.removed.count == 2)
        #expect(pruned.freedBytes > 10_000)
        #expect(leftovers().isEmpty)
        _ = try await hub.pull("test:model")
        let entries = hub.cachedEntries()
        #expect(entries.map(\.name) == ["test:model"])
        #expect(entries.first?.size == Int64(body.count))
        try hub.verify(try #require(entries.first))
        #expect(try hub.remove("test:model").count == 2)
        #expect(hub.cachedEntries().isEmpty)
    }
}
