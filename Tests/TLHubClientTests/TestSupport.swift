import Crypto
import Foundation
@testable import TLHubClient

/// A scratch directory removed when the value is deallocated.
final class ScratchDirectory {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("tlhub-test-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    /// Writes a manifest directory holding one manifest with `artifacts`.
    func manifests(_ artifacts: [[String: Any]], source: String = "test") throws -> URL {
        let directory = url.appendingPathComponent("manifests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let manifest: [String: Any] = ["family": "test", "source": source, "artifacts": artifacts]
        try JSONSerialization.data(withJSONObject: manifest).write(to: directory.appendingPathComponent("test.json"))
        return directory
    }

    /// Every file name under the directory, recursively, relative to it.
    func files() -> [String] {
        let enumerator = FileManager.default.enumerator(atPath: url.path)
        var names: [String] = []
        while let name = enumerator?.nextObject() as? String { names.append(name) }
        return names.sorted()
    }
}

/// Deterministic pseudo-random bytes.
func testBytes(_ count: Int, seed: UInt64 = 42) -> [UInt8] {
    var state = seed
    return (0..<count).map { _ in
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return UInt8(truncatingIfNeeded: state >> 33)
    }
}

func sha256Hex(_ bytes: [UInt8]) -> String {
    SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
}

func md5Hex(_ bytes: [UInt8]) -> String {
    Insecure.MD5.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
}

/// Limits that make failure tests finish in well under a second each.
var fastPolicy: DownloadPolicy {
    var policy = DownloadPolicy()
    policy.connectTimeout = 2
    policy.lowSpeedLimit = 1000
    policy.lowSpeedTime = 1
    policy.maxAttempts = 3
    policy.retryDelay = 0.01
    return policy
}

/// An artifact entry for a test manifest.
func artifactEntry(name: String, url: String, md5: String? = nil, sha256: String? = nil,
                   size: Int? = nil, fileName: String? = nil) -> [String: Any] {
    var entry: [String: Any] = ["name": name, "url": url, "file_name": fileName ?? "\(name).bin",
                                "format": "raw", "options": [String: Any]()]
    if let md5 { entry["hash"] = ["algorithm": "md5", "value": md5] }
    if let sha256 { entry["hash"] = ["algorithm": "sha256", "value": sha256] }
    if let size { entry["size"] = size }
    return entry
}

/// The package root, found from this file's path.
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// The debug `tlhub` binary that `swift test` builds beside the test bundle.
func tlhubBinary() -> URL? {
    let candidates = [
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("tlhub"),
        Bundle.main.bundleURL.appendingPathComponent("tlhub"),
        Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("tlhub"),
        packageRoot.appendingPathComponent(".build/debug/tlhub"),
    ]
    return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) }
}

/// Waits until `condition` holds or `seconds` pass.
func waitUntil(_ seconds: Double, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        Thread.sleep(forTimeInterval: 0.01)
    }
    return condition()
}
