import Foundation
import TLEngine
import TLTensor
import TLTraining

/// When a `train` or `finetune` run backs itself up, and whether it continues an interrupted one.
public struct BackupSettings: Sendable {
    /// Back up after every this many finished epochs; 0 never; nil (the default) after the first
    /// epoch that ends a minute or more after the last backup (or the start), so a long run loses
    /// at most about a minute and a run of short epochs does not write its weights every epoch.
    public var everyEpochs: Int?
    /// The output folder of an interrupted run to continue from its backup.
    public var resume: URL?
    /// The command line the backup records, so `--resume DIR` alone repeats the run.
    public var arguments: [String] = []

    public init(everyEpochs: Int? = nil, resume: URL? = nil, arguments: [String] = []) {
        self.everyEpochs = everyEpochs
        self.resume = resume
        self.arguments = arguments
    }

    /// The seconds after which a default backup is due.
    static let interval: TimeInterval = 60

    /// Whether a backup is due after `epochsDone` epochs, `elapsed` seconds after the last one.
    func isDue(epochsDone: Int, elapsed: TimeInterval) -> Bool {
        guard let everyEpochs else { return elapsed >= Self.interval }
        return everyEpochs > 0 && epochsDone % everyEpochs == 0
    }
}

/// The backup of an unfinished run, `OUTPUT/backup.safetensors`, as Keras' `BackupAndRestore`
/// keeps one: every weight of the graph being trained as `<layer>/<weight>` (moving statistics
/// included), the
/// optimizer's slots, early stopping's best weights, and in the metadata the epochs done, the
/// history, the row order, the generator's state and the command line. Written atomically after
/// a finished epoch; it goes when the finished run's folder replaces the output folder.
public enum TrainingBackup {
    /// The backup's name inside the output folder.
    public static let fileName = "backup.safetensors"

    /// Where `folder`'s backup is.
    public static func url(in folder: URL) -> URL { folder.appendingPathComponent(fileName) }

    /// The command line recorded in `folder`'s backup (subcommand first, without `--resume`).
    /// - Throws: ``PipelineError`` when there is no backup or it is not one.
    public static func arguments(in folder: URL) throws -> [String] {
        let (file, _) = try open(folder)
        guard let text = file.metadata["arguments"], let arguments = try? JSONDecoder().decode([String].self, from: Data(text.utf8)),
              !arguments.isEmpty else {
            throw PipelineError(url(in: folder).path, "the backup records no command line")
        }
        return arguments
    }

    /// The progress and settings in the metadata.
    private struct State: Codable {
        var epochsDone: Int
        var history: [EpochRecord]
        var order: [Int]
        var randomState: String
        var epochsSinceBest: Int
        var bestValue: Float?
        var optimizer: String
        var iterations: Int
    }

