import Foundation

/// Resizes 8-bit images with the arithmetic of Pillow's `Image.resize`, so that results are
/// byte-identical to Keras `load_img(target_size=…)`.
///
/// - `nearest` maps output pixel centres to source pixels with Pillow's accumulated
///   double-precision affine stepping (`ImagingScaleAffine`).
/// - Every other filter is a separable convolution whose support widens by the downscale factor
///   (antialiasing), with Pillow 13's choice of which pass runs first. Weights are normalised, converted to 22-bit fixed
///   point, and each pass rounds and clips to 8 bits, as Pillow's `Resample.c` does for uint8 images.
public enum Resampler {
    /// `image` resampled to `size`.
    ///
    /// - Parameters:
    ///   - image: the source, any channel count.
    ///   - size: the output size; both sides at least 1.
    ///   - interpolation: the filter.
    ///   - region: the part of the source to map onto the output; the whole image when `nil`.
    /// - Precondition: `size` is positive and `region` lies inside the image with
    ///   `left <= right`, `top <= bottom` (programmer errors otherwise).
    public static func resize(_ image: Image, to size: ImageSize, interpolation: Interpolation,
                              region: SourceRegion? = nil) -> Image {
        precondition(size.width >= 1 && size.height >= 1, "resize to \(size): both sides must be at least 1")
        let box = region ?? SourceRegion(covering: image.size)
        precondition(box.left >= 0 && box.top >= 0 && box.right <= Float(image.width) && box.bottom <= Float(image.height)
                     && box.right >= box.left && box.bottom >= box.top, "region \(box) outside image \(image.size)")

        if image.size == size && box == SourceRegion(covering: image.size) {
            return image
        }
        // Pillow crops instead of resampling when the box is integral and already the right size.
        if box.left == box.left.rounded(.towardZero), box.top == box.top.rounded(.towardZero),
           box.right - box.left == Float(size.width), box.bottom - box.top == Float(size.height) {
            return crop(image, left: Int(box.left), top: Int(box.top), size: size)
        }
        if interpolation == .nearest {
            return nearest(image, to: size, box: box)
        }
        return convolve(image, to: size, box: box, interpolation: interpolation)
    }

    // MARK: - Crop

    private static func crop(_ image: Image, left: Int, top: Int, size: ImageSize) -> Image {
        let channels = image.channels
        var pixels = [UInt8]()
        pixels.reserveCapacity(size.width * size.height * channels)
        for y in top..<(top + size.height) {
            let start = (y * image.width + left) * channels
            pixels.append(contentsOf: image.pixels[start..<(start + size.width * channels)])
        }
        return Image(width: size.width, height: size.height, channels: channels, pixels: pixels)
    }

    // MARK: - Nearest neighbour

    private static func nearest(_ image: Image, to size: ImageSize, box: SourceRegion) -> Image {
        // Pillow's COORD(): negative positions are off-image, others truncate.
        func coordinate(_ position: Double) -> Int { position < 0 ? -1 : Int(position) }

        let xStep = Double(box.right - box.left) / Double(size.width)
        let yStep = Double(box.bottom - box.top) / Double(size.height)
        // Positions accumulate by repeated addition, exactly as Pillow steps them.
        var sourceColumns = [Int](repeating: -1, count: size.width)
        var xPosition = Double(box.left) + xStep * 0.5
        for x in 0..<size.width {
            let column = coordinate(xPosition)
            if column >= 0 && column < image.width { sourceColumns[x] = column }
            xPosition += xStep
        }

        let channels = image.channels
        // Output pixels whose source falls outside the image stay 0, as Pillow's fill does.
        var pixels = [UInt8](repeating: 0, count: size.width * size.height * channels)
        var yPosition = Double(box.top) + yStep * 0.5
        image.pixels.withUnsafeBufferPointer { input in
            pixels.withUnsafeMutableBufferPointer { output in
                for y in 0..<size.height {
                    let row = coordinate(yPosition)
                    yPosition += yStep
                    guard row >= 0 && row < image.height else { continue }
                    let rowStart = row * image.width * channels
                    for x in 0..<size.width where sourceColumns[x] >= 0 {
                        let from = rowStart + sourceColumns[x] * channels
                        let to = (y * size.width + x) * channels
                        for channel in 0..<channels { output[to + channel] = input[from + channel] }
                    }
                }
            }
        }
        return Image(width: size.width, height: size.height, channels: channels, pixels: pixels)
    }

