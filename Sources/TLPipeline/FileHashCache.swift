import Crypto
import Foundation
import TLFormats
import TLTensor

/// SHA-256 of local weight files, remembered in the cache directory (`hashes/`) against the
/// file's identity — device, inode, size, modification and change times in nanoseconds — the
/// way git's index and ccache recognise an unchanged file. A warm `finetune` on a 14 MB base
/// then reads no weight file twice; any write to the file changes its change time, so a stale
/// hash is never used. Records that cannot be written (a read-only cache) are skipped.
struct FileHashCache {
    let directory: URL

    private struct Record: Codable, Equatable {
        var path: String
        var device: UInt64, inode: UInt64, size: Int64
        var modified: Int64, changed: Int64
        var sha256: String?
    }

    /// The file's SHA-256: remembered when its identity is unchanged, otherwise computed (by
    /// `compute`) and remembered.
    func sha256(of file: URL, compute: (URL) throws -> String) throws -> String {
        guard let identity = Self.identity(of: file) else { return try compute(file) }
        let record = directory.appendingPathComponent(Self.recordName(for: identity.path))
        if let data = try? Data(contentsOf: record), let saved = try? JSONDecoder().decode(Record.self, from: data),
           let hash = saved.sha256 {
            var unhashed = saved
            unhashed.sha256 = nil
            if unhashed == identity { return hash }
        }
        let hash = try compute(file)
        var fresh = identity
        fresh.sha256 = hash
        if let data = try? JSONEncoder().encode(fresh) {
            try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try? AtomicFile.write([(url: record, data: data)])
        }
        return hash
    }

    private static func identity(of file: URL) -> Record? {
        let path = file.standardizedFileURL.resolvingSymlinksInPath().path
        var status = stat()
        guard stat(path, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG else { return nil }
        func nanoseconds(_ time: timespec) -> Int64 { Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec) }
        return Record(path: path, device: UInt64(status.st_dev), inode: UInt64(status.st_ino), size: Int64(status.st_size),
                      modified: nanoseconds(status.st_mtim), changed: nanoseconds(status.st_ctim), sha256: nil)
    }

    /// One record per absolute path.
    static func recordName(for path: String) -> String {
        SHA256.hash(data: Data(path.utf8)).prefix(16).map { String(format: "%02x", $0) }.joined() + ".json"
    }
}
