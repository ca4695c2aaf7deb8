import Foundation
import TLTensor

/// `keras.applications.NASNetMobile` / `NASNetLarge` (Zoph et al. 2018, NASNet-A), and Keras'
/// general `NASNet(penultimate_filters:num_blocks:…)` constructor they call.
///
/// Keras names the convolutions, BatchNormalizations, pools and merges of each cell
/// (`stem_conv1`, `reduction_conv_1_stem_1`, `separable_conv_1_normal_left1_0`,
/// `adjust_conv_projection_5`, `normal_concat_11`, …); its ReLUs, the zero-padding and cropping of
/// the reduction adjustment, that adjustment's concatenation, one addition per reduction cell and
/// the final ReLU get automatic names (`activation_…`, `zero_padding2d_…`, `cropping2d_…`,
/// `concatenate_…`, `add_…`), reproduced here in Keras' creation order.
public enum NASNet {
    /// The hyperparameters of Keras' `NASNet(...)` constructor.
    public struct Configuration: Sendable, Equatable {
        /// Filters of the penultimate layer; a multiple of `24 · filterMultiplier²`.
        public var penultimateFilters: Int
        /// Normal cells between reductions.
        public var blockCount: Int
        /// Filters of the stem convolution.
        public var stemFilters: Int
        /// Whether a reduction cell's successors skip it as their previous input.
        public var skipReduction: Bool
        /// Width growth at each reduction.
        public var filterMultiplier: Int

        /// Creates a configuration.
        public init(penultimateFilters: Int, blockCount: Int, stemFilters: Int, skipReduction: Bool,
                    filterMultiplier: Int = 2) {
            self.penultimateFilters = penultimateFilters
            self.blockCount = blockCount
            self.stemFilters = stemFilters
            self.skipReduction = skipReduction
            self.filterMultiplier = filterMultiplier
        }

        /// NASNet-A (4 @ 1056), `keras.applications.NASNetMobile`; default input 224×224.
        public static let mobile = Configuration(penultimateFilters: 1056, blockCount: 4, stemFilters: 32, skipReduction: false)
        /// NASNet-A (6 @ 4032), `keras.applications.NASNetLarge`; default input 331×331.
        public static let large = Configuration(penultimateFilters: 4032, blockCount: 6, stemFilters: 96, skipReduction: true)
    }

    /// Builds a NASNet-A network.
    /// - Parameters:
    ///   - configuration: `.mobile`, `.large` or custom hyperparameters.
    ///   - options: Keras constructor options; the input defaults to 224×224×3 (mobile) or
    ///     331×331×3 (large and custom) with the top, and any size (at least 32×32) without.
    /// - Throws: `EngineError.incompatibleShapes` when `penultimateFilters` is not a multiple of
    ///   `24 · filterMultiplier²`, as Keras refuses it.
    public static func build(configuration: Configuration = .mobile, options: ApplicationOptions = .init()) throws -> Graph {
        let multiplier = configuration.filterMultiplier
        guard configuration.penultimateFilters > 0, multiplier > 0,
              configuration.penultimateFilters % (24 * multiplier * multiplier) == 0 else {
            throw EngineError.incompatibleShapes(layer: "NASNet", detail: "penultimate filters \(configuration.penultimateFilters) must be a multiple of 24 × \(multiplier)²")
        }
        let defaultSide = configuration == .mobile ? 224 : 331
        let shape = options.inputShape ?? (options.includeTop ? [defaultSide, defaultSide, 3] : [-1, -1, 3])
        let cells = CellBuilder(builder: GraphBuilder())
        let builder = cells.builder
        let filters = configuration.penultimateFilters / 24

        var x = builder.input(shape: shape, name: "input_1")
        x = try builder.conv2D(x, filters: configuration.stemFilters, kernelSize: 3, strides: 2, useBias: false,
                               name: "stem_conv1")
        x = try builder.batchNormalization(x, epsilon: 1e-3, name: "stem_bn1")
        cells.levels[x] = 1
        var p: GraphTensor?
        (x, p) = try cells.reductionCell(x, p, filters: filters / (multiplier * multiplier), id: "stem_1")
        (x, p) = try cells.reductionCell(x, p, filters: filters / multiplier, id: "stem_2")
        var width = filters
        for stage in 0..<3 {
            if stage > 0 {
                width *= multiplier
                let (reduced, reductionInput) = try cells.reductionCell(x, p, filters: width,
                                                                        id: "reduce_\(stage * configuration.blockCount)")
                x = reduced
                if !configuration.skipReduction { p = reductionInput }
            }
            for index in 0..<configuration.blockCount {
                let id = stage * configuration.blockCount + index + (stage > 0 ? 1 : 0)
                (x, p) = try cells.normalCell(x, p, filters: width, id: "\(id)")
            }
        }
        x = try builder.activation(x, .relu, name: cells.names.next("activation"))
        x = try builder.applicationHead(x, options: options, names: cells.names)
        return try builder.build(outputs: [x], name: "NASNet")
    }

