import Foundation
import TLEngine
import TLTensor

/// How `fit` trains (Keras `compile` + `fit` arguments).
public struct TrainingOptions: Sendable {
    public var epochs = 10
    public var batchSize = 32
    public var learningRate: Float = 0.001
    /// `constant`, `step(every: epochs, factor:)` or `cosine` (per epoch, to 0 at the end).
    public var schedule: Schedule = .constant
    /// Shuffle the rows each epoch (from `seed`); false visits them in order, as `fit(shuffle=False)`.
    public var shuffle = true
    public var seed: UInt64 = 0
    /// Per-class loss weights (Keras `class_weight`), or nil.
    public var classWeights: [Float]?
    /// Stop when the monitored value has not improved for `patience` epochs, restoring the best weights.
    public var earlyStopping: EarlyStopping?
    /// When set, per-layer forward/backward times, the loss, the optimizer and waiting for input
    /// batches are summed into it.
    public var profile: TrainingProfile?

    public init() {}

    /// A learning-rate schedule over epochs.
    public enum Schedule: Sendable, Equatable {
        case constant
        case step(every: Int, factor: Float)
        case cosine

        /// The rate for 0-based `epoch` of `epochs`.
        public func rate(_ base: Float, epoch: Int, epochs: Int) -> Float {
            switch self {
            case .constant: return base
            case let .step(every, factor): return base * pow(factor, Float(epoch / max(every, 1)))
            case .cosine: return base * 0.5 * (1 + cos(Float.pi * Float(epoch) / Float(max(epochs, 1))))
            }
        }
    }

    /// Keras `EarlyStopping(monitor, patience, restore_best_weights=True)`.
    public struct EarlyStopping: Sendable, Equatable {
        public var monitor: Monitor
        public var patience: Int
        public init(monitor: Monitor, patience: Int) { self.monitor = monitor; self.patience = patience }
        public enum Monitor: String, Sendable { case validationLoss = "val_loss", validationAccuracy = "val_accuracy" }
    }
}

/// One epoch as Keras' history records it.
public struct EpochRecord: Sendable, Equatable, Codable {
    public var epoch: Int
    public var loss: Float
    public var accuracy: Float
    public var validationLoss: Float?
    public var validationAccuracy: Float?
    public var learningRate: Float
    public var seconds: Double

    /// `Epoch 3/10 - 0.4s - loss: 0.1234 - accuracy: 0.9500 - val_loss: 0.2100 - val_accuracy: 0.9300`.
    public func line(of epochs: Int) -> String {
        var text = String(format: "Epoch %d/%d - %.1fs - loss: %.4f - accuracy: %.4f", epoch, epochs, seconds, loss, accuracy)
        if let validationLoss, let validationAccuracy {
            text += String(format: " - val_loss: %.4f - val_accuracy: %.4f", validationLoss, validationAccuracy)
        }
        return text
    }
}

/// Where `fit` stands after a finished epoch. With the model's weights and the optimizer's state
/// it is all a run needs to go on exactly as if it had not stopped (`--resume`).
public struct FitProgress: Sendable {
    /// Epochs finished.
    public var epochsDone: Int
    public var history: [EpochRecord]
    /// The row order the last epoch used (each epoch shuffles the previous order).
    public var order: [Int]
    /// The state of the generator that shuffles and drops out.
    public var randomState: UInt64
    /// Early stopping's best monitored value so far and the weights it had (parameter order).
    public var best: Best?
    public var epochsSinceBest: Int

    public struct Best: Sendable {
        public var value: Float
        public var weights: [Tensor]
        public init(value: Float, weights: [Tensor]) { self.value = value; self.weights = weights }
    }

    public init(epochsDone: Int, history: [EpochRecord], order: [Int], randomState: UInt64, best: Best?, epochsSinceBest: Int) {
        (self.epochsDone, self.history, self.order, self.randomState) = (epochsDone, history, order, randomState)
        (self.best, self.epochsSinceBest) = (best, epochsSinceBest)
    }
}

