import Foundation
import Testing
import TLTensor

@Suite("NumPy and safetensors files")
struct TensorFileTests {
    let directory: URL = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tlhub-tensor-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }()

    @Test("npy round trip keeps shape and values")
    func npyRoundTrip() throws {
        let t = Tensor(shape: [2, 3, 1], scalars: [1, -2.5, 3e-8, 4, .greatestFiniteMagnitude, 0])
        let url = directory.appendingPathComponent("a.npy")
        try NumPy.write(t, to: url)
        #expect(try NumPy.read(contentsOf: url) == t)
        let header = try Data(contentsOf: url).prefix(10 + 118)
        #expect((10 + Int(header[8])) % 64 == 0, "header is padded to 64 bytes as numpy does")
    }

    @Test("npy rejects bad magic, truncation and lying shapes")
    func npyErrors() throws {
        #expect(throws: TensorFileError.self) { try NumPy.decode(Data("hello world, not numpy".utf8)) }
        var bytes = NumPy.encode(Tensor(shape: [4], scalars: [1, 2, 3, 4]))
        bytes.removeLast(4)
        #expect(throws: TensorFileError.self) { try NumPy.decode(bytes) }
        let lying = NumPy.encode(Tensor(shape: [1], scalars: [1]))
        let text = String(decoding: lying, as: UTF8.self).replacingOccurrences(of: "(1,)", with: "(9999999999999,)")
        #expect(throws: TensorFileError.self) { try NumPy.decode(Data(text.utf8)) }
    }

    @Test("half and bfloat16 conversion is exact")
    func halfFloats() {
        #expect(Float(float16Bits: 0x3c00) == 1)
        #expect(Float(float16Bits: 0xc000) == -2)
        #expect(Float(float16Bits: 0x0001) == 5.9604645e-8)
        #expect(Float(float16Bits: 0x7bff) == 65504)
        #expect(Float(float16Bits: 0x7c00) == .infinity)
        #expect(Float(bfloat16Bits: 0x3f80) == 1)
    }

    @Test("safetensors round trip keeps order, names, metadata")
    func safetensorsRoundTrip() throws {
        let url = directory.appendingPathComponent("m.safetensors")
        let a = Tensor(shape: [3, 3, 2, 4], scalars: (0..<72).map { Float($0) * 0.5 })
        let b = Tensor(shape: [4], scalars: [1, 2, 3, 4])
        try SafeTensorsWriter.write([("conv/kernel", a), ("conv/bias", b)], metadata: ["format": "tlhub"], to: url)
        let file = try SafeTensorsFile(contentsOf: url)
        #expect(file.entries.map(\.name) == ["conv/kernel", "conv/bias"])
        #expect(file.metadata["format"] == "tlhub")
        #expect(try file.tensor(named: "conv/kernel") == a)
        #expect(try file.tensor(named: "conv/bias") == b)
        #expect(throws: TensorFileError.self) { try file.tensor(named: "nope") }
    }

    @Test("safetensors header that lies about offsets is rejected")
    func safetensorsLies() throws {
        let url = directory.appendingPathComponent("bad.safetensors")
        func writeRaw(_ header: String, payload: Int) throws {
            var d = Data()
            var n = UInt64(header.utf8.count).littleEndian
            d.append(Data(bytes: &n, count: 8))
            d.append(Data(header.utf8))
            d.append(Data(count: payload))
            try d.write(to: url)
        }
        try writeRaw(#"{"x":{"dtype":"F32","shape":[1000000],"data_offsets":[0,4000000]}}"#, payload: 16)
        #expect(throws: TensorFileError.self) { try SafeTensorsFile(contentsOf: url) }
        try writeRaw(#"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"y":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, payload: 16)
        #expect(throws: TensorFileError.self) { try SafeTensorsFile(contentsOf: url) }
        try writeRaw(#"{"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, payload: 16)
        #expect(throws: TensorFileError.self) { try SafeTensorsFile(contentsOf: url) }
        var huge = UInt64.max.littleEndian
        try Data(bytes: &huge, count: 8).write(to: url)
        #expect(throws: TensorFileError.self) { try SafeTensorsFile(contentsOf: url) }
    }

    @Test("a failed write leaves nothing at the target path")
    func atomicFailure() throws {
        let url = directory.appendingPathComponent("never.safetensors")
        struct Boom: Error {}
        #expect(throws: Boom.self) {
            try SafeTensorsWriter.write(to: url, metadata: [:], specs: [.init(name: "a", shape: [2])]) { _, _ in throw Boom() }
        }
        #expect(!FileManager.default.fileExists(atPath: url.path))
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.contains("never") }.isEmpty)
    }
}
