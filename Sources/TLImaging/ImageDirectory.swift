import Foundation

/// A labelled image dataset laid out as one subfolder per class, listed as Keras
/// `ImageDataGenerator.flow_from_directory` lists it.
///
/// Classes are the subfolders of the root, sorted by Unicode code point (Python's `sorted`);
/// each class's files are found recursively (directories sorted by path, files by name, symbolic
/// links to directories not followed) and kept when their extension, case-insensitively, is one
/// of ``allowedExtensions``. Class indices follow the sorted class names.
public struct ImageDirectory: Sendable {
    /// The extensions `flow_from_directory` accepts. Only JPEG and PNG contents can be decoded;
    /// other formats are listed and then fail to load with a clear error.
    public static let allowedExtensions = ["png", "jpg", "jpeg", "bmp", "ppm", "tif", "tiff"]
    /// The extensions Keras 3 `image_dataset_from_directory` accepts (same walk order).
    public static let datasetExtensions = ["bmp", "gif", "jpeg", "jpg", "png"]

    /// The dataset root.
    public var root: URL
    /// Every image file, class by class.
    public var files: [URL]
    /// The class index of each file, parallel to ``files``.
    public var labels: [Int]
    /// The class names (subfolder names) in index order.
    public var classNames: [String]

    /// Lists the dataset under `root`.
    /// - Parameters:
    ///   - classNames: the classes to use, in index order; the sorted subfolders when `nil`.
    ///   - extensions: the lowercase extensions to keep (``allowedExtensions`` by default).
    /// - Throws: ``ImagingError`` when `root` or a class folder cannot be listed, or has no classes.
    public init(root: URL, classNames: [String]? = nil, extensions: [String] = ImageDirectory.allowedExtensions) throws {
        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        guard manager.fileExists(atPath: root.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ImagingError(path: root.path, problem: "not a directory")
        }
        let classes: [String]
        if let classNames {
            classes = classNames
        } else {
            classes = try Self.contents(of: root).filter { name in
                var isClassDirectory: ObjCBool = false
                return manager.fileExists(atPath: root.appendingPathComponent(name).path, isDirectory: &isClassDirectory)
                    && isClassDirectory.boolValue
            }.sorted(by: Self.pythonOrder)
        }
        guard !classes.isEmpty else {
            throw ImagingError(path: root.path, problem: "no class subfolders found (expected one folder of images per class)")
        }

        var files = [URL]()
        var labels = [Int]()
        for (label, name) in classes.enumerated() {
            let folder = root.appendingPathComponent(name, isDirectory: true)
            for file in try Self.files(under: folder) where Self.hasExtension(file, in: extensions) {
                files.append(file)
                labels.append(label)
            }
        }
        self.root = root
        self.files = files
        self.labels = labels
        self.classNames = classes
    }

    /// Whether `url`'s name ends, case-insensitively, in one of `extensions` (Python's
    /// `fname.lower().endswith(formats)`).
    public static func hasExtension(_ url: URL, in extensions: [String] = allowedExtensions) -> Bool {
        let name = url.lastPathComponent.lowercased()
        return extensions.contains { name.hasSuffix("." + $0.lowercased()) }
    }

    // MARK: - Walking, in os.walk order

    private static func files(under directory: URL) throws -> [URL] {
        var found = [(directory: String, files: [String])]()
        var pending = [directory.standardizedFileURL.path]
        while let path = pending.popLast() {
            var names = [String]()
            for name in try contents(of: URL(fileURLWithPath: path, isDirectory: true)) {
                let child = (path as NSString).appendingPathComponent(name)
                let resolvedIsDirectory = isDirectory(child, followingLinks: true)
                if resolvedIsDirectory {
                    if !isSymbolicLink(child) { pending.append(child) }
                } else {
                    names.append(name)
                }
            }
            found.append((path, names))
        }
        return found.sorted { pythonOrder($0.directory, $1.directory) }.flatMap { entry in
            entry.files.sorted(by: pythonOrder)
                .map { URL(fileURLWithPath: (entry.directory as NSString).appendingPathComponent($0)) }
        }
    }

    private static func contents(of directory: URL) throws -> [String] {
        do {
            return try FileManager.default.contentsOfDirectory(atPath: directory.path)
        } catch {
            throw ImagingError(path: directory.path, problem: "cannot list directory: \(error.localizedDescription)")
        }
    }

    private static func isDirectory(_ path: String, followingLinks: Bool) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    private static func isSymbolicLink(_ path: String) -> Bool {
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        return attributes?[.type] as? FileAttributeType == .typeSymbolicLink
    }

    /// Python's `str` ordering: lexicographic by Unicode code point.
    public static func pythonOrder(_ left: String, _ right: String) -> Bool {
        left.unicodeScalars.lexicographicallyPrecedes(right.unicodeScalars) { $0.value < $1.value }
    }
}
