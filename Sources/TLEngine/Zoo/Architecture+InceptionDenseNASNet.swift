import Foundation
import TLTensor

extension Architecture {
    /// Recognises InceptionV3, Xception, InceptionResNetV2, DenseNet and NASNet weights-only files,
    /// or returns nil for the other detectors to try.
    ///
    /// - InceptionResNetV2: `block35_1_conv` and `conv_7b`.
    /// - InceptionV3: automatic names `conv2d` … `conv2d_93` (94 convolutions, none beyond), the
    ///   first a 3×3 stride-2 stem `[3, 3, 3, 32]`.
    /// - Xception: `block1_conv1` and `block14_sepconv2`.
    /// - DenseNet: `conv1/conv`; the depth from the number of blocks in each dense block.
    /// - NASNet: `stem_conv1`; Mobile has 32 stem filters, Large 96.
    /// - Throws: `EngineError.unknownArchitecture` for a family member with no published shape.
    static func detectZooB(layers: Set<String>, weights: WeightSource) throws -> Architecture? {
        if layers.contains("block35_1_conv") && layers.contains("conv_7b") {
            return .inceptionResNetV2
        }
        if layers.contains("conv2d_93") && !layers.contains("conv2d_94") && layers.contains("batch_normalization_93"),
           weights.shape(layer: "conv2d", weight: "kernel") == [3, 3, 3, 32] {
            return .inceptionV3
        }
        if layers.contains("block1_conv1") && layers.contains("block14_sepconv2") {
            return .xception
        }
        if layers.contains("conv1/conv") {
            let blocks = (2...5).map { stage in
                (1...).prefix { layers.contains("conv\(stage)_block\($0)_1_conv") }.count
            }
            switch blocks {
            case DenseNet.blocks121: return .denseNet(depth: 121)
            case DenseNet.blocks169: return .denseNet(depth: 169)
            case DenseNet.blocks201: return .denseNet(depth: 201)
            default:
                throw EngineError.unknownArchitecture("DenseNet with dense blocks \(blocks) matches no published depth (121, 169, 201)")
            }
        }
        if layers.contains("stem_conv1") && layers.contains("stem_bn1") {
            switch weights.shape(layer: "stem_conv1", weight: "kernel")?.last {
            case NASNet.Configuration.mobile.stemFilters: return .nasNetMobile
            case NASNet.Configuration.large.stemFilters: return .nasNetLarge
            case let filters:
                throw EngineError.unknownArchitecture("NASNet with \(filters.map(String.init) ?? "unknown") stem filters is neither NASNetMobile (32) nor NASNetLarge (96)")
            }
        }
        return nil
    }
}

extension DenseNet {
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
