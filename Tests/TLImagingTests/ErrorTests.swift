import Foundation
import Testing
@testable import TLImaging

@Suite("Bad files give one clear error naming the file", .serialized)
struct ErrorTests {
    func failure(decoding name: String) -> ImagingError? {
        do {
            _ = try ImageDecoder().decode(contentsOf: Fixtures.image(name))
            return nil
        } catch let error as ImagingError {
            return error
        } catch {
            return nil
        }
    }

    @Test("a text file named .jpg")
    func notAnImage() throws {
        let error = try #require(failure(decoding: "not_an_image.jpg"))
        #expect(error.path.hasSuffix("not_an_image.jpg"))
        #expect(error.problem.contains("not a JPEG or PNG"))
    }

    @Test("a truncated JPEG is an error, not a gray-padded image (Pillow raises too)")
    func truncatedJPEG() throws {
        let error = try #require(failure(decoding: "truncated.jpg"))
        #expect(error.description.contains("truncated.jpg"))
        #expect(error.problem.contains("truncated"))
    }

    @Test("a truncated PNG")
    func truncatedPNG() throws {
        let error = try #require(failure(decoding: "truncated.png"))
        #expect(error.description.contains("truncated.png"))
        #expect(error.problem.contains("truncated"))
    }

    @Test("a missing file and an empty file")
    func missingAndEmpty() throws {
        let missing = try #require(failure(decoding: "does_not_exist.png"))
        #expect(missing.problem.contains("cannot read"))
        #expect(throws: ImagingError(path: "empty.png", problem: "empty file, not an image")) {
            try ImageDecoder().decode(Data(), path: "empty.png")
        }
    }

    @Test("recognised but undecodable formats say so")
    func unsupportedFormat() {
        #expect(throws: ImagingError.self) { try ImageDecoder().decode(Data("GIF89a\u{1}\u{0}".utf8), path: "a.gif") }
        do {
            _ = try ImageDecoder().decode(Data("BM\0\0\0\0".utf8), path: "a.bmp")
        } catch let error as ImagingError {
            #expect(error.description == "a.bmp: BMP images are not supported; convert to JPEG or PNG")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test("images above the pixel limit are refused before allocation")
    func pixelLimit() throws {
        let data = try Data(contentsOf: Fixtures.image("rgb.jpg"))
        let small = ImageDecoder(maximumPixelCount: 100)
        #expect(throws: ImagingError.self) { try small.decode(data, path: "rgb.jpg") }
        let png = try Data(contentsOf: Fixtures.image("rgba.png"))
        #expect(throws: ImagingError.self) { try small.decode(png, path: "rgba.png") }
    }

    @Test("a batch names the bad file among good ones")
    func batchNamesFile() throws {
        let files = [Fixtures.image("rgba.png"), Fixtures.image("truncated.jpg"), Fixtures.image("gray.png")]
        do {
            _ = try ImageLoader.batch(files: files, size: ImageSize(height: 8, width: 8), preprocessing: .caffe)
            Issue.record("batch with a truncated JPEG succeeded")
        } catch let error as ImagingError {
            #expect(error.path.hasSuffix("truncated.jpg"))
        }
    }

    @Test("images of different sizes cannot be batched without a target size")
    func batchSizeMismatch() throws {
        let files = [Fixtures.image("rgba.png"), Fixtures.image("rotated.jpg")]
        let loader = ImageLoader(decoder: ImageDecoder(appliesExifOrientation: true))
        #expect(throws: ImagingError.self) { try loader.batch(files: files, preprocessing: .identity) }
    }
}

/// Corrupts every fixture at many offsets and truncates it at many lengths: decoding must either
/// succeed or throw ``ImagingError``, and libjpeg/libpng must write nothing to stderr.
@Suite("Corrupted bytes never crash or print", .serialized)
struct FuzzTests {
    static let sources = ["rgb.jpg", "progressive.jpg", "cmyk.jpg", "gray.jpg", "rgba.png", "interlaced.png",
                          "palette.png", "rgb16.png"]

    /// Runs `body` with file descriptor 2 redirected to a temporary file and returns what was
    /// written there, minus Swift Testing's own progress lines (other suites run in parallel and
    /// report on stderr; their lines start with a non-ASCII symbol such as ◇ or ✘).
    func capturingStandardError(_ body: () throws -> Void) rethrows -> String {
        let capture = FileManager.default.temporaryDirectory.appendingPathComponent("tlhub-stderr-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: capture.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: capture) }
        fflush(nil)
        let saved = dup(2)
        let file = open(capture.path, O_WRONLY)
        dup2(file, 2)
        close(file)
        defer {
            fflush(nil)
            dup2(saved, 2)
            close(saved)
        }
        try body()
        fflush(nil)
        let text = (try? String(contentsOf: capture, encoding: .utf8)) ?? ""
        return text.split(separator: "\n")
            .filter { line in line.unicodeScalars.first.map(\.isASCII) ?? false }
            .joined(separator: "\n")
    }

    @Test("single-byte corruption at many offsets", arguments: sources)
    func corruptedBytes(name: String) throws {
        let original = [UInt8](try Data(contentsOf: Fixtures.image(name)))
        var outcomes = (decoded: 0, failed: 0)
        let printed = try capturingStandardError {
            let stride = max(1, original.count / 300)
            for offset in Swift.stride(from: 0, to: original.count, by: stride) {
                for value: UInt8 in [0x00, 0xFF, original[offset] ^ 0x5A] {
                    var bytes = original
                    bytes[offset] = value
                    do {
                        let image = try ImageDecoder().decode(Data(bytes), path: name)
                        #expect(image.pixels.count == image.width * image.height * 3)
                        outcomes.decoded += 1
                    } catch is ImagingError {
                        outcomes.failed += 1
                    }
                }
            }
        }
        #expect(printed.isEmpty, "C library printed: \(printed.prefix(200))")
        #expect(outcomes.failed > 0)
    }

    /// Pillow rejects a JPEG missing even its EOI marker, but accepts a PNG missing its IEND
    /// chunk (and the last IDAT checksum), so the PNG cut-off stops 13 bytes short of the end.
    @Test("truncation at many lengths is always an error before the image data ends", arguments: sources)
    func truncated(name: String) throws {
        let original = try Data(contentsOf: Fixtures.image(name))
        var unexpectedSuccesses = [Int]()
        let printed = try capturingStandardError {
            let lastImageByte = original.count - (name.hasSuffix(".png") ? 13 : 0)
            let lengths = Array(Swift.stride(from: 0, to: lastImageByte, by: max(1, original.count / 200)))
                + Array((lastImageByte - 3)..<lastImageByte)
            for length in lengths {
                do {
                    _ = try ImageDecoder().decode(original.prefix(length), path: name)
                    unexpectedSuccesses.append(length)
                } catch is ImagingError {}
            }
        }
        #expect(printed.isEmpty, "C library printed: \(printed.prefix(200))")
        #expect(unexpectedSuccesses.isEmpty, "\(name) truncated to \(unexpectedSuccesses) bytes decoded without error")
    }
}
