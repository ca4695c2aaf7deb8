import Foundation
import Testing
import TLTensor
import TLFormats

/// Files from `make_user_files_fixtures.py`, saved by Keras as users save them.
@Suite("Keras files as users save them")
struct UserFilesFormatsTests {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/user-files")

    @Test("a subclassed Keras 3 model's .weights.h5 lists every variable Keras reports, with its shape")
    func subclassedModel() throws {
        let file = try WeightFile.open(Self.directory.appendingPathComponent("subclassed_k3.weights.h5"))
        let data = try Data(contentsOf: Self.directory.appendingPathComponent("subclassed_k3.json"))
        let variables = try #require(try JSONSerialization.jsonObject(with: data) as? [[String: Any]])
        #expect(file.allWeights.count == variables.count)
        for variable in variables {
            let path = try #require(variable["path"] as? String).split(separator: "/").map(String.init)
            let shape = try #require(variable["shape"] as? [Int])
            // `net/sequential_1/conv2d/kernel`: the layer is the second-to-last component.
            let layer = path[path.count - 2], weight = path[path.count - 1]
            #expect(file.shape(layer: layer, weight: weight) == shape, "\(path.joined(separator: "/"))")
        }
        #expect(file.layer(named: "conv2d")?.parentModel == "sequential_1")
        #expect(file.parameterCount == 158)
    }

    @Test("a Keras file without a single variable is an error, not an empty success")
    func noVariables() throws {
        let url = Self.directory.appendingPathComponent("empty_k3.weights.h5")
        #expect {
            _ = try WeightFile.open(url)
        } throws: { error in
            "\(error)".contains(url.path) && "\(error)".contains("no Keras layer variables found")
        }
    }

    @Test("tf.keras legacy .h5 with `/` in layer names: each full name is a layer, its weights its own")
    func slashNames() throws {
        let file = try WeightFile.open(Self.directory.appendingPathComponent("mobilenetv3small_slash.h5"))
        #expect(file.layer(named: "Conv/BatchNorm")?.weights.map(\.name) == ["gamma", "beta", "moving_mean", "moving_variance"])
        #expect(file.layer(named: "expanded_conv/squeeze_excite/Conv")?.weights.map(\.name) == ["kernel", "bias"])
        #expect(file.layer(named: "BatchNorm") == nil)
        #expect(file.nestedModels.isEmpty)
    }

    @Test("weight files reached through symbolic links open as the files they point to",
          arguments: ["densenet_slash.h5", "finetuned_k3.keras", "subclassed_k3.weights.h5"])
    func symbolicLinks(name: String) throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tlhub-links-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let link = folder.appendingPathComponent("link-" + name)
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: Self.directory.appendingPathComponent(name))
        let direct = try WeightFile.open(Self.directory.appendingPathComponent(name))
        let linked = try WeightFile.open(link)
        #expect(linked.layerNames == direct.layerNames)
        let (layer, weight) = try #require(linked.allWeights.last)
        #expect(try linked.tensor(layer: layer.name, weight: weight.name) == direct.tensor(layer: layer.name, weight: weight.name))
    }
}
