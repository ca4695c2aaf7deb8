import Foundation
import TLTensor

/// Writes a graph as a tf.keras 2 Functional model config (the `model_config` of a full-model
/// `.h5`), which tf.keras 2 and Keras 3 (`keras.models.load_model`) both read. Layers without a
/// built-in Keras class must be replaced first (`Graph.withKerasBuiltinLayers()`, as
/// `KerasModelExport` does, so the weights follow the same layers). The config is flat:
/// nested models' layers appear under their own names, which are unique in tlhub's graphs.
public enum KerasConfigWriter {
    /// The config JSON of `graph`.
    /// - Throws: `EngineError.unsupportedLayer` for a layer with no Keras counterpart written here.
    public static func config(of graph: Graph) throws -> String {
        var layers: [[String: Any]] = []
        var written = Set<ObjectIdentifier>()
        var calls: [ObjectIdentifier: Int] = [:]
        var nodeIndex: [Int: (name: String, call: Int)] = [:]
        for (index, node) in graph.nodes.enumerated() {
            let id = ObjectIdentifier(node.layer)
            let call = calls[id, default: 0]
            calls[id] = call + 1
            nodeIndex[index] = (node.layer.name, call)
            let inbound = node.inputs.map { input -> [Any] in
                let source = nodeIndex[input]!
                return [source.name, source.call, 0, [String: Any]()]
            }
            if written.contains(id) {
                // A shared layer called again: one more inbound node on its entry.
                if let position = layers.firstIndex(where: { $0["name"] as? String == node.layer.name }) {
                    var nodes = layers[position]["inbound_nodes"] as? [Any] ?? []
                    nodes.append(inbound)
                    layers[position]["inbound_nodes"] = nodes
                }
                continue
            }
            written.insert(id)
            let (className, config) = try describe(node.layer, inputShape: node.inputs.first.map { graph.shapes[$0] } ?? graph.shapes[index])
            var full = config
            full["name"] = node.layer.name
            if className != "InputLayer" {
                full["trainable"] = true
                full["dtype"] = "float32"
            }
            layers.append(["class_name": className, "name": node.layer.name, "config": full,
                           "inbound_nodes": node.layer is InputLayer ? [] : [inbound]])
        }
        let reference: (Int) -> [Any] = { index in [nodeIndex[index]!.name, nodeIndex[index]!.call, 0] }
        let root: [String: Any] = [
            "class_name": "Functional",
            "config": ["name": graph.name, "trainable": true, "layers": layers,
                       "input_layers": graph.inputs.map(reference), "output_layers": graph.outputs.map(reference)],
            "keras_version": "2.21.0", "backend": "tensorflow",
        ]
        var json = ""
        try writeJSON(root, to: &json)
        return json
    }

    /// Appends `value` (a dictionary, array, string, integer, float, Bool or NSNull) as JSON, keys
    /// sorted. What `JSONSerialization` with `.sortedKeys` writes, minus its cost: its key sort
    /// took most of a warm `finetune` run (~50 ms for MobileNetV2's config).
    static func writeJSON(_ value: Any, to json: inout String) throws {
        switch value {
        case let dictionary as [String: Any]:
            json += "{"
            for (index, key) in dictionary.keys.sorted().enumerated() {
                if index > 0 { json += "," }
                writeString(key, to: &json)
                json += ":"
                try writeJSON(dictionary[key]!, to: &json)
            }
            json += "}"
        case let array as [Any]:
            json += "["
            for (index, element) in array.enumerated() {
                if index > 0 { json += "," }
                try writeJSON(element, to: &json)
            }
            json += "]"
        case let string as String: writeString(string, to: &json)
        case let bool as Bool: json += bool ? "true" : "false"
        case let integer as Int: json += String(integer)
        case let number as Double:
            guard number.isFinite else { throw EngineError.unsupportedOption(layer: "model config", option: "value", value: "\(number)") }
            json += "\(number)"
        case let number as Float: try writeJSON(Double(number), to: &json)
        case is NSNull: json += "null"
        default: throw EngineError.unsupportedOption(layer: "model config", option: "value", value: "\(type(of: value))")
        }
    }

