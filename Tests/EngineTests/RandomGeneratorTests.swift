import Engine
import Foundation
import TestSupport
import XCTest

final class RandomGeneratorTests: XCTestCase {
    /// Known-answer vectors published with Random123 (kat_vectors, philox4x32_10).
    func testPhiloxKnownAnswers() {
        XCTAssertEqual(RandomGenerator.philox(SIMD4(0, 0, 0, 0), key: SIMD2(0, 0)),
                       SIMD4(0x6627_E8D5, 0xE169_C58D, 0xBC57_AC4C, 0x9B00_DBD8))
        XCTAssertEqual(RandomGenerator.philox(SIMD4(repeating: 0xFFFF_FFFF), key: SIMD2(repeating: 0xFFFF_FFFF)),
                       SIMD4(0x408F_276D, 0x41C8_3B0E, 0xA20B_C7C6, 0x6D54_51FD))
        XCTAssertEqual(RandomGenerator.philox(SIMD4(0x243F_6A88, 0x85A3_08D3, 0x1319_8A2E, 0x0370_7344),
                                              key: SIMD2(0xA409_3822, 0x299F_31D0)),
                       SIMD4(0xD16C_FE09, 0x94FD_CCEB, 0x5001_E420, 0x2412_6EA1))
    }

    func testSameSeedSameStreamAndStateRestore() {
        var a = RandomGenerator(seed: 42), b = RandomGenerator(seed: 42)
        XCTAssertEqual(Tensor.randn([37], generator: &a).scalars, Tensor.randn([37], generator: &b).scalars)
        let saved = a.state
        let next = Tensor.rand([11], generator: &a).scalars
        var c = RandomGenerator(seed: 0)
        c.state = saved
        XCTAssertEqual(Tensor.rand([11], generator: &c).scalars, next)
        var d = RandomGenerator(seed: 43)
        XCTAssertNotEqual(Tensor.randn([8], generator: &d).scalars, Tensor.randn([8], generator: &b).scalars)
    }

