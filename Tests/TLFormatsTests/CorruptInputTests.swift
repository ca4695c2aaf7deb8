import Foundation
import Testing
import TLTensor
@testable import TLFormats

@Suite("bad input gives one clear error, never a crash")
struct CorruptInputTests {
    /// Opens `url` and reads every weight; returns the error, if any.
    static func openAndReadAll(_ url: URL) -> (any Error)? {
        do {
            let file = try WeightFile.open(url)
            for (layer, weight) in file.allWeights {
                _ = try file.tensor(layer: layer.name, weight: weight.name)
            }
            _ = file.summary()
            return nil
        } catch {
            return error
        }
    }

    static func expectOneLine(_ error: any Error, naming path: String) {
        let message = (error as? LocalizedError)?.errorDescription ?? "\(error)"
        #expect(!message.contains("\n"), "multi-line error: \(message)")
        #expect(message.contains(path), "error does not name the file: \(message)")
        #expect(error is HDF5Error || error is FormatError || error is TensorFileError, "unexpected error type \(type(of: error))")
    }

    @Test("a file that is not a weight file", arguments: [Data("hello\n".utf8), Data(), Data(repeating: 0, count: 4096)])
    func notAWeightFile(contents: Data) throws {
        let scratch = try ScratchDirectory()
        let url = scratch.file("model.h5")
        try contents.write(to: url)
        let error = try #require(Self.openAndReadAll(url))
        Self.expectOneLine(error, naming: url.path)
    }

    @Test("a missing file")
    func missingFile() throws {
        let url = URL(fileURLWithPath: "/nonexistent/tlhub/model.h5")
        let error = try #require(Self.openAndReadAll(url))
        Self.expectOneLine(error, naming: url.path)
    }

    @Test("a dataset whose declared size is absurd is rejected before allocating")
    func absurdDatasetSize() throws {
        let url = Fixtures.url("absurd_dataset.h5")
        let error = try #require(Self.openAndReadAll(url) as? HDF5Error)
        #expect(error.objectPath == "/dense/dense/kernel:0")
        #expect(error.problem.contains("68719476736 bytes"))
    }

    @Test("a safetensors header that lies about offsets")
    func lyingSafeTensors() throws {
        let scratch = try ScratchDirectory()
        let url = scratch.file("lie.safetensors")
        let header = #"{"dense/kernel":{"dtype":"F32","shape":[1000,1000],"data_offsets":[0,4000000]}}"#
        var data = Data()
        var length = UInt64(header.utf8.count).littleEndian
        data.append(Data(bytes: &length, count: 8))
        data.append(Data(header.utf8))
        data.append(Data(repeating: 0, count: 64))
        try data.write(to: url)
        let error = try #require(Self.openAndReadAll(url))
        #expect(error is TensorFileError)
        Self.expectOneLine(error, naming: url.path)
    }

    @Test("a truncated h5 names the file")
    func truncatedH5() throws {
        let scratch = try ScratchDirectory()
        let url = scratch.file("truncated.h5")
        try Data(contentsOf: Fixtures.url("mobile_tiny_weights_tf.h5")).prefix(20_000).write(to: url)
        let error = try #require(Self.openAndReadAll(url) as? HDF5Error)
        Self.expectOneLine(error, naming: url.path)
        #expect(error.problem.contains("truncated"))
    }

    /// Flips bytes at many offsets and truncates at many lengths; every variant must either
    /// read completely or throw one of tlhub's errors naming the file (a crash fails the run).
    @Test("a flipped bit inside a .keras archive's weights member fails its CRC-32, naming the file")
    func keras3MemberCorruption() throws {
        var data = try Data(contentsOf: Fixtures.url("small.keras"))
        // The local header of model.weights.h5: signature, 26 bytes of fields, the name, the extra field.
        let name = Data("model.weights.h5".utf8)
        let nameRange = try #require(data.range(of: name))
        let header = nameRange.lowerBound - 30
        #expect(data[header..<header + 4] == Data([0x50, 0x4B, 0x03, 0x04]))
        let field = { (offset: Int) in Int(data[header + offset]) | Int(data[header + offset + 1]) << 8 }
        let start = header + 30 + field(26) + field(28)
        let size = Int(data[header + 18]) | Int(data[header + 19]) << 8 | Int(data[header + 20]) << 16 | Int(data[header + 21]) << 24
        data[start + size / 2] ^= 0x10
        let scratch = try ScratchDirectory()
        let url = scratch.file("flipped.keras")
        try data.write(to: url)
        let error = try #require(Self.openAndReadAll(url))
        Self.expectOneLine(error, naming: url.path)
        #expect("\(error)".contains("model.weights.h5"), "\(error)")
    }

    @Test("fuzz: bit flips and truncations", arguments: ["mobile_tiny_weights_tf.h5", "vgg_tiny_full.h5", "small.keras", "small.weights.h5"])
    func fuzz(file: String) throws {
        let scratch = try ScratchDirectory()
        let original = try Data(contentsOf: Fixtures.url(file))
        var variants: [Data] = []
        let flipCount = 160
        var generator = SplitMix64(seed: 0x7e1b)
        for index in 0..<flipCount {
            var copy = original
            // Half evenly spread, half random, so headers near the start are well covered.
            let offset = index % 2 == 0 ? index * original.count / flipCount : Int(generator.next() % UInt64(original.count))
            copy[offset] ^= UInt8(truncatingIfNeeded: 1 << (index % 8)) | (index % 3 == 0 ? 0xFF : 0)
            variants.append(copy)
        }
        for index in 1..<40 { variants.append(original.prefix(index * original.count / 40)) }
        var failures = 0
        for (index, variant) in variants.enumerated() {
            let url = scratch.file("variant-\(index)-\(file)")
            try variant.write(to: url)
            if let error = Self.openAndReadAll(url) {
                failures += 1
                Self.expectOneLine(error, naming: url.path)
            }
            try? FileManager.default.removeItem(at: url)
        }
        // Every truncation must fail (the flips may land in unused bytes or weight values).
        #expect(failures >= 39)
    }
}

/// A tiny deterministic generator for reproducible fuzz offsets.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
