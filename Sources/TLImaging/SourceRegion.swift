/// A rectangle of the source image to resample from, in pixel coordinates
/// (Pillow's `resize(box=(left, top, right, bottom))`).
///
/// Coordinates are single-precision floats because Pillow stores the box as C floats; keeping
/// the same type keeps the resampling arithmetic bit-identical.
public struct SourceRegion: Hashable, Sendable {
    /// First column (inclusive edge).
    public var left: Float
    /// First row (inclusive edge).
    public var top: Float
    /// Right edge (exclusive), at most the image width.
    public var right: Float
    /// Bottom edge (exclusive), at most the image height.
    public var bottom: Float

    /// A region with the given edges.
    public init(left: Float, top: Float, right: Float, bottom: Float) {
        self.left = left
        self.top = top
        self.right = right
        self.bottom = bottom
    }

    /// The whole of an image of `size`.
    public init(covering size: ImageSize) {
        self.init(left: 0, top: 0, right: Float(size.width), bottom: Float(size.height))
    }

    /// The centred crop of an image of `size` that has the aspect ratio of `target`, computed
    /// with the integer arithmetic of Keras `load_img(keep_aspect_ratio=True)`.
    public static func centerCrop(of size: ImageSize, toAspectOf target: ImageSize) -> SourceRegion {
        let cropHeight = min(size.height, (size.width * target.height) / target.width)
        let cropWidth = min(size.width, (size.height * target.width) / target.height)
        let top = (size.height - cropHeight) / 2
        let left = (size.width - cropWidth) / 2
        return SourceRegion(left: Float(left), top: Float(top),
                            right: Float(left + cropWidth), bottom: Float(top + cropHeight))
    }
}
