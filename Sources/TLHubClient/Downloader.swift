import CCurl
import Foundation

/// What a finished transfer produced.
struct DownloadOutcome {
    var sha256: String
    var md5: String?
    var size: Int64
    var etag: String?
}

/// Streams one URL into a partial file with libcurl: follows redirects, verifies TLS, honours the
/// proxy environment variables (libcurl's default), resumes with `Range` after a dropped
/// connection and starts over when the server ignores the range, retries transient failures with
/// exponential backoff, and hashes while writing.
struct Downloader {
    var policy: DownloadPolicy

    /// Downloads `url` into `partialPath`, continuing after the bytes already there.
    /// - Parameters:
    ///   - etag: the ETag recorded when the partial file was started; sent as `If-Range` so a
    ///     changed file restarts from zero.
    ///   - onResponse: called with the response's ETag before its first byte is written.
    ///   - onProgress: (bytes present, total when known), called from the transfer thread.
    ///   - onRetry: (attempt about to start, reason).
    /// - Throws: a ``HubError`` for the last failure; the partial file is kept for transient
    ///   failures (the next pull resumes it).
    func download(url: String, to partialPath: String, etag: String?, includeMD5: Bool,
                  onResponse: @escaping (String?) -> Void,
                  onProgress: @escaping (Int64, Int64?) -> Void,
                  onRetry: (Int, String) -> Void) throws -> DownloadOutcome {
        let descriptor = open(partialPath, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw HubError.fileSystem(path: partialPath, problem: "cannot create: \(errnoText())")
        }
        defer { close(descriptor) }
        // Bytes already on disk are hashed again: the digest state is not persisted.
        let existing = try StreamingDigest.hashFile(at: partialPath, includeMD5: includeMD5)
        let sink = TransferSink(descriptor: descriptor, path: partialPath, digest: existing.digest,
                                size: existing.size, etag: etag,
                                onResponse: onResponse, onProgress: onProgress)
        guard lseek(descriptor, 0, SEEK_END) >= 0 else {
            throw HubError.fileSystem(path: partialPath, problem: "seek failed: \(errnoText())")
        }
        var attempt = 1
        while true {
            do {
                try perform(url: url, sink: sink)
                break
            } catch let error as HubError where error.isTransient && attempt < policy.maxAttempts {
                onRetry(attempt + 1, error.description)
                Thread.sleep(forTimeInterval: policy.retryDelay * pow(2, Double(attempt - 1)))
                attempt += 1
            }
        }
        guard fsync(descriptor) == 0 else {
            let code = errno
            if code == ENOSPC { throw HubError.diskFull(path: partialPath) }
            throw HubError.fileSystem(path: partialPath, problem: "fsync failed: \(errnoText(code))")
        }
        let digest = sink.digest.finalize()
        return DownloadOutcome(sha256: digest.sha256, md5: digest.md5, size: sink.size, etag: sink.etag)
    }

