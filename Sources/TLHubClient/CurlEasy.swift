import CCurl
import Foundation

/// One libcurl easy handle, cleaned up in `deinit`. Options are set through the typed wrappers
/// in `CCurl/shim.h` because `curl_easy_setopt` is variadic.
final class CurlEasy {
    let handle: UnsafeMutableRawPointer
    /// libcurl writes its detailed error text here (`CURLOPT_ERRORBUFFER`).
    private let errorBuffer: UnsafeMutablePointer<CChar>
    private var headerList: UnsafeMutablePointer<curl_slist>?

    private static let globalInit: Bool = curl_global_init(3 /* CURL_GLOBAL_ALL, a macro Swift cannot import */) == CURLE_OK

    /// - Throws: ``HubError/transferFailed(url:detail:)`` when libcurl cannot start.
    init(url: String) throws {
        guard Self.globalInit, let handle = curl_easy_init() else {
            throw HubError.transferFailed(url: url, detail: "libcurl failed to initialise")
        }
        self.handle = handle
        errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        try set(CURLOPT_ERRORBUFFER, pointer: UnsafeMutableRawPointer(errorBuffer))
        try set(CURLOPT_URL, string: url)
    }

    deinit {
        curl_easy_cleanup(handle)
        if let headerList { curl_slist_free_all(headerList) }
        errorBuffer.deallocate()
    }

    /// libcurl's detailed message for the last failure, or "".
    var errorText: String { String(cString: errorBuffer) }

    func set(_ option: CURLoption, _ value: Int) throws {
        try check(tl_curl_setopt_long(handle, option, value), option)
    }

    func set(_ option: CURLoption, offset value: Int64) throws {
        try check(tl_curl_setopt_off(handle, option, curl_off_t(value)), option)
    }

    /// libcurl copies string options, so `value` need not outlive the call.
    func set(_ option: CURLoption, string value: String) throws {
        try check(tl_curl_setopt_string(handle, option, value), option)
    }

    func set(_ option: CURLoption, pointer value: UnsafeMutableRawPointer?) throws {
        try check(tl_curl_setopt_pointer(handle, option, value), option)
    }

    /// Sets request headers (replacing earlier ones); the list lives as long as the handle.
    func setHeaders(_ headers: [String]) throws {
        if let headerList { curl_slist_free_all(headerList) }
        headerList = nil
        for header in headers { headerList = curl_slist_append(headerList, header) }
        try check(tl_curl_setopt_slist(handle, CURLOPT_HTTPHEADER, headerList), CURLOPT_HTTPHEADER)
    }

    func long(_ info: CURLINFO) -> Int {
        var value = 0
        return tl_curl_getinfo_long(handle, info, &value) == CURLE_OK ? value : 0
    }

    func offset(_ info: CURLINFO) -> Int64 {
        var value: curl_off_t = 0
        return tl_curl_getinfo_off(handle, info, &value) == CURLE_OK ? Int64(value) : -1
    }

    func perform() -> CURLcode {
        errorBuffer[0] = 0
        return curl_easy_perform(handle)
    }

    private func check(_ code: CURLcode, _ option: CURLoption) throws {
        guard code == CURLE_OK else {
            throw HubError.transferFailed(url: "", detail: "curl option \(option.rawValue): \(String(cString: curl_easy_strerror(code)))")
        }
    }
}
