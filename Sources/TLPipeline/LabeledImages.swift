import Foundation
import TLTensor
import TLFormats
import TLImaging

/// A labelled image folder as Keras `flow_from_directory` sees it: one subfolder per class,
/// classes sorted by name, files listed in its order.
public struct LabeledImages: Sendable {
    /// The folder.
    public var root: URL
    /// Class names in index order.
    public var classNames: [String]
    /// Every image, class by class.
    public var files: [URL]
    /// The class index of each file.
    public var labels: [Int]

    /// Lists `root`.
    /// - Throws: ``PipelineError`` before any work for a folder without images, with one class,
    ///   or with an empty class folder.
    public static func load(_ root: URL, classNames: [String]? = nil) throws -> LabeledImages {
        let directory = try ImageDirectory(root: root.resolvingSymlinksInPath(), classNames: classNames)
        guard directory.classNames.count >= 2 || classNames != nil else {
            throw PipelineError(root.path, "only one class folder (\(directory.classNames.first ?? "")): a classifier needs at least two, one subfolder per class")
        }
        let counts = directory.classNames.indices.map { index in directory.labels.filter { $0 == index }.count }
        if let empty = counts.firstIndex(of: 0) {
            throw PipelineError(root.appendingPathComponent(directory.classNames[empty]).path, "class folder has no JPEG/PNG images")
        }
        return LabeledImages(root: root, classNames: directory.classNames, files: directory.files, labels: directory.labels)
    }

    /// Images per class, in class order.
    public var counts: [Int] { classNames.indices.map { index in labels.filter { $0 == index }.count } }

    /// Splits off about `fraction` of each class for validation. A file's side depends only on
    /// its path relative to the root (a hash), so adding images never moves the others.
    public func split(validationFraction fraction: Double) -> (train: LabeledImages, validation: LabeledImages) {
        var train = self, validation = self
        train.files = []; train.labels = []; validation.files = []; validation.labels = []
        let rootPath = root.resolvingSymlinksInPath().path
        for (file, label) in zip(files, labels) {
            var relative = file.path
            if relative.hasPrefix(rootPath + "/") { relative.removeFirst(rootPath.count + 1) }
            let digest = Self.fnv1a(relative)
            if Double(digest % 1_000_000) / 1_000_000 < fraction {
                validation.files.append(file); validation.labels.append(label)
            } else {
                train.files.append(file); train.labels.append(label)
            }
        }
        return (train, validation)
    }

    /// One-hot labels `[count, classes]` (or `[count, 1]` 0/1 labels for a binary head).
    public func targets(binary: Bool) -> [Float] {
        if binary { return labels.map { Float($0) } }
        var result = [Float](repeating: 0, count: labels.count * classNames.count)
        for (row, label) in labels.enumerated() { result[row * classNames.count + label] = 1 }
        return result
    }

    /// The targets of the files at `rows` (those that could be read), as a `[rows, width]` tensor.
    func targets(binary: Bool, rows: [Int]) -> Tensor {
        let all = targets(binary: binary), width = binary ? 1 : classNames.count
        return Tensor(shape: [rows.count, width], scalars: rows.flatMap { all[($0 * width)..<(($0 + 1) * width)] })
    }

    /// The training folder and the validation images: a separate folder (same classes), a
    /// stratified split of the training folder, or none.
    static func trainingAndValidation(_ data: URL, validation: URL?, split fraction: Double) throws
        -> (train: LabeledImages, validation: LabeledImages?) {
        let train = try load(data)
        if let validation { return (train, try load(validation, classNames: train.classNames)) }
        guard fraction > 0 else { return (train, nil) }
        let split = train.split(validationFraction: fraction)
        return (split.train, split.validation.files.isEmpty ? nil : split.validation)
    }

    /// scikit-learn's `balanced` class weights, `n / (classes · count)`, over the files at `rows`.
    func balancedClassWeights(rows: [Int]) -> [Float] {
        let counts = rows.reduce(into: [Int](repeating: 0, count: classNames.count)) { $0[labels[$1]] += 1 }
        return counts.map { Float(rows.count) / Float(classNames.count * max($0, 1)) }
    }

    /// The indices of the files that decode, the others reported (each read once, in batches).
    /// - Throws: ``PipelineError`` when none can be read.
    func readable(loader: ImageLoader, batchSize: Int, progress: ((Int, Int) -> Void)?) throws
        -> (kept: [Int], statistics: FeatureCache.Statistics) {
        var statistics = FeatureCache.Statistics()
        var kept: [Int] = []
        let step = max(batchSize, 1)
        for start in stride(from: 0, to: files.count, by: step) {
            let range = start..<min(files.count, start + step)
            for (index, result) in zip(range, loader.loadEach(Array(files[range]))) {
                switch result {
                case .success: kept.append(index)
                case .failure(let error): statistics.unreadable.append((files[index], (error as? any FileProblem)?.problem ?? "\(error)"))
                }
            }
            progress?(range.upperBound, files.count)
        }
        guard !kept.isEmpty else { throw PipelineError(root.path, "no image could be read") }
        return (kept, statistics)
    }

    private static func fnv1a(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return hash
    }
}
