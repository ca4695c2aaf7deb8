import Foundation
import TLTensor

/// What happens to half-written outputs when a command is stopped.
enum Interruption {
    /// On SIGINT/SIGTERM, removes the temporaries of atomic writes in flight and exits with
    /// 128 + the signal, so ^C never leaves a `.out.safetensors.<pid>-<n>.tmp` behind.
    static func removeTemporariesOnSignal() {
        AtomicFile.prepareForSignals()
        let handler: @convention(c) (Int32) -> Void = { number in
            AtomicFile.removeRegisteredTemporaries()
            _exit(128 + number)
        }
        signal(SIGINT, handler)
        signal(SIGTERM, handler)
    }

    /// Removes temporaries that killed runs (SIGKILL, power loss) left in `output`'s folder,
    /// with one note on stderr.
    static func sweepStaleTemporaries(beside output: URL) {
        let removed = AtomicFile.removeStaleTemporaries(in: output.deletingLastPathComponent())
        guard !removed.isEmpty else { return }
        let names = removed.map(\.lastPathComponent).joined(separator: ", ")
        FileHandle.standardError.write(Data("note: removed \(removed.count) temporary file(s) left by an interrupted run: \(names)\n".utf8))
    }
}
