import Foundation
import TLEngine
import TLFormats
import TLHubClient
import TLImaging
import TLTensor
import TLTraining

/// `tlhub train` as a library: a whole network trained on labelled image folders — a full Keras
/// model file (continued from its weights), a `model.to_json()` config (fresh weights from its
/// initializers, seeded), or a built-in spec (`alexnet`).
///
/// Every layer learns unless the file saved it frozen, `freeze` names it, or it comes before
/// `trainableFrom`; BatchNormalization runs on batch statistics as in Keras `fit` (frozen ones on
/// their moving statistics). A frozen part upstream of every trainable layer runs on the fused
/// inference path, cached per image when there is no augmentation.
public struct Training {
    public var model: String
    public var data: URL
    public var validation: URL?
    public var validationSplit: Double = 0
    public var output: URL
    public var optimizer: FineTuning.OptimizerChoice = .adam
    public var labelSmoothing: Float = 0
    public var balancedClassWeights = false
    public var options = TrainingOptions()
    public var size: String?
    public var interpolation: Interpolation = .nearest
    /// Default `none`: pixel values 0–255, as `img_to_array` gives them.
    public var preprocess: String?
    public var augmentation = Augmentation()
    /// Layers to keep as they are.
    public var freeze: [String] = []
    /// Train this layer and every one after it (Keras layer order) only.
    public var trainableFrom: String?
    public var tensorBoard: URL?
    /// When the run backs itself up into `output`, and the interrupted run it continues.
    public var backup = BackupSettings()

    public init(model: String, data: URL, output: URL) {
        self.model = model
        self.data = data
        self.output = output
    }

