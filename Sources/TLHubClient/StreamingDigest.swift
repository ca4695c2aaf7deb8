import Crypto
import Foundation

/// SHA-256 (always) and MD5 (when a published hash needs it) of a byte stream, updated as the
/// bytes arrive so a download is hashed without reading the file again.
struct StreamingDigest {
    private var sha256 = SHA256()
    private var md5: Insecure.MD5?

    init(includeMD5: Bool) {
        md5 = includeMD5 ? Insecure.MD5() : nil
    }

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        sha256.update(bufferPointer: bytes)
        md5?.update(bufferPointer: bytes)
    }

    /// Hex digests: `sha256` always, `md5` when requested.
    func finalize() -> (sha256: String, md5: String?) {
        (Self.hex(sha256.finalize()), md5.map { Self.hex($0.finalize()) })
    }

    static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        digest.map { String(format: "%02x", $0) }.joined()
    }

    /// Hashes the file at `path` from `offset` 0 to its end in 1 MiB reads.
    /// - Throws: ``HubError/fileSystem(path:problem:)`` when it cannot be read.
    static func hashFile(at path: String, includeMD5: Bool) throws -> (digest: StreamingDigest, size: Int64) {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw HubError.fileSystem(path: path, problem: "cannot open: \(errnoText())") }
        defer { close(descriptor) }
        var digest = StreamingDigest(includeMD5: includeMD5)
        var size: Int64 = 0
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let count = read(descriptor, buffer.baseAddress, buffer.count)
            if count < 0 {
                if errno == EINTR { continue }
                throw HubError.fileSystem(path: path, problem: "read failed: \(errnoText())")
            }
            if count == 0 { break }
            digest.update(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
            size += Int64(count)
        }
        return (digest, size)
    }
}

/// The text of the current `errno`.
func errnoText(_ code: Int32 = errno) -> String {
    String(cString: strerror(code))
}

/// A ``StreamingDigest`` fed on a background queue, so hashing a download overlaps with receiving
/// and writing it. At most `depth` chunks wait in line; ``finalize()`` waits for all of them.
final class BackgroundDigest: @unchecked Sendable {
    private let queue = DispatchQueue(label: "tlhub.digest")
    private let slots: DispatchSemaphore
    // Touched only on `queue`.
    private var digest: StreamingDigest
    private let includeMD5: Bool

    init(_ digest: StreamingDigest, includeMD5: Bool, depth: Int = 16) {
        self.digest = digest
        self.includeMD5 = includeMD5
        slots = DispatchSemaphore(value: depth)
    }

    /// Queues a copy of `bytes` for hashing.
    func update(_ bytes: UnsafeRawBufferPointer) {
        let copy = [UInt8](bytes)
        slots.wait()
        queue.async {
            copy.withUnsafeBytes { self.digest.update($0) }
            self.slots.signal()
        }
    }

    /// Drops everything hashed so far (a download that starts over).
    func reset() {
        queue.sync { digest = StreamingDigest(includeMD5: includeMD5) }
    }

    /// The digests of every byte queued so far.
    func finalize() -> (sha256: String, md5: String?) {
        queue.sync { digest.finalize() }
    }
}
