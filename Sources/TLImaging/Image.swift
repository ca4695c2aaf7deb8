/// An 8-bit image held in memory as interleaved rows.
///
/// Pixels are stored height × width × channels (HWC), top row first; decoded images are always
/// RGB (`channels == 3`), as Keras `load_img(color_mode="rgb")` produces them.
public struct Image: Sendable, Equatable {
    /// Columns.
    public var width: Int
    /// Rows.
    public var height: Int
    /// Samples per pixel (3 for RGB).
    public var channels: Int
    /// `height * width * channels` samples in row-major HWC order.
    public var pixels: [UInt8]

    /// Wraps `pixels`.
    /// - Precondition: `pixels.count == height * width * channels` (a programmer error otherwise).
    public init(width: Int, height: Int, channels: Int = 3, pixels: [UInt8]) {
        precondition(width >= 0 && height >= 0 && channels > 0, "bad image shape \(height)x\(width)x\(channels)")
        precondition(pixels.count == width * height * channels,
                     "\(pixels.count) samples do not fill \(height)x\(width)x\(channels)")
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    /// The image's size as (height, width).
    public var size: ImageSize { ImageSize(height: height, width: width) }

    /// The sample at row `y`, column `x`, channel `channel`.
    public subscript(y: Int, x: Int, channel: Int) -> UInt8 {
        pixels[(y * width + x) * channels + channel]
    }
}
