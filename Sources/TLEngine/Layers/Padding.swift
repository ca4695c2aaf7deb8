import Foundation

/// Keras `padding`: `valid` (no padding) or `same` (TensorFlow's rule, extra row/column at the end).
public enum Padding: String, Sendable {
    /// No padding; the window stays inside the input.
    case valid
    /// Output size `ceil(in / stride)`; padding split with the odd cell after.
    case same

    /// Parses `"same"`/`"valid"` in any case (ResNet writes `"SAME"`).
    init(keras: String, layer: String) throws {
        guard let value = Padding(rawValue: keras.lowercased()) else {
            throw EngineError.unsupportedOption(layer: layer, option: "padding", value: keras)
        }
        self = value
    }

    /// Output extent and padding before, for one spatial axis, exactly as TensorFlow computes them:
    /// `same`: `pad_total = max((ceil(in/s) - 1) * s + (k - 1) * d + 1 - in, 0)`, `before = total / 2`.
    /// Unknown input (`-1`) gives unknown output.
    public func window(input: Int, kernel: Int, stride: Int, dilation: Int) -> (output: Int, before: Int) {
        guard input >= 0 else { return (-1, 0) }
        let effective = (kernel - 1) * dilation + 1
        switch self {
        case .valid:
            return (input >= effective ? (input - effective) / stride + 1 : 0, 0)
        case .same:
            let output = (input + stride - 1) / stride
            let total = max((output - 1) * stride + effective - input, 0)
            return (output, total / 2)
        }
    }
}
