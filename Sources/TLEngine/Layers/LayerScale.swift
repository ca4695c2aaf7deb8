import Foundation
import TLTensor

/// ConvNeXt's `LayerScale`: multiplies the last axis by a learned vector.
///
/// - `gamma`: `[projectionDimension]`
public final class LayerScale: Layer {
    public let name: String
    /// Length of the scaled (last) axis.
    public let projectionDimension: Int
    /// The per-feature factors.
    public var gamma: Tensor { didSet { version.bump() } }
    private let version = ParameterVersion()
    public var parameterVersion: Int { version.value }

    /// Creates a layer scale with `gamma` to be loaded later.
    public init(name: String, projectionDimension: Int) {
        self.name = name
        self.projectionDimension = projectionDimension
        gamma = Tensor(shape: [projectionDimension], repeating: 1)
    }

    /// Creates a layer scale with its factors given (a new block).
    /// - Precondition: `gamma` has rank 1.
    public convenience init(name: String, gamma: Tensor) {
        precondition(gamma.rank == 1, "LayerScale gamma must be [features]")
        self.init(name: name, projectionDimension: gamma.shape[0])
        self.gamma = gamma
    }

    public func outputShape(inputShapes: [[Int]]) throws -> [Int] {
        guard inputShapes[0].last == projectionDimension else {
            throw EngineError.incompatibleShapes(layer: name, detail: "expects \(projectionDimension) features, got per-sample shape \(inputShapes[0])")
        }
        return inputShapes[0]
    }

    public func expectedWeights(inputShapes: [[Int]]) -> [WeightSpec] {
        [WeightSpec("gamma", [projectionDimension])]
    }

    public func setWeights(_ weights: [String: Tensor]) {
        if let gamma = weights["gamma"] { self.gamma = gamma }
    }

    public var weights: [String: Tensor] { ["gamma": gamma] }

    public func forward(_ inputs: [ActivationView], into output: MutableActivationView, scratch: UnsafeMutablePointer<Float>) {
        applyChannelAffine(inputs[0].data, output.data, count: output.count, multiplier: gamma.scalars,
                           offset: [Float](repeating: 0, count: projectionDimension))
    }
}
