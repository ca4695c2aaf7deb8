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

/// What the top of a `keras.applications` model puts between the feature map and `predictions`.
public enum ClassifierTop: Sendable {
    /// Global average pooling (named `poolName`, else the head's average name), then an optional
    /// dropout (EfficientNet's `top_dropout`).
    case pooled(poolName: String? = nil, dropoutName: String? = nil)
    /// VGG's `flatten`, `fc1` and `fc2` of `denseUnits` each, with ReLU.
    case flattened(denseUnits: Int)
}

extension GraphBuilder {
    /// The one ending of `keras.applications` models. With the top: `top`'s layers, then
    /// `predictions`; without: the requested global pooling (`options.pooling`), named
    /// `averageName`/`maxName`, or by Keras' automatic names from `names` when those are nil
    /// (Inception, Xception, NASNet).
    public func applicationHead(_ x: GraphTensor, options: ApplicationOptions, top: ClassifierTop = .pooled(),
                         averageName: String? = nil, maxName: String? = nil,
                         names: KerasLayerNames = KerasLayerNames()) throws -> GraphTensor {
        if options.includeTop {
            var x = x
            switch top {
            case let .pooled(poolName, dropoutName):
                x = try globalAveragePooling2D(x, name: poolName ?? averageName ?? names.next("global_average_pooling2d"))
                if let dropoutName { x = try dropout(x, name: dropoutName) }
            case .flattened(let denseUnits):
                x = try flatten(x, name: "flatten")
                x = try dense(x, units: denseUnits, activation: .relu, name: "fc1")
                x = try dense(x, units: denseUnits, activation: .relu, name: "fc2")
            }
            return try dense(x, units: options.classes, activation: options.classifierActivation, name: "predictions")
        }
        switch options.pooling {
        case .avg: return try globalAveragePooling2D(x, name: averageName ?? names.next("global_average_pooling2d"))
        case .max: return try globalMaxPooling2D(x, name: maxName ?? names.next("global_max_pooling2d"))
        case .none: return x
        }
    }
}
