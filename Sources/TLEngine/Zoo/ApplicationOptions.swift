import Foundation
import TLTensor

/// How a convolutional base turns its last feature map into one vector per image.
public enum FeaturePooling: String, Sendable, CaseIterable {
    /// Global average over height and width.
    case avg
    /// Global maximum over height and width.
    case max
    /// No pooling: the `[N, H, W, C]` feature map itself.
    case none
}

/// The options of a `keras.applications` constructor.
public struct ApplicationOptions: Sendable, Equatable {
    /// Whether the classifier head (`predictions` and, for VGG, `fc1`/`fc2`) is built.
    public var includeTop: Bool
    /// Per-sample input shape `[H, W, 3]`; nil for the architecture's default (224×224, or any
    /// size where the network allows it).
    public var inputShape: [Int]?
    /// Pooling after the base when `includeTop` is false.
    public var pooling: FeaturePooling
    /// Classifier outputs when `includeTop` is true.
    public var classes: Int
    /// Activation of `predictions`.
    public var classifierActivation: Activation

    /// Creates options; the defaults are those of `keras.applications`.
    public init(includeTop: Bool = true, inputShape: [Int]? = nil, pooling: FeaturePooling = .none,
                classes: Int = 1000, classifierActivation: Activation = .softmax) {
        self.includeTop = includeTop
        self.inputShape = inputShape
        self.pooling = pooling
        self.classes = classes
        self.classifierActivation = classifierActivation
    }
}

extension GraphBuilder {
    /// The shared ending of `keras.applications` models: global average pooling and `predictions`
    /// with the top, else the requested pooling (`avg_pool`/`max_pool` style names are given).
    func applicationHead(_ x: GraphTensor, options: ApplicationOptions, averageName: String, maxName: String) throws -> GraphTensor {
        if options.includeTop {
            let pooled = try globalAveragePooling2D(x, name: averageName)
            return try dense(pooled, units: options.classes, activation: options.classifierActivation, name: "predictions")
        }
        switch options.pooling {
        case .avg: return try globalAveragePooling2D(x, name: averageName)
        case .max: return try globalMaxPooling2D(x, name: maxName)
        case .none: return x
        }
    }
}
