import CKernels
import Foundation
import TLEngine
import TLTensor

/// Keras' optimizers, with Keras 3's exact update rules (float32 throughout).
public protocol Optimizer: AnyObject {
    /// Applies one update to every trainable parameter from its accumulated gradient.
    func step(_ parameters: [Parameter], learningRate: Float)

    /// The steps taken and each parameter's slots (momentum; Adam's `m` and `v`), named
    /// `<parameter path>/<slot>` as Keras names its optimizer variables' roles.
    func state(of parameters: [Parameter]) -> OptimizerState

    /// Puts back a state taken by `state(of:)` from an optimizer of the same kind.
    /// - Throws: ``TrainingError`` naming a slot that is missing or has the wrong size.
    func restore(_ state: OptimizerState, of parameters: [Parameter]) throws
}

/// An optimizer's state: what a backup keeps so a resumed run takes the same steps.
public struct OptimizerState: Sendable {
    /// Steps taken (Keras `iterations`).
    public var iterations: Int
    /// Slot values by `<parameter path>/<slot>`.
    public var slots: [String: [Float]]

    public init(iterations: Int, slots: [String: [Float]]) {
        self.iterations = iterations
        self.slots = slots
    }

    /// The slots of `parameters` named `names` in `table`, read out by path.
    static func collect(_ table: [ObjectIdentifier: Slot], of parameters: [Parameter], names: (String, String?)) -> [String: [Float]] {
        var slots: [String: [Float]] = [:]
        for parameter in parameters {
            guard let slot = table[ObjectIdentifier(parameter)] else { continue }
            slots["\(parameter.path)/\(names.0)"] = slot.first
            if let second = names.1 { slots["\(parameter.path)/\(second)"] = slot.second }
        }
        return slots
    }

    /// `table` rebuilt from these slots for `parameters` (a parameter without slots has not been stepped yet).
    func table(of parameters: [Parameter], names: (String, String?)) throws -> [ObjectIdentifier: Slot] {
        var table: [ObjectIdentifier: Slot] = [:]
        for parameter in parameters {
            guard let first = slots["\(parameter.path)/\(names.0)"] else { continue }
            let slot = Slot(count: 0)
            slot.first = first
            if let second = names.1 {
                guard let values = slots["\(parameter.path)/\(second)"] else {
                    throw TrainingError(parameter.path, "the optimizer state has \(names.0) but no \(second)")
                }
                slot.second = values
            }
            guard slot.first.count == parameter.gradientCount, names.1 == nil || slot.second.count == parameter.gradientCount else {
                throw TrainingError(parameter.path, "optimizer slots of \(slot.first.count) values for a weight of \(parameter.gradientCount)")
            }
            table[ObjectIdentifier(parameter)] = slot
        }
        return table
    }
}

/// `keras.optimizers.SGD(learning_rate, momentum, nesterov)`:
/// `m = momentum·m − lr·g`; `w += m` (or, Nesterov, `w += momentum·m − lr·g`); plain `w −= lr·g`
/// without momentum.
public final class SGD: Optimizer {
    public let momentum: Float
    public let nesterov: Bool
    private var velocities: [ObjectIdentifier: Slot] = [:]

    public init(momentum: Float = 0, nesterov: Bool = false) {
        self.momentum = momentum
        self.nesterov = nesterov
    }

    public func state(of parameters: [Parameter]) -> OptimizerState {
        OptimizerState(iterations: 0, slots: OptimizerState.collect(velocities, of: parameters, names: ("momentum", nil)))
    }

    public func restore(_ state: OptimizerState, of parameters: [Parameter]) throws {
        velocities = try state.table(of: parameters, names: ("momentum", nil))
    }

    public func step(_ parameters: [Parameter], learningRate: Float) {
        let (momentum, nesterov) = (self.momentum, self.nesterov)
        for parameter in parameters where parameter.isTrainable {
            let slot = momentum == 0 ? nil : velocities[ObjectIdentifier(parameter)] ?? Slot(count: parameter.gradientCount)
            if let slot { velocities[ObjectIdentifier(parameter)] = slot }
            parameter.update { w, g, count in
                guard let slot else {
                    parallelChunks(count, work: count) { range in for i in range { w[i] -= g[i] * learningRate } }
                    return
                }
                slot.first.withUnsafeMutableBufferPointer { m in
                    let m = m.baseAddress!
                    // Element by element, so the cores' shares give the same bits as one core.
                    parallelChunks(count, work: count) { range in
                        tl_sgd_update(w + range.lowerBound, g + range.lowerBound, m + range.lowerBound, Int32(range.count),
                                      learningRate, momentum, nesterov ? 1 : 0)
                    }
                }
            }
        }
    }
}

/// `keras.optimizers.Adam(learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-7)`:
/// `α = lr·√(1−β₂ᵗ)/(1−β₁ᵗ)`, `m += (g−m)(1−β₁)`, `v += (g²−v)(1−β₂)`, `w −= m·α/(√v + ε)`.
public final class Adam: Optimizer {
    public let beta1: Float, beta2: Float, epsilon: Float
    private var moments: [ObjectIdentifier: Slot] = [:]
    /// Steps taken (Keras `iterations`).
    public private(set) var iterations = 0

    public init(beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-7) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
    }

    public func state(of parameters: [Parameter]) -> OptimizerState {
        OptimizerState(iterations: iterations, slots: OptimizerState.collect(moments, of: parameters, names: ("m", "v")))
    }

    public func restore(_ state: OptimizerState, of parameters: [Parameter]) throws {
        moments = try state.table(of: parameters, names: ("m", "v"))
        iterations = state.iterations
    }

    public func step(_ parameters: [Parameter], learningRate: Float) {
        iterations += 1
        let t = Float(iterations)
        let alpha = learningRate * (1 - pow(beta2, t)).squareRoot() / (1 - pow(beta1, t))
        let (beta1, beta2, epsilon) = (beta1, beta2, epsilon)
        for parameter in parameters where parameter.isTrainable {
            let slot = moments[ObjectIdentifier(parameter)] ?? Slot(count: parameter.gradientCount, second: true)
            moments[ObjectIdentifier(parameter)] = slot
            parameter.update { w, g, count in
                slot.first.withUnsafeMutableBufferPointer { m in
                    slot.second.withUnsafeMutableBufferPointer { v in
                        let (m, v) = (m.baseAddress!, v.baseAddress!)
                        // Element by element, so the cores' shares give the same bits as one core.
                        parallelChunks(count, work: count) { range in
                            let first = range.lowerBound
                            tl_adam_update(w + first, g + first, m + first, v + first, Int32(range.count), alpha, beta1, beta2, epsilon)
                        }
                    }
                }
            }
        }
    }
}

/// An optimizer's per-parameter state (momentum; Adam's first and second moments), held in a
/// class so each step updates it in place instead of copying it out of and back into a table.
final class Slot {
    var first: [Float]
    var second: [Float]

    init(count: Int, second: Bool = false) {
        first = [Float](repeating: 0, count: count)
        self.second = second ? [Float](repeating: 0, count: count) : []
    }
}
