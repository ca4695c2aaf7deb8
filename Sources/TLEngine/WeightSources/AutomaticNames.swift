import Foundation
import TLTensor

/// Presents a weights-only file whose automatic layer names do not start at tf.keras' fresh-session
/// numbering under the names tlhub's builders use (`conv2d`, `conv2d_1`, …).
///
/// Keras names an unnamed layer `<class>_<n>` with a counter per class that lives as long as the
/// Python session: a user who built other models first saves InceptionV3 as `conv2d_94` …
/// `conv2d_187` (Keras 2.0 started at `conv2d_1`). Keras's own `load_weights` on a weights-only
/// `.h5` matches layers by order, so those names never had to match; tlhub loads by name. For each
/// automatic prefix, the file's numbered layers are taken in number order (creation order, as
/// Keras created them) and renamed to `prefix`, `prefix_1`, …: the same pairing Keras's
/// order-based loading makes. Shapes are still checked one by one by strict loading. Files whose
/// numbering already starts at 0 and has no gaps pass through unchanged.
public struct AutomaticNames: WeightSource {
    /// Keras class prefixes of unnamed, weight-holding layers in the zoo and in user heads.
    public static let prefixes = ["conv2d", "batch_normalization", "normalization", "dense", "depthwise_conv2d",
                                  "separable_conv2d", "layer_normalization", "conv1d"]

    let base: WeightSource
    /// Our name → the file's name.
    let fileNames: [String: String]
    /// The file's name → ours.
    let ourNames: [String: String]

    /// `source` itself when its automatic names already count from 0, else a renaming view of it.
    public static func adapting(_ source: WeightSource) -> WeightSource {
        var fileNames: [String: String] = [:]
        var ourNames: [String: String] = [:]
        let names = source.layerNames
        for prefix in prefixes {
            let numbered = names.compactMap { name -> (number: Int, name: String)? in
                if name == prefix { return (0, name) }
                guard name.hasPrefix(prefix + "_") else { return nil }
                let digits = name.dropFirst(prefix.count + 1)
                guard let number = Int(digits), String(number) == digits, number >= 0 else { return nil }
                return (number, name)
            }.sorted { $0.number < $1.number }
            guard !numbered.isEmpty, numbered.map(\.number) != Array(0..<numbered.count) else { continue }
            for (rank, entry) in numbered.enumerated() {
                let ours = rank == 0 ? prefix : "\(prefix)_\(rank)"
                fileNames[ours] = entry.name
                ourNames[entry.name] = ours
            }
        }
        return fileNames.isEmpty ? source : AutomaticNames(base: source, fileNames: fileNames, ourNames: ourNames)
    }

    private func fileName(_ layer: String) -> String { fileNames[layer] ?? (ourNames[layer] == nil ? layer : "\u{0}") }

    public var layerNames: [String] { base.layerNames.map { ourNames[$0] ?? $0 } }
    public func weightNames(layer: String) -> [String] { base.weightNames(layer: fileName(layer)) }
    public func shape(layer: String, weight: String) -> [Int]? { base.shape(layer: fileName(layer), weight: weight) }
    public func tensor(layer: String, weight: String) throws -> Tensor { try base.tensor(layer: fileName(layer), weight: weight) }
    public var modelConfig: String? { base.modelConfig }
}
