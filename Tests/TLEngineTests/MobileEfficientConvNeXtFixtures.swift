import Foundation
import TLEngine
import TLTensor

/// Locates and reads the Keras-generated goldens of the MobileNet/EfficientNet/ConvNeXt
/// families in `Tests/Fixtures/zoo-mobile-efficient-convnext` (written by `make_zoo-mobile-efficient-convnext_fixtures.py`).
enum MobileEfficientConvNeXtFixtures {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/zoo-mobile-efficient-convnext")

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
