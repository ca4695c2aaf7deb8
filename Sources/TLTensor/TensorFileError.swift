import Foundation

/// Why an `.npy` or `.safetensors` file could not be read or written.
public struct TensorFileError: FileProblem, LocalizedError, CustomStringConvertible, Equatable {
    /// The file concerned.
    public var path: String
    /// What is wrong with it, as one sentence fragment.
    public var problem: String

    public init(path: String, problem: String) {
        self.path = path
        self.problem = problem
    }

    public var description: String { "\(path): \(problem)" }
    public var errorDescription: String? { description }
}
