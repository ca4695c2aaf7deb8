import Foundation
import TLTensor

/// Turns a Keras model config (the JSON of `model.to_json()`, or the `model_config` attribute of
/// a full-model `.h5`) into a `Graph`.
///
/// Understands Sequential and Functional models, nested models (inlined, their layers keep their
/// own names), layers called several times (shared weights), and both inbound-node formats:
/// tf.keras 2's `[[["name", node, tensor, {}]]]` and Keras 3's
/// `{"args": [{"class_name": "__keras_tensor__", "config": {"keras_history": [name, node, tensor]}}]}`.
public enum KerasGraphReader {
    /// Parses `json` into a graph whose layers still need weights (`Graph.loadWeights(from:)`).
    /// - Throws: `EngineError.invalidModelConfig`, `.unsupportedLayer` or `.unsupportedOption`.
    public static func graph(fromJSON json: String) throws -> Graph {
        guard let root = ParsedJSON.object(json) else {
            throw EngineError.invalidModelConfig("not a JSON object")
        }
        var reader = Reader(keras3: isKeras3(root))
        let outputs = try reader.readModel(root, inputs: nil)
        let name = ((root["config"] as? [String: Any])?["name"] as? String) ?? "model"
        let graph = try reader.builder.build(outputs: outputs, name: name)
        graph.frozenLayerNames = reader.frozen
        graph.inferenceModeLayerNames = reader.inferenceMode
        graph.kernelInitializerNames = reader.kernelInitializers
        return graph
    }

    /// Keras 3 configs carry `module` keys and dictionary inbound nodes; tf.keras 2 configs do not.
    static func isKeras3(_ root: [String: Any]) -> Bool {
        if let version = root["keras_version"] as? String { return version.hasPrefix("3") }
        return root["module"] != nil
    }

    private static let modelClasses: Set<String> = ["Functional", "Model", "Sequential"]

    /// A `(layer, node, tensor)` reference to a layer call's output.
    struct TensorReference {
        var layer: String
        var node: Int
        var tensor: Int
    }

    struct Reader {
        let keras3: Bool
        let builder = GraphBuilder()
        /// Names of layers saved with `trainable: false` (or inside a frozen nested model).
        var frozen: Set<String> = []
        /// Names of layers inside a nested model called with `training=False` (tf.keras 2 files).
        var inferenceMode: Set<String> = []
        /// Kernel initializer class names by layer.
        var kernelInitializers: [String: String] = [:]
        /// How many enclosing models are frozen / called with `training=False`.
        private var frozenDepth = 0, inferenceDepth = 0

        init(keras3: Bool) { self.keras3 = keras3 }

        /// Reads a model; `callNode` is the inbound node of a nested model's call (its
        /// `training` argument decides the mode its layers train in).
        mutating func readModel(_ model: [String: Any], inputs: [GraphTensor]?, callNode: Any? = nil) throws -> [GraphTensor] {
            let className = model["class_name"] as? String ?? ""
            guard let config = model["config"] as? [String: Any] else {
                throw EngineError.invalidModelConfig("model '\(className)' has no config")
            }
            let freezes = config["trainable"] as? Bool == false
            // Keras 3's fit passes training=True down through a nested call saved with
            // training=False (keras-team/keras#20285); tf.keras 2 keeps the saved value.
            let inference = !keras3 && (callNode.map(Reader.callsWithTrainingFalse) ?? false)
            if freezes { frozenDepth += 1 }
            if inference { inferenceDepth += 1 }
            defer {
                if freezes { frozenDepth -= 1 }
                if inference { inferenceDepth -= 1 }
            }
            switch className {
            case "Sequential": return try readSequential(config, inputs: inputs)
            case "Functional", "Model": return try readFunctional(config, inputs: inputs)
            default: throw EngineError.invalidModelConfig("top-level class \(className) is not a Keras model")
            }
        }

        // MARK: - Sequential

        mutating func readSequential(_ config: [String: Any], inputs: [GraphTensor]?) throws -> [GraphTensor] {
            let name = config["name"] as? String ?? "sequential"
            guard let entries = config["layers"] as? [[String: Any]] else {
                throw EngineError.invalidModelConfig("Sequential '\(name)' has no layers")
            }
            var x: GraphTensor
            if let given = inputs?.first {
                x = given
            } else {
                let first = entries.first?["config"] as? [String: Any] ?? [:]
                guard let shape = Reader.batchShape(first) else {
                    throw EngineError.invalidModelConfig("Sequential '\(name)' does not declare its input shape")
                }
                let inputName = (entries.first?["class_name"] as? String == "InputLayer") ? (first["name"] as? String ?? "input") : "\(name)_input"
                x = builder.input(shape: shape, name: inputName)
            }
            builder.scope.append(name)
            defer { builder.scope.removeLast() }
            for entry in entries {
                let className = entry["class_name"] as? String ?? ""
                if className == "InputLayer" { continue }
                if KerasGraphReader.modelClasses.contains(className) {
                    x = try readModel(entry, inputs: [x]).first ?? x
                } else {
                    x = try builder.apply(try makeLayer(entry), to: [x])
                }
            }
            return [x]
        }

