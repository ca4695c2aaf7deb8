import Foundation
import TLTensor

/// `keras.applications.VGG16` / `VGG19` (Simonyan & Zisserman 2014), with Keras' layer names
/// `block1_conv1` … `block5_pool`, `flatten`, `fc1`, `fc2`, `predictions`.
public enum VGG {
    /// Convolutions per block.
    public static let vgg16Blocks = [2, 2, 3, 3, 3]
    /// Convolutions per block.
    public static let vgg19Blocks = [2, 2, 4, 4, 4]
    /// Filters of each block.
    public static let filters = [64, 128, 256, 512, 512]

    /// Builds a VGG network.
    /// - Parameters:
    ///   - convolutionsPerBlock: `vgg16Blocks` or `vgg19Blocks` (or a custom stack).
    ///   - filters: filters per block (Keras: `VGG.filters`).
    ///   - denseUnits: width of `fc1`/`fc2` (Keras: 4096).
    ///   - options: Keras constructor options; the top needs a fixed input size (default 224×224×3).
    public static func build(convolutionsPerBlock: [Int] = vgg16Blocks, filters: [Int] = filters, denseUnits: Int = 4096,
                             options: ApplicationOptions = .init(), name: String = "vgg16") throws -> Graph {
        let shape = options.inputShape ?? (options.includeTop ? [224, 224, 3] : [-1, -1, 3])
        let builder = GraphBuilder()
        var x = builder.input(shape: shape, name: "input_1")
        for (block, count) in convolutionsPerBlock.enumerated() {
            for index in 1...count {
                x = try builder.conv2D(x, filters: filters[block], kernelSize: 3, padding: .same, activation: .relu,
                                       name: "block\(block + 1)_conv\(index)")
            }
            x = try builder.maxPooling2D(x, poolSize: 2, strides: 2, name: "block\(block + 1)_pool")
        }
        x = try builder.applicationHead(x, options: options, top: .flattened(denseUnits: denseUnits),
                                        averageName: "global_average_pooling2d", maxName: "global_max_pooling2d")
        return try builder.build(outputs: [x], name: name)
    }
}

// MARK: - The family

extension VGG {
    /// VGG16 or VGG19.
    public struct Family: ArchitectureFamily {
        /// 16 or 19 weight layers.
        public var depth: Int

        public static let nameForms = ["vgg16", "vgg19"]

        public static func parse(compactName: String, original: String) throws -> Family? {
            switch compactName {
            case "vgg16": Family(depth: 16)
            case "vgg19": Family(depth: 19)
            default: nil
            }
        }

        public static func detect(in weights: WeightSource, layers: Set<String>) throws -> Family? {
            guard layers.contains("block5_conv3") && layers.contains("block1_conv1") else { return nil }
            return Family(depth: layers.contains("block5_conv4") ? 19 : 16)
        }

        public func build(options: ApplicationOptions) throws -> Graph {
            try VGG.build(convolutionsPerBlock: depth == 19 ? VGG.vgg19Blocks : VGG.vgg16Blocks, options: options, name: description)
        }

        /// `fc1` flattens a fixed feature map: its input count gives the image size.
        public func inputShape(fixedBy weights: WeightSource) -> [Int]? {
            guard let fc1 = weights.shape(layer: "fc1", weight: "kernel") else { return nil }
            let side = Int((Double(fc1[0] / 512)).squareRoot().rounded())
            return side * side * 512 == fc1[0] ? [side * 32, side * 32, 3] : nil
        }

        public var description: String { "vgg\(depth)" }
    }
}

extension Architecture {
    /// VGG16.
    public static let vgg16 = Architecture(VGG.Family(depth: 16))
    /// VGG19.
    public static let vgg19 = Architecture(VGG.Family(depth: 19))
}
