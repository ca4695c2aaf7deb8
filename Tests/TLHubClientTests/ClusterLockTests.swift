import Foundation
import Testing
@testable import TLHubClient

/// The cache lock across hosts sharing a cache on NFS: a link(2)-made claim with host and PID.
@Suite("Cache lock across hosts")
struct ClusterLockTests {
    let directory: URL = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tlhub-claims-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }()

    var lock: String { directory.appendingPathComponent("model.h5.lock").path }
    var claim: String { lock + ".claim" }

    @Test("taking the lock writes our claim; releasing removes it")
    func claimLifecycle() throws {
        let held = try #require(try FileLock.tryAcquire(path: lock))
        #expect(try String(contentsOfFile: claim, encoding: .utf8) == "\(ProcessInfo.processInfo.hostName) \(getpid())\n")
        held.unlock()
        #expect(!FileManager.default.fileExists(atPath: claim))
    }

    @Test("another host's fresh claim excludes us; once stale it is taken over")
    func otherHost() throws {
        try Data("node17.cluster 4242\n".utf8).write(to: URL(fileURLWithPath: claim))
        #expect(try FileLock.tryAcquire(path: lock) == nil)
        // Not refreshed for longer than TLHUB_LOCK_STALE (600 s by default).
        var times = [timeval(tv_sec: Int(Date().timeIntervalSince1970) - 3600, tv_usec: 0),
                     timeval(tv_sec: Int(Date().timeIntervalSince1970) - 3600, tv_usec: 0)]
        #expect(utimes(claim, &times) == 0)
        let held = try #require(try FileLock.tryAcquire(path: lock))
        #expect(Claim.isOurs(claim))
        held.unlock()
    }

    @Test("a claim of a dead process on this host is stale at once")
    func deadProcess() throws {
        let finished = Process()
        finished.executableURL = URL(fileURLWithPath: "/bin/true")
        try finished.run()
        finished.waitUntilExit()
        try Data("\(ProcessInfo.processInfo.hostName) \(finished.processIdentifier)\n".utf8).write(to: URL(fileURLWithPath: claim))
        let held = try #require(try FileLock.tryAcquire(path: lock))
        held.unlock()
    }
}