    /// One request. Throws a transient ``HubError`` for failures worth retrying.
    private func perform(url: String, sink: TransferSink) throws {
        let curl = try CurlEasy(url: url)
        try curl.set(CURLOPT_FOLLOWLOCATION, 1)
        try curl.set(CURLOPT_MAXREDIRS, 10)
        try curl.set(CURLOPT_FAILONERROR, 1)
        try curl.set(CURLOPT_NOSIGNAL, 1)
        try curl.set(CURLOPT_CONNECTTIMEOUT_MS, Int(policy.connectTimeout * 1000))
        try curl.set(CURLOPT_LOW_SPEED_LIMIT, policy.lowSpeedLimit)
        try curl.set(CURLOPT_LOW_SPEED_TIME, policy.lowSpeedTime)
        try curl.set(CURLOPT_SSL_VERIFYPEER, policy.verifyTLS ? 1 : 0)
        try curl.set(CURLOPT_SSL_VERIFYHOST, policy.verifyTLS ? 2 : 0)
        try curl.set(CURLOPT_BUFFERSIZE, 512 * 1024)
        try curl.set(CURLOPT_USERAGENT, string: "tlhub/0.1 libcurl")
        try curl.set(CURLOPT_NOPROGRESS, 0)
        sink.prepareAttempt(curl: curl, stallTimeout: Double(policy.lowSpeedTime))
        if sink.size > 0 {
            try curl.set(CURLOPT_RANGE, string: "\(sink.size)-")
            if let etag = sink.etag { try curl.setHeaders(["If-Range: \(etag)"]) }
        }
        let context = Unmanaged.passUnretained(sink).toOpaque()
        try curl.set(CURLOPT_WRITEDATA, pointer: context)
        try curl.set(CURLOPT_HEADERDATA, pointer: context)
        try curl.set(CURLOPT_XFERINFODATA, pointer: context)
        _ = tl_curl_setopt_write_function(curl.handle) { data, size, count, context in
            guard let data, let context else { return 0 }
            return Unmanaged<TransferSink>.fromOpaque(context).takeUnretainedValue()
                .receive(UnsafeRawBufferPointer(start: data, count: size * count))
        }
        _ = tl_curl_setopt_header_function(curl.handle) { data, size, count, context in
            guard let data, let context else { return 0 }
            let line = String(decoding: UnsafeRawBufferPointer(start: data, count: size * count), as: UTF8.self)
            Unmanaged<TransferSink>.fromOpaque(context).takeUnretainedValue().header(line)
            return size * count
        }
        _ = tl_curl_setopt_xferinfo_function(curl.handle) { context, total, now, _, _ in
            guard let context else { return 0 }
            return Unmanaged<TransferSink>.fromOpaque(context).takeUnretainedValue()
                .progress(total: Int64(total), now: Int64(now)) ? 0 : 1
        }
        let code = withExtendedLifetime(sink) { curl.perform() }
        if let failure = sink.failure { throw failure }
        let status = curl.long(CURLINFO_RESPONSE_CODE)
        switch code {
        case CURLE_OK:
            return
        case CURLE_HTTP_RETURNED_ERROR:
            if status == 416, sink.size > 0, sink.unsatisfiableRangeTotal == sink.size {
                // Everything had arrived before the connection dropped: the hash check decides.
                return
            }
            if status == 416, sink.size > 0 {
                // The range starts at or past the end: the file changed or the partial file is
                // bogus. Start over (transiently, so the retry loop runs again).
                sink.restart()
                throw HubError.transferFailed(url: url, detail: "server rejected the resume range; starting over")
            }
            throw HubError.httpStatus(url: url, status: status)
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY:
            throw HubError.hostNotFound(url: url)
        case CURLE_OPERATION_TIMEDOUT:
            throw HubError.timedOut(url: url, detail: detail(curl, code))
        case CURLE_FILE_COULDNT_READ_FILE:
            throw HubError.fileNotFound(url: url)
        case CURLE_ABORTED_BY_CALLBACK:
            throw HubError.timedOut(url: url, detail: "no data for \(policy.lowSpeedTime) s")
        case CURLE_WRITE_ERROR:
            throw HubError.fileSystem(path: sink.path, problem: "write failed")
        default:
            throw HubError.transferFailed(url: url, detail: detail(curl, code))
        }
    }

    private func detail(_ curl: CurlEasy, _ code: CURLcode) -> String {
        let text = curl.errorText
        return text.isEmpty ? String(cString: curl_easy_strerror(code)) : text
    }
}

/// Receives libcurl's callbacks for one download: writes to the partial file, hashes, tracks
/// headers. Lives across attempts so resumed bytes keep counting.
final class TransferSink {
    let descriptor: Int32
    let path: String
    let digest: BackgroundDigest
    /// Bytes in the partial file.
    private(set) var size: Int64
    var etag: String?
    /// The first error raised inside a callback (curl only sees "write error").
    private(set) var failure: HubError?
    private let onProgress: (Int64, Int64?) -> Void
    private let onResponse: (String?) -> Void

    private weak var curl: CurlEasy?
    private var attemptStart: Int64 = 0
    private var firstWrite = true
    private var headerETag: String?
    /// `N` from `Content-Range: bytes */N` of a 416 answer.
    private(set) var unsatisfiableRangeTotal: Int64?
    private var stallTimeout: Double = 30
    private var lastDataTime = DispatchTime.now().uptimeNanoseconds
    private var lastDataCount: Int64 = -1

