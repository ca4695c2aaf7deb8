import Foundation
import TLTensor

/// `keras.applications.InceptionV3` (Szegedy et al. 2016).
///
/// Keras names only the block outputs (`mixed0` … `mixed10`, `mixed9_0`, `mixed9_1`), `avg_pool`
/// and `predictions`; every convolution, BatchNormalization (`scale=False`), activation and
/// pooling layer gets its automatic name (`conv2d` … `conv2d_93`, `batch_normalization_…`,
/// `activation_…`), reproduced here in Keras' creation order.
public enum InceptionV3 {
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
        let input = builder.input(shape: shape, name: "input_1")

        func convolution(_ x: GraphTensor, _ filters: Int, _ rows: Int, _ columns: Int, strides: Int = 1,
                         padding: Padding = .same) throws -> GraphTensor {
            try builder.conv2dBN(x, filters: max(1, filters / filterDivisor), kernelSize: (rows, columns),
                                 strides: strides, padding: padding, names: names)
        }
        func averagePool(_ x: GraphTensor) throws -> GraphTensor {
            try builder.averagePooling2D(x, poolSize: 3, strides: 1, padding: .same, name: names.next("average_pooling2d"))
        }
        func maxPool(_ x: GraphTensor) throws -> GraphTensor {
            try builder.maxPooling2D(x, poolSize: 3, strides: 2, name: names.next("max_pooling2d"))
        }

        var x = try convolution(input, 32, 3, 3, strides: 2, padding: .valid)
        x = try convolution(x, 32, 3, 3, padding: .valid)
        x = try convolution(x, 64, 3, 3)
        x = try maxPool(x)
        x = try convolution(x, 80, 1, 1, padding: .valid)
        x = try convolution(x, 192, 3, 3, padding: .valid)
        x = try maxPool(x)

        // mixed0…mixed2: 35×35 blocks.
        for (index, poolFilters) in [32, 64, 64].enumerated() {
            let branch1x1 = try convolution(x, 64, 1, 1)
            var branch5x5 = try convolution(x, 48, 1, 1)
            branch5x5 = try convolution(branch5x5, 64, 5, 5)
            var branch3x3 = try convolution(x, 64, 1, 1)
            branch3x3 = try convolution(branch3x3, 96, 3, 3)
            branch3x3 = try convolution(branch3x3, 96, 3, 3)
            let branchPool = try convolution(try averagePool(x), poolFilters, 1, 1)
            x = try builder.concatenate([branch1x1, branch5x5, branch3x3, branchPool], name: "mixed\(index)")
        }

        // mixed3: reduction to 17×17.
        do {
            let branch3x3 = try convolution(x, 384, 3, 3, strides: 2, padding: .valid)
            var branch3x3Double = try convolution(x, 64, 1, 1)
            branch3x3Double = try convolution(branch3x3Double, 96, 3, 3)
            branch3x3Double = try convolution(branch3x3Double, 96, 3, 3, strides: 2, padding: .valid)
            let branchPool = try maxPool(x)
            x = try builder.concatenate([branch3x3, branch3x3Double, branchPool], name: "mixed3")
        }

        // mixed4…mixed7: 17×17 blocks with factorized 7×7 convolutions.
        for (index, width) in [128, 160, 160, 192].enumerated() {
            let branch1x1 = try convolution(x, 192, 1, 1)
            var branch7x7 = try convolution(x, width, 1, 1)
            branch7x7 = try convolution(branch7x7, width, 1, 7)
            branch7x7 = try convolution(branch7x7, 192, 7, 1)
            var branch7x7Double = try convolution(x, width, 1, 1)
            branch7x7Double = try convolution(branch7x7Double, width, 7, 1)
            branch7x7Double = try convolution(branch7x7Double, width, 1, 7)
            branch7x7Double = try convolution(branch7x7Double, width, 7, 1)
            branch7x7Double = try convolution(branch7x7Double, 192, 1, 7)
            let branchPool = try convolution(try averagePool(x), 192, 1, 1)
            x = try builder.concatenate([branch1x1, branch7x7, branch7x7Double, branchPool], name: "mixed\(index + 4)")
        }

        // mixed8: reduction to 8×8.
        do {
            var branch3x3 = try convolution(x, 192, 1, 1)
            branch3x3 = try convolution(branch3x3, 320, 3, 3, strides: 2, padding: .valid)
            var branch7x7x3 = try convolution(x, 192, 1, 1)
            branch7x7x3 = try convolution(branch7x7x3, 192, 1, 7)
            branch7x7x3 = try convolution(branch7x7x3, 192, 7, 1)
            branch7x7x3 = try convolution(branch7x7x3, 192, 3, 3, strides: 2, padding: .valid)
            let branchPool = try maxPool(x)
            x = try builder.concatenate([branch3x3, branch7x7x3, branchPool], name: "mixed8")
        }

        // mixed9, mixed10: 8×8 blocks with expanded filter banks.
        for index in 0..<2 {
            let branch1x1 = try convolution(x, 320, 1, 1)
            let branch3x3Stem = try convolution(x, 384, 1, 1)
            let branch3x3Left = try convolution(branch3x3Stem, 384, 1, 3)
            let branch3x3Right = try convolution(branch3x3Stem, 384, 3, 1)
            let branch3x3 = try builder.concatenate([branch3x3Left, branch3x3Right], name: "mixed9_\(index)")
            var branch3x3Double = try convolution(x, 448, 1, 1)
            branch3x3Double = try convolution(branch3x3Double, 384, 3, 3)
            let branch3x3DoubleLeft = try convolution(branch3x3Double, 384, 1, 3)
            let branch3x3DoubleRight = try convolution(branch3x3Double, 384, 3, 1)
            branch3x3Double = try builder.concatenate([branch3x3DoubleLeft, branch3x3DoubleRight],
                                                      name: names.next("concatenate"))
            let branchPool = try convolution(try averagePool(x), 192, 1, 1)
            x = try builder.concatenate([branch1x1, branch3x3, branch3x3Double, branchPool], name: "mixed\(9 + index)")
        }

        x = try builder.applicationHead(x, options: options, top: .pooled(poolName: "avg_pool"), names: names)
        return try builder.build(outputs: [x], name: "inception_v3")
    }
}

// MARK: - The family

extension InceptionV3 {
    /// InceptionV3 (`conv2d_bn` blocks with automatic names `conv2d`…`conv2d_93`).
    public struct Family: ArchitectureFamily {
        public init() {}
        public static let nameForms = ["inceptionv3"]

        public static func parse(compactName: String, original: String) throws -> Family? {
            compactName == "inceptionv3" ? Family() : nil
        }

        /// 94 unnamed convolutions and BatchNorms (numbered from 0 once `AutomaticNames` has
        /// renumbered a busy session's), a 32-filter RGB stem.
        public static func detect(in weights: WeightSource, layers: Set<String>) throws -> Family? {
            guard layers.contains("conv2d_93") && !layers.contains("conv2d_94") && layers.contains("batch_normalization_93"),
                  weights.shape(layer: "conv2d", weight: "kernel") == [3, 3, 3, 32] else { return nil }
            return Family()
        }

        public func build(options: ApplicationOptions) throws -> Graph { try InceptionV3.build(options: options) }
        public var minimumInputSize: Int { 75 }
        public var description: String { "inception_v3" }
    }
}

extension Architecture {
    /// InceptionV3.
    public static let inceptionV3 = Architecture(InceptionV3.Family())
}
