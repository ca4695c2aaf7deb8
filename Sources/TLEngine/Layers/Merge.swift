import Foundation
import TLTensor

/// Keras `Add`, `Subtract`, `Multiply`, `Average`, `Maximum`, `Minimum`: element-wise over inputs of
/// equal shape, or with a per-image channel vector (`[1, …, 1, C]` or `[C]`) broadcast over the
/// others in either position (the squeeze-and-excitation `Multiply` of MobileNetV3 and
/// EfficientNet, `[N, H, W, C] × [N, 1, 1, C]`).
public final class ElementwiseMerge: Layer {
    /// The element-wise operation.
    public enum Operation: Sendable {
        /// Sum of all inputs.
        case add
        /// First input minus the second.
        case subtract
        /// Product of all inputs.
        case multiply
        /// Mean of all inputs.
        case average
        /// Element-wise largest.
        case maximum
        /// Element-wise smallest.
        case minimum
    }

    public let name: String
    /// The operation.
    public let operation: Operation

    /// Applied to the result; `linear` unless `Graph.fused()` merged a following activation
    /// layer in (ResNet's `add` then `relu`), so the sum is activated while still in cache.
    public let activation: Activation

    /// Creates a merge layer.
    public init(name: String, operation: Operation, activation: Activation = .linear) {
        self.name = name
        self.operation = operation
        self.activation = activation
    }

    /// A copy applying `activation` to its result (used by activation fusion).
    func copy(activation: Activation) -> ElementwiseMerge {
        ElementwiseMerge(name: name, operation: operation, activation: activation)
    }

    public func outputShape(inputShapes: [[Int]]) throws -> [Int] {
        guard inputShapes.count >= 2 else {
            throw EngineError.incompatibleShapes(layer: name, detail: "a merge needs at least two inputs")
        }
        let first = inputShapes.max { $0.count < $1.count || ($0.count == $1.count && Self.isChannelVector($0)) } ?? inputShapes[0]
        for shape in inputShapes where shape != first {
            // `[1, 1, C]` or `[C]` (per image) broadcasts over every pixel, in either input position.
            let broadcasts = Self.isChannelVector(shape) && shape.count <= first.count && shape.last == first.last
            guard broadcasts else {
                throw EngineError.incompatibleShapes(layer: name, detail: "inputs of shapes \(inputShapes) cannot be merged element-wise")
            }
        }
        if operation == .subtract && inputShapes.count != 2 {
            throw EngineError.incompatibleShapes(layer: name, detail: "Subtract needs exactly two inputs")
        }
        return first
    }

    /// `[1, …, 1, C]`: one value per channel.
    static func isChannelVector(_ shape: [Int]) -> Bool { shape.dropLast().allSatisfy { $0 == 1 } }

    public func forward(_ inputs: [ActivationView], into output: MutableActivationView, scratch: UnsafeMutablePointer<Float>) {
        let count = output.count
        if inputs.contains(where: { $0.count != count }) {
            forwardBroadcasting(inputs, into: output)
            activation.apply(output.data, count: count, lastAxis: output.shape.last ?? 1)
            return
        }
        let operation = self.operation, activation = self.activation
        parallelChunks(count, work: count * inputs.count) { range in
            let o = output.data
            let first = inputs[0].data
            for i in range { o[i] = first[i] }
            for input in inputs.dropFirst() {
                let p = input.data
                switch operation {
                case .add, .average: for i in range { o[i] += p[i] }
                case .subtract: for i in range { o[i] -= p[i] }
                case .multiply: for i in range { o[i] *= p[i] }
                case .maximum: for i in range { o[i] = max(o[i], p[i]) }
                case .minimum: for i in range { o[i] = min(o[i], p[i]) }
                }
            }
            if operation == .average {
                let inverse = 1 / Float(inputs.count)
                for i in range { o[i] *= inverse }
            }
            activation.apply(o + range.lowerBound, count: range.count, lastAxis: output.shape.last ?? 1)
        }
    }
}

extension ElementwiseMerge {
    /// Inputs of `[N, 1, …, 1, C]` repeat their channel vector over every pixel.
    func forwardBroadcasting(_ inputs: [ActivationView], into output: MutableActivationView) {
        let channels = output.shape.last ?? 1
        let batch = output.shape[0]
        let pixels = output.count / max(batch * channels, 1)
        let operation = self.operation
        parallelChunks(batch * pixels, work: output.count * inputs.count) { rows in
            for row in rows {
                let image = row / pixels, pixel = row % pixels
                let o = output.data + (image * pixels + pixel) * channels
                for (position, input) in inputs.enumerated() {
                    let p = input.count == output.count ? input.data + (image * pixels + pixel) * channels
                                                        : input.data + image * channels
                    if position == 0 {
                        o.update(from: p, count: channels)
                        continue
                    }
                    switch operation {
                    case .add, .average: for c in 0..<channels { o[c] += p[c] }
                    case .subtract: for c in 0..<channels { o[c] -= p[c] }
                    case .multiply: for c in 0..<channels { o[c] *= p[c] }
                    case .maximum: for c in 0..<channels { o[c] = max(o[c], p[c]) }
                    case .minimum: for c in 0..<channels { o[c] = min(o[c], p[c]) }
                    }
                }
                if operation == .average {
                    let inverse = 1 / Float(inputs.count)
                    for c in 0..<channels { o[c] *= inverse }
                }
            }
        }
    }
}

/// Keras `Concatenate` along one axis (default the last, channels).
public final class Concatenate: Layer {
    public let name: String
    /// Keras axis including the batch dimension; negative counts from the end.
    public let axis: Int

    /// Creates a concatenation.
    public init(name: String, axis: Int = -1) {
        self.name = name
        self.axis = axis
    }

    /// The axis within per-sample shapes of rank `rank`.
    private func sampleAxis(rank: Int) -> Int { axis < 0 ? rank + axis : axis - 1 }

    public func outputShape(inputShapes: [[Int]]) throws -> [Int] {
        guard let first = inputShapes.first else {
            throw EngineError.incompatibleShapes(layer: name, detail: "Concatenate needs inputs")
        }
        let a = sampleAxis(rank: first.count)
        guard a >= 0 && a < first.count else {
            throw EngineError.incompatibleShapes(layer: name, detail: "axis \(axis) is out of range for shapes \(inputShapes)")
        }
        var result = first
        result[a] = 0
        for shape in inputShapes {
            var other = shape, reference = first
            other[a] = 0; reference[a] = 0
            guard shape.count == first.count, other == reference else {
                throw EngineError.incompatibleShapes(layer: name, detail: "inputs of shapes \(inputShapes) cannot be concatenated on axis \(axis)")
            }
            result[a] = (result[a] < 0 || shape[a] < 0) ? -1 : result[a] + shape[a]
        }
        return result
    }

    public func forward(_ inputs: [ActivationView], into output: MutableActivationView, scratch: UnsafeMutablePointer<Float>) {
        let a = sampleAxis(rank: output.shape.count - 1) + 1
        let outer = output.shape[..<a].reduce(1, *)
        let outputInner = output.shape[a...].reduce(1, *)
        let inners = inputs.map { $0.shape[a...].reduce(1, *) }
        // Each output slice (a pixel, for channels) written in order from every input; slices
        // split between the cores.
        parallelChunks(outer, work: output.count) { slices in
            for o in slices {
                var destination = output.data + o * outputInner
                for (input, inner) in zip(inputs, inners) {
                    destination.update(from: input.data + o * inner, count: inner)
                    destination += inner
                }
            }
        }
    }
}
