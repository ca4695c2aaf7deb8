import ArgumentParser
import Foundation
import TLImaging
import TLPipeline
import TLTraining

/// The options `finetune` and `train` share: data, optimizer, schedule, input pipeline, output.
struct TrainingArguments: ParsableArguments {
    @Option(help: "Training images: one subfolder per class.", transform: URL.init(fileURLWithPath:))
    var data: URL

    @Option(help: "Validation images with the same class subfolders.", transform: URL.init(fileURLWithPath:))
    var val: URL?

    @Option(help: "Without --val: the fraction of each class held out for validation (stable per file path).")
    var valSplit: Double = 0

    @Option(help: "adam (Keras defaults) or sgd (with --momentum, --nesterov).")
    var optimizer = "adam"

    @Option(help: "Learning rate.")
    var lr: Float = 0.001

    @Option(help: "SGD momentum.")
    var momentum: Float = 0

    @Flag(help: "SGD with Nesterov momentum.")
    var nesterov = false

    @Option(help: "Images per training step.")
    var batch = 32

    @Option(help: "Passes over the training images.")
    var epochs = 10

    @Option(help: "Learning-rate schedule: constant, step:EPOCHS:FACTOR or cosine.")
    var schedule = "constant"

    @Option(help: "Stop when val_loss or val_accuracy stops improving, restoring the best weights: METRIC[:PATIENCE].")
    var earlyStopping: String?

    @Option(help: "Class weights: balanced (n / (classes · count)) for imbalanced folders.")
    var classWeight: String?

    @Option(help: "Label smoothing of the categorical cross-entropy.")
    var labelSmoothing: Float = 0

    @Option(help: "Seed of new weights, dropout, shuffling and augmentation.")
    var seed: UInt64 = 0

    @Flag(help: "Visit images in flow_from_directory order every epoch (to compare with Keras fit(shuffle=False)).")
    var noShuffle = false

    @Option(help: "Image size HxW or S (default: the model's or the base's published size).")
    var size: String?

    @Option(help: "Resize filter as in Keras load_img (default nearest).")
    var interpolation = "nearest"

    @Option(help: "Preprocessing: caffe, tf, torch, none or unit (default: the base's for finetune, none — pixels 0–255 — for train).")
    var preprocess: String?

    @Option(name: [.short, .customLong("output")], help: "Output folder.", transform: URL.init(fileURLWithPath:))
    var output: URL

    @Option(help: "Random transforms of the training images, as ImageDataGenerator: flip, vflip, shift=F, zoom=F, rotate=DEG, shear=DEG, brightness=LO:HI, fill=nearest|constant|reflect|wrap (a frozen part then runs every step).")
    var augment: String?

    @Option(help: "TensorBoard log folder (train/ and validation/ runs, as Keras' TensorBoard callback writes them; default OUTPUT/logs).",
            transform: URL.init(fileURLWithPath:))
    var tensorboard: URL?

    @Option(help: ArgumentHelp("Continue the interrupted run whose output folder is DIR from its backup: its command line is repeated, options given with --resume override it.",
                               valueName: "DIR"), transform: URL.init(fileURLWithPath:))
    var resume: URL?

    @Option(help: ArgumentHelp("Back the run up into OUTPUT/backup.safetensors after every N epochs; 0 never (default: after an epoch once a minute has passed since the last backup).",
                               valueName: "N"))
    var backupEvery: Int?

    @Flag(help: "After training, print seconds per layer (forward, backward), optimizer and input wait, slowest first.")
    var profile = false

