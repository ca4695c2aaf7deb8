import Foundation
import TLEngine
import TLTensor

/// The training losses, computed as Keras computes them: from the logits when the output layer
/// ends in softmax/sigmoid (`_keras_logits`), reduced as `sum_over_batch_size` (per-sample losses
/// times their weights, summed, divided by the batch size).
public enum Loss: Sendable, Equatable {
    /// `CategoricalCrossentropy(label_smoothing:)` on one-hot labels.
    case categoricalCrossEntropy(labelSmoothing: Float)
    /// `BinaryCrossentropy()` on 0/1 labels (`dense1-sigmoid` heads).
    case binaryCrossEntropy

    /// The batch loss and its gradient.
    /// - Parameters:
    ///   - output: the model output `[N, C]`.
    ///   - logits: the output layer's pre-activation and activation, when available.
    ///   - labels: `[N, C]` targets.
    ///   - sampleWeights: per-sample weights (class weights), or nil for all 1.
    /// - Returns: the loss, the gradient, and whether it is with respect to the logits.
    public func evaluate(output: Tensor, logits: (logits: Tensor, activation: Activation)?, labels: Tensor,
                         sampleWeights: [Float]?) -> (loss: Float, gradient: Tensor, isPreActivation: Bool) {
        let rows = output.shape[0], width = output.count / max(rows, 1)
        let batch = Float(rows)
        var gradient = [Float](repeating: 0, count: output.count)
        var total: Float = 0
        switch self {
        case .categoricalCrossEntropy(let smoothing):
            let fused = logits.flatMap { $0.activation == .softmax ? $0.logits : nil }
            for row in 0..<rows {
                let base = row * width
                let weight = sampleWeights?[row] ?? 1
                var targets = (0..<width).map { labels.scalars[base + $0] }
                if smoothing > 0 { targets = targets.map { $0 * (1 - smoothing) + smoothing / Float(width) } }
                if let z = fused {
                    let largest = (0..<width).map { z.scalars[base + $0] }.max() ?? 0
                    let sum = (0..<width).reduce(Float(0)) { $0 + exp(z.scalars[base + $1] - largest) }
                    let logSum = log(sum) + largest
                    var loss: Float = 0
                    for j in 0..<width {
                        loss += targets[j] * (logSum - z.scalars[base + j])
                        gradient[base + j] = (exp(z.scalars[base + j] - logSum) - targets[j]) * weight / batch
                    }
                    total += loss * weight
                } else {
                    // From probabilities, clipped as Keras clips them (epsilon 1e-7).
                    let sum = (0..<width).reduce(Float(0)) { $0 + output.scalars[base + $1] }
                    var loss: Float = 0
                    for j in 0..<width {
                        let p = min(max(output.scalars[base + j] / sum, 1e-7), 1 - 1e-7)
                        loss -= targets[j] * log(p)
                        gradient[base + j] = -targets[j] / p / sum * weight / batch
                    }
                    total += loss * weight
                }
            }
            return (total / batch, Tensor(shape: output.shape, scalars: gradient), fused != nil)
        case .binaryCrossEntropy:
            let fused = logits.flatMap { $0.activation == .sigmoid ? $0.logits : nil }
            for row in 0..<rows {
                let base = row * width
                let weight = sampleWeights?[row] ?? 1
                var loss: Float = 0
                for j in 0..<width {
                    let y = labels.scalars[base + j]
                    if let z = fused?.scalars[base + j] {
                        loss += max(z, 0) - z * y + log(1 + exp(-abs(z)))
                        gradient[base + j] = (1 / (1 + exp(-z)) - y) / Float(width) * weight / batch
                    } else {
                        let p = min(max(output.scalars[base + j], 1e-7), 1 - 1e-7)
                        loss -= y * log(p) + (1 - y) * log(1 - p)
                        gradient[base + j] = (p - y) / (p * (1 - p)) / Float(width) * weight / batch
                    }
                }
                total += loss / Float(width) * weight
            }
            return (total / batch, Tensor(shape: output.shape, scalars: gradient), fused != nil)
        }
    }

    /// The number of rows whose prediction is right: the arg-max class (categorical) or the
    /// 0.5-thresholded output (binary).
    public func correctCount(output: Tensor, labels: Tensor) -> Int {
        let rows = output.shape[0], width = output.count / max(rows, 1)
        var correct = 0
        for row in 0..<rows {
            let base = row * width
            switch self {
            case .categoricalCrossEntropy:
                let predicted = (0..<width).max { output.scalars[base + $0] < output.scalars[base + $1] } ?? 0
                let actual = (0..<width).max { labels.scalars[base + $0] < labels.scalars[base + $1] } ?? 0
                if predicted == actual { correct += 1 }
            case .binaryCrossEntropy:
                for j in 0..<width where (output.scalars[base + j] > 0.5) == (labels.scalars[base + j] > 0.5) { correct += 1 }
            }
        }
        return self == .binaryCrossEntropy ? correct / max(width, 1) : correct
    }
}
