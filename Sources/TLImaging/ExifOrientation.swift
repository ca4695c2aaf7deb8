import Foundation

/// The EXIF orientation tag (0x0112) and the transpose that undoes it, as Pillow's
/// `ImageOps.exif_transpose` applies it.
public enum ExifOrientation: Int, Sendable, CaseIterable {
    /// Stored upright.
    case up = 1
    /// Mirrored left to right.
    case upMirrored = 2
    /// Rotated 180°.
    case down = 3
    /// Mirrored top to bottom.
    case downMirrored = 4
    /// Mirrored along the main diagonal.
    case leftMirrored = 5
    /// Must be turned 90° clockwise to display.
    case right = 6
    /// Mirrored along the anti-diagonal.
    case rightMirrored = 7
    /// Must be turned 90° counter-clockwise to display.
    case left = 8

    /// The orientation recorded in a JPEG's APP1 Exif segment or a PNG's `eXIf` chunk; `nil`
    /// when there is none or it cannot be parsed (a damaged tag never fails decoding).
    public init?(imageData data: Data, format: ImageFormat) {
        let bytes = [UInt8](data)
        let tiff: ArraySlice<UInt8>?
        switch format {
        case .jpeg: tiff = Self.jpegExifPayload(bytes)
        case .png: tiff = Self.pngExifPayload(bytes)
        default: tiff = nil
        }
        guard let tiff, let value = Self.orientationTag(inTIFF: tiff) else { return nil }
        self.init(rawValue: value)
    }

    /// `image` turned upright.
    public func transposed(_ image: Image) -> Image {
        let width = image.width, height = image.height, channels = image.channels
        let swapsAxes = rawValue >= 5
        let outputWidth = swapsAxes ? height : width
        let outputHeight = swapsAxes ? width : height
        var pixels = [UInt8](repeating: 0, count: image.pixels.count)
        for y in 0..<outputHeight {
            for x in 0..<outputWidth {
                let (sourceY, sourceX): (Int, Int)
                switch self {
                case .up: (sourceY, sourceX) = (y, x)
                case .upMirrored: (sourceY, sourceX) = (y, width - 1 - x)
                case .down: (sourceY, sourceX) = (height - 1 - y, width - 1 - x)
                case .downMirrored: (sourceY, sourceX) = (height - 1 - y, x)
                case .leftMirrored: (sourceY, sourceX) = (x, y)
                case .right: (sourceY, sourceX) = (height - 1 - x, y)
                case .rightMirrored: (sourceY, sourceX) = (height - 1 - x, width - 1 - y)
                case .left: (sourceY, sourceX) = (x, width - 1 - y)
                }
                let from = (sourceY * width + sourceX) * channels
                let to = (y * outputWidth + x) * channels
                for channel in 0..<channels {
                    pixels[to + channel] = image.pixels[from + channel]
                }
            }
        }
        return Image(width: outputWidth, height: outputHeight, channels: channels, pixels: pixels)
    }

    // MARK: - Container walking

    private static func jpegExifPayload(_ bytes: [UInt8]) -> ArraySlice<UInt8>? {
        var offset = 2
        let exifHeader: [UInt8] = Array("Exif".utf8) + [0, 0]
        while offset + 4 <= bytes.count {
            guard bytes[offset] == 0xFF else { return nil }
            let marker = bytes[offset + 1]
            if marker == 0xFF { offset += 1; continue }
            if marker == 0xD8 || marker == 0x01 || (0xD0...0xD7).contains(marker) { offset += 2; continue }
            if marker == 0xDA || marker == 0xD9 { return nil }
            let length = Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
            guard length >= 2, offset + 2 + length <= bytes.count else { return nil }
            let segment = bytes[(offset + 4)..<(offset + 2 + length)]
            if marker == 0xE1, segment.starts(with: exifHeader) {
                return segment.dropFirst(exifHeader.count)
            }
            offset += 2 + length
        }
        return nil
    }

    private static func pngExifPayload(_ bytes: [UInt8]) -> ArraySlice<UInt8>? {
        var offset = 8
        while offset + 8 <= bytes.count {
            let length = Int(readUInt32(bytes[...], at: offset, bigEndian: true))
            let type = bytes[(offset + 4)..<(offset + 8)]
            let start = offset + 8
            guard length >= 0, start + length <= bytes.count else { return nil }
            if type.elementsEqual("eXIf".utf8) { return bytes[start..<(start + length)] }
            if type.elementsEqual("IEND".utf8) { return nil }
            offset = start + length + 4
        }
        return nil
    }

    private static func orientationTag(inTIFF tiff: ArraySlice<UInt8>) -> Int? {
        let bytes = Array(tiff)
        guard bytes.count >= 8 else { return nil }
        let bigEndian: Bool
        switch (bytes[0], bytes[1]) {
        case (0x49, 0x49): bigEndian = false
        case (0x4D, 0x4D): bigEndian = true
        default: return nil
        }
        let ifd = Int(readUInt32(bytes[...], at: 4, bigEndian: bigEndian))
        guard ifd >= 8, ifd + 2 <= bytes.count else { return nil }
        let entryCount = Int(readUInt16(bytes[...], at: ifd, bigEndian: bigEndian))
        for index in 0..<entryCount {
            let entry = ifd + 2 + index * 12
            guard entry + 12 <= bytes.count else { return nil }
            let tag = readUInt16(bytes[...], at: entry, bigEndian: bigEndian)
            let type = readUInt16(bytes[...], at: entry + 2, bigEndian: bigEndian)
            if tag == 0x0112, type == 3 {
                return Int(readUInt16(bytes[...], at: entry + 8, bigEndian: bigEndian))
            }
        }
        return nil
    }

    private static func readUInt16(_ bytes: ArraySlice<UInt8>, at offset: Int, bigEndian: Bool) -> UInt16 {
        let first = UInt16(bytes[bytes.startIndex + offset]), second = UInt16(bytes[bytes.startIndex + offset + 1])
        return bigEndian ? first << 8 | second : second << 8 | first
    }

    private static func readUInt32(_ bytes: ArraySlice<UInt8>, at offset: Int, bigEndian: Bool) -> UInt32 {
        let first = UInt32(readUInt16(bytes, at: offset, bigEndian: bigEndian))
        let second = UInt32(readUInt16(bytes, at: offset + 2, bigEndian: bigEndian))
        return bigEndian ? first << 16 | second : second << 16 | first
    }
}
