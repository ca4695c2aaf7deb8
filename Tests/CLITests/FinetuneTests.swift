import Foundation
import Testing
import TLImaging
import TLTensor

/// `tlhub finetune` → `predict` / `evaluate` on the tiny photo folder of
/// `make_finetune_fixtures.py`, with the demo hub's tiny_cnn (no top) as the frozen base.
@Suite("tlhub finetune")
struct FinetuneTests {
    let cli = EndToEndTests()
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tlhub-finetune-\(UUID().uuidString)")
    var photos: URL { cli.fixtures.appendingPathComponent("finetune/photos") }
    var hub: [String] { ["--cache-dir", folder.appendingPathComponent("cache").path,
                         "--manifests", EndToEndTests.root.appendingPathComponent("scripts/demo_hub").path] }

    func finetune(_ extra: [String], output: String = "model") throws -> (status: Int32, stdout: String, stderr: String) {
        try cli.run(["finetune", "--model", "demo:tiny_cnn", "--data", photos.appendingPathComponent("train").path,
                     "--val", photos.appendingPathComponent("validation").path, "--head", "dense3",
                     "-o", folder.appendingPathComponent(output).path] + hub + extra)
    }

    @Test("trains with Keras-style epoch lines, writes the model folder, and predict/evaluate use it")
    func endToEnd() throws {
        let result = try finetune(["--epochs", "15", "--lr", "0.05", "--seed", "3"])
        #expect(result.status == 0, "\(result.stderr)")
        let epochLines = result.stdout.split(separator: "\n").filter { $0.hasPrefix("Epoch ") }
        #expect(epochLines.count == 15 && epochLines.last?.contains("val_accuracy:") == true, "\(result.stdout)")
        let model = folder.appendingPathComponent("model")
        for name in ["model.json", "head.safetensors", "classes.json", "history.csv"] {
            #expect(FileManager.default.fileExists(atPath: model.appendingPathComponent(name).path), "\(name)")
        }
        // curves.png: a real PNG, drawn (not blank).
        let curves = try ImageDecoder().decode(contentsOf: model.appendingPathComponent("curves.png"))
        #expect(curves.width == 1000 && curves.height == 420)
        #expect(Set(curves.pixels.prefix(200_000)).count > 10, "the plot has lines and text, not one colour")
        for run in ["train", "validation"] {
            let events = try FileManager.default.contentsOfDirectory(atPath: model.appendingPathComponent("logs/\(run)").path)
            #expect(events.count == 1 && events[0].hasPrefix("events.out.tfevents."), "\(run): \(events)")
        }
        let history = try String(contentsOf: model.appendingPathComponent("history.csv"), encoding: .utf8).split(separator: "\n")
        #expect(history.count == 16 && history[0] == "epoch,loss,accuracy,val_loss,val_accuracy,lr,seconds")
        #expect(try JSONDecoder().decode([String].self, from: Data(contentsOf: model.appendingPathComponent("classes.json"))) == ["cat", "dog", "fish"])

        // evaluate on the validation folder reports what training's last epoch did.
        let confusionPNG = folder.appendingPathComponent("confusion.png")
        let evaluation = try cli.run(["evaluate", "--model", model.path, "--data", photos.appendingPathComponent("validation").path, "--json",
                                      "-o", confusionPNG.path] + hub)
        #expect(evaluation.status == 0, "\(evaluation.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(evaluation.stdout.utf8)) as? [String: Any])
        let lastFields = history[15].split(separator: ",", omittingEmptySubsequences: false)
        let validationLoss = try #require(Double(lastFields[3])), validationAccuracy = try #require(Double(lastFields[4]))
        #expect(abs((report["loss"] as? Double ?? -1) - validationLoss) < 1e-4)
        #expect(abs((report["accuracy"] as? Double ?? -1) - validationAccuracy) < 1e-6)
        #expect((report["confusion_matrix"] as? [[Int]])?.flatMap { $0 }.reduce(0, +) == 12)
        let confusionImage = try ImageDecoder().decode(contentsOf: confusionPNG)
        #expect(confusionImage.width == confusionImage.height && confusionImage.width > 200)

        // evaluate as two array tasks, then merge: the same report.
        for index in 0..<2 {
            let part = try cli.run(["evaluate", "--model", model.path, "--data", photos.appendingPathComponent("validation").path,
                                    "--shard", "\(index)/2", "--parts", folder.appendingPathComponent("scores").path] + hub)
            #expect(part.status == 0, "\(part.stderr)")
        }
        let merged = try cli.run(["evaluate", "merge", folder.appendingPathComponent("scores").path, "--model", model.path,
                                  "--data", photos.appendingPathComponent("validation").path, "--json"] + hub)
        #expect(merged.status == 0 && merged.stdout == evaluation.stdout, "\(merged.stderr)")

        // predict names the folder's classes.
        let predict = try cli.run(["predict", "--model", model.path, "--top", "1",
                                   photos.appendingPathComponent("validation/fish").path] + hub)
        #expect(predict.status == 0, "\(predict.stderr)")
        #expect(predict.stdout.split(separator: "\n").count == 4)
        #expect(["cat", "dog", "fish"].contains { predict.stdout.contains("\($0) (") }, "\(predict.stdout)")
    }

