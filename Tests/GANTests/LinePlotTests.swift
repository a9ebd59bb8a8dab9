import GAN
import XCTest

/// The plots' tick positions and labels.
final class LinePlotTests: XCTestCase {
    func testTicksAreRoundNumbersInsideTheRange() {
        // The ranges of a 900-step mlp run's loss plot (before session 24 its ticks were the
        // range cut in quarters: 0.518, 0.848, 1.18, …; 10, 232, 455, …; 0.0107, 0.248, …).
        let losses = LinePlot.ticks(0.518, 1.84)
        XCTAssertEqual(losses.values.count, 7)
        for (v, expected) in zip(losses.values, [0.6, 0.8, 1.0, 1.2, 1.4, 1.6, 1.8] as [Float]) {
            XCTAssertEqual(v, expected, accuracy: 1e-6)
        }
        XCTAssertEqual(losses.values.map { LinePlot.label($0, decimals: losses.decimals) }, ["0.6", "0.8", "1.0", "1.2", "1.4", "1.6", "1.8"])
        let steps = LinePlot.ticks(10, 900)
        XCTAssertEqual(steps.values, [200, 400, 600, 800])
        XCTAssertEqual(steps.values.map { LinePlot.label($0, decimals: steps.decimals) }, ["200", "400", "600", "800"])
        let epochs = LinePlot.ticks(10 / 937, 900 / 937)
        XCTAssertEqual(epochs.values.map { LinePlot.label($0, decimals: epochs.decimals) }, ["0.2", "0.4", "0.6", "0.8"])
        // A step of 2.5 × 10ᵏ needs one more decimal than its power of ten.
        let quarter = LinePlot.ticks(0, 1.1, maxCount: 5)
        XCTAssertEqual(quarter.values.map { LinePlot.label($0, decimals: quarter.decimals) }, ["0.00", "0.25", "0.50", "0.75", "1.00"])
        let negative = LinePlot.ticks(-0.04, 0.03)
        // Ends given in Float land on the step's multiples as written.
        XCTAssertEqual(negative.values.map { LinePlot.label($0, decimals: negative.decimals) }, ["-0.04", "-0.02", "0.00", "0.02"])
    }

    /// Over ranges of every magnitude: at most `maxCount` ticks and at least two, evenly
    /// spaced by 1, 2, 2.5 or 5 × 10ᵏ, every one inside the range and every multiple of the
    /// step inside the range present.
    func testTicksOverRandomRanges() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let scale = Float(pow(10, Double.random(in: -6...7, using: &rng)))
            let lo = Float.random(in: -1...1, using: &rng) * scale
            let hi = lo + Float.random(in: 0.01...3, using: &rng) * scale
            let maxCount = Int.random(in: 4...9, using: &rng)
            let t = LinePlot.ticks(lo, hi, maxCount: maxCount).values
            XCTAssertTrue((2...maxCount).contains(t.count), "\(lo)…\(hi) max \(maxCount): \(t)")
            guard t.count >= 2 else { continue }
            let step = Double(t[1]) - Double(t[0])
            let exponent = log10(step).rounded(.down)
            let mantissa = step / pow(10, exponent)
            XCTAssertTrue([1, 2, 2.5, 5, 10].contains { abs(mantissa - $0) < 1e-3 }, "step \(step) in \(t)")
            for (a, b) in zip(t, t.dropFirst()) {
                XCTAssertEqual(Double(b) - Double(a), step, accuracy: step * 1e-3, "\(t)")
            }
            let slack = Double(hi - lo) * 1e-5
            XCTAssertGreaterThanOrEqual(Double(t[0]), Double(lo) - slack, "\(lo)…\(hi): \(t)")
            XCTAssertLessThanOrEqual(Double(t[t.count - 1]), Double(hi) + slack, "\(lo)…\(hi): \(t)")
            XCTAssertLessThan(Double(t[0]) - step, Double(lo) + slack, "a multiple below the first is missing: \(lo)…\(hi): \(t)")
            XCTAssertGreaterThan(Double(t[t.count - 1]) + step, Double(hi) - slack, "a multiple above the last is missing: \(lo)…\(hi): \(t)")
        }
    }

    func testLabelsStayShort() {
        XCTAssertEqual(LinePlot.label(1_000_000, decimals: 0), "1000000")
        XCTAssertEqual(LinePlot.label(25_000_000, decimals: 0), "2.5e+07")
        XCTAssertEqual(LinePlot.label(0.000025, decimals: 6), "2.5e-05")
        XCTAssertEqual(LinePlot.label(-0.0, decimals: 1), "0.0")
    }
}