    func validate() throws {
        guard ["adam", "sgd"].contains(optimizer) else { throw ValidationError("--optimizer must be adam or sgd") }
        guard batch > 0, epochs > 0, lr > 0 else { throw ValidationError("--batch, --epochs and --lr must be positive") }
        if let backupEvery, backupEvery < 0 { throw ValidationError("--backup-every must be 0 or more epochs") }
        guard valSplit >= 0, valSplit < 1 else { throw ValidationError("--val-split must be in [0, 1)") }
        guard val == nil || valSplit == 0 else { throw ValidationError("give --val or --val-split, not both") }
        if let classWeight, classWeight != "balanced" { throw ValidationError("--class-weight takes balanced") }
        if let augment { _ = try Augmentation(parsing: augment) }
        _ = try parsedSchedule()
        _ = try parsedEarlyStopping()
        _ = try Interpolation(name: interpolation)
    }

    func parsedSchedule() throws -> TrainingOptions.Schedule {
        if schedule == "constant" { return .constant }
        if schedule == "cosine" { return .cosine }
        let parts = schedule.split(separator: ":")
        if parts.count == 3, parts[0] == "step", let every = Int(parts[1]), every > 0, let factor = Float(parts[2]), factor > 0 {
            return .step(every: every, factor: factor)
        }
        throw ValidationError("--schedule must be constant, cosine or step:EPOCHS:FACTOR, got '\(schedule)'")
    }

    func parsedEarlyStopping() throws -> TrainingOptions.EarlyStopping? {
        guard let earlyStopping else { return nil }
        let parts = earlyStopping.split(separator: ":")
        guard let monitor = TrainingOptions.EarlyStopping.Monitor(rawValue: String(parts[0])),
              parts.count <= 2, let patience = parts.count == 2 ? Int(parts[1]) : 3 else {
            throw ValidationError("--early-stopping must be val_loss or val_accuracy, optionally :PATIENCE")
        }
        return .init(monitor: monitor, patience: patience)
    }

    var optimizerChoice: FineTuning.OptimizerChoice { optimizer == "adam" ? .adam : .sgd(momentum: momentum, nesterov: nesterov) }
    /// The parsed `--augment` (checked in `validate()`).
    var augmentation: Augmentation {
        guard let augment, let parsed = try? Augmentation(parsing: augment) else { return Augmentation() }
        return parsed
    }

    /// The Trainer's settings.
    /// Sets what `finetune` and `train` share on `job`.
    func configure<Job: TrainingJobSettings>(_ job: inout Job) throws {
        job.validation = val
        job.validationSplit = valSplit
        job.optimizer = optimizerChoice
        job.labelSmoothing = labelSmoothing
        job.balancedClassWeights = classWeight == "balanced"
        job.options = try trainingOptions()
        job.size = size
        job.interpolation = try Interpolation(name: interpolation)
        job.preprocess = preprocess
        job.augmentation = augmentation
        job.tensorBoard = tensorboard
        job.backup = BackupSettings(everyEpochs: backupEvery, resume: resume, arguments: ResumedRun.recordedArguments)
    }

    func trainingOptions() throws -> TrainingOptions {
        var options = TrainingOptions()
        options.epochs = epochs
        options.batchSize = batch
        options.learningRate = lr
        options.schedule = try parsedSchedule()
        options.shuffle = !noShuffle
        options.seed = seed
        options.earlyStopping = try parsedEarlyStopping()
        if profile { options.profile = TrainingProfile() }
        if options.earlyStopping != nil && val == nil && valSplit == 0 {
            throw InputError("--early-stopping needs validation images (--val or --val-split)")
        }
        return options
    }

    /// The `--profile` table on stderr, when one was asked for.
    func printProfile(_ options: TrainingOptions) {
        if let profile = options.profile { FileHandle.standardError.write(Data((profile.report() + "\n").utf8)) }
    }

    /// Epoch lines on stdout (Keras' format), the feature/decode pass as a bar on a terminal.
    func progress() -> (bar: ProgressBar, onEpoch: (EpochRecord) -> Void) {
        let bar = ProgressBar()
        let epochs = self.epochs
        return (bar, { record in
            bar.finish()
            FileHandle.standardOutput.write(Data((record.line(of: epochs) + "\n").utf8))
        })
    }
}
