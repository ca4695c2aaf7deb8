import Foundation

/// Keras `ImageDataGenerator`'s random transforms, applied to a decoded image's pixel values
/// (HWC floats, as `img_to_array` gives them) before preprocessing, as `flow_from_directory` does.
///
/// Parsed from `--augment`: `flip` (horizontal), `vflip`, `shift=F` (width and height, a fraction),
/// `zoom=F` (range `[1−F, 1+F]` per axis), `rotate=DEG`, `shear=DEG`, `brightness=LO:HI`,
/// `fill=nearest|constant|reflect|wrap` (Keras' default nearest, `constant` fills with 0).
/// The geometry is Keras' own: one affine matrix about the image centre, sampled with linear
/// interpolation as `scipy.ndimage.affine_transform(order=1)` samples it; flips after it; the
/// brightness factor through 8-bit values as PIL's `ImageEnhance.Brightness` applies it.
public struct Augmentation: Sendable, Equatable, CustomStringConvertible {
    /// How samples outside the image are filled (scipy's modes).
    public enum Fill: String, Sendable, CaseIterable {
        /// The nearest edge pixel.
        case nearest
        /// Zero.
        case constant
        /// Mirrored about the edge (`d c b a | a b c d | d c b a`).
        case reflect
        /// Wrapped around to the opposite edge.
        case wrap
    }

    public var horizontalFlip = false
    public var verticalFlip = false
    /// Fractions of the width and height a shift may reach.
    public var widthShift: Double = 0, heightShift: Double = 0
    /// `zoom_range`: each axis scales by a factor in `[1 − zoom, 1 + zoom]`.
    public var zoom: Double = 0
    /// Largest rotation, degrees.
    public var rotation: Double = 0
    /// Largest shear, degrees.
    public var shear: Double = 0
    /// Brightness factor range, or nil.
    public var brightness: ClosedRange<Double>?
    public var fill: Fill = .nearest

    public init() {}

    /// Parses `--augment`.
    /// - Throws: ``ImagingError`` naming the item that is not understood.
    public init(parsing text: String) throws {
        for item in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !item.isEmpty {
            let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
            let key = parts[0], value = parts.count == 2 ? parts[1] : nil
            func number() throws -> Double {
                guard let value, let number = Double(value), number >= 0, number.isFinite else {
                    throw ImagingError(path: "--augment", problem: "'\(item)' needs a non-negative number (\(key)=0.2)")
                }
                return number
            }
            switch key {
            case "flip", "hflip": horizontalFlip = true
            case "vflip": verticalFlip = true
            case "shift": widthShift = try number(); heightShift = widthShift
            case "width_shift": widthShift = try number()
            case "height_shift": heightShift = try number()
            case "zoom": zoom = try number()
            case "rotate", "rotation": rotation = try number()
            case "shear": shear = try number()
            case "brightness":
                let bounds = (value ?? "").split(separator: ":").compactMap { Double($0) }
                guard bounds.count == 2, bounds[0] >= 0, bounds[0] <= bounds[1] else {
                    throw ImagingError(path: "--augment", problem: "'\(item)' needs LO:HI factors (brightness=0.8:1.2)")
                }
                brightness = bounds[0]...bounds[1]
            case "fill":
                guard let value, let fill = Fill(rawValue: value) else {
                    throw ImagingError(path: "--augment", problem: "'\(item)': fill is nearest, constant, reflect or wrap")
                }
                self.fill = fill
            default:
                throw ImagingError(path: "--augment", problem: "'\(item)' is not one of flip, vflip, shift=, zoom=, rotate=, shear=, brightness=LO:HI, fill=")
            }
        }
    }

    /// Whether nothing changes an image.
    public var isEmpty: Bool {
        !horizontalFlip && !verticalFlip && widthShift == 0 && heightShift == 0 && zoom == 0 && rotation == 0 && shear == 0
            && brightness == nil
    }

    public var description: String {
        var items: [String] = []
        if horizontalFlip { items.append("flip") }
        if verticalFlip { items.append("vflip") }
        if widthShift != 0 || heightShift != 0 { items.append(widthShift == heightShift ? "shift=\(widthShift)" : "width_shift=\(widthShift),height_shift=\(heightShift)") }
        if zoom != 0 { items.append("zoom=\(zoom)") }
        if rotation != 0 { items.append("rotate=\(rotation)") }
        if shear != 0 { items.append("shear=\(shear)") }
        if let brightness { items.append("brightness=\(brightness.lowerBound):\(brightness.upperBound)") }
        if fill != .nearest { items.append("fill=\(fill.rawValue)") }
        return items.joined(separator: ",")
    }

