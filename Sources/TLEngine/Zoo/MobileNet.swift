import Foundation

/// `keras.applications.MobileNet` (v1, Howard et al. 2017), with Keras' layer names:
/// `conv1`, `conv1_bn`, `conv1_relu`, `conv_pad_2`, `conv_dw_1`, `conv_dw_1_bn`, `conv_pw_1`, …,
/// `conv_pw_13_relu`, and with the top `conv_preds`, `reshape_2`, `predictions`.
public enum MobileNet {
    /// The width multipliers Keras publishes weights for.
    public static let alphas: [Double] = [0.25, 0.5, 0.75, 1.0]

    /// `(pointwise filters, stride)` of depthwise-separable blocks 1…13.
    static let blocks: [(filters: Int, stride: Int)] = [
        (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
        (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1),
    ]

    /// Builds the network.
    /// - Parameters:
    ///   - alpha: width multiplier; every layer has `int(filters * alpha)` filters.
    ///   - depthMultiplier: Keras `depth_multiplier` of every depthwise convolution.
    ///   - options: Keras constructor options; with the top the input defaults to 224×224×3,
    ///     without it to any size.
    public static func build(alpha: Double = 1.0, depthMultiplier: Int = 1,
                             options: ApplicationOptions = .init()) throws -> Graph {
        let shape = options.inputShape ?? (options.includeTop ? [224, 224, 3] : [-1, -1, 3])
        let builder = GraphBuilder()
        var x = builder.input(shape: shape, name: "input_1")
        x = try builder.conv2D(x, filters: Int(32 * alpha), kernelSize: 3, strides: 2, padding: .same,
                               useBias: false, name: "conv1")
        x = try builder.batchNormalization(x, epsilon: 1e-3, name: "conv1_bn")
        x = try builder.relu(x, maxValue: 6, name: "conv1_relu")
        for (index, block) in blocks.enumerated() {
            let id = index + 1
            if block.stride == 2 {
                x = try builder.zeroPadding2D(x, ((0, 1), (0, 1)), name: "conv_pad_\(id)")
            }
            x = try builder.depthwiseConv2D(x, kernelSize: 3, strides: block.stride,
                                            padding: block.stride == 1 ? .same : .valid,
                                            depthMultiplier: depthMultiplier, useBias: false, name: "conv_dw_\(id)")
            x = try builder.batchNormalization(x, epsilon: 1e-3, name: "conv_dw_\(id)_bn")
            x = try builder.relu(x, maxValue: 6, name: "conv_dw_\(id)_relu")
            x = try builder.conv2D(x, filters: Int(Double(block.filters) * alpha), kernelSize: 1, padding: .same,
                                   useBias: false, name: "conv_pw_\(id)")
            x = try builder.batchNormalization(x, epsilon: 1e-3, name: "conv_pw_\(id)_bn")
            x = try builder.relu(x, maxValue: 6, name: "conv_pw_\(id)_relu")
        }
        if options.includeTop {
            x = try builder.globalAveragePooling2D(x, keepDimensions: true, name: "global_average_pooling2d")
            x = try builder.dropout(x, name: "dropout")
            x = try builder.conv2D(x, filters: options.classes, kernelSize: 1, padding: .same, name: "conv_preds")
            x = try builder.reshape(x, to: [options.classes], name: "reshape_2")
            x = try builder.activation(x, options.classifierActivation, name: "predictions")
        } else {
            switch options.pooling {
            case .avg: x = try builder.globalAveragePooling2D(x, name: "global_average_pooling2d")
            case .max: x = try builder.globalMaxPooling2D(x, name: "global_max_pooling2d")
            case .none: break
            }
        }
        let rows = shape[0] > 0 ? shape[0] : 224
        return try builder.build(outputs: [x], name: "mobilenet_\(String(format: "%.2f", alpha))_\(rows)")
    }
}
