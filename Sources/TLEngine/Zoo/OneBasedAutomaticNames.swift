import Foundation
import TLTensor

/// Presents a weight file whose automatic layer names are numbered from 1 (`conv2d_1`,
/// `batch_normalization_1`, …, as Keras 2.0 named them) under tf.keras' numbering from 0
/// (`conv2d`, `conv2d_1`, …), which tlhub's builders use.
///
/// Keras itself loads such `.h5` files by layer order, so their names never had to match; tlhub
/// loads by name. Only the automatic prefixes of InceptionV3, InceptionResNetV2 and Xception are
/// renumbered, and only when the file has `<prefix>_1` but no bare `<prefix>`, so files written
/// by tf.keras or Keras 3 pass through unchanged.
struct OneBasedAutomaticNames: WeightSource {
    /// Layer classes whose unnamed instances hold weights in the zoo.
    static let prefixes = ["conv2d", "batch_normalization"]

    let base: WeightSource
    /// Prefixes the file numbers from 1.
    let shifted: Set<String>

    /// `source` itself when its names are already tf.keras', else a renumbering view of it.
    static func adapting(_ source: WeightSource) -> WeightSource {
        let names = Set(source.layerNames)
        let shifted = prefixes.filter { names.contains("\($0)_1") && !names.contains($0) }
        return shifted.isEmpty ? source : OneBasedAutomaticNames(base: source, shifted: Set(shifted))
    }

    /// Splits `conv2d_12` into (`conv2d`, 12) and `conv2d` into (`conv2d`, 0) for shifted prefixes.
    private func numbered(_ name: String) -> (prefix: String, index: Int)? {
        for prefix in shifted {
            if name == prefix { return (prefix, 0) }
            if name.hasPrefix("\(prefix)_"), let index = Int(name.dropFirst(prefix.count + 1)), index >= 0 {
                return (prefix, index)
            }
        }
        return nil
    }

    /// The file's name for one of our layer names.
    private func fileName(_ layer: String) -> String {
        guard let (prefix, index) = numbered(layer) else { return layer }
        return "\(prefix)_\(index + 1)"
    }

    /// Our name for one of the file's layer names.
    private func ourName(_ layer: String) -> String {
        guard let (prefix, index) = numbered(layer), index >= 1 else { return layer }
        return index == 1 ? prefix : "\(prefix)_\(index - 1)"
    }

    var layerNames: [String] { base.layerNames.map(ourName) }
    func weightNames(layer: String) -> [String] { base.weightNames(layer: fileName(layer)) }
    func shape(layer: String, weight: String) -> [Int]? { base.shape(layer: fileName(layer), weight: weight) }
    func tensor(layer: String, weight: String) throws -> Tensor { try base.tensor(layer: fileName(layer), weight: weight) }
    var modelConfig: String? { base.modelConfig }
}
