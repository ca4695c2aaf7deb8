import Foundation
import TLPipeline
import TLTensor

/// The CLI's side of a batch run: a progress bar on a terminal, notes and the one-line summary
/// on stderr. The work itself is `TLPipeline.BatchInference`.
struct BatchRun {
    /// The command's name, for the summary (`features`, `predict`).
    var command: String
    var inference: BatchInference

    func run(_ loaded: LoadedModel, _ body: (Tensor) throws -> Tensor) throws -> BatchInference.Result {
        let bar = ProgressBar()
        defer { bar.finish() }
        let result = try inference.run(loaded, note: { printNote($0) }, progress: { bar.update(done: $0, total: $1, failed: $2) }, body)
        bar.finish()
        for skipped in result.skipped { printNote("skipped \(skipped.file.path): \(skipped.reason)") }
        return result
    }

    /// One summary line: `features: 2000 images in 41.3 s (48.4 img/s), input 224x224 (the hub entry) → out.npy`.
    func summary(_ result: BatchInference.Result, output: URL?) -> String {
        let rows = result.output.shape.first ?? 0
        let rate = result.seconds > 0 ? Double(rows) / result.seconds : 0
        var line = "\(command): \(rows) \(result.sizeNote == nil ? "rows" : "images")"
        if !result.skipped.isEmpty { line += " (\(result.skipped.count) unreadable skipped)" }
        line += String(format: " in %.2f s (%.1f img/s)", result.seconds, rate)
        if let note = result.sizeNote { line += ", input \(note)" }
        if let output { line += " → \(output.path)" }
        return line
    }
}

/// Writes `note: …` on stderr.
func printNote(_ text: String) {
    FileHandle.standardError.write(Data("note: \(text)\n".utf8))
}

/// A progress line on stderr, redrawn in place, only when stderr is a terminal and not in CI.
final class ProgressBar {
    private let enabled = isatty(2) == 1 && ProcessInfo.processInfo.environment["CI"] != "true"
    private let started = Date()
    private var lastDraw = Date.distantPast
    private var drawn = false

    func update(done: Int, total: Int, failed: Int) {
        guard enabled, Date().timeIntervalSince(lastDraw) > 0.1 || done == total else { return }
        lastDraw = Date()
        drawn = true
        let width = 30, filled = total > 0 ? width * done / total : width
        let rate = Double(done) / max(Date().timeIntervalSince(started), 1e-9)
        let bar = String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled)
        let failures = failed > 0 ? ", \(failed) unreadable" : ""
        FileHandle.standardError.write(Data(String(format: "\r[%@] %d/%d images, %.1f img/s%@", bar, done, total, rate, failures).utf8))
    }

    /// Clears the line (once).
    func finish() {
        if drawn { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        drawn = false
    }
}
