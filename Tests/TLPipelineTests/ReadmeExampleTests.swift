import Foundation
import Testing
import TLEngine
import TLHubClient
import TLImaging
import TLPipeline
import TLTensor

/// The README's library example, run against the bundled demo hub (no network).
@Suite("TLPipeline as the README shows it")
struct ReadmeExampleTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    @Test("pull a model by name and print the top-5 classes of a JPEG, with Keras's scores")
    func topFive() async throws {
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("tlhub-readme-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: cache) }
        let jpeg = Self.root.appendingPathComponent("Tests/Fixtures/imaging/images/rgb.jpg")

        // --- the README example, with the demo hub in place of the real one ---
        let hub = try Hub(cacheDirectory: cache, manifestDirectories: [Self.root.appendingPathComponent("scripts/demo_hub")],
                          environment: [:])
        let loaded = try await ModelResolver(hub: hub).load("demo:mobilenet_v2_035_96:top")
        let (size, _) = try loaded.imageSize()
        let batch = try ImageLoader(size: size).batch(files: [jpeg], preprocessing: try loaded.preprocessing())
        let scores = try loaded.model.predict(input: batch)
        let names = try await loaded.classNames(hub: hub)
        let top5 = Predictions.top(5, of: scores.scalars, rows: 1, names: names)[0]
        for guess in top5 { print(guess.text) }
        // ---

        #expect(size == ImageSize(height: 96, width: 96))
        #expect(top5.count == 5 && top5.allSatisfy { $0.name != nil })
        #expect(zip(top5, top5.dropFirst()).allSatisfy { $0.score >= $1.score })
        // rgb.jpg is the first row of the CLI goldens (Keras load_img → preprocess_input → model).
        let golden = try NumPy.read(contentsOf: Self.root.appendingPathComponent("Tests/Fixtures/cli/demo_predictions.npy"))
        let first = Array(golden.scalars.prefix(golden.shape[1]))
        #expect(zip(scores.scalars, first).allSatisfy { abs($0 - $1) <= 1e-4 })
        #expect(top5[0].id == first.indices.max { first[$0] < first[$1] })
    }

    @Test("a batch run streams a folder, lists every unreadable file, and decodes like Keras")
    func batchRun() async throws {
        let model = Self.root.appendingPathComponent("scripts/demo_hub/files/mobilenet_v2_demo_0.35_96.h5").path
        let hub = try Hub(cacheDirectory: FileManager.default.temporaryDirectory, environment: [:])
        let loaded = try await ModelResolver(hub: hub).load(model)
        let images = ["rgb.jpg", "progressive.jpg", "large.png", "palette.png"]
            .map { Self.root.appendingPathComponent("Tests/Fixtures/imaging/images/\($0)").path }
        var reported: [Int] = []
        let result = try BatchInference(inputs: .images(images), batchSize: 3).run(loaded, progress: { done, _, _ in
            reported.append(done)
        }) { try loaded.model.predict(input: $0) }
        #expect(reported == [3, 4])
        #expect(result.sizeNote == "96x96 (the file name)")
        let golden = try NumPy.read(contentsOf: Self.root.appendingPathComponent("Tests/Fixtures/cli/demo_predictions.npy"))
        #expect(result.output.maxAbsoluteDifference(golden) <= 1e-4)

        let bad = Self.root.appendingPathComponent("Tests/Fixtures/imaging/images/not_an_image.jpg").path
        #expect {
            _ = try BatchInference(inputs: .images(images + [bad, bad])).run(loaded) { try loaded.model.predict(input: $0) }
        } throws: { error in
            "\(error)".contains("2 of 6 images cannot be read") && "\(error)".contains("not_an_image.jpg")
        }
    }

    @Test("a run of one image skips the AMX check (its second pass would not pay); a run of two takes it",
          .enabled(if: Conv2D.amxUse == .whereAccurate))
    func amxCheckPerRun() async throws {
        let model = Self.root.appendingPathComponent("scripts/demo_hub/files/mobilenet_v2_demo_0.35_96.h5").path
        let hub = try Hub(cacheDirectory: FileManager.default.temporaryDirectory, environment: [:])
        let loaded = try await ModelResolver(hub: hub).load(model)
        let images = ["rgb.jpg", "progressive.jpg"].map { Self.root.appendingPathComponent("Tests/Fixtures/imaging/images/\($0)").path }
        let one = try BatchInference(inputs: .images([images[0]])).run(loaded) { try loaded.model.features(input: $0) }
        #expect(loaded.model.lastAMXCheck == nil && loaded.model.checksAMX)
        let two = try BatchInference(inputs: .images(images)).run(loaded) { try loaded.model.features(input: $0) }
        #expect(loaded.model.lastAMXCheck != nil)
        #expect(one.output.maxAbsoluteDifference(Tensor(shape: one.output.shape, scalars: Array(two.output.scalars.prefix(one.output.count))))
                <= 1e-4 * max(1, one.output.maxAbsolute))
    }
}