/// Trains a ``TrainingGraph`` on in-memory inputs (for `finetune`, the cached base features) as
/// Keras `fit` does: batches in order or shuffled, the partial last batch used, one optimizer
/// step per batch, epoch loss as the sample-weighted mean of batch losses.
public final class Trainer {
    public let model: TrainingGraph
    public let loss: Loss
    public let optimizer: Optimizer

    public init(model: TrainingGraph, loss: Loss, optimizer: Optimizer) {
        self.model = model
        self.loss = loss
        self.optimizer = optimizer
    }

    /// One optimizer step on a batch; returns its loss and correct count.
    public func step(_ x: Tensor, _ y: Tensor, learningRate: Float, sampleWeights: [Float]?,
                     random: inout SeededRandom) throws -> (loss: Float, correct: Int) {
        try step([x], y, learningRate: learningRate, sampleWeights: sampleWeights, random: &random)
    }

    /// One optimizer step on a batch of a multi-input model (one tensor per model input).
    public func step(_ x: [Tensor], _ y: Tensor, learningRate: Float, sampleWeights: [Float]?,
                     random: inout SeededRandom) throws -> (loss: Float, correct: Int) {
        let pass = try model.forward(x, mode: .training, random: &random)
        let result = loss.evaluate(output: pass.output, logits: model.logits(pass), labels: y, sampleWeights: sampleWeights)
        model.zeroGradients()
        try model.backward(pass, outputGradient: result.gradient, isPreActivation: result.isPreActivation)
        model.profile.measure("(optimizer)") { optimizer.step(model.trainableParameters, learningRate: learningRate) }
        return (result.loss, loss.correctCount(output: pass.output, labels: y))
    }

    /// The loss and accuracy over `x` in inference mode, in batches.
    public func evaluate(_ x: Tensor, _ y: Tensor, batchSize: Int) throws -> (loss: Float, accuracy: Float) {
        try evaluate([x], y, batchSize: batchSize)
    }

    /// The loss and accuracy of a multi-input model in inference mode, in batches.
    public func evaluate(_ x: [Tensor], _ y: Tensor, batchSize: Int) throws -> (loss: Float, accuracy: Float) {
        try evaluate(source: InMemoryBatches(x), y, batchSize: batchSize)
    }

    /// The loss and accuracy over a batch source in inference mode (its evaluation batches:
    /// no augmentation).
    public func evaluate(source: any BatchSource, _ y: Tensor, batchSize: Int) throws -> (loss: Float, accuracy: Float) {
        var random = SeededRandom(seed: 0)
        let count = y.shape[0]
        var totalLoss: Float = 0, correct = 0
        for start in stride(from: 0, to: count, by: batchSize) {
            let rows = Array(start..<min(count, start + batchSize))
            let (bx, by) = (try source.finish(try source.batch(rows: rows, seed: nil)), Self.rows(y, rows))
            let pass = try model.forward(bx, mode: .inference, random: &random)
            let result = loss.evaluate(output: pass.output, logits: model.logits(pass), labels: by, sampleWeights: nil)
            totalLoss += result.loss * Float(rows.count)
            correct += loss.correctCount(output: pass.output, labels: by)
        }
        return (totalLoss / Float(max(count, 1)), Float(correct) / Float(max(count, 1)))
    }

    /// Trains for `options.epochs`, calling `onEpoch` after each and `onBatch(done, total)` within.
    /// - Returns: the history; with early stopping, the best weights are restored at the end.
    public func fit(x: Tensor, y: Tensor, validation: (x: Tensor, y: Tensor)? = nil, options: TrainingOptions,
                    onBatch: ((Int, Int) -> Void)? = nil, onEpoch: ((EpochRecord) -> Void)? = nil) throws -> [EpochRecord] {
        try fit(x: [x], y: y, validation: validation.map { ([$0.x], $0.y) }, options: options, onBatch: onBatch, onEpoch: onEpoch)
    }

