import Foundation
import Testing
import TLFormats
@testable import TLPipeline

/// The remembered SHA-256 of a base file: used while the file is unchanged, recomputed after any write.
@Suite("SHA-256 of weight files, remembered in the cache")
struct FileHashCacheTests {
    @Test("the remembered hash is used for an unchanged file and dropped after a write")
    func rememberedUntilWritten() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("hash-cache-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("base.h5")
        try Data(repeating: 7, count: 1000).write(to: file)
        let cache = FileHashCache(directory: folder.appendingPathComponent("hashes"))
        var computed = 0
        func hash() throws -> String {
            try cache.sha256(of: file) { computed += 1; return try SafeTensorsConversion.sha256(of: $0) }
        }
        let first = try hash(), direct = try SafeTensorsConversion.sha256(of: file)
        #expect(first == direct && computed == 1)
        let again = try hash()
        #expect(again == first && computed == 1, "an unchanged file is hashed again")

        // The same size, rewritten in place: its change time moves, so the record no longer matches.
        let handle = try FileHandle(forWritingTo: file)
        try handle.write(contentsOf: Data([8]))
        try handle.close()
        let second = try hash(), rewritten = try SafeTensorsConversion.sha256(of: file)
        #expect(computed == 2 && second != first && second == rewritten)
        let third = try hash()
        #expect(third == second && computed == 2)
    }

    @Test("a file that passed the HDF5 crash probe skips it until the file changes; the hash is kept alongside")
    func probeRemembered() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("probe-memo-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("base.keras")
        try Data(repeating: 3, count: 500).write(to: file)
        let facts = FileHashCache(directory: folder.appendingPathComponent("hashes"))
        #expect(!facts.passedProbe(file))
        var computed = 0
        let hash = try facts.sha256(of: file) { computed += 1; return try SafeTensorsConversion.sha256(of: $0) }
        facts.rememberProbePassed(file)
        #expect(facts.passedProbe(file))
        let again = try facts.sha256(of: file) { computed += 1; return try SafeTensorsConversion.sha256(of: $0) }
        #expect(again == hash && computed == 1, "remembering the probe dropped the hash")
        let handle = try FileHandle(forWritingTo: file)
        try handle.write(contentsOf: Data([9]))
        try handle.close()
        #expect(!facts.passedProbe(file), "a rewritten file still counts as probed")
    }
}
