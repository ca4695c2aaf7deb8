import CImageCodecs
import Foundation

/// Decodes JPEG and PNG files into 8-bit RGB ``Image``s exactly as Keras `load_img` sees them.
///
/// Keras opens files with Pillow and calls `img.convert("RGB")`; this decoder reproduces that
/// conversion for every layout: grayscale is replicated, alpha is dropped (not composited),
/// palettes are looked up, CMYK JPEGs are treated as Adobe-inverted (as Pillow always does),
/// 16-bit RGB(A) keeps the high byte and 16-bit grayscale is clipped to 255 like Pillow's
/// `I;16 → RGB`. Colour profiles and gamma are ignored, as Pillow ignores them.
///
/// The format is recognised from the file's bytes, never its extension. Corrupt or truncated
/// data is an ``ImagingError`` naming the file; the C libraries never print or exit.
public struct ImageDecoder: Sendable {
    /// Pillow's decompression-bomb limit: images with more pixels are refused.
    public static let defaultMaximumPixelCount = 178_956_970

    /// Whether to rotate/flip by the EXIF orientation tag (JPEG APP1, PNG `eXIf`) as Pillow's
    /// `ImageOps.exif_transpose` does. Off by default because Keras `load_img` does not do it.
    public var appliesExifOrientation: Bool
    /// Images with more pixels than this are refused before any pixel memory is allocated.
    public var maximumPixelCount: Int

    /// A decoder; the defaults match Keras `load_img`.
    public init(appliesExifOrientation: Bool = false, maximumPixelCount: Int = ImageDecoder.defaultMaximumPixelCount) {
        self.appliesExifOrientation = appliesExifOrientation
        self.maximumPixelCount = maximumPixelCount
    }

    /// Reads and decodes the image file at `url`.
    /// - Throws: ``ImagingError`` naming the file when it cannot be read, is not a JPEG or PNG,
    ///   or is corrupt or truncated.
    public func decode(contentsOf url: URL) throws -> Image {
        let data: Data
        do {
            data = try Data(contentsOf: url, options: .mappedIfSafe)
        } catch {
            throw ImagingError(path: url.path, problem: "cannot read: \(error.localizedDescription)")
        }
        return try decode(data, path: url.path)
    }

    /// Decodes the bytes of an image file; `path` names it in errors.
    /// - Throws: ``ImagingError`` when the bytes are not a decodable JPEG or PNG.
    public func decode(_ data: Data, path: String = "<memory>") throws -> Image {
        guard !data.isEmpty else { throw ImagingError(path: path, problem: "empty file, not an image") }
        guard let format = ImageFormat(signature: data.prefix(12)) else {
            throw ImagingError(path: path, problem: "not a JPEG or PNG image (unrecognised file signature)")
        }
        guard format.isDecodable else {
            throw ImagingError(path: path, problem: "\(format.rawValue.uppercased()) images are not supported; convert to JPEG or PNG")
        }

        var raster = tl_raster()
        defer { tl_raster_free(&raster) }
        let maximum = Int64(maximumPixelCount)
        let status = data.withUnsafeBytes { (buffer: UnsafeRawBufferPointer) -> Int32 in
            let bytes = buffer.bindMemory(to: UInt8.self)
            switch format {
            case .jpeg: return tl_decode_jpeg(bytes.baseAddress, bytes.count, maximum, &raster)
            default: return tl_decode_png(bytes.baseAddress, bytes.count, maximum, &raster)
            }
        }
        guard status == Int32(TL_DECODE_OK) else {
            let message = withUnsafeBytes(of: raster.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            let kind = format == .jpeg ? "JPEG" : "PNG"
            throw ImagingError(path: path, problem: "corrupt or unsupported \(kind): \(message)")
        }

        let image = try Self.rgbImage(from: raster, path: path)
        guard appliesExifOrientation, let orientation = ExifOrientation(imageData: data, format: format) else {
            return image
        }
        return orientation.transposed(image)
    }

    // MARK: - Conversion to RGB, as Pillow's convert("RGB")

    private static func rgbImage(from raster: tl_raster, path: String) throws -> Image {
        let width = Int(raster.width), height = Int(raster.height)
        let components = Int(raster.components)
        let bytesPerSample = Int(raster.bit_depth) / 8
        guard width > 0, height > 0, (1...4).contains(components), bytesPerSample == 1 || bytesPerSample == 2,
              let source = raster.pixels else {
            throw ImagingError(path: path, problem: "decoder returned an empty or unexpected raster")
        }
        let pixelCount = width * height
        let input = UnsafeBufferPointer(start: source, count: pixelCount * components * bytesPerSample)
        let isJPEG = raster.source_color_type < 0
        // The common layouts take a straight copy or a replication.
        if bytesPerSample == 1 && components == 3 {
            return Image(width: width, height: height, channels: 3, pixels: Array(input))
        }
        if bytesPerSample == 1 && components == 1 {
            let rgb = [UInt8](unsafeUninitializedCapacity: pixelCount * 3) { output, initialized in
                for pixel in 0..<pixelCount {
                    let gray = input[pixel]
                    output[pixel * 3] = gray
                    output[pixel * 3 + 1] = gray
                    output[pixel * 3 + 2] = gray
                }
                initialized = pixelCount * 3
            }
            return Image(width: width, height: height, channels: 3, pixels: rgb)
        }
        var rgb = [UInt8](repeating: 0, count: pixelCount * 3)
        // PNG colour type 0 (grayscale without an alpha channel) opens in Pillow as mode I;16.
        let isSixteenBitGray = bytesPerSample == 2 && raster.source_color_type == 0

        rgb.withUnsafeMutableBufferPointer { output in
            for pixel in 0..<pixelCount {
                let base = pixel * components * bytesPerSample
                // The high byte of a big-endian 16-bit sample, as Pillow's ";16B" raw modes keep.
                func sample(_ channel: Int) -> UInt8 { input[base + channel * bytesPerSample] }
                let out = pixel * 3
                if isJPEG && components == 4 {
                    let (red, green, blue) = Self.rgbFromInvertedCMYK(
                        cyan: sample(0), magenta: sample(1), yellow: sample(2), black: sample(3))
                    output[out] = red
                    output[out + 1] = green
                    output[out + 2] = blue
                } else if components >= 3 {
                    output[out] = sample(0)
                    output[out + 1] = sample(1)
                    output[out + 2] = sample(2)
                } else {
                    var gray = sample(0)
                    if isSixteenBitGray {
                        // Pillow's I;16 → RGB: values above 255 saturate instead of being scaled.
                        gray = input[base] == 0 ? input[base + 1] : 255
                    }
                    output[out] = gray
                    output[out + 1] = gray
                    output[out + 2] = gray
                }
            }
        }
        return Image(width: width, height: height, channels: 3, pixels: rgb)
    }

    /// Pillow's `CMYK;I` unpacking followed by `cmyk2rgb`: each stored sample is inverted, then
    /// `R = clip(255 - K' - C'·(255 - K')/255)` with Pillow's rounding of the division.
    static func rgbFromInvertedCMYK(cyan: UInt8, magenta: UInt8, yellow: UInt8, black: UInt8)
        -> (UInt8, UInt8, UInt8)
    {
        // After inversion K' = 255 - black, so 255 - K' is the stored black sample.
        let notBlack = Int(black)
        func channel(_ stored: UInt8) -> UInt8 {
            let inverted = 255 - Int(stored)
            let product = inverted * notBlack + 128
            let scaled = ((product >> 8) + product) >> 8
            return UInt8(clamping: notBlack - scaled)
        }
        return (channel(cyan), channel(magenta), channel(yellow))
    }
}
