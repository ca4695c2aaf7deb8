import Foundation

/// NumPy `.npy` arrays (format versions 1.0–3.0) in and out.
///
/// Reads little-endian `<f4`, `<f8`, `<f2`, `|u1`, `<i4` and `<i8` arrays in C order into float32
/// tensors; writes `<f4` in C order (version 1.0), which `numpy.load` reads.
public enum NumPy {
    /// Reads an `.npy` file.
    /// - Throws: ``TensorFileError`` naming the file and what is wrong with it.
    public static func read(contentsOf url: URL) throws -> Tensor {
        try readWithType(contentsOf: url).tensor
    }

    /// Reads an `.npy` file and reports the element type it was stored as (`<f4`, `|u1`, …).
    /// - Throws: ``TensorFileError`` naming the file and what is wrong with it.
    public static func readWithType(contentsOf url: URL) throws -> (tensor: Tensor, dtype: String) {
        let data: Data
        do { data = try Data(contentsOf: url.resolvingSymlinksInPath(), options: .mappedIfSafe) } catch {
            throw TensorFileError(path: url.path, problem: "cannot read: \(error.localizedDescription)")
        }
        return try decodeWithType(data, path: url.path)
    }

    /// NumPy refuses headers longer than this by default (`max_header_size` in `numpy.lib.format`).
    public static let maximumHeaderLength = 10_000

    /// Decodes the bytes of an `.npy` file; `path` names it in errors.
    public static func decode(_ data: Data, path: String = "<npy>") throws -> Tensor {
        try decodeWithType(data, path: path).tensor
    }

