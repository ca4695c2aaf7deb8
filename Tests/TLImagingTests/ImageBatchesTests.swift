import Foundation
import TLTensor
import Testing
@testable import TLImaging

@Suite("Streaming images in batches")
struct ImageBatchesTests {
    let files = ["rgb.jpg", "gray.png", "palette.png", "not_an_image.jpg", "rgba.png", "progressive.jpg", "cmyk.jpg"]
        .map(Fixtures.image)
    let loader = ImageLoader(size: ImageSize(height: 20, width: 24))

    @Test("batches cover every file once, in order; unreadable files are reported, not fatal")
    func orderAndFailures() throws {
        let batches = ImageBatches(files: files, batchSize: 3, loader: loader, preprocessing: .tensorflow)
        var rows: [URL] = [], failed: [URL] = [], sizes: [Int] = []
        while let batch = batches.next() {
            #expect(batch.tensor.shape == [batch.files.count, 20, 24, 3])
            rows += batch.files
            failed += batch.failures.map { $0.file }
            sizes.append(batch.files.count + batch.failures.count)
        }
        #expect(sizes == [3, 3, 1])
        #expect(failed == [Fixtures.image("not_an_image.jpg")])
        #expect(rows == files.filter { $0.lastPathComponent != "not_an_image.jpg" })
        let after = batches.next()
        #expect(after == nil, "the stream ends after the last batch")
    }

    @Test("each streamed batch equals loading its files at once")
    func sameAsWholeBatch() throws {
        let readable = files.filter { $0.lastPathComponent != "not_an_image.jpg" }
        let whole = try loader.batch(files: readable, preprocessing: .caffe)
        let batches = ImageBatches(files: readable, batchSize: 4, loader: loader, preprocessing: .caffe)
        var scalars: [Float] = []
        while let batch = batches.next() { scalars += batch.tensor.scalars }
        #expect(scalars == whole.scalars)
    }
}
