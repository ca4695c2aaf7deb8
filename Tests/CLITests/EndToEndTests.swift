import Foundation
import Testing
import TLTensor

/// The `tlhub` binary end to end: image files in, the numbers Keras computes out (goldens from
/// `Tests/Fixtures/make_demo_fixtures.py`: Keras `load_img` → `preprocess_input` → the model).
@Suite("tlhub features and predict on images")
struct EndToEndTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    let fixtures = root.appendingPathComponent("Tests/Fixtures")
    let model = root.appendingPathComponent("scripts/demo_hub/files/mobilenet_v2_demo_0.35_96.h5").path
    let output: URL = FileManager.default.temporaryDirectory.appendingPathComponent("tlhub-cli-\(UUID().uuidString)")

    /// The debug binary `swift test` builds beside the test bundle.
    static func binary() throws -> URL {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("tlhub"),
            Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("tlhub"),
            root.appendingPathComponent(".build/debug/tlhub"),
        ]
        return try #require(candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) },
                            "the tlhub executable is built by `swift build` / `swift test`")
    }

    /// Runs tlhub; returns exit status, stdout and stderr.
    func run(_ arguments: [String], environment extra: [String: String] = [:],
             in directory: URL? = nil) throws -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = try Self.binary()
        if let directory { process.currentDirectoryURL = directory }
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["TLHUB_OFFLINE"] = "1"
        for key in environment.keys where key.hasPrefix("SLURM_") || key == "JOB_COMPLETION_INDEX" { environment[key] = nil }
        environment.merge(extra) { $1 }
        process.environment = environment
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
    }

    func images() throws -> [String] {
        let names = try JSONDecoder().decode([String].self, from: Data(contentsOf: fixtures.appendingPathComponent("cli/images.json")))
        return names.map { fixtures.appendingPathComponent("imaging/images/\($0)").path }
    }

    func expectClose(_ actual: Tensor, _ expected: Tensor) {
        let tolerance = 1e-4 * max(1, expected.maxAbsolute)
        #expect(actual.shape == expected.shape)
        #expect(actual.maxAbsoluteDifference(expected) <= tolerance, "max error vs Keras \(actual.maxAbsoluteDifference(expected))")
    }

    @Test("features of JPEG/PNG files match Keras's load_img + preprocess_input + model")
    func featuresMatchKeras() throws {
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        let target = output.appendingPathComponent("features.npy")
        let result = try run(["features", "--model", model, "--size", "96"] + images() + ["-o", target.path])
        #expect(result.status == 0, "\(result.stderr)")
        expectClose(try NumPy.read(contentsOf: target), try NumPy.read(contentsOf: fixtures.appendingPathComponent("cli/demo_features.npy")))
        let listed = try String(contentsOf: output.appendingPathComponent("features.files.txt"), encoding: .utf8)
        #expect(listed.split(separator: "\n").map(String.init) == (try images()))
    }

    @Test("predict on images matches Keras and names classes from the class index")
    func predictMatchesKeras() throws {
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        let target = output.appendingPathComponent("scores.npy")
        let classIndex = Self.root.appendingPathComponent("scripts/demo_hub/files/demo_class_index.json").path
        let result = try run(["predict", "--model", model, "--size", "96", "--class-index", classIndex, "--top", "1"]
                             + images() + ["-o", target.path])
        #expect(result.status == 0, "\(result.stderr)")
        let expected = try NumPy.read(contentsOf: fixtures.appendingPathComponent("cli/demo_predictions.npy"))
        expectClose(try NumPy.read(contentsOf: target), expected)
        let names = ["apple", "bicycle", "cat", "dog", "espresso", "fern", "guitar", "harbor", "igloo", "jellyfish"]
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.count == expected.shape[0])
        for (row, line) in lines.enumerated() {
            let scores = expected.scalars[(row * 10)..<((row + 1) * 10)]
            let best = scores.indices.max { scores[$0] < scores[$1] }! - row * 10
            #expect(line.contains("\(names[best]) (\(best))"), "row \(row): \(line)")
        }
    }

    @Test("tlhub takes the memory it loads a model into in huge pages: a fraction of the page faults of TLHUB_HUGE_PAGES=0, same outputs")
    func hugePages() throws {
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        func faults(_ setting: String) throws -> Int {
            let result = try run(["bench", "--model", model, "--iterations", "1", "--warmup", "1", "--json"], environment: ["TLHUB_HUGE_PAGES": setting])
            #expect(result.status == 0, "\(result.stderr)")
            let fields = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
            return try #require(fields["page_faults"] as? Int)
        }
        let (small, huge) = (try faults("0"), try faults("1"))
        #expect(small > 1000, "loading the demo model (1.2 MB of weights, touched three times over) faults in thousands of 4 KB pages")
        // Where the kernel hands out transparent huge pages on request (`madvise`, as Debian's
        // default; not under `never`), the weights' copies take a few 2 MB pages instead.
        let setting = (try? String(contentsOfFile: "/sys/kernel/mm/transparent_hugepage/enabled", encoding: .utf8)) ?? "[never]"
        if !setting.contains("[never]") {
            #expect(Double(huge) < 0.6 * Double(small), "page faults: \(huge) in huge pages, \(small) in 4 KB pages")
        }
        let targets = ["0", "1"].map { output.appendingPathComponent("features-\($0).npy") }
        for (setting, target) in zip(["0", "1"], targets) {
            let result = try run(["features", "--model", model, "--size", "96"] + images() + ["-o", target.path], environment: ["TLHUB_HUGE_PAGES": setting])
            #expect(result.status == 0, "\(result.stderr)")
        }
        #expect(try Data(contentsOf: targets[0]) == Data(contentsOf: targets[1]))
    }

    @Test("a non-image, a missing model and a missing image each give one error line and exit 1")
    func badInput() throws {
        let notImage = fixtures.appendingPathComponent("imaging/images/not_an_image.jpg").path
        let cases: [([String], String)] = [
            (["features", "--model", model, notImage, "-o", output.appendingPathComponent("x.npy").path], "not_an_image.jpg"),
            (["features", "--model", "/nonexistent/model.h5", notImage, "-o", output.appendingPathComponent("x.npy").path], "/nonexistent/model.h5"),
            (["predict", "--model", model, "/nonexistent/cat.jpg"], "/nonexistent/cat.jpg"),
        ]
        for (arguments, named) in cases {
            let result = try run(arguments)
            #expect(result.status == 1, "\(arguments)")
            let lines = result.stderr.split(separator: "\n")
            #expect(lines.count == 1 && lines[0].hasPrefix("Error:") && lines[0].contains(named), "\(result.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: output.appendingPathComponent("x.npy").path))
    }

    @Test("a TF Hub-style SavedModel directory (TF-Slim names) runs through features")
    func savedModelDirectory() throws {
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        let target = output.appendingPathComponent("hub.npy")
        let tfhub = fixtures.appendingPathComponent("tfhub")
        let result = try run(["features", "--model", tfhub.appendingPathComponent("mobilenet_v2_035").path,
                              "--input", tfhub.appendingPathComponent("input_32.npy").path, "-o", target.path])
        #expect(result.status == 0, "\(result.stderr)")
        expectClose(try NumPy.read(contentsOf: target), try NumPy.read(contentsOf: tfhub.appendingPathComponent("features_32.npy")))
    }
}
