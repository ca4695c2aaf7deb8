import Foundation
import Testing
import TLPipeline

@Suite("TensorBoard event files")
struct TensorBoardLogTests {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/training/tensorboard_scalar.tfrecord")

    @Test("records equal TensorFlow's framing of TensorBoard's own Event protos, byte for byte")
    func sameBytesAsTensorFlow() throws {
        let expected = try Data(contentsOf: Self.fixture)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tlhub-tb-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let log = try TensorBoardLog(run: directory, wallTime: 1234.5)
        log.scalar("epoch_loss", 0.25, step: 3, wallTime: 1236.75)
        try log.flush()
        #expect(try Data(contentsOf: log.url) == expected)
        #expect(log.url.lastPathComponent.hasPrefix("events.out.tfevents.1234."))
    }
}
