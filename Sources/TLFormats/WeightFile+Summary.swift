import Foundation

extension WeightFile {
    /// A description of a weight file for people and for `--json`: format, versions, every
    /// layer with its weights' names, shapes and stored types, the parameter count and a summary
    /// of the model config.
    public struct Summary: Codable, Sendable, Equatable {
        /// One weight's name, shape and stored type.
        public struct Weight: Codable, Sendable, Equatable {
            public var name: String
            public var shape: [Int]
            public var dtype: String
        }

        /// One layer.
        public struct Layer: Codable, Sendable, Equatable {
            public var name: String
            public var className: String?
            public var parentModel: String?
            public var weights: [Weight]

            enum CodingKeys: String, CodingKey {
                case name, className = "class", parentModel = "parent_model", weights
            }
        }

        /// What the model config says about the model as a whole.
        public struct Model: Codable, Sendable, Equatable {
            public var className: String
            public var name: String
            public var layerCount: Int
            public var nestedModels: [String: [String]]

            enum CodingKeys: String, CodingKey {
                case className = "class", name, layerCount = "layer_count", nestedModels = "nested_models"
            }
        }

        public var file: String
        public var format: String
        public var formatDescription: String
        public var kerasVersion: String?
        public var backend: String?
        public var parameterCount: Int
        public var weightCount: Int
        public var model: Model?
        public var layers: [Layer]
        public var metadata: [String: String]

        enum CodingKeys: String, CodingKey {
            case file, format, formatDescription = "format_description", kerasVersion = "keras_version", backend
            case parameterCount = "parameter_count", weightCount = "weight_count", model, layers, metadata
        }
    }

    /// Summarises this file (reads no weight values).
    public func summary() -> Summary {
        var model: Summary.Model?
        if let modelConfig, let config = try? KerasModelConfig(json: modelConfig, path: url.path) {
            model = Summary.Model(className: config.className, name: config.name, layerCount: config.layers.count,
                                  nestedModels: config.nestedModels)
        }
        // Long values (the model config itself) are summarised above, not repeated.
        let shownMetadata = metadata.filter { $0.key != "model_config" }
        return Summary(
            file: url.path, format: format.rawValue, formatDescription: format.summary, kerasVersion: kerasVersion,
            backend: backend, parameterCount: parameterCount, weightCount: allWeights.count, model: model,
            layers: layers.map { layer in
                Summary.Layer(name: layer.name, className: layer.className, parentModel: layer.parentModel,
                              weights: layer.weights.map { Summary.Weight(name: $0.name, shape: $0.shape, dtype: $0.dtype) })
            },
            metadata: shownMetadata)
    }
}
