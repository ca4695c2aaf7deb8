import Foundation
import Testing
import TLTensor

/// Every input a user brings to `features`/`predict`/`bench`: symbolic links, sizes, `.npy`
/// dtypes and shapes, class indexes, unreadable images, outputs that must not lie.
@Suite("tlhub on the inputs users bring")
struct UserInputTests {
    let cli = EndToEndTests()
    var fixtures: URL { cli.fixtures }
    var model: String { cli.model }
    let folder: URL = FileManager.default.temporaryDirectory.appendingPathComponent("tlhub-inputs-\(UUID().uuidString)")

    init() throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    func path(_ name: String) -> String { folder.appendingPathComponent(name).path }

    /// Asserts exit status 1 and one `Error:` line on stderr containing every `fragment`.
    func expectError(_ arguments: [String], mentioning fragments: [String]) throws {
        let result = try cli.run(arguments)
        #expect(result.status == 1, "\(arguments): \(result.stderr)")
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1 && lines.first?.hasPrefix("Error:") == true, "\(arguments): \(result.stderr)")
        for fragment in fragments { #expect(result.stderr.contains(fragment), "\(arguments): \(result.stderr)") }
    }

    func writeNpy(_ name: String, dtype: String, shape: [Int], payload: Data) throws -> String {
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '\(dtype)', 'fortran_order': False, 'shape': \(shapeText), }"
        header += String(repeating: " ", count: (64 - (10 + header.utf8.count + 1) % 64) % 64) + "\n"
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count & 0xff), UInt8(header.utf8.count >> 8)])
        data.append(contentsOf: Array(header.utf8))
        data.append(payload)
        try data.write(to: folder.appendingPathComponent(name))
        return path(name)
    }

    @Test("a symlinked model file and a symlinked image folder give the same numbers as the originals")
    func symbolicLinks() throws {
        let images = folder.appendingPathComponent("images")
        try FileManager.default.createDirectory(at: images, withIntermediateDirectories: true)
        for image in try cli.images() {
            let url = URL(fileURLWithPath: image)
            try FileManager.default.copyItem(at: url, to: images.appendingPathComponent(url.lastPathComponent))
        }
        try FileManager.default.createSymbolicLink(atPath: path("model-link.h5"), withDestinationPath: model)
        try FileManager.default.createSymbolicLink(atPath: path("images-link"), withDestinationPath: images.path)
        let direct = try cli.run(["features", "--model", model, images.path, "-o", path("direct.npy")])
        #expect(direct.status == 0, "\(direct.stderr)")
        let linked = try cli.run(["features", "--model", path("model-link.h5"), path("images-link"), "-o", path("linked.npy")])
        #expect(linked.status == 0, "\(linked.stderr)")
        let expected = try NumPy.read(contentsOf: URL(fileURLWithPath: path("direct.npy")))
        #expect(expected.shape[0] == (try cli.images()).count)
        #expect(try NumPy.read(contentsOf: URL(fileURLWithPath: path("linked.npy"))) == expected)
    }

    @Test("without --size the published size is used (here 96 from the file name) and said; Keras's numbers follow")
    func publishedSizeByDefault() throws {
        let result = try cli.run(["predict", "--model", model, "--top", "0", "-o", path("scores.npy")] + cli.images())
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("input 96x96 (the file name)"), "\(result.stderr)")
        cli.expectClose(try NumPy.read(contentsOf: URL(fileURLWithPath: path("scores.npy"))),
                        try NumPy.read(contentsOf: fixtures.appendingPathComponent("cli/demo_predictions.npy")))
    }

    @Test("sizes that cannot work are refused with the reason", arguments: [
        ("1", "minimum of 32x32"), ("2", "minimum of 32x32"), ("96x", "S or HxW"), ("x96", "S or HxW"),
        ("100000", "maximum side of 8192"), ("0", "S or HxW"), ("96x96x3", "S or HxW"),
    ])
    func badSizes(size: String, reason: String) throws {
        try expectError(["features", "--model", model, "--size", size, try cli.images()[0], "-o", path("x.npy")],
                        mentioning: [reason])
        #expect(!FileManager.default.fileExists(atPath: path("x.npy")))
    }

    @Test("bench honours --size and labels the model with the size it ran")
    func benchSize() throws {
        let result = try cli.run(["bench", "--model", model, "--size", "64", "--iterations", "1", "--warmup", "0", "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("\"input_shape\": [1, 64, 64, 3]"), "\(result.stdout)")
        #expect(result.stdout.contains("mobilenetv2_0.35_64"), "\(result.stdout)")
    }

    @Test("bench --alternate times two copies of the model pass by pass and reports both and their ratio")
    func benchAlternate() throws {
        let result = try cli.run(["bench", "--model", model, "--size", "64", "--iterations", "3", "--warmup", "1", "--alternate"])
        #expect(result.status == 0, "\(result.stderr)")
        let line = result.stdout.split(separator: "\n").first { $0.hasPrefix("off ") }.map(String.init) ?? ""
        #expect(line.contains("medians of 3 passes each"), "\(result.stdout)")
        // Both sides ran (positive medians) and the ratio is theirs, not a constant.
        let numbers = line.split(whereSeparator: { " ,;()–".contains($0) }).compactMap { Double($0) }
        #expect(numbers.count >= 6 && numbers[0] > 0 && numbers[1] > 0, "\(line)")
    }

    @Test("predict on a model saved without its classifier is refused, pointing to features")
    func predictWithoutClassifier() throws {
        let notop = fixtures.appendingPathComponent("user-files/mobilenetv3small_slash.h5").path
        try expectError(["predict", "--model", notop, try cli.images()[0]], mentioning: ["no classifier", "tlhub features"])
    }

    @Test("--input: float32 as is, float64 converted with a note (same numbers), integers refused")
    func inputDtypes() throws {
        let batch = try NumPy.read(contentsOf: fixtures.appendingPathComponent("tfhub/input_32.npy"))
        let float32 = try writeNpy("x32.npy", dtype: "<f4", shape: batch.shape,
                                   payload: batch.scalars.withUnsafeBytes { Data($0) })
        let doubles = batch.scalars.map(Double.init)
        let float64 = try writeNpy("x64.npy", dtype: "<f8", shape: batch.shape, payload: doubles.withUnsafeBytes { Data($0) })
        let bytes = try writeNpy("x8.npy", dtype: "|u1", shape: batch.shape, payload: Data(repeating: 7, count: batch.count))
        let first = try cli.run(["features", "--model", model, "--input", float32, "-o", path("f32.npy")])
        #expect(first.status == 0, "\(first.stderr)")
        let second = try cli.run(["features", "--model", model, "--input", float64, "-o", path("f64.npy")])
        #expect(second.status == 0 && second.stderr.contains("float64; converted to float32"), "\(second.stderr)")
        #expect(try NumPy.read(contentsOf: URL(fileURLWithPath: path("f32.npy"))) == NumPy.read(contentsOf: URL(fileURLWithPath: path("f64.npy"))))
        try expectError(["features", "--model", model, "--input", bytes, "-o", path("f8.npy")], mentioning: ["x8.npy", "integers"])
    }

    @Test(".npy shapes whose size overflows are one error line, not a crash",
          arguments: [[1 << 62, 4, 1, 3], [1, 1 << 62, 4, 3], [(1 << 52) + 1, 96, 96, 3]])
    func overflowingShapes(shape: [Int]) throws {
        let file = try writeNpy("huge.npy", dtype: "<f4", shape: shape, payload: Data(repeating: 0, count: 64))
        try expectError(["features", "--model", model, "--input", file, "-o", path("out.npy")], mentioning: ["huge.npy"])
    }

    @Test("an explicit --class-index that is missing, malformed or of the wrong size is an error")
    func classIndexErrors() throws {
        try Data("not json".utf8).write(to: folder.appendingPathComponent("bad.json"))
        try Data(#"{"0": ["a", "apple"], "1": ["b", "bicycle"]}"#.utf8).write(to: folder.appendingPathComponent("two.json"))
        let image = try cli.images()[0]
        try expectError(["predict", "--model", model, "--class-index", path("missing.json"), image], mentioning: ["missing.json"])
        try expectError(["predict", "--model", model, "--class-index", path("bad.json"), image], mentioning: ["bad.json"])
        try expectError(["predict", "--model", model, "--class-index", path("two.json"), image],
                        mentioning: ["two.json", "2 classes", "10 outputs"])
    }

    @Test("the files list always describes the output beside it")
    func filesListNeverLies() throws {
        let images = try cli.images()
        let npy = path("out.npy"), csv = path("out.csv")
        #expect(try cli.run(["features", "--model", model, "-o", npy] + images).status == 0)
        #expect(try cli.run(["features", "--model", model, "-o", csv, images[0]]).status == 0)
        // .npy and .csv keep separate lists.
        let npyList = try String(contentsOfFile: path("out.files.txt"), encoding: .utf8).split(separator: "\n")
        let csvList = try String(contentsOfFile: path("out.csv.files.txt"), encoding: .utf8).split(separator: "\n")
        #expect(npyList.count == images.count && csvList.map(String.init) == [images[0]])
        // A later --input run into the same output leaves no stale list.
        let input = fixtures.appendingPathComponent("tfhub/input_32.npy").path
        #expect(try cli.run(["features", "--model", model, "--input", input, "-o", npy]).status == 0)
        #expect(!FileManager.default.fileExists(atPath: path("out.files.txt")))
        // A run that fails leaves neither an output nor a list.
        let result = try cli.run(["features", "--model", model, "-o", path("never.npy"),
                                  fixtures.appendingPathComponent("imaging/images/not_an_image.jpg").path])
        #expect(result.status == 1)
        #expect(!FileManager.default.fileExists(atPath: path("never.npy")) && !FileManager.default.fileExists(atPath: path("never.files.txt")))
    }

    @Test("every unreadable image is named; --skip-bad leaves them out and the list shows the rows written")
    func unreadableImages() throws {
        let images = folder.appendingPathComponent("mixed")
        try FileManager.default.createDirectory(at: images, withIntermediateDirectories: true)
        let good = try cli.images().prefix(3).map { URL(fileURLWithPath: $0) }
        for (index, url) in good.enumerated() {
            try FileManager.default.copyItem(at: url, to: images.appendingPathComponent("good\(index).\(url.pathExtension)"))
        }
        try Data("not a jpeg".utf8).write(to: images.appendingPathComponent("bad1.jpg"))
        let truncated = try Data(contentsOf: good[0]).prefix(40)
        try truncated.write(to: images.appendingPathComponent("bad2.\(good[0].pathExtension)"))
        let failed = try cli.run(["features", "--model", model, "--batch", "2", images.path, "-o", path("mixed.npy")])
        #expect(failed.status == 1)
        #expect(failed.stderr.contains("bad1.jpg") && failed.stderr.contains("bad2.") && failed.stderr.contains("--skip-bad"), "\(failed.stderr)")
        #expect(!FileManager.default.fileExists(atPath: path("mixed.npy")))

        let skipped = try cli.run(["features", "--model", model, "--batch", "2", "--skip-bad", images.path, "-o", path("mixed.npy")])
        #expect(skipped.status == 0, "\(skipped.stderr)")
        #expect(skipped.stderr.contains("2 unreadable skipped"), "\(skipped.stderr)")
        let features = try NumPy.read(contentsOf: URL(fileURLWithPath: path("mixed.npy")))
        let listed = try String(contentsOfFile: path("mixed.files.txt"), encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(features.shape[0] == 3 && listed.count == 3 && listed.allSatisfy { $0.contains("/good") })
        // Rows equal a run over the good files alone.
        #expect(try cli.run(["features", "--model", model, "-o", path("good.npy")] + listed).status == 0)
        #expect(try NumPy.read(contentsOf: URL(fileURLWithPath: path("good.npy"))) == features)
    }

    @Test("the offline demo model runs features, predict and bench as the README shows")
    func demoTinyCNN() throws {
        let cache = folder.appendingPathComponent("cache").path
        let hub = EndToEndTests.root.appendingPathComponent("scripts/demo_hub").path
        let common = ["--cache-dir", cache, "--manifests", hub]
        let image = try cli.images()[0]
        let features = try cli.run(["features", "--model", "demo:tiny_cnn"] + common + [image, "-o", path("tiny.npy")])
        #expect(features.status == 0, "\(features.stderr)")
        #expect(try NumPy.read(contentsOf: URL(fileURLWithPath: path("tiny.npy"))).shape == [1, 8])
        let predict = try cli.run(["predict", "--model", "demo:tiny_cnn:top", "--top", "1"] + common + [image])
        #expect(predict.status == 0, "\(predict.stderr)")
        #expect(["cat", "dog", "bird", "fish"].contains { predict.stdout.contains($0) }, "\(predict.stdout)")
        #expect(predict.stderr.contains("input 32x32"), "\(predict.stderr)")
        let bench = try cli.run(["bench", "--model", "demo:tiny_cnn", "--iterations", "1"] + common)
        #expect(bench.status == 0, "\(bench.stderr)")
    }
}
