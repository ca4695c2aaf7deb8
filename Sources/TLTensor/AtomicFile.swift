import Foundation

/// Writes a file so that the final path only ever holds a complete file: the bytes go to a
/// temporary sibling (`.<name>.<pid>-<random>.tmp`), are flushed to disk, and are renamed over
/// `url`. On any error the temporary file is removed and nothing is left at `url`.
///
/// Temporaries are registered while they exist, so a command interrupted by SIGINT/SIGTERM can
/// remove them (``removeRegisteredTemporaries()``, async-signal-safe). One left by SIGKILL names
/// its process: ``removeStaleTemporaries(beside:)`` deletes those whose process is gone.
public enum AtomicFile {
    /// Runs `body` with a handle to a temporary file next to `url`, then renames it to `url`.
    /// - Throws: whatever `body` throws, or a ``TensorFileError`` when the file cannot be created
    ///   or renamed.
    public static func write<T>(to url: URL, _ body: (FileHandle, URL) throws -> T) throws -> T {
        let pending = try PendingFile(destination: url)
        do {
            let result = try pending.fill(body)
            try pending.commit()
            return result
        } catch {
            pending.discard()
            throw error
        }
    }

    /// Writes several files that belong together (an output and its list of rows): all are
    /// written and flushed first, then renamed in order; if anything fails before the renames,
    /// none appears.
    /// - Parameter files: destination and bytes of each file; the last is renamed last.
    /// - Throws: ``TensorFileError`` naming the file that could not be written.
    public static func write(_ files: [(url: URL, data: Data)]) throws {
        var pending: [PendingFile] = []
        do {
            for file in files {
                let item = try PendingFile(destination: file.url)
                pending.append(item)
                try item.fill { handle, _ in try handle.write(contentsOf: file.data) }
            }
            for item in pending { try item.commit() }
        } catch {
            for item in pending { item.discard() }
            throw error
        }
    }

    /// Whether `name` is one of AtomicFile's temporary names.
    public static func isTemporaryName(_ name: String) -> Bool {
        name.hasPrefix(".") && name.hasSuffix(".tmp")
    }

    /// Removes temporaries beside `url` (for any output in its folder) whose writing process no
    /// longer runs: what a SIGKILL left behind.
    /// - Returns: the removed files.
    @discardableResult
    public static func removeStaleTemporaries(in directory: URL) -> [URL] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        var removed: [URL] = []
        for name in names where isTemporaryName(name) {
            guard let pid = writerProcess(ofTemporary: name), pid != getpid(), kill(pid, 0) != 0, errno == ESRCH else { continue }
            let url = directory.appendingPathComponent(name)
            if (try? FileManager.default.removeItem(at: url)) != nil { removed.append(url) }
        }
        return removed
    }

    /// The PID in `.<name>.<pid>-<random>.tmp`, nil for names without one.
    static func writerProcess(ofTemporary name: String) -> pid_t? {
        guard isTemporaryName(name) else { return nil }
        let core = name.dropLast(4)
        guard let dot = core.lastIndex(of: ".") else { return nil }
        let tag = core[core.index(after: dot)...]
        guard let dash = tag.firstIndex(of: "-"), let pid = Int32(tag[..<dash]), pid > 0 else { return nil }
        return pid
    }

    // MARK: - Registry for signal handlers

    /// Makes ``removeRegisteredTemporaries()`` ready for use in a signal handler.
    public static func prepareForSignals() { Registry.prepare() }

    /// Removes every registered temporary. Safe to call from a signal handler: it only reads a
    /// fixed table of C strings and calls `unlink`.
    public static func removeRegisteredTemporaries() {
        guard Registry.isReady else { return }
        for slot in 0..<Registry.capacity {
            if let path = Registry.slots[slot] { unlink(path) }
        }
    }

    /// Removes the registered temporaries under `directory` only (for tests, which must not
    /// touch other writes in flight in the same process).
    public static func removeRegisteredTemporaries(under directory: URL) {
        guard Registry.isReady else { return }
        let prefix = directory.path.hasSuffix("/") ? directory.path : directory.path + "/"
        for slot in 0..<Registry.capacity {
            if let path = Registry.slots[slot], String(cString: path).hasPrefix(prefix) { unlink(path) }
        }
    }
}

