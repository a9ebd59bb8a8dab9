import Foundation

/// A one-line progress bar on standard error: `epoch 2/5 [#####-----] 468/937 ETA 0:21 1523 img/s loss 0.0412`.
/// Redrawn in place on a terminal; without one (logs, CI) a line every 10 %.
final class ProgressBar {
    let total: Int
    let label: String
    var lastDraw = Date.distantPast
    var lastPercentLogged = -1
    let isTTY = isatty(STDERR_FILENO) == 1

    init(total: Int, label: String) {
        self.total = max(total, 1)
        self.label = label
    }

    /// The first update's time, units and items: rate and ETA count from there, because callers
    /// create the bar when a unit has just finished (its time is unknown), and a resumed epoch
    /// starts part-way.
    var first: (time: Date, done: Int, items: Int)?

    func update(_ done: Int, items: Int, extra: String) {
        let now = Date()
        let start = first ?? (now, done, items)
        first = start
        let span = now.timeIntervalSince(start.time)
        let rateText = span > 0 && items > start.items ? "\(Int(Double(items - start.items) / span))" : "–"
        let unitsSince = done - start.done
        let eta = span > 0 && unitsSince > 0 ? ProgressBar.clock(span / Double(unitsSince) * Double(total - done)) : "–"
        let fraction = Double(done) / Double(total)
        let width = 24
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        let line = "\(label) [\(bar)] \(done)/\(total) ETA \(eta) \(rateText) img/s \(extra)"
        if isTTY {
            guard now.timeIntervalSince(lastDraw) > 0.1 || done == total else { return }
            lastDraw = now
            FileHandle.standardError.write(("\r\u{1B}[K" + line + (done == total ? "\n" : "")).data(using: .utf8)!)
        } else {
            let percent = Int(fraction * 10) * 10
            if percent > lastPercentLogged {
                lastPercentLogged = percent
                FileHandle.standardError.write((line + "\n").data(using: .utf8)!)
            }
        }
    }

    static func clock(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}
