import ArgumentParser
import Foundation
import TLEngine
import TLImaging
import TLTensor

/// Runs a model over the command's inputs batch by batch: images are decoded a batch ahead on
/// another thread, so memory does not grow with the number of images; a `.npy` input is sliced.
/// Shows a progress line on a terminal and ends with a one-line summary on stderr.
struct BatchRun {
    /// The command's name, for the summary (`features`, `predict`).
    var command: String
    var inputs: ImageInputOptions
    var batchSize: Int

    /// What a run produced.
    struct Result {
        /// One row per input that was read, stacked.
        var output: Tensor
        /// The image of each row (empty for `--input`).
        var files: [URL]
        /// Unreadable images left out (only with `--skip-bad`).
        var skipped: [URL]
        /// Where the image size came from, e.g. `96x96 (the hub entry)`; nil for `--input`.
        var sizeNote: String?
        var seconds: Double
    }

    func run(_ loaded: ModelOptions.Loaded, _ body: (Tensor) throws -> Tensor) throws -> Result {
        let clock = ContinuousClock()
        let started = clock.now
        var stacked = Stacked()
        if let url = inputs.input {
            let batch = try readInputBatch(url)
            let count = batch.shape[0], perImage = batch.count / max(count, 1)
            var start = 0
            while start < count {
                let end = min(start + batchSize, count)
                let slice = Tensor(shape: [end - start] + batch.shape.dropFirst(),
                                   scalars: Array(batch.scalars[(start * perImage)..<(end * perImage)]))
                try stacked.append(try body(slice))
                start = end
            }
            return Result(output: stacked.tensor(rows: count), files: [], skipped: [], sizeNote: nil,
                          seconds: Self.seconds(clock.now - started))
        }
        let files = try inputs.imageFiles()
        let (size, source) = try inputs.imageSize(for: loaded)
        let loader = ImageLoader(size: size, interpolation: try Interpolation(name: inputs.interpolation))
        let batches = ImageBatches(files: files, batchSize: batchSize, loader: loader,
                                   preprocessing: try inputs.preprocessing(for: loaded))
        let progress = Progress(total: files.count)
        var rows: [URL] = []
        var failures: [(file: URL, error: any Error)] = []
        while let batch = batches.next() {
            failures += batch.failures
            if !batch.files.isEmpty {
                try stacked.append(try body(batch.tensor))
                rows += batch.files
            }
            progress.update(done: rows.count + failures.count, failed: failures.count)
        }
        progress.finish()
        if !failures.isEmpty && !inputs.skipBad || rows.isEmpty {
            let shown = failures.prefix(10).map { "\($0.file.path) (\(Self.reason($0.error)))" }.joined(separator: "; ")
            let more = failures.count > 10 ? "; and \(failures.count - 10) more" : ""
            let advice = rows.isEmpty ? "" : " (pass --skip-bad to leave them out)"
            throw InputError("\(failures.count) of \(files.count) images cannot be read\(advice): \(shown)\(more)")
        }
        for failure in failures {
            FileHandle.standardError.write(Data("skipped \(failure.file.path): \(Self.reason(failure.error))\n".utf8))
        }
        return Result(output: stacked.tensor(rows: rows.count), files: rows, skipped: failures.map(\.file),
                      sizeNote: "\(size.height)x\(size.width) (\(source))", seconds: Self.seconds(clock.now - started))
    }

    /// One summary line: `features: 2000 images in 41.3 s (48.4 img/s), input 224x224 (the hub entry) → out.npy`.
    func summary(_ result: Result, output: URL?) -> String {
        let rows = result.output.shape.first ?? 0
        let rate = result.seconds > 0 ? Double(rows) / result.seconds : 0
        var line = "\(command): \(rows) \(inputs.input == nil ? "images" : "rows")"
        if !result.skipped.isEmpty { line += " (\(result.skipped.count) unreadable skipped)" }
        line += String(format: " in %.2f s (%.1f img/s)", result.seconds, rate)
        if let note = result.sizeNote { line += ", input \(note)" }
        if let output { line += " → \(output.path)" }
        return line
    }

    private static func reason(_ error: any Error) -> String {
        if let imaging = error as? ImagingError { return imaging.reason }
        return (error as? LocalizedError)?.errorDescription ?? "\(error)"
    }

