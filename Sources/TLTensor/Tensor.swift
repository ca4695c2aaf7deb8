import Foundation

/// A dense float32 tensor in row-major (C) order.
///
/// Activations are NHWC, convolution kernels HWIO `[kh, kw, in, out]`, depthwise kernels
/// `[kh, kw, in, multiplier]` and dense kernels `[in, out]`, exactly as Keras stores them, so a
/// weight read from an `.h5` file is used with no transpose.
public struct Tensor: Sendable, Equatable {
    /// The extent of each dimension; `[]` is a scalar.
    public var shape: [Int]
    /// `shape.reduce(1, *)` elements, row-major.
    public var scalars: [Float]

    /// Wraps `scalars` in `shape`.
    /// - Precondition: `scalars.count == shape.reduce(1, *)` (a programmer error otherwise).
    public init(shape: [Int], scalars: [Float]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        precondition(scalars.count == Tensor.elementCount(shape),
                     "\(scalars.count) scalars do not fill shape \(shape)")
        self.shape = shape
        self.scalars = scalars
    }

    /// A tensor of `shape` filled with `value`.
    public init(shape: [Int], repeating value: Float = 0) {
        self.init(shape: shape, scalars: [Float](repeating: value, count: Tensor.elementCount(shape)))
    }

    /// The number of elements.
    public var count: Int { scalars.count }

    /// The number of dimensions.
    public var rank: Int { shape.count }

    /// The product of `shape`, with `[]` counting as one element.
    public static func elementCount(_ shape: [Int]) -> Int { shape.reduce(1, *) }

    /// The same scalars viewed with another shape of equal element count.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        Tensor(shape: newShape, scalars: scalars)
    }

    /// The largest absolute element-wise difference; `.infinity` when the shapes differ.
    public func maxAbsoluteDifference(_ other: Tensor) -> Float {
        guard shape == other.shape else { return .infinity }
        var worst: Float = 0
        for i in scalars.indices {
            let d = abs(scalars[i] - other.scalars[i])
            if d.isNaN { return .nan }
            worst = max(worst, d)
        }
        return worst
    }

    /// The largest absolute element; 0 for an empty tensor.
    public var maxAbsolute: Float { scalars.reduce(0) { max($0, abs($1)) } }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let preview = scalars.prefix(6).map { String(format: "%.5g", $0) }.joined(separator: ", ")
        return "Tensor\(shape)[\(preview)\(scalars.count > 6 ? ", …" : "")]"
    }
}
