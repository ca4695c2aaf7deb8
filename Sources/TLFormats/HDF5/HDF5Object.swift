import CHDF5
import Foundation

/// Where an HDF5 object lives, for error messages and size checks.
struct HDF5Context: Sendable {
    /// The file path (or `archive.keras!model.weights.h5` for an in-memory image).
    var path: String
    /// Bytes in the file or image: no dataset may declare more than this (uncompressed).
    var fileSize: Int

    func error(_ object: String, _ message: String) -> HDF5Error {
        HDF5Error(path: path, objectPath: object, problem: message)
    }
}

/// An open HDF5 object (file, group, dataset or attribute) that closes its `hid_t` in `deinit`.
///
/// Objects keep their parent alive so that the file stays open while any child is in use.
public class HDF5Object {
    let id: hid_t
    let context: HDF5Context
    /// The object's path inside the file (`/` for the root).
    public let objectPath: String
    private let parent: HDF5Object?
    private let close: (hid_t) -> herr_t

    init(id: hid_t, context: HDF5Context, objectPath: String, parent: HDF5Object?, close: @escaping (hid_t) -> herr_t) {
        self.id = id
        self.context = context
        self.objectPath = objectPath
        self.parent = parent
        self.close = close
    }

    deinit {
        HDF5Library.withLock {
            if close(id) < 0 { _ = HDF5Library.takeErrorMessage(fallback: "") }
        }
    }

    /// The file path this object belongs to.
    public var filePath: String { context.path }

    func childPath(_ name: String) -> String {
        objectPath == "/" ? "/" + name : objectPath + "/" + name
    }

    @discardableResult
    func check<T: BinaryInteger>(_ status: T, _ action: @autoclosure () -> String, object: String? = nil) throws -> T {
        try HDF5Library.check(status, path: context.path, object: object ?? objectPath, action())
    }
}

// MARK: - Attributes

extension HDF5Object {
    /// Whether the object has an attribute called `name`.
    public func hasAttribute(_ name: String) -> Bool {
        HDF5Library.withLock {
            let status = H5Aexists(id, name)
            if status < 0 { _ = HDF5Library.takeErrorMessage(fallback: "") }
            return status > 0
        }
    }

    /// The names of all attributes, in name order.
    public func attributeNames() throws -> [String] {
        try HDF5Library.withLock {
            var info = H5O_info_t()
            try check(H5Oget_info2(id, &info, UInt32(H5O_INFO_NUM_ATTRS)), "cannot read object info")
            guard info.num_attrs < 100_000 else { throw context.error(objectPath, "implausible attribute count \(info.num_attrs)") }
            return try (0..<info.num_attrs).map { index in
                let length = try check(H5Aget_name_by_idx(id, ".", H5_INDEX_NAME, H5_ITER_INC, index, nil, 0, tl_H5P_DEFAULT()),
                                       "cannot read attribute name")
                var buffer = [CChar](repeating: 0, count: Int(length) + 1)
                try check(H5Aget_name_by_idx(id, ".", H5_INDEX_NAME, H5_ITER_INC, index, &buffer, buffer.count, tl_H5P_DEFAULT()),
                          "cannot read attribute name")
                return String(nullTerminated: buffer)
            }
        }
    }

