#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Contiguous Float32 buffer behind a `Tensor`. Aligned to 64 bytes so that SIMD loads and BLAS
/// panels start on a cache line; large buffers are recycled through `BufferCache`. Tensors share a storage until one of them is mutated
/// (copy-on-write, see `Tensor.withUnsafeMutableBufferPointer`).
public final class TensorStorage {
    public let count: Int
    public let base: UnsafeMutablePointer<Float>

    public init(count: Int) {
        precondition(count >= 0, "negative element count \(count)")
        self.count = count
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        base = BufferCache.allocate(bytes: bytes).bindMemory(to: Float.self, capacity: max(count, 1))
    }

    convenience init(copying other: TensorStorage) {
        self.init(count: other.count)
        base.update(from: other.base, count: count)
    }

    deinit { BufferCache.deallocate(UnsafeMutableRawPointer(base), bytes: max(count, 1) * MemoryLayout<Float>.stride) }

    @inline(__always) var buffer: UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: base, count: count)
    }
}
