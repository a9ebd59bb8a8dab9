import Engine
import Foundation

// libFuzzer entry: any bytes must give a NumpyFile.Array or a FileFormatError.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNumpy(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    if let a = try? NumpyFile.parse(Data(bytes: data, count: size), path: "<fuzz>") {
        precondition(a.values.count == a.shape.reduce(1, *))
    }
    return 0
}
