import ArgumentParser
import Foundation
import TLFormats

struct Convert: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert a Keras weight file (.h5, .weights.h5, .keras) to one float32 .safetensors file.",
        discussion: """
        Tensors are named <layer>/<weight> with Keras layouts unchanged; __metadata__ records the
        source's SHA-256, Keras version, layer order and model config. The output is written
        atomically: on error or ^C nothing is left at the target, and temporaries left by a killed
        run (.NAME.<pid>-<n>.tmp) are removed by the next convert into that folder.

        Examples:
          tlhub convert vgg16_weights_tf_dim_ordering_tf_kernels.h5 --arch vgg16
          tlhub convert model.keras -o model.safetensors
        """)

    @Argument(help: "A .h5, .weights.h5, .keras or .safetensors file.", transform: URL.init(fileURLWithPath:))
    var file: URL

    @Option(help: "Architecture name to record (e.g. vgg16) when the file has no model config.")
    var arch: String?

    @Option(name: [.short, .customLong("output")], help: "Output path (default: the input name with .safetensors).",
            transform: URL.init(fileURLWithPath:))
    var output: URL?

    func validate() throws {
        if output == nil, Self.defaultOutput(for: file).standardizedFileURL.path == file.standardizedFileURL.path {
            throw ValidationError("\(file.path) is already .safetensors: give -o OUT.safetensors")
        }
    }

    /// `x.weights.h5` → `x.safetensors`, `x.h5` / `x.keras` → `x.safetensors`.
    static func defaultOutput(for input: URL) -> URL {
        var name = input.lastPathComponent
        if name.hasSuffix(".weights.h5") {
            name.removeLast(".weights.h5".count)
        } else if let dot = name.lastIndex(of: "."), dot != name.startIndex {
            name = String(name[..<dot])
        }
        return input.deletingLastPathComponent().appendingPathComponent(name + ".safetensors")
    }

    func run() async throws {
        let target = output ?? Self.defaultOutput(for: file)
        Interruption.removeTemporariesOnSignal()
        Interruption.sweepStaleTemporaries(beside: target)
        let start = Date()
        let source = try WeightFile.open(file)
        let report = try SafeTensorsConversion.convert(source, to: target, arch: arch)
        let seconds = Date().timeIntervalSince(start)
        FileHandle.standardError.write(Data(
            "wrote \(report.output.path): \(report.tensorCount) tensors, \(report.parameterCount.formatted()) parameters in \(String(format: "%.2f", seconds)) s\n".utf8))
    }
}
