import ArgumentParser
import Foundation
import TLTensor

struct Inspect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Describe a weight file: format, layers, weights, shapes, parameter count.",
        discussion: "Example:\n  tlhub inspect model.safetensors --json")

    @Argument(help: "A .h5, .weights.h5, .keras or .safetensors file.", transform: URL.init(fileURLWithPath:))
    var file: URL

    @Flag(help: "Print JSON on stdout instead of a table.")
    var json = false

    func run() async throws {
        let st = try SafeTensorsFile(contentsOf: file)
        for entry in st.entries { print(entry.name, entry.shape) }
    }
}
