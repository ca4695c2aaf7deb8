import Foundation
import TLTensor
import Testing
@testable import TLImaging

/// Paths into Tests/Fixtures/imaging, written by Tests/Fixtures/make_imaging_fixtures.py.
enum Fixtures {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/imaging", isDirectory: true)

    static func image(_ name: String) -> URL {
        directory.appendingPathComponent("images").appendingPathComponent(name)
    }

    /// A golden `.npy` array (uint8 or float32) as a float tensor.
    static func golden(_ relativePath: String) throws -> Tensor {
        try NumPy.read(contentsOf: directory.appendingPathComponent(relativePath))
    }

    /// An image as a `[height, width, channels]` float tensor, for comparison with goldens.
    static func tensor(_ image: Image) -> Tensor {
        Tensor(shape: [image.height, image.width, image.channels], scalars: image.pixels.map(Float.init))
    }
}
