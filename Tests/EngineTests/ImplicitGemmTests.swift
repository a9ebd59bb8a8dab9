import Engine
import TestSupport
import XCTest

/// Channels-last convolutions on the implicit-GEMM kernels (implicit_gemm.c) against the same
/// convolutions without oneDNN (unfold + sgemm + col2im): forward, input and weight gradient,
/// strides 1 and 2, odd and even sizes and kernels, asymmetric padding, channel counts that leave
/// partial register tiles, a stride larger than the kernel (phases with no taps), and through a
/// gradient penalty differentiated again.
final class ImplicitGemmTests: XCTestCase {
    // (n, input channels, output channels, size, geometry)
    let cases: [(Int, Int, Int, Int, ConvGeometry)] = [
        (2, 16, 32, 14, ConvGeometry(kernel: (5, 5), stride: (2, 2), padding: (top: 1, left: 1, bottom: 2, right: 2))),
        (3, 32, 16, 7, ConvGeometry(kernel: 5, stride: 2, padding: 2)),
        (2, 16, 16, 9, ConvGeometry(kernel: 3, stride: 2, padding: 1)),
        (2, 16, 48, 8, ConvGeometry(kernel: 4, stride: 2, padding: 1)),
        (1, 32, 16, 13, ConvGeometry(kernel: (5, 3), stride: (2, 2), padding: (top: 2, left: 0, bottom: 2, right: 1))),
        (2, 16, 32, 6, ConvGeometry(kernel: 3, stride: 1, padding: 1)),
        (2, 16, 16, 7, ConvGeometry(kernel: (3, 1), stride: (2, 2), padding: (top: 1, left: 0, bottom: 1, right: 0))),  // odd columns: no taps
        (2, 20, 16, 7, ConvGeometry(kernel: 3, stride: 2, padding: 1)),  // 20 input channels: its input gradient is oneDNN's
        (2, 64, 64, 7, ConvGeometry(kernel: 5, stride: 2, padding: 2)),  // 64 columns: AVX-512's four-panel tiles
        (1, 64, 128, 7, ConvGeometry(kernel: 5, stride: 2, padding: 2)),  // 128: two four-panel tiles a row
        (4, 16, 32, 28, ConvGeometry(kernel: 5, stride: 2, padding: 2)),  // 392 output pixels a thread: several weight-gradient blocks
    ]

    override func setUpWithError() throws {
        try XCTSkipUnless(Runtime.cpuHasAVX2, "no AVX2 here: the kernels never run")
        try XCTSkipUnless(Runtime.usesOneDNN, "oneDNN is not available here (the kernels sit behind its entry point)")
    }

    /// `body` on the implicit-GEMM kernels (on AVX-512 CPUs too) and the calls it made on them;
    /// restores the setting.
    func onKernels<T>(_ body: () -> T) -> (result: T, calls: Int) {
        let saved = Runtime.implicitGemmConvolutions
        defer { Runtime.implicitGemmConvolutions = saved }
        Runtime.implicitGemmConvolutions = 2
        let before = Runtime.implicitGemmCalls
        let result = body()
        return (result, Runtime.implicitGemmCalls - before)
    }

    /// `body` on the implicit-GEMM kernels, then with oneDNN off; restores both.
    func onAndOff<T>(_ body: () -> T) -> (gemm: T, reference: T, calls: Int) {
        let (gemm, calls) = onKernels(body)
        let saved = Runtime.usesOneDNN
        defer { Runtime.usesOneDNN = saved }
        Runtime.usesOneDNN = false
        return (gemm, body(), calls)
    }

    /// conv2d(x, w) on `g`, its input gradient and its weight gradient for an output gradient
    /// seeded `dySeed`, on whatever path is set.
    func passes(_ x: Tensor, _ w: Tensor, _ g: ConvGeometry, size: Int, dySeed: UInt64) -> (Tensor, Tensor, Tensor) {
        let y = Tensor.conv2d(x, weight: w, g)
        let v = randomTensor(y.shape, seed: dySeed)
        return (y, Tensor.convTranspose2d(v, weight: w, g, outputSize: (size, size)), Tensor.conv2dWeightGrad(x, v, g))
    }

    /// `passes` on the kernels, then without oneDNN.
    func threePasses(_ x: Tensor, _ w: Tensor, _ g: ConvGeometry, size: Int, dySeed: UInt64)
        -> (gemm: (Tensor, Tensor, Tensor), reference: (Tensor, Tensor, Tensor), calls: Int) {
        onAndOff { passes(x, w, g, size: size, dySeed: dySeed) }
    }

