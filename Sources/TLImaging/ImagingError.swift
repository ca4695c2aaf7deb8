import Foundation
import TLTensor

/// Why an image could not be read, decoded or batched.
///
/// Always names the file, so a command-line tool can print it as one line.
public struct ImagingError: FileProblem, LocalizedError, CustomStringConvertible, Equatable, Sendable {
    /// The file concerned (or a label such as `<memory>` for in-memory data).
    public var path: String
    /// What is wrong, as one sentence fragment.
    public var problem: String

    /// Creates an error about `path`.
    public init(path: String, problem: String) {
        self.path = path
        self.problem = problem
    }

    public var description: String { "\(path): \(problem)" }
    public var errorDescription: String? { description }
}
