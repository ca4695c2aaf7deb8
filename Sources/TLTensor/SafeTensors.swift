import Foundation

/// A `.safetensors` file: an 8-byte little-endian header length, a JSON header mapping tensor
/// names to `{dtype, shape, data_offsets}` (plus an optional `__metadata__` string map), then the
/// raw little-endian tensor bytes.
///
/// tlhub writes float32 only; it reads `F32`, `F16`, `BF16` and `F64`. Every offset in the header
/// is checked against the file size and against the other tensors before any byte is read, so a
/// header that lies gives an error, never a huge allocation or an out-of-bounds read.
public struct SafeTensorsFile: Sendable {
    /// One tensor's place in the file.
    public struct Entry: Sendable, Equatable {
        public var name: String
        /// `F32`, `F16`, `BF16` or `F64`.
        public var dtype: String
        public var shape: [Int]
        /// Byte range relative to the start of the data section.
        public var byteRange: Range<Int>
    }

    /// The file this was read from.
    public let url: URL
    /// The `__metadata__` map (empty when absent).
    public let metadata: [String: String]
    /// Every tensor, in data order.
    public let entries: [Entry]
    private let positions: [String: Int]
    private let data: Data
    private let dataStart: Int

    /// The largest header tlhub accepts (the reference implementation caps it at 100 MB).
    public static let maximumHeaderSize = 100_000_000

    /// Opens and validates `url` (memory-mapped; tensors are read on demand).
    /// - Throws: ``TensorFileError`` naming the file and the inconsistency.
    public init(contentsOf url: URL) throws {
        func fail(_ problem: String) -> TensorFileError { TensorFileError(path: url.path, problem: problem) }
        let data: Data
        do { data = try Data(contentsOf: url, options: .alwaysMapped) } catch {
            throw fail("cannot read: \(error.localizedDescription)")
        }
        guard data.count >= 8 else { throw fail("too short to be a safetensors file (\(data.count) bytes)") }
        let headerLength = data.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard headerLength <= UInt64(min(Self.maximumHeaderSize, data.count - 8)) else {
            throw fail("header length \(headerLength) exceeds the file (\(data.count) bytes): not a safetensors file or truncated")
        }
        let headerData = data.subdata(in: 8 ..< 8 + Int(headerLength))
        guard let object = (try? JSONSerialization.jsonObject(with: headerData)) as? [String: Any] else {
            throw fail("header is not a JSON object")
        }
        var metadata: [String: String] = [:]
        var entries: [Entry] = []
        for (name, value) in object {
            if name == "__metadata__" {
                guard let map = value as? [String: Any] else { throw fail("__metadata__ is not an object") }
                for (k, v) in map {
                    guard let s = v as? String else { throw fail("__metadata__[\(k)] is not a string") }
                    metadata[k] = s
                }
                continue
            }
            guard let info = value as? [String: Any], let dtype = info["dtype"] as? String,
                  let shapeValues = info["shape"] as? [Any], let offsets = info["data_offsets"] as? [Any],
                  offsets.count == 2
            else { throw fail("tensor '\(name)' has a malformed header entry") }
            let shape = try shapeValues.map { v -> Int in
                guard let n = (v as? NSNumber)?.intValue, n >= 0, n < 1 << 40 else {
                    throw fail("tensor '\(name)' has an invalid shape \(shapeValues)")
                }
                return n
            }
            guard let begin = (offsets[0] as? NSNumber)?.intValue, let end = (offsets[1] as? NSNumber)?.intValue,
                  begin >= 0, end >= begin
            else { throw fail("tensor '\(name)' has invalid data_offsets \(offsets)") }
            guard let size = Self.elementSize(dtype) else {
                throw fail("tensor '\(name)' has unsupported dtype \(dtype)")
            }
            var count = 1
            for d in shape {
                let (p, overflow) = count.multipliedReportingOverflow(by: d)
                guard !overflow else { throw fail("tensor '\(name)' shape \(shape) overflows") }
                count = p
            }
            guard count.multipliedReportingOverflow(by: size).partialValue == end - begin else {
                throw fail("tensor '\(name)' of shape \(shape) \(dtype) needs \(count * size) bytes but data_offsets span \(end - begin)")
            }
            entries.append(Entry(name: name, dtype: dtype, shape: shape, byteRange: begin..<end))
        }
        entries.sort { ($0.byteRange.lowerBound, $0.byteRange.upperBound) < ($1.byteRange.lowerBound, $1.byteRange.upperBound) }
        let dataStart = 8 + Int(headerLength)
        let available = data.count - dataStart
        var cursor = 0
        for entry in entries {
            guard entry.byteRange.lowerBound == cursor else {
                throw fail("tensor '\(entry.name)' starts at byte \(entry.byteRange.lowerBound), expected \(cursor) (overlapping or gapped data_offsets)")
            }
            cursor = entry.byteRange.upperBound
        }
        guard cursor <= available else {
            throw fail("data_offsets reach byte \(cursor) but the data section holds \(available) bytes (truncated?)")
        }
        self.url = url
        self.metadata = metadata
        self.entries = entries
        positions = Dictionary(entries.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.data = data
        self.dataStart = dataStart
    }

    /// The entry called `name`, if any.
    public func entry(named name: String) -> Entry? { positions[name].map { entries[$0] } }

    /// Reads the tensor called `name` as float32.
    /// - Throws: ``TensorFileError`` when there is no such tensor.
    public func tensor(named name: String) throws -> Tensor {
        guard let entry = entry(named: name) else {
            throw TensorFileError(path: url.path, problem: "no tensor named '\(name)'")
        }
        return tensor(entry)
    }

    /// Reads `entry` as float32.
    public func tensor(_ entry: Entry) -> Tensor {
        let count = Tensor.elementCount(entry.shape)
        // Uninitialized: a zero fill first would be a second pass over every page.
        let scalars = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            read(entry, into: buffer)
            initialized = count
        }
        return Tensor(shape: entry.shape, scalars: scalars)
    }

