import ArgumentParser
import Foundation
import TLPipeline
import TLTensor

/// `tlhub evaluate`: scoring (the default) and `merge` of sharded runs.
struct Evaluate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Score a classifier on a labelled folder: accuracy, loss, per-class precision/recall/F1, confusion matrix.",
        discussion: """
        Examples:
          tlhub evaluate --model hotdog/ --data photos/test
          tlhub evaluate --model hotdog/ --data photos/test --shard auto/8 --parts scores/    # an array task
          tlhub evaluate merge scores/ --model hotdog/ --data photos/test
        """,
        subcommands: [Evaluation.self, Merge.self],
        defaultSubcommand: Evaluation.self)

    /// The report on scores and files, printed as asked.
    struct Reporting: ParsableArguments {
        @Flag(help: "Print one JSON object (accuracy, loss, per_class, confusion_matrix, classes).")
        var json = false

        @Flag(help: "List the misclassified files with their scores.")
        var misclassified = false

        @Option(name: [.short, .customLong("output")], help: "Also draw the confusion matrix to this PNG.",
                transform: URL.init(fileURLWithPath:))
        var output: URL?

        func report(scores: Tensor, files: [URL], images: LabeledImages, classes: [String]) throws {
            let labelOf = Dictionary(zip(images.files.map { $0.resolvingSymlinksInPath().path }, images.labels), uniquingKeysWith: { first, _ in first })
            let labels = try files.map { file -> Int in
                guard let label = labelOf[file.resolvingSymlinksInPath().path] else {
                    throw InputError("\(file.path) is not an image of \(images.root.path)")
                }
                return label
            }
            let report = ClassificationReport(scores: scores, labels: labels, classes: classes)
            if let output { try ConfusionPlot.write(report, to: output) }
            if json {
                print(report.json(files: misclassified ? files : nil))
            } else {
                print(report.table())
                if misclassified { for item in report.misclassified(files: files) { print(item) } }
            }
        }
    }

    struct Merge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Report on the score parts of a sharded evaluate run (all parts must be there).")

        @Argument(help: "The folder the shards wrote to (--parts).", transform: { URL(fileURLWithPath: $0, isDirectory: true) })
        var folder: URL

        @OptionGroup var modelOptions: ModelOptions

        @Option(help: "The labelled folder the shards evaluated.", transform: URL.init(fileURLWithPath:))
        var data: URL

        @OptionGroup var reporting: Reporting

        func run() async throws {
            let loaded = try await modelOptions.load()
            guard let classes = try await loaded.classNames(hub: try modelOptions.cache.makeHub()) else {
                throw InputError("\(modelOptions.model): no class names")
            }
            let merged = FileManager.default.temporaryDirectory.appendingPathComponent("tlhub-evaluate-\(UUID().uuidString).npy")
            defer {
                try? FileManager.default.removeItem(at: merged)
                try? FileManager.default.removeItem(at: OutputFiles.rowList(for: merged))
            }
            try ShardedOutput.merge(folder, into: merged)
            let scores = try NumPy.read(contentsOf: merged)
            let files = try String(contentsOf: OutputFiles.rowList(for: merged), encoding: .utf8)
                .split(separator: "\n").map { URL(fileURLWithPath: String($0)) }
            try reporting.report(scores: scores, files: files, images: try LabeledImages.load(data, classNames: classes), classes: classes)
        }
    }
}

struct Evaluation: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "score",
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

    @OptionGroup var reporting: Evaluate.Reporting

    @Option(help: ArgumentHelp("Score only this share of the images (K/N or auto/N, as for features) into --parts; report with `tlhub evaluate merge`.",
                               valueName: "K/N|auto"))
    var shard: String?

    @Option(help: "With --shard: the folder of score parts.", transform: { URL(fileURLWithPath: $0, isDirectory: true) })
    var parts: URL?

    @Flag(help: "With --shard: redo a finished part.")
    var force = false

    func validate() throws {
        guard (shard == nil) == (parts == nil) else { throw ValidationError("--shard and --parts go together") }
    }

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
        var inference = BatchInference(inputs: .images(images.files.map(\.path)), batchSize: batch, size: size, skipsUnreadable: true)
        if let shard, let parts {
            let parsed = try Shard.parse(shard)
            inference.shard = parsed
            let settings = ["evaluate", data.path, classes.joined(separator: ","), size ?? "-"].joined(separator: "|")
            try ShardedRun(command: "evaluate", settings: settings, force: force)
                .run(loaded, inference: inference, shard: parsed, folder: parts) { try loaded.model.predict(input: $0) }
            return
        }
        let result = try BatchRun(command: "evaluate", inference: inference).run(loaded) { try loaded.model.predict(input: $0) }
        try reporting.report(scores: result.output, files: result.files, images: images, classes: classes)
    }
}
