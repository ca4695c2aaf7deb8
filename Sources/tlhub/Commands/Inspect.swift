import ArgumentParser
import Foundation
import TLFormats

struct Inspect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Describe a weight file: format, Keras version, layers, weights, shapes, parameter count.",
        discussion: """
        Reads .h5 (save_weights or full model), Keras 3 .weights.h5, .keras and .safetensors,
        recognised by content. No weight values are read.

        Examples:
          tlhub inspect vgg16_weights_tf_dim_ordering_tf_kernels.h5
          tlhub inspect model.safetensors --json
        """)

    @Argument(help: "A .h5, .weights.h5, .keras or .safetensors file.", transform: URL.init(fileURLWithPath:))
    var file: URL

    @Flag(help: "Print JSON on stdout instead of a table.")
    var json = false

    func run() async throws {
        let summary = try WeightFile.open(file).summary()
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(summary), as: UTF8.self))
        } else {
            print(Self.table(summary))
        }
    }

    static func table(_ summary: WeightFile.Summary) -> String {
        var lines: [String] = []
        lines.append("file:        \(summary.file)")
        lines.append("format:      \(summary.formatDescription) [\(summary.format)]")
        if let version = summary.kerasVersion { lines.append("keras:       \(version)\(summary.backend.map { " (\($0))" } ?? "")") }
        if let model = summary.model {
            var text = "model:       \(model.className) '\(model.name)', \(model.layerCount) layers in config"
            if !model.nestedModels.isEmpty {
                text += "; nested: " + model.nestedModels.keys.sorted().map { "\($0) (\(model.nestedModels[$0]?.count ?? 0) layers)" }.joined(separator: ", ")
            }
            lines.append(text)
        } else if let arch = summary.metadata["arch"] {
            lines.append("arch:        \(arch)")
        }
        let withWeights = summary.layers.filter { !$0.weights.isEmpty }.count
        lines.append("layers:      \(summary.layers.count) (\(withWeights) with weights), \(summary.weightCount) weights")
        lines.append("parameters:  \(summary.parameterCount.formatted())")
        lines.append("")
        let nameWidth = max(5, min(48, summary.layers.map { $0.name.count + ($0.parentModel.map { $0.count + 6 } ?? 0) }.max() ?? 5))
        let classWidth = max(5, min(24, summary.layers.map { ($0.className ?? "").count }.max() ?? 5))
        func pad(_ text: String, _ width: Int) -> String {
            text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
        }
        lines.append("\(pad("layer", nameWidth))  \(pad("class", classWidth))  weight            shape            dtype")
        for layer in summary.layers {
            // A nested model's layers keep their own names; show which model holds them.
            let name = layer.parentModel.map { "\(layer.name) (in \($0))" } ?? layer.name
            let className = layer.className ?? ""
            if layer.weights.isEmpty {
                lines.append("\(pad(name, nameWidth))  \(pad(className, classWidth))  -")
                continue
            }
            for (index, weight) in layer.weights.enumerated() {
                let left = index == 0 ? "\(pad(name, nameWidth))  \(pad(className, classWidth))" : String(repeating: " ", count: nameWidth + classWidth + 2)
                lines.append("\(left)  \(pad(weight.name, 16))  \(pad("\(weight.shape)", 15))  \(weight.dtype)")
            }
        }
        return lines.joined(separator: "\n")
    }
}
