/// The one shape of tlhub's errors about a file or a named thing: the path (or name) and what is
/// wrong, printed as one line `path: problem`. Every module's error type conforms
/// (`TensorFileError`, `FormatError`, `HDF5Error`, `ImagingError`, `PipelineError`, …).
public protocol FileProblem: Error, CustomStringConvertible {
    /// The file's path, or the name of the thing (a hub name, a layer); empty when none applies.
    var path: String { get }
    /// What is wrong, as a sentence fragment.
    var problem: String { get }
}
