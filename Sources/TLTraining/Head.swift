import Foundation
import TLEngine
import TLTensor

/// A classifier head on top of a base's output, written as `--head` takes it: a comma list of
/// `gap`, `gmp`, `flatten`, `denseN[-ACTIVATION]`, `dropoutRATE`. `dense2` alone means global
/// average pooling when the base output is spatial, then `Dense(2, softmax)`; the last dense
/// layer defaults to softmax (sigmoid for one unit), the others to linear.
///
/// ```swift
/// let head = try Head(parsing: "flatten,dense1024-relu,dropout0.5,dense1024-relu,dense2")
/// let graph = try head.build(inputShape: [7, 7, 512], seed: 1)     // glorot_uniform, zero biases
/// ```
public struct Head: Sendable, Equatable, CustomStringConvertible {
    /// One layer of the head.
    public enum Item: Sendable, Equatable {
        case globalAveragePooling
        case globalMaxPooling
        case flatten
        case dense(units: Int, activation: String)
        case dropout(rate: Float)
    }

    /// The layers, in order, as written (before an implied pooling).
    public var items: [Item]

    /// Parses `--head`.
    /// - Throws: `TrainingError` naming the item that cannot be read.
    public init(parsing text: String) throws {
        let parts = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        guard !parts.isEmpty, !parts.contains(where: \.isEmpty) else { throw TrainingError("--head", "empty head '\(text)'") }
        var items: [Item] = []
        for (position, part) in parts.enumerated() {
            let isLast = position == parts.count - 1
            switch part {
            case "gap", "avg", "globalaveragepooling": items.append(.globalAveragePooling)
            case "gmp", "max", "globalmaxpooling": items.append(.globalMaxPooling)
            case "flatten": items.append(.flatten)
            default:
                if part.hasPrefix("dropout"), let rate = Float(part.dropFirst("dropout".count)), rate >= 0, rate < 1 {
                    items.append(.dropout(rate: rate))
                } else if part.hasPrefix("dense") {
                    let spec = part.dropFirst("dense".count).split(separator: "-", maxSplits: 1).map(String.init)
                    guard let unitsText = spec.first, let units = Int(unitsText), units > 0 else {
                        throw TrainingError("--head", "'\(part)': dense needs a unit count (dense2, dense1024-relu)")
                    }
                    let activation = spec.count > 1 ? spec[1] : (isLast ? (units == 1 ? "sigmoid" : "softmax") : "linear")
                    guard (try? Activation(kerasName: activation, keras3: true, layer: "head")) != nil else {
                        throw TrainingError("--head", "'\(part)': unknown activation '\(activation)'")
                    }
                    items.append(.dense(units: units, activation: activation))
                } else {
                    throw TrainingError("--head", "'\(part)' is not gap, gmp, flatten, denseN[-activation] or dropoutRATE")
                }
            }
        }
        guard case .dense(_, let last)? = items.last, ["softmax", "sigmoid"].contains(last) else {
            throw TrainingError("--head", "'\(text)' must end in a softmax or sigmoid dense layer (dense2, dense1-sigmoid)")
        }
        self.items = items
    }

    /// The outputs of the final dense layer.
    public var outputCount: Int {
        if case .dense(let units, _)? = items.last { return units }
        return 0
    }

    /// Whether the head trains with binary cross-entropy (one sigmoid output).
    public var isBinary: Bool {
        if case .dense(1, "sigmoid")? = items.last { return true }
        return false
    }

    public var description: String {
        items.map { item in
            switch item {
            case .globalAveragePooling: "gap"
            case .globalMaxPooling: "gmp"
            case .flatten: "flatten"
            case let .dense(units, activation): "dense\(units)-\(activation)"
            case .dropout(let rate): "dropout\(rate)"
            }
        }.joined(separator: ",")
    }

    /// Builds the head on per-sample `inputShape` (the base's output), with Keras' automatic
    /// layer names and default initialisers (glorot_uniform kernels from `seed`, zero biases).
    /// A spatial input not reduced by `gap`/`gmp`/`flatten` first gets global average pooling.
    public func build(inputShape: [Int], seed: UInt64) throws -> Graph {
        let builder = GraphBuilder()
        let names = KerasLayerNames()
        var x = builder.input(shape: inputShape, name: "features")
        var spatial = inputShape.count == 3
        var random = SeededRandom(seed: seed)
        for item in items {
            switch item {
            case .globalAveragePooling:
                x = try builder.globalAveragePooling2D(x, name: names.next("global_average_pooling2d"))
                spatial = false
            case .globalMaxPooling:
                x = try builder.globalMaxPooling2D(x, name: names.next("global_max_pooling2d"))
                spatial = false
            case .flatten:
                x = try builder.flatten(x, name: names.next("flatten"))
                spatial = false
            case .dropout(let rate):
                x = try builder.dropout(x, rate: rate, name: names.next("dropout"))
            case let .dense(units, activation):
                if spatial {
                    x = try builder.globalAveragePooling2D(x, name: names.next("global_average_pooling2d"))
                    spatial = false
                }
                let name = names.next("dense")
                let layer = Dense(name: name, units: units, activation: try Activation(kerasName: activation, keras3: true, layer: name))
                x = try builder.apply(layer, to: [x])
            }
        }
        let graph = try builder.build(outputs: [x], name: "head")
        for (layer, node) in graph.uniqueLayers {
            guard let dense = layer as? Dense else { continue }
            let fanIn = graph.shapes[graph.nodes[node].inputs[0]].last ?? 0
            let limit = (6 / Float(fanIn + dense.units)).squareRoot()
            let kernel = (0..<(fanIn * dense.units)).map { _ in (random.unit() * 2 - 1) * limit }
            dense.setWeights(["kernel": Tensor(shape: [fanIn, dense.units], scalars: kernel),
                              "bias": Tensor(shape: [dense.units], repeating: 0)])
        }
        return graph
    }
}
