import Foundation
import Testing
import TLPipeline

@Suite("Shards of a cluster job array")
struct ShardTests {
    @Test("K/N and auto (Slurm COUNT or MIN/MAX, Kubernetes JOB_COMPLETION_INDEX) parse; nonsense is refused")
    func parsing() throws {
        #expect(try Shard.parse("2/5", environment: [:]) == Shard(index: 2, count: 5))
        #expect(try Shard.parse("auto", environment: ["SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "4"]) == Shard(index: 3, count: 4))
        #expect(try Shard.parse("auto", environment: ["SLURM_ARRAY_TASK_ID": "12", "SLURM_ARRAY_TASK_MIN": "10",
                                                      "SLURM_ARRAY_TASK_MAX": "13"]) == Shard(index: 2, count: 4))
        #expect(try Shard.parse("auto/8", environment: ["JOB_COMPLETION_INDEX": "7"]) == Shard(index: 7, count: 8))
        #expect(try Shard.parse("auto", environment: ["JOB_COMPLETION_INDEX": "1", "TLHUB_SHARD_COUNT": "3"]) == Shard(index: 1, count: 3))
        // A resubmitted single task (`sbatch --array=2`): Slurm says COUNT=1, auto/N keeps shard 2 of 4.
        let rerun = ["SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "1", "SLURM_ARRAY_TASK_MIN": "2", "SLURM_ARRAY_TASK_MAX": "2"]
        #expect(try Shard.parse("auto/4", environment: rerun) == Shard(index: 2, count: 4))
        for (text, environment) in [("auto", [String: String]()), ("5/5", [:]), ("-1/3", [:]), ("2", [:]), ("a/b", [:]),
                                    ("auto", ["JOB_COMPLETION_INDEX": "1"]), ("auto", ["SLURM_ARRAY_TASK_ID": "1"]),
                                    ("auto/x", ["SLURM_ARRAY_TASK_ID": "1"]), ("auto/4", ["SLURM_ARRAY_TASK_ID": "4"])] {
            #expect(throws: PipelineError.self, "\(text) \(environment)") { try Shard.parse(text, environment: environment) }
        }
    }

    @Test("shards cover every input exactly once, contiguous and balanced", arguments: [(10, 3), (3, 5), (64, 64), (1000, 7)])
    func ranges(total: Int, count: Int) throws {
        let ranges = try (0..<count).map { try Shard(index: $0, count: count).range(of: total) }
        #expect(ranges.first?.lowerBound == 0 && ranges.last?.upperBound == total)
        #expect(zip(ranges, ranges.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound })
        let sizes = ranges.map(\.count)
        #expect((sizes.max() ?? 0) - (sizes.min() ?? 0) <= 1)
    }
}
