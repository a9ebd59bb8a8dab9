import Datasets
import Engine

// libFuzzer entry: any bytes must give an IDXFile or a FileFormatError, never a trap or a hang.
// The inflate limit is lowered so a gzip bomb is refused quickly instead of exhausting memory.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzIDX(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let idx = try? IDXFile.decode(bytes, path: "<fuzz>", maxBytes: 1 << 24) {
        precondition(idx.bytes.count == idx.dimensions.reduce(1, *))
    }
    return 0
}