    // MARK: - Separable convolution

    /// Fixed-point bits of the weights: 32 bits minus 8 for the sample and 2 for overshoot.
    static let precisionBits = 22

    /// Per-output-pixel source windows and fixed-point weights along one axis.
    struct Coefficients {
        /// The maximum window length; weights are stored `kernelSize` per output pixel.
        var kernelSize: Int
        /// First source index of each output pixel's window.
        var starts: [Int]
        /// Window length of each output pixel (at most `kernelSize`).
        var counts: [Int]
        /// `outputSize * kernelSize` weights scaled by 2^22 and rounded half away from zero.
        var weights: [Int32]
    }

    /// Pillow's `precompute_coeffs` followed by `normalize_coeffs_8bpc`.
    static func coefficients(inputSize: Int, start: Float, end: Float, outputSize: Int,
                             interpolation: Interpolation) -> Coefficients {
        let scale = Double(end - start) / Double(outputSize)
        let filterScale = max(scale, 1)
        let support = interpolation.support * filterScale
        let kernelSize = Int(support.rounded(.up)) * 2 + 1
        let inverseFilterScale = 1 / filterScale
        let unit = Double(1 << precisionBits)

        var starts = [Int](repeating: 0, count: outputSize)
        var counts = [Int](repeating: 0, count: outputSize)
        var weights = [Int32](repeating: 0, count: outputSize * kernelSize)
        var window = [Double](repeating: 0, count: kernelSize)
        for output in 0..<outputSize {
            let center = Double(start) + (Double(output) + 0.5) * scale
            // C's (int) cast truncates toward zero, as Int(_:) does.
            let first = max(Int(center - support + 0.5), 0)
            let last = min(Int(center + support + 0.5), inputSize)
            let count = max(last - first, 0)
            var total = 0.0
            for index in 0..<count {
                let weight = interpolation.weight((Double(index + first) - center + 0.5) * inverseFilterScale)
                window[index] = weight
                total += weight
            }
            for index in 0..<count {
                var weight = window[index]
                if total != 0 { weight /= total }
                weights[output * kernelSize + index] =
                    weight < 0 ? Int32(-0.5 + weight * unit) : Int32(0.5 + weight * unit)
            }
            starts[output] = first
            counts[output] = count
        }
        return Coefficients(kernelSize: kernelSize, starts: starts, counts: counts, weights: weights)
    }

    /// Rounds a fixed-point accumulator (which started at one half) to a clipped byte.
    @inline(__always)
    private static func clippedByte(_ accumulator: Int32) -> UInt8 {
        UInt8(clamping: accumulator >> Int32(precisionBits))
    }

    private static func convolve(_ image: Image, to size: ImageSize, box: SourceRegion,
                                 interpolation: Interpolation) -> Image {
        let channels = image.channels
        let needsHorizontal = size.width != image.width || box.left != 0 || box.right != Float(size.width)
        let needsVertical = size.height != image.height || box.top != 0 || box.bottom != Float(size.height)
        // Pillow 13 runs the vertical pass first when the height shrinks by more than twice as
        // many pixels as the width does (Pillow 12 and older always go horizontal first). The
        // order changes the 8-bit rounding between passes, so it must match.
        let heightReduction = image.height - size.height
        let horizontalFirst = !(heightReduction > 0 && heightReduction > (image.width - size.width) * 2)

        var vertical = coefficients(inputSize: image.height, start: box.top, end: box.bottom,
                                    outputSize: size.height, interpolation: interpolation)
        let horizontal = coefficients(inputSize: image.width, start: box.left, end: box.right,
                                      outputSize: size.width, interpolation: interpolation)
        var current = image
        if horizontalFirst {
            if needsHorizontal {
                // Only the source rows some output row reads go through the horizontal pass.
                let firstRow = vertical.starts[0]
                let lastRow = vertical.starts[size.height - 1] + vertical.counts[size.height - 1]
                vertical.starts = vertical.starts.map { $0 - firstRow }
                current = horizontalPass(current, rows: firstRow..<lastRow, coefficients: horizontal, channels: channels)
            }
            if needsVertical {
                current = verticalPass(current, outputHeight: size.height, coefficients: vertical, channels: channels)
            }
        } else {
            if needsVertical {
                current = verticalPass(current, outputHeight: size.height, coefficients: vertical, channels: channels)
            }
            if needsHorizontal {
                current = horizontalPass(current, rows: 0..<current.height, coefficients: horizontal, channels: channels)
            }
        }
        return current
    }

