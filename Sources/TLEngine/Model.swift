import Foundation
import TLTensor

/// A loaded network ready for inference: `predict` runs the whole model, `features` the
/// convolutional base with global pooling.
///
/// ```swift
/// let model = try Model.load(from: URL(fileURLWithPath: "mobilenet_v2.safetensors"))
/// let vectors = try model.features(input: batch, pooling: .avg)   // [N, 1280]
/// let scores = try model.predict(input: batch)                    // [N, 1000]
/// ```
///
/// Inference runs a fused copy of the graph (BatchNorm folded, activations fused); `graph` is
/// the unfused reference. Buffers are planned once per input shape and reused across calls.
/// A `Model` is not thread-safe: use one per thread.
public final class Model {
    /// The Keras model name.
    public var name: String { graph.name }
    /// The native architecture, when the model was built by tlhub rather than from a Keras config.
    public let architecture: Architecture?
    /// The constructor options of a native architecture.
    public let options: ApplicationOptions?
    /// The unfused reference graph with weights loaded.
    public private(set) var graph: Graph
    private var predictor: GraphExecutor?
    private var extractor: GraphExecutor?

    /// Loads a model file: a Keras model config inside it is used when present, otherwise the
    /// architecture is `architecture` or detected from the layer names.
    /// - Parameters:
    ///   - url: a `.safetensors` file (Keras `.h5`/`.keras` once the HDF5 reader is linked in).
    ///   - architecture: overrides detection; a wrong choice fails strict loading.
    /// - Throws: `EngineError` (unreadable file, unknown architecture, missing or mis-shaped weight).
    public static func load(from url: URL, architecture: Architecture? = nil) throws -> Model {
        try Model(weights: try WeightFiles.open(url), architecture: architecture)
    }

    /// Builds and strictly loads a model from any weight source.
    /// - Throws: `EngineError` for an unknown architecture or any weight mismatch.
    public init(weights: WeightSource, architecture: Architecture? = nil) throws {
        if architecture == nil, let config = weights.modelConfig {
            graph = try KerasModelConfig.graph(fromJSON: config)
            try graph.loadWeights(from: weights)
            self.architecture = nil
            options = nil
            return
        }
        var chosen = try architecture ?? Architecture.detect(from: weights)
        if case .mobileNetV2(let alpha) = chosen, alpha == 0 {
            let filters = weights.shape(layer: "block_16_project", weight: "kernel")?.last ?? 0
            chosen = .mobileNetV2(alpha: try Architecture.mobileNetV2Alpha(projectFilters: filters))
        }
        chosen = try chosen.resolved(using: weights)
        let options = Architecture.options(for: weights, architecture: chosen)
        graph = try chosen.build(options: options)
        try graph.loadWeights(from: weights)
        self.architecture = chosen
        self.options = options
    }

    /// Wraps a graph whose weights are already loaded.
    public init(graph: Graph) {
        self.graph = graph
        architecture = nil
        options = nil
    }

    /// The per-sample input shape, `-1` where any size is accepted.
    public var inputShape: [Int] { graph.shapes[graph.inputs[0]] }

    /// Runs the whole network.
    /// - Parameter input: `[N, H, W, C]` float32, already preprocessed as the model expects.
    /// - Returns: the model output, e.g. `[N, classes]`.
    /// - Throws: `EngineError.inputShapeMismatch` naming the expected and actual shape.
    public func predict(input: Tensor) throws -> Tensor {
        try prepare(for: input)
        if predictor?.inputShapes != [input.shape] {
            predictor = nil
            predictor = try GraphExecutor(graph: try graph.fused(), inputShapes: [input.shape])
        }
        return try predictor!.run([input])[0]
    }

    /// Runs the convolutional base (up to the last spatial feature map, before any pooling,
    /// flatten or classifier) and pools it.
    /// - Parameters:
    ///   - input: `[N, H, W, C]` float32, already preprocessed.
    ///   - pooling: `.avg`/`.max` give `[N, C]`; `.none` gives the `[N, h, w, C]` map.
    /// - Throws: `EngineError.inputShapeMismatch`, or `.unsupportedRequest` for a network
    ///   without a spatial feature map.
    public func features(input: Tensor, pooling: FeaturePooling = .avg) throws -> Tensor {
        try prepare(for: input)
        if extractor?.inputShapes != [input.shape] {
            guard let node = graph.lastSpatialNode else {
                throw EngineError.unsupportedRequest("model '\(name)' has no spatial feature map to extract features from")
            }
            extractor = nil
            extractor = try GraphExecutor(graph: try graph.truncated(at: node).fused(), inputShapes: [input.shape])
        }
        let map = try extractor!.run([input])[0]
        return Model.pool(map, pooling)
    }

    /// Rebuilds a native architecture for the input's image size when the graph was built for
    /// another one (MobileNetV2's stride-2 padding depends on it), reusing the loaded weights.
    private func prepare(for input: Tensor) throws {
        guard input.rank == 4 else {
            throw EngineError.inputShapeMismatch(expected: "[N, " + inputShape.map { $0 < 0 ? "any" : String($0) }.joined(separator: ", ") + "]", actual: input.shape)
        }
        guard let architecture, var options, inputShape.contains(where: { $0 > 0 }),
              Array(input.shape.dropFirst()) != inputShape else { return }
        if case .vgg16 = architecture, options.includeTop { return }
        if case .vgg19 = architecture, options.includeTop { return }
        guard input.shape[3] == inputShape[2] else { return }
        options.inputShape = Array(input.shape.dropFirst())
        let rebuilt = try architecture.build(options: options)
        try rebuilt.loadWeights(from: WeightDictionary(graph: graph))
        graph = rebuilt
        predictor = nil
        extractor = nil
    }

    /// Global average or max pooling of `[N, H, W, C]` to `[N, C]`.
    static func pool(_ map: Tensor, _ pooling: FeaturePooling) -> Tensor {
        guard pooling != .none, map.rank == 4 else { return map }
        let (batch, pixels, channels) = (map.shape[0], map.shape[1] * map.shape[2], map.shape[3])
        var result = [Float](repeating: pooling == .max ? -.infinity : 0, count: batch * channels)
        for image in 0..<batch {
            for pixel in 0..<pixels {
                let base = (image * pixels + pixel) * channels
                for c in 0..<channels {
                    let value = map.scalars[base + c]
                    if pooling == .max {
                        result[image * channels + c] = max(result[image * channels + c], value)
                    } else {
                        result[image * channels + c] += value
                    }
                }
            }
            if pooling == .avg {
                for c in 0..<channels { result[image * channels + c] /= Float(pixels) }
            }
        }
        return Tensor(shape: [batch, channels], scalars: result)
    }
}

/// Opens model files by extension.
public enum WeightFiles {
    /// Opens `url` as a weight source.
    /// - Throws: `EngineError.unreadableFile` for a missing file or a format this build cannot read,
    ///   or the format reader's own error for a corrupt file.
    public static func open(_ url: URL) throws -> WeightSource {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw EngineError.unreadableFile(path: url.path, problem: "no such file")
        }
        switch url.pathExtension.lowercased() {
        case "safetensors":
            return try SafeTensorsFile(contentsOf: url)
        case "h5", "hdf5", "keras":
            throw EngineError.unreadableFile(path: url.path, problem: "Keras HDF5/.keras files need the TLFormats reader, which this build does not link yet; convert to .safetensors")
        default:
            throw EngineError.unreadableFile(path: url.path, problem: "unknown model file type '.\(url.pathExtension)' (expected .safetensors, .h5, .weights.h5 or .keras)")
        }
    }
}
