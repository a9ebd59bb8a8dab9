import Engine
import Foundation
import TestSupport
import XCTest

final class TensorFileTests: XCTestCase {
    var dir: String!

    override func setUp() {
        dir = NSTemporaryDirectory() + "/gan-io-\(UUID().uuidString)"
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func testSafeTensorsRoundTripIsBitExact() throws {
        var file = SafeTensors(tensors: ["a.weight": randomTensor([3, 4], seed: 1), "b": Tensor([Float.nan, -0.0, .infinity, Float(bitPattern: 0x0001_16C2) /* 1e-40, a denormal */])],
                               metadata: ["config": "{\"x\": 1}"])
        file.tensors["empty"] = Tensor.zeros([0, 3])
        let path = dir + "/t.safetensors"
        try file.write(to: path)
        let back = try SafeTensors.read(path: path)
        XCTAssertEqual(back.metadata, file.metadata)
        XCTAssertEqual(Set(back.tensors.keys), Set(file.tensors.keys))
        for (k, t) in file.tensors {
            XCTAssertEqual(back[k]!.shape, t.shape)
            XCTAssertEqual(back[k]!.scalars.map(\.bitPattern), t.scalars.map(\.bitPattern), k)
        }
        // No temporary file is left behind.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["t.safetensors"])
    }

    /// Builds a file from a header text and data bytes.
    func raw(_ header: String, _ data: [UInt8] = []) -> Data {
        var d = Data()
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { d.append(contentsOf: $0) }
        d.append(header.data(using: .utf8)!)
        d.append(contentsOf: data)
        return d
    }

    func testSafeTensorsOtherDtypesConvert() throws {
        // F16 1.0 = 0x3C00, BF16 -2.0 = 0xC000, I64 -3, U8 200, F64 0.5
        var bytes: [UInt8] = [0x00, 0x3C, 0x00, 0xC0]
        withUnsafeBytes(of: Int64(-3).littleEndian) { bytes += $0 }
        bytes += [200]
        withUnsafeBytes(of: Double(0.5).bitPattern.littleEndian) { bytes += $0 }
        let header = """
        {"h":{"dtype":"F16","shape":[1],"data_offsets":[0,2]},"b":{"dtype":"BF16","shape":[1],"data_offsets":[2,4]},\
        "i":{"dtype":"I64","shape":[1],"data_offsets":[4,12]},"u":{"dtype":"U8","shape":[1],"data_offsets":[12,13]},\
        "d":{"dtype":"F64","shape":[1],"data_offsets":[13,21]}}
        """
        let f = try SafeTensors.parse(raw(header, bytes))
        XCTAssertEqual(f["h"]!.item, 1)
        XCTAssertEqual(f["b"]!.item, -2)
        XCTAssertEqual(f["i"]!.item, -3)
        XCTAssertEqual(f["u"]!.item, 200)
        XCTAssertEqual(f["d"]!.item, 0.5)
        XCTAssertEqual(f.dtypes["h"], .f16)
    }

    func testSafeTensorsRejectsMalformedFiles() {
        let cases: [(String, Data, String)] = [
            ("short", Data([1, 2, 3]), "shorter than the 8-byte header"),
            ("header past end", raw("{}").prefix(8) + Data("{}".utf8).prefix(1), "past the end"),
            ("not json", raw("{not json"), "not a JSON object"),
            ("unknown dtype", raw(#"{"a":{"dtype":"Q7","shape":[1],"data_offsets":[0,4]}}"#, [0, 0, 0, 0]), "unsupported dtype Q7"),
            ("offsets past data", raw(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, [0, 0, 0, 0]), "past the data size"),
            ("size mismatch", raw(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, [0, 0, 0, 0]), "needs 8"),
            ("overlap", raw(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}}"#, [UInt8](repeating: 0, count: 8)), "overlap"),
            ("duplicate name", raw(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, [UInt8](repeating: 0, count: 8)), "tensor name a appears twice"),
            ("negative dim", raw(#"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, [0, 0, 0, 0]), "invalid dimension"),
        ]
        for (name, data, expected) in cases {
            XCTAssertThrowsError(try SafeTensors.parse(data, path: "bad.safetensors"), name) { error in
                let text = String(describing: error)
                XCTAssertTrue(text.hasPrefix("bad.safetensors:"), "\(name): \(text)")
                XCTAssertTrue(text.contains(expected), "\(name): \(text)")
            }
        }
    }

    func testEmptyTensorsOverlapNothing() throws {
        // Zero-size tensors (PyTorch writes them) may share an offset with a real one; the
        // fuzzer found them refused as overlapping.
        let file = raw(#"{"e":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
                       [UInt8](repeating: 0, count: 8))
        let parsed = try SafeTensors.parse(file)
        XCTAssertEqual(parsed.tensors["e"]?.shape, [0])
        XCTAssertEqual(try SafeTensors.parse(try parsed.serialized()).tensors["x"]?.shape, [2])
    }

    func testNestedKeysAreNotDuplicates() throws {
        // The same field names inside different entries are fine.
        let ok = raw(#"{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"y":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"__metadata__":{"dtype":"not a tensor"}}"#,
                     [UInt8](repeating: 0, count: 8))
        XCTAssertEqual(try SafeTensors.parse(ok).tensors.count, 2)
    }

    func testNpyRoundTripAndErrors() throws {
        let t = randomTensor([2, 3, 4], seed: 5)
        let path = dir + "/x.npy"
        try NumpyFile.write(t, to: path)
        let back = try NumpyFile.read(path: path)
        XCTAssertEqual(back.shape, [2, 3, 4])
        XCTAssertEqual(back.dtype, .float32)
        XCTAssertEqual(back.values, t.scalars)
        let u8 = NumpyFile.encode(shape: [3], dtype: .uint8, values: [0, 127.6, 300])
        let parsed = try NumpyFile.parse(u8)
        XCTAssertEqual(parsed.values, [0, 128, 255])
        XCTAssertEqual(parsed.dtype, .uint8)
        // The header is padded so data starts on a 64-byte boundary, as numpy writes it.
        XCTAssertEqual((u8.count - 3) % 64, 0)
        XCTAssertThrowsError(try NumpyFile.parse(Data("hello".utf8), path: "h.npy")) {
            XCTAssertTrue(String(describing: $0).contains("magic"))
        }
        var wrongDtype = NumpyFile.encode(shape: [1], dtype: .float32, values: [1])
        let header = String(data: wrongDtype, encoding: .isoLatin1)!.replacingOccurrences(of: "<f4", with: "<f8")
        wrongDtype = header.data(using: .isoLatin1)!
        XCTAssertThrowsError(try NumpyFile.parse(wrongDtype)) { XCTAssertTrue(String(describing: $0).contains("<f8")) }
        XCTAssertThrowsError(try NumpyFile.parse(u8.dropLast())) { XCTAssertTrue(String(describing: $0).contains("needs 3 bytes")) }
    }
}
