import Foundation
import Testing
import TLTensor
@testable import TLFormats

@Suite("errors read as one line naming the file")
struct ErrorTests {
    @Test("HDF5Error names file and object")
    func hdf5Error() {
        let error = HDF5Error(path: "/m/a.h5", objectPath: "/conv1/conv1/kernel:0", problem: "cannot read data")
        #expect(error.description == "/m/a.h5: /conv1/conv1/kernel:0: cannot read data")
        #expect(error.errorDescription == error.description)
        #expect(HDF5Error(path: "/m/a.h5", objectPath: "/", problem: "not an HDF5 file").description == "/m/a.h5: not an HDF5 file")
        #expect((error as Error).localizedDescription == error.description)
    }

    @Test("FormatError names file and problem")
    func formatError() {
        let error = FormatError(path: "/m/a.keras", problem: "no model.weights.h5 in the archive")
        #expect(error.description == "/m/a.keras: no model.weights.h5 in the archive")
        #expect((error as Error).localizedDescription == error.description)
    }

    @Test("HDF5's error stack becomes the message")
    func errorStack() throws {
        let scratch = try ScratchDirectory()
        let url = scratch.file("t.h5")
        try Data(contentsOf: Fixtures.url("vgg_tiny_full.h5")).prefix(3000).write(to: url)
        let error = #expect(throws: HDF5Error.self) { try HDF5File.open(url) }
        #expect(error?.path == url.path)
        #expect(error?.problem.contains("truncated file") == true)
    }

    @Test("missing layers and weights are named")
    func missingWeight() throws {
        let source: any WeightSource = try WeightFile.open(Fixtures.url("vgg_tiny_full.h5"))
        #expect(source.layerNames.first == "block1_conv1")
        #expect(source.weightNames(layer: "block1_conv1") == ["kernel", "bias"])
        #expect(source.shape(layer: "fc1", weight: "kernel") == [54, 8])
        #expect(source.shape(layer: "fc1", weight: "gamma") == nil)
        #expect(source.weightNames(layer: "nope") == [])
        let missingLayer = #expect(throws: FormatError.self) { try source.tensor(layer: "nope", weight: "kernel") }
        #expect(missingLayer?.problem == "no layer named 'nope'")
        let missingWeight = #expect(throws: FormatError.self) { try source.tensor(layer: "fc1", weight: "gamma") }
        #expect(missingWeight?.problem.contains("fc1") == true && missingWeight?.problem.contains("gamma") == true)
    }

    @Test("a .keras archive without weights")
    func archiveWithoutWeights() throws {
        let scratch = try ScratchDirectory()
        let url = scratch.file("empty.keras")
        // A minimal zip with one stored member, config.json.
        let data = Self.zip(name: "config.json", contents: Data("{}".utf8))
        try data.write(to: url)
        let error = #expect(throws: FormatError.self) { try WeightFile.open(url) }
        #expect(error?.problem == "no model.weights.h5 in the archive")
    }

    /// Builds a one-member stored zip (enough for the archive reader).
    static func zip(name: String, contents: Data) -> Data {
        func le16(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF)] }
        func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(v >> (8 * $0) & 0xFF) } }
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in contents {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        crc ^= 0xFFFF_FFFF
        let nameBytes = Array(name.utf8)
        var local: [UInt8] = le32(0x0403_4B50) + le16(20) + le16(0) + le16(0) + le16(0) + le16(0x21)
        local += le32(crc) + le32(UInt32(contents.count)) + le32(UInt32(contents.count)) + le16(nameBytes.count) + le16(0) + nameBytes
        local += Array(contents)
        var central: [UInt8] = le32(0x0201_4B50) + le16(20) + le16(20) + le16(0) + le16(0) + le16(0) + le16(0x21)
        central += le32(crc) + le32(UInt32(contents.count)) + le32(UInt32(contents.count)) + le16(nameBytes.count)
        central += le16(0) + le16(0) + le16(0) + le16(0) + le32(0) + le32(0) + nameBytes
        let end: [UInt8] = le32(0x0605_4B50) + le16(0) + le16(0) + le16(1) + le16(1) + le32(UInt32(central.count)) + le32(UInt32(local.count)) + le16(0)
        return Data(local + central + end)
    }
}
