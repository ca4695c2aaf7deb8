import Foundation
import TLTensor

/// Writes a run's output (`.npy` or `.csv`) with the list of the image of each row.
public enum OutputFiles {
    /// The list of row files beside an output: `features.npy` → `features.files.txt`,
    /// `features.csv` → `features.csv.files.txt` (so a .npy and a .csv never share one list).
    public static func rowList(for output: URL) -> URL {
        if output.pathExtension.lowercased() == "npy" {
            return output.deletingPathExtension().appendingPathExtension("files.txt")
        }
        return output.appendingPathExtension("files.txt")
    }

    /// Writes `tensor` as `.npy` or `.csv` (one row per image, features flattened) together with
    /// its files list: both are written and flushed, then renamed, so either both appear or
    /// neither. A run without files (a `.npy` input) removes a list left by an earlier run.
    /// - Throws: `TensorFileError` naming the file that could not be written.
    public static func write(_ tensor: Tensor, files: [URL], to url: URL) throws {
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
        let list = rowList(for: url)
        if files.isEmpty {
            try AtomicFile.write([(url, data)])
            if FileManager.default.fileExists(atPath: list.path) { try? FileManager.default.removeItem(at: list) }
        } else {
            let listing = Data((files.map(\.path).joined(separator: "\n") + "\n").utf8)
            try AtomicFile.write([(list, listing), (url, data)])
        }
    }
}