    /// The AVX-512 tiles (two 16-column panels at once, and one where a panel is left over: 48
    /// output channels; four panels where there are 64 columns; twelve input channels at a time
    /// in the weight gradient) sum every value in the AVX2 tiles' order, so the three passes must
    /// give the AVX2 tiles' bits.
    func testAVX512TilesGiveTheAVX2TilesBits() throws {
        try XCTSkipUnless(Runtime.cpuHasAVX512, "no AVX-512 here: the wide tiles never run")
        let saved = Runtime.implicitGemmWideTiles
        defer { Runtime.implicitGemmWideTiles = saved }
        for (k, (n, c, o, size, geo)) in cases.enumerated() {
            let g = geo.withChannelsLast(true)
            let x = randomTensor([n, c, size, size], seed: 2900 + UInt64(k)).permuted([0, 2, 3, 1])
            let w = randomTensor([o, c, geo.kernelH, geo.kernelW], seed: 2910 + UInt64(k), scale: 0.3)
            Runtime.implicitGemmWideTiles = true
            XCTAssertTrue(Runtime.implicitGemmWideTiles)
            let wide = onKernels { passes(x, w, g, size: size, dySeed: 2920 + UInt64(k)) }.result
            Runtime.implicitGemmWideTiles = false
            let narrow = onKernels { passes(x, w, g, size: size, dySeed: 2920 + UInt64(k)) }.result
            for (i, (a, b)) in [(wide.0, narrow.0), (wide.1, narrow.1), (wide.2, narrow.2)].enumerated() {
                XCTAssertGreaterThan(b.abs().max().item, 0, "case \(k) pass \(i)")
                XCTAssertEqual(a.scalars.map(\.bitPattern), b.scalars.map(\.bitPattern), "case \(k) pass \(i)")
            }
        }
    }

    /// The default mode: on an AVX-512 CPU the kernels take a pass only where it writes 128
    /// channels or more (narrower, oneDNN's AVX-512 kernels are faster); without AVX-512, every
    /// pass that fits.
    func testDefaultModeOnAVX512TakesOnlyWideOutputs() {
        let saved = Runtime.implicitGemmConvolutions
        defer { Runtime.implicitGemmConvolutions = saved }
        Runtime.implicitGemmConvolutions = 1
        let g = ConvGeometry(kernel: 5, stride: 2, padding: 2).withChannelsLast(true)
        for (c, o) in [(64, 128), (128, 64)] {
            let x = randomTensor([1, c, 7, 7], seed: 2950).permuted([0, 2, 3, 1])
            let w = randomTensor([o, c, 5, 5], seed: 2951, scale: 0.3)
            let v = randomTensor([1, 4, 4, o], seed: 2952)
            func calls(_ pass: () -> Tensor) -> Int {
                let before = Runtime.implicitGemmCalls
                _ = pass()
                return Runtime.implicitGemmCalls - before
            }
            let wide = { (channels: Int) in !Runtime.cpuHasAVX512 || channels >= 128 ? 1 : 0 }
            XCTAssertEqual(calls { Tensor.conv2d(x, weight: w, g) }, wide(o), "\(c)→\(o) forward")
            XCTAssertEqual(calls { Tensor.convTranspose2d(v, weight: w, g, outputSize: (7, 7)) }, wide(c), "\(c)→\(o) input gradient")
            XCTAssertEqual(calls { Tensor.conv2dWeightGrad(x, v, g) }, wide(o), "\(c)→\(o) weight gradient")
        }
    }

    func testConvolutionAndGradientsMatchWithoutOneDNN() {
        for (k, (n, c, o, size, geo)) in cases.enumerated() {
            let what = "case \(k)"
            let g = geo.withChannelsLast(true)
            let x = randomTensor([n, c, size, size], seed: 1900 + UInt64(k)).permuted([0, 2, 3, 1])
            let w = randomTensor([o, c, geo.kernelH, geo.kernelW], seed: 1910 + UInt64(k), scale: 0.3)
            let r = threePasses(x, w, g, size: size, dySeed: 1920 + UInt64(k))
            XCTAssertEqual(r.calls, c % 16 == 0 ? 3 : 2, "\(what): calls on the kernels")
            assertClose(r.gemm.0, r.reference.0, rtol: 1e-4, atol: 1e-4, "\(what) forward")
            assertClose(r.gemm.1, r.reference.1, rtol: 1e-4, atol: 1e-4, "\(what) input gradient")
            assertClose(r.gemm.2, r.reference.2, rtol: 1e-4, atol: 1e-3, "\(what) weight gradient")
            XCTAssertGreaterThan(r.reference.1.abs().sum().item, 0, "\(what): trivially zero")
        }
    }