    private static func horizontalPass(_ image: Image, rows: Range<Int>, coefficients: Coefficients,
                                       channels: Int) -> Image {
        let outputWidth = coefficients.starts.count
        var pixels = [UInt8](repeating: 0, count: outputWidth * rows.count * channels)
        let half = Int32(1) << Int32(precisionBits - 1)
        image.pixels.withUnsafeBufferPointer { input in
            coefficients.weights.withUnsafeBufferPointer { weights in
                pixels.withUnsafeMutableBufferPointer { output in
                    for (outputRow, row) in rows.enumerated() {
                        let rowStart = row * image.width * channels
                        for x in 0..<outputWidth {
                            let first = coefficients.starts[x], count = coefficients.counts[x]
                            let weightStart = x * coefficients.kernelSize
                            let to = (outputRow * outputWidth + x) * channels
                            if channels == 3 {
                                // RGB, the common case: one pass over the taps for all three channels.
                                var red = half, green = half, blue = half
                                var from = rowStart + first * 3
                                for tap in 0..<count {
                                    let weight = weights[weightStart + tap]
                                    red &+= Int32(input[from]) &* weight
                                    green &+= Int32(input[from + 1]) &* weight
                                    blue &+= Int32(input[from + 2]) &* weight
                                    from += 3
                                }
                                output[to] = clippedByte(red)
                                output[to + 1] = clippedByte(green)
                                output[to + 2] = clippedByte(blue)
                                continue
                            }
                            for channel in 0..<channels {
                                var accumulator = half
                                var from = rowStart + first * channels + channel
                                for tap in 0..<count {
                                    accumulator &+= Int32(input[from]) &* weights[weightStart + tap]
                                    from += channels
                                }
                                output[to + channel] = clippedByte(accumulator)
                            }
                        }
                    }
                }
            }
        }
        return Image(width: outputWidth, height: rows.count, channels: channels, pixels: pixels)
    }

    private static func verticalPass(_ image: Image, outputHeight: Int, coefficients: Coefficients,
                                     channels: Int) -> Image {
        let rowLength = image.width * channels
        var pixels = [UInt8](repeating: 0, count: outputHeight * rowLength)
        let half = Int32(1) << Int32(precisionBits - 1)
        var accumulators = [Int32](repeating: 0, count: rowLength)
        image.pixels.withUnsafeBufferPointer { input in
            coefficients.weights.withUnsafeBufferPointer { weights in
                pixels.withUnsafeMutableBufferPointer { output in
                    accumulators.withUnsafeMutableBufferPointer { sums in
                        for y in 0..<outputHeight {
                            for index in 0..<rowLength { sums[index] = half }
                            let first = coefficients.starts[y], count = coefficients.counts[y]
                            for tap in 0..<count {
                                let weight = weights[y * coefficients.kernelSize + tap]
                                let rowStart = (first + tap) * rowLength
                                for index in 0..<rowLength {
                                    sums[index] &+= Int32(input[rowStart + index]) &* weight
                                }
                            }
                            let outputStart = y * rowLength
                            for index in 0..<rowLength {
                                output[outputStart + index] = clippedByte(sums[index])
                            }
                        }
                    }
                }
            }
        }
        return Image(width: image.width, height: outputHeight, channels: channels, pixels: pixels)
    }
}
