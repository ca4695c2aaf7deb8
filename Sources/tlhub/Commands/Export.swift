import ArgumentParser
import Foundation
import TLFormats

struct Export: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write weights back as a Keras HDF5 file that model.load_weights() accepts.",
        discussion: """
        keras-h5 is the legacy weights-only layout (layer_names, weight_names, <layer>/<weight>:0)
        read by tf.keras 2 and Keras 3 alike; keras3-weights is Keras 3's .weights.h5 layout
        (name the output *.weights.h5 for Keras to accept it). The output is written atomically.

        Examples:
          tlhub export vgg16.safetensors --format keras-h5 -o vgg16_roundtrip.h5
          tlhub export model.safetensors --format keras3-weights -o model.weights.h5
        """)

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case kerasH5 = "keras-h5"
        case keras3Weights = "keras3-weights"
    }

    @Argument(help: "A .safetensors (or any file tlhub reads).", transform: URL.init(fileURLWithPath:))
    var file: URL

    @Option(help: "Output layout: \(Format.allCases.map(\.rawValue).joined(separator: ", ")).")
    var format: Format = .kerasH5

    @Option(name: [.short, .customLong("output")], help: "Output path.", transform: URL.init(fileURLWithPath:))
    var output: URL

    func validate() throws {
        if output.standardizedFileURL.path == file.standardizedFileURL.path {
            throw ValidationError("output \(output.path) would overwrite the input")
        }
    }

    func run() async throws {
        Interruption.removeTemporariesOnSignal()
        Interruption.sweepStaleTemporaries(beside: output)
        let source = try WeightFile.open(file)
        switch format {
        case .kerasH5: try KerasH5Export.write(source, to: output)
        case .keras3Weights: try Keras3WeightsExport.write(source, to: output)
        }
        FileHandle.standardError.write(Data("wrote \(output.path): \(source.layerNames.count) layers, \(source.parameterCount.formatted()) parameters\n".utf8))
    }
}
