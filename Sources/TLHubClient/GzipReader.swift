import CZlibInflate
import Foundation

/// Reads a gzip file as a stream of decompressed bytes (zlib `inflate`), so an archive never has
/// to fit in memory. The zlib stream and the file are closed in `deinit`.
final class GzipReader {
    private let descriptor: Int32
    private let path: String
    private var stream = z_stream()
    private let input: UnsafeMutablePointer<UInt8>
    private let inputCapacity = 1 << 16
    private var finished = false

    /// - Throws: ``ArchiveError`` when the file cannot be opened.
    init(path: String) throws {
        self.path = path
        descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw ArchiveError(path: path, problem: "cannot open: \(errnoText())") }
        input = .allocate(capacity: inputCapacity)
        guard tl_inflate_init_gzip(&stream) == Z_OK else {
            close(descriptor)
            input.deallocate()
            throw ArchiveError(path: path, problem: "zlib failed to initialise")
        }
    }

    deinit {
        inflateEnd(&stream)
        close(descriptor)
        input.deallocate()
    }

    /// Fills `buffer` completely unless the stream ends first; returns the bytes written.
    /// - Throws: ``ArchiveError`` for corrupt or truncated data.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return 0 }
        var produced = 0
        while produced < buffer.count && !finished {
            if stream.avail_in == 0 {
                let count = Foundation.read(descriptor, input, inputCapacity)
                if count < 0 { throw ArchiveError(path: path, problem: "read failed: \(errnoText())") }
                if count == 0 { throw ArchiveError(path: path, problem: "truncated gzip data") }
                stream.next_in = input
                stream.avail_in = uInt(count)
            }
            stream.next_out = base.assumingMemoryBound(to: UInt8.self) + produced
            stream.avail_out = uInt(buffer.count - produced)
            let before = stream.avail_out
            let status = inflate(&stream, Z_NO_FLUSH)
            produced += Int(before - stream.avail_out)
            switch status {
            case Z_STREAM_END:
                finished = true
            case Z_OK, Z_BUF_ERROR:
                break
            default:
                let message = stream.msg.map { String(cString: $0) } ?? "error \(status)"
                throw ArchiveError(path: path, problem: "corrupt gzip data: \(message)")
            }
        }
        return produced
    }

    /// Reads exactly `count` bytes.
    /// - Throws: ``ArchiveError`` when the stream ends first.
    func readExactly(_ count: Int, into buffer: UnsafeMutableRawBufferPointer) throws {
        let got = try read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<count]))
        if got < count { throw ArchiveError(path: path, problem: "archive ends in the middle of an entry") }
    }
}

/// A refused or unreadable archive.
public struct ArchiveError: Error, LocalizedError, CustomStringConvertible, Equatable {
    /// The archive.
    public var path: String
    /// What is wrong (names the offending entry).
    public var problem: String

    public var description: String { "\(path): \(problem)" }
    public var errorDescription: String? { description }
}
