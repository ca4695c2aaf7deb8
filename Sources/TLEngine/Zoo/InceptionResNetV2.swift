import Foundation
import TLTensor

/// `keras.applications.InceptionResNetV2` (Szegedy et al. 2017).
///
/// Keras names the block outputs (`mixed_5b`, `block35_1_mixed`, `block35_1_conv`,
/// `block35_1_ac`, …, `mixed_7a`, `block8_10_conv`, `conv_7b`, `conv_7b_bn`, `conv_7b_ac`); the
/// other convolutions, BatchNormalizations (`scale=False`), activations and pools, and the
/// residual scaling layers (`custom_scale_layer` …), get automatic names in creation order.
public enum InceptionResNetV2 {
    /// The three residual Inception blocks, named as Keras names them.
    enum Block: String {
        /// Inception-ResNet-A, 35×35 in the full network.
        case block35
        /// Inception-ResNet-B, 17×17.
        case block17
        /// Inception-ResNet-C, 8×8.
        case block8
    }

    /// Builds the network.
    /// - Parameters:
    ///   - options: Keras constructor options; the input defaults to 299×299×3 with the top and any
    ///     size (at least 75×75) without.
    ///   - filterDivisor: divides every convolution's filter count (rounding down, at least 1).
    ///     1 is Keras' network; larger values give a narrow copy for tests.
    public static func build(options: ApplicationOptions = .init(), filterDivisor: Int = 1) throws -> Graph {
        let builder = GraphBuilder()
        let names = KerasLayerNames()
        let shape = options.inputShape ?? (options.includeTop ? [299, 299, 3] : [-1, -1, 3])

        /// Keras' `conv2d_bn`: convolution, then BatchNormalization unless it has a bias, then the activation.
        func convolution(_ x: GraphTensor, _ filters: Int, _ kernelSize: (Int, Int), strides: Int = 1,
                         padding: Padding = .same, activation: Bool = true, useBias: Bool = false,
                         name: String? = nil) throws -> GraphTensor {
            try builder.conv2dBN(x, filters: max(1, filters / filterDivisor), kernelSize: kernelSize, strides: strides,
                                 padding: padding, activation: activation, useBias: useBias, name: name, names: names)
        }
        func convolution(_ x: GraphTensor, _ filters: Int, _ kernelSize: Int, strides: Int = 1,
                         padding: Padding = .same) throws -> GraphTensor {
            try convolution(x, filters, (kernelSize, kernelSize), strides: strides, padding: padding)
        }
        func maxPool(_ x: GraphTensor) throws -> GraphTensor {
            try builder.maxPooling2D(x, poolSize: 3, strides: 2, name: names.next("max_pooling2d"))
        }

        /// One residual Inception block: branches, `_mixed` concatenation, the biased 1×1 `_conv`
        /// back to the input width, `x + scale · up`, and the `_ac` ReLU (none on `block8_10`).
        func residualBlock(_ x: GraphTensor, scale: Float, type: Block, index: Int,
                           activation: Bool = true) throws -> GraphTensor {
            var branches: [GraphTensor]
            switch type {
            case .block35:
                let branch0 = try convolution(x, 32, 1)
                var branch1 = try convolution(x, 32, 1)
                branch1 = try convolution(branch1, 32, 3)
                var branch2 = try convolution(x, 32, 1)
                branch2 = try convolution(branch2, 48, 3)
                branch2 = try convolution(branch2, 64, 3)
                branches = [branch0, branch1, branch2]
            case .block17:
                let branch0 = try convolution(x, 192, 1)
                var branch1 = try convolution(x, 128, 1)
                branch1 = try convolution(branch1, 160, (1, 7))
                branch1 = try convolution(branch1, 192, (7, 1))
                branches = [branch0, branch1]
            case .block8:
                let branch0 = try convolution(x, 192, 1)
                var branch1 = try convolution(x, 192, 1)
                branch1 = try convolution(branch1, 224, (1, 3))
                branch1 = try convolution(branch1, 256, (3, 1))
                branches = [branch0, branch1]
            }
            let blockName = "\(type.rawValue)_\(index)"
            let mixed = try builder.concatenate(branches, name: "\(blockName)_mixed")
            // The projection keeps the input's channel count (already divided), so no further division.
            let up = try builder.conv2D(mixed, filters: builder.channels(of: x), kernelSize: (1, 1), padding: .same,
                                        useBias: true, name: "\(blockName)_conv")
            var y = try builder.apply(ScaledResidual(name: names.next("custom_scale_layer"), scale: scale), to: [x, up])
            if activation { y = try builder.activation(y, .relu, name: "\(blockName)_ac") }
            return y
        }

        var x = builder.input(shape: shape, name: "input_1")
        x = try convolution(x, 32, 3, strides: 2, padding: .valid)
        x = try convolution(x, 32, 3, padding: .valid)
        x = try convolution(x, 64, 3)
        x = try maxPool(x)
        x = try convolution(x, 80, 1, padding: .valid)
        x = try convolution(x, 192, 3, padding: .valid)
        x = try maxPool(x)

        // mixed_5b (Inception-A).
        do {
            let branch0 = try convolution(x, 96, 1)
            var branch1 = try convolution(x, 48, 1)
            branch1 = try convolution(branch1, 64, 5)
            var branch2 = try convolution(x, 64, 1)
            branch2 = try convolution(branch2, 96, 3)
            branch2 = try convolution(branch2, 96, 3)
            let pooled = try builder.averagePooling2D(x, poolSize: 3, strides: 1, padding: .same,
                                                      name: names.next("average_pooling2d"))
            let branchPool = try convolution(pooled, 64, 1)
            x = try builder.concatenate([branch0, branch1, branch2, branchPool], name: "mixed_5b")
        }
        for index in 1...10 { x = try residualBlock(x, scale: 0.17, type: .block35, index: index) }

        // mixed_6a (Reduction-A).
        do {
            let branch0 = try convolution(x, 384, 3, strides: 2, padding: .valid)
            var branch1 = try convolution(x, 256, 1)
            branch1 = try convolution(branch1, 256, 3)
            branch1 = try convolution(branch1, 384, 3, strides: 2, padding: .valid)
            let branchPool = try maxPool(x)
            x = try builder.concatenate([branch0, branch1, branchPool], name: "mixed_6a")
        }
        for index in 1...20 { x = try residualBlock(x, scale: 0.1, type: .block17, index: index) }

        // mixed_7a (Reduction-B).
        do {
            var branch0 = try convolution(x, 256, 1)
            branch0 = try convolution(branch0, 384, 3, strides: 2, padding: .valid)
            var branch1 = try convolution(x, 256, 1)
            branch1 = try convolution(branch1, 288, 3, strides: 2, padding: .valid)
            var branch2 = try convolution(x, 256, 1)
            branch2 = try convolution(branch2, 288, 3)
            branch2 = try convolution(branch2, 320, 3, strides: 2, padding: .valid)
            let branchPool = try maxPool(x)
            x = try builder.concatenate([branch0, branch1, branch2, branchPool], name: "mixed_7a")
        }
        for index in 1...9 { x = try residualBlock(x, scale: 0.2, type: .block8, index: index) }
        x = try residualBlock(x, scale: 1, type: .block8, index: 10, activation: false)
        x = try convolution(x, 1536, (1, 1), name: "conv_7b")

        x = try builder.applicationHead(x, options: options, top: .pooled(poolName: "avg_pool"), names: names)
        return try builder.build(outputs: [x], name: "inception_resnet_v2")
    }
}

// MARK: - The family

extension InceptionResNetV2 {
    /// InceptionResNetV2.
    public struct Family: ArchitectureFamily {
        public init() {}
        public static let nameForms = ["inceptionresnetv2"]

        public static func parse(compactName: String, original: String) throws -> Family? {
            compactName == "inceptionresnetv2" ? Family() : nil
        }

        public static func detect(in weights: WeightSource, layers: Set<String>) throws -> Family? {
            layers.contains("block35_1_conv") && layers.contains("conv_7b") ? Family() : nil
        }

        public func build(options: ApplicationOptions) throws -> Graph { try InceptionResNetV2.build(options: options) }
        public var minimumInputSize: Int { 75 }
        public var description: String { "inception_resnet_v2" }
    }
}

extension Architecture {
    /// InceptionResNetV2.
    public static let inceptionResNetV2 = Architecture(InceptionResNetV2.Family())
}