    /// The eight-lane uniform fill must give exactly the one-block Philox words (so streams, and
    /// checkpoints' resume positions, are unchanged), across the 2³² carry of the counter and
    /// for lengths that end inside a block or a group of eight, and long enough to be split
    /// over threads.
    /// Both vector paths (eight blocks per pass in Swift; sixteen in the AVX-512 or AVX2 kernel,
    /// when the CPU has one) against one block at a time, across the 2³² carry of the counter's low word.
    func testVectorUniformFillMatchesOneBlockPhilox() {
        let seed: UInt64 = 0x1234_5678_9ABC_DEF0
        let saved = WideKernels.enabled
        defer { WideKernels.enabled = saved }
        for wide in [true, false] {
        WideKernels.enabled = wide
        for (start, n, low, high) in [(UInt64(0), 1, Float(0), Float(1)), (0xFFFF_FFFA, 37, -1, 3), (0xFFFF_FFF3, 301, 0, 1),
                                      (5, 32, 0, 1), (1 << 40, 1027, -0.5, 0.25), (7, 100_003, 0, 1)] {
            var g = RandomGenerator(seed: seed, counter: start)
            let got = Tensor.rand([n], low: low, high: high, generator: &g).scalars
            XCTAssertEqual(g.counter, start + UInt64((n + 3) / 4))
            var want: [Float] = []
            var c = start
            while want.count < n {
                let w = RandomGenerator.philox(SIMD4(UInt32(truncatingIfNeeded: c), UInt32(truncatingIfNeeded: c >> 32), 0, 0),
                                               key: SIMD2(UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32)))
                for j in 0..<4 where want.count < n { want.append(low + (high - low) * (Float(w[j] >> 8) * 0x1p-24)) }
                c += 1
            }
            XCTAssertEqual(got, want, "counter \(start), \(n) values, wide kernels \(wide)")
        }
        }
    }

    /// Dropout (one pass from the random words where AVX-512 or AVX2 runs it, else a fill, the mask and
    /// the product) keeps x · keep where the one-block Philox uniform is ≥ p and zero elsewhere,
    /// consumes one counter per four values, and passes gradients through the same mask.
    func testDropoutMatchesOneBlockUniforms() {
        let seed: UInt64 = 0x0DD0_5EED_1234_0001, p: Float = 0.3, keep = 1 / (1 - p)
        let saved = WideKernels.enabled
        defer { WideKernels.enabled = saved }
        for wide in [true, false] {
            WideKernels.enabled = wide
            for (start, n) in [(UInt64(0), 5), (3, 64), (0xFFFF_FFF3, 130), (1 << 33, 1000), (11, 100_003)] {
                var g = RandomGenerator(seed: seed, counter: start)
                let x = randomTensor([n], seed: 40 + UInt64(n)).requiringGrad()
                let y = x.dropout(p, generator: &g)
                XCTAssertEqual(g.counter, start + UInt64((n + 3) / 4), "\(n) values, wide \(wide): counters used")
                var mask: [Float] = []
                var c = start
                while mask.count < n {
                    let w = RandomGenerator.philox(SIMD4(UInt32(truncatingIfNeeded: c), UInt32(truncatingIfNeeded: c >> 32), 0, 0),
                                                   key: SIMD2(UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32)))
                    for j in 0..<4 where mask.count < n { mask.append(Float(w[j] >> 8) * 0x1p-24 >= p ? keep : 0) }
                    c += 1
                }
                let xs = x.scalars
                XCTAssertEqual(y.scalars, (0..<n).map { xs[$0] * mask[$0] }, "\(n) values, wide \(wide): output")
                XCTAssertEqual(y.sum().gradients(wrt: [x])[0].scalars, mask, "\(n) values, wide \(wide): gradient")
                let kept = mask.filter { $0 != 0 }.count
                if n >= 1000 { XCTAssertEqual(Double(kept) / Double(n), 0.7, accuracy: 0.05) }
            }
        }
    }

    /// Normals of a large fill (words through the vectorized uniform fill, and from 4,096 values
    /// in parts on the engine's threads) equal those of many one-block fills (words block by
    /// block), value for value, and leave the same state.
    func testLargeNormalFillMatchesBlockByBlock() {
        for count in [1_000, 1_002, 4_097, 6_400, 20_003] {
            var big = RandomGenerator(seed: 21), small = RandomGenerator(seed: 21)
            var a = [Float](repeating: 0, count: count), b = [Float](repeating: 0, count: count)
            a.withUnsafeMutableBufferPointer { big.fillNormal($0, mean: 0.5, std: 2) }
            b.withUnsafeMutableBufferPointer { buf in
                for i in stride(from: 0, to: count, by: 4) {
                    small.fillNormal(UnsafeMutableBufferPointer(rebasing: buf[i..<min(i + 4, count)]), mean: 0.5, std: 2)
                }
            }
            XCTAssertEqual(a.map(\.bitPattern), b.map(\.bitPattern), "\(count) values")
            XCTAssertEqual(big.nextUniform(), small.nextUniform(), "state after \(count) values")
        }
    }

    /// Normals against Box–Muller in double on the same uniforms (a copy of the generator draws
    /// them): r = √(−2 ln(u₁ + 2⁻²⁴)), z = mean + std·r·(cos, sin)(2π·u₂), for odd and even counts.
    func testNormalsMatchBoxMullerInDouble() {
        for (count, mean, std) in [(200_001, Float(0), Float(1)), (6_400, 0.5, 2), (3, -1, 0.25)] {
            var g = RandomGenerator(seed: 11)
            var copy = g
            var z = [Float](repeating: 0, count: count), u = [Float](repeating: 0, count: (count + 3) / 4 * 4)
            z.withUnsafeMutableBufferPointer { g.fillNormal($0, mean: mean, std: std) }
            u.withUnsafeMutableBufferPointer { copy.fillUniform($0) }
            XCTAssertEqual(g.nextUniform(), copy.nextUniform(), "state after \(count) normals")
            var worst = 0.0
            for i in 0..<count {
                let j = i & ~1
                let r = (-2 * Foundation.log(Double(u[j]) + 0x1p-24)).squareRoot(), t = 2 * Double.pi * Double(u[j + 1])
                let exact = Double(mean) + Double(std) * r * (i % 2 == 0 ? Foundation.cos(t) : Foundation.sin(t))
                worst = max(worst, abs(Double(z[i]) - exact) / (abs(Double(std)) * (1 + abs(exact - Double(mean))) + abs(Double(mean))))
            }
            XCTAssertLessThan(worst, 3e-7, "\(count) normals, mean \(mean), std \(std)")
        }
    }

    func testMomentsOfUniformAndNormal() {
        var g = RandomGenerator(seed: 7)
        let n = Tensor.randn([200_000], generator: &g)
        XCTAssertEqual(n.mean().item, 0, accuracy: 0.01)
        XCTAssertEqual(n.variance().item, 1, accuracy: 0.015)
        let u = Tensor.rand([200_000], low: -1, high: 1, generator: &g)
        XCTAssertEqual(u.mean().item, 0, accuracy: 0.01)
        XCTAssertEqual(u.variance().item, 1.0 / 3.0, accuracy: 0.005)
        XCTAssertGreaterThanOrEqual(u.min().item, -1)
        XCTAssertLessThan(u.max().item, 1)
    }

    func testPermutationIsAPermutation() {
        var g = RandomGenerator(seed: 3)
        let p = g.permutation(1000)
        XCTAssertEqual(p.sorted(), Array(0..<1000))
        XCTAssertNotEqual(p, Array(0..<1000))
    }
}
