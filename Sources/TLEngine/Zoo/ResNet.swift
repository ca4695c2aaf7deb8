import Foundation
import TLTensor

/// `keras.applications.ResNet50/101/152` (v1, He et al. 2015) and `ResNet50V2/101V2/152V2`
/// (pre-activation), with Keras' layer names (`conv1_conv`, `conv2_block1_0_conv`, …,
/// `conv5_block3_out`, `post_bn`, `avg_pool`, `predictions`) and BatchNorm epsilon 1.001e-5.
public enum ResNet {
    /// One stage: `filters` bottleneck width (outputs are 4×), `blocks` residual blocks, and the
    /// stride of the stage's first (v1) or last (v2) block.
    public struct Stage: Sendable, Equatable {
        public var filters: Int
        public var blocks: Int
        public var stride: Int
        public init(filters: Int, blocks: Int, stride: Int) {
            self.filters = filters
            self.blocks = blocks
            self.stride = stride
        }
    }

    static let epsilon: Float = 1.001e-5

    /// Stages of ResNet-50/101/152 (v1: first stage stride 1, others 2).
    public static func stagesV1(depth: Int) -> [Stage] {
        let blocks = depth == 101 ? [3, 4, 23, 3] : depth == 152 ? [3, 8, 36, 3] : [3, 4, 6, 3]
        return zip([64, 128, 256, 512], zip(blocks, [1, 2, 2, 2])).map { Stage(filters: $0, blocks: $1.0, stride: $1.1) }
    }

    /// Stages of ResNet-50/101/152 V2 (the stride sits in each stage's last block; none in conv5).
    public static func stagesV2(depth: Int) -> [Stage] {
        let blocks = depth == 101 ? [3, 4, 23, 3] : depth == 152 ? [3, 8, 36, 3] : [3, 4, 6, 3]
        return zip([64, 128, 256, 512], zip(blocks, [2, 2, 2, 1])).map { Stage(filters: $0, blocks: $1.0, stride: $1.1) }
    }

    /// Builds a ResNet.
    /// - Parameters:
    ///   - stages: `stagesV1(depth:)`/`stagesV2(depth:)` or a custom (narrower) stack.
    ///   - preActivation: true for the V2 family.
    ///   - options: Keras constructor options; input defaults to any size (224×224 for the name).
    public static func build(stages: [Stage], preActivation: Bool = false, options: ApplicationOptions = .init(),
                             name: String = "resnet50") throws -> Graph {
        let builder = GraphBuilder()
        var x = builder.input(shape: options.inputShape ?? [-1, -1, 3], name: "input_1")
        x = try builder.zeroPadding2D(x, ((3, 3), (3, 3)), name: "conv1_pad")
        x = try builder.conv2D(x, filters: 64, kernelSize: 7, strides: 2, useBias: true, name: "conv1_conv")
        if !preActivation {
            x = try builder.batchNormalization(x, epsilon: epsilon, name: "conv1_bn")
            x = try builder.activation(x, .relu, name: "conv1_relu")
        }
        x = try builder.zeroPadding2D(x, ((1, 1), (1, 1)), name: "pool1_pad")
        x = try builder.maxPooling2D(x, poolSize: 3, strides: 2, name: "pool1_pool")
        for (index, stage) in stages.enumerated() {
            let stageName = "conv\(index + 2)"
            if preActivation {
                for block in 1...stage.blocks {
                    x = try blockV2(builder, x, filters: stage.filters, stride: block == stage.blocks ? stage.stride : 1,
                                    convolutionShortcut: block == 1, name: "\(stageName)_block\(block)")
                }
            } else {
                for block in 1...stage.blocks {
                    x = try blockV1(builder, x, filters: stage.filters, stride: block == 1 ? stage.stride : 1,
                                    convolutionShortcut: block == 1, name: "\(stageName)_block\(block)")
                }
            }
        }
        if preActivation {
            x = try builder.batchNormalization(x, epsilon: epsilon, name: "post_bn")
            x = try builder.activation(x, .relu, name: "post_relu")
        }
        x = try builder.applicationHead(x, options: options, averageName: "avg_pool", maxName: "max_pool")
        return try builder.build(outputs: [x], name: name)
    }