    /// One image's transform, as `ImageDataGenerator.get_random_transform` returns it.
    public struct Parameters: Sendable, Equatable {
        /// Rotation, degrees.
        public var theta: Double = 0
        /// Shift along the rows (pixels), then along the columns.
        public var tx: Double = 0, ty: Double = 0
        /// Shear, degrees.
        public var shear: Double = 0
        /// Zoom factors.
        public var zx: Double = 1, zy: Double = 1
        public var flipHorizontal = false, flipVertical = false
        public var brightness: Double?

        public init(theta: Double = 0, tx: Double = 0, ty: Double = 0, shear: Double = 0, zx: Double = 1, zy: Double = 1,
                    flipHorizontal: Bool = false, flipVertical: Bool = false, brightness: Double? = nil) {
            (self.theta, self.tx, self.ty, self.shear, self.zx, self.zy) = (theta, tx, ty, shear, zx, zy)
            (self.flipHorizontal, self.flipVertical, self.brightness) = (flipHorizontal, flipVertical, brightness)
        }
    }

    /// Draws one image's parameters from `random`, with Keras' ranges.
    public func randomParameters<R: RandomNumberGenerator>(height: Int, width: Int, using random: inout R) -> Parameters {
        func uniform(_ low: Double, _ high: Double) -> Double { low == high ? low : Double.random(in: low..<high, using: &random) }
        var p = Parameters()
        if rotation > 0 { p.theta = uniform(-rotation, rotation) }
        if heightShift > 0 { p.tx = uniform(-heightShift, heightShift) * Double(height) }
        if widthShift > 0 { p.ty = uniform(-widthShift, widthShift) * Double(width) }
        if shear > 0 { p.shear = uniform(-shear, shear) }
        if zoom > 0 { p.zx = uniform(1 - zoom, 1 + zoom); p.zy = uniform(1 - zoom, 1 + zoom) }
        p.flipHorizontal = horizontalFlip && Bool.random(using: &random)
        p.flipVertical = verticalFlip && Bool.random(using: &random)
        if let brightness { p.brightness = uniform(brightness.lowerBound, brightness.upperBound) }
        return p
    }

    /// `ImageDataGenerator.apply_transform`: the affine warp, then flips, then brightness.
    /// - Parameter values: `height × width × channels` samples (HWC).
    public static func apply(_ p: Parameters, to values: [Float], height: Int, width: Int, channels: Int, fill: Fill) -> [Float] {
        var result = values
        // The matrix in Keras' order (rotation · shift · shear · zoom), about the centre.
        var matrix = identity
        if p.theta != 0 {
            let t = p.theta * .pi / 180
            matrix = multiply(matrix, [[cos(t), -sin(t), 0], [sin(t), cos(t), 0], [0, 0, 1]])
        }
        if p.tx != 0 || p.ty != 0 { matrix = multiply(matrix, [[1, 0, p.tx], [0, 1, p.ty], [0, 0, 1]]) }
        if p.shear != 0 {
            let s = p.shear * .pi / 180
            matrix = multiply(matrix, [[1, -sin(s), 0], [0, cos(s), 0], [0, 0, 1]])
        }
        if p.zx != 1 || p.zy != 1 { matrix = multiply(matrix, [[p.zx, 0, 0], [0, p.zy, 0], [0, 0, 1]]) }
        if matrix != identity {
            let (ox, oy) = (Double(height) / 2 - 0.5, Double(width) / 2 - 0.5)
            matrix = multiply(multiply([[1, 0, ox], [0, 1, oy], [0, 0, 1]], matrix), [[1, 0, -ox], [0, 1, -oy], [0, 0, 1]])
            // Keras swaps the axes for channels-last images before handing the matrix to scipy.
            for row in 0..<3 { matrix[row].swapAt(0, 1) }
            matrix.swapAt(0, 1)
            result = warp(values, height: height, width: width, channels: channels, matrix: matrix, fill: fill)
        }
        if p.flipHorizontal {
            for y in 0..<height {
                for x in 0..<width / 2 {
                    for c in 0..<channels { result.swapAt((y * width + x) * channels + c, (y * width + width - 1 - x) * channels + c) }
                }
            }
        }
        if p.flipVertical {
            for y in 0..<height / 2 {
                for x in 0..<width {
                    for c in 0..<channels { result.swapAt((y * width + x) * channels + c, ((height - 1 - y) * width + x) * channels + c) }
                }
            }
        }
        if let factor = p.brightness {
            // array_to_img (values cast to uint8, truncating), PIL's blend with black, img_to_array.
            let alpha = Float(factor)
            for i in result.indices {
                let pixel = Float(UInt8(clamping: Int(result[i].rounded(.towardZero))))
                result[i] = Float(min(255, max(0, Int(pixel * alpha))))
            }
        }
        return result
    }

