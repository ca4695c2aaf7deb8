import Foundation

/// Weights grouped by Keras layer, as every file format tlhub reads presents them.
///
/// Layer names are Keras layer names (`block_1_expand`), weight names are the short Keras names
/// (`kernel`, `bias`, `gamma`, `beta`, `moving_mean`, `moving_variance`, `depthwise_kernel`, …)
/// without the layer prefix or a `:0` suffix. Shapes are Keras layouts.
public protocol WeightSource {
    /// Layers that hold weights, in file order.
    var layerNames: [String] { get }
    /// The weight names of `layer` in the order Keras lists them (empty for an unknown layer).
    func weightNames(layer: String) -> [String]
    /// The shape of one weight without reading its values, or nil when it does not exist.
    func shape(layer: String, weight: String) -> [Int]?
    /// Reads one weight as float32.
    /// - Throws: an error naming the file, layer and weight when it is missing or unreadable.
    func tensor(layer: String, weight: String) throws -> Tensor
    /// The Keras model config (JSON text) when the file carries one (full-model `.h5`, `.keras`,
    /// tlhub `.safetensors` converted from either), else nil.
    var modelConfig: String? { get }
}

extension SafeTensorsFile: WeightSource {
    /// Tensors are named `<layer>/<weight>`; the layer order is `__metadata__["layer_order"]`
    /// (a JSON array) when present, else data order.
    public var layerNames: [String] {
        if let json = metadata["layer_order"], let data = json.data(using: .utf8),
           let names = try? JSONDecoder().decode([String].self, from: data) {
            let present = Set(entries.map { Self.split($0.name).layer })
            return names.filter { present.contains($0) }
        }
        var seen = Set<String>()
        return entries.map { Self.split($0.name).layer }.filter { seen.insert($0).inserted }
    }

    public func weightNames(layer: String) -> [String] {
        entries.map { Self.split($0.name) }.filter { $0.layer == layer }.map(\.weight)
    }

    public func shape(layer: String, weight: String) -> [Int]? {
        entry(named: "\(layer)/\(weight)")?.shape
    }

    public func tensor(layer: String, weight: String) throws -> Tensor {
        try tensor(named: "\(layer)/\(weight)")
    }

    public var modelConfig: String? { metadata["model_config"] }

    /// Splits `a/b/kernel` into layer `a/b` and weight `kernel` (a name without `/` is a weight
    /// of layer "").
    package static func split(_ name: String) -> (layer: String, weight: String) {
        guard let slash = name.lastIndex(of: "/") else { return ("", name) }
        return (String(name[..<slash]), String(name[name.index(after: slash)...]))
    }
}