    /// Writes `progress` with `trainer`'s weights and optimizer state into `folder` (created when
    /// missing), replacing its previous backup in one rename.
    static func write(_ progress: FitProgress, trainer: Trainer, arguments: [String], to folder: URL) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let optimizer = trainer.optimizer.state(of: trainer.model.parameters)
        // The weights as `<layer>/<weight>`, so the file is a weight source `Graph.loadWeights` reads.
        var tensors: [(name: String, values: [Float], shape: [Int])] = WeightDictionary(graph: trainer.model.graph).entries.flatMap { entry in
            entry.weights.map { ("\(entry.layer)/\($0.name)", $0.tensor.scalars, $0.tensor.shape) }
        }
        for (name, values) in optimizer.slots.sorted(by: { $0.key < $1.key }) {
            tensors.append(("optimizer/\(name)", values, [values.count]))
        }
        if let best = progress.best {
            for (parameter, tensor) in zip(trainer.model.parameters, best.weights) {
                tensors.append(("best/\(parameter.path)", tensor.scalars, tensor.shape))
            }
        }
        let state = State(epochsDone: progress.epochsDone, history: progress.history, order: progress.order,
                          randomState: String(progress.randomState), epochsSinceBest: progress.epochsSinceBest,
                          bestValue: progress.best?.value, optimizer: String(describing: type(of: trainer.optimizer)),
                          iterations: optimizer.iterations)
        let metadata = ["format": "tlhub-backup",
                        "state": String(decoding: try JSONEncoder().encode(state), as: UTF8.self),
                        "arguments": String(decoding: try JSONEncoder().encode(arguments), as: UTF8.self)]
        try SafeTensorsWriter.write(to: url(in: folder), metadata: metadata,
                                    specs: tensors.map { SafeTensorsWriter.Spec(name: $0.name, shape: $0.shape) }) { index, sink in
            try tensors[index].values.withUnsafeBufferPointer { try sink($0) }
        }
    }

    /// Puts `folder`'s backed-up weights and optimizer state into `trainer` and returns where
    /// the run stood.
    /// - Throws: ``PipelineError`` naming the backup and what does not fit this run (a weight of
    ///   another shape, another optimizer, a missing tensor).
    static func restore(from folder: URL, into trainer: Trainer) throws -> FitProgress {
        let (file, state) = try open(folder)
        let path = file.url.path
        func fail(_ problem: String) -> PipelineError { PipelineError(path, problem) }
        let optimizerName = String(describing: type(of: trainer.optimizer))
        guard state.optimizer == optimizerName else {
            throw fail("the run was backed up with \(state.optimizer), this one uses \(optimizerName)")
        }
        do {
            // Strict for every weight the graph expects; the optimizer's and best-weight entries are extra.
            try trainer.model.graph.loadWeights(from: file, allowUnused: true)
        } catch let error as EngineError {
            throw fail("\(error.localizedDescription) (was it made by another model?)")
        }
        var slots: [String: [Float]] = [:]
        for entry in file.entries where entry.name.hasPrefix("optimizer/") {
            slots[String(entry.name.dropFirst("optimizer/".count))] = file.tensor(entry).scalars
        }
        do {
            try trainer.optimizer.restore(OptimizerState(iterations: state.iterations, slots: slots), of: trainer.model.parameters)
        } catch let error as TrainingError {
            throw fail(error.description)
        }
        var best: FitProgress.Best?
        if let value = state.bestValue {
            let weights = try trainer.model.parameters.map { parameter -> Tensor in
                guard let entry = file.entry(named: "best/\(parameter.path)") else { throw fail("no best/\(parameter.path)") }
                return file.tensor(entry)
            }
            best = FitProgress.Best(value: value, weights: weights)
        }
        guard let randomState = UInt64(state.randomState) else { throw fail("the generator state '\(state.randomState)' is not a number") }
        return FitProgress(epochsDone: state.epochsDone, history: state.history, order: state.order, randomState: randomState,
                           best: best, epochsSinceBest: state.epochsSinceBest)
    }

    private static func open(_ folder: URL) throws -> (SafeTensorsFile, State) {
        let url = url(in: folder)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw PipelineError(folder.path, "no \(fileName) to resume from (the run there finished, or stopped before its first backup)")
        }
        let file = try SafeTensorsFile(contentsOf: url)
        guard file.metadata["format"] == "tlhub-backup", let text = file.metadata["state"],
              let state = try? JSONDecoder().decode(State.self, from: Data(text.utf8)) else {
            throw PipelineError(url.path, "not a tlhub training backup")
        }
        return (file, state)
    }

    /// The `backup` callback of `Trainer.fit` for a run writing into `output` under `settings`.
    static func writer(_ settings: BackupSettings, trainer: Trainer, output: URL) -> (FitProgress) throws -> Void {
        var last = Date()
        return { progress in
            guard settings.isDue(epochsDone: progress.epochsDone, elapsed: Date().timeIntervalSince(last)) else { return }
            try write(progress, trainer: trainer, arguments: settings.arguments, to: output)
            last = Date()
        }
    }

    /// Restores `settings.resume`'s backup into `trainer` when there is one to resume.
    static func resume(_ settings: BackupSettings, into trainer: Trainer, epochs: Int, note: ((String) -> Void)?) throws -> FitProgress? {
        guard let folder = settings.resume else { return nil }
        let progress = try restore(from: folder, into: trainer)
        note?("resuming \(folder.path) after epoch \(progress.epochsDone) of \(epochs)")
        return progress
    }
}
