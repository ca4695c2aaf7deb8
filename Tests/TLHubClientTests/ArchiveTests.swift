import Foundation
import TLTensor
import Testing
@testable import TLFormats
@testable import TLHubClient

let hubFixtures = packageRoot.appendingPathComponent("Tests/Fixtures/hub")

@Suite("TF Hub archives and tensor bundles")
struct ArchiveTests {
    @Test("a SavedModel .tar.gz unpacks atomically to the files tar lists")
    func extractsSavedModel() throws {
        let scratch = try ScratchDirectory()
        let destination = scratch.url.appendingPathComponent("model")
        let files = try TarExtractor.extractTarGz(hubFixtures.appendingPathComponent("tiny_saved_model.tar.gz"), into: destination)
        #expect(Set(files) == ["fingerprint.pb", "saved_model.pb", "variables/variables.data-00000-of-00001", "variables/variables.index"])
        let attributes = try FileManager.default.attributesOfItem(atPath: destination.appendingPathComponent("saved_model.pb").path)
        #expect(attributes[.size] as? Int == 209_490)
        #expect(scratch.files().allSatisfy { !$0.contains(".extracting") })
    }

    @Test("unsafe archives are refused and leave nothing behind", arguments: [
        ("evil_dotdot.tar.gz", "refusing unsafe path 'variables/../../escape.txt'"),
        ("evil_absolute.tar.gz", "refusing unsafe path '/tmp/escape.txt'"),
        ("evil_symlink.tar.gz", "refusing symbolic link 'link'"),
        ("evil_device.tar.gz", "refusing character device 'dev'"),
    ])
    func refusesUnsafeEntries(archive: String, problem: String) throws {
        let scratch = try ScratchDirectory()
        let path = hubFixtures.appendingPathComponent(archive)
        #expect(throws: ArchiveError(path: path.path, problem: problem)) {
            try TarExtractor.extractTarGz(path, into: scratch.url.appendingPathComponent("out"))
        }
        #expect(scratch.files().isEmpty)
    }

    @Test("the size cap and damaged gzip data are reported")
    func capAndCorruption() throws {
        let scratch = try ScratchDirectory()
        let archive = hubFixtures.appendingPathComponent("tiny_saved_model.tar.gz")
        #expect(throws: ArchiveError.self) {
            try TarExtractor.extractTarGz(archive, into: scratch.url.appendingPathComponent("a"), maxTotalBytes: 100_000)
        }
        var bytes = [UInt8](try Data(contentsOf: archive))
        let truncated = scratch.url.appendingPathComponent("truncated.tar.gz")
        try Data(bytes[0..<(bytes.count / 2)]).write(to: truncated)
        #expect(throws: ArchiveError.self) { try TarExtractor.extractTarGz(truncated, into: scratch.url.appendingPathComponent("b")) }
        bytes[bytes.count / 2] ^= 0xFF
        let damaged = scratch.url.appendingPathComponent("damaged.tar.gz")
        try Data(bytes).write(to: damaged)
        #expect(throws: ArchiveError.self) { try TarExtractor.extractTarGz(damaged, into: scratch.url.appendingPathComponent("c")) }
        #expect(scratch.files().sorted() == ["damaged.tar.gz", "truncated.tar.gz"])
    }

    @Test("pullUnpacked downloads a TF Hub-style archive once and returns the SavedModel directory")
    func pullUnpacked() async throws {
        let scratch = try ScratchDirectory()
        let archive = hubFixtures.appendingPathComponent("tiny_saved_model.tar.gz")
        let manifests = try scratch.manifests([artifactEntry(name: "tiny", url: archive.absoluteString, fileName: "tiny_feature_vector_5.tar.gz")], source: "tfhub")
        let cache = scratch.url.appendingPathComponent("cache")
        let hub = try Hub(cacheDirectory: cache, manifestDirectories: [manifests], environment: [:])
        let directory = try await hub.pullUnpacked("tfhub:tiny")
        #expect(directory.path == cache.appendingPathComponent("tfhub/tiny_feature_vector_5").path)
        #expect(FileManager.default.fileExists(atPath: directory.appendingPathComponent("variables/variables.index").path))
        let offline = try Hub(cacheDirectory: cache, manifestDirectories: [manifests], offline: true, environment: [:])
        #expect(try await offline.pullUnpacked("tfhub:tiny").path == directory.path)
        #expect(offline.cachedEntries().map(\.name) == ["tfhub:tiny"])
        #expect(try offline.remove("tfhub:tiny").count == 3)
        #expect(!FileManager.default.fileExists(atPath: directory.path))
    }

    struct GoldenVariable: Decodable {
        var name: String
        var dtype: String
        var shape: [Int]
        var values: [Double]?
    }

    @Test("the tensor bundle reads back exactly what TensorFlow wrote")
    func tensorBundleMatchesTensorFlow() throws {
        let scratch = try ScratchDirectory()
        let destination = scratch.url.appendingPathComponent("model")
        try TarExtractor.extractTarGz(hubFixtures.appendingPathComponent("tiny_saved_model.tar.gz"), into: destination)
        let bundle = try TensorBundle(prefix: destination.appendingPathComponent("variables/variables"))
        let golden = try JSONDecoder().decode([GoldenVariable].self,
                                              from: Data(contentsOf: hubFixtures.appendingPathComponent("tiny_saved_model_variables.json")))
        #expect(bundle.entries.map(\.name) == golden.map(\.name))
        for variable in golden {
            let entry = try #require(bundle.entry(named: variable.name))
            #expect(entry.shape == variable.shape, "\(variable.name)")
            guard let values = variable.values else {
                #expect(entry.dataType == .string)
                continue
            }
            let tensor = try bundle.tensor(named: variable.name)
            #expect(tensor.shape == variable.shape)
            #expect(tensor.scalars == values.map { Float($0) }, "\(variable.name)")
        }
        #expect(bundle.entry(named: "step/.ATTRIBUTES/VARIABLE_VALUE")?.dataType == .int64)
        // As a WeightSource: top-level variables have the empty layer name.
        let source: any WeightSource = bundle
        #expect(source.layerNames.contains(""))
        #expect(source.shape(layer: "", weight: "kernel") == [3, 4])
        let kernel = try #require(golden.first { $0.name == "kernel/.ATTRIBUTES/VARIABLE_VALUE" }?.values)
        #expect(try source.tensor(layer: "", weight: "kernel").scalars == kernel.map { Float($0) })
        #expect(!source.weightNames(layer: "").contains("_CHECKPOINTABLE_OBJECT_GRAPH"))
        #expect(bundle.entry(named: "scale/.ATTRIBUTES/VARIABLE_VALUE")?.dataType == .double)
    }

    @Test("damaged bundle files fail their CRC-32C checks")
    func bundleChecksums() throws {
        let scratch = try ScratchDirectory()
        let destination = scratch.url.appendingPathComponent("model")
        try TarExtractor.extractTarGz(hubFixtures.appendingPathComponent("tiny_saved_model.tar.gz"), into: destination)
        let prefix = destination.appendingPathComponent("variables/variables")
        let dataURL = URL(fileURLWithPath: prefix.path + ".data-00000-of-00001")
        let bundle = try TensorBundle(prefix: prefix)
        let kernel = try #require(bundle.entry(named: "kernel/.ATTRIBUTES/VARIABLE_VALUE"))
        var data = [UInt8](try Data(contentsOf: dataURL))
        data[Int(kernel.offset) + 5] ^= 0x01
        try Data(data).write(to: dataURL)
        #expect(throws: TensorFileError.self) { try bundle.tensor(named: kernel.name) }
        #expect(throws: Never.self) { try bundle.tensor(named: "bias/.ATTRIBUTES/VARIABLE_VALUE") }

        let indexURL = URL(fileURLWithPath: prefix.path + ".index")
        var index = [UInt8](try Data(contentsOf: indexURL))
        index[40] ^= 0x01
        try Data(index).write(to: indexURL)
        #expect(throws: TensorFileError.self) { try TensorBundle(prefix: prefix) }
        #expect(Array("123456789".utf8).withUnsafeBytes { CRC32C.checksum($0) } == 0xE306_9283)
    }
}
