import Foundation
import TLTensor

/// Why a weight file could not be read, converted or written (problems that are about Keras
/// layouts rather than HDF5 itself, which throws ``HDF5Error``).
public struct FormatError: FileProblem, LocalizedError, CustomStringConvertible, Equatable {
    /// The file concerned.
    public var path: String
    /// What is wrong, as one sentence fragment naming the layer or weight when there is one.
    public var problem: String

    public init(path: String, problem: String) {
        self.path = path
        self.problem = problem
    }

    public var description: String { "\(path): \(problem)" }
    public var errorDescription: String? { description }
}