        // MARK: - Functional

        mutating func readFunctional(_ config: [String: Any], inputs: [GraphTensor]?) throws -> [GraphTensor] {
            let modelName = config["name"] as? String ?? "model"
            guard let entries = config["layers"] as? [[String: Any]] else {
                throw EngineError.invalidModelConfig("model '\(modelName)' has no layers")
            }
            let inputReferences = try Reader.references(config["input_layers"])
            let outputReferences = try Reader.references(config["output_layers"])
            var calls: [String: [Int: [GraphTensor]]] = [:]
            let nested = inputs != nil
            if nested { builder.scope.append(modelName) }
            defer { if nested { builder.scope.removeLast() } }

            for (position, reference) in inputReferences.enumerated() {
                if let inputs {
                    guard position < inputs.count else {
                        throw EngineError.invalidModelConfig("model '\(modelName)' expects \(inputReferences.count) inputs")
                    }
                    calls[reference.layer] = [0: [inputs[position]]]
                } else {
                    guard let entry = entries.first(where: { Reader.layerName($0) == reference.layer }),
                          let layerConfig = entry["config"] as? [String: Any], let shape = Reader.batchShape(layerConfig) else {
                        throw EngineError.invalidModelConfig("input layer '\(reference.layer)' has no shape")
                    }
                    calls[reference.layer] = [0: [builder.input(shape: shape, name: reference.layer)]]
                }
            }

            var layers: [String: any Layer] = [:]
            var offsets: [String: Int] = [:]
            for entry in entries { offsets[Reader.layerName(entry)] = nodeOffset(entry) }
            var pending: [(entry: [String: Any], call: Int, node: Any)] = []
            for entry in entries where entry["class_name"] as? String != "InputLayer" {
                for (call, node) in (entry["inbound_nodes"] as? [Any] ?? []).enumerated() {
                    pending.append((entry, call, node))
                }
            }
            while !pending.isEmpty {
                var remaining: [(entry: [String: Any], call: Int, node: Any)] = []
                for item in pending {
                    let references = try Reader.inboundReferences(item.node)
                    let resolved = references.compactMap { reference -> GraphTensor? in
                        guard let outputs = inboundCall(reference, calls: calls, offsets: offsets,
                                                                keras3Node: item.node is [String: Any]), reference.tensor < outputs.count else { return nil }
                        return outputs[reference.tensor]
                    }
                    guard resolved.count == references.count, !references.isEmpty else {
                        remaining.append(item)
                        continue
                    }
                    let name = Reader.layerName(item.entry)
                    let className = item.entry["class_name"] as? String ?? ""
                    let outputs: [GraphTensor]
                    if KerasGraphReader.modelClasses.contains(className) {
                        outputs = try readModel(item.entry, inputs: resolved, callNode: item.node)
                    } else {
                        let layer = try layers[name] ?? makeLayer(item.entry)
                        layers[name] = layer
                        outputs = [try builder.apply(layer, to: resolved)]
                    }
                    calls[name, default: [:]][item.call + nodeOffset(item.entry)] = outputs
                }
                if remaining.count == pending.count {
                    let names = remaining.prefix(5).map { Reader.layerName($0.entry) }.joined(separator: ", ")
                    throw EngineError.invalidModelConfig("model '\(modelName)': cannot resolve the inputs of \(names)")
                }
                pending = remaining
            }
            return try outputReferences.map { reference in
                guard let outputs = calls[reference.layer]?[reference.node], reference.tensor < outputs.count else {
                    throw EngineError.invalidModelConfig("model '\(modelName)': output \(reference.layer) is not computed")
                }
                return outputs[reference.tensor]
            }
        }

        // MARK: - Parsing helpers

        /// The outputs an inbound reference points at. tf.keras 2 numbers a nested model's calls
        /// from 1 everywhere (its construction node is 0). Keras 3 does so in `output_layers`,
        /// but inbound nodes drop nodes foreign to the model (`serialize_node`), so there the first
        /// call of a nested Functional is 0 (Keras reads it back as node -1, the last call);
        /// Keras 3 files before that change wrote 1, which is tried when 0-based finds nothing.
        /// A Keras 3 node is a dictionary (`{"args": …}`), also in a legacy `.h5`'s `model_config`,
        /// which carries no `module` keys.
        func inboundCall(_ reference: TensorReference, calls: [String: [Int: [GraphTensor]]],
                         offsets: [String: Int], keras3Node: Bool) -> [GraphTensor]? {
            let made = calls[reference.layer]
            if keras3Node, let offset = offsets[reference.layer], offset > 0 {
                return made?[reference.node + offset] ?? made?[reference.node]
            }
            return made?[reference.node]
        }

