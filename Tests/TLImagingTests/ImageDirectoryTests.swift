import Foundation
import Testing
@testable import TLImaging

@Suite("Listing a class-per-folder dataset like flow_from_directory")
struct ImageDirectoryTests {
    func makeDataset() throws -> URL {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("tlhub-dataset-\(UUID().uuidString)")
        let files = ["dog/b.jpg", "dog/a.PNG", "dog/notes.txt", "dog/sub/c.jpeg", "dog/sub dir/d.png",
                     "Zebra/z.tiff", "cat/x.bmp", "cat/.hidden.jpg", "cat/y.gif"]
        for file in files {
            let url = root.appendingPathComponent(file)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data("x".utf8).write(to: url)
        }
        try Data("not a class".utf8).write(to: root.appendingPathComponent("README.jpg"))
        return root
    }

    /// The expected listing is what tf_keras `ImageDataGenerator().flow_from_directory` printed
    /// for this same tree.
    @Test("classes sorted by code point, files in os.walk order, extensions filtered")
    func listing() throws {
        let root = try makeDataset()
        defer { try? FileManager.default.removeItem(at: root) }
        let dataset = try ImageDirectory(root: root)
        #expect(dataset.classNames == ["Zebra", "cat", "dog"])
        let relative = dataset.files.map { String($0.path.dropFirst(root.path.count + 1)) }
        #expect(relative == ["Zebra/z.tiff", "cat/.hidden.jpg", "cat/x.bmp",
                             "dog/a.PNG", "dog/b.jpg", "dog/sub/c.jpeg", "dog/sub dir/d.png"])
        #expect(dataset.labels == [0, 1, 1, 2, 2, 2, 2])
    }

    @Test("image_dataset_from_directory's extensions keep GIF and drop TIFF")
    func datasetExtensions() throws {
        let root = try makeDataset()
        defer { try? FileManager.default.removeItem(at: root) }
        let dataset = try ImageDirectory(root: root, extensions: ImageDirectory.datasetExtensions)
        let relative = dataset.files.map { String($0.path.dropFirst(root.path.count + 1)) }
        #expect(relative == ["cat/.hidden.jpg", "cat/x.bmp", "cat/y.gif",
                             "dog/a.PNG", "dog/b.jpg", "dog/sub/c.jpeg", "dog/sub dir/d.png"])
        #expect(dataset.labels == [1, 1, 1, 2, 2, 2, 2])
    }

    @Test("explicit class names choose and order the classes")
    func explicitClasses() throws {
        let root = try makeDataset()
        defer { try? FileManager.default.removeItem(at: root) }
        let dataset = try ImageDirectory(root: root, classNames: ["dog", "cat"])
        #expect(dataset.labels == [0, 0, 0, 0, 1, 1])
    }

    @Test("a missing root or one without class folders is an error naming it")
    func badRoots() throws {
        let missing = URL(fileURLWithPath: "/nonexistent/tlhub-dataset")
        #expect(throws: ImagingError(path: missing.path, problem: "not a directory")) { try ImageDirectory(root: missing) }
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("tlhub-empty-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: empty) }
        #expect(throws: ImagingError.self) { try ImageDirectory(root: empty) }
    }
}
