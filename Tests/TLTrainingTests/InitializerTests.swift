import Foundation
import Testing
@testable import TLTraining

/// Keras' initializers: the distribution each promises (bounds, deviation from the fans), and
/// seeded, reproducible draws across the chunks that fill on several cores.
@Suite("Weight initializers")
struct InitializerTests {
    /// Mean and standard deviation of `values`, in double precision.
    func moments(_ values: [Float]) -> (mean: Double, deviation: Double) {
        let mean = values.reduce(0.0) { $0 + Double($1) } / Double(values.count)
        let variance = values.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(values.count)
        return (mean, variance.squareRoot())
    }

    @Test("truncated normals (he, glorot, lecun): Keras' deviation from the fans, nothing beyond two corrected deviations")
    func truncatedNormals() {
        // A 3×3×64→256 conv kernel: 589,824 values, more than one 2¹⁸ chunk.
        let shape = [3, 3, 64, 256]
        let fanIn = 3.0 * 3 * 64, fanOut = 3.0 * 3 * 256
        for (initializer, deviation) in [(Initializer.heNormal, (2 / fanIn).squareRoot()),
                                         (.glorotNormal, (2 / (fanIn + fanOut)).squareRoot()),
                                         (.lecunNormal, (1 / fanIn).squareRoot())] {
            var random = SeededRandom(seed: 7)
            let values = initializer.values(shape: shape, random: &random)
            #expect(values.count == shape.reduce(1, *))
            let (mean, measured) = moments(values)
            #expect(abs(mean) < 0.01 * deviation, "\(initializer) mean \(mean)")
            #expect(abs(measured / deviation - 1) < 0.01, "\(initializer) deviation \(measured) vs \(deviation)")
            let bound = Float(2 * deviation / 0.879_625_661) * 1.000_01
            #expect(values.allSatisfy { abs($0) <= bound }, "\(initializer): a value beyond the truncation")
        }
    }

    @Test("uniforms: inside Keras' limit and filling it")
    func uniforms() {
        var random = SeededRandom(seed: 8)
        let values = Initializer.glorotUniform.values(shape: [600, 500], random: &random)
        let limit = Float((6.0 / 1100).squareRoot())
        #expect(values.allSatisfy { abs($0) <= limit })
        #expect(values.max()! > 0.99 * limit && values.min()! < -0.99 * limit)
        let (_, deviation) = moments(values)
        #expect(abs(deviation / (Double(limit) / 3.0.squareRoot()) - 1) < 0.01)
    }

    @Test("the same seed gives the same values, another seed others, and every chunk differs")
    func seeded() {
        var first = SeededRandom(seed: 11), second = SeededRandom(seed: 11), third = SeededRandom(seed: 12)
        let shape = [1 << 19]
        let a = Initializer.heNormal.values(shape: shape, random: &first)
        let b = Initializer.heNormal.values(shape: shape, random: &second)
        let c = Initializer.heNormal.values(shape: shape, random: &third)
        #expect(a == b)
        #expect(a != c)
        // The second 2¹⁸ chunk is not a copy of the first.
        #expect(Array(a[0..<1000]) != Array(a[(1 << 18)..<((1 << 18) + 1000)]))
        // The generator moved on: a second weight from the same generator differs.
        let next = Initializer.heNormal.values(shape: shape, random: &first)
        #expect(next != a)
    }
}
