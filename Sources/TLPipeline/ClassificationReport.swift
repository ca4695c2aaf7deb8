import Foundation
import TLTensor

/// Accuracy, loss, per-class precision/recall/F1 and the confusion matrix of class scores
/// against true labels (what `tlhub evaluate` prints).
public struct ClassificationReport {
    public let classes: [String]
    /// `matrix[true][predicted]` counts.
    public let confusion: [[Int]]
    public let accuracy: Double
    /// Mean categorical cross-entropy of the scores (clipped at 1e-7 as Keras clips).
    public let loss: Double
    private let predicted: [Int]
    private let labels: [Int]
    private let scores: Tensor

    public init(scores: Tensor, labels: [Int], classes: [String]) {
        let rows = labels.count, width = scores.count / max(rows, 1)
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: classes.count), count: classes.count)
        var predicted: [Int] = []
        var loss = 0.0
        for row in 0..<rows {
            let values = scores.scalars[(row * width)..<((row + 1) * width)]
            let best = values.indices.max { values[$0] < values[$1] }.map { $0 - row * width } ?? 0
            predicted.append(best)
            if labels[row] < classes.count, best < classes.count { confusion[labels[row]][best] += 1 }
            loss -= log(Double(min(max(values[values.startIndex + labels[row]], 1e-7), 1)))
        }
        self.classes = classes
        self.confusion = confusion
        self.predicted = predicted
        self.labels = labels
        self.scores = scores
        accuracy = rows == 0 ? 0 : Double(zip(predicted, labels).filter { $0 == $1 }.count) / Double(rows)
        self.loss = rows == 0 ? 0 : loss / Double(rows)
    }

    /// Precision, recall, F1 and support of class `index`.
    public func metrics(of index: Int) -> (precision: Double, recall: Double, f1: Double, support: Int) {
        let truePositives = Double(confusion[index][index])
        let predictedCount = Double(confusion.map { $0[index] }.reduce(0, +))
        let support = confusion[index].reduce(0, +)
        let precision = predictedCount > 0 ? truePositives / predictedCount : 0
        let recall = support > 0 ? truePositives / Double(support) : 0
        let f1 = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0
        return (precision, recall, f1, support)
    }

    /// A text report: overall figures, per-class metrics, the confusion matrix.
    public func table() -> String {
        let nameWidth = max(10, classes.map(\.count).max() ?? 0)
        func pad(_ text: String, _ width: Int) -> String { text.padding(toLength: max(width, text.count), withPad: " ", startingAt: 0) }
        var lines = [String(format: "accuracy %.4f   loss %.4f   images %d", accuracy, loss, labels.count), ""]
        lines.append(pad("class", nameWidth) + "  precision  recall     f1  support")
        for (index, name) in classes.enumerated() {
            let m = metrics(of: index)
            lines.append(pad(name, nameWidth) + String(format: "  %9.4f  %6.4f  %5.4f  %7d", m.precision, m.recall, m.f1, m.support))
        }
        lines.append("")
        lines.append("confusion matrix (rows: true class, columns: predicted)")
        lines.append(pad("", nameWidth) + classes.map { " " + pad(String($0.prefix(8)), 8) }.joined())
        for (index, name) in classes.enumerated() {
            lines.append(pad(name, nameWidth) + confusion[index].map { " " + pad(String($0), 8) }.joined())
        }
        return lines.joined(separator: "\n")
    }

    /// `file: true → predicted (score)` for each wrong row.
    public func misclassified(files: [URL]) -> [String] {
        zip(files.indices, files).compactMap { row, file in
            guard predicted[row] != labels[row] else { return nil }
            let width = scores.count / max(labels.count, 1)
            let score = scores.scalars[row * width + predicted[row]]
            return "\(file.path): \(classes[labels[row]]) → \(classes[predicted[row]]) (\(String(format: "%.4f", score)))"
        }
    }

    /// One JSON object: `accuracy`, `loss`, `per_class`, `confusion_matrix`, `classes`
    /// (and `misclassified` when `files` is given).
    public func json(files: [URL]?) -> String {
        var object: [String: Any] = [
            "accuracy": accuracy, "loss": loss, "classes": classes, "confusion_matrix": confusion,
            "per_class": Dictionary(uniqueKeysWithValues: classes.enumerated().map { index, name in
                let m = metrics(of: index)
                return (name, ["precision": m.precision, "recall": m.recall, "f1": m.f1, "support": m.support] as [String: Any])
            }),
        ]
        if let files { object["misclassified"] = misclassified(files: files) }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}
