import CHDF5
import Foundation
import TLTensor

/// Why an HDF5 operation failed: the file, the object inside it, and HDF5's own explanation
/// (taken from its error stack) or tlhub's check that rejected the object.
public struct HDF5Error: FileProblem, LocalizedError, CustomStringConvertible, Equatable {
    /// The file concerned (`<memory>` for an in-memory image, with the archive path when known).
    public var path: String
    /// The object inside the file (`/model_weights/conv1`), or `/` for the file itself.
    public var objectPath: String
    /// What went wrong, as one sentence fragment.
    public var problem: String

    public init(path: String, objectPath: String, problem: String) {
        self.path = path
        self.objectPath = objectPath
        self.problem = problem
    }

    public var description: String {
        objectPath == "/" || objectPath.isEmpty ? "\(path): \(problem)" : "\(path): \(objectPath): \(problem)"
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

    /// Runs `body` holding the library lock, with HDF5's automatic error printing off.
    @discardableResult
    static func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        // Cheap, and guards against anything that re-enabled automatic printing.
        tl_H5_silence_errors()
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
            throw HDF5Error(path: path, objectPath: object, problem: takeErrorMessage(fallback: action()))
        }
        return status
    }
}

extension HDF5Library {
    /// How long the probe may take before the file is declared damaged.
    static let probeTimeout: UInt32 = 60

    /// Walks the file's metadata in a forked child first, so that a file that would crash
    /// libhdf5 (which trusts corrupt metadata) fails with an error instead of killing tlhub.
    /// - Throws: ``HDF5Error`` when the child crashed or hung.
    static func probe(path: String, displayPath: String, image: Data? = nil) throws {
        let result: Int32 = withLock {
            if let image {
                return image.withUnsafeBytes { raw in tl_H5_probe(path, raw.baseAddress, raw.count, probeTimeout) }
            }
            return tl_H5_probe(path, nil, 0, probeTimeout)
        }
        switch result {
        case 0, -2: return
        case -1: throw HDF5Error(path: displayPath, objectPath: "/", problem: "damaged HDF5 file: reading its structure did not finish in \(probeTimeout) s")
        default: throw HDF5Error(path: displayPath, objectPath: "/", problem: "damaged HDF5 file: its structure makes libhdf5 crash (signal \(result)); refusing to read it")
        }
    }
}
