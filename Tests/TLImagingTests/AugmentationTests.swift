import Foundation
import Testing
import TLTensor
@testable import TLImaging

/// `ImageDataGenerator.apply_transform` with fixed parameters, from
/// `Tests/Fixtures/make_network_training_fixtures.py` (Keras 3.15, scipy's affine_transform).
@Suite("Augmentation equals ImageDataGenerator's transforms")
struct AugmentationTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/network-training")

    struct Case: Decodable, Sendable, CustomStringConvertible {
        var name: String
        var fill: String
        var theta: Double?, tx: Double?, ty: Double?, shear: Double?, zx: Double?, zy: Double?, brightness: Double?
        var flip_horizontal: Bool?, flip_vertical: Bool?
        var description: String { name }
    }

    static var cases: [Case] {
        guard let data = try? Data(contentsOf: directory.appendingPathComponent("augment_cases.json")) else { return [] }
        return (try? JSONDecoder().decode([Case].self, from: data)) ?? []
    }

    @Test("each transform and fill mode matches Keras to 1e-3 of a pixel level", arguments: cases)
    func matchesKeras(fixture: Case) throws {
        let input = try NumPy.read(contentsOf: Self.directory.appendingPathComponent("augment_input.npy"))
        let expected = try NumPy.read(contentsOf: Self.directory.appendingPathComponent("augment_\(fixture.name).npy"))
        let parameters = Augmentation.Parameters(theta: fixture.theta ?? 0, tx: fixture.tx ?? 0, ty: fixture.ty ?? 0,
                                                 shear: fixture.shear ?? 0, zx: fixture.zx ?? 1, zy: fixture.zy ?? 1,
                                                 flipHorizontal: fixture.flip_horizontal ?? false,
                                                 flipVertical: fixture.flip_vertical ?? false, brightness: fixture.brightness)
        let fill = try #require(Augmentation.Fill(rawValue: fixture.fill))
        let output = Augmentation.apply(parameters, to: input.scalars, height: input.shape[0], width: input.shape[1], channels: 3, fill: fill)
        #expect(expected.maxAbsoluteDifference(input) > 10, "the transform changes the image")
        let worst = zip(output, expected.scalars).map { abs($0 - $1) }.max() ?? 0
        #expect(worst <= 1e-3, "\(fixture.name): worst difference \(worst)")
    }

    @Test("--augment parses every item and refuses the rest with the item named")
    func parsing() throws {
        let augmentation = try Augmentation(parsing: "flip,zoom=0.3,shift=0.3,rotate=30,shear=0.1,brightness=0.8:1.2,fill=reflect")
        #expect(augmentation.horizontalFlip && augmentation.zoom == 0.3 && augmentation.widthShift == 0.3 && augmentation.heightShift == 0.3)
        #expect(augmentation.rotation == 30 && augmentation.brightness == 0.8...1.2 && augmentation.fill == .reflect)
        #expect(try Augmentation(parsing: augmentation.description) == augmentation)
        for bad in ["spin", "zoom=-1", "brightness=2", "fill=mirror", "rotate=x"] {
            #expect(throws: ImagingError.self) { try Augmentation(parsing: bad) }
        }
        var random = SystemRandomNumberGenerator()
        let parameters = augmentation.randomParameters(height: 10, width: 20, using: &random)
        #expect(abs(parameters.theta) <= 30 && abs(parameters.tx) <= 3 && abs(parameters.ty) <= 6 && (0.7...1.3).contains(parameters.zx))
    }
}
