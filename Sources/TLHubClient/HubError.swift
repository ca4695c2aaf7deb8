import Foundation

/// Everything that can go wrong while resolving, downloading or caching an artifact. Each case
/// carries what a user needs to act on it, and `errorDescription` is one line.
public enum HubError: Error, LocalizedError, CustomStringConvertible, Equatable {
    /// No manifest entry matches the name.
    case unknownArtifact(reference: String, suggestions: [String])
    /// The name matches several entries (for example the same name in two sources).
    case ambiguousReference(reference: String, candidates: [String])
    /// A name that is neither `[source:]name[:variant]` nor an http(s)/file URL.
    case invalidReference(String)
    /// A manifest file that does not parse or breaks a rule (duplicate names, bad hash).
    case invalidManifest(path: String, problem: String)
    /// The server answered with an HTTP error status.
    case httpStatus(url: String, status: Int)
    /// No data within the time limits (connection or transfer).
    case timedOut(url: String, detail: String)
    /// The host name could not be resolved.
    case hostNotFound(url: String)
    /// A file:// URL that names no readable file.
    case fileNotFound(url: String)
    /// Any other transfer failure (connection refused, TLS, connection dropped …).
    case transferFailed(url: String, detail: String)
    /// The bytes did not hash to the published (or previously recorded) value.
    case hashMismatch(name: String, algorithm: String, expected: String, actual: String)
    /// The file ended up with a different size than announced.
    case sizeMismatch(name: String, expected: Int64, actual: Int64)
    /// Writing to the cache failed because the disk is full.
    case diskFull(path: String)
    /// The server announced more bytes than the cache's disk has free.
    case notEnoughSpace(path: String, needed: Int64, available: Int64)
    /// A file system operation in the cache failed.
    case fileSystem(path: String, problem: String)
    /// Offline mode and the artifact is not in the cache.
    case offlineAndMissing(name: String, url: String, path: String)
    /// A cached file that fails verification.
    case corruptCacheEntry(path: String, problem: String)

    public var errorDescription: String? { description }

    public var description: String {
        switch self {
        case let .unknownArtifact(reference, suggestions):
            let hint = suggestions.isEmpty ? "; `tlhub list` shows every name" : "; did you mean \(suggestions.joined(separator: ", "))?"
            return "unknown artifact '\(reference)'\(hint)"
        case let .ambiguousReference(reference, candidates):
            return "'\(reference)' matches \(candidates.joined(separator: ", ")); prefix the source, e.g. \(candidates[0])"
        case let .invalidReference(reference):
            return "'\(reference)' is neither [source:]name[:variant] nor an http(s)/file URL"
        case let .invalidManifest(path, problem):
            return "manifest \(path): \(problem)"
        case let .httpStatus(url, status):
            let reason = Self.statusReasons[status].map { " \($0)" } ?? ""
            return "HTTP \(status)\(reason) from \(url)"
        case let .timedOut(url, detail):
            return "timed out downloading \(url): \(detail)"
        case let .hostNotFound(url):
            return "cannot resolve the host of \(url) (no network or DNS failure; try --offline or --mirror)"
        case let .fileNotFound(url):
            return "no such file: \(url)"
        case let .transferFailed(url, detail):
            return "download of \(url) failed: \(detail)"
        case let .hashMismatch(name, algorithm, expected, actual):
            return "\(name): \(algorithm) mismatch: expected \(expected), got \(actual); the download was discarded"
        case let .sizeMismatch(name, expected, actual):
            return "\(name): expected \(expected) bytes, got \(actual)"
        case let .diskFull(path):
            return "disk full while writing \(path); the partial file was removed"
        case let .notEnoughSpace(path, needed, available):
            return "not enough space for \(path): need \(ByteCount.format(needed)), \(ByteCount.format(available)) free"
        case let .fileSystem(path, problem):
            return "\(path): \(problem)"
        case let .offlineAndMissing(name, url, path):
            return "offline: \(name) is not in the cache (would download \(url) to \(path))"
        case let .corruptCacheEntry(path, problem):
            return "corrupt cache entry \(path): \(problem)"
        }
    }

    private static let statusReasons: [Int: String] = [
        400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 408: "Request Timeout",
        410: "Gone", 416: "Range Not Satisfiable", 429: "Too Many Requests", 500: "Internal Server Error",
        502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout",
    ]

    /// Whether trying again may succeed (server errors, timeouts, dropped connections).
    var isTransient: Bool {
        switch self {
        case let .httpStatus(_, status): return status >= 500 || status == 408 || status == 429
        case .timedOut, .transferFailed: return true
        default: return false
        }
    }
}

/// Human-readable byte counts (`12.3 MB`), decimal units as download tools print them.
public enum ByteCount {
    /// Formats `bytes` with one decimal and a decimal unit.
    public static func format(_ bytes: Int64) -> String {
        let units = ["B", "kB", "MB", "GB", "TB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1000, unit < units.count - 1 {
            value /= 1000
            unit += 1
        }
        return unit == 0 ? "\(bytes) B" : "\(String(format: "%.1f", value)) \(units[unit])"
    }
}