    /// `fit` for a multi-input model: one tensor per model input, rows aligned with `y`.
    public func fit(x: [Tensor], y: Tensor, validation: (x: [Tensor], y: Tensor)? = nil, options: TrainingOptions,
                    onBatch: ((Int, Int) -> Void)? = nil, onEpoch: ((EpochRecord) -> Void)? = nil) throws -> [EpochRecord] {
        try fit(source: InMemoryBatches(x), y: y, validation: validation.map { (InMemoryBatches($0.x), $0.y) },
                options: options, onBatch: onBatch, onEpoch: onEpoch)
    }

    /// `fit` on batches made on demand (decoded, augmented images): the next batch is made on
    /// another thread while the current one trains.
    /// - Parameters:
    ///   - resuming: where an interrupted run stood; its weights and optimizer state must already
    ///     be back in the model and the optimizer. The epochs it finished are not run again.
    ///   - backup: called after each finished epoch that is not the last, with what a resumed run
    ///     needs besides weights and optimizer state.
    /// - Throws: ``TrainingError`` when `resuming` was made on a different number of images.
    public func fit(source: any BatchSource, y: Tensor, validation: (source: any BatchSource, y: Tensor)? = nil,
                    options: TrainingOptions, onBatch: ((Int, Int) -> Void)? = nil,
                    onEpoch: ((EpochRecord) -> Void)? = nil, resuming: FitProgress? = nil,
                    backup: ((FitProgress) throws -> Void)? = nil) throws -> [EpochRecord] {
        let count = y.shape[0]
        var order = resuming?.order ?? Array(0..<count)
        guard order.count == count else {
            throw TrainingError("--resume", "the backup was made on \(order.count) training images, there are \(count) now")
        }
        var random = SeededRandom(seed: resuming?.randomState ?? options.seed)
        var history: [EpochRecord] = resuming?.history ?? []
        var best = resuming?.best
        var sinceBest = resuming?.epochsSinceBest ?? 0
        model.profile = options.profile
        defer { model.profile = nil }
        let labels = (0..<count).map { row -> Int in
            let width = y.count / max(count, 1)
            return (0..<width).max { y.scalars[row * width + $0] < y.scalars[row * width + $1] } ?? 0
        }
        for epoch in (resuming?.epochsDone ?? 0)..<max(options.epochs, resuming?.epochsDone ?? 0) {
            let started = Date()
            if options.shuffle { order.shuffle(using: &random) }
            let rate = options.schedule.rate(options.learningRate, epoch: epoch, epochs: options.epochs)
            var lossSum: Float = 0, correct = 0
            let batches = stride(from: 0, to: count, by: options.batchSize).map { Array(order[$0..<min(count, $0 + options.batchSize)]) }
            let prefetch = Prefetch(source: source, batches: batches, seed: options.seed &+ UInt64(epoch) &* 1_000_003)
            for (index, rows) in batches.enumerated() {
                let start = index * options.batchSize
                let weights = options.classWeights.map { classWeights in rows.map { classWeights[labels[$0]] } }
                let batch = try options.profile.measure("(waiting for input)") { try prefetch.batch(index) }
                let result = try step(batch, Self.rows(y, rows), learningRate: rate, sampleWeights: weights, random: &random)
                lossSum += result.loss * Float(rows.count)
                correct += result.correct
                onBatch?(min(count, start + options.batchSize), count)
            }
            var record = EpochRecord(epoch: epoch + 1, loss: lossSum / Float(count), accuracy: Float(correct) / Float(count),
                                     learningRate: rate, seconds: 0)
            if let validation {
                let (valueLoss, valueAccuracy) = try options.profile.measure("(validation)") {
                    try evaluate(source: validation.source, validation.y, batchSize: options.batchSize)
                }
                record.validationLoss = valueLoss
                record.validationAccuracy = valueAccuracy
            }
            record.seconds = Date().timeIntervalSince(started)
            history.append(record)
            onEpoch?(record)
            if let stopping = options.earlyStopping, let value = stopping.monitor == .validationLoss
                ? record.validationLoss : record.validationAccuracy.map({ -$0 }) {
                if best == nil || value < best!.value {
                    best = FitProgress.Best(value: value, weights: model.parameters.map(\.value))
                    sinceBest = 0
                } else {
                    sinceBest += 1
                    if sinceBest > stopping.patience { break }
                }
            }
            if let backup, epoch + 1 < options.epochs {
                try backup(FitProgress(epochsDone: epoch + 1, history: history, order: order, randomState: random.state,
                                       best: best, epochsSinceBest: sinceBest))
            }
        }
        if let best {
            for (parameter, value) in zip(model.parameters, best.weights) { parameter.value = value }
        }
        return history
    }

