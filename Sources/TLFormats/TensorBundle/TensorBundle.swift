import Foundation
import TLTensor

/// Reads a TensorFlow tensor bundle: the `variables/variables.index` + `variables.data-*` pair
/// inside a SavedModel or checkpoint.
///
/// The index is a LevelDB-style SSTable (uncompressed blocks, each with a masked CRC-32C) mapping
/// tensor names to `BundleEntryProto` (dtype, shape, shard, offset, size, masked CRC-32C of the
/// bytes). Every block checksum is verified on open and every tensor checksum on read.
public final class TensorBundle {
    /// TensorFlow `DataType` values tlhub knows by name.
    public enum DataType: Int, Sendable {
        /// float32.
        case float = 1
        /// float64.
        case double = 2
        /// int32.
        case int32 = 3
        /// uint8.
        case uint8 = 4
        /// int64.
        case int64 = 9
        /// bool.
        case bool = 10
        /// Variable-length strings (the object graph); listed, not readable as numbers.
        case string = 7
        /// float16.
        case half = 19
        /// bfloat16.
        case bfloat16 = 14
    }

    /// One tensor in the bundle.
    public struct Entry: Sendable, Equatable {
        /// Checkpoint key (`dense/kernel/.ATTRIBUTES/VARIABLE_VALUE`).
        public var name: String
        /// Raw TensorFlow dtype number; see ``dataType``.
        public var dtype: Int
        /// Dimensions.
        public var shape: [Int]
        /// Which data file holds it.
        public var shard: Int
        /// Byte offset in that file.
        public var offset: Int64
        /// Byte count.
        public var size: Int64
        /// Masked CRC-32C of the bytes.
        public var maskedCRC32C: UInt32

        /// The dtype, when it is one tlhub names.
        public var dataType: DataType? { DataType(rawValue: dtype) }
    }

    /// The bundle prefix (`…/variables/variables`).
    public let prefix: URL
    /// Entries sorted by name, without the bundle header.
    public let entries: [Entry]
    private let shardCount: Int

    /// Opens `<prefix>.index` and checks every block checksum.
    /// - Throws: ``TensorFileError`` naming the file and the damage.
    public init(prefix: URL) throws {
        self.prefix = prefix
        let indexPath = prefix.path + ".index"
        guard let data = FileManager.default.contents(atPath: indexPath) else {
            throw TensorFileError(path: indexPath, problem: "cannot read the bundle index")
        }
        let table = try SSTable(bytes: [UInt8](data), path: indexPath)
        var entries: [Entry] = []
        var shards = 1
        for (key, value) in try table.allEntries() {
            if key.isEmpty {
                shards = Int(try ProtoReader.fields(value, path: indexPath).first { $0.number == 1 }?.varint ?? 1)
                continue
            }
            let name = String(decoding: key, as: UTF8.self)
            entries.append(try Self.entry(name: name, value: value, path: indexPath))
        }
        self.entries = entries
        shardCount = max(shards, 1)
    }

    /// The entry called `name`, or nil.
    public func entry(named name: String) -> Entry? { entries.first { $0.name == name } }

