import Engine
import TestSupport
import XCTest

/// Small matrix products run on oneDNN's matmul where it is available (one call per thread,
/// operands that are not dense copied first) and on OpenBLAS otherwise: both agree with a plain
/// double-precision product within float rounding, for every transpose and for products split
/// over the threads by rows or by columns.
final class MatmulBackendTests: XCTestCase {
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
                    XCTAssertLessThanOrEqual(productRoundingError(c.scalars, doubleProduct(a, b, ta, tb)), 1, "\(what): error over the rounding bound")
                }
            }
        }
    }

    /// A product split over two threads equals the one-thread product within the rounding bound,
    /// and bit for bit on oneDNN's brgemm matmul (AVX-512): its parts are independent products
    /// over whole rows or columns, and brgemm sums each element in the same order wherever its
    /// block lies. The AVX2 kernels do not: splitting a 64×256·256×392 product by rows or columns
    /// changed 898–3,359 of its elements' last bits on OpenBLAS's Haswell kernel, and some on
    /// oneDNN's gemm:jit (session 18, an AMD EPYC), so there the split is held to the bound only.
    func testSplittingOverThreadsStaysWithinRounding() {
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
                let what = "oneDNN \(Runtime.usesOneDNNMatmul), transposes \(ta) \(tb)"
                let exact = doubleProduct(a, b, ta, tb)
                XCTAssertLessThanOrEqual(productRoundingError(one, exact), 1, "\(what), one thread")
                XCTAssertLessThanOrEqual(productRoundingError(two, exact), 1, "\(what), two threads")
                if Runtime.usesOneDNNMatmul && Runtime.cpuHasAVX512 { XCTAssertEqual(one, two, what) }
            }
        }
    }

    /// A thread's part of up to 268 MFLOP (2²⁸) runs on oneDNN's matmul with AVX-512 (mlp-deep's
    /// layers), up to 67 (2²⁶) without; larger parts on OpenBLAS. Both sides match the
    /// double-precision product.
    func testMidSizedProductsFollowTheSizeBound() throws {
        let saved = Runtime.usesOneDNNMatmul
        defer { Runtime.usesOneDNNMatmul = saved }
        Runtime.usesOneDNNMatmul = true
        try XCTSkipUnless(Runtime.usesOneDNNMatmul, "oneDNN's matmul is not available here")
        XCTAssertEqual(Runtime.oneDNNMatmulMaxFlops, Runtime.cpuHasAVX512 ? 1 << 28 : 1 << 26)
        // 205 and 604 MFLOP, split evenly over up to four threads by rows or columns.
        for (m, k, n) in [(128, 784, 1024), (256, 1024, 1152)] {
            let a = randomTensor([m, k], seed: UInt64(m)), b = randomTensor([k, n], seed: UInt64(n))
            let parts = Swift.max(1, Swift.min(Runtime.threads, Swift.max(m, n) / 32))
            let part = 2 * m * k * n / parts
            let before = Runtime.oneDNNMatmulCalls
            let got = Tensor.matmul(a, b).scalars
            let what = "\(m)×\(k)×\(n) in \(parts) parts of \(part / 1_000_000) MFLOP"
            XCTAssertEqual(Runtime.oneDNNMatmulCalls - before > 0, part <= Runtime.oneDNNMatmulMaxFlops, what)
            XCTAssertLessThanOrEqual(productRoundingError(got, doubleProduct(a, b, false, false)), 1, "\(what): error over the rounding bound")
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
            XCTAssertLessThanOrEqual(productRoundingError(got, doubleProduct(a, b, false, false)), 1, "\(m)×\(k)×\(n): error over the rounding bound")
        }
    }
}
