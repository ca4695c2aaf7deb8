import Foundation

/// A resampling filter, named as Keras `load_img(interpolation=…)` names Pillow's filters.
public enum Interpolation: String, Sendable, CaseIterable {
    /// Pillow `NEAREST`: the source pixel under each output pixel's centre; Keras' default.
    case nearest
    /// Pillow `BILINEAR`: triangle filter, support 1, widened when downscaling.
    case bilinear
    /// Pillow `BICUBIC`: cubic convolution with a = -0.5, support 2.
    case bicubic
    /// Pillow `LANCZOS`: windowed sinc, support 3.
    case lanczos
    /// Pillow `BOX`: each source pixel weighted by its overlap, support ½.
    case box
    /// Pillow `HAMMING`: Hamming-windowed sinc, support 1.
    case hamming

    /// Parses a Keras interpolation name (case-insensitive).
    /// - Throws: ``ImagingError`` listing the accepted names when `name` is not one of them.
    public init(name: String) throws {
        guard let value = Interpolation(rawValue: name.lowercased()) else {
            let names = Interpolation.allCases.map(\.rawValue).joined(separator: ", ")
            throw ImagingError(path: "interpolation", problem: "unknown interpolation \"\(name)\" (expected one of \(names))")
        }
        self = value
    }

    /// Half the filter's width in source pixels at scale 1, as Pillow defines it.
    var support: Double {
        switch self {
        case .nearest, .box: return 0.5
        case .bilinear, .hamming: return 1
        case .bicubic: return 2
        case .lanczos: return 3
        }
    }

    /// The filter's weight at distance `x`, with Pillow's double-precision formulas.
    func weight(_ x: Double) -> Double {
        switch self {
        case .nearest, .box:
            return x > -0.5 && x <= 0.5 ? 1 : 0
        case .bilinear:
            let distance = abs(x)
            return distance < 1 ? 1 - distance : 0
        case .hamming:
            let distance = abs(x)
            if distance == 0 { return 1 }
            if distance >= 1 { return 0 }
            let angle = distance * Double.pi
            // Pillow writes the window constants as C floats, so they carry float rounding.
            return sin(angle) / angle * (Double(Float(0.54)) + Double(Float(0.46)) * cos(angle))
        case .bicubic:
            let a = -0.5
            let distance = abs(x)
            if distance < 1 { return ((a + 2) * distance - (a + 3)) * distance * distance + 1 }
            if distance < 2 { return (((distance - 5) * distance + 8) * distance - 4) * a }
            return 0
        case .lanczos:
            guard -3 <= x && x < 3 else { return 0 }
            return Self.sinc(x) * Self.sinc(x / 3)
        }
    }

    private static func sinc(_ x: Double) -> Double {
        if x == 0 { return 1 }
        let angle = x * Double.pi
        return sin(angle) / angle
    }
}
