import Foundation

/// Reusable temporary buffers for kernels (im2col columns, gathered batches). Taking one and
/// giving it back costs a lock, where a fresh buffer costs a multi-megabyte malloc/free and the
/// page faults of new memory on every convolution, and on worker threads grows glibc's
/// per-thread arenas. Buffers only grow; the pool keeps at most `limit` of them.
enum Scratch {
    nonisolated(unsafe) static var pool: [TensorStorage] = []
    static let lock = NSLock()
    static let limit = ProcessInfo.processInfo.environment["GAN_SCRATCH_LIMIT"].flatMap { Int($0) } ?? 12

    /// Runs `body` with a buffer of at least `count` floats (contents undefined).
    @inline(__always)
    static func with<R>(_ count: Int, _ body: (UnsafeMutablePointer<Float>) -> R) -> R {
        let s = take(count)
        defer { give(s) }
        return body(s.base)
    }

    static func take(_ count: Int) -> TensorStorage {
        lock.lock()
        defer { lock.unlock() }
        var best: Int?
        for i in pool.indices where pool[i].count >= count && (best == nil || pool[i].count < pool[best!].count) { best = i }
        if let best { return pool.remove(at: best) }
        return TensorStorage(count: count)
    }

    static func give(_ s: TensorStorage) {
        lock.lock()
        defer { lock.unlock() }
        pool.append(s)
        if pool.count > limit, let smallest = pool.indices.min(by: { pool[$0].count < pool[$1].count }) {
            pool.remove(at: smallest)
        }
    }
}
