import Foundation

/// Time limits and retry rules for downloads. The defaults suit real networks; tests shrink them.
public struct DownloadPolicy: Sendable {
    /// Seconds allowed to establish a connection.
    public var connectTimeout: Double = 30
    /// A transfer slower than this many bytes per second …
    public var lowSpeedLimit: Int = 1024
    /// … for this many seconds is aborted (and retried).
    public var lowSpeedTime: Int = 30
    /// Attempts per file, including the first; only transient failures (5xx, timeouts, dropped
    /// connections) are retried.
    public var maxAttempts: Int = 5
    /// Delay before the first retry in seconds; it doubles with each further retry.
    public var retryDelay: Double = 1
    /// Verify TLS certificates and host names (never turn off outside tests).
    public var verifyTLS: Bool = true

    /// The defaults.
    public init() {}

    /// Limits from the environment: `TLHUB_CONNECT_TIMEOUT`, `TLHUB_LOW_SPEED_TIME`,
    /// `TLHUB_RETRIES`, `TLHUB_RETRY_DELAY`.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> DownloadPolicy {
        var policy = DownloadPolicy()
        if let value = environment["TLHUB_CONNECT_TIMEOUT"].flatMap(Double.init) { policy.connectTimeout = value }
        if let value = environment["TLHUB_LOW_SPEED_TIME"].flatMap(Int.init) { policy.lowSpeedTime = value }
        if let value = environment["TLHUB_RETRIES"].flatMap(Int.init) { policy.maxAttempts = max(1, value + 1) }
        if let value = environment["TLHUB_RETRY_DELAY"].flatMap(Double.init) { policy.retryDelay = value }
        return policy
    }
}

/// Progress of one pull, reported to the caller's callback.
public struct PullProgress: Sendable {
    /// What is happening.
    public enum Phase: Sendable, Equatable {
        /// Another process holds the artifact's lock; waiting for it.
        case waitingForLock
        /// Bytes are arriving.
        case downloading
        /// A transient failure; the next attempt starts after a delay.
        case retrying(attempt: Int, reason: String)
        /// The cached file failed verification and is downloaded again.
        case replacingDamaged(reason: String)
        /// Re-reading a cached or partial file to check its hash.
        case verifying
        /// The file is complete and in place.
        case finished
        /// The file was already in the cache.
        case cached
    }

    /// Fully qualified artifact name.
    public var name: String
    /// What is happening.
    public var phase: Phase
    /// Bytes of the file present so far (including resumed bytes).
    public var receivedBytes: Int64
    /// The file's size when known.
    public var totalBytes: Int64?
    /// Bytes present when this run started (resumed from a partial file).
    public var resumedBytes: Int64
}