    @Test("the second run reuses every cached feature; a changed image is recomputed")
    func featureCache() throws {
        let first = try finetune(["--epochs", "1"])
        #expect(first.status == 0 && first.stderr.contains("(0 cached, 36 computed)"), "\(first.stderr)")
        let second = try finetune(["--epochs", "1", "--head", "gap,dense3"], output: "other")
        #expect(second.status == 0 && second.stderr.contains("(36 cached, 0 computed)"), "\(second.stderr)")
        // The same files under another path with one image changed: only that one is computed.
        let copy = folder.appendingPathComponent("photos")
        try FileManager.default.copyItem(at: photos, to: copy)
        let changed = copy.appendingPathComponent("train/cat/01.jpg")
        try FileManager.default.removeItem(at: changed)
        try FileManager.default.copyItem(at: cli.fixtures.appendingPathComponent("imaging/images/rgb.jpg"), to: changed)
        let third = try cli.run(["finetune", "--model", "demo:tiny_cnn", "--data", copy.appendingPathComponent("train").path,
                                 "--head", "dense3", "--epochs", "1", "-o", folder.appendingPathComponent("third").path] + hub)
        #expect(third.status == 0 && third.stderr.contains("(23 cached, 1 computed)"), "\(third.stderr)")
        // cache ls shows the feature cache; prune --features drops it, and the next run recomputes.
        let listing = try cli.run(["cache", "ls"] + hub)
        #expect(listing.stdout.contains("1 feature caches (finetune)"), "\(listing.stdout)")
        #expect(try cli.run(["cache", "prune", "--features"] + hub).status == 0)
        let fourth = try finetune(["--epochs", "1"], output: "fourth")
        #expect(fourth.stderr.contains("(0 cached, 36 computed)"), "\(fourth.stderr)")
    }

    @Test("the same seed gives the same head, bit for bit")
    func deterministic() throws {
        #expect(try finetune(["--epochs", "3", "--seed", "9", "--optimizer", "sgd", "--momentum", "0.9"], output: "a").status == 0)
        #expect(try finetune(["--epochs", "3", "--seed", "9", "--optimizer", "sgd", "--momentum", "0.9"], output: "b").status == 0)
        let a = try Data(contentsOf: folder.appendingPathComponent("a/head.safetensors"))
        let b = try Data(contentsOf: folder.appendingPathComponent("b/head.safetensors"))
        #expect(a == b)
    }

