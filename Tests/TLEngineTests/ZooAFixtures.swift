import Foundation
import TLEngine
import TLTensor

/// Locates and reads the Keras-generated goldens of the MobileNet/EfficientNet/ConvNeXt
/// families in `Tests/Fixtures/zoo-a` (written by `make_zoo_a_fixtures.py`).
enum ZooAFixtures {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/zoo-a")

    static func weights(_ name: String) throws -> SafeTensorsFile {
        try SafeTensorsFile(contentsOf: directory.appendingPathComponent("\(name).safetensors"))
    }

    static func input(_ name: String) throws -> Tensor {
        try NumPy.read(contentsOf: directory.appendingPathComponent("\(name)_input.npy"))
    }

    static func output(_ name: String) throws -> Tensor {
        try NumPy.read(contentsOf: directory.appendingPathComponent("\(name)_output.npy"))
    }
}
