import CZlibInflate
import Foundation
import ZIPFoundation

/// Reads a Keras 3 `.keras` archive (a zip of `config.json`, `metadata.json` and
/// `model.weights.h5`) without unpacking it to disk: the weights are extracted into memory and
/// opened as an HDF5 file image.
enum KerasArchiveReader {
    /// The largest member tlhub extracts to memory (a corrupt directory must not make it
    /// allocate without bound).
    static let maximumMemberSize: UInt64 = 16 << 30

    static func open(_ url: URL, probe: Bool = true) throws -> WeightFile {
        let path = url.path
        let archive: Archive
        do {
            archive = try Archive(url: url, accessMode: .read)
        } catch {
            throw FormatError(path: path, problem: "not a readable zip archive (\(error))")
        }
        func member(_ name: String) throws -> Data? {
            guard let entry = archive[name] else { return nil }
            var status = stat()  // follows symbolic links, unlike attributesOfItem
            let fileSize = stat(path, &status) == 0 ? UInt64(status.st_size) : 0
            // Stored (uncompressed) members cannot exceed the archive; deflate rarely beats 1000:1.
            guard entry.uncompressedSize <= min(maximumMemberSize, fileSize &* 1000) else {
                throw FormatError(path: path, problem: "member \(name) declares an implausible size of \(entry.uncompressedSize) bytes")
            }
            var data = Data()
            data.reserveCapacity(Int(entry.uncompressedSize))
            // The CRC is zlib's (several times faster than ZIPFoundation's table loop, which was
            // most of a warm `finetune`'s time on a 14 MB base).
            var checksum = crc32(0, nil, 0)
            do {
                _ = try archive.extract(entry, bufferSize: 1 << 20, skipCRC32: true) { chunk in
                    guard UInt64(data.count + chunk.count) <= entry.uncompressedSize else {
                        throw FormatError(path: path, problem: "member \(name) is longer than declared")
                    }
                    checksum = chunk.withUnsafeBytes { crc32(checksum, $0.bindMemory(to: Bytef.self).baseAddress, uInt($0.count)) }
                    data.append(chunk)
                }
            } catch let error as FormatError {
                throw error
            } catch {
                throw FormatError(path: path, problem: "cannot extract \(name): \(error)")
            }
            guard UInt32(checksum) == entry.checksum else {
                throw FormatError(path: path, problem: "member \(name) is corrupt (CRC-32 mismatch)")
            }
            return data
        }
        guard let weights = try member("model.weights.h5") else {
            if archive["model.weights.json"] != nil {
                throw FormatError(path: path, problem: "sharded .keras weights (model.weights.json) are not supported")
            }
            throw FormatError(path: path, problem: "no model.weights.h5 in the archive")
        }
        let config = try member("config.json").map { String(decoding: $0, as: UTF8.self) }
        var kerasVersion: String?
        if let metadata = try member("metadata.json"),
           let object = try? JSONSerialization.jsonObject(with: metadata) as? [String: Any] {
            kerasVersion = object["keras_version"] as? String
        }
        let file = try HDF5File.open(image: weights, name: "\(path)!model.weights.h5", probe: probe)
        return try KerasH5Reader.open(file, url: url, archive: (config, kerasVersion))
    }
}
