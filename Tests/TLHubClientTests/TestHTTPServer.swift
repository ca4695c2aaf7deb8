import Foundation

/// A small HTTP/1.1 server on 127.0.0.1 for the download tests: one thread per connection,
/// `Connection: close`, byte ranges with `If-Range`, ETags, redirects, and injected faults.
final class TestHTTPServer: @unchecked Sendable {
    /// How a route misbehaves. Faults with `times` apply to that many requests, then the route
    /// serves normally.
    enum Fault {
        /// Sends the headers and `afterBytes` of the body, then closes the connection.
        case drop(afterBytes: Int, times: Int)
        /// Flips one byte in the middle of the body.
        case corrupt
        /// Answers with this status and no body.
        case status(Int, times: Int)
        /// Sends `afterBytes`, then sends nothing for `seconds` (or until the server stops).
        case stall(afterBytes: Int, seconds: Double, times: Int)
        /// Answers 200 with the whole body even to a range request.
        case ignoreRange
        /// Announces `extra` more bytes than it sends, then closes.
        case longerContentLength(extra: Int, times: Int)
        /// Announces and sends `missing` fewer bytes than the body has.
        case shorterBody(missing: Int)
        /// Sends the body in chunks of `chunk` bytes with a pause between them.
        case slow(chunk: Int, pause: Double)
    }

    struct Route {
        var body: [UInt8]
        var etag: String?
        var faults: [Fault] = []
        var redirect: String?
    }

    struct Request {
        var path: String
        var range: String?
        var ifRange: String?
    }

    let port: UInt16
    private let listener: Int32
    private let lock = NSLock()
    private var routes: [String: Route] = [:]
    private var used: [String: Int] = [:]  // requests served per path
    private(set) var requestLog: [Request] = []
    private var stopped = false

    var baseURL: String { "http://127.0.0.1:\(port)" }

    init() throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.listener = listener
        guard listener >= 0 else { throw ServerError.setup("socket") }
        var yes: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, 64) == 0 else { throw ServerError.setup("bind/listen") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        port = UInt16(bigEndian: address.sin_port)
        let thread = Thread { [self] in acceptLoop() }
        thread.start()
    }

    enum ServerError: Error { case setup(String) }

    deinit { stop() }

    func stop() {
        lock.lock()
        let wasStopped = stopped
        stopped = true
        lock.unlock()
        if !wasStopped {
            shutdown(listener, Int32(SHUT_RDWR))
            close(listener)
        }
    }

    func setRoute(_ path: String, _ route: Route) {
        lock.lock()
        routes[path] = route
        used[path] = 0
        lock.unlock()
    }

    /// Requests seen for a path (including redirects' targets under their own path).
    func requests(to path: String) -> [Request] {
        lock.lock()
        defer { lock.unlock() }
        return requestLog.filter { $0.path == path }
    }

    private var isStopped: Bool {
        lock.lock()
        defer { lock.unlock() }
        return stopped
    }

    private func acceptLoop() {
        while true {
            let connection = accept(listener, nil, nil)
            if connection < 0 {
                if isStopped { return }
                continue
            }
            let thread = Thread { [self] in
                handle(connection)
                close(connection)
            }
            thread.start()
        }
    }

    private func handle(_ connection: Int32) {
        var buffer = [UInt8](repeating: 0, count: 8192)
        var received: [UInt8] = []
        while !received.containsHeaderEnd {
            let count = recv(connection, &buffer, buffer.count, 0)
            if count <= 0 { return }
            received += buffer[0..<count]
        }
        let text = String(decoding: received, as: UTF8.self)
        let lines = text.components(separatedBy: "\r\n")
        let parts = lines[0].split(separator: " ")
        guard parts.count >= 2 else { return }
        let path = String(parts[1])
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        lock.lock()
        requestLog.append(Request(path: path, range: headers["range"], ifRange: headers["if-range"]))
        let route = routes[path]
        let index = used[path, default: 0]
        used[path] = index + 1
        lock.unlock()
        guard let route else {
            send(connection, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        }
        if let target = route.redirect {
            send(connection, "HTTP/1.1 302 Found\r\nLocation: \(target)\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        }
        var body = route.body
        var start = 0
        var rangeHonoured = false
        var dropAfter: Int?
        var stall: (Int, Double)?
        var extraLength = 0
        var slow: (Int, Double)?
        var ignoreRange = false
        for fault in route.faults {
            switch fault {
            case let .drop(afterBytes, times) where index < times: dropAfter = afterBytes
            case .corrupt: body[body.count / 2] ^= 0xFF
            case let .status(code, times) where index < times:
                send(connection, "HTTP/1.1 \(code) Injected\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            case let .stall(afterBytes, seconds, times) where index < times: stall = (afterBytes, seconds)
            case .ignoreRange: ignoreRange = true
            case let .longerContentLength(extra, times) where index < times: extraLength = extra
            case let .shorterBody(missing): body = Array(body.dropLast(missing))
            case let .slow(chunk, pause): slow = (chunk, pause)
            default: break
            }
        }
        if !ignoreRange, let range = headers["range"], range.hasPrefix("bytes="), range.hasSuffix("-"),
           let from = Int(range.dropFirst(6).dropLast()) {
            let matches = headers["if-range"].map { $0 == route.etag } ?? true
            if matches {
                if from >= body.count {
                    send(connection, "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */\(body.count)\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    return
                }
                start = from
                rangeHonoured = true
            }
        }
        let payload = body[start...]
        var head = rangeHonoured ? "HTTP/1.1 206 Partial Content\r\n" : "HTTP/1.1 200 OK\r\n"
        head += "Content-Length: \(payload.count + extraLength)\r\nAccept-Ranges: bytes\r\nConnection: close\r\n"
        if rangeHonoured { head += "Content-Range: bytes \(start)-\(body.count - 1)/\(body.count)\r\n" }
        if let etag = route.etag { head += "ETag: \(etag)\r\n" }
        send(connection, head + "\r\n")
        var limit = payload.count
        if let dropAfter { limit = min(limit, dropAfter) }
        if let (afterBytes, _) = stall { limit = min(limit, afterBytes) }
        let chunk = slow?.0 ?? 65536
        var offset = payload.startIndex
        let end = payload.startIndex + limit
        while offset < end {
            let next = min(offset + chunk, end)
            let ok = payload[offset..<next].withUnsafeBytes { sendAll(connection, $0) }
            if !ok { return }
            offset = next
            if let slow { Thread.sleep(forTimeInterval: slow.1) }
        }
        if let (_, seconds) = stall {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline && !isStopped { Thread.sleep(forTimeInterval: 0.02) }
        }
    }

    private func send(_ connection: Int32, _ text: String) {
        _ = Array(text.utf8).withUnsafeBytes { sendAll(connection, $0) }
    }

    private func sendAll(_ connection: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let sent = Foundation.send(connection, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            if sent <= 0 { return false }
            offset += sent
        }
        return true
    }
}

private extension Array where Element == UInt8 {
    var containsHeaderEnd: Bool {
        guard count >= 4 else { return false }
        for index in 0...(count - 4) where self[index] == 13 && self[index + 1] == 10 && self[index + 2] == 13 && self[index + 3] == 10 {
            return true
        }
        return false
    }
}