    /// Reads a string attribute (scalar or one-dimensional; variable-length as h5py 3 writes
    /// them, or fixed-length NULLPAD/NULLTERM as h5py 2 did). An empty attribute of any type
    /// (Keras writes layers without weights as an empty float64 array) reads as `[]`.
    /// - Throws: ``HDF5Error`` when the attribute is missing or is not made of strings.
    public func strings(attribute name: String) throws -> [String] {
        try HDF5Library.withLock {
            let location = "\(objectPath) attribute '\(name)'"
            let attribute = try check(H5Aopen(id, name, tl_H5P_DEFAULT()), "cannot open attribute", object: location)
            defer { H5Aclose(attribute) }
            let space = try check(H5Aget_space(attribute), "cannot read the attribute's dataspace", object: location)
            defer { H5Sclose(space) }
            let fileType = try check(H5Aget_type(attribute), "cannot read the attribute's type", object: location)
            defer { H5Tclose(fileType) }
            let rank = try check(H5Sget_simple_extent_ndims(space), "cannot read the attribute's rank", object: location)
            guard rank <= 1 else { throw context.error(location, "expected a scalar or list of strings, got rank \(rank)") }
            let count = Int(try check(H5Sget_simple_extent_npoints(space), "cannot read the attribute's size", object: location))
            if count == 0 { return [] }
            guard H5Tget_class(fileType) == H5T_STRING else {
                throw context.error(location, "expected strings, got HDF5 type class \(H5Tget_class(fileType).rawValue)")
            }
            guard count <= context.fileSize else { throw context.error(location, "declares \(count) strings in a \(context.fileSize)-byte file") }
            let isVariable = try check(H5Tis_variable_str(fileType), "cannot read the string type", object: location) > 0
            let memoryType = try check(H5Tcopy(tl_H5T_C_S1()), "cannot create a string type", object: location)
            defer { H5Tclose(memoryType) }
            if isVariable {
                try check(H5Tset_size(memoryType, tl_H5T_VARIABLE()), "cannot create a string type", object: location)
                try check(H5Tset_cset(memoryType, H5Tget_cset(fileType)), "cannot create a string type", object: location)
                var pointers = [UnsafeMutablePointer<CChar>?](repeating: nil, count: count)
                try check(H5Aread(attribute, memoryType, &pointers), "cannot read the attribute", object: location)
                defer { H5Dvlen_reclaim(memoryType, space, tl_H5P_DEFAULT(), &pointers) }
                return pointers.map { $0.map { String(cString: $0) } ?? "" }
            }
            let width = H5Tget_size(fileType)
            guard width > 0, width.multipliedReportingOverflow(by: count).partialValue <= context.fileSize else {
                throw context.error(location, "implausible string size \(width) × \(count)")
            }
            try check(H5Tset_size(memoryType, width), "cannot create a string type", object: location)
            try check(H5Tset_strpad(memoryType, H5T_STR_NULLPAD), "cannot create a string type", object: location)
            var bytes = [UInt8](repeating: 0, count: width * count)
            try check(H5Aread(attribute, memoryType, &bytes), "cannot read the attribute", object: location)
            return (0..<count).map { index in
                let slice = bytes[index * width ..< (index + 1) * width]
                let end = slice.firstIndex(of: 0) ?? slice.endIndex
                return String(decoding: slice[slice.startIndex..<end], as: UTF8.self)
            }
        }
    }

    /// Reads a scalar string attribute (the first element of a list).
    public func string(attribute name: String) throws -> String {
        guard let first = try strings(attribute: name).first else {
            throw context.error(objectPath, "attribute '\(name)' is empty")
        }
        return first
    }

    /// Reads a list attribute that Keras may have split into `name0`, `name1`, … because it
    /// exceeded HDF5's 64 KB object-header limit; nil when neither form exists.
    public func chunkedStrings(attribute name: String) throws -> [String]? {
        if hasAttribute(name) { return try strings(attribute: name) }
        var result: [String] = []
        var index = 0
        while hasAttribute("\(name)\(index)") {
            result += try strings(attribute: "\(name)\(index)")
            index += 1
        }
        return index == 0 ? nil : result
    }