    /// Reads a numeric tensor as float32 after checking its CRC-32C.
    /// - Throws: ``TensorFileError`` for an unknown name, a string tensor, a checksum mismatch or
    ///   a short data file.
    public func tensor(named name: String) throws -> Tensor {
        guard let entry = entry(named: name) else {
            throw TensorFileError(path: prefix.path + ".index", problem: "no tensor '\(name)'")
        }
        let dataPath = prefix.path + String(format: ".data-%05d-of-%05d", entry.shard, shardCount)
        guard let handle = FileHandle(forReadingAtPath: dataPath) else {
            throw TensorFileError(path: dataPath, problem: "cannot open")
        }
        defer { try? handle.close() }
        try handle.seek(toOffset: UInt64(entry.offset))
        let bytes = try handle.read(upToCount: Int(entry.size)) ?? Data()
        guard bytes.count == Int(entry.size) else {
            throw TensorFileError(path: dataPath, problem: "'\(name)': file ends after \(bytes.count) of \(entry.size) bytes")
        }
        let actual = bytes.withUnsafeBytes { CRC32C.checksum($0) }
        guard actual == CRC32C.unmask(entry.maskedCRC32C) else {
            throw TensorFileError(path: dataPath, problem: "'\(name)': CRC-32C mismatch (damaged data file)")
        }
        let count = entry.shape.reduce(1, *)
        let scalars: [Float]
        switch entry.dataType {
        case .float?: scalars = bytes.withUnsafeBytes { raw in (0..<count).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) } }
        case .double?: scalars = bytes.withUnsafeBytes { raw in (0..<count).map { Float(raw.loadUnaligned(fromByteOffset: $0 * 8, as: Double.self)) } }
        case .int32?: scalars = bytes.withUnsafeBytes { raw in (0..<count).map { Float(raw.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self)) } }
        case .int64?: scalars = bytes.withUnsafeBytes { raw in (0..<count).map { Float(raw.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)) } }
        default:
            throw TensorFileError(path: dataPath, problem: "'\(name)' has dtype \(entry.dtype), not a float or integer tensor")
        }
        guard scalars.count * Self.byteWidth(entry.dataType) == bytes.count else {
            throw TensorFileError(path: dataPath, problem: "'\(name)': \(bytes.count) bytes for shape \(entry.shape)")
        }
        return Tensor(shape: entry.shape, scalars: scalars)
    }

    private static func byteWidth(_ type: DataType?) -> Int {
        switch type {
        case .double?, .int64?: return 8
        default: return 4
        }
    }

    private static func entry(name: String, value: [UInt8], path: String) throws -> Entry {
        var entry = Entry(name: name, dtype: 0, shape: [], shard: 0, offset: 0, size: 0, maskedCRC32C: 0)
        for field in try ProtoReader.fields(value, path: path) {
            switch field.number {
            case 1: entry.dtype = Int(field.varint)
            case 2:
                for dimension in try ProtoReader.fields(field.bytes, path: path) where dimension.number == 2 {
                    let size = try ProtoReader.fields(dimension.bytes, path: path).first { $0.number == 1 }?.varint ?? 0
                    entry.shape.append(Int(Int64(bitPattern: size)))
                }
            case 3: entry.shard = Int(field.varint)
            case 4: entry.offset = Int64(bitPattern: field.varint)
            case 5: entry.size = Int64(bitPattern: field.varint)
            case 6: entry.maskedCRC32C = UInt32(truncatingIfNeeded: field.varint)
            case 7: throw TensorFileError(path: path, problem: "'\(name)' is stored in slices, which tlhub does not read")
            default: break
            }
        }
        return entry
    }
}

/// The minimum of the protobuf wire format needed for `BundleEntryProto`.
enum ProtoReader {
    struct Field {
        var number: Int
        /// Varint and fixed-width values.
        var varint: UInt64 = 0
        /// Length-delimited payloads.
        var bytes: [UInt8] = []
    }

    static func fields(_ bytes: [UInt8], path: String) throws -> [Field] {
        var fields: [Field] = []
        var position = 0
        while position < bytes.count {
            let key = try varint(bytes, &position, path: path)
            var field = Field(number: Int(key >> 3))
            switch key & 7 {
            case 0: field.varint = try varint(bytes, &position, path: path)
            case 1, 5:
                let width = key & 7 == 1 ? 8 : 4
                guard position + width <= bytes.count else { throw TensorFileError(path: path, problem: "truncated protobuf") }
                for index in 0..<width { field.varint |= UInt64(bytes[position + index]) << (8 * UInt64(index)) }
                position += width
            case 2:
                let length = Int(try varint(bytes, &position, path: path))
                guard length >= 0, position + length <= bytes.count else { throw TensorFileError(path: path, problem: "truncated protobuf") }
                field.bytes = Array(bytes[position..<(position + length)])
                position += length
            default:
                throw TensorFileError(path: path, problem: "unsupported protobuf wire type \(key & 7)")
            }
            fields.append(field)
        }
        return fields
    }

