import Foundation
import Testing

/// A real Slurm job array (`scripts/slurm/local-cluster.sh start`, which `.ci/run` does in CI):
/// four array tasks run `tlhub features --shard auto`, one is killed mid-run and resubmitted,
/// and the merged output equals a single-machine run bit for bit. Skipped, with a message, where
/// no Slurm cluster answers.
@Suite("Slurm job arrays")
struct SlurmIntegrationTests {
    static var slurmAnswers: Bool {
        guard ProcessInfo.processInfo.environment["SLURM_CONF"] != nil || FileManager.default.fileExists(atPath: "/etc/slurm/slurm.conf") else {
            return false
        }
        return (try? shell("sinfo -h -o %T"))?.output.contains(where: \.isLetter) == true
    }

    @discardableResult
    static func shell(_ command: String) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-c", command]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test("sbatch --array=0-3 with --shard auto, a killed task resubmitted, merged bit for bit",
          .enabled(if: SlurmIntegrationTests.slurmAnswers, "no Slurm cluster answers (run scripts/slurm/local-cluster.sh start)"))
    func jobArray() throws {
        let cli = EndToEndTests()
        let tlhub = try EndToEndTests.binary().path
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("tlhub-slurm-\(UUID().uuidString)")
        let images = work.appendingPathComponent("images")
        try FileManager.default.createDirectory(at: images, withIntermediateDirectories: true)
        // 12 images (copies of the fixtures under new names), so each task has three.
        for copy in 0..<3 {
            for image in try cli.images() {
                let url = URL(fileURLWithPath: image)
                try FileManager.default.copyItem(at: url, to: images.appendingPathComponent("\(copy)-\(url.lastPathComponent)"))
            }
        }
        let parts = work.appendingPathComponent("parts").path
        // auto/4: the task id is the shard, so resubmitting one task keeps its share.
        let features = "'\(tlhub)' features --model '\(cli.model)' '\(images.path)' --shard auto/4 -o '\(parts)'"
        // Task 2 is killed (SIGKILL) mid-run on its first attempt: at 2048 px it is still
        // computing after a second. The marker lets the resubmitted task run normally.
        let script = """
        #!/bin/bash
        export TLHUB_OFFLINE=1
        if [ "$SLURM_ARRAY_TASK_ID" = 2 ] && [ ! -e '\(work.path)/killed' ]; then
            touch '\(work.path)/killed'
            timeout -s KILL 1 \(features) --size 2048
            exit 1
        fi
        \(features)
        """
        try Data(script.utf8).write(to: work.appendingPathComponent("task.sh"))
        let first = try Self.shell("cd '\(work.path)' && sbatch --array=0-3 --cpus-per-task=1 --wait --output='\(work.path)/task-%a.log' task.sh")
        #expect(first.status != 0, "the killed task fails the array: \(first.output)")
        #expect(!FileManager.default.fileExists(atPath: parts + "/part-2-of-4.json"), "a killed task leaves no finished record")
        let incomplete = try cli.run(["features", "merge", parts, "-o", work.appendingPathComponent("x.npy").path])
        #expect(incomplete.status == 1 && incomplete.stderr.contains("part-2-of-4"), "\(incomplete.stderr)")
        // Resubmit only the failed task (the others would be no-ops anyway).
        let rerun = try Self.shell("cd '\(work.path)' && sbatch --array=2 --wait --output='\(work.path)/rerun-%a.log' task.sh")
        #expect(rerun.status == 0, "\(rerun.output)")
        let merged = work.appendingPathComponent("merged.npy")
        let merge = try cli.run(["features", "merge", parts, "-o", merged.path])
        #expect(merge.status == 0, "\(merge.stderr)")
        let single = work.appendingPathComponent("single.npy")
        #expect(try cli.run(["features", "--model", cli.model, images.path, "-o", single.path]).status == 0)
        #expect(try Data(contentsOf: merged) == Data(contentsOf: single))
        #expect(try Data(contentsOf: work.appendingPathComponent("merged.files.txt")) == Data(contentsOf: work.appendingPathComponent("single.files.txt")))
    }
}
