#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Contiguous Float32 buffer behind a `Tensor`. Aligned to 64 bytes so that SIMD loads and BLAS
/// panels start on a cache line; large buffers are recycled through `BufferCache`. Tensors share
/// a storage until one of them is mutated (copy-on-write, see
/// `Tensor.withUnsafeMutableBufferPointer`).
public final class TensorStorage {
    public let count: Int
    public let base: UnsafeMutablePointer<Float>

    public init(count: Int) {
        precondition(count >= 0, "negative element count \(count)")
        self.count = count
        base = BufferCache.allocate(bytes: Self.bytes(count)).bindMemory(to: Float.self, capacity: max(count, 1))
    }

    convenience init(copying other: TensorStorage) {
        self.init(count: other.count)
        base.update(from: other.base, count: count)
    }

    /// The allocation's size: at least one float, so that an empty tensor still has a base address.
    static func bytes(_ count: Int) -> Int { max(count, 1) * MemoryLayout<Float>.stride }

    deinit { BufferCache.deallocate(UnsafeMutableRawPointer(base), bytes: Self.bytes(count)) }

    @inline(__always) var buffer: UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: base, count: count)
    }
}
