import ArgumentParser
import TLTraining

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

    /// Parses and runs, after putting a resumed run's recorded command line in front of its options.
    static func main() async {
        do {
            let arguments = try ResumedRun.expand(Array(CommandLine.arguments.dropFirst()))
            if let command = arguments.first, ResumedRun.commands.contains(command) { Trainer.keepFreedMemoryForReuse() }
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}
