import Engine
import TestSupport
import XCTest

/// Small matrix products run on oneDNN's matmul where it is available (one call per thread,
/// operands that are not dense copied first) and on OpenBLAS otherwise: both agree with a plain
/// double-precision product within float rounding, for every transpose and for products split
/// over the threads by rows or by columns.
final class MatmulBackendTests: XCTestCase {
    /// op(a) · op(b) in double, and Σ |op(a)| · |op(b)| per element (the rounding bound's scale).
    func reference(_ a: Tensor, _ b: Tensor, _ ta: Bool, _ tb: Bool) -> (value: [Double], scale: [Double], k: Int) {
        let (m, k) = ta ? (a.shape[1], a.shape[0]) : (a.shape[0], a.shape[1])
        let n = tb ? b.shape[0] : b.shape[1]
        let (x, y) = (a.scalars.map(Double.init), b.scalars.map(Double.init))
        var value = [Double](repeating: 0, count: m * n), scale = value
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0, t = 0.0
                for p in 0..<k {
                    let u = ta ? x[p * m + i] : x[i * k + p]
                    let v = tb ? y[j * k + p] : y[p * n + j]
                    s += u * v
                    t += abs(u * v)
                }
                value[i * n + j] = s
                scale[i * n + j] = t
            }
        }
        return (value, scale, k)
    }

    /// The largest error of `got` against the double product, in units of the rounding bound
    /// |float product − exact| ≤ k · ε · Σ|aᵢ bᵢ| (ε = 2⁻²⁴), with room for the final rounding to
    /// float: at most 1 when every element is within it.
    func worstError(_ got: [Float], _ r: (value: [Double], scale: [Double], k: Int)) -> Double {
        var worst = 0.0
        for i in 0..<got.count {
            let bound = Double(r.k + 2) * 0x1p-24 * r.scale[i] + 1e-30
            worst = max(worst, abs(Double(got[i]) - r.value[i]) / bound)
        }
        return worst
    }

    func testEveryTransposeAndSplitMatchesADoubleProduct() throws {
        let saved = Runtime.usesOneDNNMatmul
        defer { Runtime.usesOneDNNMatmul = saved }
        // (m, k, n): split by columns or rows over two threads (≥ 2 MFLOP), one call (0.3 MFLOP),
        // and odd sizes that leave a part with a tail.
        let shapes = [(64, 128, 160), (160, 64, 100), (64, 48, 50), (37, 70, 61), (96, 200, 75)]
        for oneDNN in [true, false] {
            Runtime.usesOneDNNMatmul = oneDNN
            for (m, k, n) in shapes {
                for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
                    let a = randomTensor(ta ? [k, m] : [m, k], seed: UInt64(m * 7 + k))
                    let b = randomTensor(tb ? [n, k] : [k, n], seed: UInt64(n * 11 + k))
                    let before = Runtime.oneDNNMatmulCalls
                    let c = Tensor.matmul(a, b, transposeA: ta, transposeB: tb)
                    let calls = Runtime.oneDNNMatmulCalls - before
                    let what = "oneDNN \(Runtime.usesOneDNNMatmul), \(m)×\(k)×\(n), transposes \(ta) \(tb)"
                    XCTAssertEqual(c.shape, [m, n], what)
                    if Runtime.usesOneDNNMatmul { XCTAssertGreaterThan(calls, 0, "\(what): oneDNN's matmul ran") } else { XCTAssertEqual(calls, 0, what) }
                    XCTAssertLessThanOrEqual(worstError(c.scalars, reference(a, b, ta, tb)), 1, "\(what): error over the rounding bound")
                }
            }
        }
    }

    /// A product split over two threads gives the same bits as on one: the parts are independent
    /// products over whole rows or columns, whichever library runs them.
    func testSplittingOverThreadsChangesNoBits() {
        let saved = Runtime.usesOneDNNMatmul
        defer { Runtime.usesOneDNNMatmul = saved; Runtime.configure() }
        for oneDNN in [true, false] {
            Runtime.usesOneDNNMatmul = oneDNN
            for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
                let (m, k, n) = (64, 256, 392)
                let a = randomTensor(ta ? [k, m] : [m, k], seed: 21), b = randomTensor(tb ? [n, k] : [k, n], seed: 22)
                Runtime.configure(threads: 1)
                let one = Tensor.matmul(a, b, transposeA: ta, transposeB: tb).scalars
                Runtime.configure(threads: 2)
                let two = Tensor.matmul(a, b, transposeA: ta, transposeB: tb).scalars
                XCTAssertEqual(one, two, "oneDNN \(Runtime.usesOneDNNMatmul), transposes \(ta) \(tb)")
            }
        }
    }

    /// oneDNN's table keeps 64 shapes, and each thread its memory objects per entry: after more
    /// shapes than that, entries have been rebuilt for other shapes, and the first shapes, run
    /// again, take new entries; every product still matches the double-precision one.
    func testShapesBeyondTheTableStayCorrect() throws {
        let saved = Runtime.usesOneDNNMatmul
        defer { Runtime.usesOneDNNMatmul = saved }
        Runtime.usesOneDNNMatmul = true
        try XCTSkipUnless(Runtime.usesOneDNNMatmul, "oneDNN's matmul is not available here")
        let shapes = (0..<72).map { (32, 128, 32 + $0) }  // 2·m·k·n ≥ 262,144: oneDNN's side
        for (m, k, n) in shapes + shapes.prefix(12) + shapes.suffix(4) {
            let a = randomTensor([m, k], seed: UInt64(n)), b = randomTensor([k, n], seed: UInt64(n + 1000))
            let before = Runtime.oneDNNMatmulCalls
            let got = Tensor.matmul(a, b).scalars
            XCTAssertGreaterThan(Runtime.oneDNNMatmulCalls - before, 0, "\(m)×\(k)×\(n): oneDNN's matmul ran")
            XCTAssertLessThanOrEqual(worstError(got, reference(a, b, false, false)), 1, "\(m)×\(k)×\(n): error over the rounding bound")
        }
    }
}
