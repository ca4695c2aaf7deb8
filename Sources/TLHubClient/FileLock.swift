import Foundation

/// An exclusive lock on a cache entry that holds across processes and across hosts sharing the
/// cache on a network filesystem.
///
/// On one host, `flock` on `<file>.lock` (the kernel drops it if the holder dies). Across hosts,
/// where `flock` over NFS is not guaranteed, a claim file `<file>.lock.claim` made atomically with
/// `link(2)` (atomic on NFS, as huggingface_hub's and tensorflow_hub's locks rely on) holding
/// `host pid`. The holder refreshes the claim's modification time every 30 s; a claim whose
/// process is gone (same host) or that has not been refreshed for `TLHUB_LOCK_STALE` seconds
/// (default 600, another host) is stale and taken over. Released when the object is deallocated
/// or ``unlock()`` is called.
final class FileLock {
    private var descriptor: Int32
    let path: String
    private var heartbeat: DispatchSourceTimer?

    private init(descriptor: Int32, path: String) {
        self.descriptor = descriptor
        self.path = path
    }

    deinit { unlock() }

    /// Releases the lock (idempotent).
    func unlock() {
        if descriptor >= 0 {
            heartbeat?.cancel()
            heartbeat = nil
            if Claim.isOurs(Claim.path(for: path)) { unlink(Claim.path(for: path)) }
            flock(descriptor, LOCK_UN)
            close(descriptor)
            descriptor = -1
        }
    }

    /// Keeps the claim fresh while the lock is held.
    private func startHeartbeat() {
        let timer = DispatchSource.makeTimerSource(queue: DispatchQueue.global(qos: .utility))
        let claim = Claim.path(for: path)
        timer.schedule(deadline: .now() + Claim.refreshInterval, repeating: Claim.refreshInterval)
        timer.setEventHandler { utimes(claim, nil) }
        timer.resume()
        heartbeat = timer
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
                // This host's processes are excluded; now the other hosts.
                guard try Claim.take(Claim.path(for: path)) else {
                    flock(descriptor, LOCK_UN)
                    close(descriptor)
                    return nil
                }
                let lock = FileLock(descriptor: descriptor, path: path)
                lock.startHeartbeat()
                return lock
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

/// The cross-host half of ``FileLock``: `<lock>.claim`, created with `link(2)`.
enum Claim {
    static let refreshInterval: DispatchTimeInterval = .seconds(30)

    /// Seconds without a refresh after which another host's claim is stale.
    static var staleAfter: TimeInterval {
        ProcessInfo.processInfo.environment["TLHUB_LOCK_STALE"].flatMap(TimeInterval.init) ?? 600
    }

    static func path(for lock: String) -> String { lock + ".claim" }

    static var host: String { ProcessInfo.processInfo.hostName }

    /// This process's claim text.
    static var text: String { "\(host) \(getpid())\n" }

    /// Takes the claim when it is free or stale; false when another live holder has it.
    /// - Throws: ``HubError/fileSystem(path:problem:)`` when the claim cannot be written.
    static func take(_ claim: String) throws -> Bool {
        for _ in 0..<3 {
            let temporary = "\(claim).\(host).\(getpid()).\(UInt32.random(in: 0...UInt32.max))"
            guard FileManager.default.createFile(atPath: temporary, contents: Data(text.utf8)) else {
                throw HubError.fileSystem(path: claim, problem: "cannot write a lock claim: \(errnoText())")
            }
            defer { unlink(temporary) }
            // link(2) is atomic on NFS; when its reply is lost, the link count still tells.
            if link(temporary, claim) == 0 { return true }
            var status = stat()
            if stat(temporary, &status) == 0, status.st_nlink == 2 { return true }
            guard isStale(claim) else { return false }
            unlink(claim)
        }
        return false
    }

    /// Whether the claim at `claim` is this process's.
    static func isOurs(_ claim: String) -> Bool {
        (try? String(contentsOfFile: claim, encoding: .utf8)) == text
    }

    /// A claim whose process is gone (this host) or that has not been refreshed for
    /// ``staleAfter`` seconds (another host).
    static func isStale(_ claim: String) -> Bool {
        guard let contents = try? String(contentsOfFile: claim, encoding: .utf8) else { return true }
        let fields = contents.split(whereSeparator: \.isWhitespace)
        if fields.count == 2, fields[0] == host, let pid = Int32(fields[1]) {
            return pid != getpid() && kill(pid, 0) != 0 && errno == ESRCH
        }
        var status = stat()
        guard stat(claim, &status) == 0 else { return true }
        return Date().timeIntervalSince1970 - TimeInterval(status.st_mtim.tv_sec) > staleAfter
    }
}
