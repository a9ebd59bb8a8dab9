import Foundation

/// `.npy` version 1–3 files holding float32 (`<f4`) or uint8 (`|u1`) C-order arrays.
public enum NumpyFile {
    public enum DType: String, Sendable { case float32 = "<f4", uint8 = "|u1" }

    public struct Array: Sendable {
        public var shape: [Int]
        public var dtype: DType
        /// Values as Float (uint8 values are 0...255).
        public var values: [Float]
    }

    public static func read(path: String) throws -> Array { try parse(try AtomicFile.read(path), path: path) }

    public static func parse(_ data: Data, path: String = "<memory>") throws -> Array {
        func fail(_ m: String) -> FileFormatError { FileFormatError(path, "not a valid .npy file: " + m) }
        let bytes = [UInt8](data.prefix(12))
        guard bytes.count >= 10, bytes[0] == 0x93, Swift.Array(bytes[1..<6]) == Swift.Array("NUMPY".utf8) else {
            throw fail("missing the \\x93NUMPY magic")
        }
        let major = bytes[6]
        let headerLen: Int, headerStart: Int
        switch major {
        case 1: headerLen = Int(bytes[8]) | Int(bytes[9]) << 8; headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw fail("truncated header") }
            headerLen = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            headerStart = 12
        default: throw fail("unsupported version \(major)")
        }
        guard headerLen <= 1 << 20, headerStart + headerLen <= data.count else { throw fail("header length \(headerLen) past the end of the file") }
        guard let header = String(data: data.subdata(in: data.startIndex + headerStart ..< data.startIndex + headerStart + headerLen), encoding: .utf8) else {
            throw fail("header is not text")
        }
        guard let descr = field(header, "descr")?.trimmingCharacters(in: CharacterSet(charactersIn: "'\" ")) else { throw fail("header has no descr") }
        let dtype: DType
        switch descr {
        case "<f4", "=f4": dtype = .float32
        case "|u1", "<u1", "=u1", "u1": dtype = .uint8
        default: throw fail("dtype \(descr) is not supported (expected float32 '<f4' or uint8 '|u1')")
        }
        if let fo = field(header, "fortran_order"), fo.contains("True") { throw fail("Fortran-order arrays are not supported") }
        // The shape is a Python tuple literal: "(" numbers and commas ")" and nothing else.
        guard let shapeText = field(header, "shape"), shapeText.hasPrefix("("), shapeText.hasSuffix(")"), shapeText.count >= 2 else {
            throw fail("header has no shape tuple")
        }
        var shape: [Int] = []
        for part in shapeText.dropFirst().dropLast().split(separator: ",") {
            let s = part.trimmingCharacters(in: .whitespaces)
            if s.isEmpty { continue }
            guard let n = Int(s), n >= 0, n <= 1 << 40 else { throw fail("invalid dimension \(s) in shape") }
            shape.append(n)
        }
        var count = 1
        for d in shape {
            let (c, o) = count.multipliedReportingOverflow(by: d)
            guard !o, c <= 1 << 40 else { throw fail("shape \(shape) is too large") }
            count = c
        }
        let size = dtype == .float32 ? 4 : 1
        let dataStart = headerStart + headerLen
        guard data.count - dataStart == count * size else {
            throw fail("shape \(shape) of \(descr) needs \(count * size) bytes, the file holds \(data.count - dataStart)")
        }
        var values = [Float](repeating: 0, count: count)
        data.withUnsafeBytes { raw in
            let base = raw.baseAddress! + dataStart
            for i in 0..<count {
                values[i] = dtype == .float32
                    ? Float(bitPattern: UInt32(littleEndian: base.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)))
                    : Float(base.load(fromByteOffset: i, as: UInt8.self))
            }
        }
        return Array(shape: shape, dtype: dtype, values: values)
    }

    /// The text of `'key': value` in a header dict, up to the next top-level comma.
    static func field(_ header: String, _ key: String) -> String? {
        guard let r = header.range(of: "'\(key)':") ?? header.range(of: "\"\(key)\":") else { return nil }
        var depth = 0
        var out = ""
        for ch in header[r.upperBound...] {
            if ch == "(" { depth += 1 }
            if ch == ")" { depth -= 1 }
            if (ch == "," && depth == 0) || ch == "}" { break }
            out.append(ch)
        }
        return out.trimmingCharacters(in: .whitespaces)
    }

    public static func encode(shape: [Int], dtype: DType, values: [Float]) -> Data {
        precondition(Shape.count(shape) == values.count, "npy: \(values.count) values for shape \(shape)")
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '\(dtype.rawValue)', 'fortran_order': False, 'shape': \(shapeText), }"
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var out = Data([0x93] + Swift.Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)])
        out.append(header.data(using: .utf8)!)
        switch dtype {
        case .float32:
            for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { out.append(contentsOf: $0) } }
        case .uint8:
            out.append(contentsOf: values.map { UInt8(Swift.max(0, Swift.min(255, $0.rounded()))) })
        }
        return out
    }

    public static func write(_ tensor: Tensor, dtype: DType = .float32, to path: String) throws {
        try AtomicFile.write(encode(shape: tensor.shape, dtype: dtype, values: tensor.scalars), to: path)
    }
}