    private static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    /// Output rows appended batch by batch.
    private struct Stacked {
        var scalars: [Float] = []
        var rowShape: [Int]?

        mutating func append(_ tensor: Tensor) throws {
            let shape = Array(tensor.shape.dropFirst())
            if let rowShape, rowShape != shape {
                throw InputError("the model's output changed shape between batches (\(rowShape) then \(shape))")
            }
            rowShape = shape
            scalars.append(contentsOf: tensor.scalars)
        }

        func tensor(rows: Int) -> Tensor { Tensor(shape: [rows] + (rowShape ?? [0]), scalars: scalars) }
    }
}

/// A progress line on stderr, redrawn in place, only when stderr is a terminal and not in CI.
final class Progress {
    let total: Int
    private let enabled: Bool
    private let started = Date()
    private var lastDraw = Date.distantPast

    init(total: Int) {
        self.total = total
        enabled = isatty(2) == 1 && ProcessInfo.processInfo.environment["CI"] != "true"
    }

    func update(done: Int, failed: Int) {
        guard enabled, Date().timeIntervalSince(lastDraw) > 0.1 || done == total else { return }
        lastDraw = Date()
        let width = 30, filled = total > 0 ? width * done / total : width
        let rate = Double(done) / max(Date().timeIntervalSince(started), 1e-9)
        let bar = String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled)
        let failures = failed > 0 ? ", \(failed) unreadable" : ""
        FileHandle.standardError.write(Data(String(format: "\r[%@] %d/%d images, %.1f img/s%@", bar, done, total, rate, failures).utf8))
    }

    func finish() {
        if enabled { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }
}

/// Reads a preprocessed NHWC batch (`[N, H, W, C]`, or one `[H, W, C]` image). float32 is taken
/// as is; float16/float64 are converted with a note; integer arrays are refused, since raw pixels
/// without the model's preprocessing give plausible-looking wrong features.
func readInputBatch(_ url: URL) throws -> Tensor {
    let (tensor, dtype) = try NumPy.readWithType(contentsOf: url)
    switch dtype {
    case "<f4":
        break
    case "<f2", "<f8":
        let name = dtype == "<f2" ? "float16" : "float64"
        FileHandle.standardError.write(Data("note: \(url.path) holds \(name); converted to float32\n".utf8))
    default:
        throw InputError("\(url.path) holds integers (\(dtype)), not a preprocessed float32 batch: raw pixels need the model's preprocessing — pass the images themselves, or save x preprocessed as float32")
    }
    if tensor.rank == 3 { return tensor.reshaped([1] + tensor.shape) }
    guard tensor.rank == 4, tensor.shape[0] > 0 else {
        throw InputError("\(url.path): expected a non-empty NHWC array [N, H, W, C], got shape \(tensor.shape)")
    }
    return tensor
}

/// The list of row files beside an output: `features.npy` → `features.files.txt`,
/// `features.csv` → `features.csv.files.txt` (so a .npy and a .csv of different runs never
/// share one list).
func rowFilesList(for output: URL) -> URL {
    if output.pathExtension.lowercased() == "npy" {
        return output.deletingPathExtension().appendingPathExtension("files.txt")
    }
    return output.appendingPathExtension("files.txt")
}

/// Writes `tensor` as `.npy` or `.csv` (one row per image, features flattened) together with
/// its files list: both are written and flushed, then renamed, so either both appear or
/// neither. A run without files (`--input`) removes a list left by an earlier run.
func writeOutputs(_ tensor: Tensor, files: [URL], to url: URL) throws {
    let data: Data
    if url.pathExtension.lowercased() == "csv" {
        let rows = tensor.shape.first ?? 1
        let width = tensor.count / max(rows, 1)
        var text = ""
        for row in 0..<rows {
            text += tensor.scalars[(row * width)..<((row + 1) * width)].map { "\($0)" }.joined(separator: ",")
            text += "\n"
        }
        data = Data(text.utf8)
    } else {
        data = NumPy.encode(tensor)
    }
    let list = rowFilesList(for: url)
    if files.isEmpty {
        try AtomicFile.write([(url, data)])
        if FileManager.default.fileExists(atPath: list.path) { try? FileManager.default.removeItem(at: list) }
    } else {
        let listing = Data((files.map(\.path).joined(separator: "\n") + "\n").utf8)
        try AtomicFile.write([(list, listing), (url, data)])
    }
}
