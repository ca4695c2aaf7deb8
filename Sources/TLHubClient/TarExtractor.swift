import Foundation

/// Extracts `.tar.gz` archives (TF Hub's compressed SavedModels) safely: only regular files and
/// directories, no absolute paths, no `..`, no links or devices, a cap on the total size. The
/// result appears atomically: entries go to a hidden sibling directory renamed into place at the end.
public enum TarExtractor {
    /// Extracts `archive` into `destination` (which must not exist yet).
    /// - Parameter maxTotalBytes: refuse archives that unpack to more than this.
    /// - Returns: the relative paths of the extracted files.
    /// - Throws: ``ArchiveError`` naming the entry that was refused, or the damage found.
    @discardableResult
    public static func extractTarGz(_ archive: URL, into destination: URL, maxTotalBytes: Int64 = 16 << 30) throws -> [String] {
        let fileManager = FileManager.default
        let staging = destination.deletingLastPathComponent()
            .appendingPathComponent(".\(destination.lastPathComponent).\(UInt32.random(in: 0...UInt32.max)).extracting")
        do {
            try fileManager.createDirectory(at: staging, withIntermediateDirectories: true)
        } catch {
            throw ArchiveError(path: archive.path, problem: "cannot create \(staging.path)")
        }
        do {
            let files = try extract(archive, into: staging, maxTotalBytes: maxTotalBytes)
            if rename(staging.path, destination.path) != 0 {
                throw ArchiveError(path: archive.path, problem: "cannot rename into \(destination.path): \(errnoText())")
            }
            return files
        } catch {
            try? fileManager.removeItem(at: staging)
            throw error
        }
    }

    private static func extract(_ archive: URL, into root: URL, maxTotalBytes: Int64) throws -> [String] {
        let reader = try GzipReader(path: archive.path)
        let block = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { block.deallocate() }
        var files: [String] = []
        var total: Int64 = 0
        var longName: String?
        var paxPath: String?
        let fail = { (problem: String) in ArchiveError(path: archive.path, problem: problem) }

        while true {
            let got = try reader.read(into: UnsafeMutableRawBufferPointer(rebasing: block[0..<512]))
            if got == 0 { break }  // end of stream without the zero blocks: tolerated
            guard got == 512 else { throw fail("truncated tar header") }
            let header = UnsafeRawBufferPointer(rebasing: block[0..<512])
            if header.allSatisfy({ $0 == 0 }) { break }
            guard checksumMatches(header) else { throw fail("bad tar header checksum (not a tar archive, or damaged)") }
            let size = try octal(header, 124, 12, archive: archive)
            let type = header[156]
            let padded = (size + 511) / 512 * 512
            var name = longName ?? paxPath ?? entryName(header)
            longName = nil
            paxPath = nil

            switch type {
            case UInt8(ascii: "L"), UInt8(ascii: "x"):
                guard size <= 1 << 20 else { throw fail("oversized extended header") }
                try reader.readExactly(Int(padded), into: block)
                let text = String(decoding: UnsafeRawBufferPointer(rebasing: block[0..<Int(size)]), as: UTF8.self)
                if type == UInt8(ascii: "L") {
                    longName = text.trimmingCharacters(in: CharacterSet(charactersIn: "\0"))
                } else {
                    paxPath = paxValue(text, key: "path")
                }
                continue
            case UInt8(ascii: "g"):
                try skip(reader, Int64(padded), block)
                continue
            case 0, UInt8(ascii: "0"), UInt8(ascii: "7"), UInt8(ascii: "5"):
                break
            default:
                let kind = [UInt8(ascii: "1"): "hard link", UInt8(ascii: "2"): "symbolic link", UInt8(ascii: "3"): "character device",
                            UInt8(ascii: "4"): "block device", UInt8(ascii: "6"): "FIFO"][type] ?? "entry of type \(type)"
                throw fail("refusing \(kind) '\(name)'")
            }
            while name.hasPrefix("./") { name.removeFirst(2) }
            if name == "." || name.isEmpty {
                try skip(reader, Int64(padded), block)
                continue
            }
            let components = name.split(separator: "/", omittingEmptySubsequences: true)
            if name.hasPrefix("/") || components.contains("..") || name.contains("\0") {
                throw fail("refusing unsafe path '\(name)'")
            }
            let target = components.reduce(root) { $0.appendingPathComponent(String($1)) }
            if type == UInt8(ascii: "5") {
                try createDirectory(target, archive: archive)
                try skip(reader, Int64(padded), block)
                continue
            }
            total += size
            if total > maxTotalBytes {
                throw fail("unpacks to more than \(ByteCount.format(maxTotalBytes)); refusing")
            }
            try createDirectory(target.deletingLastPathComponent(), archive: archive)
            try writeFile(target, size: size, padded: padded, reader: reader, block: block, archive: archive)
            files.append(components.joined(separator: "/"))
        }
        return files
    }

