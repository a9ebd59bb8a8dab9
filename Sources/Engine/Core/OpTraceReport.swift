import Foundation

/// What a recorded timeline (`OpTrace`) says: each thread's time a step by the innermost span
/// running on it, what the recording's thread ran while a worker had no part to run, and the
/// products' rate; and the timeline itself as Chrome trace-event JSON.
public struct OpTraceReport {
    /// Time a step on one thread, by what ran innermost ("idle": a worker with no part to run;
    /// "untraced": the recording's thread outside any span).
    public let threads: [(thread: Int, shares: [(label: String, seconds: Double)])]
    /// What thread 0 ran (innermost span's name) while worker 1 had no part to run, a step.
    public let whileWorkerIdle: [(name: String, seconds: Double)]
    public let steps: Int
    public let secondsPerStep: Double
    public let productFlopsPerStep: Double
    /// Product spans' total time a step, over all threads.
    public let productSecondsPerStep: Double

    static let idle = "idle (no part to run)", untraced = "untraced"

    /// A timeline segment labelled by its innermost span (nil: none).
    struct Segment {
        var start: Int64, end: Int64
        var event: OpTrace.Event?
    }

    /// The thread's time from `t0` to `t1` cut where spans begin and end, each piece labelled by
    /// the innermost span over it (spans nest: a product inside a part inside a section).
    static func segments(_ events: [OpTrace.Event], from t0: Int64, to t1: Int64) -> [Segment] {
        var out: [Segment] = []
        var stack: [OpTrace.Event] = []
        var cursor = t0
        func emit(until t: Int64) {
            let end = Swift.min(t, t1)
            if end > cursor { out.append(Segment(start: cursor, end: end, event: stack.last)) }
            cursor = Swift.max(cursor, end)
        }
        for e in events where e.end > t0 && e.start < t1 {
            while let top = stack.last, top.end <= e.start {
                emit(until: top.end)
                stack.removeLast()
            }
            emit(until: e.start)
            stack.append(e)
        }
        while let top = stack.last {
            emit(until: top.end)
            stack.removeLast()
        }
        emit(until: t1)
        return out
    }

    /// The report of `events` recorded over `duration` ns and `steps` steps.
    public init(events: [OpTrace.Event], duration: Int64, steps: Int) {
        self.steps = Swift.max(steps, 1)
        let perStep = 1e-9 / Double(self.steps)
        secondsPerStep = Double(duration) * perStep
        let byThread = Dictionary(grouping: events, by: \.thread)
        var segmentsOf: [Int: [Segment]] = [:]
        var threads: [(Int, [(String, Double)])] = []
        for thread in byThread.keys.sorted() {
            let segments = OpTraceReport.segments(byThread[thread]!, from: 0, to: duration)
            segmentsOf[thread] = segments
            var total: [String: Int64] = [:]
            for s in segments {
                let label = s.event?.kind.label ?? (thread == 0 ? OpTraceReport.untraced : OpTraceReport.idle)
                total[label, default: 0] += s.end - s.start
            }
            threads.append((thread, total.map { ($0.key, Double($0.value) * perStep) }.sorted { $0.1 > $1.1 }))
        }
        self.threads = threads
        var whileIdle: [String: Int64] = [:]
        if let caller = segmentsOf[0], let worker = segmentsOf[1] {
            var i = 0
            for idle in worker where idle.event == nil {
                while i < caller.count && caller[i].end <= idle.start { i += 1 }
                var j = i
                while j < caller.count && caller[j].start < idle.end {
                    let overlap = Swift.min(idle.end, caller[j].end) - Swift.max(idle.start, caller[j].start)
                    if overlap > 0 { whileIdle[caller[j].event?.name ?? OpTraceReport.untraced, default: 0] += overlap }
                    j += 1
                }
            }
        }
        whileWorkerIdle = whileIdle.map { ($0.key, Double($0.value) * perStep) }.sorted { $0.1 > $1.1 }
        let products = events.filter { $0.kind == .product }
        productFlopsPerStep = Double(products.reduce(0) { $0 + $1.flops }) / Double(self.steps)
        productSecondsPerStep = Double(products.reduce(Int64(0)) { $0 + ($1.end - $1.start) }) * perStep
    }

    public var text: String {
        func us(_ s: Double) -> String { String(format: "%7.1f µs", s * 1e6) }
        var lines = ["Timeline of \(steps) steps, \(String(format: "%.0f", secondsPerStep * 1e6)) µs a step: each thread's time a step by what ran innermost"]
        for (thread, shares) in threads {
            lines.append(thread == 0 ? "  thread 0 (the caller)" : "  thread \(thread) (a worker)")
            for (label, seconds) in shares {
                lines.append("    \(us(seconds))  \(String(format: "%5.1f", 100 * seconds / secondsPerStep)) %  \(label)")
            }
        }
        if !whileWorkerIdle.isEmpty {
            let total = whileWorkerIdle.reduce(0) { $0 + $1.seconds }
            lines.append("  while thread 1 had no part to run (\(us(total).trimmingCharacters(in: .whitespaces)) a step), thread 0 ran:")
            for (name, seconds) in whileWorkerIdle.prefix(10) { lines.append("    \(us(seconds))  \(name)") }
        }
        if productSecondsPerStep > 0 {
            lines.append(String(format: "  products: %.1f MFLOP a step, %.1f GFLOP/s a thread while they run", productFlopsPerStep / 1e6,
                                productFlopsPerStep / productSecondsPerStep / 1e9))
        }
        return lines.joined(separator: "\n")
    }

    public var json: [String: Any] {
        func rounded(_ s: Double) -> Double { (s * 1e8).rounded() / 100 }  // µs, two decimals
        return [
            "steps": steps, "us_per_step": rounded(secondsPerStep),
            "threads": threads.map { t in ["thread": t.thread, "us_per_step": Dictionary(uniqueKeysWithValues: t.shares.map { ($0.label, rounded($0.seconds)) })] },
            "thread0_while_worker_idle_us_per_step": whileWorkerIdle.map { ["name": $0.name, "us": rounded($0.seconds)] },
            "product_mflop_per_step": (productFlopsPerStep / 1e4).rounded() / 100,
            "product_gflops_per_thread": productSecondsPerStep > 0 ? (productFlopsPerStep / productSecondsPerStep / 1e7).rounded() / 100 : 0,
        ]
    }

    /// The timeline in Chrome's trace-event format: one complete ("X") event a span, times in µs.
    public static func chromeTrace(_ events: [OpTrace.Event]) throws -> Data {
        var list: [[String: Any]] = []
        for thread in Set(events.map(\.thread)).sorted() {
            list.append(["name": "thread_name", "ph": "M", "pid": 1, "tid": thread,
                         "args": ["name": thread == 0 ? "caller" : "worker \(thread)"]])
        }
        for e in events {
            var event: [String: Any] = ["name": e.name, "cat": e.kind.category, "ph": "X", "pid": 1, "tid": e.thread,
                                        "ts": Double(e.start) / 1000, "dur": Double(e.end - e.start) / 1000]
            if let backend = e.backend {
                event["args"] = ["backend": backend, "flops": e.flops,
                                 "gflops": e.end > e.start ? Double(e.flops) / Double(e.end - e.start) : 0]
            }
            list.append(event)
        }
        return try JSONSerialization.data(withJSONObject: ["traceEvents": list, "displayTimeUnit": "ns"], options: [.sortedKeys])
    }
}
