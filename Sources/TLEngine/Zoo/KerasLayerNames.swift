import Foundation
import TLTensor

/// Keras' automatic layer names, as a fresh session hands them out: the first unnamed `Conv2D`
/// is `conv2d`, the next `conv2d_1`, and so on, one counter per layer class
/// (`backend.unique_object_name`). Named layers do not advance the counters.
///
/// InceptionV3, InceptionResNetV2, Xception and NASNet leave many layers unnamed, and weight
/// files saved from a fresh model store them under these names, so a builder must create its
/// unnamed layers in exactly Keras' order.
final class KerasLayerNames {
    private var counts: [String: Int] = [:]

    /// The next name for a layer whose class is `prefix` in snake case (`conv2d`,
    /// `batch_normalization`, `activation`, `average_pooling2d`, `concatenate`, `add`, …).
    func next(_ prefix: String) -> String {
        let count = counts[prefix, default: 0]
        counts[prefix] = count + 1
        return count == 0 ? prefix : "\(prefix)_\(count)"
    }
}

extension GraphBuilder {
    /// The head of the Inception/Xception/NASNet family: with the top, global average pooling
    /// named `topPoolName` and `predictions`; without, the requested pooling under Keras'
    /// automatic names (`global_average_pooling2d`, `global_max_pooling2d`).
    func automaticallyNamedHead(_ x: GraphTensor, options: ApplicationOptions, topPoolName: String?,
                                names: KerasLayerNames) throws -> GraphTensor {
        if options.includeTop {
            let pooled = try globalAveragePooling2D(x, name: topPoolName ?? names.next("global_average_pooling2d"))
            return try dense(pooled, units: options.classes, activation: options.classifierActivation, name: "predictions")
        }
        switch options.pooling {
        case .avg: return try globalAveragePooling2D(x, name: names.next("global_average_pooling2d"))
        case .max: return try globalMaxPooling2D(x, name: names.next("global_max_pooling2d"))
        case .none: return x
        }
    }

    /// Keras `Conv2D` with a rectangular `(rows, columns)` kernel and square strides.
    func conv2D(_ x: GraphTensor, filters: Int, kernelSize: (Int, Int), strides: Int = 1, padding: Padding,
                useBias: Bool, name: String) throws -> GraphTensor {
        try apply(Conv2D(name: name, filters: filters, kernelSize: kernelSize, strides: (strides, strides),
                         padding: padding, useBias: useBias), to: [x])
    }
}