    @Test("bad folders and heads are one error line before any work, and leave no model folder")
    func badInputs() throws {
        let fixtures = cli.fixtures.appendingPathComponent("finetune")
        let cases: [([String], String)] = [
            (["--data", fixtures.appendingPathComponent("one_class").path], "only one class folder"),
            (["--data", folder.path + "/missing"], "missing"),
            (["--data", photos.appendingPathComponent("train").path, "--head", "dense2"], "2 outputs but"),
            (["--data", photos.appendingPathComponent("train").path, "--head", "dense3-relu"], "softmax or sigmoid"),
        ]
        for (arguments, fragment) in cases {
            let result = try cli.run(["finetune", "--model", "demo:tiny_cnn", "--head", "dense3", "-o", folder.appendingPathComponent("bad").path]
                                     + hub + arguments)
            #expect(result.status != 0, "\(arguments)")
            #expect(result.stderr.contains(fragment), "\(arguments): \(result.stderr)")
            #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("bad").path))
        }
        // An unreadable image is listed and skipped, not fatal.
        let broken = try cli.run(["finetune", "--model", "demo:tiny_cnn", "--data", fixtures.appendingPathComponent("broken").path,
                                  "--head", "dense2", "--epochs", "1", "-o", folder.appendingPathComponent("broken").path] + hub)
        #expect(broken.status == 0, "\(broken.stderr)")
        #expect(broken.stderr.contains("not_a_photo.jpg") && broken.stderr.contains("1 unreadable images skipped"), "\(broken.stderr)")
    }

    @Test("a native base (weights-only MobileNetV2 at its published 96 px) trains and predicts at that size")
    func nativeBase() throws {
        let output = folder.appendingPathComponent("native").path
        let train = try cli.run(["finetune", "--model", cli.model, "--data", photos.appendingPathComponent("train").path,
                                 "--head", "dense3", "--epochs", "2", "-o", output] + hub)
        #expect(train.status == 0, "\(train.stderr)")
        let predict = try cli.run(["predict", "--model", output, "--top", "1", photos.appendingPathComponent("validation/dog").path] + hub)
        #expect(predict.status == 0, "\(predict.stderr)")
        #expect(predict.stderr.contains("input 96x96 (the fine-tuned model)"), "\(predict.stderr)")
    }

