import ArgumentParser
import Foundation
import TLImaging
import TLPipeline
import TLTraining

struct Train: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a whole network on labelled image folders: a Keras model file, a model.to_json() config, or alexnet.",
        discussion: """
        --model is a full Keras model (.h5 written by model.save, or .keras: training continues from
        its weights), a model.to_json() file (weights start from its Keras initializers, seeded by
        --seed), or alexnet (built for the classes in --data, he_normal kernels). Layers the file
        saved as trainable=False stay frozen; --freeze and --trainable-from freeze more. A frozen
        part before every trainable layer runs on the fused inference path, cached per image when
        there is no augmentation. BatchNormalization trains on batch statistics as in Keras fit
        (frozen ones on their moving statistics; tf.keras 2 files keep a nested training=False).

        Images are resized to the model's input size (--size for a fully convolutional model) and
        fed as pixel values 0–255 unless --preprocess says otherwise. The output folder holds
        model.h5 (open it with keras.models.load_model), classes.json, history.csv, curves.png and
        logs/; `tlhub predict`, `evaluate` and `features` take the folder as --model.

        Examples:
          tlhub train --model alexnet --size 227 --data train/ --val validation/ \\
                      --augment rotate=10,shift=0.1,shear=0.1,zoom=0.1 --preprocess unit --optimizer adam --lr 0.001 --epochs 100 -o alexnet/
          tlhub train --model my_model.h5 --data train/ --epochs 1 --no-shuffle --optimizer sgd --lr 0.05 --momentum 0.9 -o continued/
          tlhub train --model model.json --data train/ --val-split 0.2 --seed 3 -o fresh/
          tlhub train --resume alexnet/              # after Ctrl-C or preemption: on from the last backup
        """)

    @Option(help: ArgumentHelp("A Keras model file (.h5, .keras), a model.to_json() .json file, or alexnet.", valueName: "model"))
    var model: String

    @OptionGroup var training: TrainingArguments

    @Option(help: ArgumentHelp("Layers to keep as they are (comma-separated names).", valueName: "LAYER,…"))
    var freeze: String?

    @Option(help: "Train only this layer and every layer after it (Keras layer order).")
    var trainableFrom: String?

    @OptionGroup var cache: CacheOptions

    func run() async throws {
        Interruption.removeTemporariesOnSignal()
        var job = Training(model: model, data: training.data, output: training.output)
        try training.configure(&job)
        job.freeze = freeze.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } } ?? []
        job.trainableFrom = trainableFrom
        let (bar, onEpoch) = training.progress()
        let result = try await job.run(hub: try cache.makeHub(), note: { printNote($0) },
                                       progress: { bar.update(done: $0, total: $1, failed: 0) }, onEpoch: onEpoch)
        bar.finish()
        FileHandle.standardError.write(Data(String(
            format: "train: %d train / %d validation images, %d classes; images %.1f s, training %.2f s → %@\n",
            result.trainCount, result.validationCount, result.classes.count, result.featureSeconds,
            result.trainingSeconds, result.output.path).utf8))
        training.printProfile(job.options)
    }
}