    /// Decodes the bytes of an `.npy` file and reports the stored element type.
    public static func decodeWithType(_ data: Data, path: String = "<npy>") throws -> (tensor: Tensor, dtype: String) {
        func fail(_ problem: String) -> TensorFileError { TensorFileError(path: path, problem: problem) }
        let bytes = [UInt8](data.prefix(12))
        guard bytes.count >= 10, bytes[0] == 0x93, Array(bytes[1...5]) == Array("NUMPY".utf8) else {
            throw fail("not a NumPy .npy file (bad magic)")
        }
        let major = bytes[6]
        let headerLength: Int
        let headerStart: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw fail("truncated header") }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            headerStart = 12
        default:
            throw fail("unsupported .npy version \(major)")
        }
        guard headerLength <= maximumHeaderLength else {
            throw fail("header of \(headerLength) bytes is longer than NumPy's limit of \(maximumHeaderLength)")
        }
        guard headerStart + headerLength <= data.count else { throw fail("truncated header") }
        let headerBytes = data.subdata(in: data.startIndex + headerStart ..< data.startIndex + headerStart + headerLength)
        guard let header = String(data: headerBytes, encoding: major == 3 ? .utf8 : .isoLatin1) else {
            throw fail("header is not text")
        }
        let descr = try field("descr", in: header, path: path)
        let fortran = try field("fortran_order", in: header, path: path)
        let shapeText = try field("shape", in: header, path: path)
        guard fortran.hasPrefix("False") else { throw fail("Fortran-order arrays are not supported") }
        let shape = try parseShape(shapeText, path: path)
        // Every size here comes from the file: multiply with overflow checks before trusting it.
        var count = 1
        for dimension in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
            guard !overflow else { throw fail("shape \(shape) has more elements than can be addressed") }
            count = product
        }
        let payload = data.count - headerStart - headerLength
        let body = data.startIndex + headerStart + headerLength
        let quoted = descr.drop { $0 == "'" || $0 == "\"" }.prefix { $0 != "'" && $0 != "\"" }
        let elementSize: Int
        switch String(quoted) {
        case "<f4", "<i4": elementSize = 4
        case "<f8", "<i8": elementSize = 8
        case "<f2": elementSize = 2
        case "|u1", "<u1", "|i1": elementSize = 1
        default: throw fail("unsupported dtype \(quoted) (expected little-endian float or integer)")
        }
        let (byteCount, overflow) = count.multipliedReportingOverflow(by: elementSize)
        guard !overflow else { throw fail("shape \(shape) has more bytes than can be addressed") }
        guard byteCount <= payload else {
            throw fail("shape \(shape) needs \(byteCount) bytes but the file holds \(payload)")
        }
        let load: (UnsafeRawPointer) -> Float
        switch String(quoted) {
        case "<f4": load = { Float(bitPattern: UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self))) }
        case "<f8": load = { Float(Double(bitPattern: UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)))) }
        case "<f2": load = { Float(float16Bits: UInt16(littleEndian: $0.loadUnaligned(as: UInt16.self))) }
        case "<i4": load = { Float(Int32(littleEndian: $0.loadUnaligned(as: Int32.self))) }
        case "<i8": load = { Float(Int64(littleEndian: $0.loadUnaligned(as: Int64.self))) }
        case "|i1": load = { Float($0.load(as: Int8.self)) }
        default: load = { Float($0.load(as: UInt8.self)) }
        }
        var scalars = [Float](repeating: 0, count: count)
        data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let base = raw.baseAddress!.advanced(by: body - data.startIndex)
            scalars.withUnsafeMutableBufferPointer { out in
                if count == 0 {
                } else if quoted == "<f4" {
                    UnsafeMutableRawPointer(out.baseAddress!).copyMemory(from: base, byteCount: count * 4)
                } else {
                    for i in 0..<count { out[i] = load(base.advanced(by: i * elementSize)) }
                }
            }
        }
        return (Tensor(shape: shape, scalars: scalars), String(quoted))
    }

    /// Encodes `tensor` as an `.npy` (version 1.0, `<f4`, C order).
    public static func encode(_ tensor: Tensor) -> Data {
        var data = header(shape: tensor.shape)
        tensor.scalars.withUnsafeBytes { data.append(contentsOf: $0) }
        return data
    }

    /// The `.npy` header (version 1.0, `<f4`, C order) of an array of `shape`, for writers that
    /// stream the values after it.
    public static func header(shape: [Int]) -> Data {
        let shapeText = shape.count == 1 ? "(\(shape[0]),)"
            : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(shapeText), }"
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        let length = UInt16(header.utf8.count)
        data.append(contentsOf: [UInt8(length & 0xff), UInt8(length >> 8)])
        data.append(contentsOf: Array(header.utf8))
        return data
    }

    /// Writes `tensor` to `url` atomically (temporary file, then rename).
    public static func write(_ tensor: Tensor, to url: URL) throws {
        let data = encode(tensor)
        try AtomicFile.write(to: url) { handle, _ in try handle.write(contentsOf: data) }
    }

    private static func field(_ key: String, in header: String, path: String) throws -> String {
        guard let range = header.range(of: "'\(key)':") else {
            throw TensorFileError(path: path, problem: "header has no '\(key)'")
        }
        return String(header[range.upperBound...]).trimmingCharacters(in: .whitespaces)
    }

    private static func parseShape(_ text: String, path: String) throws -> [Int] {
        guard let open = text.firstIndex(of: "("), let close = text.firstIndex(of: ")"), open < close else {
            throw TensorFileError(path: path, problem: "malformed shape in header")
        }
        let inner = text[text.index(after: open)..<close]
        return try inner.split(separator: ",").compactMap { part -> Int? in
            let trimmed = part.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { return nil }
            guard let value = Int(trimmed), value >= 0 else {
                throw TensorFileError(path: path, problem: "malformed shape \(text)")
            }
            return value
        }
    }
}

extension Float {
    /// Converts IEEE 754 half-precision bits to a float (exact).
    public init(float16Bits bits: UInt16) {
        let sign = UInt32(bits >> 15) << 31
        let exponent = Int((bits >> 10) & 0x1f)
        var mantissa = UInt32(bits & 0x3ff)
        if exponent == 0 {
            if mantissa == 0 { self = Float(bitPattern: sign); return }
            var e = -1
            repeat { e += 1; mantissa <<= 1 } while mantissa & 0x400 == 0
            mantissa &= 0x3ff
            self = Float(bitPattern: sign | UInt32(127 - 15 - e) << 23 | mantissa << 13)
        } else if exponent == 0x1f {
            self = Float(bitPattern: sign | 0x7f80_0000 | mantissa << 13)
        } else {
            self = Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | mantissa << 13)
        }
    }

    /// Converts bfloat16 bits (the upper half of a float32) to a float (exact).
    public init(bfloat16Bits bits: UInt16) {
        self = Float(bitPattern: UInt32(bits) << 16)
    }
}
