import Foundation
import TLTensor

/// Keras' automatic layer names, as a fresh session hands them out: the first unnamed `Conv2D`
/// is `conv2d`, the next `conv2d_1`, and so on, one counter per layer class
/// (`backend.unique_object_name`). Named layers do not advance the counters.
///
/// InceptionV3, InceptionResNetV2, Xception and NASNet leave many layers unnamed, and weight
/// files saved from a fresh model store them under these names, so a builder must create its
/// unnamed layers in exactly Keras' order.
public final class KerasLayerNames {
    /// A fresh session's counters.
    public init() {}
    private var counts: [String: Int] = [:]

    /// The next name for a layer whose class is `prefix` in snake case (`conv2d`,
    /// `batch_normalization`, `activation`, `average_pooling2d`, `concatenate`, `add`, …).
    public func next(_ prefix: String) -> String {
        let count = counts[prefix, default: 0]
        counts[prefix] = count + 1
        return count == 0 ? prefix : "\(prefix)_\(count)"
    }
}

/// Keras' `_make_divisible` (MobileNetV2/V3, EfficientNet's `round_filters`): `value` rounded to
/// the nearest multiple of `divisor`, at least `divisor`, and (when `correctingDown`) raised by
/// one step if that fell more than 10% below `value`. EfficientNetV2's `round_filters` skips the
/// correction.
func makeDivisible(_ value: Double, divisor: Int = 8, correctingDown: Bool = true) -> Int {
    var result = max(divisor, Int(value + Double(divisor) / 2) / divisor * divisor)
    if correctingDown && Double(result) < 0.9 * value { result += divisor }
    return result
}

extension GraphBuilder {
    /// Keras' `conv2d_bn` of InceptionV3 and InceptionResNetV2: a convolution, BatchNormalization
    /// (`scale=False`, epsilon 1e-3) unless it has a bias, then ReLU unless `activation` is false.
    /// Unnamed, its layers take Keras' automatic names from `names`; named `n`, they are `n`,
    /// `n_bn`, `n_ac`.
    func conv2dBN(_ x: GraphTensor, filters: Int, kernelSize: (Int, Int), strides: Int = 1, padding: Padding = .same,
                  activation: Bool = true, useBias: Bool = false, name: String? = nil,
                  names: KerasLayerNames) throws -> GraphTensor {
        var y = try conv2D(x, filters: filters, kernelSize: kernelSize, strides: strides, padding: padding,
                           useBias: useBias, name: name ?? names.next("conv2d"))
        if !useBias {
            y = try batchNormalization(y, epsilon: 1e-3, scale: false, name: name.map { "\($0)_bn" } ?? names.next("batch_normalization"))
        }
        if activation {
            y = try self.activation(y, .relu, name: name.map { "\($0)_ac" } ?? names.next("activation"))
        }
        return y
    }

    /// Keras `Conv2D` with a rectangular `(rows, columns)` kernel and square strides.
    func conv2D(_ x: GraphTensor, filters: Int, kernelSize: (Int, Int), strides: Int = 1, padding: Padding,
                useBias: Bool, name: String) throws -> GraphTensor {
        try apply(Conv2D(name: name, filters: filters, kernelSize: kernelSize, strides: (strides, strides),
                         padding: padding, useBias: useBias), to: [x])
    }
}
