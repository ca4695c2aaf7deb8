import Foundation
import TLFormats
import TLTensor

/// TensorBoard event files as Keras' `TensorBoard` callback lays them out: a `train/` and a
/// `validation/` run, each an `events.out.tfevents.<time>.<host>.<pid>.v2` file of
/// TFRecord-framed `Event` protocol buffers (length, masked CRC-32C of the length, the bytes,
/// masked CRC-32C of the bytes), starting with `file_version: "brain.Event:2"`, then one scalar
/// event per epoch and metric (`epoch_loss`, `epoch_accuracy`, `epoch_learning_rate`).
public final class TensorBoardLog {
    private var data = Data()
    /// Where the file goes.
    public let url: URL

    /// Starts a log in `run` (created if missing).
    public init(run: URL, wallTime: Double = Date().timeIntervalSince1970) throws {
        try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "localhost"
        url = run.appendingPathComponent("events.out.tfevents.\(Int(wallTime)).\(host).\(getpid()).0.v2")
        append(Self.event(wallTime: wallTime, step: 0, body: Self.bytesField(3, Data("brain.Event:2".utf8))))
    }

    /// Adds a scalar (`simple_value`) at `step`.
    public func scalar(_ tag: String, _ value: Float, step: Int, wallTime: Double = Date().timeIntervalSince1970) {
        append(Self.scalarEvent(tag, value, step: step, wallTime: wallTime))
    }

    /// Writes the file (atomically).
    public func flush() throws { try AtomicFile.write([(url, data)]) }

    /// The bytes of one scalar `Event`.
    public static func scalarEvent(_ tag: String, _ value: Float, step: Int, wallTime: Double) -> Data {
        var summaryValue = bytesField(1, Data(tag.utf8))
        summaryValue.append(0x15)  // field 2 (simple_value), fixed32
        withUnsafeBytes(of: value.bitPattern.littleEndian) { summaryValue.append(contentsOf: $0) }
        let summary = bytesField(1, summaryValue)
        return event(wallTime: wallTime, step: step, body: bytesField(5, summary))
    }

    /// `Event { wall_time = 1 (double), step = 2 (int64), <body> }`.
    static func event(wallTime: Double, step: Int, body: Data) -> Data {
        var data = Data([0x09])
        withUnsafeBytes(of: wallTime.bitPattern.littleEndian) { data.append(contentsOf: $0) }
        if step != 0 {
            data.append(0x10)
            data.append(varint(UInt64(bitPattern: Int64(step))))
        }
        data.append(body)
        return data
    }

    /// A length-delimited field.
    static func bytesField(_ number: UInt64, _ bytes: Data) -> Data {
        var data = varint(number << 3 | 2)
        data.append(varint(UInt64(bytes.count)))
        data.append(bytes)
        return data
    }

    static func varint(_ value: UInt64) -> Data {
        var value = value, data = Data()
        repeat {
            var byte = UInt8(value & 0x7F)
            value >>= 7
            if value != 0 { byte |= 0x80 }
            data.append(byte)
        } while value != 0
        return data
    }

    /// One TFRecord: length, masked CRC of the length, the record, masked CRC of the record.
    public static func record(_ payload: Data) -> Data {
        var length = UInt64(payload.count).littleEndian
        let lengthBytes = withUnsafeBytes(of: &length) { Data($0) }
        var data = lengthBytes
        var lengthCRC = CRC32C.mask(lengthBytes.withUnsafeBytes { CRC32C.checksum($0) }).littleEndian
        withUnsafeBytes(of: &lengthCRC) { data.append(contentsOf: $0) }
        data.append(payload)
        var payloadCRC = CRC32C.mask(payload.withUnsafeBytes { CRC32C.checksum($0) }).littleEndian
        withUnsafeBytes(of: &payloadCRC) { data.append(contentsOf: $0) }
        return data
    }

    private func append(_ event: Data) { data.append(Self.record(event)) }
}
