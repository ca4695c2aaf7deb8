import Foundation
import TLImaging
import TLTensor

/// Where a run's images come from, and how a preprocessed `.npy` batch is read.
public enum ImageInputs {
    /// Every image file under `paths`, in order: files as given, folders walked (their own images
    /// sorted, then class subfolders as `flow_from_directory` lists them; symbolic links to files
    /// and folders followed, as the shell and `os.walk` on a named folder do).
    /// - Throws: ``PipelineError`` for a missing path or when no image is found.
    public static func files(from paths: [String]) throws -> [URL] {
        var files: [URL] = []
        let manager = FileManager.default
        func isFolder(_ path: String) -> Bool {
            var isDirectory: ObjCBool = false
            return manager.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
        }
        for path in paths {
            guard manager.fileExists(atPath: path) else { throw PipelineError(path, "no such file or directory") }
            let url = URL(fileURLWithPath: path)
            guard isFolder(path) else { files.append(url); continue }
            let folder = url.resolvingSymlinksInPath()
            let entries: [String]
            do { entries = try manager.contentsOfDirectory(atPath: folder.path).sorted(by: ImageDirectory.pythonOrder) } catch {
                throw PipelineError(path, "cannot list the folder (\(error.localizedDescription))")
            }
            files += entries.map { url.appendingPathComponent($0) }.filter { ImageDirectory.hasExtension($0) && !isFolder($0.path) }
            if entries.contains(where: { isFolder(folder.appendingPathComponent($0).path) }) {
                files += try ImageDirectory(root: folder).files
            }
        }
        guard !files.isEmpty else { throw PipelineError(paths.joined(separator: ", "), "no JPEG/PNG images found") }
        return files
    }

    /// Reads a preprocessed NHWC batch (`[N, H, W, C]`, or one `[H, W, C]` image). float32 is
    /// taken as is; float16/float64 are converted and `note` hears so; integer arrays are refused,
    /// since raw pixels without the model's preprocessing give plausible-looking wrong features.
    /// - Throws: ``PipelineError`` or `TensorFileError` naming the file.
    public static func readBatch(_ url: URL, note: ((String) -> Void)? = nil) throws -> Tensor {
        let (tensor, dtype) = try NumPy.readWithType(contentsOf: url)
        switch dtype {
        case "<f4":
            break
        case "<f2", "<f8":
            note?("\(url.path) holds \(dtype == "<f2" ? "float16" : "float64"); converted to float32")
        default:
            throw PipelineError(url.path, "holds integers (\(dtype)), not a preprocessed float32 batch: raw pixels need the model's preprocessing — pass the images themselves, or save x preprocessed as float32")
        }
        if tensor.rank == 3 { return tensor.reshaped([1] + tensor.shape) }
        guard tensor.rank == 4, tensor.shape[0] > 0 else {
            throw PipelineError(url.path, "expected a non-empty NHWC array [N, H, W, C], got shape \(tensor.shape)")
        }
        return tensor
    }
}
