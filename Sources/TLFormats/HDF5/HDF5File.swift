import CHDF5
import Foundation

/// A group or the file's root group: something that holds named links to groups and datasets.
public class HDF5Group: HDF5Object {
    /// The names of the group's links, in name order (HDF5's index order; Keras' h5py does not
    /// track creation order).
    public func linkNames() throws -> [String] {
        try HDF5Library.withLock {
            var info = H5G_info_t()
            try check(H5Gget_info(id, &info), "cannot read the group")
            guard info.nlinks < 10_000_000 else { throw context.error(objectPath, "implausible link count \(info.nlinks)") }
            return try (0..<info.nlinks).map { index in
                let length = try check(H5Lget_name_by_idx(id, ".", H5_INDEX_NAME, H5_ITER_INC, index, nil, 0, tl_H5P_DEFAULT()),
                                       "cannot read a link name")
                guard length < 1 << 20 else { throw context.error(objectPath, "implausible link name length \(length)") }
                var buffer = [CChar](repeating: 0, count: Int(length) + 1)
                try check(H5Lget_name_by_idx(id, ".", H5_INDEX_NAME, H5_ITER_INC, index, &buffer, buffer.count, tl_H5P_DEFAULT()),
                          "cannot read a link name")
                return String(nullTerminated: buffer)
            }
        }
    }

    /// Whether `path` (one or more `/`-separated names relative to this group) names an object.
    public func contains(_ path: String) -> Bool {
        HDF5Library.withLock {
            var prefix = ""
            for component in path.split(separator: "/") {
                prefix += prefix.isEmpty ? String(component) : "/" + component
                let status = H5Lexists(id, prefix, tl_H5P_DEFAULT())
                if status <= 0 {
                    if status < 0 { _ = HDF5Library.takeErrorMessage(fallback: "") }
                    return false
                }
            }
            return !prefix.isEmpty
        }
    }

    /// Whether `path` names a group (false for datasets and missing links).
    public func isGroup(_ path: String) -> Bool {
        guard contains(path) else { return false }
        return HDF5Library.withLock {
            let object = H5Oopen(id, path, tl_H5P_DEFAULT())
            guard object >= 0 else { _ = HDF5Library.takeErrorMessage(fallback: ""); return false }
            defer { H5Oclose(object) }
            return H5Iget_type(object) == H5I_GROUP
        }
    }

    /// Opens the group at `path` (relative to this one).
    /// - Throws: ``HDF5Error`` naming the missing or unreadable group.
    public func group(_ path: String) throws -> HDF5Group {
        let full = childPath(path)
        guard contains(path) else { throw context.error(full, "no such group") }
        return try HDF5Library.withLock {
            let group = try check(H5Gopen2(id, path, tl_H5P_DEFAULT()), "cannot open group", object: full)
            return HDF5Group(id: group, context: context, objectPath: full, parent: self, close: H5Gclose)
        }
    }

    /// Opens the dataset at `path` (relative to this one) and checks its declared size.
    /// - Throws: ``HDF5Error`` naming the missing, unreadable or implausible dataset.
    public func dataset(_ path: String) throws -> HDF5Dataset {
        let full = childPath(path)
        guard contains(path) else { throw context.error(full, "no such dataset") }
        let dataset = try HDF5Library.withLock {
            let dataset = try check(H5Dopen2(id, path, tl_H5P_DEFAULT()), "cannot open dataset", object: full)
            return HDF5Dataset(id: dataset, context: context, objectPath: full, parent: self, close: H5Dclose)
        }
        try dataset.load()
        return dataset
    }

    /// Creates a child group.
    public func createGroup(_ name: String) throws -> HDF5Group {
        let full = childPath(name)
        return try HDF5Library.withLock {
            let group = try check(H5Gcreate2(id, name, tl_H5P_DEFAULT(), tl_H5P_DEFAULT(), tl_H5P_DEFAULT()),
                                  "cannot create group", object: full)
            return HDF5Group(id: group, context: context, objectPath: full, parent: self, close: H5Gclose)
        }
    }

    /// Opens the child group `name`, creating it when missing.
    public func groupCreatingIfNeeded(_ name: String) throws -> HDF5Group {
        isGroup(name) ? try group(name) : try createGroup(name)
    }

