import Foundation

/// Wall time of a training run per layer and pass, summed over every step: what
/// `tlhub train --profile` and `finetune --profile` print. A run without one pays nothing.
public final class TrainingProfile: @unchecked Sendable {
    /// One layer's (or phase's) summed forward and backward seconds.
    public struct Entry: Sendable {
        public let name: String
        public var forward: Double
        public var backward: Double
        public var total: Double { forward + backward }
    }

    /// Entries in first-seen order (layers in graph order; phases such as `(optimizer)` where
    /// they first ran).
    public private(set) var entries: [Entry] = []
    private var positions: [String: Int] = [:]
    private let lock = NSLock()

    public init() {}

    /// Adds `seconds` to `name`'s forward or backward time.
    public func add(_ name: String, seconds: Double, backward: Bool = false) {
        lock.withLock {
            let position: Int
            if let known = positions[name] {
                position = known
            } else {
                position = entries.count
                positions[name] = position
                entries.append(Entry(name: name, forward: 0, backward: 0))
            }
            if backward { entries[position].backward += seconds } else { entries[position].forward += seconds }
        }
    }

    /// Times `body` under `name`.
    @discardableResult
    public func measure<T>(_ name: String, backward: Bool = false, _ body: () throws -> T) rethrows -> T {
        let start = DispatchTime.now().uptimeNanoseconds
        defer { add(name, seconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9, backward: backward) }
        return try body()
    }

    /// A table of the `limit` costliest entries, slowest first, with their share of the total.
    public func report(limit: Int = 20) -> String {
        let all = lock.withLock { entries }
        let total = max(all.reduce(0) { $0 + $1.total }, 1e-9)
        let width = min(40, max(5, all.map(\.name.count).max() ?? 5))
        var lines = ["profile: seconds per layer over the run (forward, backward, share of the timed total \(String(format: "%.2f", total)) s)"]
        lines.append("  " + "layer".padding(toLength: width, withPad: " ", startingAt: 0) + "   forward  backward   share")
        for entry in all.sorted(by: { $0.total > $1.total }).prefix(limit) {
            let name = entry.name.count > width ? String(entry.name.prefix(width - 1)) + "…" : entry.name
            lines.append("  " + name.padding(toLength: width, withPad: " ", startingAt: 0)
                         + String(format: "  %8.3f  %8.3f  %5.1f%%", entry.forward, entry.backward, 100 * entry.total / total))
        }
        return lines.joined(separator: "\n")
    }
}

extension Optional where Wrapped == TrainingProfile {
    /// Runs `body`, timing it under `name` when there is a profile (no clock read otherwise).
    @discardableResult
    func measure<T>(_ name: String, backward: Bool = false, _ body: () throws -> T) rethrows -> T {
        guard let profile = self else { return try body() }
        return try profile.measure(name, backward: backward, body)
    }
}
