import CSupport
import Foundation

/// A timeline of training steps on every thread of the engine (`gan bench train --trace`), in the
/// Chrome trace-event format that PyTorch's profiler exports (open it in Perfetto or
/// chrome://tracing): each matrix product with its sizes and backend, Adam's parts, the
/// activation passes, every part of a parallel split, the calling thread's waits for the
/// workers, and on the calling thread the trainer's sections and the graph's ops. `OpProfiler`
/// says what the calling thread spends a step on; this shows the threads side by side — when one
/// waits for the other, and what the other is doing then.
public enum OpTrace {
    public enum Kind: Int32, CaseIterable, Sendable {
        case product = 1, adam, activation, activationGradient, part, wait, section, op

        /// The trace-event category.
        public var category: String {
            switch self {
            case .product: return "product"
            case .adam: return "adam"
            case .activation: return "activation"
            case .activationGradient: return "activation-gradient"
            case .part: return "part"
            case .wait: return "wait"
            case .section: return "section"
            case .op: return "op"
            }
        }

        /// What the report calls time spent innermost in such a span.
        public var label: String {
            switch self {
            case .product: return "matrix products"
            case .adam: return "Adam"
            case .activation: return "bias + activation"
            case .activationGradient: return "activation gradients"
            case .part: return "other work in split parts"
            case .wait: return "waiting for workers"
            case .section: return "trainer sections (serial work)"
            case .op: return "graph ops (serial work)"
            }
        }
    }

    /// One span: what ran on which thread (0 is the one that started the recording), from
    /// `start` to `end` in nanoseconds since the recording started.
    public struct Event: Sendable, Equatable {
        public let kind: Kind
        public let thread: Int
        public let start: Int64, end: Int64
        public let name: String
        /// A product's multiply-adds × 2 (0 for other spans).
        public let flops: Int
        public let backend: String?

        public init(kind: Kind, thread: Int, start: Int64, end: Int64, name: String, flops: Int = 0, backend: String? = nil) {
            (self.kind, self.thread, self.start, self.end, self.name, self.flops, self.backend) = (kind, thread, start, end, name, flops, backend)
        }
    }

    @inline(__always) static var isRecording: Bool { gan_trace_recording() != 0 }

    /// The clock at a span's start, or 0 when no recording runs (then `record` skips it).
    @inline(__always) static func clock() -> Int64 { gan_trace_recording() != 0 ? gan_trace_clock() : 0 }

    @inline(__always)
    static func record(_ kind: Kind, since start: Int64, _ a: Int, _ b: Int = 0, _ c: Int = 0, _ d: Int = 0) {
        if start != 0 {
            gan_trace_add(kind.rawValue, Int32(truncatingIfNeeded: a), Int32(truncatingIfNeeded: b), Int32(truncatingIfNeeded: c),
                          Int32(truncatingIfNeeded: d), start)
        }
    }

    nonisolated(unsafe) private static var names: [String] = []
    nonisolated(unsafe) private static var nameIndex: [String: Int] = [:]
    nonisolated(unsafe) private static var lastSerialEnd: Int64 = 0
    nonisolated(unsafe) private static var began: Int64 = 0

    /// A section or graph op named `name` has just ended on the recording's thread: the span since
    /// the previous one ended (as `OpProfiler` charges them).
    static func serial(_ name: String, _ kind: Kind) {
        guard isRecording, gan_trace_thread() == 0 else { return }
        let index: Int
        if let i = nameIndex[name] { index = i } else {
            index = names.count
            names.append(name)
            nameIndex[name] = index
        }
        // One clock reading ends this span and starts the next: they tile the thread's time.
        let start = lastSerialEnd
        lastSerialEnd = gan_trace_clock()
        gan_trace_add_span(kind.rawValue, Int32(truncatingIfNeeded: index), 0, 0, 0, start, lastSerialEnd)
    }

    public enum TraceError: Error, CustomStringConvertible {
        case outOfMemory(Int)
        public var description: String {
            switch self {
            case .outOfMemory(let n): return "could not allocate a trace buffer of \(n) spans"
            }
        }
    }

    /// Starts recording on the calling thread, with room for `capacity` spans.
    public static func start(capacity: Int = 1 << 20) throws {
        names = []
        nameIndex = [:]
        guard gan_trace_begin(capacity) == 0 else { throw TraceError.outOfMemory(capacity) }
        began = gan_trace_clock()
        lastSerialEnd = began
    }

    /// Stops recording; the spans by start time, how many did not fit in the buffer, and the
    /// recording's length in ns.
    public static func stop() -> (events: [Event], dropped: Int, duration: Int64) {
        gan_trace_end()
        let duration = gan_trace_clock() - began
        let n = gan_trace_size()
        guard n > 0, let raw = gan_trace_events() else { return ([], gan_trace_dropped(), duration) }
        var events: [Event] = []
        events.reserveCapacity(n)
        for i in 0..<n {
            let e = raw[i]
            guard let kind = Kind(rawValue: e.kind) else { continue }
            let (a, b, c, d) = (Int(e.a), Int(e.b), Int(e.c), Int(e.d))
            var name: String, flops = 0, backend: String?
            switch kind {
            case .product:
                name = "sgemm \(d & 1 != 0 ? "T" : "N")\(d & 2 != 0 ? "T" : "N") \(a)×\(b)×\(c)"
                flops = 2 * a * b * c
                backend = d & 4 != 0 ? "oneDNN" : "OpenBLAS"
            case .adam: name = "Adam, \(a) values"
            case .activation: name = "bias + activation \(a)×\(b)"
            case .activationGradient: name = "activation gradient \(a)×\(b)"
            case .part: name = "part \(a + 1) of \(b)"
            case .wait: name = "wait for \(a) part\(a == 1 ? "" : "s")"
            case .section, .op: name = a < names.count ? names[a] : "?"
            }
            events.append(Event(kind: kind, thread: Int(e.thread), start: e.start - began, end: e.end - began, name: name,
                                flops: flops, backend: backend))
        }
        events.sort { $0.start != $1.start ? $0.start < $1.start : $0.end > $1.end }
        return (events, gan_trace_dropped(), duration)
    }
}
