import Foundation
import TLTensor

/// `keras.applications.DenseNet121/169/201` (Huang et al. 2017), with Keras' layer names
/// (`conv1/conv`, `conv1/bn`, `pool1`, `conv2_block1_0_bn`, …, `pool2_conv`, `pool2_pool`, `bn`,
/// `relu`, `avg_pool`, `predictions`) and BatchNorm epsilon 1.001e-5.
public enum DenseNet {
    /// Dense blocks of DenseNet-121.
    public static let blocks121 = [6, 12, 24, 16]
    /// Dense blocks of DenseNet-169.
    public static let blocks169 = [6, 12, 32, 32]
    /// Dense blocks of DenseNet-201.
    public static let blocks201 = [6, 12, 48, 32]

    static let epsilon: Float = 1.001e-5
    /// Channels each convolution block adds.
    static let growthRate = 32

    /// The Keras model name for a block configuration.
    static func modelName(blocks: [Int]) -> String {
        switch blocks {
        case blocks121: return "densenet121"
        case blocks169: return "densenet169"
        case blocks201: return "densenet201"
        default: return "densenet"
        }
    }

    /// Builds a DenseNet, as Keras' `DenseNet(blocks, …)` constructor does.
    /// - Parameters:
    ///   - blocks: convolution blocks in each of the four dense blocks (`blocks121`, …, or any
    ///     other four counts, e.g. `[1, 1, 1, 1]` for a tiny network).
    ///   - options: Keras constructor options; the input defaults to 224×224×3 with the top and any
    ///     size (at least 32×32) without.
    /// - Throws: `EngineError.incompatibleShapes` for a block list that is not four counts ≥ 1.
    public static func build(blocks: [Int] = blocks121, options: ApplicationOptions = .init()) throws -> Graph {
        guard blocks.count == 4, blocks.allSatisfy({ $0 >= 1 }) else {
            throw EngineError.incompatibleShapes(layer: "densenet", detail: "DenseNet needs four block counts ≥ 1, got \(blocks)")
        }
        let builder = GraphBuilder()
        let shape = options.inputShape ?? (options.includeTop ? [224, 224, 3] : [-1, -1, 3])
        var x = builder.input(shape: shape, name: "input_1")
        x = try builder.zeroPadding2D(x, ((3, 3), (3, 3)), name: "zero_padding2d")
        x = try builder.conv2D(x, filters: 64, kernelSize: 7, strides: 2, useBias: false, name: "conv1/conv")
        x = try builder.batchNormalization(x, epsilon: epsilon, name: "conv1/bn")
        x = try builder.activation(x, .relu, name: "conv1/relu")
        x = try builder.zeroPadding2D(x, ((1, 1), (1, 1)), name: "zero_padding2d_1")
        x = try builder.maxPooling2D(x, poolSize: 3, strides: 2, name: "pool1")
        for (stage, count) in blocks.enumerated() {
            for block in 1...count {
                x = try convolutionBlock(builder, x, name: "conv\(stage + 2)_block\(block)")
            }
            if stage < 3 {
                x = try transitionBlock(builder, x, name: "pool\(stage + 2)")
            }
        }
        x = try builder.batchNormalization(x, epsilon: epsilon, name: "bn")
        x = try builder.activation(x, .relu, name: "relu")
        x = try builder.applicationHead(x, options: options, averageName: "avg_pool", maxName: "max_pool")
        return try builder.build(outputs: [x], name: modelName(blocks: blocks))
    }

    /// BN–ReLU–1×1 conv (4 × growth)–BN–ReLU–3×3 conv (growth), concatenated onto the input.
    private static func convolutionBlock(_ builder: GraphBuilder, _ input: GraphTensor, name: String) throws -> GraphTensor {
        var x = try builder.batchNormalization(input, epsilon: epsilon, name: "\(name)_0_bn")
        x = try builder.activation(x, .relu, name: "\(name)_0_relu")
        x = try builder.conv2D(x, filters: 4 * growthRate, kernelSize: 1, useBias: false, name: "\(name)_1_conv")
        x = try builder.batchNormalization(x, epsilon: epsilon, name: "\(name)_1_bn")
        x = try builder.activation(x, .relu, name: "\(name)_1_relu")
        x = try builder.conv2D(x, filters: growthRate, kernelSize: 3, padding: .same, useBias: false, name: "\(name)_2_conv")
        return try builder.concatenate([input, x], name: "\(name)_concat")
    }

    /// BN–ReLU–1×1 conv halving the channels–2×2 average pooling.
    private static func transitionBlock(_ builder: GraphBuilder, _ input: GraphTensor, name: String) throws -> GraphTensor {
        var x = try builder.batchNormalization(input, epsilon: epsilon, name: "\(name)_bn")
        x = try builder.activation(x, .relu, name: "\(name)_relu")
        x = try builder.conv2D(x, filters: builder.channels(of: x) / 2, kernelSize: 1, useBias: false, name: "\(name)_conv")
        return try builder.averagePooling2D(x, poolSize: 2, strides: 2, name: "\(name)_pool")
    }
}

// MARK: - The family

extension DenseNet {
    /// DenseNet with 121, 169 or 201 layers.
    public struct Family: ArchitectureFamily {
        /// 121, 169 or 201.
        public var depth: Int

        public static let nameForms = ["densenet121", "densenet169", "densenet201"]

        public static func parse(compactName: String, original: String) throws -> Family? {
            [121, 169, 201].first { compactName == "densenet\($0)" }.map { Family(depth: $0) }
        }

        /// The depth from the number of dense blocks per stage (`convN_blockM_1_conv`).
        public static func detect(in weights: WeightSource, layers: Set<String>) throws -> Family? {
            guard layers.contains("conv1/conv") else { return nil }
            let blocks = (2...5).map { stage in (1...).prefix { layers.contains("conv\(stage)_block\($0)_1_conv") }.count }
            guard let depth = [121, 169, 201].first(where: { (try? DenseNet.blocks(depth: $0)) == blocks }) else {
                throw EngineError.unknownArchitecture("DenseNet with dense blocks \(blocks) matches no published depth (121, 169, 201)")
            }
            return Family(depth: depth)
        }

        public func build(options: ApplicationOptions) throws -> Graph {
            try DenseNet.build(blocks: try DenseNet.blocks(depth: depth), options: options)
        }

        public var description: String { "densenet\(depth)" }
    }

    /// The dense blocks of DenseNet-121, -169 or -201.
    /// - Throws: `EngineError.unknownArchitecture` for another depth.
    public static func blocks(depth: Int) throws -> [Int] {
        switch depth {
        case 121: return blocks121
        case 169: return blocks169
        case 201: return blocks201
        default: throw EngineError.unknownArchitecture("DenseNet has 121, 169 or 201 layers, not \(depth)")
        }
    }
}

extension Architecture {
    /// DenseNet with 121, 169 or 201 layers.
    public static func denseNet(depth: Int) -> Architecture { Architecture(DenseNet.Family(depth: depth)) }
}
