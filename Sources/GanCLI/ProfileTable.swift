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

    var json: [[String: Any]] {
        rows.map { r in
            ["phase": r.phase.rawValue, "name": r.name,
             "calls_per_step": Benchmark.round(Double(r.calls) / Double(steps), 2),
             "us_per_step": Benchmark.round(r.seconds / Double(steps) * 1e6, 1),
             "fraction": Benchmark.round(r.seconds / seconds, 4)]
        }
    }

    var text: String {
        let perStep = seconds / Double(steps) * 1e6
        var lines = [String(format: "Profile of %d more steps, %.0f µs a step on average: each op, gradient rule (backward) and section charged with the time since the previous one ended on the main thread", steps, perStep),
                     "  phase     calls/step   µs/step  % of step  name"]
        let shown = rows.filter { $0.seconds / seconds >= Self.shownFraction }
        for r in shown {
            lines.append(String(format: "  %-9@ %10.1f %9.1f %9.1f %%  %@", r.phase.rawValue as NSString, Double(r.calls) / Double(steps),
                                r.seconds / Double(steps) * 1e6, 100 * r.seconds / seconds, r.name as NSString))
        }
        let rest = rows.dropFirst(shown.count)
        if !rest.isEmpty {
            let s = rest.reduce(0) { $0 + $1.seconds }
            lines.append(String(format: "  %-9@ %10.1f %9.1f %9.1f %%  %d other rows, each under %.1f %%", "" as NSString,
                                Double(rest.reduce(0) { $0 + $1.calls }) / Double(steps), s / Double(steps) * 1e6, 100 * s / seconds,
                                rest.count, 100 * Self.shownFraction))
        }
        let charged = rows.reduce(0) { $0 + $1.seconds }
        lines.append(String(format: "  rows add up to %.1f %% of the profiled steps' wall-clock time", 100 * charged / seconds))
        return lines.joined(separator: "\n")
    }
}
