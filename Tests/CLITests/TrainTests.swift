import Foundation
import Testing
import TLTensor

/// `tlhub train` on the finetune fixture photos, against Keras 3 `fit` on
/// `flow_from_directory(shuffle=False)` batches (`make_network_training_fixtures.py`).
@Suite("tlhub train")
struct TrainTests {
    let cli = EndToEndTests()
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tlhub-train-\(UUID().uuidString)")
    var photos: URL { cli.fixtures.appendingPathComponent("finetune/photos") }
    var network: URL { cli.fixtures.appendingPathComponent("network-training") }
    var cache: [String] { ["--cache-dir", folder.appendingPathComponent("cache").path] }

    @Test("continuing a saved Keras model: every weight after two epochs equals Keras fit's, the folder predicts")
    func continuesLikeKeras() throws {
        let output = folder.appendingPathComponent("continued")
        let train = try cli.run(["train", "--model", network.appendingPathComponent("photos_cnn.keras").path,
                                 "--data", photos.appendingPathComponent("train").path, "--no-shuffle", "--batch", "8",
                                 "--epochs", "2", "--optimizer", "sgd", "--lr", "0.001", "--momentum", "0.9", "-o", output.path] + cache)
        #expect(train.status == 0, "\(train.stderr)")
        #expect(train.stdout.contains("Epoch 1/2") && train.stdout.contains("loss: 1.6294"), "\(train.stdout)")
        let converted = folder.appendingPathComponent("trained.safetensors")
        let convert = try cli.run(["convert", output.appendingPathComponent("model.h5").path, "-o", converted.path])
        #expect(convert.status == 0, "\(convert.stderr)")
        let ours = try SafeTensorsFile(contentsOf: converted)
        let keras = try SafeTensorsFile(contentsOf: network.appendingPathComponent("photos_cnn_final.safetensors"))
        for entry in keras.entries {
            let want = keras.tensor(entry)
            let got = try ours.tensor(named: entry.name)
            #expect(got.maxAbsoluteDifference(want) <= 1e-4 * max(1, want.maxAbsolute), "\(entry.name)")
        }
        let predict = try cli.run(["predict", "--model", output.path, "--top", "1", photos.appendingPathComponent("validation/dog").path] + cache)
        #expect(predict.status == 0 && predict.stdout.split(separator: "\n").count == 4, "\(predict.stderr)")
        #expect(predict.stderr.contains("input 48x48"), "\(predict.stderr)")
    }

