import Foundation
import TLTensor

/// A problem with what was asked of the pipeline — a model reference, an input, an option —
/// naming the thing (`subject`: a path or a name) and the problem, printed as one line
/// `subject: problem`.
public struct PipelineError: FileProblem, LocalizedError, CustomStringConvertible, Equatable {
    /// The path or name the problem concerns; empty when it concerns no single thing.
    public var path: String
    /// What is wrong, as a sentence fragment.
    public var problem: String

    public init(_ subject: String, _ problem: String) {
        path = subject
        self.problem = problem
    }

    /// A problem that concerns no single file or name.
    public init(_ problem: String) {
        path = ""
        self.problem = problem
    }

    public var description: String { path.isEmpty ? problem : "\(path): \(problem)" }
    public var errorDescription: String? { description }
}