    /// Converts `entry`'s values to float32 into `out` (at least the entry's element count long;
    /// it may be uninitialized).
    public func read(_ entry: Entry, into out: UnsafeMutableBufferPointer<Float>) {
        let count = Tensor.elementCount(entry.shape)
        precondition(out.count >= count, "\(out.count) floats cannot hold \(entry.name)'s \(count)")
        guard count > 0 else { return }
        data.withUnsafeBytes { raw in
            let base = raw.baseAddress!.advanced(by: dataStart + entry.byteRange.lowerBound)
            switch entry.dtype {
            case "F32":
                UnsafeMutableRawPointer(out.baseAddress!).copyMemory(from: base, byteCount: count * 4)
            case "F16":
                for i in 0..<count { out[i] = Float(float16Bits: base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
            case "BF16":
                for i in 0..<count { out[i] = Float(bfloat16Bits: base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
            default:
                for i in 0..<count { out[i] = Float(base.loadUnaligned(fromByteOffset: 8 * i, as: Double.self)) }
            }
        }
    }

    static func elementSize(_ dtype: String) -> Int? {
        switch dtype {
        case "F32": 4
        case "F16", "BF16": 2
        case "F64": 8
        default: nil
        }
    }
}

/// Writes float32 `.safetensors` files, streaming each tensor's bytes so that a large model is
/// never held twice in memory.
public enum SafeTensorsWriter {
    /// A tensor to be written: its name and shape (the bytes come later, in this order).
    public struct Spec: Sendable, Equatable {
        public var name: String
        public var shape: [Int]
        public init(name: String, shape: [Int]) {
            self.name = name
            self.shape = shape
        }
    }

    /// Writes `specs` in order to `url` atomically. `fill(i, sink)` must pass exactly the
    /// float32 values of `specs[i]` to `sink`, in one or more chunks.
    /// - Throws: whatever `fill` throws, or a ``TensorFileError``; on error nothing is left at `url`.
    public static func write(
        to url: URL, metadata: [String: String], specs: [Spec],
        fill: (Int, (UnsafeBufferPointer<Float>) throws -> Void) throws -> Void
    ) throws {
        let header = try headerData(metadata: metadata, specs: specs)
        try AtomicFile.write(to: url) { handle, _ in
            var length = UInt64(header.count).littleEndian
            try handle.write(contentsOf: Data(bytes: &length, count: 8))
            try handle.write(contentsOf: header)
            for (i, spec) in specs.enumerated() {
                var written = 0
                try fill(i) { chunk in
                    written += chunk.count
                    try handle.write(contentsOf: Data(buffer: chunk))
                }
                guard written == Tensor.elementCount(spec.shape) else {
                    throw TensorFileError(path: url.path, problem: "tensor '\(spec.name)' got \(written) values, expected \(Tensor.elementCount(spec.shape))")
                }
            }
        }
    }

    /// Writes in-memory tensors (in the given order) to `url` atomically.
    public static func write(_ tensors: [(name: String, tensor: Tensor)], metadata: [String: String], to url: URL) throws {
        try write(to: url, metadata: metadata, specs: tensors.map { Spec(name: $0.name, shape: $0.tensor.shape) }) { i, sink in
            try tensors[i].tensor.scalars.withUnsafeBufferPointer { try sink($0) }
        }
    }

    static func headerData(metadata: [String: String], specs: [Spec]) throws -> Data {
        // Keys are emitted in data order so the header reads top to bottom like the file.
        var parts: [String] = []
        if !metadata.isEmpty {
            let json = try JSONSerialization.data(withJSONObject: metadata, options: [.sortedKeys])
            parts.append("\"__metadata__\":" + String(decoding: json, as: UTF8.self))
        }
        var offset = 0
        var seen = Set<String>()
        for spec in specs {
            guard seen.insert(spec.name).inserted else {
                throw TensorFileError(path: spec.name, problem: "duplicate tensor name")
            }
            let size = Tensor.elementCount(spec.shape) * 4
            let name = String(decoding: try JSONSerialization.data(withJSONObject: spec.name, options: [.fragmentsAllowed]), as: UTF8.self)
            parts.append("\(name):{\"dtype\":\"F32\",\"shape\":[\(spec.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + size)]}")
            offset += size
        }
        var header = "{" + parts.joined(separator: ",") + "}"
        // Pad to 8 bytes so the data section is aligned, as the reference writer does.
        while (header.utf8.count) % 8 != 0 { header += " " }
        return Data(header.utf8)
    }
}
