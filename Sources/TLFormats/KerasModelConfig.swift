import Foundation
import TLTensor

/// The parts of a Keras model config (`model_config` attribute of a full-model `.h5`, or a
/// `.keras` archive's `config.json`) that tlhub needs: every layer's name and class, the few
/// options that decide which weights a layer has, and nested models' own layers.
public struct KerasModelConfig: Sendable, Equatable {
    /// One layer of the config.
    public struct Layer: Sendable, Equatable {
        /// The Keras layer name.
        public var name: String
        /// The Keras class name (`Conv2D`, `BatchNormalization`, `Functional`, …).
        public var className: String
        /// `center` of a normalization layer (default true).
        public var center: Bool
        /// `scale` of a normalization layer (default true).
        public var scale: Bool
        /// `use_bias` of a convolution or dense layer (default true).
        public var useBias: Bool
        /// The layers of a nested model (`Functional`, `Sequential`, `Model`); empty otherwise.
        public var layers: [Layer]

        /// Whether this layer is itself a model whose layers are listed.
        public var isModel: Bool { !layers.isEmpty }
    }

    /// The model's class (`Functional`, `Sequential`, `Model`).
    public var className: String
    /// The model's name.
    public var name: String
    /// The model's layers in config order.
    public var layers: [Layer]

    /// Parses the JSON text of a model config.
    /// - Throws: ``FormatError`` when it is not a Keras model config.
    public init(json: String, path: String) throws {
        guard let object = ParsedJSON.object(json) else {
            throw FormatError(path: path, problem: "model config is not a JSON object")
        }
        guard let layer = Self.layer(object) else {
            throw FormatError(path: path, problem: "model config has no class_name/config")
        }
        className = layer.className
        name = layer.name
        layers = layer.layers
    }

    private static func layer(_ object: [String: Any]) -> Layer? {
        guard let className = object["class_name"] as? String else { return nil }
        let config = object["config"] as? [String: Any] ?? [:]
        let name = config["name"] as? String ?? object["name"] as? String ?? ""
        let children = (config["layers"] as? [[String: Any]] ?? []).compactMap { layer($0) }
        return Layer(name: name, className: className,
                     center: config["center"] as? Bool ?? true, scale: config["scale"] as? Bool ?? true,
                     useBias: config["use_bias"] as? Bool ?? true, layers: children)
    }

    /// Every non-model layer by name, nested models' layers included.
    public var layersByName: [String: Layer] {
        var result: [String: Layer] = [:]
        func visit(_ layers: [Layer]) {
            for layer in layers {
                result[layer.name] = result[layer.name] ?? layer
                visit(layer.layers)
            }
        }
        visit(layers)
        return result
    }

    /// Nested models by name with their own layer names (input layers left out), in config order.
    public var nestedModels: [String: [String]] {
        var result: [String: [String]] = [:]
        func visit(_ layers: [Layer]) {
            for layer in layers where layer.isModel {
                result[layer.name] = layer.layers.filter { $0.className != "InputLayer" }.map(\.name)
                visit(layer.layers)
            }
        }
        visit(layers)
        return result
    }

    /// Keras' `to_snake_case` of a class name (`BatchNormalization` → `batch_normalization`),
    /// which Keras 3 uses to name layers inside `.weights.h5` files.
    public static func snakeCase(_ className: String) -> String {
        var characters = Array(className)
        var output = ""
        // Pass 1: "(.)([A-Z][a-z]+)" → "\1_\2"; pass 2: "([a-z])([A-Z])" → "\1_\2".
        var first = ""
        for index in characters.indices {
            let character = characters[index]
            if index > 0, character.isUppercase, index + 1 < characters.count, characters[index + 1].isLowercase {
                first.append("_")
            }
            first.append(character)
        }
        characters = Array(first)
        for index in characters.indices {
            let character = characters[index]
            if index > 0, character.isUppercase, characters[index - 1].isLowercase {
                output.append("_")
            }
            output.append(character)
        }
        return output.lowercased()
    }
}
