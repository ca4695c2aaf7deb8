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
          tlhub finetune --resume out/ --epochs 30                  # an interrupted run, on from its last backup, longer
          tlhub finetune --model vgg16 --size 256 --data flowers/train --head flatten,dense1024-relu,dropout0.5,dense1024-relu,dense17 \\
                         --trainable-from block2_conv2 --augment flip,zoom=0.3,shift=0.3,rotate=30 --preprocess unit \\
                         --optimizer sgd --lr 1e-4 --momentum 0.9 -o flowers/
        """)

    @OptionGroup var modelOptions: ModelOptions

    @OptionGroup var training: TrainingArguments

    @Option(help: "The head, e.g. dense2, gap,dense256-relu,dropout0.2,dense5, flatten,dense1024-relu,dense2, dense1-sigmoid.")
    var head: String

    @Option(help: ArgumentHelp("Only compute this share of the base features into the cache (K/N or auto, as for features) and stop; a later run without --shard trains on them.",
                               valueName: "K/N|auto"))
    var shard: String?

    @Option(help: "Also train the last N layers of the base (Keras layer order, weightless layers counted).")
    var unfreeze: Int = 0

    @Option(help: "Also train this base layer and every layer after it.")
    var trainableFrom: String?

    @Flag(help: "Run the base's BatchNormalization on batch statistics while training (default: moving statistics, as base(x, training=False)).")
    var bnTrain = false

    func validate() throws {
        guard unfreeze >= 0 else { throw ValidationError("--unfreeze must be 0 or more layers") }
        guard unfreeze == 0 || trainableFrom == nil else { throw ValidationError("give --unfreeze or --trainable-from, not both") }
        if bnTrain && unfreeze == 0 && trainableFrom == nil {
            throw ValidationError("--bn-train needs --unfreeze or --trainable-from (a frozen base has no BatchNormalization to train)")
        }
        _ = try Head(parsing: head)
    }

    func run() async throws {
        Interruption.removeTemporariesOnSignal()
        var job = FineTuning(base: modelOptions.model, data: training.data, head: head, output: training.output)
        job.architecture = modelOptions.arch
        try training.configure(&job)
        job.featureBatchSize = training.batch
        job.featureShard = try shard.map { try Shard.parse($0) }
        job.unfreeze = unfreeze
        job.trainableFrom = trainableFrom
        job.batchNormTraining = bnTrain
        let (bar, onEpoch) = training.progress()
        let result = try await job.run(hub: try modelOptions.cache.makeHub(), note: { printNote($0) },
                                       featureProgress: { bar.update(done: $0, total: $1, failed: 0) }, onEpoch: onEpoch)
        bar.finish()
        if job.featureShard != nil { return }
        let stats = result.featureStatistics
        FileHandle.standardError.write(Data(String(
            format: "finetune: %d train / %d validation images, %d classes; features %.1f s (%d cached, %d computed), training %.2f s → %@\n",
            result.trainCount, result.validationCount, result.classes.count, result.featureSeconds, stats.hits, stats.computed,
            result.trainingSeconds, result.output.path).utf8))
        training.printProfile(job.options)
    }
}
