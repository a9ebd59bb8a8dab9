import CSupport
import Dispatch
import Foundation

/// The engine's one thread pool (Dispatch's, `threads` wide). OpenBLAS runs single-threaded
/// inside it: its own worker threads spin-wait between calls and then compete with the engine's
/// for the same two cores (18 % of a DCGAN step went to that in a profile). `GAN_THREADING=blas`
/// gives OpenBLAS the threads instead, for comparison.
///
/// Work is split once, at the outermost level that has enough of it (images of a convolution,
/// columns of a GEMM, elements of an elementwise op); code running in a part is marked serial,
/// so nothing it calls splits again. Every part sets flush-to-zero, because Dispatch's worker
/// threads start without it.
public enum Parallel {
    nonisolated(unsafe) static var threads = 2
    static let engineOwnsThreads = ProcessInfo.processInfo.environment["GAN_THREADING"] != "blas"

    /// True on a thread already running one part of a split.
    @inline(__always)
    static var isSerial: Bool { gan_is_serial() != 0 }

    /// How many parts to split `units` of work into (1 inside a part).
    @inline(__always)
    static func parts(_ units: Int) -> Int { isSerial ? 1 : max(1, min(threads, units)) }

    /// Runs `body(p)` for p in 0..<parts, on separate threads when parts > 1: part 0 on the
    /// calling thread, the others on the pool's long-lived workers.
    static func split(_ parts: Int, _ body: (Int) -> Void) {
        if parts <= 1 {
            for p in 0..<parts { body(p) }
            return
        }
        // The calling thread runs part 0 and, like the workers, flushes denormals.
        gan_set_flush_denormals(1)
        withoutActuallyEscaping(body) { body in
            WorkerPool.shared.run(parts) { p in
                let outer = gan_is_serial()
                gan_set_serial(1)
                body(p)
                gan_set_serial(outer)
            }
        }
    }

    /// Splits `0..<count` into contiguous chunks run on up to `threads` threads.
    /// Work below `grain` items runs inline: thread hand-off costs more than it saves there.
    @inline(__always)
    public static func forChunks(_ count: Int, grain: Int = 1 << 15, _ body: (Range<Int>) -> Void) {
        let n = isSerial ? 1 : min(threads, max(1, count / max(grain, 1)))
        if n <= 1 {
            body(0..<count)
            return
        }
        let step = (count + n - 1) / n
        split(n) { p in
            let lo = p * step
            let hi = min(count, lo + step)
            if lo < hi { body(lo..<hi) }
        }
    }
}

/// A fixed set of worker threads, started once. Fixed matters: OpenBLAS keeps a packing buffer
/// per calling thread, and Dispatch's pool retires and starts threads as it likes, which
/// grew a DCGAN run's memory by tens of megabytes a step.
///
/// Jobs are handed over through `gan_handoff` (CSupport): workers spin for `GAN_POOL_SPIN_US`
/// microseconds after a job before they sleep (default 1000; 0, sleeping at once, when OpenBLAS
/// runs its own threads), and so does the caller while it waits for them. A worker whose spins
/// run out, as they do when another process holds the cores, spins less (`GAN_POOL_ADAPTIVE=0`
/// keeps the full spin). Every oneDNN call quiesces the pool first (`gan_handoff_quiesce_all`):
/// a spinner would take a core from oneDNN's OpenMP team.
final class WorkerPool: @unchecked Sendable {
    static let shared: WorkerPool = {
        let environment = ProcessInfo.processInfo.environment
        return WorkerPool(workers: max(0, ProcessInfo.processInfo.activeProcessorCount - 1),
                          spinMicroseconds: environment["GAN_POOL_SPIN_US"].flatMap { Int($0) } ?? (Parallel.engineOwnsThreads ? 1000 : 0),
                          adaptiveSpin: environment["GAN_POOL_ADAPTIVE"] != "0")
    }()

    let workers: Int
    /// The full spin, in µs.
    let spinMicroseconds: Int
    private let handoff: OpaquePointer?
    private let busy = NSLock()
    private var job: ((Int) -> Void)?
    private var jobParts = 0
    private var next = 0
    private let claim = NSLock()

    init(workers: Int, spinMicroseconds: Int, adaptiveSpin: Bool) {
        let spin = max(0, spinMicroseconds)
        let handoff = workers > 0 ? gan_handoff_create(spin * 1000, adaptiveSpin ? 1 : 0) : nil
        if let handoff { gan_handoff_register(handoff) }
        self.handoff = handoff
        self.workers = handoff == nil ? 0 : workers
        self.spinMicroseconds = spin
        for _ in 0..<self.workers {
            let t = Thread { [unowned self] in self.loop() }
            t.stackSize = 1 << 20
            t.start()
        }
    }

    /// Whether workers shorten their spin when it runs out (`GAN_POOL_ADAPTIVE`; false without workers).
    var adaptiveSpin: Bool {
        get { handoff.map { gan_handoff_adaptive($0) != 0 } ?? false }
        set { if let handoff { gan_handoff_set_adaptive(handoff, newValue ? 1 : 0) } }
    }

    private func loop() {
        gan_set_flush_denormals(1)
        var me = gan_handoff_worker()
        gan_handoff_worker_init(handoff, &me)
        while true {
            gan_handoff_wait(handoff, &me)
            let ran = drain()
            if ran > 0 { gan_handoff_finished(handoff, Int32(ran)) }
        }
    }

    /// Takes parts until none is left; returns how many it ran. The job's closure is copied only
    /// with a part claimed: the caller stops waiting once every claimed part is reported, and a
    /// late worker still holding the closure then would outlive the caller's
    /// `withoutActuallyEscaping` (a crash in the runtime's check).
    private func drain() -> Int {
        var ran = 0
        while true {
            claim.lock()
            let p = next
            guard p < jobParts, let body = job else {
                claim.unlock()
                return ran
            }
            next += 1
            let parts = jobParts
            claim.unlock()
            let start = OpTrace.clock()
            body(p)
            OpTrace.record(.part, since: start, p, parts)
            ran += 1
        }
    }

    /// Runs `body` for 0..<parts on the calling thread and the workers; returns when all are done.
    /// A second caller arriving while the pool is busy runs its parts itself.
    func run(_ parts: Int, _ body: @escaping (Int) -> Void) {
        guard workers > 0, busy.try() else {
            for p in 0..<parts { body(p) }
            return
        }
        defer { busy.unlock() }
        claim.lock()
        job = body
        jobParts = parts
        next = 0
        claim.unlock()
        gan_handoff_publish(handoff)
        // Every part is claimed once drain returns: wait for those the workers took. A worker
        // that wakes later finds no part (or the next job's) and reports nothing for this one.
        let mine = drain()
        let start = OpTrace.clock()
        gan_handoff_await(handoff, Int32(parts - mine))
        if parts > mine { OpTrace.record(.wait, since: start, parts - mine) }
        claim.lock()
        job = nil
        jobParts = 0
        claim.unlock()
    }
}
