import Foundation
import Testing
@testable import TLHubClient

@Suite("Bundled manifests")
struct ManifestTests {
    let registry: Registry

    init() throws {
        registry = try Registry()
    }

    @Test("every entry parses, names are unique, hashes have their algorithm's length, URLs are http(s)")
    func entriesAreWellFormed() throws {
        let sources = Dictionary(grouping: registry.entries, by: { $0.artifact.source ?? "" })
        #expect((sources["keras"]?.count ?? 0) >= 176)  // 88 Keras 3 applications × top/notop, plus tf-keras-only ones
        #expect(sources["tfhub"]?.count == 60)
        #expect(sources["asset"]?.count == 1)
        let names = registry.entries.map(\.artifact.qualifiedName)
        #expect(Set(names).count == names.count)
        for entry in registry.entries {
            let artifact = entry.artifact
            let scheme = URLComponents(string: artifact.url)?.scheme
            #expect(scheme == "https" || scheme == "http", "\(artifact.qualifiedName): \(artifact.url)")
            if let hash = artifact.hash {
                #expect(hash.value.count == hash.algorithm.hexLength, "\(artifact.qualifiedName)")
                #expect(hash.value.allSatisfy { $0.isHexDigit && !$0.isUppercase })
            }
            #expect(!artifact.fileName.isEmpty)
        }
    }

    @Test("the compiled-in manifests are the files in manifests/")
    func bundledMatchesFiles() throws {
        let directory = packageRoot.appendingPathComponent("manifests")
        let onDisk = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".json") }.sorted()
        #expect(onDisk == BundledManifests.files.map(\.name).sorted())
        for file in BundledManifests.files {
            let text = try String(contentsOf: directory.appendingPathComponent(file.name), encoding: .utf8)
            #expect(text.trimmingCharacters(in: .whitespacesAndNewlines) == file.json.trimmingCharacters(in: .whitespacesAndNewlines), "\(file.name)")
        }
    }

    @Test("every MobileNetV2 alpha and resolution, top and no-top, from Keras and TF Hub")
    func mobileNetV2Coverage() throws {
        for depth in ["035", "050", "075", "100", "130", "140"] {
            for resolution in [96, 128, 160, 192, 224] {
                let name = "mobilenet_v2_\(depth)_\(resolution)"
                for variant in ["top", "notop"] {
                    let artifact = try registry.entry(for: "keras:\(name):\(variant)").artifact
                    #expect(artifact.format == "keras-h5")
                    #expect(artifact.options["include_top"] == .bool(variant == "top"))
                }
                for variant in ["feature_vector", "classification"] {
                    let artifact = try registry.entry(for: "tfhub:\(name):\(variant)").artifact
                    #expect(artifact.url == "https://tfhub.dev/google/imagenet/\(name)/\(variant)/5?tf-hub-format=compressed")
                }
            }
        }
    }

    @Test("URLs and hashes are Keras's own (spot checks against keras/src/applications)")
    func spotChecks() throws {
        let mobileNet = try registry.entry(for: "mobilenet_v2_100_224").artifact
        #expect(mobileNet.url == "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5")
        #expect(mobileNet.hash == nil)
        let vgg = try registry.entry(for: "vgg16").artifact
        #expect(vgg.hash == PublishedHash(algorithm: .md5, value: "6d6bbae143d832006294945121d1f1fc"))
        let vggTop = try registry.entry(for: "vgg16:top").artifact
        #expect(vggTop.hash == PublishedHash(algorithm: .md5, value: "64373286793e3c8b2b4e3219cbf3544b"))
        let densenet = try registry.entry(for: "densenet121").artifact
        #expect(densenet.hash?.value == "30ee3e1110167f948a6b9946edeeb738")
        let index = try registry.entry(for: "imagenet_class_index").artifact
        #expect(index.url == "https://storage.googleapis.com/download.tensorflow.org/data/imagenet_class_index.json")
        #expect(index.hash?.value == "c2c37ea517e94d9795004a39431a14cb")
        for name in ["resnet50", "resnet50_v2", "inception_v3", "xception", "inception_resnet_v2", "efficientnet_b7",
                     "efficientnet_v2_l", "convnext_xlarge", "nasnet_large", "mobilenet_v1_025_128",
                     "mobilenet_v3_small_minimalistic_100_224", "densenet201"] {
            #expect(throws: Never.self) { try registry.entry(for: "\(name):top") }
            #expect(throws: Never.self) { try registry.entry(for: name) }
        }
    }
}