    /// WGAN-GP's use: the input gradient of ⟨conv(x, w)⟩ through tanh, penalized and
    /// differentiated again, which runs all three kernels inside the second-order graph.
    func testGradientPenaltyMatchesWithoutOneDNN() {
        for (k, (n, c, o, size, geo)) in cases.prefix(3).enumerated() {
            let g = geo.withChannelsLast(true)
            let x = randomTensor([n, c, size, size], seed: 1930 + UInt64(k)).permuted([0, 2, 3, 1]).requiringGrad()
            let w = randomTensor([o, c, geo.kernelH, geo.kernelW], seed: 1940 + UInt64(k), scale: 0.3).requiringGrad()
            let r = onAndOff { () -> [Tensor] in
                let y = Tensor.conv2d(x, weight: w, g).tanh()
                let gx = y.sum().gradients(wrt: [x], createGraph: true)[0]
                return (gx.square().sum() + y.square().sum()).gradients(wrt: [x, w])
            }
            XCTAssertGreaterThanOrEqual(r.calls, 5, "case \(k): the penalty's graph on the kernels")
            // Summation order moves elements that cancel to small values (see StridedGradientPhaseTests).
            for (i, name) in ["dx", "dweight"].enumerated() {
                let scale = r.reference[i].abs().max().item
                assertClose(r.gemm[i], r.reference[i], rtol: 1e-3, atol: Swift.max(1e-3, 1e-5 * scale), "case \(k) \(name)")
            }
        }
    }

    /// Forty seeded random geometries beyond the eight above: kernels 1–5 a side, strides 1–2,
    /// each side's padding on its own, odd sizes and channel counts that leave partial tiles.
    /// Under `scripts/sanitize.sh address` this is also the kernels' bounds check at their edges.
    func testRandomGeometriesMatchWithoutOneDNN() {
        var rng = RandomGenerator(seed: 31)
        func pick(_ values: [Int]) -> Int { values[rng.nextInt(below: values.count)] }
        var callsOnKernels = 0
        for k in 0..<40 {
            let (kh, kw) = (1 + rng.nextInt(below: 5), 1 + rng.nextInt(below: 5))
            let (sh, sw) = (1 + rng.nextInt(below: 2), 1 + rng.nextInt(below: 2))
            let pad = (top: rng.nextInt(below: kh), left: rng.nextInt(below: kw), bottom: rng.nextInt(below: kh), right: rng.nextInt(below: kw))
            let size = Swift.max(kh, kw) + rng.nextInt(below: 10)
            let (n, c, o) = (1 + rng.nextInt(below: 3), pick([16, 20, 32, 48]), pick([16, 32, 48]))
            let geo = ConvGeometry(kernel: (kh, kw), stride: (sh, sw), padding: pad)
            let what = "random case \(k): n \(n), \(c)→\(o), \(size)×\(size), kernel \(kh)×\(kw), stride \(sh)×\(sw), padding \(pad)"
            let g = geo.withChannelsLast(true)
            let x = randomTensor([n, c, size, size], seed: 3100 + UInt64(k)).permuted([0, 2, 3, 1])
            let w = randomTensor([o, c, kh, kw], seed: 3200 + UInt64(k), scale: 0.3)
            let r = threePasses(x, w, g, size: size, dySeed: 3300 + UInt64(k))
            callsOnKernels += r.calls
            for (i, (a, b)) in [(r.gemm.0, r.reference.0), (r.gemm.1, r.reference.1), (r.gemm.2, r.reference.2)].enumerated() {
                let scale = b.abs().max().item
                assertClose(a, b, rtol: 1e-4, atol: Swift.max(1e-4, 1e-5 * scale), "\(what): \(["forward", "input gradient", "weight gradient"][i])")
            }
        }
        // Every geometry fits the kernels for the forward and the weight gradient at least.
        XCTAssertGreaterThanOrEqual(callsOnKernels, 80, "calls on the kernels")
    }
}
