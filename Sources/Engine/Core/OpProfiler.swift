import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Where a step's time goes, op by op, like the table of PyTorch's profiler (`gan bench train
/// --profile`). While a profile runs, each op (as it records itself), each gradient rule and each
/// section a caller names is charged with the time since the previous one ended, on the thread
/// that started the profile. An op's row therefore holds its kernels and the allocation and
/// bookkeeping around them, time nothing else names goes to the next row, and the rows add up to
/// that thread's time between start and stop. Calls from other threads are ignored: the engine's
/// workers run parts of ops, not ops.
public enum OpProfiler {
    /// Ops outside a backward pass, ops and gradient rules inside one, and named sections.
    public enum Phase: String, CaseIterable, Sendable {
        case forward, backward, section
    }

    public struct Row: Sendable, Equatable {
        public let phase: Phase
        public let name: String
        public let calls: Int
        public let seconds: Double
    }

    /// Read by every op: one load and a branch when no profile runs.
    nonisolated(unsafe) static var isActive = false
    /// Set by `Autograd.run` while it runs gradient rules.
    nonisolated(unsafe) static var inBackward = false
    nonisolated(unsafe) private static var owner = pthread_self()
    nonisolated(unsafe) private static var last: UInt64 = 0
    nonisolated(unsafe) private static var tables: [[String: (calls: Int, ns: UInt64)]] = []

    /// Whether a profile runs.
    public static var isRunning: Bool { isActive }

    /// Starts a profile on the calling thread, dropping any earlier one.
    public static func start() {
        tables = Array(repeating: [:], count: Phase.allCases.count)
        owner = pthread_self()
        inBackward = false
        isActive = true
        last = now()
    }

    /// Ends the profile (the time since the last charge is not counted); rows by time, longest first.
    @discardableResult
    public static func stop() -> [Row] {
        guard isActive else { return [] }
        isActive = false
        var rows: [Row] = []
        for (i, phase) in Phase.allCases.enumerated() {
            for (name, entry) in tables[i] {
                rows.append(Row(phase: phase, name: name, calls: entry.calls, seconds: Double(entry.ns) * 1e-9))
            }
        }
        tables = []
        return rows.sorted { $0.seconds != $1.seconds ? $0.seconds > $1.seconds : ($0.phase.rawValue, $0.name) < ($1.phase.rawValue, $1.name) }
    }

    /// Charges the time since the previous charge to the section `name` (a data batch, an
    /// optimizer step, …); nothing when no profile runs.
    public static func mark(_ name: String) {
        if isActive { charge(name, .section) }
        if OpTrace.isRecording { OpTrace.serial(name, .section) }
    }

    /// An op named `name` has just run (in `phase`, else in the pass it ran in).
    @inline(__always)
    static func op(_ name: String, phase: Phase? = nil) {
        if isActive { charge(name, phase ?? (inBackward ? .backward : .forward)) }
        if OpTrace.isRecording { OpTrace.serial(name, .op) }
    }

    private static func charge(_ name: String, _ phase: Phase) {
        guard pthread_equal(pthread_self(), owner) != 0 else { return }
        let t = now()
        let i = Phase.allCases.firstIndex(of: phase)!
        let dt = t &- last
        if let k = tables[i].index(forKey: name) {
            tables[i].values[k].calls += 1
            tables[i].values[k].ns += dt
        } else {
            tables[i][name] = (1, dt)
        }
        last = t
    }

    private static func now() -> UInt64 {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return UInt64(t.tv_sec) &* 1_000_000_000 &+ UInt64(t.tv_nsec)
    }
}
