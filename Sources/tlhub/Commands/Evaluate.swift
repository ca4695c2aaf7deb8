import ArgumentParser
import Foundation
import TLPipeline

struct Evaluate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Score a classifier on a labelled folder: accuracy, loss, per-class precision/recall/F1, confusion matrix.",
        discussion: """
        --data has one subfolder per class (the model's class names, from a fine-tuned model's
        classes.json or --class-index). Unreadable images are listed and skipped.

        Examples:
          tlhub evaluate --model hotdog/ --data photos/test
          tlhub evaluate --model hotdog/ --data photos/test --json --misclassified
          tlhub evaluate --model hotdog/ --data photos/test -o confusion.png
        """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Labelled images: one subfolder per class.", transform: URL.init(fileURLWithPath:))
    var data: URL

    @Option(help: "Images per forward pass.")
    var batch = 32

    @Option(help: "Image size HxW or S (default: the model's).")
    var size: String?

    @Flag(help: "Print one JSON object (accuracy, loss, per_class, confusion_matrix, classes).")
    var json = false

    @Flag(help: "List the misclassified files with their scores.")
    var misclassified = false

    @Option(name: [.short, .customLong("output")], help: "Also draw the confusion matrix to this PNG.",
            transform: URL.init(fileURLWithPath:))
    var output: URL?

    func run() async throws {
        let loaded = try await modelOptions.load()
        guard loaded.model.hasClassifier else {
            throw InputError("\(modelOptions.model) has no classifier: evaluate needs class scores")
        }
        let hub = try modelOptions.cache.makeHub()
        guard let classes = try await loaded.classNames(hub: hub) else {
            throw InputError("\(modelOptions.model): no class names (fine-tune it, or use a model whose hub entry names its classes)")
        }
        let images = try LabeledImages.load(data, classNames: classes)
        let inference = BatchInference(inputs: .images(images.files.map(\.path)), batchSize: batch, size: size, skipsUnreadable: true)
        let result = try BatchRun(command: "evaluate", inference: inference).run(loaded) { try loaded.model.predict(input: $0) }
        let labelOf = Dictionary(zip(images.files.map(\.path), images.labels), uniquingKeysWith: { first, _ in first })
        let report = ClassificationReport(scores: result.output, labels: result.files.map { labelOf[$0.path] ?? 0 }, classes: classes)
        if let output { try ConfusionPlot.write(report, to: output) }
        if json {
            print(report.json(files: misclassified ? result.files : nil))
        } else {
            print(report.table())
            if misclassified {
                for item in report.misclassified(files: result.files) { print(item) }
            }
        }
    }
}