    @Test("a base given by a relative path: the folder predicts from any directory")
    func relativeBasePath() throws {
        let work = folder.appendingPathComponent("relative")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: cli.model, toPath: work.appendingPathComponent("base.h5").path)
        let train = try cli.run(["finetune", "--model", "base.h5", "--data", photos.appendingPathComponent("train").path,
                                 "--head", "dense3", "--epochs", "1", "-o", "out"] + hub, in: work)
        #expect(train.status == 0, "\(train.stderr)")
        let predict = try cli.run(["predict", "--model", work.appendingPathComponent("out").path, "--top", "1",
                                   photos.appendingPathComponent("validation/dog").path] + hub, in: folder)
        #expect(predict.status == 0, "\(predict.stderr)")
    }

    @Test("model.h5 is a full Keras model (config + weights) that predicts what the folder predicts")
    func kerasModelFile() throws {
        let output = folder.appendingPathComponent("h5")
        let train = try cli.run(["finetune", "--model", cli.model, "--data", photos.appendingPathComponent("train").path,
                                 "--head", "dense16-relu,dropout0.2,dense3", "--epochs", "2", "-o", output.path] + hub)
        #expect(train.status == 0, "\(train.stderr)")
        let inspect = try cli.run(["inspect", output.appendingPathComponent("model.h5").path])
        #expect(inspect.stdout.contains("Keras HDF5 full model"), "\(inspect.stdout)")
        let images = photos.appendingPathComponent("validation/fish").path
        let fromFolder = try cli.run(["predict", "--model", output.path, "--top", "0", "-o", folder.appendingPathComponent("a.npy").path, images] + hub)
        // The .h5 alone: tlhub builds it from its model_config; same preprocessing and size.
        let fromFile = try cli.run(["predict", "--model", output.appendingPathComponent("model.h5").path, "--top", "0",
                                    "--preprocess", "tf", "--size", "96", "-o", folder.appendingPathComponent("b.npy").path, images] + hub)
        #expect(fromFolder.status == 0 && fromFile.status == 0, "\(fromFolder.stderr) \(fromFile.stderr)")
        let a = try NumPy.read(contentsOf: folder.appendingPathComponent("a.npy"))
        let b = try NumPy.read(contentsOf: folder.appendingPathComponent("b.npy"))
        #expect(a.shape == [4, 3] && a.maxAbsoluteDifference(b) <= 1e-5)
    }

    @Test("finetune --shard fills the feature cache share by share; the run after trains on it all")
    func shardedFeaturePass() throws {
        for index in 0..<2 {
            let part = try finetune(["--shard", "\(index)/2"], output: "sharded")
            #expect(part.status == 0 && part.stderr.contains("feature shard \(index)/2: 18 of 18"), "\(part.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("sharded").path), "a feature shard trains nothing")
        let train = try finetune(["--epochs", "1"], output: "sharded")
        #expect(train.status == 0 && train.stderr.contains("(36 cached, 0 computed)"), "\(train.stderr)")
    }

    @Test("--unfreeze trains the base's last layers too: the frozen prefix is cached, the folder and model.h5 carry the new base weights")
    func unfrozenBase() throws {
        let output = folder.appendingPathComponent("unfrozen")
        let arguments = ["finetune", "--model", cli.model, "--data", photos.appendingPathComponent("train").path,
                         "--val", photos.appendingPathComponent("validation").path, "--head", "dense3", "--epochs", "2",
                         "--optimizer", "sgd", "--lr", "0.05", "--momentum", "0.9"] + hub
        let train = try cli.run(arguments + ["--unfreeze", "10", "-o", output.path])
        #expect(train.status == 0, "\(train.stderr)")
        #expect(train.stderr.contains("training 10 base layers (block_16_depthwise … predictions)"), "\(train.stderr)")
        let description = try JSONSerialization.jsonObject(with: Data(contentsOf: output.appendingPathComponent("model.json"))) as? [String: Any]
        #expect((description?["trained_base_layers"] as? [String])?.count == 10)
        #expect(FileManager.default.fileExists(atPath: output.appendingPathComponent("base.safetensors").path))

        // The folder (pulled base + base.safetensors + head) and model.h5 (everything) agree.
        let images = photos.appendingPathComponent("validation/cat").path
        let fromFolder = try cli.run(["predict", "--model", output.path, "--top", "0", "-o", folder.appendingPathComponent("u1.npy").path, images] + hub)
        let fromFile = try cli.run(["predict", "--model", output.appendingPathComponent("model.h5").path, "--top", "0",
                                    "--preprocess", "tf", "--size", "96", "-o", folder.appendingPathComponent("u2.npy").path, images] + hub)
        #expect(fromFolder.status == 0 && fromFile.status == 0, "\(fromFolder.stderr) \(fromFile.stderr)")
        let a = try NumPy.read(contentsOf: folder.appendingPathComponent("u1.npy"))
        let b = try NumPy.read(contentsOf: folder.appendingPathComponent("u2.npy"))
        #expect(a.shape == [4, 3] && a.maxAbsoluteDifference(b) <= 1e-5)

        // Another learning rate reuses the cached prefix outputs.
        let again = try cli.run(arguments + ["--unfreeze", "10", "--lr", "0.01", "-o", folder.appendingPathComponent("again").path])
        #expect(again.status == 0 && again.stderr.contains("(36 cached, 0 computed)"), "\(again.stderr)")

        let unknown = try cli.run(arguments + ["--trainable-from", "block_99_project", "-o", folder.appendingPathComponent("bad").path])
        #expect(unknown.status != 0 && unknown.stderr.contains("no layer 'block_99_project'"), "\(unknown.stderr)")
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("bad").path))
        let both = try cli.run(arguments + ["--trainable-from", "Conv_1", "--unfreeze", "3", "-o", folder.appendingPathComponent("bad").path])
        #expect(both.status != 0 && both.stderr.contains("not both"), "\(both.stderr)")
    }
}
