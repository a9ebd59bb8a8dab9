import Engine
import Foundation

// libFuzzer entry: any bytes must give a SafeTensors value or a FileFormatError. What parses
// must serialize and parse back to the same names and shapes.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafeTensors(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Data(bytes: data, count: size)
    if let file = try? SafeTensors.parse(bytes, path: "<fuzz>") {
        for (_, t) in file.tensors { precondition(t.count == t.shape.reduce(1, *)) }
        if let again = try? SafeTensors.parse(try! file.serialized(), path: "<again>") {
            precondition(Set(again.tensors.keys) == Set(file.tensors.keys))
        } else {
            preconditionFailure("a parsed file did not survive serialization")
        }
    }
    return 0
}