    @Test("a model.to_json() config starts from seeded initializers; alexnet builds for the folder's classes")
    func freshModels() throws {
        let arguments = ["--data", photos.appendingPathComponent("train").path, "--val", photos.appendingPathComponent("validation").path,
                         "--epochs", "1", "--batch", "8"] + cache
        let first = try cli.run(["train", "--model", network.appendingPathComponent("photos_cnn.json").path, "--seed", "4",
                                 "-o", folder.appendingPathComponent("a").path] + arguments)
        let second = try cli.run(["train", "--model", network.appendingPathComponent("photos_cnn.json").path, "--seed", "4",
                                  "-o", folder.appendingPathComponent("b").path] + arguments)
        #expect(first.status == 0 && second.status == 0, "\(first.stderr)")
        #expect(first.stderr.contains("a config: Keras initializers, seeded"), "\(first.stderr)")
        // The same seed gives the same run (the epoch's seconds aside).
        func numbers(_ text: String) -> String { text.replacingOccurrences(of: #" - [0-9.]+s - "#, with: " - ", options: .regularExpression) }
        #expect(numbers(first.stdout) == numbers(second.stdout) && first.stdout.contains("loss:"), "\(first.stdout) \(second.stdout)")
        let alexnet = try cli.run(["train", "--model", "alexnet", "--size", "67", "--preprocess", "unit", "--augment", "flip,zoom=0.1",
                                   "-o", folder.appendingPathComponent("alexnet").path] + arguments)
        #expect(alexnet.status == 0, "\(alexnet.stderr)")
        #expect(alexnet.stderr.contains("augmenting the training images (flip,zoom=0.1)"), "\(alexnet.stderr)")
    }

    /// Runs `arguments` and interrupts it (SIGINT, as Ctrl-C or a scheduler's preemption) once its
    /// first backup is on disk; returns the exit status.
    func runInterrupted(_ arguments: [String], output: URL) throws -> Int32 {
        let process = Process()
        process.executableURL = try EndToEndTests.binary()
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(["TLHUB_OFFLINE": "1"]) { $1 }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let backup = output.appendingPathComponent("backup.safetensors")
        while process.isRunning && !FileManager.default.fileExists(atPath: backup.path) { usleep(1000) }
        process.interrupt()
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// The weights of a folder's model.h5, converted.
    func weights(of folder: URL) throws -> SafeTensorsFile {
        let converted = folder.appendingPathExtension("safetensors")
        let convert = try cli.run(["convert", folder.appendingPathComponent("model.h5").path, "-o", converted.path])
        #expect(convert.status == 0, "\(convert.stderr)")
        return try SafeTensorsFile(contentsOf: converted)
    }

    @Test("an interrupted run resumed with --resume DIR alone ends with the bits of an uninterrupted one (train and finetune)")
    func resumesExactly() throws {
        let data = ["--data", photos.appendingPathComponent("train").path, "--val", photos.appendingPathComponent("validation").path]
        // Shuffled, augmented, BatchNormalization statistics, Adam's moments, early stopping's best
        // weights (patience too long to stop), dropout in the finetune head.
        // Epochs enough that the run is still going when its first backup appears.
        let runs: [(arguments: [String], epochs: Int)] = [
            (["train", "--model", network.appendingPathComponent("photos_cnn.keras").path, "--augment", "flip", "--batch", "8",
             "--seed", "5", "--early-stopping", "val_loss:1000"], 60),
            (["finetune", "--model", network.appendingPathComponent("photos_cnn.keras").path, "--head", "dropout0.3,dense3",
             "--unfreeze", "2", "--preprocess", "unit", "--optimizer", "sgd", "--momentum", "0.9", "--lr", "0.01", "--batch", "8", "--seed", "2"], 400),
        ]
        for (index, (run, epochs)) in runs.enumerated() {
            let whole = folder.appendingPathComponent("whole\(index)"), resumed = folder.appendingPathComponent("resumed\(index)")
            let arguments = run + data + ["--epochs", "\(epochs)"] + cache
            let reference = try cli.run(arguments + ["-o", whole.path])
            #expect(reference.status == 0, "\(reference.stderr)")
            let status = try runInterrupted(arguments + ["--backup-every", "1", "-o", resumed.path], output: resumed)
            #expect(status != 0, "the run finished before it could be interrupted")
            // The backup, and at most a backup half-written when the signal came (its writer is gone).
            let contents = try FileManager.default.contentsOfDirectory(atPath: resumed.path)
            #expect(contents.filter { !AtomicFile.isTemporaryName($0) } == ["backup.safetensors"], "\(contents)")
            let resume = try cli.run([run[0], "--resume", resumed.path])
            #expect(resume.status == 0, "\(resume.stderr)")
            #expect(resume.stderr.contains("note: resuming \(resumed.path) after epoch "), "\(resume.stderr)")
            #expect(!FileManager.default.fileExists(atPath: resumed.appendingPathComponent("backup.safetensors").path))
            let left = try FileManager.default.contentsOfDirectory(atPath: resumed.path).filter(AtomicFile.isTemporaryName)
            #expect(left.isEmpty, "\(left)")
            // The same history (seconds aside) and the same weights, bit for bit.
            func history(_ folder: URL) throws -> [String] {
                try String(contentsOf: folder.appendingPathComponent("history.csv"), encoding: .utf8)
                    .split(separator: "\n").map { $0.split(separator: ",").dropLast().joined(separator: ",") }
            }
            #expect(try history(resumed) == history(whole) && history(whole).count == epochs + 1)
            let (ours, reference2) = (try weights(of: resumed), try weights(of: whole))
            #expect(!reference2.entries.isEmpty)
            for entry in reference2.entries {
                #expect(try ours.tensor(named: entry.name).scalars == reference2.tensor(entry).scalars, "\(run[0]) \(entry.name)")
            }
        }
        // Nothing to resume: one line, naming the folder.
        let finished = try cli.run(["train", "--resume", folder.appendingPathComponent("whole0").path])
        #expect(finished.status != 0 && finished.stderr.contains("no backup.safetensors to resume from"), "\(finished.stderr)")
        #expect(finished.stderr.split(separator: "\n").count == 1, "\(finished.stderr)")
        let other = try cli.run(["finetune", "--resume", folder.appendingPathComponent("nosuch").path])
        #expect(other.status != 0 && other.stderr.contains("nosuch: no backup.safetensors"), "\(other.stderr)")
    }

    @Test("bad input: one clear line, nothing written")
    func badInput() throws {
        let base = ["--data", photos.appendingPathComponent("train").path, "--epochs", "1"] + cache
        let cases: [([String], String)] = [
            (["--model", cli.model], "holds weights without a model config"),
            (["--model", network.appendingPathComponent("photos_cnn.keras").path, "--freeze", "conv,nosuch"], "no layer 'nosuch'"),
            (["--model", network.appendingPathComponent("convnet.keras").path, "--size", "48"], "takes 12x12 images"),
            (["--model", "nosuch.h5"], "no such file"),
            (["--model", "alexnet", "--augment", "spin"], "'spin' is not one of"),
        ]
        for (index, (arguments, message)) in cases.enumerated() {
            let output = folder.appendingPathComponent("bad\(index)")
            let result = try cli.run(["train"] + arguments + base + ["-o", output.path])
            #expect(result.status != 0 && result.stderr.contains(message), "\(arguments): \(result.stderr)")
            #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
            #expect(!FileManager.default.fileExists(atPath: output.path))
        }
    }
}