    /// Runs the job; the output folder is written atomically (model.h5, model.json, classes.json,
    /// history.csv, curves.png, logs/).
    public func run(hub: Hub, note: ((String) -> Void)? = nil, progress: FineTuning.FeatureProgress? = nil,
                    onEpoch: ((EpochRecord) -> Void)? = nil) async throws -> FineTuning.Result {
        try FineTuneOutput.checkReplaceable(output)
        let (train, held) = try LabeledImages.trainingAndValidation(data, validation: validation, split: validationSplit)
        let classCount = train.classNames.count
        let (graph, source) = try buildGraph(classes: classCount)
        let outputShape = graph.shapes[graph.outputs[0]]
        let outputCount = outputShape.last ?? 0
        let binary = outputCount == 1
        guard outputShape.count == 1, binary ? classCount == 2 : outputCount == classCount else {
            throw PipelineError(model, "the model ends in \(outputShape) outputs but \(data.path) has \(classCount) classes (\(train.classNames.joined(separator: ", ")))")
        }
        let lastActivation = (graph.nodes[graph.outputs[0]].layer as? DifferentiableLayer)?.finalActivation
        guard lastActivation == (binary ? .sigmoid : .softmax) else {
            throw PipelineError(model, "the model's last layer is not a \(binary ? "sigmoid" : "softmax") classifier; train fits classifiers with cross-entropy")
        }

        // Input size: the model's, or --size for a fully convolutional one.
        let declared = graph.shapes[graph.inputs[0]]
        let size: ImageSize
        if let text = self.size {
            size = try LoadedModel.parseSize(text)
            if declared.count == 3, declared[0] > 0, [declared[0], declared[1]] != [size.height, size.width] {
                throw PipelineError("--size", "the model takes \(declared[0])x\(declared[1]) images")
            }
        } else {
            guard declared.count == 3, declared[0] > 0, declared[1] > 0 else {
                throw PipelineError("--size", "the model accepts any image size; give one (--size 224)")
            }
            size = ImageSize(height: declared[0], width: declared[1])
        }
        let model = declared[0] > 0 ? graph : try graph.withInputShape([size.height, size.width, declared.last ?? 3])
        let preprocessing = try preprocess.map { try Preprocessing(name: $0) } ?? .identity

        let trainingGraph = try TrainingGraph(graph: model)
        let order = model.kerasLayerOrder.map(\.name)
        for name in freeze where !order.contains(name) {
            throw PipelineError("--freeze", "the model has no layer '\(name)'")
        }
        trainingGraph.setTrainable(false, layers: Set(freeze))
        if let trainableFrom {
            guard let index = order.firstIndex(of: trainableFrom) else {
                throw PipelineError("--trainable-from", "the model has no layer '\(trainableFrom)'")
            }
            trainingGraph.setTrainable(false, layers: Set(order[..<index]))
        }
        let split = try trainingGraph.splitAtFrozenPrefix()
        let hasPrefix = split.prefix.nodes.contains { !($0.layer is InputLayer) }
        let prefix = hasPrefix ? FrozenPrefixRunner(split.prefix) : nil
        let trainable = split.suffix.trainableParameters.reduce(0) { $0 + $1.gradient.count }
        note?("training \(trainable) weights of \(model.name) (\(source)) on \(size.height)x\(size.width) images, preprocessing \(preprocessing.rawValue)\(hasPrefix ? "; frozen up to \(split.cut.joined(separator: ", "))" : "")")

        let loader = ImageLoader(size: size, interpolation: interpolation)
        let started = Date()
        var statistics = FeatureCache.Statistics()
        let trainSource: any BatchSource
        let trainKept: [Int]
        var validationData: (source: any BatchSource, y: Tensor)?
        var validationCount = 0
        if let prefix, augmentation.isEmpty {
            // The frozen prefix's outputs, cached per image like finetune's features.
            let hash = try ModelResolver.sha256(of: URL(fileURLWithPath: self.model)).prefix(16)
            let settings = "train|\(hash)|\(size.height)x\(size.width)|\(interpolation)|\(preprocessing)|cut:\(split.cut.joined(separator: ","))"
            let cache = FeatureCache(cacheDirectory: hub.cacheDirectory, baseSHA256: String(hash), settings: settings)
            func features(_ set: LabeledImages) throws -> (InMemoryBatches, [Int]) {
                let result = try cache.features(of: set.files, loader: loader, preprocessing: preprocessing, batchSize: options.batchSize,
                                                progress: progress) { try prefix.rows($0) }
                statistics.add(result.statistics)
                return (InMemoryBatches(FrozenPrefixRunner.split(result.features, shapes: split.cutShapes)), result.kept)
            }
            let (source, kept) = try features(train)
            (trainSource, trainKept) = (source, kept)
            if let held {
                let (heldSource, kept) = try features(held)
                validationData = (heldSource, held.targets(binary: binary, rows: kept))
                validationCount = kept.count
            }
        } else {
            let checked = try train.readable(loader: loader, batchSize: options.batchSize, progress: progress)
            trainKept = checked.kept
            statistics.unreadable += checked.statistics.unreadable
            trainSource = ImageBatchSource(files: trainKept.map { train.files[$0] }, loader: loader, preprocessing: preprocessing,
                                           augmentation: augmentation, prefix: prefix)
            if let held {
                let heldChecked = try held.readable(loader: loader, batchSize: options.batchSize, progress: nil)
                statistics.unreadable += heldChecked.statistics.unreadable
                let heldSource = ImageBatchSource(files: heldChecked.kept.map { held.files[$0] }, loader: loader,
                                                  preprocessing: preprocessing, augmentation: Augmentation(), prefix: prefix)
                validationData = (heldSource, held.targets(binary: binary, rows: heldChecked.kept))
                validationCount = heldChecked.kept.count
            }
            if !augmentation.isEmpty { note?("augmenting the training images (\(augmentation))") }
        }
        statistics.reportUnreadable(note)
        let featureSeconds = Date().timeIntervalSince(started)

        var fitOptions = options
        if balancedClassWeights { fitOptions.classWeights = train.balancedClassWeights(rows: trainKept) }
        let loss: Loss = binary ? .binaryCrossEntropy : .categoricalCrossEntropy(labelSmoothing: labelSmoothing)
        let trainingStart = Date()
        let trainer = Trainer(model: split.suffix, loss: loss, optimizer: optimizer.make())
        let resumed = try TrainingBackup.resume(backup, into: trainer, epochs: options.epochs, note: note)
        let history = try trainer.fit(source: trainSource, y: train.targets(binary: binary, rows: trainKept), validation: validationData,
                                      options: fitOptions, onEpoch: onEpoch, resuming: resumed,
                                      backup: TrainingBackup.writer(backup, trainer: trainer, output: output))
        let trainingSeconds = Date().timeIntervalSince(trainingStart)

        var description = FineTunedDescription(
            baseReference: self.model, baseFile: self.model, baseSHA256: "", basePooling: "none", head: "",
            headInputShape: [], classes: train.classNames, preprocess: preprocessing.rawValue,
            inputSize: [size.height, size.width], interpolation: interpolation.rawValue)
        description.modelFile = "model.h5"
        let empty = try GraphBuilder().build(outputs: [], name: "none")
        try FineTuneOutput.write(description: description, head: empty, base: empty, history: history, to: output,
                                 tensorBoard: tensorBoard, kerasModel: model, note: note)
        return FineTuning.Result(history: history, classes: train.classNames, trainCount: trainKept.count,
                                 validationCount: validationCount, featureStatistics: statistics, featureSeconds: featureSeconds,
                                 trainingSeconds: trainingSeconds, output: output)
    }

    /// The graph to train and where it came from.
    private func buildGraph(classes: Int) throws -> (Graph, String) {
        if BuiltInModels.names.contains(model.lowercased()) {
            let side = try size.map { try LoadedModel.parseSize($0) }
            if let side, side.height != side.width { throw PipelineError("--size", "alexnet takes square images") }
            return (try BuiltInModels.alexNet(classes: classes, size: side?.height ?? 227, seed: options.seed), "built in, he_normal, seeded")
        }
        let url = URL(fileURLWithPath: model)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw PipelineError(model, "no such file (train takes a Keras model file, a model.to_json() file, or \(BuiltInModels.names.joined(separator: ", ")))")
        }
        if url.pathExtension.lowercased() == "json" {
            let text: String
            do { text = try String(contentsOf: url, encoding: .utf8) } catch {
                throw PipelineError(model, "cannot be read (\(error.localizedDescription))")
            }
            let graph = try KerasGraphReader.graph(fromJSON: text)
            let initializers = graph.kernelInitializerNames.compactMapValues { Initializer(kerasName: $0) }
            try graph.initializeWeights(seed: options.seed, kernelInitializers: initializers)
            return (graph, "a config: Keras initializers, seeded")
        }
        let loaded = try Model.load(from: url)
        guard loaded.architecture == nil else {
            throw PipelineError(model, "holds weights without a model config; train needs a full model (model.save(...) .h5 or .keras, or model.to_json())")
        }
        return (loaded.graph, "continuing from its weights")
    }
}
