import CZlib
import Engine
import Foundation

/// The IDX format of MNIST: a 4-byte magic (two zero bytes, a type code, the number of
/// dimensions), one big-endian UInt32 per dimension, then the data. Only unsigned bytes (type
/// 0x08) are used by image data sets. Files may be gzip-compressed (read through zlib).
public struct IDXFile: Sendable {
    public let dimensions: [Int]
    public let bytes: [UInt8]

    /// Largest decompressed size accepted, against gzip bombs (Fashion-MNIST train is 47 MB).
    public static let maxBytes = 1 << 30

    public static func read(path: String, maxBytes limit: Int = maxBytes) throws -> IDXFile {
        try decode([UInt8](try AtomicFile.read(path)), path: path, maxBytes: limit)
    }

    /// Parses the bytes of a file, inflating them first when they are gzip data.
    public static func decode(_ bytes: [UInt8], path: String, maxBytes limit: Int = maxBytes) throws -> IDXFile {
        var raw = bytes
        if raw.count >= 2 && raw[0] == 0x1F && raw[1] == 0x8B {
            raw = try gunzip(raw, path: path, limit: limit)
        }
        return try parse(raw, path: path)
    }

    public static func parse(_ raw: [UInt8], path: String) throws -> IDXFile {
        func fail(_ m: String) -> FileFormatError { FileFormatError(path, "not a valid IDX file: " + m) }
        guard raw.count >= 4 else { throw fail("\(raw.count) bytes, shorter than the 4-byte magic") }
        guard raw[0] == 0, raw[1] == 0 else {
            throw fail(String(format: "wrong magic %02x%02x%02x%02x (expected 0000 then type and rank)", raw[0], raw[1], raw[2], raw[3]))
        }
        guard raw[2] == 0x08 else { throw fail(String(format: "element type 0x%02x is not unsigned byte (0x08)", raw[2])) }
        let rank = Int(raw[3])
        guard rank >= 1 && rank <= 4 else { throw fail("\(rank) dimensions (expected 1 to 4)") }
        guard raw.count >= 4 + 4 * rank else { throw fail("truncated in the dimension list") }
        var dims: [Int] = []
        var total = 1
        for d in 0..<rank {
            let o = 4 + 4 * d
            let n = Int(raw[o]) << 24 | Int(raw[o + 1]) << 16 | Int(raw[o + 2]) << 8 | Int(raw[o + 3])
            dims.append(n)
            let (t, overflow) = total.multipliedReportingOverflow(by: n)
            guard !overflow, t <= maxBytes else { throw fail("dimensions \(dims) are too large") }
            total = t
        }
        let header = 4 + 4 * rank
        let have = raw.count - header
        guard have >= total else { throw fail("truncated: dimensions \(dims) need \(total) data bytes, the file has \(have)") }
        guard have == total else { throw fail("\(have - total) unexpected bytes after the data of dimensions \(dims)") }
        return IDXFile(dimensions: dims, bytes: Array(raw[header...]))
    }

    /// Inflates gzip data, refusing output past `limit` bytes.
    static func gunzip(_ input: [UInt8], path: String, limit: Int) throws -> [UInt8] {
        var stream = z_stream()
        guard inflateInit2_(&stream, 16 + MAX_WBITS, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw FileFormatError(path, "zlib could not start")
        }
        defer { inflateEnd(&stream) }
        var out = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        var status: Int32 = Z_OK
        try input.withUnsafeBufferPointer { inBuf in
            stream.next_in = UnsafeMutablePointer(mutating: inBuf.baseAddress!)
            stream.avail_in = uInt(inBuf.count)
            repeat {
                try chunk.withUnsafeMutableBufferPointer { c in
                    stream.next_out = c.baseAddress!
                    stream.avail_out = uInt(c.count)
                    status = inflate(&stream, Z_NO_FLUSH)
                    guard status == Z_OK || status == Z_STREAM_END else {
                        throw FileFormatError(path, "corrupt gzip data (zlib status \(status))")
                    }
                    out.append(contentsOf: c[0..<(c.count - Int(stream.avail_out))])
                }
                guard out.count <= limit else {
                    throw FileFormatError(path, "gzip data inflates past \(limit) bytes; refusing it")
                }
                if status != Z_STREAM_END && stream.avail_in == 0 && stream.avail_out != 0 {
                    throw FileFormatError(path, "truncated gzip data")
                }
            } while status != Z_STREAM_END
        }
        return out
    }
}
