import Foundation

/// An exclusive advisory lock on a file (`flock`), shared across processes and across separate
/// opens within one process. The kernel drops it when the holder exits or crashes, so there are
/// no stale locks to clean up. Released when the object is deallocated or ``unlock()`` is called.
final class FileLock {
    private var descriptor: Int32
    let path: String

    private init(descriptor: Int32, path: String) {
        self.descriptor = descriptor
        self.path = path
    }

    deinit { unlock() }

    /// Releases the lock (idempotent).
    func unlock() {
        if descriptor >= 0 {
            flock(descriptor, LOCK_UN)
            close(descriptor)
            descriptor = -1
        }
    }

    /// Tries once to take the lock; nil when another holder has it.
    /// - Throws: ``HubError/fileSystem(path:problem:)`` when the lock file cannot be opened.
    static func tryAcquire(path: String) throws -> FileLock? {
        while true {
            let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            guard descriptor >= 0 else {
                throw HubError.fileSystem(path: path, problem: "cannot open lock file: \(errnoText())")
            }
            if flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
                let code = errno
                close(descriptor)
                if code == EWOULDBLOCK || code == EINTR { return nil }
                throw HubError.fileSystem(path: path, problem: "flock failed: \(errnoText(code))")
            }
            // `cache prune` may have unlinked the lock file between our open and flock; a lock on
            // an unlinked inode excludes nobody, so take it again on the current file.
            var opened = stat()
            var current = stat()
            if fstat(descriptor, &opened) == 0, stat(path, &current) == 0,
               opened.st_ino == current.st_ino, opened.st_dev == current.st_dev {
                return FileLock(descriptor: descriptor, path: path)
            }
            close(descriptor)
        }
    }

    /// Waits (polling, without blocking a thread) until the lock is free, then takes it.
    /// - Parameter waiting: called once if the lock is held by someone else.
    static func acquire(path: String, waiting: (() -> Void)? = nil) async throws -> FileLock {
        var told = false
        while true {
            if let lock = try tryAcquire(path: path) { return lock }
            if !told {
                waiting?()
                told = true
            }
            try await Task.sleep(nanoseconds: 20_000_000)
        }
    }
}
