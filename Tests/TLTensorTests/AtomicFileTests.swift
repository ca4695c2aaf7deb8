import Foundation
import Testing
import TLTensor

@Suite("Atomic writes leave nothing half-written")
struct AtomicFileTests {
    let directory: URL = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tlhub-atomic-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }()

    func names() -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).sorted() }

    @Test("a temporary is registered while it is written, so a signal handler can remove it")
    func registeredTemporaryIsRemovable() throws {
        let target = directory.appendingPathComponent("out.bin")
        AtomicFile.prepareForSignals()
        #expect(throws: (any Error).self) {
            try AtomicFile.write(to: target) { handle, temporary in
                try handle.write(contentsOf: Data(repeating: 1, count: 1000))
                #expect(FileManager.default.fileExists(atPath: temporary.path))
                #expect(temporary.lastPathComponent.hasPrefix(".out.bin.\(getpid())-"))
                // What the SIGINT/SIGTERM handler does (here only for this test's folder: other
                // tests write in parallel in this process).
                AtomicFile.removeRegisteredTemporaries(under: directory)
                #expect(!FileManager.default.fileExists(atPath: temporary.path))
            }
        }
        #expect(names().isEmpty)
    }

    @Test("files written together: all appear, or none when one fails")
    func together() throws {
        let list = directory.appendingPathComponent("out.files.txt"), data = directory.appendingPathComponent("out.npy")
        try AtomicFile.write([(list, Data("a\n".utf8)), (data, Data([1, 2, 3]))])
        #expect(names() == ["out.files.txt", "out.npy"])
        let missingFolder = directory.appendingPathComponent("no-such-folder/out.npy")
        #expect(throws: TensorFileError.self) {
            try AtomicFile.write([(directory.appendingPathComponent("other.files.txt"), Data("b\n".utf8)), (missingFolder, Data([1]))])
        }
        #expect(names() == ["out.files.txt", "out.npy"])
    }

    @Test("temporaries of a process that is gone are swept; a live writer's are kept")
    func staleTemporaries() throws {
        let finished = Process()
        finished.executableURL = URL(fileURLWithPath: "/bin/true")
        try finished.run()
        finished.waitUntilExit()
        let stale = ".model.safetensors.\(finished.processIdentifier)-123.tmp"
        let live = ".model.safetensors.\(getpid())-456.tmp"
        for name in [stale, live, "model.safetensors", ".hidden-config"] {
            try Data([0]).write(to: directory.appendingPathComponent(name))
        }
        let removed = AtomicFile.removeStaleTemporaries(in: directory)
        #expect(removed.map(\.lastPathComponent) == [stale])
        #expect(names() == [".hidden-config", live, "model.safetensors"].sorted())
    }
}