    /// Writes a little-endian float32 dataset of `shape` (contiguous, no compression: the layout
    /// Keras writes) from pieces of whole rows along the first dimension: `fill` passes each piece,
    /// in order, to the sink it is given, so a large tensor is never held whole.
    /// - Throws: ``HDF5Error`` when writing fails or the pieces do not add up to `shape`.
    public func createDataset(_ name: String, shape: [Int],
                              fill: ((UnsafeBufferPointer<Float>) throws -> Void) throws -> Void) throws {
        let full = childPath(name)
        let count = shape.reduce(1, *)
        let rowSize = shape.isEmpty || shape[0] == 0 ? max(1, count) : count / shape[0]
        let dataset: hid_t = try HDF5Library.withLock {
            var dimensions = shape.map { hsize_t($0) }
            let space = shape.isEmpty
                ? try check(H5Screate(H5S_SCALAR), "cannot create a dataspace", object: full)
                : try check(H5Screate_simple(Int32(shape.count), &dimensions, nil), "cannot create a dataspace", object: full)
            defer { H5Sclose(space) }
            return try check(H5Dcreate2(id, name, tl_H5T_IEEE_F32LE(), space, tl_H5P_DEFAULT(), tl_H5P_DEFAULT(), tl_H5P_DEFAULT()),
                             "cannot create dataset", object: full)
        }
        defer { HDF5Library.withLock { _ = H5Dclose(dataset) } }
        var written = 0
        try fill { piece in
            guard piece.count > 0 else { return }
            guard piece.count % rowSize == 0, written + piece.count <= count, let base = piece.baseAddress else {
                throw context.error(full, "got a piece of \(piece.count) values, not whole rows of \(rowSize) within \(shape)")
            }
            try HDF5Library.withLock {
                if shape.isEmpty {
                    try check(H5Dwrite(dataset, tl_H5T_NATIVE_FLOAT(), tl_H5S_ALL(), tl_H5S_ALL(), tl_H5P_DEFAULT(), base),
                              "cannot write dataset", object: full)
                    return
                }
                let fileSpace = try check(H5Dget_space(dataset), "cannot read the dataspace", object: full)
                defer { H5Sclose(fileSpace) }
                var start = [hsize_t](repeating: 0, count: shape.count)
                var extent = shape.map { hsize_t($0) }
                start[0] = hsize_t(written / rowSize)
                extent[0] = hsize_t(piece.count / rowSize)
                try check(H5Sselect_hyperslab(fileSpace, H5S_SELECT_SET, &start, nil, &extent, nil), "cannot select rows", object: full)
                let memorySpace = try check(H5Screate_simple(Int32(extent.count), &extent, nil), "cannot create a dataspace", object: full)
                defer { H5Sclose(memorySpace) }
                try check(H5Dwrite(dataset, tl_H5T_NATIVE_FLOAT(), memorySpace, fileSpace, tl_H5P_DEFAULT(), base),
                          "cannot write dataset", object: full)
            }
            written += piece.count
        }
        guard written == count else {
            throw context.error(full, "got \(written) values for shape \(shape) (\(count) values)")
        }
    }

    /// Writes a little-endian float32 dataset of `shape` holding `values` (contiguous, no
    /// compression: the layout Keras writes).
    public func createDataset(_ name: String, shape: [Int], values: UnsafeBufferPointer<Float>) throws {
        let full = childPath(name)
        precondition(values.count == shape.reduce(1, *), "\(values.count) values do not fill \(shape)")
        try HDF5Library.withLock {
            var dimensions = shape.map { hsize_t($0) }
            let space = shape.isEmpty
                ? try check(H5Screate(H5S_SCALAR), "cannot create a dataspace", object: full)
                : try check(H5Screate_simple(Int32(shape.count), &dimensions, nil), "cannot create a dataspace", object: full)
            defer { H5Sclose(space) }
            let dataset = try check(H5Dcreate2(id, name, tl_H5T_IEEE_F32LE(), space, tl_H5P_DEFAULT(), tl_H5P_DEFAULT(), tl_H5P_DEFAULT()),
                                    "cannot create dataset", object: full)
            defer { H5Dclose(dataset) }
            if values.count > 0 {
                try check(H5Dwrite(dataset, tl_H5T_NATIVE_FLOAT(), tl_H5S_ALL(), tl_H5S_ALL(), tl_H5P_DEFAULT(), values.baseAddress),
                          "cannot write dataset", object: full)
            }
        }
    }
}

