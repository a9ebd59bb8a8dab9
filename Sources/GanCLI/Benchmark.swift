import Engine
import Evaluation
import Foundation

enum Benchmark {
    static func now() -> Double { Clock.now() }

    /// The middle value (the upper one of an even count).
    static func median<C: Collection<Double>>(of xs: C) -> Double { let s = xs.sorted(); return s[s.count / 2] }

    /// Median wall time of `iterations` calls after `warmup` untimed ones.
    static func median(warmup: Int, iterations: Int, _ body: () -> Void) -> Double {
        for _ in 0..<warmup { body() }
        var times: [Double] = []
        for _ in 0..<iterations {
            let t0 = now()
            body()
            times.append(now() - t0)
        }
        times.sort()
        return times[times.count / 2]
    }

    /// GFLOP/s of a square sgemm (2n³ flops), median over about a second of calls.
    static func sgemmGFLOPS(size n: Int) -> Double {
        var rng = RandomGenerator(seed: 9)
        let a = Tensor.randn([n, n], generator: &rng), b = Tensor.randn([n, n], generator: &rng)
        let once = median(warmup: 1, iterations: 1) { _ = Tensor.matmul(a, b) }
        let reps = max(5, min(200, Int(1.0 / max(once, 1e-6))))
        let t = median(warmup: 2, iterations: reps) { _ = Tensor.matmul(a, b) }
        return 2 * Double(n) * Double(n) * Double(n) / t / 1e9
    }

    /// A step's matrix products and convolutions (counted by `ProductFlops` over the timed
    /// steps) against its median time and an sgemm yardstick measured in the same run: the
    /// fraction of the machine's product rate the whole step reaches.
    struct ProductRate {
        let gflop: Double, gflops: Double, fraction: Double

        init(flops: Double, seconds: [Double], sgemm: Double) {
            let median = seconds.sorted()[seconds.count / 2]
            gflop = flops / 1e9
            gflops = gflop / median
            fraction = gflops / sgemm
        }

        /// "products … GFLOP a `unit`, … GFLOP/s (… % of sgemm)".
        func summary(per unit: String) -> String {
            String(format: "products %.3f GFLOP a %@, %.0f GFLOP/s (%.0f %% of sgemm)", gflop, unit, gflops, 100 * fraction)
        }
    }

    static func round(_ x: Double, _ digits: Int) -> Double {
        let p = Foundation.pow(10.0, Double(digits))
        return (x * p).rounded() / p
    }

    static func json(_ object: Any) -> String {
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return String(data: data, encoding: .utf8)!
    }
}