    /// Adds NASNet-A cells to a graph, tracking each tensor's downsampling level so the
    /// previous-cell input can be adjusted even when the image size is unknown.
    private final class CellBuilder {
        let builder: GraphBuilder
        let names = KerasLayerNames()
        /// Number of stride-2 steps behind each cell input (input 0, stem 1, +1 per reduction).
        var levels: [GraphTensor: Int] = [:]

        init(builder: GraphBuilder) { self.builder = builder }

        private func batchNormalization(_ x: GraphTensor, name: String) throws -> GraphTensor {
            try builder.batchNormalization(x, epsilon: 1e-3, name: name)
        }

        private func relu(_ x: GraphTensor) throws -> GraphTensor {
            try builder.activation(x, .relu, name: names.next("activation"))
        }

        /// ReLU–separable conv–BN twice; a stride-2 first convolution is preceded by Keras'
        /// `correct_pad` zero padding and runs `valid`.
        private func separableBlock(_ input: GraphTensor, filters: Int, kernelSize: Int, strides: Int = 1,
                                    id: String) throws -> GraphTensor {
            var x = try relu(input)
            var padding = Padding.same
            if strides == 2 {
                x = try builder.zeroPadding2D(x, correctPad(builder.shape(of: x), kernelSize: kernelSize),
                                              name: "separable_conv_1_pad_\(id)")
                padding = .valid
            }
            x = try builder.separableConv2D(x, filters: filters, kernelSize: kernelSize, strides: strides,
                                            padding: padding, useBias: false, name: "separable_conv_1_\(id)")
            x = try batchNormalization(x, name: "separable_conv_1_bn_\(id)")
            x = try relu(x)
            x = try builder.separableConv2D(x, filters: filters, kernelSize: kernelSize, padding: .same, useBias: false,
                                            name: "separable_conv_2_\(id)")
            return try batchNormalization(x, name: "separable_conv_2_bn_\(id)")
        }

        /// Whether `p` has a larger spatial size than `ip`: by width when both are known, as Keras
        /// compares them, else by downsampling level.
        private func isLarger(_ p: GraphTensor, than ip: GraphTensor) -> Bool {
            let (pWidth, ipWidth) = (builder.shape(of: p)[1], builder.shape(of: ip)[1])
            if pWidth >= 0 && ipWidth >= 0 { return pWidth != ipWidth }
            return levels[p, default: 0] != levels[ip, default: 0]
        }

