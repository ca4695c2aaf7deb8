import ArgumentParser
import Foundation
import TLImaging
import TLPipeline
import TLTraining

struct Finetune: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a new classifier head on a pretrained base (frozen or partly unfrozen; features cached), and save the fine-tuned model.",
        discussion: """
        --data is a folder with one subfolder of JPEG/PNG images per class, listed as Keras'
        flow_from_directory lists it (classes sorted by name). The base runs once per image; its
        features are cached (keyed by the base weights, the image's contents and the input
        pipeline), so every epoch and every later run with another head or learning rate skips it.
        The output folder holds model.json, head.safetensors, classes.json, history.csv and logs/
        (TensorBoard: `tensorboard --logdir OUTPUT/logs`);
        `tlhub predict`, `features` and `evaluate` take it as --model.

        --head: a comma list of gap, gmp, flatten, denseN[-ACTIVATION], dropoutRATE; the last dense
        layer defaults to softmax (sigmoid for dense1). `dense2` alone pools a spatial base first.

        --unfreeze N trains the last N layers of the base too (Keras layer order, weightless layers
        counted, as `for layer in base.layers[:-N]: layer.trainable = False`); --trainable-from
        LAYER trains that layer and all after it. The frozen part before them still runs once per
        image and is cached. The base runs as `base(x, training=False)`: its BatchNormalization
        layers use their moving statistics while their gamma/beta learn; --bn-train uses batch
        statistics instead (and updates the moving ones, momentum as the layer's config).

        Examples:
          tlhub finetune --model mobilenet_v2_100_224 --data photos/train --val photos/validation --head dense2 -o hotdog/
          tlhub finetune --model resnet50:top --data photos/train --val-split 0.2 --head flatten,dense2 -o out/
          sbatch --array=0-15 --wrap 'tlhub finetune --model mobilenet_v2_100_224 --data photos/train --head dense2 --shard auto/16 -o out/'
          tlhub finetune --model mobilenet_v2_100_224 --data photos/train --head dense2 -o out/     # trains on the cached features
          tlhub finetune --model vgg16 --data flowers --head flatten,dense1024-relu,dropout0.5,dense1024-relu,dense17 \\
                         --optimizer sgd --lr 1e-4 --momentum 0.9 -o flowers/
          tlhub finetune --model mobilenet_v2_100_160 --data digits/train --val digits/validation --head dense2 \\
                         --unfreeze 10 --optimizer sgd --lr 0.001 --momentum 0.9 -o out/
          tlhub finetune --model vgg16 --size 256 --data flowers/train --head flatten,dense1024-relu,dropout0.5,dense1024-relu,dense17 \\
                         --trainable-from block2_conv2 --augment flip,zoom=0.3,shift=0.3,rotate=30 --preprocess unit \\
                         --optimizer sgd --lr 1e-4 --momentum 0.9 -o flowers/
        """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Training images: one subfolder per class.", transform: URL.init(fileURLWithPath:))
    var data: URL

    @Option(help: "Validation images with the same class subfolders.", transform: URL.init(fileURLWithPath:))
    var val: URL?

    @Option(help: "Without --val: the fraction of each class held out for validation (stable per file path).")
    var valSplit: Double = 0

    @Option(help: "The head, e.g. dense2, gap,dense256-relu,dropout0.2,dense5, flatten,dense1024-relu,dense2, dense1-sigmoid.")
    var head: String

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

    @Option(help: "Seed of the head's initial weights, dropout and shuffling.")
    var seed: UInt64 = 0

    @Flag(help: "Visit images in flow_from_directory order every epoch (to compare with Keras fit(shuffle=False)).")
    var noShuffle = false

    @Option(help: "Image size HxW or S (default: the base's published size).")
    var size: String?

    @Option(help: "Resize filter as in Keras load_img (default nearest).")
    var interpolation = "nearest"

    @Option(help: "Preprocessing: caffe, tf, torch, none or unit (default: the base's).")
    var preprocess: String?

    @Option(name: [.short, .customLong("output")], help: "Output folder.", transform: URL.init(fileURLWithPath:))
    var output: URL

    @Option(help: ArgumentHelp("Only compute this share of the base features into the cache (K/N or auto, as for features) and stop; a later run without --shard trains on them.",
                               valueName: "K/N|auto"))
    var shard: String?

    @Option(help: "Also train the last N layers of the base (Keras layer order, weightless layers counted).")
    var unfreeze: Int = 0

    @Option(help: "Also train this base layer and every layer after it.")
    var trainableFrom: String?

    @Option(help: "Random transforms of the training images, as ImageDataGenerator: flip, vflip, shift=F, zoom=F, rotate=DEG, shear=DEG, brightness=LO:HI, fill=nearest|constant|reflect|wrap (the frozen base then runs every step).")
    var augment: String?

    @Flag(help: "Run the base's BatchNormalization on batch statistics while training (default: moving statistics, as base(x, training=False)).")
    var bnTrain = false

    @Option(help: "TensorBoard log folder (train/ and validation/ runs, as Keras' TensorBoard callback writes them; default OUTPUT/logs).",
            transform: URL.init(fileURLWithPath:))
    var tensorboard: URL?

    func validate() throws {
        guard ["adam", "sgd"].contains(optimizer) else { throw ValidationError("--optimizer must be adam or sgd") }
        guard batch > 0, epochs > 0, lr > 0 else { throw ValidationError("--batch, --epochs and --lr must be positive") }
        guard valSplit >= 0, valSplit < 1 else { throw ValidationError("--val-split must be in [0, 1)") }
        guard val == nil || valSplit == 0 else { throw ValidationError("give --val or --val-split, not both") }
        if let augment { _ = try Augmentation(parsing: augment) }
        guard unfreeze >= 0 else { throw ValidationError("--unfreeze must be 0 or more layers") }
        guard unfreeze == 0 || trainableFrom == nil else { throw ValidationError("give --unfreeze or --trainable-from, not both") }
        if bnTrain && unfreeze == 0 && trainableFrom == nil {
            throw ValidationError("--bn-train needs --unfreeze or --trainable-from (a frozen base has no BatchNormalization to train)")
        }
        if let classWeight, classWeight != "balanced" { throw ValidationError("--class-weight takes balanced") }
        _ = try Head(parsing: head)
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

    func run() async throws {
        Interruption.removeTemporariesOnSignal()
        var job = FineTuning(base: modelOptions.model, data: data, head: head, output: output)
        job.architecture = modelOptions.arch
        job.validation = val
        job.validationSplit = valSplit
        job.optimizer = optimizer == "adam" ? .adam : .sgd(momentum: momentum, nesterov: nesterov)
        job.labelSmoothing = labelSmoothing
        job.balancedClassWeights = classWeight == "balanced"
        job.options.epochs = epochs
        job.options.batchSize = batch
        job.options.learningRate = lr
        job.options.schedule = try parsedSchedule()
        job.options.shuffle = !noShuffle
        job.options.seed = seed
        job.options.earlyStopping = try parsedEarlyStopping()
        if job.options.earlyStopping != nil && val == nil && valSplit == 0 {
            throw InputError("--early-stopping needs validation images (--val or --val-split)")
        }
        job.featureBatchSize = batch
        job.size = size
        job.interpolation = try Interpolation(name: interpolation)
        job.preprocess = preprocess
        job.tensorBoard = tensorboard
        job.featureShard = try shard.map { try Shard.parse($0) }
        job.unfreeze = unfreeze
        job.trainableFrom = trainableFrom
        job.batchNormTraining = bnTrain
        if let augment { job.augmentation = try Augmentation(parsing: augment) }
        let bar = ProgressBar()
        let result = try await job.run(hub: try modelOptions.cache.makeHub(), note: { printNote($0) },
                                       featureProgress: { bar.update(done: $0, total: $1, failed: 0) },
                                       onEpoch: { record in
                                           bar.finish()
                                           FileHandle.standardOutput.write(Data((record.line(of: epochs) + "\n").utf8))
                                       })
        bar.finish()
        if job.featureShard != nil { return }
        let stats = result.featureStatistics
        FileHandle.standardError.write(Data(String(
            format: "finetune: %d train / %d validation images, %d classes; features %.1f s (%d cached, %d computed), training %.2f s → %@\n",
            result.trainCount, result.validationCount, result.classes.count, result.featureSeconds, stats.hits, stats.computed,
            result.trainingSeconds, result.output.path).utf8))
    }
}