    /// The given rows of `tensor` (batch first).
    static func rows(_ tensor: Tensor, _ rows: [Int]) -> Tensor {
        let width = tensor.count / max(tensor.shape[0], 1)
        var scalars = [Float]()
        scalars.reserveCapacity(rows.count * width)
        for row in rows { scalars.append(contentsOf: tensor.scalars[(row * width)..<((row + 1) * width)]) }
        return Tensor(shape: [rows.count] + tensor.shape.dropFirst(), scalars: scalars)
    }
}

/// Where training batches come from: rows of in-memory tensors, or images decoded (and
/// augmented) on demand.
public protocol BatchSource: Sendable {
    /// The model inputs for `rows`; `seed` drives augmentation (nil: none, for evaluation).
    /// May run on another thread than the training step, so it must not use the engine's threads.
    func batch(rows: [Int], seed: UInt64?) throws -> [Tensor]
    /// A second stage on the training thread (a frozen prefix on the engine); identity by default.
    func finish(_ batch: [Tensor]) throws -> [Tensor]
}

extension BatchSource {
    public func finish(_ batch: [Tensor]) throws -> [Tensor] { batch }
}

/// Rows of tensors held in memory (cached features).
public struct InMemoryBatches: BatchSource {
    public let tensors: [Tensor]
    public init(_ tensors: [Tensor]) { self.tensors = tensors }
    public func batch(rows: [Int], seed: UInt64?) throws -> [Tensor] { tensors.map { Trainer.rows($0, rows) } }
}

/// Makes batch `k + 1` on another thread while batch `k` trains (in-memory sources inline).
/// Each batch's augmentation seed depends only on the epoch's seed and its position, so the
/// thread timing never changes the numbers.
final class Prefetch: @unchecked Sendable {
    private let source: any BatchSource
    private let batches: [[Int]]
    private let seed: UInt64
    private var pending: (index: Int, group: DispatchGroup, result: Result<[Tensor], Error>?)?
    private let lock = NSLock()

    init(source: any BatchSource, batches: [[Int]], seed: UInt64) {
        self.source = source
        self.batches = batches
        self.seed = seed
    }

    private func make(_ index: Int) -> Result<[Tensor], Error> {
        Result { try source.batch(rows: batches[index], seed: seed &+ UInt64(index) &* 7919) }
    }

    func batch(_ index: Int) throws -> [Tensor] {
        try source.finish(try made(index))
    }

    private func made(_ index: Int) throws -> [Tensor] {
        if source is InMemoryBatches { return try make(index).get() }
        let result: Result<[Tensor], Error>
        if let pending, pending.index == index {
            pending.group.wait()
            result = lock.withLock { self.pending?.result } ?? make(index)
        } else {
            result = make(index)
        }
        if index + 1 < batches.count {
            let group = DispatchGroup()
            lock.withLock { pending = (index + 1, group, nil) }
            DispatchQueue.global().async(group: group) {
                let next = self.make(index + 1)
                self.lock.withLock { self.pending?.result = next }
            }
        }
        return try result.get()
    }
}
