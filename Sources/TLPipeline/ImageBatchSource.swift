import Foundation
import TLEngine
import TLImaging
import TLTensor
import TLTraining

/// Training batches made from image files every step, as `flow_from_directory` makes them:
/// decoded and resized (`load_img`), randomly transformed (`ImageDataGenerator`, seeded per
/// batch), preprocessed; then, on the training thread, through the frozen prefix on the engine's
/// fused inference path when there is one.
struct ImageBatchSource: BatchSource, @unchecked Sendable {
    let files: [URL]
    let loader: ImageLoader
    let preprocessing: Preprocessing
    let augmentation: Augmentation
    let prefix: FrozenPrefixRunner?

    func batch(rows: [Int], seed: UInt64?) throws -> [Tensor] {
        let images = try loader.loadEach(rows.map { files[$0] }).map { try $0.get() }
        guard let first = images.first else { return [Tensor(shape: [0])] }
        var random = SeededRandom(seed: seed ?? 0)
        var scalars = [Float]()
        scalars.reserveCapacity(images.count * first.pixels.count)
        for image in images {
            var values = image.pixels.map(Float.init)
            if seed != nil && !augmentation.isEmpty {
                let parameters = augmentation.randomParameters(height: image.height, width: image.width, using: &random)
                values = Augmentation.apply(parameters, to: values, height: image.height, width: image.width, channels: 3,
                                            fill: augmentation.fill)
            }
            preprocessing.apply(toValues: &values)
            scalars.append(contentsOf: values)
        }
        return [Tensor(shape: [images.count, first.height, first.width, 3], scalars: scalars)]
    }

    func finish(_ batch: [Tensor]) throws -> [Tensor] {
        guard let prefix else { return batch }
        return try prefix.run(batch[0])
    }
}

/// A frozen prefix (``TrainingGraph/FrozenSplit/prefix``) fused for inference, with an executor
/// per batch shape.
final class FrozenPrefixRunner: @unchecked Sendable {
    private let prefix: Graph
    /// Fused on the first batch: a run whose features are all cached never pays for it.
    private var fused: Graph?
    private var executors: [[Int]: GraphExecutor] = [:]
    private let lock = NSLock()

    init(_ prefix: Graph) { self.prefix = prefix }

    /// The cut tensors for `batch`.
    func run(_ batch: Tensor) throws -> [Tensor] {
        try lock.withLock {
            let graph = try fused ?? prefix.fused()
            fused = graph
            let executor = try executors[batch.shape] ?? GraphExecutor(graph: graph, inputShapes: [batch.shape])
            executors[batch.shape] = executor
            return try executor.run([batch])
        }
    }

    /// The cut tensors of each row, concatenated (one cache entry per image).
    func rows(_ batch: Tensor) throws -> Tensor {
        let outputs = try run(batch)
        let rows = batch.shape[0]
        var scalars = [Float]()
        scalars.reserveCapacity(outputs.reduce(0) { $0 + $1.count })
        for row in 0..<rows {
            for output in outputs {
                let width = output.count / max(rows, 1)
                scalars.append(contentsOf: output.scalars[(row * width)..<((row + 1) * width)])
            }
        }
        return Tensor(shape: [rows, scalars.count / max(rows, 1)], scalars: scalars)
    }

    /// Splits concatenated rows back into one tensor per cut.
    static func split(_ features: Tensor, shapes: [[Int]]) -> [Tensor] {
        let widths = shapes.map { $0.reduce(1, *) }
        let rows = features.shape[0], total = widths.reduce(0, +)
        var offset = 0
        return zip(shapes, widths).map { shape, width in
            var scalars = [Float](repeating: 0, count: rows * width)
            for row in 0..<rows {
                for j in 0..<width { scalars[row * width + j] = features.scalars[row * total + offset + j] }
            }
            offset += width
            return Tensor(shape: [rows] + shape, scalars: scalars)
        }
    }
}
