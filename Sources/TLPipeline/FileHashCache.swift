import Crypto
import Foundation
import TLFormats
import TLTensor

/// Facts about local weight files — their SHA-256, and that they passed the HDF5 crash probe —
/// remembered in the cache directory (`hashes/`) against the file's identity: device, inode,
/// size, modification and change times in nanoseconds, the way git's index and ccache recognise
/// an unchanged file. A warm `finetune` then reads its base once instead of three times; any
/// write to the file changes its change time, so nothing stale is used. Records that cannot be
/// written (a read-only cache) are skipped.
struct FileHashCache {
    let directory: URL

    private struct Record: Codable, Equatable {
        var path: String
        var device: UInt64, inode: UInt64, size: Int64
        var modified: Int64, changed: Int64
        var sha256: String?
        /// The file opened after passing `HDF5Library.probe` (or holds no HDF5 to probe).
        var probed: Bool?

        /// The identity alone, for comparing records.
        var identity: Record {
            var bare = self
            bare.sha256 = nil
            bare.probed = nil
            return bare
        }
    }

    /// The file's SHA-256: remembered when its identity is unchanged, otherwise computed (by
    /// `compute`) and remembered.
    func sha256(of file: URL, compute: (URL) throws -> String) throws -> String {
        if let hash = saved(file)?.sha256 { return hash }
        let hash = try compute(file)
        update(file) { $0.sha256 = hash }
        return hash
    }

    /// Whether the unchanged file was opened before, after passing the HDF5 crash probe.
    func passedProbe(_ file: URL) -> Bool { saved(file)?.probed == true }

    /// Remembers that `file`, as it is now, opened after passing the probe.
    func rememberProbePassed(_ file: URL) { update(file) { $0.probed = true } }

    /// The record of `file` if it still describes the file as it is.
    private func saved(_ file: URL) -> Record? {
        guard let identity = Self.identity(of: file),
              let data = try? Data(contentsOf: record(for: identity)),
              let saved = try? JSONDecoder().decode(Record.self, from: data), saved.identity == identity else { return nil }
        return saved
    }

    /// Writes `file`'s record after `change`, keeping what the current record knows.
    private func update(_ file: URL, _ change: (inout Record) -> Void) {
        guard let identity = Self.identity(of: file) else { return }
        var fresh = saved(file) ?? identity
        change(&fresh)
        guard let data = try? JSONEncoder().encode(fresh) else { return }
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try? AtomicFile.write([(url: record(for: identity), data: data)])
    }

    private func record(for identity: Record) -> URL { directory.appendingPathComponent(Self.recordName(for: identity.path)) }

    private static func identity(of file: URL) -> Record? {
        let path = file.standardizedFileURL.resolvingSymlinksInPath().path
        var status = stat()
        guard stat(path, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG else { return nil }
        func nanoseconds(_ time: timespec) -> Int64 { Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec) }
        return Record(path: path, device: UInt64(status.st_dev), inode: UInt64(status.st_ino), size: Int64(status.st_size),
                      modified: nanoseconds(status.st_mtim), changed: nanoseconds(status.st_ctim), sha256: nil, probed: nil)
    }

    /// One record per absolute path.
    static func recordName(for path: String) -> String {
        SHA256.hash(data: Data(path.utf8)).prefix(16).map { String(format: "%02x", $0) }.joined() + ".json"
    }
}
