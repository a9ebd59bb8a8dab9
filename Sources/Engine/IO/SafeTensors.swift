import Foundation

/// The safetensors format (Hugging Face): an 8-byte little-endian header length, a JSON header
/// mapping names to `{dtype, shape, data_offsets}` plus an optional `__metadata__` string map,
/// then the raw little-endian tensor bytes. Every field is checked before any byte is used.
public struct SafeTensors {
    public enum DType: String, CaseIterable, Sendable {
        case f32 = "F32", f16 = "F16", bf16 = "BF16", f64 = "F64", i64 = "I64", i32 = "I32", u8 = "U8"
        var size: Int {
            switch self {
            case .f32, .i32: return 4
            case .f16, .bf16: return 2
            case .f64, .i64: return 8
            case .u8: return 1
            }
        }
    }

    /// Tensors in file order of their data; all converted to Float32.
    public var tensors: [String: Tensor]
    /// The dtype each tensor had in the file.
    public var dtypes: [String: DType]
    public var metadata: [String: String]

    public init(tensors: [String: Tensor] = [:], metadata: [String: String] = [:]) {
        self.tensors = tensors
        self.metadata = metadata
        dtypes = tensors.mapValues { _ in .f32 }
    }

    public subscript(name: String) -> Tensor? { tensors[name] }

    public static let maxHeaderBytes = 100 << 20

    public static func read(path: String) throws -> SafeTensors {
        try parse(try AtomicFile.read(path), path: path)
    }

