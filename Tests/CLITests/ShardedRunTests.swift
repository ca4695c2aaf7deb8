import Foundation
import Testing
import TLTensor

@Suite("tlhub features --shard and features merge")
struct ShardedRunTests {
    let cli = EndToEndTests()
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tlhub-shards-\(UUID().uuidString)")

    func features(_ extra: [String], environment: [String: String] = [:]) throws -> (status: Int32, stdout: String, stderr: String) {
        try cli.run(["features", "--model", cli.model] + cli.images() + extra, environment: environment)
    }

    @Test("three shards merged equal one machine's run bit for bit; reruns, kills and missing parts behave")
    func shardsAndMerge() throws {
        let parts = folder.appendingPathComponent("parts").path
        for index in 0..<3 {
            let result = try features(["--shard", "auto", "-o", parts],
                                      environment: ["SLURM_ARRAY_TASK_ID": "\(index + 10)", "SLURM_ARRAY_TASK_MIN": "10", "SLURM_ARRAY_TASK_MAX": "12"])
            #expect(result.status == 0, "\(result.stderr)")
        }
        // A finished shard is not redone; --force redoes it.
        let again = try features(["--shard", "1/3", "-o", parts])
        #expect(again.status == 0 && again.stderr.contains("already complete"), "\(again.stderr)")
        let forced = try features(["--shard", "1/3", "--force", "-o", parts])
        #expect(forced.status == 0 && !forced.stderr.contains("already complete"))

        let single = folder.appendingPathComponent("single.npy")
        #expect(try features(["-o", single.path]).status == 0)
        let merged = folder.appendingPathComponent("merged.npy")
        let merge = try cli.run(["features", "merge", parts, "-o", merged.path])
        #expect(merge.status == 0, "\(merge.stderr)")
        #expect(try Data(contentsOf: merged) == Data(contentsOf: single))
        #expect(try Data(contentsOf: folder.appendingPathComponent("merged.files.txt")) == Data(contentsOf: folder.appendingPathComponent("single.files.txt")))

        // A task killed before it finished leaves no record: merge names the part to rerun.
        try FileManager.default.removeItem(atPath: parts + "/part-2-of-3.json")
        let broken = try cli.run(["features", "merge", parts, "-o", folder.appendingPathComponent("x.npy").path])
        #expect(broken.status == 1 && broken.stderr.contains("part-2-of-3"), "\(broken.stderr)")
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("x.npy").path))
        // Rerunning it completes the set again.
        #expect(try features(["--shard", "2/3", "-o", parts]).status == 0)
        #expect(try cli.run(["features", "merge", parts, "-o", merged.path]).status == 0)
        #expect(try Data(contentsOf: merged) == Data(contentsOf: single))

        // A part from another run (other pooling) is refused.
        #expect(try features(["--shard", "0/3", "--force", "--pooling", "max", "-o", parts]).status == 0)
        let mixed = try cli.run(["features", "merge", parts, "-o", merged.path])
        #expect(mixed.status == 1 && mixed.stderr.contains("another run"), "\(mixed.stderr)")
    }

    @Test("--shard auto outside a job array is one clear error")
    func autoOutsideAnArray() throws {
        let result = try features(["--shard", "auto", "-o", folder.path])
        #expect(result.status == 1 && result.stderr.contains("not in a Slurm job array"), "\(result.stderr)")
    }
}
