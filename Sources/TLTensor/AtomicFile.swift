import Foundation

/// Writes a file so that the final path only ever holds a complete file: the bytes go to a
/// temporary sibling (`.<name>.<random>.tmp`), are flushed to disk, and are renamed over `url`.
/// On any error the temporary file is removed and nothing is left at `url`.
public enum AtomicFile {
    /// Runs `body` with a handle to a temporary file next to `url`, then renames it to `url`.
    /// - Throws: whatever `body` throws, or a ``TensorFileError`` when the file cannot be created
    ///   or renamed.
    public static func write<T>(to url: URL, _ body: (FileHandle, URL) throws -> T) throws -> T {
        let directory = url.deletingLastPathComponent()
        let temporary = directory.appendingPathComponent(
            ".\(url.lastPathComponent).\(UInt32.random(in: 0...UInt32.max)).tmp")
        guard FileManager.default.createFile(atPath: temporary.path, contents: nil) else {
            throw TensorFileError(path: url.path, problem: "cannot create a file in \(directory.path)")
        }
        do {
            let handle = try FileHandle(forWritingTo: temporary)
            let result: T
            do {
                result = try body(handle, temporary)
                try handle.synchronize()
                try handle.close()
            } catch {
                try? handle.close()
                throw error
            }
            if rename(temporary.path, url.path) != 0 {
                throw TensorFileError(path: url.path, problem: "cannot rename into place: \(String(cString: strerror(errno)))")
            }
            return result
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw error
        }
    }
}
