import CSupport
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Keeps the buffers of freed tensors for the next tensor of the same size.
///
/// A training step allocates the same activations and gradients every iteration. Through
/// malloc, each multi-megabyte buffer is a fresh `mmap` whose pages the kernel faults in and
/// zeroes on first touch, then a `munmap`: a quarter of the CPU time of batch-500 generation and
/// a few percent of a dcgan step went to page faults. Smaller ones went through glibc's aligned
/// allocation, which (2.36) skips its per-thread cache for the bins and, on a large request,
/// merges the freed fragments: ~100 calls a step of the mlp, and keeping them ran its steps
/// 1.03× as fast (`gan bench train --alternate`, a throwaway setting). So every buffer is kept, by
/// size: from `pageRounding` (glibc's mmap threshold) up rounded to whole pages, below it to a
/// cache line; up to `capacity` bytes in all (`GAN_BUFFER_CACHE_MIB`, default 1024; 0 turns the
/// cache off). `release()` frees everything kept.
public enum BufferCache {
    static let pageRounding = 128 << 10
    static let page = 4096
    static let line = 64

    /// Bytes to allocate for a request, the size it is kept under.
    @inline(__always) static func roundedBytes(_ bytes: Int) -> Int {
        bytes < pageRounding ? (bytes + line - 1) / line * line : (bytes + page - 1) / page * page
    }

    /// A 64-byte-aligned buffer of `roundedBytes(bytes)` bytes, reused when one is kept.
    static func allocate(bytes: Int) -> UnsafeMutableRawPointer {
        let size = roundedBytes(bytes)
        // The lists live in CSupport (BufferCache.c): one lock and a pointer swap per buffer.
        if let p = gan_buffer_cache_take(size) { return p }
        var raw: UnsafeMutableRawPointer?
        guard posix_memalign(&raw, 64, size) == 0, let raw else {
            // Memory may be held here: give it back and try once more before giving up.
            if release() > 0 { return allocate(bytes: bytes) }
            fatalError("out of memory allocating \(size) bytes for a tensor")
        }
        return raw
    }

    /// Takes back a buffer from `allocate(bytes:)` with the same `bytes`.
    static func deallocate(_ p: UnsafeMutableRawPointer, bytes: Int) {
        gan_buffer_cache_put(p, roundedBytes(bytes))
    }

    /// Frees every kept buffer; returns the bytes freed.
    @discardableResult
    public static func release() -> Int { gan_buffer_cache_release() }

    /// Bytes currently kept for reuse.
    public static var cachedBytes: Int { gan_buffer_cache_bytes() }

    /// Largest number of bytes kept (`GAN_BUFFER_CACHE_MIB`); lowering it frees what is over.
    public static var capacity: Int {
        get { Int(gan_buffer_cache_capacity()) }
        set { gan_buffer_cache_set_capacity(Int64(newValue)) }
    }
}
