import Foundation
import TLTensor
import Testing
@testable import TLImaging

@Suite("Resizing exactly as Pillow inside Keras load_img")
struct ResamplerTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var interpolation: Interpolation
        var size: ImageSize
        var testDescription: String { "\(interpolation.rawValue) → \(size)" }
    }

    static let sizes = [ImageSize(height: 16, width: 16), ImageSize(height: 50, width: 64),
                        ImageSize(height: 29, width: 11), ImageSize(height: 23, width: 100)]
    static let pngCases = Interpolation.allCases.flatMap { interpolation in
        sizes.map { Case(interpolation: interpolation, size: $0) }
    }
    static let jpegCases = Interpolation.allCases.flatMap { interpolation in
        sizes.prefix(2).map { Case(interpolation: interpolation, size: $0) }
    }

    @Test("37x23 PNG resizes byte-exactly", arguments: pngCases)
    func pngResize(testCase: Case) throws {
        let loader = ImageLoader(size: testCase.size, interpolation: testCase.interpolation)
        let image = try loader.load(contentsOf: Fixtures.image("rgba.png"))
        let expected = try Fixtures.golden("resized/rgba_\(testCase.interpolation.rawValue)_\(testCase.size).npy")
        #expect(Fixtures.tensor(image).shape == expected.shape)
        #expect(Fixtures.tensor(image).maxAbsoluteDifference(expected) == 0)
    }

    static let largeCases = Interpolation.allCases.flatMap { interpolation in
        [ImageSize(height: 7, width: 10), ImageSize(height: 41, width: 33), ImageSize(height: 97, width: 20),
         ImageSize(height: 13, width: 151), ImageSize(height: 60, width: 160)]
            .map { Case(interpolation: interpolation, size: $0) }
    } + [Case(interpolation: .nearest, size: ImageSize(height: 120, width: 200))]

    @Test("151x97 PNG resizes byte-exactly, including 15x downscales", arguments: largeCases)
    func largeResize(testCase: Case) throws {
        let loader = ImageLoader(size: testCase.size, interpolation: testCase.interpolation)
        let image = try loader.load(contentsOf: Fixtures.image("large.png"))
        let expected = try Fixtures.golden("resized/large_\(testCase.interpolation.rawValue)_\(testCase.size).npy")
        #expect(Fixtures.tensor(image).shape == expected.shape)
        #expect(Fixtures.tensor(image).maxAbsoluteDifference(expected) == 0)
    }

    @Test("37x23 JPEG resizes within the JPEG decoding tolerance", arguments: jpegCases)
    func jpegResize(testCase: Case) throws {
        let loader = ImageLoader(size: testCase.size, interpolation: testCase.interpolation)
        let image = try loader.load(contentsOf: Fixtures.image("rgb.jpg"))
        let expected = try Fixtures.golden("resized/rgb_\(testCase.interpolation.rawValue)_\(testCase.size).npy")
        #expect(Fixtures.tensor(image).maxAbsoluteDifference(expected) <= DecoderTests.jpegTolerance)
    }

    @Test("keep_aspect_ratio centre-crops before resizing", arguments: [Interpolation.nearest, .bilinear, .bicubic].flatMap { interpolation in
        [ImageSize(height: 16, width: 16), ImageSize(height: 20, width: 50), ImageSize(height: 40, width: 9)]
            .map { Case(interpolation: interpolation, size: $0) }
    })
    func keepAspectRatio(testCase: Case) throws {
        let loader = ImageLoader(size: testCase.size, interpolation: testCase.interpolation, keepsAspectRatio: true)
        let image = try loader.load(contentsOf: Fixtures.image("rgba.png"))
        let expected = try Fixtures.golden("cropped/rgba_\(testCase.interpolation.rawValue)_\(testCase.size).npy")
        #expect(Fixtures.tensor(image).maxAbsoluteDifference(expected) == 0)
    }

    @Test("Keras' crop box arithmetic")
    func centerCropRegion() {
        // 37x23 to a square: crop width = 23 * 16 // 16 = 23, left = (37 - 23) // 2 = 7.
        let square = SourceRegion.centerCrop(of: ImageSize(height: 23, width: 37), toAspectOf: ImageSize(height: 16, width: 16))
        #expect(square == SourceRegion(left: 7, top: 0, right: 30, bottom: 23))
        // To 20x50: crop height = 37 * 20 // 50 = 14, top = (23 - 14) // 2 = 4.
        let wide = SourceRegion.centerCrop(of: ImageSize(height: 23, width: 37), toAspectOf: ImageSize(height: 20, width: 50))
        #expect(wide == SourceRegion(left: 0, top: 4, right: 37, bottom: 18))
    }

    @Test("bilinear weights on a hand-computed 2x upscale of a ramp")
    func handComputedBilinear() {
        // Row 0 10 20 30 doubled: Pillow maps output x to source (x + 0.5) / 2 - 0.5, so
        // outputs are 0, 2.5, 7.5, 12.5, 17.5, 22.5, 27.5, 30, rounded half up in fixed point.
        let image = Image(width: 4, height: 1, channels: 1, pixels: [0, 10, 20, 30])
        let wide = Resampler.resize(image, to: ImageSize(height: 1, width: 8), interpolation: .bilinear)
        #expect(wide.pixels == [0, 3, 8, 13, 18, 23, 28, 30])
    }

    @Test("nearest picks the source pixel under each output centre")
    func handComputedNearest() {
        let image = Image(width: 5, height: 1, channels: 1, pixels: [10, 20, 30, 40, 50])
        // scale 5/3: centres at 0.833, 2.5, 4.167 → columns 0, 2, 4.
        #expect(Resampler.resize(image, to: ImageSize(height: 1, width: 3), interpolation: .nearest).pixels == [10, 30, 50])
    }

    @Test("interpolation names parse like Keras' and reject others")
    func interpolationNames() throws {
        #expect(try Interpolation(name: "Bicubic") == .bicubic)
        #expect(throws: ImagingError.self) { try Interpolation(name: "area") }
    }
}
