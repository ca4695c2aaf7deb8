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

// MARK: - ZeroPadding2D and Cropping2D

/// Keras `ZeroPadding2D` (positive `(top, bottom), (left, right)`) and `Cropping2D` (the same
/// amounts removed).
public final class SpatialPadding: Layer {
    public let name: String
    /// `((top, bottom), (left, right))` cells added (padding) or removed (cropping).
    public let amounts: ((Int, Int), (Int, Int))
    /// True for `Cropping2D`.
    public let crops: Bool

    /// Creates a zero-padding (`crops == false`) or cropping layer.
    public init(name: String, amounts: ((Int, Int), (Int, Int)), crops: Bool = false) {
        self.name = name
        self.amounts = amounts
        self.crops = crops
    }

    public func outputShape(inputShapes: [[Int]]) throws -> [Int] {
        let input = inputShapes[0]
        guard input.count == 3 else {
            throw EngineError.incompatibleShapes(layer: name, detail: "needs a rank-4 NHWC input, got per-sample shape \(input)")
        }
        let sign = crops ? -1 : 1
        let rows = input[0] < 0 ? -1 : input[0] + sign * (amounts.0.0 + amounts.0.1)
        let columns = input[1] < 0 ? -1 : input[1] + sign * (amounts.1.0 + amounts.1.1)
        if (input[0] >= 0 && rows <= 0) || (input[1] >= 0 && columns <= 0) {
            throw EngineError.incompatibleShapes(layer: name, detail: "cropping \(input) leaves nothing")
        }
        return [rows, columns, input[2]]
    }

    public func forward(_ inputs: [ActivationView], into output: MutableActivationView, scratch: UnsafeMutablePointer<Float>) {
        let input = inputs[0]
        let (batch, height, width, channels) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
        let (outputHeight, outputWidth) = (output.shape[1], output.shape[2])
        let (top, left) = (amounts.0.0, amounts.1.0)
        let outputRow = outputWidth * channels
        // Output rows split between the cores; each row written once (zeros only where padding).
        parallelChunks(batch * outputHeight, work: output.count) { rows in
            for row in rows {
                let image = row / outputHeight, y = row % outputHeight
                let destination = output.data + row * outputRow
                if crops {
                    destination.update(from: input.data + ((image * height + y + top) * width + left) * channels, count: outputRow)
                    continue
                }
                guard y >= top && y < top + height else {
                    destination.update(repeating: 0, count: outputRow)
                    continue
                }
                destination.update(repeating: 0, count: left * channels)
                (destination + left * channels).update(from: input.data + (image * height + y - top) * width * channels,
                                                       count: width * channels)
                (destination + (left + width) * channels).update(repeating: 0, count: (outputWidth - left - width) * channels)
            }
        }
    }
}