    private static func writeFile(_ target: URL, size: Int64, padded: Int64, reader: GzipReader,
                                  block: UnsafeMutableRawBufferPointer, archive: URL) throws {
        let descriptor = open(target.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard descriptor >= 0 else {
            throw ArchiveError(path: archive.path, problem: "cannot create \(target.lastPathComponent) (duplicate entry?): \(errnoText())")
        }
        defer { close(descriptor) }
        guard let base = block.baseAddress else { return }
        var remaining = padded
        var toWrite = size
        while remaining > 0 {
            let chunk = Int(min(remaining, Int64(block.count)))
            try reader.readExactly(chunk, into: block)
            let useful = Int(min(toWrite, Int64(chunk)))
            var offset = 0
            while offset < useful {
                let written = write(descriptor, base + offset, useful - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw ArchiveError(path: archive.path, problem: "writing \(target.path): \(errnoText())")
                }
                offset += written
            }
            remaining -= Int64(chunk)
            toWrite -= Int64(useful)
        }
        if fsync(descriptor) != 0 {
            throw ArchiveError(path: archive.path, problem: "writing \(target.path): \(errnoText())")
        }
    }

    private static func createDirectory(_ url: URL, archive: URL) throws {
        do {
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        } catch {
            throw ArchiveError(path: archive.path, problem: "cannot create directory \(url.path)")
        }
    }

    private static func skip(_ reader: GzipReader, _ count: Int64, _ block: UnsafeMutableRawBufferPointer) throws {
        var remaining = count
        while remaining > 0 {
            let chunk = Int(min(remaining, Int64(block.count)))
            try reader.readExactly(chunk, into: block)
            remaining -= Int64(chunk)
        }
    }

    private static func entryName(_ header: UnsafeRawBufferPointer) -> String {
        let name = field(header, 0, 100)
        let prefix = field(header, 345, 155)  // ustar prefix
        let isUstar = String(decoding: header[257..<262], as: UTF8.self) == "ustar"
        return isUstar && !prefix.isEmpty ? prefix + "/" + name : name
    }

    private static func field(_ header: UnsafeRawBufferPointer, _ offset: Int, _ length: Int) -> String {
        let bytes = header[offset..<(offset + length)]
        let end = bytes.firstIndex(of: 0) ?? bytes.endIndex
        return String(decoding: header[offset..<end], as: UTF8.self)
    }

    private static func octal(_ header: UnsafeRawBufferPointer, _ offset: Int, _ length: Int, archive: URL) throws -> Int64 {
        if header[offset] & 0x80 != 0 {  // GNU base-256 for sizes ≥ 8 GiB
            var value: Int64 = 0
            for index in (offset + 1)..<(offset + length) { value = value << 8 | Int64(header[index]) }
            return value
        }
        let text = field(header, offset, length).trimmingCharacters(in: .whitespaces)
        guard let value = Int64(text.isEmpty ? "0" : text, radix: 8), value >= 0 else {
            throw ArchiveError(path: archive.path, problem: "bad size field '\(text)' in tar header")
        }
        return value
    }

    private static func checksumMatches(_ header: UnsafeRawBufferPointer) -> Bool {
        var sum = 0
        for (index, byte) in header.enumerated() { sum += (148..<156).contains(index) ? 32 : Int(byte) }
        let text = field(header, 148, 8).trimmingCharacters(in: .whitespaces)
        return Int(text, radix: 8) == sum
    }

    private static func paxValue(_ text: String, key: String) -> String? {
        for line in text.split(separator: "\n") {
            guard let space = line.firstIndex(of: " ") else { continue }
            let record = line[line.index(after: space)...]
            if record.hasPrefix(key + "=") { return String(record.dropFirst(key.count + 1)) }
        }
        return nil
    }
}
