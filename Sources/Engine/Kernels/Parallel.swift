import CSupport
import Dispatch

/// Splits `0..<count` into contiguous chunks run on up to `Parallel.threads` threads.
/// Work below `grain` items runs inline: thread hand-off costs more than it saves there.
/// Every chunk sets flush-to-zero, because Dispatch's worker threads start without it.
enum Parallel {
    nonisolated(unsafe) static var threads = 2

    @inline(__always)
    static func forChunks(_ count: Int, grain: Int = 1 << 15, _ body: (Range<Int>) -> Void) {
        let parts = min(threads, max(1, count / max(grain, 1)))
        if parts <= 1 {
            body(0..<count)
            return
        }
        let step = (count + parts - 1) / parts
        DispatchQueue.concurrentPerform(iterations: parts) { p in
            gan_set_flush_denormals(1)
            let lo = p * step
            let hi = min(count, lo + step)
            if lo < hi { body(lo..<hi) }
        }
    }
}
