import Foundation
import TLTensor

/// Builds one layer from its Keras class name and config dictionary.
struct KerasLayerFactory {
    let className: String
    let name: String
    let config: [String: Any]
    let keras3: Bool

    func make() throws -> any Layer {
        if let format = config["data_format"] as? String, format != "channels_last" {
            throw EngineError.unsupportedOption(layer: name, option: "data_format", value: format)
        }
        switch className {
        case "Conv2D", "Convolution2D":
            return Conv2D(name: name, filters: try int("filters"), kernelSize: try pair("kernel_size"),
                          strides: try pair("strides", default: 1), dilation: try pair("dilation_rate", default: 1),
                          padding: try padding(), groups: try int("groups", default: 1),
                          useBias: bool("use_bias", default: true), activation: try activation())
        case "DepthwiseConv2D":
            return DepthwiseConv2D(name: name, kernelSize: try pair("kernel_size"), strides: try pair("strides", default: 1),
                                   dilation: try pair("dilation_rate", default: 1), padding: try padding(),
                                   depthMultiplier: try int("depth_multiplier", default: 1),
                                   useBias: bool("use_bias", default: true), activation: try activation())
        case "SeparableConv2D", "SeparableConvolution2D":
            return SeparableConv2D(name: name, filters: try int("filters"), kernelSize: try pair("kernel_size"),
                                   strides: try pair("strides", default: 1), dilation: try pair("dilation_rate", default: 1),
                                   padding: try padding(), depthMultiplier: try int("depth_multiplier", default: 1),
                                   useBias: bool("use_bias", default: true), activation: try activation())
        case "Dense":
            return Dense(name: name, units: try int("units"), useBias: bool("use_bias", default: true), activation: try activation())
        case "BatchNormalization":
            let batchNorm = BatchNormalization(name: name, epsilon: float("epsilon", default: 1e-3),
                                               center: bool("center", default: true), scale: bool("scale", default: true))
            batchNorm.momentum = float("momentum", default: 0.99)
            batchNorm.axis = try lastAxisCandidate()
            // tf.keras 2 runs the fused kernel (Bessel-corrected moving variance) unless told not to.
            batchNorm.correctsMovingVariance = !keras3 && (config["fused"] as? Bool ?? true)
            return batchNorm
        case "LayerNormalization":
            try requireLastAxis()
            return LayerNormalization(name: name, epsilon: float("epsilon", default: 1e-3),
                                      center: bool("center", default: true), scale: bool("scale", default: true))
        case "Normalization":
            try requireLastAxis()
            if bool("invert", default: false) {
                throw EngineError.unsupportedOption(layer: name, option: "invert", value: "true")
            }
            return Normalization(name: name, mean: floats("mean"), variance: floats("variance"))
        case "Rescaling":
            return Rescaling(name: name, scales: floats("scale") ?? [1], offsets: floats("offset") ?? [0])
        case "Activation":
            return ActivationLayer(name: name, activation: try activation())
        case "ReLU":
            let maxValue = (config["max_value"] as? NSNumber).map { $0.floatValue }
            let slope = float("negative_slope", default: 0), threshold = float("threshold", default: 0)
            let activation: Activation = (slope == 0 && threshold == 0)
                ? (maxValue == nil ? .relu : (maxValue == 6 ? .relu6 : .clippedReLU(maxValue: maxValue, negativeSlope: 0, threshold: 0)))
                : .clippedReLU(maxValue: maxValue, negativeSlope: slope, threshold: threshold)
            return ActivationLayer(name: name, activation: activation)
        case "LeakyReLU":
            let slope = (config["negative_slope"] ?? config["alpha"]) as? NSNumber
            return ActivationLayer(name: name, activation: .leakyReLU(slope: slope?.floatValue ?? (keras3 ? 0.2 : 0.3)))
        case "ELU":
            return ActivationLayer(name: name, activation: .elu(alpha: float("alpha", default: 1)))
        case "Softmax":
            let axis = (config["axis"] as? Int) ?? ((config["axis"] as? [Int])?.first ?? -1)
            guard axis == -1 || axis == 3 else {
                throw EngineError.unsupportedOption(layer: name, option: "axis", value: "\(axis)")
            }
            return ActivationLayer(name: name, activation: .softmax)
        case "Add": return ElementwiseMerge(name: name, operation: .add)
        case "CustomScaleLayer": return ScaledResidual(name: name, scale: float("scale", default: 1))
        case "Subtract": return ElementwiseMerge(name: name, operation: .subtract)
        case "Multiply": return ElementwiseMerge(name: name, operation: .multiply)
        case "LayerScale": return LayerScale(name: name, projectionDimension: try int("projection_dim"))
        case "StochasticDepth": return IdentityLayer(name: name, kind: .passThrough)
        case "Average": return ElementwiseMerge(name: name, operation: .average)
        case "Maximum": return ElementwiseMerge(name: name, operation: .maximum)
        case "Minimum": return ElementwiseMerge(name: name, operation: .minimum)
        case "Concatenate": return Concatenate(name: name, axis: (config["axis"] as? Int) ?? -1)
        case "ZeroPadding2D": return SpatialPadding(name: name, amounts: try amounts("padding"))
        case "Cropping2D": return SpatialPadding(name: name, amounts: try amounts("cropping"), crops: true)
        case "MaxPooling2D", "MaxPool2D", "AveragePooling2D", "AvgPool2D":
            let poolSize = try pair("pool_size", default: 2)
            let strides = config["strides"] is NSNull || config["strides"] == nil ? poolSize : try pair("strides")
            let kind: Pooling2D.Kind = className.hasPrefix("Max") ? .max : .average
            return Pooling2D(name: name, kind: kind, poolSize: poolSize, strides: strides, padding: try padding())
        case "GlobalAveragePooling2D", "GlobalAvgPool2D":
            return GlobalPooling2D(name: name, kind: .average, keepDimensions: bool("keepdims", default: false))
        case "GlobalMaxPooling2D", "GlobalMaxPool2D":
            return GlobalPooling2D(name: name, kind: .max, keepDimensions: bool("keepdims", default: false))
        case "Flatten":
            return IdentityLayer(name: name, kind: .flatten)
        case "Reshape":
            guard let target = config["target_shape"] as? [Int] else {
                throw EngineError.invalidModelConfig("Reshape '\(name)' has no target_shape")
            }
            return IdentityLayer(name: name, kind: .reshape(target))
        case "Dropout":
            return Dropout(name: name, rate: Float(config["rate"] as? Double ?? 0))
        case "SpatialDropout2D", "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization":
            return IdentityLayer(name: name, kind: .passThrough)
        default:
            throw EngineError.unsupportedLayer(className: className, layer: name)
        }
    }

