import ArgumentParser
import Foundation
import TLPipeline
import TLTensor

/// A `--shard` run of `features`/`predict`: the part files in the `-o` folder, skipped when an
/// earlier run of the same shard finished them (unless `--force`).
struct ShardedRun {
    var command: String
    /// Every setting that changes the numbers (recorded with the part).
    var settings: String
    /// Redo a finished part.
    var force: Bool

    /// A run of `features`/`predict` with these image options.
    init(command: String, inputs: ImageInputOptions, extraSettings: String) {
        self.command = command
        settings = inputs.shardSettings(command: command, extra: extraSettings)
        force = inputs.force
    }

    init(command: String, settings: String, force: Bool) {
        self.command = command
        self.settings = settings
        self.force = force
    }

    /// Runs `body` on the shard's inputs into `folder`; returns false when the part was complete.
    func run(_ loaded: LoadedModel, inference: BatchInference, shard: Shard, folder: URL,
             _ body: (Tensor) throws -> Tensor) throws {
        let modelSHA = try loaded.weightsSHA256()
        if !force && ShardedOutput.isComplete(folder, shard: shard, modelSHA256: modelSHA, settings: settings) {
            printNote("\(folder.appendingPathComponent(shard.partName).path) is already complete; nothing to do (--force redoes it)")
            return
        }
        let runner = BatchRun(command: "\(command) \(shard.partName)", inference: inference)
        let result = try runner.run(loaded, body)
        let record = ShardRecord(shard: shard.index, shards: shard.count, modelSHA256: modelSHA, settings: settings,
                                 inputCount: result.inputCount, start: result.range.lowerBound, end: result.range.upperBound,
                                 rows: result.output.shape.first ?? 0, rowShape: Array(result.output.shape.dropFirst()))
        try ShardedOutput.write(result.output, files: result.files, record: record, to: folder)
        FileHandle.standardError.write(Data((runner.summary(result, output: folder.appendingPathComponent("\(shard.partName).npy")) + "\n").utf8))
    }
}

extension Features {
    struct Merge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Merge the part-K-of-N files of a sharded features run into one output, in single-machine order.",
            discussion: """
            Checks that all N parts are present, come from the same model and settings, and cover
            the inputs exactly once; names missing or inconsistent parts. Streams one part at a time.

            Example:
              sbatch --array=0-63 --wrap 'tlhub features --model mobilenet_v2_100_224 /data/images --shard auto -o /scratch/feats/'
              tlhub features merge /scratch/feats/ -o features.npy
            """)

        @Argument(help: "The folder the shards wrote to.", transform: { URL(fileURLWithPath: $0, isDirectory: true) })
        var folder: URL

        @Option(name: [.short, .customLong("output")], help: "Merged output (.npy or .csv); the files list goes beside it.",
                transform: URL.init(fileURLWithPath:))
        var output: URL

        func validate() throws {
            guard ["npy", "csv"].contains(output.pathExtension.lowercased()) else {
                throw ValidationError("--output must end in .npy or .csv")
            }
        }

        func run() async throws {
            Interruption.removeTemporariesOnSignal()
            let (rows, parts) = try ShardedOutput.merge(folder, into: output)
            FileHandle.standardError.write(Data("merged \(parts) parts, \(rows) rows → \(output.path)\n".utf8))
        }
    }
}
