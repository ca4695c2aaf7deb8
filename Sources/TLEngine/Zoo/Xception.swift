import Foundation
import TLTensor

/// `keras.applications.Xception` (Chollet 2017), with Keras' layer names (`block1_conv1`,
/// `block2_sepconv1_bn`, …, `block14_sepconv2_act`, `avg_pool`, `predictions`).
///
/// The four strided 1×1 shortcut convolutions, their BatchNormalizations and the residual
/// additions are unnamed in Keras: `conv2d` … `conv2d_3`, `batch_normalization` …
/// `batch_normalization_3`, `add` … `add_11`.
public enum Xception {
    /// Builds the network.
    /// - Parameters:
    ///   - options: Keras constructor options; the input defaults to 299×299×3 with the top and any
    ///     size (at least 71×71) without.
    ///   - filterDivisor: divides every convolution's filter count (rounding down, at least 1).
    ///     1 is Keras' network; larger values give a narrow copy for tests.
    public static func build(options: ApplicationOptions = .init(), filterDivisor: Int = 1) throws -> Graph {
        let builder = GraphBuilder()
        let names = KerasLayerNames()
        let shape = options.inputShape ?? (options.includeTop ? [299, 299, 3] : [-1, -1, 3])
        func width(_ filters: Int) -> Int { max(1, filters / filterDivisor) }

        func separable(_ x: GraphTensor, _ filters: Int, name: String) throws -> GraphTensor {
            let y = try builder.separableConv2D(x, filters: width(filters), kernelSize: 3, padding: .same, useBias: false,
                                                name: name)
            return try builder.batchNormalization(y, epsilon: 1e-3, name: "\(name)_bn")
        }
        func shortcut(_ x: GraphTensor, _ filters: Int) throws -> GraphTensor {
            let y = try builder.conv2D(x, filters: width(filters), kernelSize: 1, strides: 2, padding: .same,
                                       useBias: false, name: names.next("conv2d"))
            return try builder.batchNormalization(y, epsilon: 1e-3, name: names.next("batch_normalization"))
        }

        var x = builder.input(shape: shape, name: "input_1")
        x = try builder.conv2D(x, filters: width(32), kernelSize: 3, strides: 2, useBias: false, name: "block1_conv1")
        x = try builder.batchNormalization(x, epsilon: 1e-3, name: "block1_conv1_bn")
        x = try builder.activation(x, .relu, name: "block1_conv1_act")
        x = try builder.conv2D(x, filters: width(64), kernelSize: 3, useBias: false, name: "block1_conv2")
        x = try builder.batchNormalization(x, epsilon: 1e-3, name: "block1_conv2_bn")
        x = try builder.activation(x, .relu, name: "block1_conv2_act")

        // Entry flow: blocks 2–4 halve the resolution; block 2 starts without a ReLU.
        for (block, filters) in [(2, 128), (3, 256), (4, 728)] {
            let residual = try shortcut(x, filters)
            if block > 2 { x = try builder.activation(x, .relu, name: "block\(block)_sepconv1_act") }
            x = try separable(x, filters, name: "block\(block)_sepconv1")
            x = try builder.activation(x, .relu, name: "block\(block)_sepconv2_act")
            x = try separable(x, filters, name: "block\(block)_sepconv2")
            x = try builder.maxPooling2D(x, poolSize: 3, strides: 2, padding: .same, name: "block\(block)_pool")
            x = try builder.add([x, residual], name: names.next("add"))
        }

        // Middle flow: eight residual blocks of three separable convolutions.
        for block in 5...12 {
            let residual = x
            for index in 1...3 {
                x = try builder.activation(x, .relu, name: "block\(block)_sepconv\(index)_act")
                x = try separable(x, 728, name: "block\(block)_sepconv\(index)")
            }
            x = try builder.add([x, residual], name: names.next("add"))
        }

        // Exit flow.
        let residual = try shortcut(x, 1024)
        x = try builder.activation(x, .relu, name: "block13_sepconv1_act")
        x = try separable(x, 728, name: "block13_sepconv1")
        x = try builder.activation(x, .relu, name: "block13_sepconv2_act")
        x = try separable(x, 1024, name: "block13_sepconv2")
        x = try builder.maxPooling2D(x, poolSize: 3, strides: 2, padding: .same, name: "block13_pool")
        x = try builder.add([x, residual], name: names.next("add"))
        x = try separable(x, 1536, name: "block14_sepconv1")
        x = try builder.activation(x, .relu, name: "block14_sepconv1_act")
        x = try separable(x, 2048, name: "block14_sepconv2")
        x = try builder.activation(x, .relu, name: "block14_sepconv2_act")

        x = try builder.applicationHead(x, options: options, top: .pooled(poolName: "avg_pool"), names: names)
        return try builder.build(outputs: [x], name: "xception")
    }
}

// MARK: - The family

extension Xception {
    /// Xception.
    public struct Family: ArchitectureFamily {
        public init() {}
        public static let nameForms = ["xception"]

        public static func parse(compactName: String, original: String) throws -> Family? {
            compactName == "xception" ? Family() : nil
        }

        public static func detect(in weights: WeightSource, layers: Set<String>) throws -> Family? {
            layers.contains("block1_conv1") && layers.contains("block14_sepconv2") ? Family() : nil
        }

        public func build(options: ApplicationOptions) throws -> Graph { try Xception.build(options: options) }
        public var minimumInputSize: Int { 71 }
        public var description: String { "xception" }
    }
}

extension Architecture {
    /// Xception.
    public static let xception = Architecture(Xception.Family())
}
