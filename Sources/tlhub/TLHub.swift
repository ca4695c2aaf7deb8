import ArgumentParser
import Foundation
import TLEngine

@main
struct TLHub: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tlhub",
        abstract: "Transfer learning without Python: pull Keras/TF Hub checkpoints, convert, extract features, fine-tune.",
        discussion: """
        Examples:
          tlhub pull mobilenet_v2_100_224
          tlhub features --model mobilenet_v2_100_224 photos/ -o features.npy
          tlhub finetune --model mobilenet_v2_100_224 --data photos/train --val photos/validation --head dense2 -o hotdog/
          tlhub predict --model hotdog/ lunch.jpg
          tlhub inspect vgg16.h5
          tlhub convert vgg16.h5 -o vgg16.safetensors
          tlhub export vgg16.safetensors --format keras-h5 -o vgg16_roundtrip.h5
        """,
        version: "0.1.0",
        subcommands: [
            Inspect.self,
            Convert.self,
            Export.self,
            Features.self,
            Predict.self,
            Finetune.self,
            Train.self,
            Evaluate.self,
            Bench.self,
            Pull.self,
            List.self,
            Cache.self,
        ]
    )

    /// Commands that load a model and run it: they keep freed memory for reuse (training frees
    /// and takes the same large tensors every step) and take the heap in huge pages (start-up
    /// faults; `ProcessMemory.useHugePages`). `TLHUB_HUGE_PAGES=0` keeps 4 KB pages (and only the
    /// training commands keep freed memory).
    static let computeCommands: Set<String> = ["features", "predict", "finetune", "train", "evaluate", "bench", "convert", "export"]

    /// Parses and runs, after putting a resumed run's recorded command line in front of its options.
    static func main() async {
        do {
            let arguments = try ResumedRun.expand(Array(CommandLine.arguments.dropFirst()))
            if let command = arguments.first, computeCommands.contains(command) {
                if ProcessInfo.processInfo.environment["TLHUB_HUGE_PAGES"] != "0" {
                    ProcessMemory.useHugePages()
                } else if ResumedRun.commands.contains(command) {
                    ProcessMemory.keepFreedMemoryForReuse()
                }
            }
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            // As `exit(withError:)` prints (help on stdout, one error line on stderr), then ends
            // without exit()'s atexit handlers: after a failed download a dispatch thread may
            // still be freeing its buffers, and libc's teardown racing it once aborted a 404
            // `tlhub pull` with "double free or corruption" after its error line.
            let code = exitCode(for: error), message = fullMessage(for: error)
            if !message.isEmpty {
                if code == .success { print(message) } else { FileHandle.standardError.write(Data((message + "\n").utf8)) }
            }
            fflush(nil)
            _exit(code.rawValue)
        }
    }
}
