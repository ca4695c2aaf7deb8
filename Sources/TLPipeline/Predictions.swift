import Foundation

/// Keras's class-index JSON (`imagenet_class_index.json`: `{"0": ["n01440764", "tench"], …}`).
public enum ClassIndex {
    /// The human-readable name of each class id, in id order.
    /// - Throws: ``PipelineError`` naming the file when it cannot be read, is not such a JSON, or
    ///   names another number of classes than `classCount`.
    public static func names(contentsOf url: URL, classCount: Int) throws -> [String] {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw PipelineError(url.path, "cannot read the class index (\(error.localizedDescription))")
        }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: [String]] else {
            throw PipelineError(url.path, "not a Keras class-index JSON ({\"0\": [\"id\", \"name\"], …})")
        }
        guard object.count == classCount else {
            throw PipelineError(url.path, "class index names \(object.count) classes but the model has \(classCount) outputs")
        }
        var names = [String](repeating: "", count: classCount)
        for (key, value) in object {
            guard let id = Int(key), id >= 0, id < classCount, let name = value.last else {
                throw PipelineError(url.path, "class index key '\(key)' is not a class id 0…\(classCount - 1) with a name")
            }
            names[id] = name
        }
        return names
    }
}

/// One predicted class: its id, its name when known, and its score.
public struct ClassScore: Sendable, Equatable {
    public var id: Int
    public var name: String?
    public var score: Float

    /// `tabby (281) 0.4210`, or `281 0.4210` without a name.
    public var text: String {
        (name.map { "\($0) (\(id))" } ?? "\(id)") + " " + String(format: "%.4f", score)
    }
}

/// Keras's `decode_predictions`: the best classes of each row of a score matrix.
public enum Predictions {
    /// The `count` highest scores of each row of `scores` (`[N, classes]`), best first, ties in
    /// id order, named from `names` when given.
    public static func top(_ count: Int, of scores: [Float], rows: Int, names: [String]?) -> [[ClassScore]] {
        let width = scores.count / max(rows, 1)
        return (0..<rows).map { row in
            let values = scores[(row * width)..<((row + 1) * width)]
            return values.indices.sorted { values[$0] > values[$1] || (values[$0] == values[$1] && $0 < $1) }
                .prefix(count).map { index in
                    let id = index - row * width
                    return ClassScore(id: id, name: names.flatMap { id < $0.count ? $0[id] : nil }, score: values[index])
                }
        }
    }
}