        /// Keras' `_adjust_block`: brings the previous cell's output `p` to `ip`'s size and `filters` channels.
        private func adjust(_ previous: GraphTensor?, _ ip: GraphTensor, filters: Int, id: String) throws -> GraphTensor {
            guard let p = previous else { return ip }
            if isLarger(p, than: ip) {
                let activated = try builder.activation(p, .relu, name: "adjust_relu_1_\(id)")
                var p1 = try builder.averagePooling2D(activated, poolSize: 1, strides: 2, name: "adjust_avg_pool_1_\(id)")
                p1 = try builder.conv2D(p1, filters: filters / 2, kernelSize: 1, padding: .same, useBias: false,
                                        name: "adjust_conv_1_\(id)")
                var p2 = try builder.zeroPadding2D(activated, ((0, 1), (0, 1)), name: names.next("zero_padding2d"))
                p2 = try builder.apply(SpatialPadding(name: names.next("cropping2d"), amounts: ((1, 0), (1, 0)), crops: true),
                                       to: [p2])
                p2 = try builder.averagePooling2D(p2, poolSize: 1, strides: 2, name: "adjust_avg_pool_2_\(id)")
                p2 = try builder.conv2D(p2, filters: filters / 2, kernelSize: 1, padding: .same, useBias: false,
                                        name: "adjust_conv_2_\(id)")
                let merged = try builder.concatenate([p1, p2], name: names.next("concatenate"))
                return try batchNormalization(merged, name: "adjust_bn_\(id)")
            }
            if builder.channels(of: p) != filters {
                var x = try relu(p)
                x = try builder.conv2D(x, filters: filters, kernelSize: 1, padding: .same, useBias: false,
                                       name: "adjust_conv_projection_\(id)")
                return try batchNormalization(x, name: "adjust_bn_\(id)")
            }
            return p
        }

        /// ReLU–1×1 conv–BN of the cell input.
        private func squeeze(_ ip: GraphTensor, filters: Int, prefix: String, id: String) throws -> GraphTensor {
            var h = try relu(ip)
            h = try builder.conv2D(h, filters: filters, kernelSize: 1, padding: .same, useBias: false,
                                   name: "\(prefix)_conv_1_\(id)")
            return try batchNormalization(h, name: "\(prefix)_bn_1_\(id)")
        }

        /// Keras' `_normal_a_cell`; returns the cell output and its input (the next cell's `p`).
        func normalCell(_ ip: GraphTensor, _ previous: GraphTensor?, filters: Int,
                        id: String) throws -> (GraphTensor, GraphTensor) {
            let p = try adjust(previous, ip, filters: filters, id: id)
            let h = try squeeze(ip, filters: filters, prefix: "normal", id: id)
            let x1 = try builder.add([try separableBlock(h, filters: filters, kernelSize: 5, id: "normal_left1_\(id)"),
                                      try separableBlock(p, filters: filters, kernelSize: 3, id: "normal_right1_\(id)")],
                                     name: "normal_add_1_\(id)")
            let x2 = try builder.add([try separableBlock(p, filters: filters, kernelSize: 5, id: "normal_left2_\(id)"),
                                      try separableBlock(p, filters: filters, kernelSize: 3, id: "normal_right2_\(id)")],
                                     name: "normal_add_2_\(id)")
            let x3 = try builder.add([try builder.averagePooling2D(h, poolSize: 3, strides: 1, padding: .same,
                                                                    name: "normal_left3_\(id)"), p],
                                     name: "normal_add_3_\(id)")
            let x4 = try builder.add([try builder.averagePooling2D(p, poolSize: 3, strides: 1, padding: .same,
                                                                    name: "normal_left4_\(id)"),
                                      try builder.averagePooling2D(p, poolSize: 3, strides: 1, padding: .same,
                                                                   name: "normal_right4_\(id)")],
                                     name: "normal_add_4_\(id)")
            let x5 = try builder.add([try separableBlock(h, filters: filters, kernelSize: 3, id: "normal_left5_\(id)"), h],
                                     name: "normal_add_5_\(id)")
            let x = try builder.concatenate([p, x1, x2, x3, x4, x5], name: "normal_concat_\(id)")
            levels[x] = levels[ip, default: 0]
            return (x, ip)
        }