    private static func blockV1(_ builder: GraphBuilder, _ input: GraphTensor, filters: Int, stride: Int,
                                convolutionShortcut: Bool, name: String) throws -> GraphTensor {
        var shortcut = input
        if convolutionShortcut {
            shortcut = try builder.conv2D(input, filters: 4 * filters, kernelSize: 1, strides: stride, name: "\(name)_0_conv")
            shortcut = try builder.batchNormalization(shortcut, epsilon: epsilon, name: "\(name)_0_bn")
        }
        var x = try builder.conv2D(input, filters: filters, kernelSize: 1, strides: stride, name: "\(name)_1_conv")
        x = try builder.batchNormalization(x, epsilon: epsilon, name: "\(name)_1_bn")
        x = try builder.activation(x, .relu, name: "\(name)_1_relu")
        x = try builder.conv2D(x, filters: filters, kernelSize: 3, padding: .same, name: "\(name)_2_conv")
        x = try builder.batchNormalization(x, epsilon: epsilon, name: "\(name)_2_bn")
        x = try builder.activation(x, .relu, name: "\(name)_2_relu")
        x = try builder.conv2D(x, filters: 4 * filters, kernelSize: 1, name: "\(name)_3_conv")
        x = try builder.batchNormalization(x, epsilon: epsilon, name: "\(name)_3_bn")
        x = try builder.add([shortcut, x], name: "\(name)_add")
        return try builder.activation(x, .relu, name: "\(name)_out")
    }

    private static func blockV2(_ builder: GraphBuilder, _ input: GraphTensor, filters: Int, stride: Int,
                                convolutionShortcut: Bool, name: String) throws -> GraphTensor {
        var preact = try builder.batchNormalization(input, epsilon: epsilon, name: "\(name)_preact_bn")
        preact = try builder.activation(preact, .relu, name: "\(name)_preact_relu")
        let shortcut: GraphTensor
        if convolutionShortcut {
            shortcut = try builder.conv2D(preact, filters: 4 * filters, kernelSize: 1, strides: stride, name: "\(name)_0_conv")
        } else if stride > 1 {
            shortcut = try builder.maxPooling2D(input, poolSize: 1, strides: stride, name: "\(name)_shortcut_pool")
        } else {
            shortcut = input
        }
        var x = try builder.conv2D(preact, filters: filters, kernelSize: 1, useBias: false, name: "\(name)_1_conv")
        x = try builder.batchNormalization(x, epsilon: epsilon, name: "\(name)_1_bn")
        x = try builder.activation(x, .relu, name: "\(name)_1_relu")
        x = try builder.zeroPadding2D(x, ((1, 1), (1, 1)), name: "\(name)_2_pad")
        x = try builder.conv2D(x, filters: filters, kernelSize: 3, strides: stride, useBias: false, name: "\(name)_2_conv")
        x = try builder.batchNormalization(x, epsilon: epsilon, name: "\(name)_2_bn")
        x = try builder.activation(x, .relu, name: "\(name)_2_relu")
        x = try builder.conv2D(x, filters: 4 * filters, kernelSize: 1, name: "\(name)_3_conv")
        return try builder.add([shortcut, x], name: "\(name)_out")
    }
}

// MARK: - The family

extension ResNet {
    /// ResNet v1, or v2 (pre-activation), with 50, 101 or 152 layers.
    public struct Family: ArchitectureFamily {
        /// 50, 101 or 152.
        public var depth: Int
        /// ResNet v2 (pre-activation, `post_bn`).
        public var preActivation: Bool

        public static let nameForms = ["resnet50", "resnet101", "resnet152", "resnet50v2", "resnet101v2", "resnet152v2"]

        public static func parse(compactName: String, original: String) throws -> Family? {
            for depth in [50, 101, 152] {
                if compactName == "resnet\(depth)" { return Family(depth: depth, preActivation: false) }
                if compactName == "resnet\(depth)v2" { return Family(depth: depth, preActivation: true) }
            }
            return nil
        }

        /// The depth from the number of blocks in stages 3 and 4.
        public static func detect(in weights: WeightSource, layers: Set<String>) throws -> Family? {
            guard layers.contains("conv1_conv") else { return nil }
            let depth = layers.contains("conv3_block8_1_conv") ? 152 : layers.contains("conv4_block23_1_conv") ? 101 : 50
            return Family(depth: depth, preActivation: layers.contains("post_bn"))
        }

        public func build(options: ApplicationOptions) throws -> Graph {
            if preActivation {
                return try ResNet.build(stages: ResNet.stagesV2(depth: depth), preActivation: true, options: options, name: description)
            }
            return try ResNet.build(stages: ResNet.stagesV1(depth: depth), options: options, name: description)
        }

        public var description: String { "resnet\(depth)" + (preActivation ? "v2" : "") }
    }
}

extension Architecture {
    /// ResNet v1 with 50, 101 or 152 layers.
    public static func resNet(depth: Int) -> Architecture { Architecture(ResNet.Family(depth: depth, preActivation: false)) }
    /// ResNet v2 (pre-activation) with 50, 101 or 152 layers.
    public static func resNetV2(depth: Int) -> Architecture { Architecture(ResNet.Family(depth: depth, preActivation: true)) }
}
