import Foundation
import TLEngine
import TLFormats
import TLHubClient
import TLImaging
import TLTensor
import TLTraining

/// `tlhub finetune` as a library: a new head trained on a frozen base's cached features.
///
/// ```swift
/// var job = FineTuning(base: "mobilenet_v2_100_224", data: photos, head: "dense2", output: out)
/// job.options.epochs = 5
/// let result = try await job.run(hub: hub) { print($0.line(of: 5)) }
/// ```
public struct FineTuning {
    /// The optimizer, as Keras names and configures it.
    public enum OptimizerChoice: Sendable, Equatable {
        case sgd(momentum: Float, nesterov: Bool)
        case adam

        func make() -> Optimizer {
            switch self {
            case let .sgd(momentum, nesterov): return SGD(momentum: momentum, nesterov: nesterov)
            case .adam: return Adam()
            }
        }
    }

    public var base: String
    public var architecture: String?
    public var data: URL
    /// A separate validation folder (same class names), or nil.
    public var validation: URL?
    /// With no validation folder: the fraction of each class split off for validation (0: none).
    public var validationSplit: Double = 0
    public var head: String
    public var output: URL
    public var optimizer: OptimizerChoice = .adam
    public var labelSmoothing: Float = 0
    /// `balanced` class weights (`n / (classes · count)` per class), as scikit-learn computes them.
    public var balancedClassWeights = false
    public var options = TrainingOptions()
    /// Images per base forward pass.
    public var featureBatchSize = 32
    public var size: String?
    public var interpolation: Interpolation = .nearest
    public var preprocess: String?
    /// TensorBoard logs: nil for `OUTPUT/logs`.
    public var tensorBoard: URL?
    /// When the run backs itself up into `output`, and the interrupted run it continues.
    public var backup = BackupSettings()
    /// Only fill the feature cache for this share of the images (training and validation
    /// together, in order) and stop: array tasks compute the features, then one run trains.
    public var featureShard: Shard?
    /// Make the last N layers of the base trainable, in Keras' layer order counting weightless
    /// layers (`for layer in base.layers[:-N]: layer.trainable = False`); 0 trains the head only.
    public var unfreeze = 0
    /// Make this base layer and every one after it trainable (instead of `unfreeze`).
    public var trainableFrom: String?
    /// Run the base's BatchNormalization layers on batch statistics (Keras `base(x)` in `fit`);
    /// by default the base runs in inference mode (`base(x, training=False)`) while its unfrozen
    /// γ/β still learn.
    public var batchNormTraining = false
    /// Random transforms of the training images (`--augment`); the frozen part then runs every
    /// step instead of once per image.
    public var augmentation = Augmentation()

    public init(base: String, data: URL, head: String, output: URL) {
        self.base = base
        self.data = data
        self.head = head
        self.output = output
    }

    /// What a run produced.
    public struct Result {
        public var history: [EpochRecord]
        public var classes: [String]
        public var trainCount: Int
        public var validationCount: Int
        public var featureStatistics: FeatureCache.Statistics
        public var featureSeconds: Double
        public var trainingSeconds: Double
        public var output: URL
    }

    /// Progress of the feature pass: (images done, total).
    public typealias FeatureProgress = (Int, Int) -> Void

