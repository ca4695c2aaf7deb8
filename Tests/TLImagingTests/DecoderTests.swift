import Foundation
import TLTensor
import Testing
@testable import TLImaging

@Suite("Decoding JPEG and PNG as Keras load_img does")
struct DecoderTests {
    static let pngImages = ["rgba", "gray", "gray_alpha", "palette", "palette4bit", "bilevel",
                            "gray16", "rgb16", "interlaced", "rgba16_interlaced"]
    static let jpegImages = ["rgb", "rgb444", "progressive", "gray", "cmyk", "rotated"]

    /// Largest difference allowed between our JPEG pixels and Keras'. Pillow's wheel bundles
    /// libjpeg-turbo 3.2.0 and Debian 12 ships 2.1.5; both use the accurate integer IDCT and
    /// fancy upsampling, and on every fixture here (4:2:0, 4:4:4, progressive, grayscale, CMYK,
    /// and all resizes of them) they agree exactly, measured. Zero is therefore demanded: a
    /// platform whose libjpeg rounds differently (e.g. IJG libjpeg 9) fails here, visibly.
    static let jpegTolerance: Float = 0

    @Test("PNG layouts decode byte-exactly", arguments: pngImages)
    func pngMatchesKeras(name: String) throws {
        let image = try ImageDecoder().decode(contentsOf: Fixtures.image("\(name).png"))
        let expected = try Fixtures.golden("decoded/\(name)_png.npy")
        #expect(image.channels == 3)
        #expect(Fixtures.tensor(image).shape == expected.shape)
        #expect(Fixtures.tensor(image).maxAbsoluteDifference(expected) == 0)
    }

    @Test("JPEG layouts decode exactly as Pillow's bundled libjpeg-turbo does", arguments: jpegImages)
    func jpegMatchesKeras(name: String) throws {
        let image = try ImageDecoder().decode(contentsOf: Fixtures.image("\(name).jpg"))
        let expected = try Fixtures.golden("decoded/\(name)_jpg.npy")
        let difference = Fixtures.tensor(image).maxAbsoluteDifference(expected)
        #expect(difference <= Self.jpegTolerance, "\(name).jpg differs from Keras by \(difference)")
    }

    @Test("the format comes from the bytes, not the extension")
    func formatFromSignature() throws {
        let image = try ImageDecoder().decode(contentsOf: Fixtures.image("png_named.jpg"))
        let expected = try Fixtures.golden("decoded/rgba_png.npy")
        #expect(Fixtures.tensor(image).maxAbsoluteDifference(expected) == 0)
        #expect(ImageFormat(signature: Array("GIF89a....".utf8)) == .gif)
        #expect(ImageFormat(signature: Array("RIFF\0\0\0\0WEBP".utf8)) == .webp)
        #expect(ImageFormat(signature: [0xFF, 0xD8, 0xFF, 0xE0]) == .jpeg)
        #expect(ImageFormat(signature: Array("hello".utf8)) == nil)
    }

    @Test("EXIF orientation is ignored by default and applied on request like exif_transpose")
    func exifOrientation() throws {
        let url = Fixtures.image("rotated.jpg")
        let plain = try ImageDecoder().decode(contentsOf: url)
        #expect(plain.width == 37 && plain.height == 23)
        let upright = try ImageDecoder(appliesExifOrientation: true).decode(contentsOf: url)
        let expected = try Fixtures.golden("decoded/rotated_jpg_exif_transposed.npy")
        #expect(expected.shape == [37, 23, 3])
        #expect(Fixtures.tensor(upright).maxAbsoluteDifference(expected) <= Self.jpegTolerance)
        #expect(ExifOrientation(imageData: try Data(contentsOf: url), format: .jpeg) == .right)
    }

    @Test("a PNG eXIf chunk is honoured on request too")
    func pngExifOrientation() throws {
        let url = Fixtures.image("rotated.png")
        #expect(ExifOrientation(imageData: try Data(contentsOf: url), format: .png) == .left)
        let upright = try ImageDecoder(appliesExifOrientation: true).decode(contentsOf: url)
        let expected = try Fixtures.golden("decoded/rotated_png_exif_transposed.npy")
        #expect(expected.shape == [37, 23, 3])
        #expect(Fixtures.tensor(upright).maxAbsoluteDifference(expected) == 0)
        let plain = try ImageDecoder().decode(contentsOf: url)
        #expect(plain.width == 37 && plain.height == 23)
    }

    @Test("the eight orientations invert each other as rotations and flips")
    func orientationGeometry() {
        let image = Image(width: 3, height: 2, channels: 1, pixels: [1, 2, 3, 4, 5, 6])
        // 1 2 3      turned clockwise (orientation 6 undone):  4 1
        // 4 5 6                                                5 2
        //                                                      6 3
        #expect(ExifOrientation.right.transposed(image).pixels == [4, 1, 5, 2, 6, 3])
        #expect(ExifOrientation.left.transposed(image).pixels == [3, 6, 2, 5, 1, 4])
        #expect(ExifOrientation.down.transposed(image).pixels == [6, 5, 4, 3, 2, 1])
        #expect(ExifOrientation.upMirrored.transposed(image).pixels == [3, 2, 1, 6, 5, 4])
        #expect(ExifOrientation.downMirrored.transposed(image).pixels == [4, 5, 6, 1, 2, 3])
        #expect(ExifOrientation.leftMirrored.transposed(image).pixels == [1, 4, 2, 5, 3, 6])
        #expect(ExifOrientation.rightMirrored.transposed(image).pixels == [6, 3, 5, 2, 4, 1])
    }

    @Test("Adobe CMYK converts with Pillow's inverted cmyk2rgb rounding")
    func cmykConversion() {
        // Stored (Adobe-inverted) samples: 255 means no ink. K stored 255 → white paper.
        #expect(ImageDecoder.rgbFromInvertedCMYK(cyan: 255, magenta: 255, yellow: 255, black: 255) == (255, 255, 255))
        // Full cyan ink (stored 0), no black: red channel 0.
        #expect(ImageDecoder.rgbFromInvertedCMYK(cyan: 0, magenta: 255, yellow: 255, black: 255) == (0, 255, 255))
        // Full black (stored 0) darkens everything to 0.
        #expect(ImageDecoder.rgbFromInvertedCMYK(cyan: 200, magenta: 100, yellow: 0, black: 0) == (0, 0, 0))
        // C' = 255 - 155 = 100, notBlack = 200: 200 - round(100 * 200 / 255) = 200 - 78 = 122.
        #expect(ImageDecoder.rgbFromInvertedCMYK(cyan: 155, magenta: 155, yellow: 155, black: 200).0 == 122)
    }
}