/// An open HDF5 file (read-only from disk or from an in-memory image, or newly created); it is
/// also its own root group.
public final class HDF5File: HDF5Group {
    /// The first 8 bytes of every HDF5 file (at offset 0, 512, 1024, … when a user block precedes it).
    public static let signature: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A]

    /// Opens `url` read-only.
    /// - Parameter probe: first read the file's structure in a forked child (`HDF5Library.probe`),
    ///   so a file crafted to crash libhdf5 is refused instead; false only for a file known to
    ///   have passed already.
    /// - Throws: ``HDF5Error`` when the file is missing, is not HDF5, or is damaged.
    public static func open(_ url: URL, probe: Bool = true) throws -> HDF5File {
        let path = url.path
        // stat(2), not attributesOfItem (lstat): a symbolic link's own size is not the file's.
        var status = stat()
        guard stat(path, &status) == 0 else {
            throw HDF5Error(path: path, objectPath: "/", problem: "no such file")
        }
        let size = Int(status.st_size)
        try checkSignature(path: path, prefix: (try? FileHandle(forReadingFrom: url).read(upToCount: 8)) ?? Data())
        if probe { try HDF5Library.probe(path: path, displayPath: path) }
        let context = HDF5Context(path: path, fileSize: size)
        return try HDF5Library.withLock {
            let id = try HDF5Library.check(H5Fopen(path, tl_H5F_ACC_RDONLY(), tl_H5P_DEFAULT()), path: path, object: "/", "cannot open as HDF5")
            return HDF5File(id: id, context: context, objectPath: "/", parent: nil, close: H5Fclose)
        }
    }

    /// Opens an HDF5 file image held in memory (HDF5's core driver copies it; nothing touches disk).
    /// - Parameter name: how errors name the image (e.g. `model.keras!model.weights.h5`).
    public static func open(image: Data, name: String, probe: Bool = true) throws -> HDF5File {
        try checkSignature(path: name, prefix: image.prefix(8))
        // The name only has to be unique among open files; the core driver never opens it.
        let uniqueName = "tlhub-image-\(UUID().uuidString)"
        if probe { try HDF5Library.probe(path: uniqueName, displayPath: name, image: image) }
        let context = HDF5Context(path: name, fileSize: image.count)
        return try HDF5Library.withLock {
            let access = try HDF5Library.check(H5Pcreate(tl_H5P_FILE_ACCESS()), path: name, object: "/", "cannot create a property list")
            defer { H5Pclose(access) }
            try HDF5Library.check(H5Pset_fapl_core(access, 1 << 20, false), path: name, object: "/", "cannot select the in-memory driver")
            _ = try image.withUnsafeBytes { raw in
                try HDF5Library.check(H5Pset_file_image(access, UnsafeMutableRawPointer(mutating: raw.baseAddress), raw.count),
                                      path: name, object: "/", "cannot load the file image")
            }
            let id = try HDF5Library.check(H5Fopen(uniqueName, tl_H5F_ACC_RDONLY(), access),
                                           path: name, object: "/", "cannot open as HDF5")
            return HDF5File(id: id, context: context, objectPath: "/", parent: nil, close: H5Fclose)
        }
    }

    /// Creates (or truncates) `url` for writing.
    public static func create(_ url: URL) throws -> HDF5File {
        let path = url.path
        return try HDF5Library.withLock {
            let id = try HDF5Library.check(H5Fcreate(path, tl_H5F_ACC_TRUNC(), tl_H5P_DEFAULT(), tl_H5P_DEFAULT()),
                                           path: path, object: "/", "cannot create HDF5 file")
            return HDF5File(id: id, context: HDF5Context(path: path, fileSize: Int.max), objectPath: "/", parent: nil, close: H5Fclose)
        }
    }

    /// Writes everything buffered to disk.
    public func flush() throws {
        try HDF5Library.withLock {
            try check(H5Fflush(id, H5F_SCOPE_GLOBAL), "cannot flush")
        }
    }

    private static func checkSignature(path: String, prefix: Data) throws {
        guard Array(prefix.prefix(8)) == signature else {
            throw HDF5Error(path: path, objectPath: "/", problem: "not an HDF5 file (no HDF5 signature at byte 0)")
        }
    }
}