    /// Runs the job: list the data (errors before any work), load the base, compute or reuse the
    /// features, train the head, and write `output` atomically (a failed run leaves nothing).
    public func run(hub: Hub, note: ((String) -> Void)? = nil, featureProgress: FeatureProgress? = nil,
                    onEpoch: ((EpochRecord) -> Void)? = nil) async throws -> Result {
        let parsedHead = try Head(parsing: head)
        if featureShard == nil { try FineTuneOutput.checkReplaceable(output) }
        let (train, held) = try LabeledImages.trainingAndValidation(data, validation: validation, split: validationSplit)
        let classCount = train.classNames.count
        if parsedHead.isBinary {
            guard classCount == 2 else {
                throw PipelineError("--head", "'\(head)' has one sigmoid output, for two classes; \(data.path) has \(classCount)")
            }
        } else if parsedHead.outputCount != classCount {
            throw PipelineError("--head", "'\(head)' has \(parsedHead.outputCount) outputs but \(data.path) has \(classCount) classes (\(train.classNames.joined(separator: ", ")))")
        }

        let loaded = try await ModelResolver(hub: hub).load(base, architecture: architecture)
        let baseSHA = try loaded.weightsSHA256()
        let (size, _) = try loaded.imageSize(requested: self.size)
        let preprocessing = try loaded.preprocessing(requested: preprocess)
        // A head that starts by pooling, or a dense head on a spatial map, reads pooled features:
        // cache those (C floats per image, not H·W·C).
        let outputIsSpatial = loaded.model.graph.shapes[loaded.model.graph.outputs[0]].count == 3
        let startsWithReshape: Bool = {
            if case .flatten? = parsedHead.items.first { return true }
            if case .globalMaxPooling? = parsedHead.items.first { return true }
            return false
        }()
        let pooling: FeaturePooling = outputIsSpatial && !startsWithReshape ? .avg : .none
        var headItems = parsedHead.items
        if pooling == .avg, case .globalAveragePooling? = headItems.first { headItems.removeFirst() }
        var headSpec = parsedHead
        headSpec.items = headItems
        let baseGraph = try loaded.model.graph(forImageSize: [size.height, size.width])
        let baseOutput = baseGraph.shapes[baseGraph.outputs[0]]
        let headInputShape = pooling == .none ? baseOutput : [baseOutput.last ?? 0]
        let headGraph = try headSpec.build(inputShape: headInputShape, seed: options.seed)
        let combined = try baseGraph.appending(headGraph, pooling: pooling, name: "finetuned")

        // What trains: the head, and with --unfreeze/--trainable-from the base's last layers. The
        // frozen part before them runs on the fused inference path; without augmentation its
        // output is cached per image.
        let full = try TrainingGraph(graph: combined)
        let order = baseGraph.kerasLayerOrder.map(\.name)
        full.setTrainable(false, layers: Set(order))
        // The base runs as base(x, training=False): BatchNormalization on its moving statistics,
        // Dropout off (--bn-train: its trained layers in training mode).
        full.inferenceModeLayers = Set(order)
        var trainedBaseLayers: [String] = []
        if unfreeze > 0 || trainableFrom != nil {
            let first: Int
            if let trainableFrom {
                guard let index = order.firstIndex(of: trainableFrom) else {
                    throw PipelineError("--trainable-from", "the base has no layer '\(trainableFrom)' (its layers run \(order.dropFirst().prefix(3).joined(separator: ", ")) … \(order.suffix(3).joined(separator: ", ")))")
                }
                first = index
            } else {
                guard unfreeze <= order.count else {
                    throw PipelineError("--unfreeze", "the base has \(order.count) layers (its input counted), fewer than \(unfreeze)")
                }
                first = order.count - unfreeze
            }
            trainedBaseLayers = Array(order[first...])
            full.setTrainable(true, layers: Set(trainedBaseLayers))
            if batchNormTraining { full.inferenceModeLayers.subtract(trainedBaseLayers) }
        }
        let split = try full.splitAtFrozenPrefix()
        let trainingGraph = split.suffix
        let prefix = FrozenPrefixRunner(split.prefix)
        let compute: (Tensor) throws -> Tensor = { try prefix.rows($0) }
        let splitRows: (Tensor) -> [Tensor] = { FrozenPrefixRunner.split($0, shapes: split.cutShapes) }
        var settings = "\(size.height)x\(size.width)|\(interpolation)|\(preprocessing)|\(pooling.rawValue)"
        if !trainedBaseLayers.isEmpty {
            settings += "|cut:\(split.cut.joined(separator: ","))"
            note?("training \(trainedBaseLayers.count) base layers (\(trainedBaseLayers.first ?? "") … \(trainedBaseLayers.last ?? "")) and the head; the frozen part up to \(split.cut.joined(separator: ", ")) runs \(augmentation.isEmpty ? "once per image, cached" : "every step (augmented images)")\(batchNormTraining ? "" : "; the base's BatchNormalization uses its moving statistics (--bn-train for batch statistics)")")
        }
        let cache = FeatureCache(cacheDirectory: hub.cacheDirectory, baseSHA256: baseSHA, settings: settings)
        let loader = ImageLoader(size: size, interpolation: interpolation)
        let featureStart = Date()
        func features(_ set: LabeledImages) throws -> (Tensor, [Int], FeatureCache.Statistics) {
            let result = try cache.features(of: set.files, loader: loader, preprocessing: preprocessing, batchSize: featureBatchSize,
                                            progress: featureProgress, compute: compute)
            return (result.features, result.kept, result.statistics)
        }
        if let featureShard {
            // A cluster array task: this share of the feature pass only, into the shared cache.
            var everything = train
            if let held {
                everything.files += held.files
                everything.labels += held.labels
            }
            let range = featureShard.range(of: everything.files.count)
            everything.files = Array(everything.files[range])
            everything.labels = Array(everything.labels[range])
            let (_, kept, statistics) = try features(everything)
            note?("feature shard \(featureShard): \(kept.count) of \(range.count) images cached (\(statistics.hits) already, \(statistics.computed) computed)")
            return Result(history: [], classes: train.classNames, trainCount: 0, validationCount: 0, featureStatistics: statistics,
                          featureSeconds: Date().timeIntervalSince(featureStart), trainingSeconds: 0, output: output)
        }
        var trainSource: any BatchSource
        var trainKept: [Int]
        var statistics: FeatureCache.Statistics
        if augmentation.isEmpty {
            let (x, kept, trainStatistics) = try features(train)
            (trainSource, trainKept, statistics) = (InMemoryBatches(splitRows(x)), kept, trainStatistics)
        } else {
            // Augmented images change every epoch: the frozen part runs every step on them.
            (trainKept, statistics) = try train.readable(loader: loader, batchSize: featureBatchSize, progress: featureProgress)
            trainSource = ImageBatchSource(files: trainKept.map { train.files[$0] }, loader: loader, preprocessing: preprocessing,
                                           augmentation: augmentation, prefix: prefix)
            note?("augmenting the training images (\(augmentation)): the frozen base runs every step, nothing is cached for them")
        }
        var validationData: (source: any BatchSource, y: Tensor)?
        var validationCount = 0
        if let held {
            let (x, kept, heldStatistics) = try features(held)
            statistics.add(heldStatistics)
            validationData = (InMemoryBatches(splitRows(x)), held.targets(binary: parsedHead.isBinary, rows: kept))
            validationCount = kept.count
        }
        statistics.reportUnreadable(note)
        let featureSeconds = Date().timeIntervalSince(featureStart)
        let trainY = train.targets(binary: parsedHead.isBinary, rows: trainKept)

        let loss: Loss = parsedHead.isBinary ? .binaryCrossEntropy : .categoricalCrossEntropy(labelSmoothing: labelSmoothing)
        var options = self.options
        if balancedClassWeights { options.classWeights = train.balancedClassWeights(rows: trainKept) }
        let trainingStart = Date()
        let trainer = Trainer(model: trainingGraph, loss: loss, optimizer: optimizer.make())
        let resumed = try TrainingBackup.resume(backup, into: trainer, epochs: options.epochs, note: note)
        let history = try trainer.fit(source: trainSource, y: trainY, validation: validationData, options: options, onEpoch: onEpoch,
                                      resuming: resumed, backup: TrainingBackup.writer(backup, trainer: trainer, output: output))
        let trainingSeconds = Date().timeIntervalSince(trainingStart)

        var description = FineTunedDescription(
            baseReference: base, baseFile: loaded.file.path, baseSHA256: baseSHA, basePooling: pooling.rawValue,
            head: headSpec.description, headInputShape: headInputShape, classes: train.classNames,
            preprocess: preprocessing.rawValue, inputSize: [size.height, size.width], interpolation: interpolation.rawValue)
        description.trainedBaseLayers = trainedBaseLayers.isEmpty ? nil : trainedBaseLayers
        // The whole model for Keras: base, pooling and head as one Functional model.
        try FineTuneOutput.write(description: description, head: headGraph, base: baseGraph, history: history, to: output,
                                 tensorBoard: tensorBoard, kerasModel: combined, note: note)
        return Result(history: history, classes: train.classNames, trainCount: trainKept.count, validationCount: validationCount,
                      featureStatistics: statistics, featureSeconds: featureSeconds, trainingSeconds: trainingSeconds, output: output)
    }
}

/// The files of a `finetune` output folder, written into a temporary sibling and renamed into
/// place, so a failed or interrupted run leaves no half-written model.
enum FineTuneOutput {
    /// Throws unless `output` is free or holds what a run may replace: an earlier run's folder, or
    /// an interrupted run's folder with only its backup (temporaries of writers that are gone,
    /// such as a backup half-written when its run was killed, are removed first). Checked before any work as well as at the
    /// end, so a wrong -o does not cost a whole training run.
    static func checkReplaceable(_ output: URL) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: output.path, isDirectory: &isDirectory) else { return }
        // A killed run's half-written backup (its process gone) is not the folder's content.
        if isDirectory.boolValue { AtomicFile.removeStaleTemporaries(in: output) }
        let contents = isDirectory.boolValue ? (try? FileManager.default.contentsOfDirectory(atPath: output.path)) : nil
        if FineTunedDescription.isFineTuned(output) || contents == [TrainingBackup.fileName] { return }
        throw PipelineError(output.path, "exists and is not a tlhub fine-tuned model folder; choose another -o")
    }

    static func write(description: FineTunedDescription, head: Graph, base: Graph, history: [EpochRecord], to output: URL,
                      tensorBoard: URL?, kerasModel: Graph, note: ((String) -> Void)?) throws {
        let manager = FileManager.default
        let staging = output.deletingLastPathComponent()
            .appendingPathComponent(".\(output.lastPathComponent).\(getpid())-\(UInt32.random(in: 0...UInt32.max)).tmp")
        try? manager.removeItem(at: staging)
        do {
            try manager.createDirectory(at: staging, withIntermediateDirectories: true)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(description).write(to: staging.appendingPathComponent("model.json"))
            try encoder.encode(description.classes).write(to: staging.appendingPathComponent("classes.json"))
            let weights = WeightDictionary(graph: head).entries.flatMap { entry in
                entry.weights.map { (name: "\(entry.layer)/\($0.name)", tensor: $0.tensor) }
            }
            let order = WeightDictionary(graph: head).entries.map(\.layer)
            let orderJSON = String(decoding: try JSONEncoder().encode(order), as: UTF8.self)
            if description.modelFile == nil {
                try SafeTensorsWriter.write(weights, metadata: ["format": "tlhub", "layer_order": orderJSON],
                                            to: staging.appendingPathComponent("head.safetensors"))
            }
            if let trained = description.trainedBaseLayers {
                // The unfrozen base layers' new weights (statistics included), applied over the base.
                let names = Set(trained)
                let baseWeights = WeightDictionary(graph: base).entries.filter { names.contains($0.layer) }.flatMap { entry in
                    entry.weights.map { (name: "\(entry.layer)/\($0.name)", tensor: $0.tensor) }
                }
                try SafeTensorsWriter.write(baseWeights, metadata: ["format": "tlhub"],
                                            to: staging.appendingPathComponent(FineTunedDescription.trainedBaseFile))
            }
            var csv = "epoch,loss,accuracy,val_loss,val_accuracy,lr,seconds\n"
            for record in history {
                csv += "\(record.epoch),\(record.loss),\(record.accuracy),\(record.validationLoss.map { "\($0)" } ?? ""),"
                csv += "\(record.validationAccuracy.map { "\($0)" } ?? ""),\(record.learningRate),\(String(format: "%.3f", record.seconds))\n"
            }
            try Data(csv.utf8).write(to: staging.appendingPathComponent("history.csv"))
            // TensorBoard: Keras' layout, inside the folder unless told otherwise.
            let logs = tensorBoard ?? staging.appendingPathComponent("logs")
            let started = Date().timeIntervalSince1970 - history.reduce(0) { $0 + $1.seconds }
            let train = try TensorBoardLog(run: logs.appendingPathComponent("train"), wallTime: started)
            let validation = history.contains { $0.validationLoss != nil }
                ? try TensorBoardLog(run: logs.appendingPathComponent("validation"), wallTime: started) : nil
            var clock = started
            for record in history {
                clock += record.seconds
                let step = record.epoch - 1
                train.scalar("epoch_loss", record.loss, step: step, wallTime: clock)
                train.scalar("epoch_accuracy", record.accuracy, step: step, wallTime: clock)
                train.scalar("epoch_learning_rate", record.learningRate, step: step, wallTime: clock)
                if let validation, let loss = record.validationLoss, let accuracy = record.validationAccuracy {
                    validation.scalar("epoch_loss", loss, step: step, wallTime: clock)
                    validation.scalar("epoch_accuracy", accuracy, step: step, wallTime: clock)
                }
            }
            try train.flush()
            try validation?.flush()
            try CurvesPlot.write(history, to: staging.appendingPathComponent("curves.png"))
            do {
                try KerasModelExport.write(kerasModel, to: staging.appendingPathComponent("model.h5"))
            } catch let error as EngineError {
                // `tlhub train`'s folder is its model.h5; a finetune folder still has base + head.
                if description.modelFile != nil { throw error }
                note?("model.h5 not written: \(error.localizedDescription)")
            }
            // Replace an earlier run's folder only once the new one is complete.
            if manager.fileExists(atPath: output.path) {
                try checkReplaceable(output)
                let old = staging.appendingPathExtension("old")
                try manager.moveItem(at: output, to: old)
                try manager.moveItem(at: staging, to: output)
                try? manager.removeItem(at: old)
            } else {
                try manager.moveItem(at: staging, to: output)
            }
        } catch {
            try? manager.removeItem(at: staging)
            if let problem = error as? any FileProblem { throw problem }
            throw PipelineError(output.path, "cannot write the model folder (\(error.localizedDescription))")
        }
    }
}
