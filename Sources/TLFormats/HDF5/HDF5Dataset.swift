import CHDF5
import Foundation
import TLTensor

/// An open HDF5 dataset of numbers, read as float32.
///
/// Opening checks the declared size against the file: a dataset whose shape claims more bytes
/// than the file holds (a corrupt or hostile header) is an error before anything is allocated.
public final class HDF5Dataset: HDF5Object {
    /// How the values are stored in the file.
    public enum StorageType: String, Sendable {
        /// IEEE float32.
        case float32
        /// IEEE float16.
        case float16
        /// IEEE float64.
        case float64
        /// bfloat16 bits, marked by a `dtype = "bfloat16"` attribute (Keras 3).
        case bfloat16
        /// An integer type (read converted to float32).
        case integer
    }

    /// The dataset's dimensions (`[]` for a scalar).
    public private(set) var shape: [Int] = []
    /// The stored element type.
    public private(set) var storageType: StorageType = .float32

    /// The number of elements.
    public var elementCount: Int { shape.reduce(1, *) }

    /// Reads shape and type and checks them; called once by ``HDF5Group/dataset(_:)``.
    func load() throws {
        let isBFloat16 = hasAttribute("dtype") && (try? string(attribute: "dtype")) == "bfloat16"
        try HDF5Library.withLock {
            let space = try check(H5Dget_space(id), "cannot read the dataspace")
            defer { H5Sclose(space) }
            let rank = try check(H5Sget_simple_extent_ndims(space), "cannot read the rank")
            guard rank <= 32 else { throw context.error(objectPath, "implausible rank \(rank)") }
            var dimensions = [hsize_t](repeating: 0, count: Int(rank))
            try check(H5Sget_simple_extent_dims(space, &dimensions, nil), "cannot read the dimensions")
            var count: UInt64 = 1
            for dimension in dimensions {
                let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
                guard !overflow, product < 1 << 40 else {
                    throw context.error(objectPath, "declared shape \(dimensions) is absurd")
                }
                count = product
            }
            shape = dimensions.map { Int($0) }

            let type = try check(H5Dget_type(id), "cannot read the element type")
            defer { H5Tclose(type) }
            let size = H5Tget_size(type)
            switch (H5Tget_class(type), size) {
            case (_, 2) where isBFloat16: storageType = .bfloat16
            case (H5T_FLOAT, 4): storageType = .float32
            case (H5T_FLOAT, 2): storageType = .float16
            case (H5T_FLOAT, 8): storageType = .float64
            case (H5T_INTEGER, 1...8): storageType = .integer
            case (let typeClass, _):
                throw context.error(objectPath, "unsupported element type (HDF5 class \(typeClass.rawValue), \(size) bytes)")
            }

            let declared = count * UInt64(size)
            let createList = try check(H5Dget_create_plist(id), "cannot read the creation properties")
            defer { H5Pclose(createList) }
            let filterCount = H5Pget_nfilters(createList)
            // Compressed data may legitimately expand; a thousandfold is already implausible.
            let limit = UInt64(context.fileSize) * (filterCount > 0 ? 1000 : 1)
            guard declared <= limit else {
                throw context.error(objectPath, "declares \(shape) × \(size) bytes = \(declared) bytes, more than the \(context.fileSize)-byte file holds")
            }
        }
    }

    /// Reads every value, converted to float32, into `buffer` (which must hold ``elementCount``).
    /// - Throws: ``HDF5Error`` when the data cannot be read (truncated file, bad chunk…).
    public func read(into buffer: UnsafeMutableBufferPointer<Float>) throws {
        precondition(buffer.count == elementCount, "buffer of \(buffer.count) for \(elementCount) values")
        guard elementCount > 0, let base = buffer.baseAddress else { return }
        try HDF5Library.withLock {
            if storageType == .bfloat16 {
                // HDF5 has no bfloat16 conversion: read the raw 16-bit words and widen them.
                let type = try check(H5Dget_type(id), "cannot read the element type")
                defer { H5Tclose(type) }
                let raw = UnsafeMutableRawPointer(base)
                try check(H5Dread(id, type, tl_H5S_ALL(), tl_H5S_ALL(), tl_H5P_DEFAULT(), raw), "cannot read bfloat16 data")
                // Widen in place from the back so no word is overwritten before it is read.
                let words = raw.assumingMemoryBound(to: UInt16.self)
                for index in stride(from: elementCount - 1, through: 0, by: -1) {
                    let bits = UInt16(littleEndian: words[index])
                    base[index] = Float(bitPattern: UInt32(bits) << 16)
                }
                return
            }
            try check(H5Dread(id, tl_H5T_NATIVE_FLOAT(), tl_H5S_ALL(), tl_H5S_ALL(), tl_H5P_DEFAULT(), base), "cannot read data")
        }
    }

    /// Reads the values in row-major order, handing them to `body` in pieces of at most about
    /// `limit` values (whole rows along the first dimension, via hyperslab selections), so a
    /// 400 MB kernel streams through a small buffer.
    public func stream(limit: Int, _ body: (UnsafeBufferPointer<Float>) throws -> Void) throws {
        let count = elementCount
        guard count > 0 else { return }
        let rowSize = shape.isEmpty ? count : count / max(1, shape[0])
        if count <= limit || storageType == .bfloat16 || rowSize == 0 || rowSize > limit {
            let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
            defer { buffer.deallocate() }
            try read(into: buffer)
            try body(UnsafeBufferPointer(buffer))
            return
        }
        let rowsPerPiece = max(1, limit / rowSize)
        let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: rowsPerPiece * rowSize)
        defer { buffer.deallocate() }
        var row = 0
        while row < shape[0] {
            let rows = min(rowsPerPiece, shape[0] - row)
            let piece = UnsafeMutableBufferPointer(rebasing: buffer[0..<rows * rowSize])
            try HDF5Library.withLock {
                let fileSpace = try check(H5Dget_space(id), "cannot read the dataspace")
                defer { H5Sclose(fileSpace) }
                var start = [hsize_t](repeating: 0, count: shape.count)
                var extent = shape.map { hsize_t($0) }
                start[0] = hsize_t(row)
                extent[0] = hsize_t(rows)
                try check(H5Sselect_hyperslab(fileSpace, H5S_SELECT_SET, &start, nil, &extent, nil), "cannot select rows")
                let memorySpace = try check(H5Screate_simple(Int32(extent.count), &extent, nil), "cannot create a dataspace")
                defer { H5Sclose(memorySpace) }
                try check(H5Dread(id, tl_H5T_NATIVE_FLOAT(), memorySpace, fileSpace, tl_H5P_DEFAULT(), piece.baseAddress),
                          "cannot read rows \(row)..<\(row + rows)")
            }
            try body(UnsafeBufferPointer(piece))
            row += rows
        }
    }

    /// Reads the dataset as a ``Tensor``.
    public func tensor() throws -> Tensor {
        var scalars = [Float](repeating: 0, count: elementCount)
        try scalars.withUnsafeMutableBufferPointer { try read(into: $0) }
        return Tensor(shape: shape, scalars: scalars)
    }
}
