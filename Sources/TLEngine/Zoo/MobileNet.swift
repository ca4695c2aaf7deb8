import Foundation
import TLTensor

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

// MARK: - The family

extension MobileNet {
    /// MobileNet v1 with width `alpha` (0: read from the weights) and depthwise `depthMultiplier`.
    public struct Family: ArchitectureFamily {
        public var alpha: Double
        public var depthMultiplier: Int

        public static let nameForms = ["mobilenet[_ALPHA]"]

        public static func parse(compactName: String, original: String) throws -> Family? {
            for stem in ["mobilenetv1", "mobilenet"] where compactName.hasPrefix(stem) {
                let rest = compactName.dropFirst(stem.count)
                if rest.hasPrefix("v") { return nil }
                return Family(alpha: try Architecture.width(rest, family: "MobileNet", original: original), depthMultiplier: 1)
            }
            return nil
        }

        public static func detect(in weights: WeightSource, layers: Set<String>) throws -> Family? {
            layers.contains("conv1") && layers.contains("conv_pw_13") ? Family(alpha: 0, depthMultiplier: 1) : nil
        }

        /// The depth multiplier from `conv_dw_1`, an omitted alpha from `conv1`'s filters.
        public func resolved(using weights: WeightSource) throws -> Family {
            guard let conv1 = weights.shape(layer: "conv1", weight: "kernel"), conv1.count == 4 else { return self }
            let depthwise = weights.shape(layer: "conv_dw_1", weight: "depthwise_kernel") ?? weights.shape(layer: "conv_dw_1", weight: "kernel")
            let multiplier = depthwise?.last ?? 1
            if alpha > 0 { return Family(alpha: alpha, depthMultiplier: multiplier) }
            let candidates = MobileNet.alphas + [Double(conv1[3]) / 32]
            guard let found = candidates.first(where: { Int(32 * $0) == conv1[3] }) else {
                throw EngineError.unknownArchitecture("MobileNet with \(conv1[3]) filters in conv1 matches no alpha")
            }
            return Family(alpha: found, depthMultiplier: multiplier)
        }

        public func build(options: ApplicationOptions) throws -> Graph {
            try MobileNet.build(alpha: alpha == 0 ? 1 : alpha, depthMultiplier: depthMultiplier, options: options)
        }

        public var description: String {
            "mobilenet_\(String(format: "%.2f", alpha))" + (depthMultiplier == 1 ? "" : "_dm\(depthMultiplier)")
        }
    }
}

extension Architecture {
    /// MobileNet v1 with width `alpha` (0: read from the weights) and depthwise `depthMultiplier`.
    public static func mobileNet(alpha: Double, depthMultiplier: Int) -> Architecture {
        Architecture(MobileNet.Family(alpha: alpha, depthMultiplier: depthMultiplier))
    }
}
