/// How pixel values become model inputs, as each `keras.applications` family's
/// `preprocess_input` computes them.
///
/// The arithmetic is done in `Float` in the same order as Keras' NumPy code on float32 arrays
/// (e.g. `x / 127.5 - 1`, not `x * (1/127.5) - 1`), so results match to the last bit.
public enum Preprocessing: String, Sendable, CaseIterable {
    /// VGG16/19, ResNet50 (v1): RGB → BGR, then subtract the ImageNet mean
    /// `[103.939, 116.779, 123.68]` (in BGR order); no scaling.
    case caffe
    /// MobileNet, MobileNetV2, Inception, Xception, ResNetV2, NASNet: `x / 127.5 - 1` into [-1, 1].
    case tensorflow = "tf"
    /// DenseNet: `(x / 255 - mean) / std` with mean `[0.485, 0.456, 0.406]` and
    /// std `[0.229, 0.224, 0.225]` (RGB order).
    case torch
    /// Raw 0…255 values, for models with built-in rescaling (EfficientNet, ConvNeXt, RegNet).
    case identity = "none"
    /// `x / 255` into [0, 1], the TF Hub image convention.
    case unit

    /// Parses a mode name: `caffe`, `tf`, `torch`, `none` or `unit` (case-insensitive;
    /// `tensorflow`, `identity` and `raw` are accepted too).
    /// - Throws: ``ImagingError`` listing the accepted names.
    public init(name: String) throws {
        switch name.lowercased() {
        case "tensorflow": self = .tensorflow
        case "identity", "raw": self = .identity
        default:
            guard let mode = Preprocessing(rawValue: name.lowercased()) else {
                let names = Preprocessing.allCases.map(\.rawValue).joined(separator: ", ")
                throw ImagingError(path: "preprocessing", problem: "unknown preprocessing \"\(name)\" (expected one of \(names))")
            }
            self = mode
        }
    }

    /// The mode `keras.applications.<module>.preprocess_input` uses for a model or module name
    /// such as `VGG16`, `resnet50`, `ResNet50V2`, `mobilenet_v2`, `DenseNet121`, `EfficientNetB0`;
    /// `nil` for names it does not know.
    ///
    /// EfficientNet(V2), ConvNeXt, RegNet and MobileNetV3 rescale inside the model, so their
    /// `preprocess_input` passes pixels through unchanged (``identity``).
    public init?(kerasApplication name: String) {
        let key = name.lowercased().filter { $0.isLetter || $0.isNumber }
        func starts(_ prefix: String) -> Bool { key.hasPrefix(prefix) }
        if starts("vgg") {
            self = .caffe
        } else if starts("resnet") {
            self = key.hasSuffix("v2") ? .tensorflow : .caffe
        } else if starts("mobilenetv3") || starts("efficientnet") || starts("convnext") || starts("regnet") {
            self = .identity
        } else if starts("mobilenet") || starts("inception") || starts("xception") || starts("nasnet") {
            self = .tensorflow
        } else if starts("densenet") {
            self = .torch
        } else {
            return nil
        }
    }

    /// Writes the preprocessed values of an RGB `image` (HWC) into `output`, which must hold
    /// `image.pixels.count` floats.
    /// - Precondition: `image.channels == 3` and `output.count == image.pixels.count`.
    public func apply(to image: Image, into output: UnsafeMutableBufferPointer<Float>) {
        precondition(image.channels == 3, "preprocessing needs RGB images, got \(image.channels) channels")
        precondition(output.count == image.pixels.count, "output holds \(output.count) floats, image has \(image.pixels.count)")
        let pixelCount = image.width * image.height
        image.pixels.withUnsafeBufferPointer { input in
            switch self {
            case .caffe:
                let mean: [Float] = [103.939, 116.779, 123.68]
                for pixel in 0..<pixelCount {
                    let base = pixel * 3
                    for channel in 0..<3 {
                        output[base + channel] = Float(input[base + 2 - channel]) - mean[channel]
                    }
                }
            case .tensorflow:
                for index in 0..<input.count { output[index] = Float(input[index]) / 127.5 - 1 }
            case .torch:
                let mean: [Float] = [0.485, 0.456, 0.406]
                let standardDeviation: [Float] = [0.229, 0.224, 0.225]
                for pixel in 0..<pixelCount {
                    let base = pixel * 3
                    for channel in 0..<3 {
                        output[base + channel] = (Float(input[base + channel]) / 255 - mean[channel]) / standardDeviation[channel]
                    }
                }
            case .identity:
                for index in 0..<input.count { output[index] = Float(input[index]) }
            case .unit:
                for index in 0..<input.count { output[index] = Float(input[index]) / 255 }
            }
        }
    }

    /// The preprocessed values of an RGB `image` as a `[height, width, 3]` array.
    public func apply(to image: Image) -> [Float] {
        var values = [Float](repeating: 0, count: image.pixels.count)
        values.withUnsafeMutableBufferPointer { apply(to: image, into: $0) }
        return values
    }
}
