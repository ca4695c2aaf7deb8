import Foundation
import TLTensor
import Testing
@testable import TLImaging

@Suite("Preprocessing as keras.applications preprocess_input")
struct PreprocessingTests {
    @Test("caffe, tf and torch match VGG16, MobileNetV2 and DenseNet bit for bit",
          arguments: [Preprocessing.caffe, .tensorflow, .torch])
    func matchesKeras(mode: Preprocessing) throws {
        let batch = try ImageLoader.batch(files: [Fixtures.image("rgba.png")], size: ImageSize(height: 16, width: 16),
                                          interpolation: .bilinear, preprocessing: mode)
        let expected = try Fixtures.golden("preprocessed/\(mode.rawValue).npy")
        #expect(batch.shape == [1, 16, 16, 3])
        #expect(batch.maxAbsoluteDifference(expected) <= 1e-6)
    }

    @Test("none keeps 0…255 and unit scales to 0…1")
    func rawAndUnit() throws {
        let input = try Fixtures.golden("preprocessed/input.npy")
        let file = [Fixtures.image("rgba.png")]
        let size = ImageSize(height: 16, width: 16)
        let raw = try ImageLoader.batch(files: file, size: size, interpolation: .bilinear, preprocessing: .identity)
        #expect(raw.maxAbsoluteDifference(input) == 0)
        let unit = try ImageLoader.batch(files: file, size: size, interpolation: .bilinear, preprocessing: .unit)
        #expect(unit.maxAbsoluteDifference(Tensor(shape: input.shape, scalars: input.scalars.map { $0 / 255 })) == 0)
    }

    @Test("a batch stacks images in file order")
    func batchOrder() throws {
        let files = ["rgba.png", "gray.png", "palette.png"].map(Fixtures.image)
        let batch = try ImageLoader.batch(files: files, size: ImageSize(height: 23, width: 37), preprocessing: .identity)
        #expect(batch.shape == [3, 23, 37, 3])
        for (index, name) in ["rgba", "gray", "palette"].enumerated() {
            let expected = try Fixtures.golden("decoded/\(name)_png.npy")
            let slice = Array(batch.scalars[(index * expected.count)..<((index + 1) * expected.count)])
            #expect(slice == expected.scalars, "image \(index) (\(name)) out of place")
        }
    }

    /// Expected modes read from each keras/src/applications/<module>.py `preprocess_input`.
    @Test("application names map to their preprocess_input mode")
    func applications() {
        let expected: [(String, Preprocessing?)] = [
            ("VGG16", .caffe), ("vgg19", .caffe), ("ResNet50", .caffe), ("resnet152", .caffe),
            ("ResNet50V2", .tensorflow), ("resnet_v2", .tensorflow), ("MobileNet", .tensorflow),
            ("mobilenet_v2", .tensorflow), ("InceptionV3", .tensorflow), ("InceptionResNetV2", .tensorflow),
            ("Xception", .tensorflow), ("NASNetMobile", .tensorflow), ("DenseNet121", .torch),
            ("EfficientNetB0", .identity), ("efficientnet_v2", .identity), ("ConvNeXtTiny", .identity),
            ("RegNetX002", .identity), ("MobileNetV3Small", .identity), ("AlexNet", nil),
        ]
        for (name, mode) in expected {
            #expect(Preprocessing(kerasApplication: name) == mode, "\(name)")
        }
    }

    @Test("mode names parse, including Keras' spellings")
    func names() throws {
        #expect(try Preprocessing(name: "tf") == .tensorflow)
        #expect(try Preprocessing(name: "none") == .identity)
        #expect(try Preprocessing(name: "Caffe") == .caffe)
        #expect(throws: ImagingError.self) { try Preprocessing(name: "inception") }
    }
}