    // MARK: - Config values

    private func int(_ key: String, default fallback: Int? = nil) throws -> Int {
        if let value = config[key] as? Int { return value }
        if let fallback { return fallback }
        throw EngineError.invalidModelConfig("layer '\(name)' has no integer '\(key)'")
    }

    private func float(_ key: String, default fallback: Float) -> Float {
        (config[key] as? NSNumber)?.floatValue ?? fallback
    }

    private func floats(_ key: String) -> [Float]? {
        if let list = config[key] as? [NSNumber] { return list.map(\.floatValue) }
        if let value = config[key] as? NSNumber { return [value.floatValue] }
        return nil
    }

    private func bool(_ key: String, default fallback: Bool) -> Bool {
        (config[key] as? Bool) ?? fallback
    }

    /// An int or a two-element list.
    private func pair(_ key: String, default fallback: Int? = nil) throws -> (Int, Int) {
        if let value = config[key] as? Int { return (value, value) }
        if let list = config[key] as? [Int], list.count == 2 { return (list[0], list[1]) }
        if let fallback, config[key] == nil || config[key] is NSNull { return (fallback, fallback) }
        throw EngineError.unsupportedOption(layer: name, option: key, value: "\(config[key] ?? "nil")")
    }

    /// `n`, `(a, b)` or `((top, bottom), (left, right))`.
    private func amounts(_ key: String) throws -> ((Int, Int), (Int, Int)) {
        if let value = config[key] as? Int { return ((value, value), (value, value)) }
        if let list = config[key] as? [Int], list.count == 2 { return ((list[0], list[0]), (list[1], list[1])) }
        if let nested = config[key] as? [[Int]], nested.count == 2, nested[0].count == 2, nested[1].count == 2 {
            return ((nested[0][0], nested[0][1]), (nested[1][0], nested[1][1]))
        }
        throw EngineError.unsupportedOption(layer: name, option: key, value: "\(config[key] ?? "nil")")
    }

    private func padding() throws -> Padding {
        try Padding(keras: config["padding"] as? String ?? "valid", layer: name)
    }

    /// A string, a Keras 3 serialized function dictionary, or nil (linear).
    private func activation() throws -> Activation {
        switch config["activation"] {
        case let text as String:
            return try Activation(kerasName: text, keras3: keras3, layer: name)
        case let dictionary as [String: Any]:
            let text = (dictionary["config"] as? String) ?? (dictionary["class_name"] as? String) ?? ""
            return try Activation(kerasName: text, keras3: keras3, layer: name)
        default:
            return .linear
        }
    }

    /// The configured axis when it can be the last one (`-1`, or a positive index the input rank
    /// decides); a layer checks it against its input.
    private func lastAxisCandidate() throws -> Int {
        if config["axis"] == nil || config["axis"] is NSNull { return -1 }
        let axis = (config["axis"] as? Int) ?? ((config["axis"] as? [Int])?.count == 1 ? (config["axis"] as? [Int])?.first : nil)
        guard let axis, axis == -1 || axis > 0 else {
            throw EngineError.unsupportedOption(layer: name, option: "axis", value: "\(config["axis"] ?? "nil")")
        }
        return axis
    }

    private func requireLastAxis() throws {
        let axis = (config["axis"] as? Int) ?? ((config["axis"] as? [Int])?.count == 1 ? (config["axis"] as? [Int])?.first : nil) ?? -1
        if config["axis"] is NSNull { return }
        guard axis == -1 || axis == 3 else {
            throw EngineError.unsupportedOption(layer: name, option: "axis", value: "\(config["axis"] ?? "nil")")
        }
    }
}
