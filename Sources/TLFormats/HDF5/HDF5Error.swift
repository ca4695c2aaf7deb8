import CHDF5
import Foundation

/// Why an HDF5 operation failed: the file, the object inside it, and HDF5's own explanation
/// (taken from its error stack) or tlhub's check that rejected the object.
public struct HDF5Error: Error, LocalizedError, CustomStringConvertible, Equatable {
    /// The file concerned (`<memory>` for an in-memory image, with the archive path when known).
    public var path: String
    /// The object inside the file (`/model_weights/conv1`), or `/` for the file itself.
    public var objectPath: String
    /// What went wrong, as one sentence fragment.
    public var message: String

    public init(path: String, objectPath: String, message: String) {
        self.path = path
        self.objectPath = objectPath
        self.message = message
    }

    public var description: String {
        objectPath == "/" || objectPath.isEmpty ? "\(path): \(message)" : "\(path): \(objectPath): \(message)"
    }

    public var errorDescription: String? { description }
}

/// Process-wide access to libhdf5.
///
/// The Debian libhdf5 is built without thread safety, and its error stack is global, so every
/// call into it goes through ``withLock(_:)``; the lock is recursive so that nested helpers may
/// take it again.
enum HDF5Library {
    private static let lock = NSRecursiveLock()
    nonisolated(unsafe) private static var silenced = false

    /// Runs `body` holding the library lock (HDF5 is initialised and its error printing silenced
    /// on first use).
    @discardableResult
    static func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        if !silenced {
            tl_H5_silence_errors()
            silenced = true
        }
        return try body()
    }

    /// The current error stack as one line (outermost action, then its innermost cause), cleared
    /// afterwards. Call with the lock held.
    static func takeErrorMessage(fallback: String) -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        tl_H5_error_message(&buffer, buffer.count)
        let text = String(nullTerminated: buffer)
        let parts = text.components(separatedBy: "; ").filter { !$0.isEmpty }
        guard let first = parts.first else { return fallback }
        guard let last = parts.last, last != first else { return "\(fallback): \(first)" }
        return "\(fallback): \(first) (\(last))"
    }

    /// Throws an ``HDF5Error`` with HDF5's error stack when `status` is negative.
    @discardableResult
    static func check<T: BinaryInteger>(_ status: T, path: String, object: String, _ action: @autoclosure () -> String) throws -> T {
        guard status >= 0 else {
            throw HDF5Error(path: path, objectPath: object, message: takeErrorMessage(fallback: action()))
        }
        return status
    }
}