    init(descriptor: Int32, path: String, digest: StreamingDigest, size: Int64, etag: String?,
         onResponse: @escaping (String?) -> Void, onProgress: @escaping (Int64, Int64?) -> Void) {
        self.onResponse = onResponse
        self.descriptor = descriptor
        self.path = path
        self.digest = BackgroundDigest(digest, includeMD5: digest.finalize().md5 != nil)
        self.size = size
        self.etag = etag
        self.onProgress = onProgress
    }

    func prepareAttempt(curl: CurlEasy, stallTimeout: Double) {
        self.curl = curl
        self.stallTimeout = stallTimeout
        lastDataTime = DispatchTime.now().uptimeNanoseconds
        lastDataCount = -1
        unsatisfiableRangeTotal = nil
        attemptStart = size
        firstWrite = true
        failure = nil
        headerETag = nil
    }

    /// Empties the partial file so the next attempt starts from byte 0.
    func restart() {
        digest.reset()
        size = 0
        attemptStart = 0
        etag = nil
        if ftruncate(descriptor, 0) != 0 || lseek(descriptor, 0, SEEK_SET) < 0 {
            failure = .fileSystem(path: path, problem: "cannot truncate: \(errnoText())")
        }
    }

    func header(_ line: String) {
        let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.hasPrefix("HTTP/") {
            headerETag = nil  // a new response (after a redirect): forget the previous headers
            return
        }
        guard let colon = trimmed.firstIndex(of: ":") else { return }
        let value = trimmed[trimmed.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        switch trimmed[..<colon].lowercased() {
        case "etag":
            headerETag = value
        case "content-range" where value.hasPrefix("bytes */"):
            unsatisfiableRangeTotal = Int64(value.dropFirst(8))
        default:
            break
        }
    }

    func receive(_ bytes: UnsafeRawBufferPointer) -> Int {
        if firstWrite {
            firstWrite = false
            if curl != nil, !startBody() { return 0 }
        }
        guard let base = bytes.baseAddress else { return 0 }
        var offset = 0
        while offset < bytes.count {
            let written = write(descriptor, base + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                failure = errno == ENOSPC ? .diskFull(path: path)
                    : .fileSystem(path: path, problem: "write failed: \(errnoText())")
                return 0
            }
            offset += written
        }
        digest.update(bytes)
        size += Int64(bytes.count)
        return bytes.count
    }

    /// Called before the first body byte of an attempt: decides between appending (206, or a
    /// file:// range) and starting over (200 to a range request), and checks free space.
    private func startBody() -> Bool {
        guard let curl else { return false }
        let status = curl.long(CURLINFO_RESPONSE_CODE)
        if size > 0, status == 200 {
            restart()
            if failure != nil { return false }
        }
        if let headerETag { etag = headerETag }
        onResponse(etag)
        let remaining = curl.offset(CURLINFO_CONTENT_LENGTH_DOWNLOAD_T)
        if remaining > 0 {
            let available = FreeSpace.available(at: path)
            if let available, available < remaining {
                failure = .notEnoughSpace(path: path, needed: remaining, available: available)
                return false
            }
        }
        return true
    }

    /// Reports progress; returns false to abort a transfer that received nothing for
    /// `stallTimeout` seconds. (libcurl's own low-speed check averages over several seconds, so
    /// a stall right after a fast burst would take much longer to notice.)
    func progress(total: Int64, now: Int64) -> Bool {
        let clock = DispatchTime.now().uptimeNanoseconds
        if now != lastDataCount {
            lastDataCount = now
            lastDataTime = clock
        } else if Double(clock - lastDataTime) / 1e9 > stallTimeout {
            return false
        }
        // libcurl's totals count this attempt only.
        onProgress(attemptStart + now, total > 0 ? attemptStart + total : nil)
        return true
    }
}

/// Free bytes on the file system holding a path.
enum FreeSpace {
    static func available(at path: String) -> Int64? {
        var info = statvfs()
        let directory = (path as NSString).deletingLastPathComponent
        guard statvfs(directory.isEmpty ? "." : directory, &info) == 0 else { return nil }
        return Int64(info.f_bavail) * Int64(info.f_frsize)
    }
}
