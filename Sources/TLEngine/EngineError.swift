import Foundation

/// Everything that can go wrong while building, loading or running a network.
///
/// Each case carries the names a user needs to fix the problem (layer, weight, shapes), and the
/// description is one line suitable for the CLI.
public enum EngineError: Error, LocalizedError, CustomStringConvertible, Equatable {
    /// A Keras layer class tlhub does not implement.
    case unsupportedLayer(className: String, layer: String)
    /// A layer option tlhub does not implement (e.g. `data_format="channels_first"`).
    case unsupportedOption(layer: String, option: String, value: String)
    /// A weight the architecture needs is absent from the file.
    case missingWeight(layer: String, weight: String, expectedShape: [Int])
    /// A variable a checkpoint in another naming scheme (TF-Slim) must hold for `layer`'s `weight`
    /// is absent; `name` is the full variable name as stored.
    case missingVariable(name: String, layer: String, weight: String)
    /// A weight exists but its shape differs from what the architecture needs.
    case weightShapeMismatch(layer: String, weight: String, expected: [Int], actual: [Int])
    /// The file holds weights no layer of the architecture uses.
    case unusedWeights(names: [String])
    /// The input tensor does not fit the network.
    case inputShapeMismatch(expected: String, actual: [Int])
    /// Shapes that cannot flow through a layer.
    case incompatibleShapes(layer: String, detail: String)
    /// The Keras model config could not be understood.
    case invalidModelConfig(String)
    /// The architecture could not be recognised from the weights, or an unknown name was given.
    case unknownArchitecture(String)
    /// A model file that cannot be opened.
    case unreadableFile(path: String, problem: String)
    /// A request the model cannot serve (e.g. features of a network without a spatial feature map).
    case unsupportedRequest(String)

    public var description: String {
        switch self {
        case let .unsupportedLayer(className, layer):
            return "layer '\(layer)': unsupported layer class \(className)"
        case let .unsupportedOption(layer, option, value):
            return "layer '\(layer)': unsupported \(option)=\(value)"
        case let .missingWeight(layer, weight, shape):
            return "layer '\(layer)': weight '\(weight)' (expected shape \(shape)) is missing from the file"
        case let .missingVariable(name, layer, weight):
            return "checkpoint variable '\(name)' (for layer '\(layer)' weight '\(weight)') is missing"
        case let .weightShapeMismatch(layer, weight, expected, actual):
            return "layer '\(layer)': weight '\(weight)' has shape \(actual), expected \(expected)"
        case let .unusedWeights(names):
            let shown = names.prefix(5).joined(separator: ", ")
            return "the file has \(names.count) weight(s) the architecture does not use: \(shown)\(names.count > 5 ? ", …" : "")"
        case let .inputShapeMismatch(expected, actual):
            return "input shape \(actual) does not fit the model: expected \(expected)"
        case let .incompatibleShapes(layer, detail):
            return "layer '\(layer)': \(detail)"
        case let .invalidModelConfig(detail):
            return "invalid Keras model config: \(detail)"
        case let .unknownArchitecture(detail):
            return detail
        case let .unreadableFile(path, problem):
            return "\(path): \(problem)"
        case let .unsupportedRequest(detail):
            return detail
        }
    }

    public var errorDescription: String? { description }
}
