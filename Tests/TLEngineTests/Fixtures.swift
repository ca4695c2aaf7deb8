import Foundation
import TLEngine
import TLTensor

/// Locates and reads the Keras-generated goldens in `Tests/Fixtures/engine`.
enum EngineFixtures {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/engine")

    struct Case: Decodable, CustomStringConvertible {
        var name: String
        var flavour: String
        var description: String { name }
    }

    static var cases: [Case] {
        guard let data = try? Data(contentsOf: directory.appendingPathComponent("cases.json")),
              let cases = try? JSONDecoder().decode([Case].self, from: data) else { return [] }
        return cases
    }

    static func weights(_ name: String) throws -> SafeTensorsFile {
        try SafeTensorsFile(contentsOf: directory.appendingPathComponent("\(name).safetensors"))
    }

    static func input(_ name: String) throws -> Tensor {
        try NumPy.read(contentsOf: directory.appendingPathComponent("\(name)_input.npy"))
    }

    static func output(_ name: String) throws -> Tensor {
        try NumPy.read(contentsOf: directory.appendingPathComponent("\(name)_output.npy"))
    }

    /// The parity tolerance: 1e-4 × max(1, max|Keras|).
    static func tolerance(_ expected: Tensor) -> Float { 1e-4 * max(1, expected.maxAbsolute) }
}