@Suite("Names and registries")
struct ReferenceTests {
    @Test("defaults: Keras before TF Hub, no-top before top, feature vector before classification")
    func defaults() throws {
        let registry = try Registry()
        #expect(try registry.entry(for: "mobilenet_v2_100_224").artifact.qualifiedName == "keras:mobilenet_v2_100_224:notop")
        #expect(try registry.entry(for: "mobilenet_v2_100_224:top").artifact.qualifiedName == "keras:mobilenet_v2_100_224:top")
        #expect(try registry.entry(for: "tfhub:mobilenet_v2_100_224").artifact.qualifiedName == "tfhub:mobilenet_v2_100_224:feature_vector")
        #expect(try registry.entry(for: "tfhub:mobilenet_v2_100_224:classification").artifact.variant == "classification")
        #expect(try registry.entry(for: "imagenet_class_index").artifact.source == "asset")
    }

    @Test("bad names are rejected with a useful error")
    func badNames() throws {
        let registry = try Registry()
        #expect(throws: HubError.unknownArtifact(reference: "mobilenet_v2_100", suggestions: ["mobilenet_v2_100_128", "mobilenet_v2_100_160", "mobilenet_v2_100_192", "mobilenet_v2_100_224"])) {
            try registry.entry(for: "mobilenet_v2_100")
        }
        #expect(throws: HubError.invalidReference("a:b:c:d")) { try registry.entry(for: "a:b:c:d") }
        #expect(throws: HubError.invalidReference("vgg16:")) { try registry.entry(for: "vgg16:") }
        #expect(throws: HubError.self) { try registry.entry(for: "vgg16:classification") }
    }

    @Test("a private registry adds and replaces entries")
    func privateRegistry() throws {
        let scratch = try ScratchDirectory()
        let directory = try scratch.manifests([
            artifactEntry(name: "mine", url: "https://example.com/mine.h5"),
        ], source: "corp")
        let override = """
        {"family": "o", "source": "asset", "artifacts": [{"name": "imagenet_class_index", "url": "https://mirror.example/i.json",
         "file_name": "imagenet_class_index.json", "format": "json", "options": {}}]}
        """
        try Data(override.utf8).write(to: directory.appendingPathComponent("override.json"))
        let registry = try Registry(manifestDirectories: [directory])
        #expect(try registry.entry(for: "mine").artifact.qualifiedName == "corp:mine")
        #expect(try registry.entry(for: "corp:mine").manifestDirectory == directory)
        #expect(try registry.entry(for: "imagenet_class_index").artifact.url == "https://mirror.example/i.json")
    }

    @Test("manifest checks: hash length, duplicates, URL schemes, file names", arguments: [
        (#"{"name":"a","url":"https://x/a","file_name":"a","format":"raw","options":{},"hash":{"algorithm":"md5","value":"abc"}}"#, "is not 32 hex digits"),
        (#"{"name":"a","url":"https://x/a","file_name":"a","format":"raw","options":{},"hash":{"algorithm":"sha256","value":"6d6bbae143d832006294945121d1f1fc"}}"#, "is not 64 hex digits"),
        (#"{"name":"a","url":"ftp://x/a","file_name":"a","format":"raw","options":{}}"#, "unsupported URL"),
        (#"{"name":"a","url":"https://x/a","file_name":"../a","format":"raw","options":{}}"#, "bad file name"),
        (#"{"name":"a","url":"https://x/a","file_name":"a","format":"raw","options":{}},{"name":"a","url":"https://x/b","file_name":"b","format":"raw","options":{}}"#, "listed twice"),
        (#"{"name":"a","file_name":"a","format":"raw","options":{}}"#, "missing 'url'"),
    ])
    func manifestChecks(artifacts: String, problem: String) throws {
        let text = #"{"family":"f","source":"s","artifacts":["# + artifacts + "]}"
        do {
            _ = try Manifest.parse(Data(text.utf8), path: "bad.json")
            Issue.record("accepted a bad manifest")
        } catch let error as HubError {
            #expect(error.description.contains(problem), "\(error)")
            #expect(error.description.hasPrefix("manifest bad.json:"))
        }
    }

    @Test("mirrors keep paths; relative URLs resolve against the mirror or the manifest directory")
    func mirrorMapping() throws {
        let scratch = try ScratchDirectory()
        let directory = try scratch.manifests([
            artifactEntry(name: "rel", url: "files/rel.h5"),
            artifactEntry(name: "abs", url: "https://storage.googleapis.com/tensorflow/keras-applications/a.h5?x=1"),
        ], source: "demo")
        let plain = try Hub(cacheDirectory: scratch.url, manifestDirectories: [directory], environment: [:])
        #expect(try plain.resolve("demo:rel").location == URL(fileURLWithPath: directory.path).appendingPathComponent("files/rel.h5"))
        #expect(try plain.resolve("demo:abs").location.absoluteString == "https://storage.googleapis.com/tensorflow/keras-applications/a.h5?x=1")
        let http = try Hub(cacheDirectory: scratch.url, manifestDirectories: [directory], mirror: URL(string: "http://10.0.0.5:8080/m/"), environment: [:])
        #expect(try http.resolve("demo:abs").location.absoluteString == "http://10.0.0.5:8080/m/tensorflow/keras-applications/a.h5?x=1")
        #expect(try http.resolve("demo:rel").location.absoluteString == "http://10.0.0.5:8080/m/files/rel.h5")
        let file = try Hub(cacheDirectory: scratch.url, manifestDirectories: [directory], environment: ["TLHUB_ENDPOINT": "file:///srv/hub"])
        #expect(try file.resolve("demo:abs").location.absoluteString == "file:///srv/hub/tensorflow/keras-applications/a.h5")
        #expect(try file.resolve("vgg16").location.absoluteString == "file:///srv/hub/tensorflow/keras-applications/vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5")
    }

    @Test("the bundled demo hub pulls with and without a file:// mirror, hashes checked")
    func demoHub() async throws {
        let scratch = try ScratchDirectory()
        let demo = packageRoot.appendingPathComponent("scripts/demo_hub")
        let plain = try Hub(cacheDirectory: scratch.url.appendingPathComponent("a"), manifestDirectories: [demo], environment: [:])
        let file = try await plain.pull("demo:tiny_cnn")
        #expect(file.lastPathComponent == "tiny_cnn_notop.h5")
        #expect(try Data(contentsOf: file) == Data(contentsOf: hubFixtures.appendingPathComponent("tiny_cnn_notop.h5")))
        let mirrored = try Hub(cacheDirectory: scratch.url.appendingPathComponent("b"), manifestDirectories: [demo],
                               mirror: URL(string: "file://" + demo.path), environment: [:])
        #expect(try mirrored.resolve("tiny_cnn:top").location.path == demo.appendingPathComponent("files/tiny_cnn.h5").path)
        _ = try await mirrored.pull("tiny_cnn:top")
        _ = try await mirrored.pull("tiny_class_index")
        #expect(mirrored.cachedEntries().count == 2)
    }

    @Test("cache directory precedence: --cache-dir > TLHUB_CACHE > ./cache > XDG > ~/.cache")
    func cacheDirectoryRule() throws {
        let scratch = try ScratchDirectory()
        let here = scratch.url.path
        let explicit = URL(fileURLWithPath: "/x/explicit")
        #expect(CacheDirectory.resolve(explicit: explicit, environment: ["TLHUB_CACHE": "/env"], currentDirectory: here).directory == explicit)
        #expect(CacheDirectory.resolve(environment: ["TLHUB_CACHE": "/env", "XDG_CACHE_HOME": "/xdg"], currentDirectory: here).directory.path == "/env")
        #expect(CacheDirectory.resolve(environment: ["XDG_CACHE_HOME": "/xdg", "HOME": "/home/u"], currentDirectory: here).directory.path == "/xdg/tlhub")
        #expect(CacheDirectory.resolve(environment: ["HOME": "/home/u"], currentDirectory: here).directory.path == "/home/u/.cache/tlhub")
        try FileManager.default.createDirectory(at: scratch.url.appendingPathComponent("cache"), withIntermediateDirectories: true)
        #expect(CacheDirectory.resolve(environment: ["XDG_CACHE_HOME": "/xdg"], currentDirectory: here).directory.path == here + "/cache")
        #expect(CacheDirectory.resolve(environment: ["TLHUB_CACHE": "/env"], currentDirectory: here).directory.path == "/env")
    }
}