    private static let identity: [[Double]] = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]

    private static func multiply(_ a: [[Double]], _ b: [[Double]]) -> [[Double]] {
        (0..<3).map { i in (0..<3).map { j in (0..<3).reduce(0) { $0 + a[i][$1] * b[$1][j] } } }
    }

    /// `output[r, c] = input[A·(r, c) + offset]`, bilinear, per channel.
    private static func warp(_ values: [Float], height: Int, width: Int, channels: Int, matrix: [[Double]], fill: Fill) -> [Float] {
        var output = [Float](repeating: 0, count: values.count)
        for r in 0..<height {
            for c in 0..<width {
                let y = matrix[0][0] * Double(r) + matrix[0][1] * Double(c) + matrix[0][2]
                let x = matrix[1][0] * Double(r) + matrix[1][1] * Double(c) + matrix[1][2]
                for channel in 0..<channels {
                    output[(r * width + c) * channels + channel] = Float(sample(values, y, x, channel: channel, height: height,
                                                                                 width: width, channels: channels, fill: fill))
                }
            }
        }
        return output
    }

    /// Linear interpolation at (y, x) with scipy's boundary modes.
    private static func sample(_ values: [Float], _ y: Double, _ x: Double, channel: Int, height: Int, width: Int, channels: Int,
                               fill: Fill) -> Double {
        if fill == .constant {
            // scipy's `constant`: no interpolation reaches past the edge.
            if y < 0 || y > Double(height - 1) || x < 0 || x > Double(width - 1) { return 0 }
        }
        let (y, x) = (map(y, count: height, fill: fill), map(x, count: width, fill: fill))
        let y0 = Int(y.rounded(.down)), x0 = Int(x.rounded(.down))
        let fy = y - Double(y0), fx = x - Double(x0)
        func at(_ row: Int, _ column: Int) -> Double {
            let row = index(row, count: height, fill: fill), column = index(column, count: width, fill: fill)
            return Double(values[(row * width + column) * channels + channel])
        }
        let top = at(y0, x0) * (1 - fx) + at(y0, x0 + 1) * fx
        let bottom = at(y0 + 1, x0) * (1 - fx) + at(y0 + 1, x0 + 1) * fx
        return top * (1 - fy) + bottom * fy
    }

    /// A coordinate brought into the image the way scipy's mode maps it.
    private static func map(_ coordinate: Double, count: Int, fill: Fill) -> Double {
        let last = Double(count - 1)
        switch fill {
        case .nearest, .constant: return min(max(coordinate, 0), last)
        case .reflect:
            guard count > 1 else { return 0 }
            let period = 2 * Double(count)
            var value = coordinate.truncatingRemainder(dividingBy: period)
            if value < 0 { value += period }
            // Half-sample symmetric: -0.5 and count - 0.5 are the mirrors.
            if value > Double(count) - 0.5 { value = period - 1 - value }
            return value
        case .wrap:
            guard count > 1 else { return 0 }
            var value = coordinate.truncatingRemainder(dividingBy: last)
            if value < 0 { value += last }
            return value
        }
    }

    /// A neighbour index brought into the image.
    private static func index(_ index: Int, count: Int, fill: Fill) -> Int {
        switch fill {
        case .nearest, .constant, .wrap: return min(max(index, 0), count - 1)
        case .reflect:
            if index < 0 { return min(-index - 1, count - 1) }
            if index >= count { return max(2 * count - index - 1, 0) }
            return index
        }
    }
}

extension Preprocessing {
    /// Preprocesses float pixel values (an augmented image, 0–255 scale, HWC RGB) in place.
    public func apply(toValues values: inout [Float]) {
        let pixelCount = values.count / 3
        switch self {
        case .caffe:
            let mean: [Float] = [103.939, 116.779, 123.68]
            for pixel in 0..<pixelCount {
                let base = pixel * 3
                let (r, g, b) = (values[base], values[base + 1], values[base + 2])
                values[base] = b - mean[0]
                values[base + 1] = g - mean[1]
                values[base + 2] = r - mean[2]
            }
        case .tensorflow:
            for index in values.indices { values[index] = values[index] / 127.5 - 1 }
        case .torch:
            let mean: [Float] = [0.485, 0.456, 0.406]
            let standardDeviation: [Float] = [0.229, 0.224, 0.225]
            for index in values.indices { values[index] = (values[index] / 255 - mean[index % 3]) / standardDeviation[index % 3] }
        case .identity:
            break
        case .unit:
            for index in values.indices { values[index] /= 255 }
        }
    }
}