    /// Writes a scalar variable-length UTF-8 string attribute (as h5py 3 writes `str`).
    public func setString(_ value: String, attribute name: String) throws {
        try HDF5Library.withLock {
            let type = try check(H5Tcopy(tl_H5T_C_S1()), "cannot create a string type")
            defer { H5Tclose(type) }
            try check(H5Tset_size(type, tl_H5T_VARIABLE()), "cannot create a string type")
            try check(H5Tset_cset(type, H5T_CSET_UTF8), "cannot create a string type")
            let space = try check(H5Screate(H5S_SCALAR), "cannot create a dataspace")
            defer { H5Sclose(space) }
            let attribute = try check(H5Acreate2(id, name, type, space, tl_H5P_DEFAULT(), tl_H5P_DEFAULT()),
                                      "cannot create attribute '\(name)'")
            defer { H5Aclose(attribute) }
            try value.withCString { pointer in
                var pointers: [UnsafePointer<CChar>?] = [pointer]
                try check(H5Awrite(attribute, type, &pointers), "cannot write attribute '\(name)'")
            }
        }
    }

    /// The largest attribute Keras writes in one piece (HDF5's object-header limit).
    public static var attributeSizeLimit: Int { 64_512 }

    /// Writes a list of strings as a fixed-length NULLPAD array (as h5py writes a NumPy bytes
    /// array, and as the published keras.applications files hold them), split into `name0`,
    /// `name1`, … like Keras does when it would exceed ``attributeSizeLimit``. An empty list is
    /// written as an empty float64 array, as Keras writes layers without weights.
    public func setStrings(_ values: [String], attribute name: String) throws {
        let width = max(1, values.map(\.utf8.count).max() ?? 1)
        if values.isEmpty {
            try HDF5Library.withLock {
                var dimensions: [hsize_t] = [0]
                let space = try check(H5Screate_simple(1, &dimensions, nil), "cannot create a dataspace")
                defer { H5Sclose(space) }
                let attribute = try check(H5Acreate2(id, name, tl_H5T_IEEE_F64LE(), space, tl_H5P_DEFAULT(), tl_H5P_DEFAULT()),
                                          "cannot create attribute '\(name)'")
                H5Aclose(attribute)
            }
            return
        }
        if width * values.count > Self.attributeSizeLimit {
            // Same rule as Keras' save_attributes_to_hdf5_group: the smallest chunk count that fits.
            var chunkCount = 1
            while (width * values.count + chunkCount - 1) / chunkCount > Self.attributeSizeLimit { chunkCount += 1 }
            guard width <= Self.attributeSizeLimit else {
                throw context.error(objectPath, "a name of \(width) bytes does not fit in an HDF5 attribute")
            }
            let perChunk = (values.count + chunkCount - 1) / chunkCount
            for (index, start) in stride(from: 0, to: values.count, by: perChunk).enumerated() {
                try writeFixedStrings(Array(values[start..<min(values.count, start + perChunk)]), width: width, name: "\(name)\(index)")
            }
        } else {
            try writeFixedStrings(values, width: width, name: name)
        }
    }

    private func writeFixedStrings(_ values: [String], width: Int, name: String) throws {
        try HDF5Library.withLock {
            let type = try check(H5Tcopy(tl_H5T_C_S1()), "cannot create a string type")
            defer { H5Tclose(type) }
            try check(H5Tset_size(type, width), "cannot create a string type")
            try check(H5Tset_strpad(type, H5T_STR_NULLPAD), "cannot create a string type")
            var dimensions: [hsize_t] = [hsize_t(values.count)]
            let space = try check(H5Screate_simple(1, &dimensions, nil), "cannot create a dataspace")
            defer { H5Sclose(space) }
            let attribute = try check(H5Acreate2(id, name, type, space, tl_H5P_DEFAULT(), tl_H5P_DEFAULT()),
                                      "cannot create attribute '\(name)'")
            defer { H5Aclose(attribute) }
            var bytes = [UInt8](repeating: 0, count: width * values.count)
            for (index, value) in values.enumerated() {
                for (offset, byte) in value.utf8.enumerated() { bytes[index * width + offset] = byte }
            }
            try check(H5Awrite(attribute, type, &bytes), "cannot write attribute '\(name)'")
        }
    }
}

extension String {
    /// Decodes a NUL-terminated C buffer as UTF-8.
    init(nullTerminated buffer: [CChar]) {
        let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        self = String(decoding: bytes, as: UTF8.self)
    }
}