        /// Keras numbers a nested model's calls from 1 when the model has a node of its own from
        /// its construction (Keras 3 `Functional`; tf.keras 2 `Functional`, and `Sequential`
        /// built on an `InputLayer`); references to its outputs use that numbering.
        func nodeOffset(_ entry: [String: Any]) -> Int {
            switch entry["class_name"] as? String {
            case "Functional", "Model":
                return 1
            case "Sequential":
                let first = ((entry["config"] as? [String: Any])?["layers"] as? [[String: Any]])?.first
                return !keras3 && first?["class_name"] as? String == "InputLayer" ? 1 : 0
            default:
                return 0
            }
        }

        static func layerName(_ entry: [String: Any]) -> String {
            entry["name"] as? String ?? (entry["config"] as? [String: Any])?["name"] as? String ?? "?"
        }

        /// Per-sample shape from `batch_input_shape` (Keras 2) or `batch_shape` (Keras 3); nil → -1.
        static func batchShape(_ config: [String: Any]) -> [Int]? {
            guard let raw = (config["batch_input_shape"] ?? config["batch_shape"]) as? [Any] else { return nil }
            return raw.dropFirst().map { ($0 as? Int) ?? -1 }
        }

        /// `[["name", 0, 0], …]` or a single `["name", 0, 0]`.
        static func references(_ value: Any?) throws -> [TensorReference] {
            guard let list = value as? [Any] else { throw EngineError.invalidModelConfig("missing input_layers/output_layers") }
            if list.first is String { return [try reference(list)] }
            return try list.map { try reference($0) }
        }

        static func reference(_ value: Any) throws -> TensorReference {
            guard let triple = value as? [Any], triple.count >= 3, let layer = triple[0] as? String,
                  let node = triple[1] as? Int, let tensor = triple[2] as? Int else {
                throw EngineError.invalidModelConfig("bad tensor reference \(value)")
            }
            return TensorReference(layer: layer, node: node, tensor: tensor)
        }

        /// The tensors one inbound node reads, in order, for either Keras format.
        static func inboundReferences(_ node: Any) throws -> [TensorReference] {
            if let dictionary = node as? [String: Any] {
                var found: [TensorReference] = []
                collectKerasTensors(dictionary["args"] ?? [], into: &found)
                return found
            }
            guard let list = node as? [Any] else { throw EngineError.invalidModelConfig("bad inbound node \(node)") }
            return try list.map { try reference($0) }
        }

        static func collectKerasTensors(_ value: Any, into found: inout [TensorReference]) {
            if let dictionary = value as? [String: Any] {
                if dictionary["class_name"] as? String == "__keras_tensor__",
                   let history = (dictionary["config"] as? [String: Any])?["keras_history"],
                   let reference = try? reference(history) {
                    found.append(reference)
                }
                return
            }
            if let list = value as? [Any] { for item in list { collectKerasTensors(item, into: &found) } }
        }

        // MARK: - Layers

        mutating func makeLayer(_ entry: [String: Any]) throws -> any Layer {
            let className = entry["class_name"] as? String ?? ""
            let config = entry["config"] as? [String: Any] ?? [:]
            let name = config["name"] as? String ?? Reader.layerName(entry)
            if frozenDepth > 0 || config["trainable"] as? Bool == false { frozen.insert(name) }
            if inferenceDepth > 0 { inferenceMode.insert(name) }
            for key in ["kernel_initializer", "depthwise_initializer"] {
                if let text = config[key] as? String { kernelInitializers[name] = text }
                if let initializer = config[key] as? [String: Any], let className = initializer["class_name"] as? String {
                    kernelInitializers[name] = className
                }
            }
            return try KerasLayerFactory(className: className, name: name, config: config, keras3: keras3).make()
        }

        /// Whether an inbound node passes `training=False`: Keras 3 `{"kwargs": {"training": false}}`,
        /// tf.keras 2 `[["input", 0, 0, {"training": false}]]`.
        static func callsWithTrainingFalse(_ node: Any) -> Bool {
            if let dictionary = node as? [String: Any] {
                return (dictionary["kwargs"] as? [String: Any])?["training"] as? Bool == false
            }
            if let list = node as? [Any] {
                return list.contains { item in
                    guard let reference = item as? [Any], reference.count >= 4,
                          let kwargs = reference[3] as? [String: Any] else { return false }
                    return kwargs["training"] as? Bool == false
                }
            }
            return false
        }
    }
}
