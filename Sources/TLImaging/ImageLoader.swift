import Dispatch
import Foundation
import TLTensor

/// Loads image files the way Keras `load_img` + `img_to_array` + `preprocess_input` does, into
/// NHWC float32 batches.
///
/// ```swift
/// let batch = try ImageLoader.batch(files: urls, size: ImageSize(height: 224, width: 224),
///                                   interpolation: .bilinear, preprocessing: .caffe)
/// // batch.shape == [urls.count, 224, 224, 3]
/// ```
public struct ImageLoader: Sendable {
    /// The output size; `nil` keeps each image's own size (then a batch needs equal sizes).
    public var size: ImageSize?
    /// The resampling filter, used only when an image's size differs from `size`.
    public var interpolation: Interpolation
    /// Crop the centre to the target aspect ratio before resizing, as `keep_aspect_ratio=True`.
    public var keepsAspectRatio: Bool
    /// How files are decoded (EXIF orientation, pixel limit).
    public var decoder: ImageDecoder

    /// A loader; the defaults match `keras.utils.load_img`.
    public init(size: ImageSize? = nil, interpolation: Interpolation = .nearest, keepsAspectRatio: Bool = false,
                decoder: ImageDecoder = ImageDecoder()) {
        self.size = size
        self.interpolation = interpolation
        self.keepsAspectRatio = keepsAspectRatio
        self.decoder = decoder
    }

    /// Decodes `url` and resizes it to ``size`` as `load_img(path, target_size=…)` does.
    /// - Throws: ``ImagingError`` naming the file.
    public func load(contentsOf url: URL) throws -> Image {
        let image = try decoder.decode(contentsOf: url)
        guard let size, size != image.size else { return image }
        let region = keepsAspectRatio ? SourceRegion.centerCrop(of: image.size, toAspectOf: size) : nil
        return Resampler.resize(image, to: size, interpolation: interpolation, region: region)
    }

    /// Loads `files` into one `[files.count, height, width, 3]` tensor, preprocessed.
    ///
    /// Files are decoded in parallel; the first failing file in list order is reported.
    /// - Throws: ``ImagingError`` naming the first file that cannot be loaded, or the first
    ///   whose size differs from the others when ``size`` is `nil`.
    public func batch(files: [URL], preprocessing: Preprocessing) throws -> Tensor {
        let images = try loadAll(files)
        guard let first = images.first else {
            let height = size?.height ?? 0, width = size?.width ?? 0
            return Tensor(shape: [0, height, width, 3])
        }
        for (index, image) in images.enumerated() where image.size != first.size {
            throw ImagingError(path: files[index].path,
                               problem: "is \(image.size) but \(files[0].lastPathComponent) is \(first.size); give a target size to batch images of different sizes")
        }
        return Self.tensor(of: images, preprocessing: preprocessing)
    }

    /// Loads `files` resized to `size` into one `[files.count, size.height, size.width, 3]` tensor.
    ///
    /// - Parameters:
    ///   - files: image files (JPEG or PNG, recognised by content).
    ///   - size: the target (height, width).
    ///   - interpolation: the resampling filter; Keras' default is `.nearest`.
    ///   - preprocessing: the model family's `preprocess_input`.
    ///   - keepsAspectRatio: centre-crop to the target aspect ratio first.
    /// - Throws: ``ImagingError`` naming the first file that cannot be loaded.
    public static func batch(files: [URL], size: ImageSize, interpolation: Interpolation = .nearest,
                             preprocessing: Preprocessing, keepsAspectRatio: Bool = false) throws -> Tensor {
        let loader = ImageLoader(size: size, interpolation: interpolation, keepsAspectRatio: keepsAspectRatio)
        return try loader.batch(files: files, preprocessing: preprocessing)
    }

    private func loadAll(_ files: [URL]) throws -> [Image] {
        try loadEach(files).map { try $0.get() }
    }

    /// Decodes and resizes each of `files` in parallel; one result per file, in order, so a
    /// caller can report every unreadable file rather than the first.
    public func loadEach(_ files: [URL]) -> [Result<Image, Error>] {
        var results = [Result<Image, Error>?](repeating: nil, count: files.count)
        results.withUnsafeMutableBufferPointer { slots in
            // Each iteration writes only its own slot.
            nonisolated(unsafe) let slots = slots
            DispatchQueue.concurrentPerform(iterations: files.count) { index in
                slots[index] = Result { try load(contentsOf: files[index]) }
            }
        }
        return results.enumerated().map { index, result in
            result ?? .failure(ImagingError(path: files[index].path, problem: "was not loaded"))
        }
    }

    /// Stacks equally sized `images` into one preprocessed `[count, height, width, 3]` tensor.
    public static func tensor(of images: [Image], preprocessing: Preprocessing) -> Tensor {
        guard let first = images.first else { return Tensor(shape: [0, 0, 0, 3]) }
        precondition(images.allSatisfy { $0.size == first.size }, "images of one batch must have one size")
        let imageLength = first.pixels.count
        var scalars = [Float](repeating: 0, count: imageLength * images.count)
        scalars.withUnsafeMutableBufferPointer { buffer in
            for (index, image) in images.enumerated() {
                let slice = UnsafeMutableBufferPointer(rebasing: buffer[(index * imageLength)..<((index + 1) * imageLength)])
                preprocessing.apply(to: image, into: slice)
            }
        }
        return Tensor(shape: [images.count, first.height, first.width, 3], scalars: scalars)
    }
}
