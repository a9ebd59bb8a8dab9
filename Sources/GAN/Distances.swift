import Foundation

/// The distances between probability distributions that the WGAN paper compares, for
/// discrete distributions given as probability vectors over the same points.
public enum Distances {
    /// Total variation: ½ Σ |p − q|.
    public static func totalVariation(_ p: [Double], _ q: [Double]) -> Double {
        zip(p, q).reduce(0) { $0 + abs($1.0 - $1.1) } / 2
    }

    /// Kullback–Leibler KL(p ‖ q); +∞ where q = 0 < p.
    public static func kullbackLeibler(_ p: [Double], _ q: [Double]) -> Double {
        var s = 0.0
        for (a, b) in zip(p, q) where a > 0 {
            if b == 0 { return .infinity }
            s += a * log(a / b)
        }
        return s
    }

    /// Jensen–Shannon: ½ KL(p ‖ m) + ½ KL(q ‖ m), m = ½(p + q); at most log 2.
    public static func jensenShannon(_ p: [Double], _ q: [Double]) -> Double {
        let m = zip(p, q).map { ($0 + $1) / 2 }
        return kullbackLeibler(p, m) / 2 + kullbackLeibler(q, m) / 2
    }

    /// Earth mover's (Wasserstein-1) distance between distributions on sorted points of a line:
    /// the integral of |F_p − F_q|.
    public static func earthMover(_ p: [Double], _ q: [Double], points: [Double]) -> Double {
        var fp = 0.0, fq = 0.0, s = 0.0
        for i in 0..<(points.count - 1) {
            fp += p[i]; fq += q[i]
            s += abs(fp - fq) * (points[i + 1] - points[i])
        }
        return s
    }

    /// The paper's Example 1: P₀ uniform on the segment {0} × [0, 1], P_θ on {θ} × [0, 1].
    /// Discretized on `n` heights, the two distributions live on disjoint points unless θ = 0.
    public static func parallelLines(theta: Double, n: Int = 100) -> (tv: Double, kl: Double, js: Double, em: Double) {
        // Points: (0, y_k) then (θ, y_k); with θ = 0 both lie on the same points.
        let same = theta == 0
        let count = same ? n : 2 * n
        var p = [Double](repeating: 0, count: count), q = p
        for k in 0..<n { p[k] = 1 / Double(n); q[same ? k : n + k] = 1 / Double(n) }
        // Moving mass horizontally by |θ| is the optimal plan: EM = |θ| (heights already match).
        return (totalVariation(p, q), kullbackLeibler(p, q), jensenShannon(p, q), abs(theta))
    }
}