/// A temporary file on its way to `destination`.
final class PendingFile {
    let destination: URL
    let temporary: URL
    private var slot: Int?
    private var handle: FileHandle?

    init(destination: URL) throws {
        self.destination = destination
        let directory = destination.deletingLastPathComponent()
        temporary = directory.appendingPathComponent(
            ".\(destination.lastPathComponent).\(getpid())-\(UInt32.random(in: 0...UInt32.max)).tmp")
        slot = Registry.register(temporary.path)
        // One open(2), not FileManager.createFile: that writes atomically through a
        // `.dat.nosync…` file of its own and renames it, which a signal can interrupt midway,
        // leaving a file no sweep recognizes.
        let descriptor = open(temporary.path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            let reason = String(cString: strerror(errno))
            Registry.unregister(slot)
            throw TensorFileError(path: destination.path, problem: "cannot create a file in \(directory.path) (\(reason))")
        }
        close(descriptor)
    }

    /// Runs `body` on the open temporary file, then flushes and closes it.
    func fill<T>(_ body: (FileHandle, URL) throws -> T) throws -> T {
        let handle = try FileHandle(forWritingTo: temporary)
        do {
            let result = try body(handle, temporary)
            try handle.synchronize()
            try handle.close()
            return result
        } catch {
            try? handle.close()
            throw TensorFileError.wrapping(error, path: destination.path)
        }
    }

    /// Renames the finished temporary over the destination.
    func commit() throws {
        defer { Registry.unregister(slot); slot = nil }
        if rename(temporary.path, destination.path) != 0 {
            let reason = String(cString: strerror(errno))
            unlink(temporary.path)
            throw TensorFileError(path: destination.path, problem: "cannot rename into place: \(reason)")
        }
    }

    /// Removes the temporary (when not yet renamed).
    func discard() {
        guard slot != nil else { return }
        unlink(temporary.path)
        Registry.unregister(slot)
        slot = nil
    }
}

/// A fixed table of the temporaries being written, readable from a signal handler.
enum Registry {
    static let capacity = 64
    /// One malloc'ed C string (or nil) per slot: pointer-sized stores a signal handler can read.
    nonisolated(unsafe) static let slots: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?> = {
        let table = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: capacity)
        table.initialize(repeating: nil, count: capacity)
        return table
    }()
    private static let lock = NSLock()
    /// Set once `slots` exists, so a signal handler never triggers its lazy initialisation.
    nonisolated(unsafe) static var isReady = false

    /// Creates the table (call before installing a signal handler).
    static func prepare() {
        _ = slots
        isReady = true
    }

    static func register(_ path: String) -> Int? {
        prepare()
        lock.lock()
        defer { lock.unlock() }
        for slot in 0..<capacity where slots[slot] == nil {
            slots[slot] = strdup(path)
            return slot
        }
        return nil
    }

    static func unregister(_ slot: Int?) {
        guard let slot else { return }
        lock.lock()
        defer { lock.unlock() }
        // The string is not freed: a signal handler may be reading it right now. A few bytes per
        // written file is the price of never touching freed memory there.
        slots[slot] = nil
    }
}

extension TensorFileError {
    /// `error` itself when it already names a file, else a TensorFileError naming `path`.
    static func wrapping(_ error: Error, path: String) -> Error {
        if error is TensorFileError { return error }
        let nsError = error as NSError
        if nsError.domain == NSCocoaErrorDomain || nsError.domain == NSPOSIXErrorDomain {
            let underlying = (nsError.userInfo[NSUnderlyingErrorKey] as? NSError)?.localizedDescription
            return TensorFileError(path: path, problem: "cannot write: \(underlying ?? nsError.localizedDescription)")
        }
        return error
    }
}
