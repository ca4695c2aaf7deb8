import Foundation

/// The metadata JSON stored beside each cached file (`<file>.tlhub.json`).
public struct CacheRecord: Codable, Sendable, Equatable {
    /// Fully qualified name (`keras:mobilenet_v2_100_224:notop`).
    public var name: String
    /// The published URL.
    public var url: String
    /// Where it was actually fetched from (differs with a mirror).
    public var fetchedFrom: String
    /// Bytes.
    public var size: Int64
    /// SHA-256 of the file, always recorded; the check for files published without a hash.
    public var sha256: String
    /// The published hash, when there is one.
    public var publishedHash: PublishedHash?
    /// The server's ETag, when it sent one.
    public var etag: String?
    /// When the download finished (ISO 8601).
    public var downloadedAt: String

    enum CodingKeys: String, CodingKey {
        case name, url, size, sha256, etag
        case fetchedFrom = "fetched_from"
        case publishedHash = "published_hash"
        case downloadedAt = "downloaded_at"
    }
}

/// What the next pull needs to resume a partial download (`<file>.incomplete.json`).
struct PartialRecord: Codable {
    /// The URL the partial bytes came from; a different URL means starting over.
    var url: String
    /// File name of the partial file in the same directory (`<file>.<random>.incomplete`).
    var partialFile: String
    /// ETag of the response the bytes came from.
    var etag: String?
}

/// Paths of one artifact in the cache: `<cache>/<source>/<file name>` plus its siblings.
public struct CachePaths: Sendable {
    /// `<cache>/<source>`.
    public var directory: URL
    /// The complete file; only ever present when complete and verified.
    public var file: URL
    /// The metadata JSON.
    public var record: URL { directory.appendingPathComponent(file.lastPathComponent + ".tlhub.json") }
    /// The lock file (held while downloading).
    public var lock: URL { directory.appendingPathComponent(file.lastPathComponent + ".lock") }
    /// The resume record of a partial download.
    public var partialRecord: URL { directory.appendingPathComponent(file.lastPathComponent + ".incomplete.json") }

    /// A new partial file name: `<file>.<random>.incomplete`.
    func newPartialFile() -> URL {
        directory.appendingPathComponent("\(file.lastPathComponent).\(String(UInt64.random(in: 0...UInt64.max), radix: 36)).incomplete")
    }
}
