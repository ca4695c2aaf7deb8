import Foundation
import TLTensor

/// Keras' optimizers, with Keras 3's exact update rules (float32 throughout).
public protocol Optimizer: AnyObject {
    /// Applies one update to every trainable parameter from its accumulated gradient.
    func step(_ parameters: [Parameter], learningRate: Float)
}

/// `keras.optimizers.SGD(learning_rate, momentum, nesterov)`:
/// `m = momentum·m − lr·g`; `w += m` (or, Nesterov, `w += momentum·m − lr·g`); plain `w −= lr·g`
/// without momentum.
public final class SGD: Optimizer {
    public let momentum: Float
    public let nesterov: Bool
    private var velocities: [ObjectIdentifier: [Float]] = [:]

    public init(momentum: Float = 0, nesterov: Bool = false) {
        self.momentum = momentum
        self.nesterov = nesterov
    }

    public func step(_ parameters: [Parameter], learningRate: Float) {
        for parameter in parameters where parameter.isTrainable {
            var value = parameter.value
            let gradient = parameter.gradient
            if momentum != 0 {
                var m = velocities[ObjectIdentifier(parameter)] ?? [Float](repeating: 0, count: gradient.count)
                for i in m.indices {
                    m[i] = m[i] * momentum - gradient[i] * learningRate
                    value.scalars[i] += nesterov ? m[i] * momentum - gradient[i] * learningRate : m[i]
                }
                velocities[ObjectIdentifier(parameter)] = m
            } else {
                for i in gradient.indices { value.scalars[i] -= gradient[i] * learningRate }
            }
            parameter.value = value
        }
    }
}

/// `keras.optimizers.Adam(learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-7)`:
/// `α = lr·√(1−β₂ᵗ)/(1−β₁ᵗ)`, `m += (g−m)(1−β₁)`, `v += (g²−v)(1−β₂)`, `w −= m·α/(√v + ε)`.
public final class Adam: Optimizer {
    public let beta1: Float, beta2: Float, epsilon: Float
    private var moments: [ObjectIdentifier: (m: [Float], v: [Float])] = [:]
    /// Steps taken (Keras `iterations`).
    public private(set) var iterations = 0

    public init(beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-7) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
    }

    public func step(_ parameters: [Parameter], learningRate: Float) {
        iterations += 1
        let t = Float(iterations)
        let alpha = learningRate * (1 - pow(beta2, t)).squareRoot() / (1 - pow(beta1, t))
        for parameter in parameters where parameter.isTrainable {
            var value = parameter.value
            let gradient = parameter.gradient
            var (m, v) = moments[ObjectIdentifier(parameter)]
                ?? ([Float](repeating: 0, count: gradient.count), [Float](repeating: 0, count: gradient.count))
            for i in gradient.indices {
                m[i] += (gradient[i] - m[i]) * (1 - beta1)
                v[i] += (gradient[i] * gradient[i] - v[i]) * (1 - beta2)
                value.scalars[i] -= m[i] * alpha / (v[i].squareRoot() + epsilon)
            }
            moments[ObjectIdentifier(parameter)] = (m, v)
            parameter.value = value
        }
    }
}