    static func varint(_ bytes: [UInt8], _ position: inout Int, path: String) throws -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while position < bytes.count, shift < 64 {
            let byte = bytes[position]
            position += 1
            value |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
        }
        throw TensorFileError(path: path, problem: "truncated varint")
    }
}

/// A LevelDB-format table as TensorFlow writes it (no compression), read whole into memory.
struct SSTable {
    let bytes: [UInt8]
    let path: String
    private let indexHandle: (offset: Int, size: Int)

    private static let magic: UInt64 = 0xDB47_7524_8B80_FB57

    init(bytes: [UInt8], path: String) throws {
        self.bytes = bytes
        self.path = path
        guard bytes.count >= 48 else { throw TensorFileError(path: path, problem: "too short for a table footer") }
        let footer = bytes.count - 48
        var magic: UInt64 = 0
        for index in 0..<8 { magic |= UInt64(bytes[footer + 40 + index]) << (8 * UInt64(index)) }
        guard magic == Self.magic else { throw TensorFileError(path: path, problem: "not a tensor bundle index (bad table magic)") }
        var position = footer
        _ = try ProtoReader.varint(bytes, &position, path: path)  // metaindex offset
        _ = try ProtoReader.varint(bytes, &position, path: path)  // metaindex size
        let offset = Int(try ProtoReader.varint(bytes, &position, path: path))
        let size = Int(try ProtoReader.varint(bytes, &position, path: path))
        indexHandle = (offset, size)
    }

    /// Every key and value, in key order.
    func allEntries() throws -> [([UInt8], [UInt8])] {
        var result: [([UInt8], [UInt8])] = []
        for (_, handle) in try block(at: indexHandle) {
            var position = 0
            let offset = Int(try ProtoReader.varint(handle, &position, path: path))
            let size = Int(try ProtoReader.varint(handle, &position, path: path))
            result += try block(at: (offset, size))
        }
        return result
    }

    /// Decodes one block after checking its trailer (compression type 0, masked CRC-32C).
    private func block(at handle: (offset: Int, size: Int)) throws -> [([UInt8], [UInt8])] {
        let end = handle.offset + handle.size
        guard handle.offset >= 0, handle.size >= 4, end + 5 <= bytes.count else {
            throw TensorFileError(path: path, problem: "block at \(handle.offset) runs past the end of the file")
        }
        guard bytes[end] == 0 else {
            throw TensorFileError(path: path, problem: "compressed table block (type \(bytes[end])) is not supported")
        }
        var stored: UInt32 = 0
        for index in 0..<4 { stored |= UInt32(bytes[end + 1 + index]) << (8 * UInt32(index)) }
        let actual = bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[handle.offset...end])) }
        guard CRC32C.unmask(stored) == actual else {
            throw TensorFileError(path: path, problem: "block at \(handle.offset): CRC-32C mismatch (damaged index)")
        }
        let contents = bytes[handle.offset..<end]
        var restartCount = 0
        for index in 0..<4 { restartCount |= Int(contents[end - 4 + index]) << (8 * index) }
        let dataEnd = end - 4 - 4 * restartCount
        guard dataEnd >= handle.offset else { throw TensorFileError(path: path, problem: "bad block restart count") }
        var entries: [([UInt8], [UInt8])] = []
        var key: [UInt8] = []
        var position = handle.offset
        let all = bytes
        while position < dataEnd {
            let shared = Int(try ProtoReader.varint(all, &position, path: path))
            let unshared = Int(try ProtoReader.varint(all, &position, path: path))
            let valueLength = Int(try ProtoReader.varint(all, &position, path: path))
            guard shared <= key.count, position + unshared + valueLength <= dataEnd else {
                throw TensorFileError(path: path, problem: "bad block entry at \(position)")
            }
            key = Array(key[0..<shared]) + all[position..<(position + unshared)]
            position += unshared
            entries.append((key, Array(all[position..<(position + valueLength)])))
            position += valueLength
        }
        return entries
    }
}
