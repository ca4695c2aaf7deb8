import Foundation
import Testing
@testable import TLHubClient

/// Several `tlhub` processes (the debug binary `swift test` builds) sharing one cache.
@Suite("Processes sharing a cache", .serialized)
struct MultiProcessTests {
    let server: TestHTTPServer
    let scratch: ScratchDirectory
    let body = testBytes(400_000, seed: 7)

    init() throws {
        server = try TestHTTPServer()
        scratch = try ScratchDirectory()
    }

    var cache: URL { scratch.url.appendingPathComponent("cache", isDirectory: true) }

    func manifests() throws -> URL {
        try scratch.manifests([artifactEntry(name: "model", url: server.baseURL + "/model.bin", md5: md5Hex(body))])
    }

    func launch(_ binary: URL, manifests: URL, captureErrors: Bool = false) throws -> (Process, Pipe) {
        let process = Process()
        process.executableURL = binary
        process.arguments = ["pull", "test:model", "--cache-dir", cache.path, "--manifests", manifests.path, "--quiet"]
        var environment = ProcessInfo.processInfo.environment
        environment["TLHUB_LOW_SPEED_TIME"] = "30"
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        process.standardError = captureErrors ? Pipe() : FileHandle.nullDevice
        try process.run()
        return (process, output)
    }

    @Test("four processes pulling the same artifact: one download, four successes")
    func oneDownloadForManyProcesses() throws {
        let binary = try #require(tlhubBinary(), "build the tlhub executable first (swift build)")
        server.setRoute("/model.bin", .init(body: body, faults: [.slow(chunk: 40_000, pause: 0.03)]))
        let manifests = try manifests()
        let launched = try (0..<4).map { _ in try launch(binary, manifests: manifests) }
        for (process, _) in launched { process.waitUntilExit() }
        let expected = cache.appendingPathComponent("test/model.bin").path
        for (process, output) in launched {
            #expect(process.terminationStatus == 0)
            let printed = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            #expect(printed.trimmingCharacters(in: .whitespacesAndNewlines) == expected)
        }
        #expect(server.requests(to: "/model.bin").count == 1)
        #expect([UInt8](try Data(contentsOf: URL(fileURLWithPath: expected))) == body)
    }

    @Test("the CLI prints the path on stdout, and one error line and a failing status on errors")
    func commandLineOutput() throws {
        let binary = try #require(tlhubBinary(), "build the tlhub executable first (swift build)")
        server.setRoute("/model.bin", .init(body: body, faults: [.status(404, times: 100)]))
        let (process, output) = try launch(binary, manifests: try manifests(), captureErrors: true)
        process.waitUntilExit()
        #expect(process.terminationStatus != 0)
        #expect(output.fileHandleForReading.readDataToEndOfFile().isEmpty)
        let errors = String(decoding: (process.standardError as? Pipe)?.fileHandleForReading.readDataToEndOfFile() ?? Data(), as: UTF8.self)
        #expect(errors == "Error: HTTP 404 Not Found from \(server.baseURL)/model.bin\n")
    }

    @Test("a killed download is resumed by the next pull, and nothing shows under the final name meanwhile")
    func killedDownloadResumes() async throws {
        let binary = try #require(tlhubBinary(), "build the tlhub executable first (swift build)")
        server.setRoute("/model.bin", .init(body: body, etag: "\"e1\"", faults: [.stall(afterBytes: 150_000, seconds: 10, times: 1)]))
        let manifests = try manifests()
        let (process, _) = try launch(binary, manifests: manifests)
        let directory = cache.appendingPathComponent("test")
        let partialSize: () -> Int = {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
            guard let partial = names.first(where: { $0.hasSuffix(".incomplete") }) else { return 0 }
            let attributes = try? FileManager.default.attributesOfItem(atPath: directory.appendingPathComponent(partial).path)
            return (attributes?[.size] as? Int) ?? 0
        }
        #expect(waitUntil(10) { partialSize() == 150_000 })
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("model.bin").path))

        let hub = try Hub(cacheDirectory: cache, manifestDirectories: [manifests], policy: fastPolicy, environment: [:])
        let file = try await hub.pull("test:model")
        #expect([UInt8](try Data(contentsOf: file)) == body)
        let requests = server.requests(to: "/model.bin")
        #expect(requests.count == 2)
        #expect(requests.last?.range == "bytes=150000-")
        #expect(requests.last?.ifRange == "\"e1\"")
    }
}