    public static func parse(_ data: Data, path: String = "<memory>") throws -> SafeTensors {
        func fail(_ msg: String) -> FileFormatError { FileFormatError(path, "not a valid safetensors file: " + msg) }
        guard data.count >= 8 else { throw fail("\(data.count) bytes, shorter than the 8-byte header length") }
        let headerLen = data.prefix(8).withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard headerLen <= UInt64(maxHeaderBytes), headerLen <= UInt64(data.count - 8) else {
            throw fail("header length \(headerLen) runs past the end of the file (\(data.count) bytes)")
        }
        let headerData = data.subdata(in: data.startIndex + 8 ..< data.startIndex + 8 + Int(headerLen))
        guard let root = (try? JSONSerialization.jsonObject(with: headerData)) as? [String: Any] else {
            throw fail("header is not a JSON object")
        }
        if let dup = duplicateTopLevelKey(headerData) { throw fail("tensor name \(dup) appears twice in the header") }
        let dataStart = 8 + Int(headerLen)
        let dataSize = data.count - dataStart
        var result = SafeTensors()
        var spans: [(Int, Int, String)] = []
        for (name, value) in root {
            if name == "__metadata__" {
                guard let meta = value as? [String: Any] else { throw fail("__metadata__ is not an object") }
                for (k, v) in meta {
                    guard let s = v as? String else { throw fail("metadata value for \(k) is not a string") }
                    result.metadata[k] = s
                }
                continue
            }
            guard let entry = value as? [String: Any] else { throw fail("entry \(name) is not an object") }
            guard let dtypeName = entry["dtype"] as? String else { throw fail("\(name) has no dtype") }
            guard let dtype = DType(rawValue: dtypeName) else {
                throw fail("\(name) has unsupported dtype \(dtypeName) (expected one of \(DType.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            guard let shapeAny = entry["shape"] as? [Any] else { throw fail("\(name) has no shape list") }
            var shape: [Int] = []
            var count = 1
            for d in shapeAny {
                guard let n = d as? Int, n >= 0, n <= 1 << 40 else { throw fail("\(name) has an invalid dimension \(d)") }
                shape.append(n)
                let (c, overflow) = count.multipliedReportingOverflow(by: n)
                guard !overflow, c <= 1 << 40 else { throw fail("\(name) shape \(shape) is too large") }
                count = c
            }
            guard let offs = entry["data_offsets"] as? [Any], offs.count == 2,
                  let begin = offs[0] as? Int, let end = offs[1] as? Int, begin >= 0, end >= begin else {
                throw fail("\(name) has invalid data_offsets")
            }
            guard end <= dataSize else { throw fail("\(name) data_offsets [\(begin), \(end)] past the data size \(dataSize)") }
            guard end - begin == count * dtype.size else {
                throw fail("\(name) holds \(end - begin) bytes but shape \(shape) of \(dtypeName) needs \(count * dtype.size)")
            }
            // An empty tensor occupies no bytes, so it overlaps nothing wherever it points.
            if end > begin { spans.append((begin, end, name)) }
            let bytes = data.subdata(in: data.startIndex + dataStart + begin ..< data.startIndex + dataStart + end)
            result.tensors[name] = convert(bytes, dtype, shape)
            result.dtypes[name] = dtype
        }
        spans.sort { $0.0 < $1.0 }
        for i in spans.indices.dropFirst() where spans[i].0 < spans[i - 1].1 {
            throw fail("tensors \(spans[i - 1].2) and \(spans[i].2) overlap")
        }
        return result
    }

    /// The first key that occurs twice at the top level of a JSON object (JSON parsers keep
    /// the last silently, which would hide a conflicting tensor).
    static func duplicateTopLevelKey(_ json: Data) -> String? {
        var depth = 0, inString = false, escaped = false
        var current: [UInt8] = []
        var lastString: [UInt8]? = nil
        var seen: Set<[UInt8]> = []
        for b in json {
            if inString {
                if escaped { escaped = false; current.append(b); continue }
                if b == 0x5C { escaped = true; current.append(b); continue }
                if b == 0x22 { inString = false; lastString = current; continue }
                current.append(b)
                continue
            }
            switch b {
            case 0x22: inString = true; current = []
            case 0x7B, 0x5B: depth += 1; lastString = nil
            case 0x7D, 0x5D: depth -= 1; lastString = nil
            case 0x3A:  // ':' after a string at depth 1 makes it a key
                if depth == 1, let key = lastString {
                    if !seen.insert(key).inserted { return String(decoding: key, as: UTF8.self) }
                }
                lastString = nil
            case 0x2C: lastString = nil
            default: break
            }
        }
        return nil
    }

    static func convert(_ bytes: Data, _ dtype: DType, _ shape: [Int]) -> Tensor {
        var t = Tensor(shape: shape, repeating: 0)
        t.withUnsafeMutableBufferPointer { out in
            bytes.withUnsafeBytes { raw in
                for i in 0..<out.count {
                    let o = i * dtype.size
                    switch dtype {
                    case .f32: out[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: o, as: UInt32.self)))
                    case .f64: out[i] = Float(Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: o, as: UInt64.self))))
                    case .i64: out[i] = Float(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: o, as: Int64.self)))
                    case .i32: out[i] = Float(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: o, as: Int32.self)))
                    case .u8: out[i] = Float(raw[o])
                    case .bf16:
                        let h = UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: o, as: UInt16.self))
                        out[i] = Float(bitPattern: UInt32(h) << 16)
                    case .f16:
                        out[i] = halfToFloat(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: o, as: UInt16.self)))
                    }
                }
            }
        }
        return t
    }

    /// IEEE binary16 → binary32, by bit manipulation (Float16 is not available on every Linux target).
    static func halfToFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h >> 15) << 31
        let exp = Int((h >> 10) & 0x1F)
        let mant = UInt32(h & 0x3FF)
        if exp == 0 {
            let v = Float(mant) * 0x1p-24
            return sign != 0 ? -v : v
        }
        if exp == 31 { return Float(bitPattern: sign | 0x7F80_0000 | (mant << 13)) }
        return Float(bitPattern: sign | UInt32(exp - 15 + 127) << 23 | (mant << 13))
    }

    /// Serializes with names sorted (as the reference implementation does) and an 8-byte
    /// aligned header. Tensors whose `dtypes` entry is `.i64` are written as int64 (PyTorch's
    /// `num_batches_tracked`); everything else as F32.
    public func serialized() throws -> Data {
        var header: [String: Any] = [:]
        var offset = 0
        let names = tensors.keys.sorted()
        for name in names {
            let t = tensors[name]!
            let size = dtypes[name] == .i64 ? 8 : 4
            header[name] = ["dtype": size == 8 ? "I64" : "F32", "shape": t.shape, "data_offsets": [offset, offset + t.count * size]] as [String: Any]
            offset += t.count * size
        }
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }
        var out = Data(capacity: 8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(json)
        for name in names {
            if dtypes[name] == .i64 {
                // Float holds int64 values only approximately: round, and saturate what is out of range.
                for v in tensors[name]!.scalars {
                    let i: Int64 = v.isNaN ? 0 : v >= 0x1p63 ? .max : v < -0x1p63 ? .min : Int64(v.rounded())
                    withUnsafeBytes(of: i.littleEndian) { out.append(contentsOf: $0) }
                }
                continue
            }
            tensors[name]!.withUnsafeBufferPointer { buf in
                #if _endian(little)
                out.append(UnsafeBufferPointer(start: UnsafeRawPointer(buf.baseAddress!).assumingMemoryBound(to: UInt8.self), count: buf.count * 4))
                #else
                for v in buf { withUnsafeBytes(of: v.bitPattern.littleEndian) { out.append(contentsOf: $0) } }
                #endif
            }
        }
        return out
    }

    /// Writes atomically (temporary file, fsync, rename).
    public func write(to path: String) throws {
        try AtomicFile.write(try serialized(), to: path)
    }
}
