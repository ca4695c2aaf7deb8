import Foundation
import TLFormats
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
    /// The classifier after the last feature map, when `predict` splits the graph there.
    private var classifier: GraphExecutor?
    /// `classifierTail()` of the graph it was found for (the graph is rebuilt for other sizes).
    private var cachedTail: (graph: Graph, split: (node: Int, tail: Graph)?)?
    /// `weightBudget` of the graph it was counted for: every call checks its micro-batch size.
    private var cachedWeightBudget: (graph: Graph, budget: Int)?
    /// The graph's `parameterVersion` the executors' fused copies were made from.
    private var executorsVersion = -1

    /// Loads a model file: a Keras model config inside it is used when present, otherwise the
    /// architecture is `architecture` or detected from the layer names.
    /// - Parameters:
    ///   - url: a `.safetensors`, `.h5`, `.weights.h5` or `.keras` file.
    ///   - architecture: overrides detection; a wrong choice fails strict loading.
    ///   - probeHDF5: read HDF5 structure in a forked child first (a crafted file cannot crash the
    ///     process); false only for a file known to have passed.
    /// - Throws: `EngineError` (unreadable file, unknown architecture, missing or mis-shaped weight).
    public static func load(from url: URL, architecture: Architecture? = nil, probeHDF5: Bool = true) throws -> Model {
        try Model(weights: try WeightFiles.open(url, probeHDF5: probeHDF5), architecture: architecture)
    }

    /// Builds and strictly loads a model from any weight source.
    /// - Throws: `EngineError` for an unknown architecture or any weight mismatch.
    public init(weights: WeightSource, architecture: Architecture? = nil) throws {
        if architecture == nil, let config = weights.modelConfig {
            graph = try KerasGraphReader.graph(fromJSON: config)
            try graph.loadWeights(from: weights)
            self.architecture = nil
            options = nil
            return
        }
        // Automatic names from a busy session (`conv2d_94`) or Keras 2.0 (`conv2d_1`): renumbered as Keras pairs them, by order.
        let source = AutomaticNames.adapting(weights)
        let chosen = try (architecture ?? Architecture.detect(from: source)).resolved(using: source)
        let options = Architecture.options(for: source, architecture: chosen)
        graph = try chosen.build(options: options)
        try graph.loadWeights(from: source)
        self.architecture = chosen
        self.options = options
    }

    /// Wraps a graph whose weights are already loaded.
    public init(graph: Graph) {
        self.graph = graph
        architecture = nil
        options = nil
    }

    /// Whether `predict` yields class scores: the model has a classifier head with weights after
    /// its convolutional base (false for `include_top=False` files, pooled or not).
    public var hasClassifier: Bool { graph.endsInClassifier }

    /// The per-sample input shape, `-1` where any size is accepted.
    public var inputShape: [Int] { graph.shapes[graph.inputs[0]] }

    /// Runs the whole network.
    /// - Parameter input: `[N, H, W, C]` float32, already preprocessed as the model expects.
    /// - Returns: the model output, e.g. `[N, classes]`.
    /// - Throws: `EngineError.inputShapeMismatch` naming the expected and actual shape.
    public func predict(input: Tensor) throws -> Tensor {
        try prepare(for: input)
        // The base runs a few images per pass (`activationBudget`), the classifier after it once
        // over the whole batch — VGG16's fc1 streams its 411 MB of weights once per batch instead
        // of once per image — and the AMX check compares feature maps, not probabilities. The
        // same bits as one graph: a GEMM row does not depend on how many rows share the product.
        if let (node, tail) = try classifierTail() {
            let map = try run(input, executor: &extractor) { try self.graph.truncated(at: node).fused() }
            return try run(map, executor: &classifier) { try tail.fused() }
        }
        return try run(input, executor: &predictor) { try self.graph.fused() }
    }

    /// The last feature map's node and the classifier graph after it, when the graph has a
    /// classifier with weights that reads nothing but that map.
    private func classifierTail() throws -> (node: Int, tail: Graph)? {
        if let cachedTail, cachedTail.graph === graph { return cachedTail.split }
        var split: (node: Int, tail: Graph)?
        if graph.inputs.count == 1, graph.outputs.count == 1, graph.endsInClassifier, let node = graph.lastSpatialNode,
           let tail = try graph.tail(after: node) {
            split = (node, tail)
        }
        cachedTail = (graph, split)
        return split
    }

    /// Per-layer wall times of one `predict` (or, with `features`, one `features` call) over all
    /// of `input`, slowest first: each executor it used is timed on one pass and its times
    /// multiplied by the passes the batch takes.
    public func profile(input: Tensor, features: Bool = false) throws -> [(layer: String, seconds: Double)] {
        let count = input.shape[0]
        let executors: [GraphExecutor?]
        if features {
            _ = try self.features(input: input)
            executors = [extractor]
        } else {
            _ = try predict(input: input)
            executors = try classifierTail() != nil ? [extractor, classifier] : [predictor]
        }
        var result: [(layer: String, seconds: Double)] = []
        for (index, executor) in executors.enumerated() {
            guard let executor else { continue }
            let shape = executor.inputShapes[0], passes = Double((count + shape[0] - 1) / shape[0])
            let sample = index == 0
                ? Tensor(shape: shape, scalars: Array(input.scalars[0..<(input.count / count * shape[0])]))
                : Tensor(shape: shape)
            result += try executor.profile([sample]).map { ($0.layer, $0.seconds * passes) }
        }
        return result.sorted { $0.seconds > $1.seconds }
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
        guard let node = graph.lastSpatialNode else {
            throw EngineError.unsupportedRequest("model '\(name)' has no spatial feature map to extract features from")
        }
        let map = try run(input, executor: &extractor) { try self.graph.truncated(at: node).fused() }
        return Model.pool(map, pooling)
    }

    /// Activation floats per pass the engine aims to stay under, or nil (the default) for about
    /// as many as the model has weights, between 4 M and 16 M. Large batches run a few images at
    /// a time so the activations stay near the cache, and every pass streams every weight once:
    /// a model heavy in weights (ResNet50's 25 M, VGG16's) takes 16 M (ResNet50 16 images per
    /// pass, VGG16 5; 10–25 % faster at batch 32 than 4 M), a light one (MobileNetV2's 3.5 M,
    /// EfficientNetB0's 5.3 M) 4–5 M (8–15 % faster than 16 M). Changing it takes effect at the
    /// next call with a new input shape.
    public var activationBudget: Int?

    /// The AMX check of the graph planned last (nil before any, or where it does not run:
    /// without AMX, with `TLHUB_AMX` set, or when no convolution could take it). Where the CPU
    /// has AMX tiles, each graph the model plans for an input shape runs its first sample twice,
    /// with fp32 GEMMs and with AMX ones (three bfloat16 products each), and keeps AMX when the
    /// outputs agree within `AMXCheck.tolerance` of the largest: 1.2–1.4× the speed at batch 32,
    /// up to 1.2× at batch 1 (MobileNetV2, ResNet50). `TLHUB_AMX=0` keeps fp32 everywhere.
    public private(set) var lastAMXCheck: AMXCheck?

    /// Whether a graph planned from now on may run the AMX check (and then AMX). A caller that
    /// runs one sample and no more sets it false: the check's second pass would cost more than
    /// AMX saves (a one-JPEG `tlhub features` on MobileNetV2: about 7 ms of 65).
    public var checksAMX = true

    /// The budget `activationBudget` nil stands for.
    private var weightBudget: Int {
        if let cachedWeightBudget, cachedWeightBudget.graph === graph { return cachedWeightBudget.budget }
        let weights = graph.uniqueLayers.reduce(0) { total, entry in total + entry.layer.weights.values.reduce(0) { $0 + $1.count } }
        let budget = min(max(weights, 4_000_000), 16_000_000)
        cachedWeightBudget = (graph, budget)
        return budget
    }

    /// Runs `input` through the graph `makeGraph` builds, in micro-batches, reusing `executor`
    /// while the per-sample shape and micro-batch size stay the same.
    private func run(_ input: Tensor, executor: inout GraphExecutor?, makeGraph: () throws -> Graph) throws -> Tensor {
        let count = input.shape[0]
        let sampleShape = Array(input.shape.dropFirst())
        var current: GraphExecutor
        var checked: Tensor?  // the first sample's output, when the AMX check ran it
        if let executor, Array(executor.inputShapes[0].dropFirst()) == sampleShape,
           executor.inputShapes[0][0] <= count, executor.inputShapes[0][0] == microBatch(executor, count: count) {
            current = executor
        } else {
            executor = nil  // release the old buffers before planning new ones
            var graph = try makeGraph()
            var convolutions: [Conv2D] = []
            if Conv2D.amxUse == .whereAccurate && checksAMX {
                graph = try graph.owningConvolutions(apartFrom: self.graph)
                convolutions = graph.amxConvolutions(apartFrom: self.graph)
            }
            let probe = try GraphExecutor(graph: graph, inputShapes: [[1] + sampleShape])
            if !convolutions.isEmpty {
                // Checked once per plan, on the first sample: every later pass of this executor
                // takes the same GEMMs, so a row's bits do not depend on the batch it came in.
                let sample = count == 1 ? input : Tensor(shape: [1] + sampleShape, scalars: Array(input.scalars[0..<(input.count / count)]))
                let (outputs, check) = try graph.choosingAMX(for: convolutions, executor: probe, sample: sample)
                checked = outputs[0]
                lastAMXCheck = check
            }
            let size = microBatch(probe, count: count)
            current = size == 1 ? probe : try GraphExecutor(graph: graph, inputShapes: [[size] + sampleShape])
            executor = current
        }
        let size = current.inputShapes[0][0]
        if size == count {
            if count == 1, let checked { return checked }
            return try current.run([input])[0]
        }
        var scalars: [Float] = []
        var outputShape: [Int] = []
        var start = 0
        while start < count {
            let end = min(start + size, count)
            // The last micro-batch is padded with zeros to the planned size; its extra outputs are dropped.
            let output = try current.run(input, samples: start..<end)[0]
            outputShape = Array(output.shape.dropFirst())
            if scalars.isEmpty { scalars.reserveCapacity(count * output.count / (end - start)) }
            scalars.append(contentsOf: output.scalars)
            start = end
        }
        return Tensor(shape: [count] + outputShape, scalars: scalars)
    }

    /// Images per pass: within the activation budget, and as even as possible, so the last pass
    /// is not mostly zero padding (32 images under a limit of 9 run as 4 × 8, not 4 × 9).
    private func microBatch(_ executor: GraphExecutor, count: Int) -> Int {
        let budget = activationBudget ?? weightBudget
        let limit = max(1, min(count, budget / max(executor.largestActivationPerSample, 1)))
        let passes = (count + limit - 1) / limit
        return (count + passes - 1) / passes
    }

    /// Rebuilds a native architecture for the input's image size when the graph was built for
    /// another one (a weights-only file defaults to 224 px; MobileNetV2's stride-2 padding depends
    /// on the size), reusing the loaded weights. When the architecture cannot take that size
    /// (VGG's `Flatten` top), the graph stays and running it reports the shape mismatch.
    private func prepare(for input: Tensor) throws {
        // Fused copies (folded BatchNorm, merged activations) hold their own weights: after any
        // weight change in `graph` they are made again.
        let version = graph.parameterVersion
        if version != executorsVersion {
            predictor = nil
            extractor = nil
            classifier = nil
            executorsVersion = version
        }
        guard input.rank == 4, input.shape[0] > 0 else {
            throw EngineError.inputShapeMismatch(expected: "[N, " + inputShape.map { $0 < 0 ? "any" : String($0) }.joined(separator: ", ") + "]", actual: input.shape)
        }
        let given = Array(input.shape.dropFirst())
        guard architecture != nil, given != inputShape, given.count == inputShape.count, given.last == inputShape.last,
              architecture?.paddingDependsOnInputSize == true || inputShape.contains(where: { $0 > 0 }),
              let rebuilt = try? rebuiltGraph(sampleShape: given) else { return }
        graph = rebuilt
        predictor = nil
        extractor = nil
        classifier = nil
    }

    /// The graph for `height × width` (`[H, W]`) images: a native architecture is built for its
    /// default size until it runs, so it is rebuilt (same weights) for another; a model from a
    /// Keras config keeps its graph.
    /// - Throws: `EngineError` when the architecture cannot take that size.
    public func graph(forImageSize size: [Int]) throws -> Graph {
        guard architecture != nil, size.count == 2 else { return graph }
        let shape = size + [inputShape.last ?? 3]
        return shape == inputShape ? graph : try rebuiltGraph(sampleShape: shape)
    }

    /// The native architecture rebuilt for per-sample `shape`, with the current weights.
    private func rebuiltGraph(sampleShape shape: [Int]) throws -> Graph {
        guard let architecture, var options else { return graph }
        options.inputShape = shape
        let rebuilt = try architecture.build(options: options)
        try rebuilt.loadWeights(from: WeightDictionary(graph: graph))
        return rebuilt
    }

    /// Global average or max pooling of `[N, H, W, C]` to `[N, C]` (the `GlobalPooling2D` layer).
    static func pool(_ map: Tensor, _ pooling: FeaturePooling) -> Tensor {
        guard pooling != .none, map.rank == 4 else { return map }
        let layer = GlobalPooling2D(name: "pool", kind: pooling == .max ? .max : .average)
        var result = [Float](repeating: 0, count: map.shape[0] * map.shape[3])
        map.scalars.withUnsafeBufferPointer { input in
            result.withUnsafeMutableBufferPointer { output in
                layer.forward([ActivationView(data: input.baseAddress!, shape: map.shape)],
                              into: MutableActivationView(data: output.baseAddress!, shape: [map.shape[0], map.shape[3]]),
                              scratch: output.baseAddress!)
            }
        }
        return Tensor(shape: [map.shape[0], map.shape[3]], scalars: result)
    }
}

/// Opens model files of every layout tlhub reads.
public enum WeightFiles {
    /// Opens `url` as a weight source: a `.safetensors`, a legacy Keras `.h5` (weights-only or full
    /// model), a Keras 3 `.weights.h5` or a `.keras` archive, recognised by content.
    /// - Throws: `EngineError.unreadableFile` for a missing file, or the format reader's own error
    ///   (naming the file and the problem) for anything it cannot read.
    public static func open(_ url: URL, probeHDF5: Bool = true) throws -> WeightSource {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw EngineError.unreadableFile(path: url.path, problem: "no such file")
        }
        return try WeightFile.open(url, probeHDF5: probeHDF5)
    }
}
