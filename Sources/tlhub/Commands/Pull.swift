import ArgumentParser
import Foundation
import TLHubClient

struct Pull: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Download artifacts into the cache (verified, resumable) and print their local paths.",
        discussion: """
        NAME is [source:]name[:variant] (see `tlhub list`) or an http(s):// or file:// URL.
        TF Hub SavedModel archives are unpacked beside the download; the directory is printed.

        Examples:
          tlhub pull mobilenet_v2_100_224
          tlhub pull tfhub:mobilenet_v2_100_224:classification
          tlhub pull https://example.com/model.h5 --sha256 0123…
          tlhub pull --mirror file://$PWD/scripts/demo_hub --manifests scripts/demo_hub demo:tiny_cnn
        """)

    @OptionGroup var cacheOptions: CacheOptions

    @Argument(help: "Artifacts to pull.")
    var names: [String]

    @Option(help: ArgumentHelp("Required SHA-256 of the file (for raw URLs).", valueName: "hex"))
    var sha256: String?

    @Flag(name: .shortAndLong, help: "No progress output (the default when CI=true).")
    var quiet = false

    func validate() throws {
        if names.isEmpty { throw ValidationError("name at least one artifact; `tlhub list` shows them") }
        if let sha256, sha256.count != 64 || !sha256.allSatisfy(\.isHexDigit) {
            throw ValidationError("--sha256 must be 64 hex digits")
        }
    }

    func run() async throws {
        let hub = try cacheOptions.makeHub()
        let silent = quiet || ProcessInfo.processInfo.environment["CI"]?.lowercased() == "true"
        let display = ProgressDisplay(mode: silent ? .silent : (isatty(STDERR_FILENO) == 1 ? .bar : .lines))
        for name in names {
            let file = try await hub.pullUnpacked(name, sha256: sha256) { display.update($0) }
            print(file.path)
        }
    }
}

/// Pull progress on stderr: a redrawn bar on a terminal, one line per file otherwise.
final class ProgressDisplay: @unchecked Sendable {
    enum Mode { case silent, bar, lines }

    private let mode: Mode
    private let lock = NSLock()
    private var started: [String: Date] = [:]
    private var barVisible = false

    init(mode: Mode) { self.mode = mode }

    func update(_ progress: PullProgress) {
        guard mode != .silent else { return }
        lock.lock()
        defer { lock.unlock() }
        let now = Date()
        if started[progress.name] == nil { started[progress.name] = now }
        let elapsed = max(now.timeIntervalSince(started[progress.name] ?? now), 0.001)
        let fresh = progress.receivedBytes - progress.resumedBytes
        let rate = Double(max(fresh, 0)) / elapsed
        switch progress.phase {
        case .downloading:
            guard mode == .bar else { return }
            var line = "\(progress.name) \(ByteCount.format(progress.receivedBytes))"
            if let total = progress.totalBytes, total > 0 {
                let fraction = Double(progress.receivedBytes) / Double(total)
                let filled = Int(fraction * 24)
                let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: max(0, 24 - filled))
                let eta = rate > 0 ? Int(Double(total - progress.receivedBytes) / rate) : 0
                line = "\(progress.name) [\(bar)] \(Int(fraction * 100))% \(ByteCount.format(progress.receivedBytes))/\(ByteCount.format(total)) \(ByteCount.format(Int64(rate)))/s ETA \(eta)s"
            }
            write("\r\u{1B}[K" + line)
            barVisible = true
        case .finished:
            endBar()
            let resumed = progress.resumedBytes > 0 ? ", resumed after \(ByteCount.format(progress.resumedBytes))" : ""
            write("pulled \(progress.name) (\(ByteCount.format(progress.receivedBytes)) in \(String(format: "%.1f", elapsed)) s, \(ByteCount.format(Int64(rate)))/s\(resumed))\n")
        case .cached:
            endBar()
            write("cached \(progress.name) (\(ByteCount.format(progress.receivedBytes)))\n")
        case let .retrying(attempt, reason):
            endBar()
            write("retrying \(progress.name) (attempt \(attempt)): \(reason)\n")
        case let .replacingDamaged(reason):
            endBar()
            write("downloading \(progress.name) again: \(reason)\n")
        case .waitingForLock:
            endBar()
            write("waiting for another process downloading \(progress.name)\n")
        case .verifying:
            break
        }
    }

    private func endBar() {
        if barVisible { write("\r\u{1B}[K") }
        barVisible = false
    }

    private func write(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }
}
