import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Keeps the large buffers of freed tensors for the next tensor of the same size.
///
/// A training step allocates the same activations and gradients every iteration. Through
/// malloc, each multi-megabyte buffer is a fresh `mmap` whose pages the kernel faults in and
/// zeroes on first touch, then a `munmap`: a quarter of the CPU time of batch-500 generation and
/// a few percent of a dcgan step went to page faults. `minimumBytes` is glibc's mmap threshold
/// (128 KiB): below it malloc reuses its heap; with 256 KiB the mlp's 200 KiB activations were
/// mmapped afresh every step (~80 page faults a step). Buffers of at least `minimumBytes` are
/// rounded up to whole pages and kept, by size, up to `capacityBytes` in all (`GAN_BUFFER_CACHE_MIB`,
/// default 1024; 0 turns the cache off). `release()` frees everything kept.
public enum BufferCache {
    static let minimumBytes = 128 << 10
    static let page = 4096
    nonisolated(unsafe) static var capacityBytes: Int =
        (ProcessInfo.processInfo.environment["GAN_BUFFER_CACHE_MIB"].flatMap { Int($0) } ?? 1024) << 20
    nonisolated(unsafe) static var kept: [Int: [UnsafeMutableRawPointer]] = [:]
    nonisolated(unsafe) static var keptBytes = 0
    static let lock = NSLock()

    /// Bytes to allocate for a request: whole pages for cached sizes, the request otherwise.
    @inline(__always) static func roundedBytes(_ bytes: Int) -> Int {
        bytes < minimumBytes ? bytes : (bytes + page - 1) / page * page
    }

    /// A 64-byte-aligned buffer of `roundedBytes(bytes)` bytes, reused when one is kept.
    static func allocate(bytes: Int) -> UnsafeMutableRawPointer {
        let size = roundedBytes(bytes)
        if size >= minimumBytes {
            lock.lock()
            // In place: a list copied out and stored back, or dropped when empty and made anew by
            // the next append, was two array allocations per tensor.
            if let p = kept[size]?.popLast() {
                keptBytes -= size
                lock.unlock()
                return p
            }
            lock.unlock()
        }
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
        let size = roundedBytes(bytes)
        if size >= minimumBytes {
            lock.lock()
            if keptBytes + size <= capacityBytes {
                kept[size, default: []].append(p)
                keptBytes += size
                lock.unlock()
                return
            }
            lock.unlock()
        }
        free(p)
    }

    /// Frees every kept buffer; returns the bytes freed.
    @discardableResult
    public static func release() -> Int {
        lock.lock()
        let all = kept
        let bytes = keptBytes
        kept = [:]
        keptBytes = 0
        lock.unlock()
        for list in all.values { for p in list { free(p) } }
        return bytes
    }

    /// Bytes currently kept for reuse.
    public static var cachedBytes: Int {
        lock.lock(); defer { lock.unlock() }
        return keptBytes
    }

    /// Largest number of bytes kept (`GAN_BUFFER_CACHE_MIB`); lowering it frees what is over.
    public static var capacity: Int {
        get { lock.lock(); defer { lock.unlock() }; return capacityBytes }
        set {
            lock.lock()
            capacityBytes = max(newValue, 0)
            let over = keptBytes > capacityBytes
            lock.unlock()
            if over { release() }
        }
    }
}
