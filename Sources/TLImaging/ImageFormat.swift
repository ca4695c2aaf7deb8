import Foundation

/// An image file format, recognised by the file's leading bytes rather than its extension.
public enum ImageFormat: String, Sendable, CaseIterable {
    /// JPEG (baseline or progressive), decoded with libjpeg-turbo.
    case jpeg
    /// PNG (any bit depth, palette or interlacing), decoded with libpng.
    case png
    /// Windows bitmap; recognised but not decoded.
    case bmp
    /// GIF; recognised but not decoded.
    case gif
    /// TIFF; recognised but not decoded.
    case tiff
    /// WebP; recognised but not decoded.
    case webp
    /// Netpbm (PBM/PGM/PPM); recognised but not decoded.
    case netpbm

    /// Whether ``ImageDecoder`` can decode this format.
    public var isDecodable: Bool { self == .jpeg || self == .png }

    /// The format whose signature starts `bytes`, or `nil` when none matches.
    public init?<Bytes: Collection>(signature bytes: Bytes) where Bytes.Element == UInt8 {
        let head = Array(bytes.prefix(12))
        func starts(with prefix: [UInt8]) -> Bool { head.starts(with: prefix) }
        if starts(with: [0xFF, 0xD8, 0xFF]) {
            self = .jpeg
        } else if starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) {
            self = .png
        } else if starts(with: Array("BM".utf8)) {
            self = .bmp
        } else if starts(with: Array("GIF87a".utf8)) || starts(with: Array("GIF89a".utf8)) {
            self = .gif
        } else if starts(with: [0x49, 0x49, 0x2A, 0x00]) || starts(with: [0x4D, 0x4D, 0x00, 0x2A]) {
            self = .tiff
        } else if head.count >= 12, starts(with: Array("RIFF".utf8)), Array(head[8..<12]) == Array("WEBP".utf8) {
            self = .webp
        } else if head.count >= 2, head[0] == UInt8(ascii: "P"), (UInt8(ascii: "1")...UInt8(ascii: "7")).contains(head[1]) {
            self = .netpbm
        } else {
            return nil
        }
    }
}
