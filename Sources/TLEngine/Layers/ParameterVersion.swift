import Foundation

/// When a layer's weights last changed: a process-wide increasing number, bumped by every
/// assignment to a weight. State derived from weights — packed GEMM panels, folded BatchNorm
/// factors, a model's fused graph and planned executors — records the version it was made from
/// and is rebuilt when the version moves, so no mutation can leave a stale copy behind.
final class ParameterVersion: @unchecked Sendable {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var latest = 0

    /// The current version (0 for weights never set).
    private(set) var value = 0

    /// Marks the weights as changed.
    func bump() {
        Self.lock.lock()
        Self.latest += 1
        value = Self.latest
        Self.lock.unlock()
    }
}
