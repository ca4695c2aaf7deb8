import Dispatch
import Foundation
import TLTensor

/// Streams image files as preprocessed batches of a fixed size, decoding the next batch on a
/// background thread while the caller works on the current one. Memory holds at most two
/// batches, however many files there are.
///
/// ```swift
/// let batches = ImageBatches(files: urls, batchSize: 32, loader: ImageLoader(size: size), preprocessing: .tf)
/// while let batch = batches.next() {
///     let features = try model.features(input: batch.tensor)   // rows of batch.files
///     for failure in batch.failures { print(failure.file.path, failure.error) }
/// }
/// ```
///
/// A file that cannot be decoded does not stop the stream: it is reported in its batch's
/// ``Batch/failures`` and left out of ``Batch/tensor``, so the caller decides whether one bad
/// file is an error (after listing them all) or is skipped.
public final class ImageBatches: @unchecked Sendable {
    /// One batch: the tensor of the files that loaded, those files, and the ones that did not.
    public struct Batch: Sendable {
        /// `[files.count, height, width, 3]`, preprocessed.
        public var tensor: Tensor
        /// The files of the tensor's rows, in input order.
        public var files: [URL]
        /// Files of this batch that could not be loaded, with the reason.
        public var failures: [(file: URL, error: any Error)]
    }

    /// Every input file, in order.
    public let files: [URL]
    /// Files per batch (the last may be smaller).
    public let batchSize: Int
    private let loader: ImageLoader
    private let preprocessing: Preprocessing
    private var start = 0
    private var prefetched: (group: DispatchGroup, box: Box)?

    private final class Box: @unchecked Sendable { var batch: Batch? }

    /// - Parameters:
    ///   - files: image files in output order.
    ///   - batchSize: files per batch, at least 1.
    ///   - loader: decoding and resizing (it must have a target size, so batches stack).
    ///   - preprocessing: the model family's `preprocess_input`.
    public init(files: [URL], batchSize: Int, loader: ImageLoader, preprocessing: Preprocessing) {
        precondition(batchSize > 0, "batch size must be positive")
        precondition(loader.size != nil, "streamed batches need a target size")
        self.files = files
        self.batchSize = batchSize
        self.loader = loader
        self.preprocessing = preprocessing
    }

    /// The next batch, or nil after the last; starts decoding the one after it.
    public func next() -> Batch? {
        let batch: Batch?
        if let prefetched {
            prefetched.group.wait()
            batch = prefetched.box.batch
            self.prefetched = nil
        } else {
            batch = load(from: start)
            if batch != nil { start = min(files.count, start + batchSize) }
        }
        guard let batch else { return nil }
        if start < files.count {
            let group = DispatchGroup(), box = Box(), from = start
            start = min(files.count, start + batchSize)
            DispatchQueue.global(qos: .userInitiated).async(group: group) { [self] in box.batch = load(from: from) }
            prefetched = (group, box)
        }
        return batch
    }

    private func load(from first: Int) -> Batch? {
        guard first < files.count else { return nil }
        let slice = Array(files[first..<min(files.count, first + batchSize)])
        var images: [Image] = []
        var loaded: [URL] = []
        var failures: [(file: URL, error: any Error)] = []
        for (file, result) in zip(slice, loader.loadEach(slice)) {
            switch result {
            case .success(let image):
                images.append(image)
                loaded.append(file)
            case .failure(let error):
                failures.append((file, error))
            }
        }
        let tensor = images.isEmpty
            ? Tensor(shape: [0, loader.size?.height ?? 0, loader.size?.width ?? 0, 3])
            : ImageLoader.tensor(of: images, preprocessing: preprocessing)
        return Batch(tensor: tensor, files: loaded, failures: failures)
    }
}
