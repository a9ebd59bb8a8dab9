import Engine
import Foundation

/// `gan bench train --profile`: the op profiler's rows per step, as a table or JSON.
struct ProfileTable {
    let rows: [OpProfiler.Row]
    let steps: Int
    /// Wall-clock seconds of the profiled steps.
    let seconds: Double

    /// Rows below this share of the step are summed into one line of the table (JSON keeps all).
    static let shownFraction = 0.005

    /// Calls and microseconds a step.
    func perStep(calls: Int, seconds s: Double) -> (calls: Double, us: Double) {
        (Double(calls) / Double(steps), s / Double(steps) * 1e6)
    }

    var json: [[String: Any]] {
        rows.map { r in
            let step = perStep(calls: r.calls, seconds: r.seconds)
            return ["phase": r.phase.rawValue, "name": r.name, "calls_per_step": Benchmark.round(step.calls, 2),
                    "us_per_step": Benchmark.round(step.us, 1), "fraction": Benchmark.round(r.seconds / seconds, 4)]
        }
    }

    var text: String {
        var lines = [String(format: "Profile of %d more steps, %.0f µs a step on average: each op, gradient rule (backward) and section charged with the time since the previous one ended on the main thread", steps, perStep(calls: 0, seconds: seconds).us),
                     "  phase     calls/step   µs/step  % of step  name"]
        func line(_ phase: String, _ calls: Int, _ s: Double, _ name: String) {
            let step = perStep(calls: calls, seconds: s)
            lines.append(String(format: "  %-9@ %10.1f %9.1f %9.1f %%  %@", phase as NSString, step.calls, step.us, 100 * s / seconds, name as NSString))
        }
        let shown = rows.filter { $0.seconds / seconds >= Self.shownFraction }
        let rest = rows.filter { $0.seconds / seconds < Self.shownFraction }
        for r in shown { line(r.phase.rawValue, r.calls, r.seconds, r.name) }
        if !rest.isEmpty {
            line("", rest.reduce(0) { $0 + $1.calls }, rest.reduce(0) { $0 + $1.seconds },
                 String(format: "%d other rows, each under %.1f %%", rest.count, 100 * Self.shownFraction))
        }
        let charged = rows.reduce(0) { $0 + $1.seconds }
        lines.append(String(format: "  rows add up to %.1f %% of the profiled steps' wall-clock time", 100 * charged / seconds))
        return lines.joined(separator: "\n")
    }
}