        /// Keras' `_reduction_a_cell`; returns the cell output and its input.
        func reductionCell(_ ip: GraphTensor, _ previous: GraphTensor?, filters: Int,
                           id: String) throws -> (GraphTensor, GraphTensor) {
            let p = try adjust(previous, ip, filters: filters, id: id)
            let h = try squeeze(ip, filters: filters, prefix: "reduction", id: id)
            let h3 = try builder.zeroPadding2D(h, correctPad(builder.shape(of: h), kernelSize: 3), name: "reduction_pad_1_\(id)")
            let x1 = try builder.add([
                try separableBlock(h, filters: filters, kernelSize: 5, strides: 2, id: "reduction_left1_\(id)"),
                try separableBlock(p, filters: filters, kernelSize: 7, strides: 2, id: "reduction_right1_\(id)"),
            ], name: "reduction_add_1_\(id)")
            let x2 = try builder.add([
                try builder.maxPooling2D(h3, poolSize: 3, strides: 2, name: "reduction_left2_\(id)"),
                try separableBlock(p, filters: filters, kernelSize: 7, strides: 2, id: "reduction_right2_\(id)"),
            ], name: "reduction_add_2_\(id)")
            let x3 = try builder.add([
                try builder.averagePooling2D(h3, poolSize: 3, strides: 2, name: "reduction_left3_\(id)"),
                try separableBlock(p, filters: filters, kernelSize: 5, strides: 2, id: "reduction_right3_\(id)"),
            ], name: "reduction_add3_\(id)")
            let x4 = try builder.add([
                x2, try builder.averagePooling2D(x1, poolSize: 3, strides: 1, padding: .same, name: "reduction_left4_\(id)"),
            ], name: names.next("add"))
            let x5 = try builder.add([
                try separableBlock(x1, filters: filters, kernelSize: 3, id: "reduction_left4_\(id)"),
                try builder.maxPooling2D(h3, poolSize: 3, strides: 2, name: "reduction_right5_\(id)"),
            ], name: "reduction_add4_\(id)")
            let x = try builder.concatenate([x2, x3, x4, x5], name: "reduction_concat_\(id)")
            levels[x] = levels[ip, default: 0] + 1
            return (x, ip)
        }
    }
}

// MARK: - The family

extension NASNet {
    /// NASNetMobile (NASNet-A 4 @ 1056) or NASNetLarge (NASNet-A 6 @ 4032).
    public struct Family: ArchitectureFamily {
        /// NASNetLarge rather than NASNetMobile.
        public var large: Bool

        public static let nameForms = ["nasnetmobile", "nasnetlarge"]

        public static func parse(compactName: String, original: String) throws -> Family? {
            switch compactName {
            case "nasnetmobile": Family(large: false)
            case "nasnetlarge": Family(large: true)
            default: nil
            }
        }

        /// Mobile or large from the stem's filters.
        public static func detect(in weights: WeightSource, layers: Set<String>) throws -> Family? {
            guard layers.contains("stem_conv1") && layers.contains("stem_bn1") else { return nil }
            switch weights.shape(layer: "stem_conv1", weight: "kernel")?.last {
            case Configuration.mobile.stemFilters: return Family(large: false)
            case Configuration.large.stemFilters: return Family(large: true)
            case let filters:
                throw EngineError.unknownArchitecture("NASNet with \(filters.map(String.init) ?? "unknown") stem filters is neither NASNetMobile (32) nor NASNetLarge (96)")
            }
        }

        public func build(options: ApplicationOptions) throws -> Graph {
            try NASNet.build(configuration: large ? .large : .mobile, options: options)
        }

        public var description: String { large ? "nasnet_large" : "nasnet_mobile" }
    }
}

extension Architecture {
    /// NASNetMobile (NASNet-A 4 @ 1056).
    public static let nasNetMobile = Architecture(NASNet.Family(large: false))
    /// NASNetLarge (NASNet-A 6 @ 4032).
    public static let nasNetLarge = Architecture(NASNet.Family(large: true))
}
