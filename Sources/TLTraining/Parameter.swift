import Foundation
import TLEngine
import TLTensor

/// One trainable tensor: a weight of a layer (its value lives in the layer, so inference always
/// sees the current value), the gradient accumulated for it, and whether it is trained.
public final class Parameter {
    /// The layer that owns the value.
    public let layer: any Layer
    /// The weight's Keras name (`kernel`, `bias`, `gamma`).
    public let name: String
    /// Whether optimizers update it (Keras `trainable`).
    public var isTrainable: Bool
    /// dLoss/dValue, summed over everything that read the value since the last ``zeroGradient()``.
    public var gradient: [Float] { hasGradient ? accumulated : [Float](repeating: 0, count: accumulated.count) }
    /// The sum so far; meaningful only when `hasGradient` (zeroing is a flag, not a pass over it).
    private var accumulated: [Float]
    private var hasGradient = false

    init(layer: any Layer, name: String, isTrainable: Bool = true) {
        self.layer = layer
        self.name = name
        self.isTrainable = isTrainable
        accumulated = [Float](repeating: 0, count: layer.weights[name]?.count ?? 0)
    }

    /// The Keras path, `dense_1/kernel`.
    public var path: String { "\(layer.name)/\(name)" }

    /// The current value; setting it installs it in the layer (bumping its parameter version, so
    /// packed and fused copies are rebuilt).
    public var value: Tensor {
        get { layer.weights[name] ?? Tensor(shape: [0]) }
        set {
            var weights = layer.weights
            weights[name] = newValue
            layer.setWeights(weights)
        }
    }

    /// Changes the value in place through `body(value, gradient)` (an optimizer step): a large
    /// kernel is neither copied out of its layer nor back; the layer rebuilds its derived state
    /// (packed panels) as after any weight change.
    func update(_ body: (UnsafeMutablePointer<Float>, UnsafePointer<Float>, Int) -> Void) {
        let gradient = self.gradient
        layer.updateWeight(named: name) { tensor in
            let count = min(tensor.count, gradient.count)
            tensor.scalars.withUnsafeMutableBufferPointer { value in
                gradient.withUnsafeBufferPointer { gradient in body(value.baseAddress!, gradient.baseAddress!, count) }
            }
        }
    }

    /// Values in the gradient.
    var gradientCount: Int { accumulated.count }

    /// Lets `body(storage, accumulating)` write the gradient in place: set it when `accumulating`
    /// is false (the first reader since zeroing), add to it when true.
    func accumulate(inPlace body: (UnsafeMutablePointer<Float>, _ accumulating: Bool) -> Void) {
        let accumulating = hasGradient
        accumulated.withUnsafeMutableBufferPointer { body($0.baseAddress!, accumulating) }
        hasGradient = true
    }

    /// Clears the accumulated gradient.
    public func zeroGradient() { hasGradient = false }

    /// Adds `values` (of the value's element count) to the gradient; the first reader's values
    /// are taken as they are.
    func accumulate(_ values: [Float]) {
        precondition(values.count == accumulated.count, "\(path): gradient of \(values.count) values for \(accumulated.count)")
        if !hasGradient {
            accumulated = values
            hasGradient = true
            return
        }
        accumulated.withUnsafeMutableBufferPointer { sum in
            values.withUnsafeBufferPointer { v in for index in sum.indices { sum[index] += v[index] } }
        }
    }
}