    private static func writeString(_ string: String, to json: inout String) {
        json += "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": json += "\\\""
            case "\\": json += "\\\\"
            case "\n": json += "\\n"
            case "\r": json += "\\r"
            case "\t": json += "\\t"
            case _ where scalar.value < 0x20: json += String(format: "\\u%04x", scalar.value)
            default: json.unicodeScalars.append(scalar)
            }
        }
        json += "\""
    }

    /// The Keras class name and config of one layer.
    static func describe(_ layer: any Layer, inputShape: [Int]) throws -> (String, [String: Any]) {
        func pair(_ value: (Int, Int)) -> [Int] { [value.0, value.1] }
        switch layer {
        case let input as InputLayer:
            return ("InputLayer", ["batch_input_shape": [NSNull()] + input.shape.map { $0 < 0 ? NSNull() as Any : $0 as Any },
                                   "dtype": "float32", "sparse": false, "ragged": false])
        case let conv as Conv2D:
            guard conv.extraPadding.0 == (0, 0), conv.extraPadding.1 == (0, 0), !conv.addsResidual, !conv.scalesInput else { break }
            return ("Conv2D", ["filters": conv.filters, "kernel_size": pair(conv.kernelSize), "strides": pair(conv.strides),
                               "padding": conv.padding.rawValue, "data_format": "channels_last", "dilation_rate": pair(conv.dilation),
                               "groups": conv.groups, "activation": try name(conv.activation, layer: conv.name), "use_bias": conv.useBias])
        case let depthwise as DepthwiseConv2D:
            return ("DepthwiseConv2D", ["kernel_size": pair(depthwise.kernelSize), "strides": pair(depthwise.strides),
                                        "padding": depthwise.padding.rawValue, "depth_multiplier": depthwise.depthMultiplier,
                                        "data_format": "channels_last", "dilation_rate": pair(depthwise.dilation),
                                        "activation": try name(depthwise.activation, layer: depthwise.name), "use_bias": depthwise.useBias])
        case let separable as SeparableConv2D:
            return ("SeparableConv2D", ["filters": separable.pointwise.filters, "kernel_size": pair(separable.depthwise.kernelSize),
                                        "strides": pair(separable.depthwise.strides), "padding": separable.depthwise.padding.rawValue,
                                        "depth_multiplier": separable.depthwise.depthMultiplier, "data_format": "channels_last",
                                        "dilation_rate": pair(separable.depthwise.dilation),
                                        "activation": try name(separable.pointwise.activation, layer: separable.name),
                                        "use_bias": separable.pointwise.useBias])
        case let channelwise as ChannelwiseConv2D:
            let depthwise = channelwise.depthwise
            return ("Conv2D", ["filters": channelwise.channels, "kernel_size": pair(depthwise.kernelSize), "strides": pair(depthwise.strides),
                               "padding": depthwise.padding.rawValue, "data_format": "channels_last", "dilation_rate": pair(depthwise.dilation),
                               "groups": channelwise.channels, "activation": try name(depthwise.activation, layer: channelwise.name),
                               "use_bias": depthwise.useBias])
        case let normalization as LayerNormalization:
            return ("LayerNormalization", ["axis": -1, "epsilon": Double(normalization.epsilon), "center": normalization.center,
                                           "scale": normalization.scale])
        case let normalization as Normalization:
            // Configured statistics go in the config; adapted ones are the layer's weights.
            var config: [String: Any] = ["axis": -1, "invert": false]
            if let mean = normalization.configuredMean, let variance = normalization.configuredVariance {
                config["mean"] = mean.map { Double($0) }
                config["variance"] = variance.map { Double($0) }
            }
            return ("Normalization", config)
        case let batchNorm as BatchNormalization:
            return ("BatchNormalization", ["axis": -1, "momentum": 0.99, "epsilon": Double(batchNorm.epsilon),
                                           "center": batchNorm.center, "scale": batchNorm.scale])
        case let activation as ActivationLayer:
            switch activation.activation {
            case .relu: return ("ReLU", ["max_value": NSNull(), "negative_slope": 0.0, "threshold": 0.0])
            case .relu6: return ("ReLU", ["max_value": 6.0, "negative_slope": 0.0, "threshold": 0.0])
            case let .clippedReLU(maxValue, slope, threshold):
                return ("ReLU", ["max_value": maxValue.map { Double($0) as Any } ?? NSNull(), "negative_slope": Double(slope),
                                 "threshold": Double(threshold)])
            case .leakyReLU(let slope): return ("LeakyReLU", ["alpha": Double(slope)])
            default: return ("Activation", ["activation": try name(activation.activation, layer: activation.name)])
            }
        case let padding as SpatialPadding:
            let amounts = [pair(padding.amounts.0), pair(padding.amounts.1)]
            return padding.crops ? ("Cropping2D", ["cropping": amounts, "data_format": "channels_last"])
                                 : ("ZeroPadding2D", ["padding": amounts, "data_format": "channels_last"])
        case let merge as ElementwiseMerge:
            guard merge.activation == .linear else { break }
            let names: [ElementwiseMerge.Operation: String] = [.add: "Add", .subtract: "Subtract", .multiply: "Multiply",
                                                               .average: "Average", .maximum: "Maximum", .minimum: "Minimum"]
            return (names[merge.operation] ?? "Add", [:])
        case let concatenate as Concatenate:
            return ("Concatenate", ["axis": concatenate.axis])
        case let pooling as Pooling2D:
            return (pooling.kind == .max ? "MaxPooling2D" : "AveragePooling2D",
                    ["pool_size": pair(pooling.poolSize), "strides": pair(pooling.strides), "padding": pooling.padding.rawValue,
                     "data_format": "channels_last"])
        case let pooling as GlobalPooling2D:
            return (pooling.kind == .max ? "GlobalMaxPooling2D" : "GlobalAveragePooling2D",
                    ["data_format": "channels_last", "keepdims": pooling.keepDimensions])
        case let dense as Dense:
            return ("Dense", ["units": dense.units, "activation": try name(dense.activation, layer: dense.name), "use_bias": dense.useBias])
        case let dropout as Dropout:
            return ("Dropout", ["rate": Double(dropout.rate), "noise_shape": NSNull(), "seed": NSNull()])
        case let identity as IdentityLayer:
            switch identity.kind {
            case .flatten: return ("Flatten", ["data_format": "channels_last"])
            case .reshape(let target): return ("Reshape", ["target_shape": target])
            case .passThrough: return ("Dropout", ["rate": 0.0, "noise_shape": NSNull(), "seed": NSNull()])
            }
        case let rescaling as Rescaling where rescaling.scale.count == 1 && rescaling.offset.count == 1:
            return ("Rescaling", ["scale": Double(rescaling.scale[0]), "offset": Double(rescaling.offset[0])])
        default:
            break
        }
        throw EngineError.unsupportedLayer(className: "\(type(of: layer)) (writing a Keras config)", layer: layer.name)
    }

    /// The Keras name of an activation a layer's `activation=` argument takes.
    static func name(_ activation: Activation, layer: String) throws -> String {
        switch activation {
        case .linear: return "linear"
        case .relu: return "relu"
        case .sigmoid: return "sigmoid"
        case .softmax: return "softmax"
        case .tanh: return "tanh"
        case .swish: return "swish"
        case .elu(1): return "elu"
        case .selu: return "selu"
        case .softplus: return "softplus"
        case .softsign: return "softsign"
        case .exponential: return "exponential"
        case .gelu(false): return "gelu"
        case .hardSigmoidKeras2: return "hard_sigmoid"
        default: throw EngineError.unsupportedOption(layer: layer, option: "activation", value: "\(activation)")
        }
    }
}
