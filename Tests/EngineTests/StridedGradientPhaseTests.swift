import Engine
import TestSupport
import XCTest

/// Stride-2 input and weight gradients run on oneDNN as four stride-1 convolutions ("phases",
/// dnnl_convolution.c) against the same gradients without oneDNN (unfold + sgemm + col2im): in
/// NCHW and channels-last, odd and even sizes and kernels, symmetric and Keras "same" padding,
/// and through a gradient penalty differentiated again.
final class StridedGradientPhaseTests: XCTestCase {
    // (n, input channels, output channels, size, geometry); every output is below 14×14.
    let cases: [(Int, Int, Int, Int, ConvGeometry)] = [
        (2, 16, 24, 14, ConvGeometry(kernel: (5, 5), stride: (2, 2), padding: (top: 1, left: 1, bottom: 2, right: 2))),
        (3, 24, 16, 7, ConvGeometry(kernel: 5, stride: 2, padding: 2)),
        (2, 16, 16, 9, ConvGeometry(kernel: 3, stride: 2, padding: 1)),
        (2, 16, 20, 8, ConvGeometry(kernel: 4, stride: 2, padding: 1)),
        (1, 32, 16, 13, ConvGeometry(kernel: (5, 3), stride: (2, 2), padding: (top: 2, left: 0, bottom: 2, right: 1))),
    ]

    override func setUpWithError() throws {
        try XCTSkipUnless(Runtime.usesOneDNN, "oneDNN is not available here")
    }

    /// `body` with oneDNN's phases on, then with oneDNN off; restores the settings.
    func onAndOff<T>(_ body: () -> T) -> (phased: T, reference: T, calls: Int) {
        let (savedDNNL, savedPhases, savedGemm) = (Runtime.usesOneDNN, Runtime.stridedGradientPhases, Runtime.implicitGemmConvolutions)
        defer { Runtime.usesOneDNN = savedDNNL; Runtime.stridedGradientPhases = savedPhases; Runtime.implicitGemmConvolutions = savedGemm }
        Runtime.stridedGradientPhases = 2
        Runtime.implicitGemmConvolutions = 0  // its own tests: ImplicitGemmTests
        let before = Runtime.stridedGradientPhaseCalls
        let phased = body()
        let calls = Runtime.stridedGradientPhaseCalls - before
        Runtime.usesOneDNN = false
        return (phased, body(), calls)
    }

    func testGradientsMatchWithoutOneDNN() {
        for (k, (n, c, o, size, geo)) in cases.enumerated() {
            for channelsLast in [false, true] {
                let what = "case \(k) channels-last \(channelsLast)"
                let g = geo.withChannelsLast(channelsLast)
                let layout: (Tensor) -> Tensor = { channelsLast ? $0.permuted([0, 2, 3, 1]) : $0 }
                let x = randomTensor([n, c, size, size], seed: 900 + UInt64(k))
                let w = randomTensor([o, c, geo.kernelH, geo.kernelW], seed: 910 + UInt64(k), scale: 0.3)
                let y = Tensor.conv2d(layout(x), weight: w, g)
                let v = randomTensor(y.shape, seed: 920 + UInt64(k))
                let r = onAndOff {
                    (Tensor.convTranspose2d(v, weight: w, g, outputSize: (size, size)), Tensor.conv2dWeightGrad(layout(x), v, g))
                }
                XCTAssertEqual(r.calls, 2, "\(what): both gradients in phases")
                assertClose(r.phased.0, r.reference.0, rtol: 1e-4, atol: 1e-4, "\(what) input gradient")
                assertClose(r.phased.1, r.reference.1, rtol: 1e-4, atol: 1e-3, "\(what) weight gradient")
            }
        }
    }

    /// WGAN-GP's use: the input gradient of ⟨conv(x, w)⟩ through tanh, penalized and
    /// differentiated again, which runs the phases inside the second-order graph.
    func testGradientPenaltyMatchesWithoutOneDNN() {
        for (k, (n, c, o, size, geo)) in cases.enumerated() {
            let x = randomTensor([n, c, size, size], seed: 930 + UInt64(k)).requiringGrad()
            let w = randomTensor([o, c, geo.kernelH, geo.kernelW], seed: 940 + UInt64(k), scale: 0.3).requiringGrad()
            let r = onAndOff { () -> [Tensor] in
                let y = Tensor.conv2d(x, weight: w, geo).tanh()
                let gx = y.sum().gradients(wrt: [x], createGraph: true)[0]
                return (gx.square().sum() + y.square().sum()).gradients(wrt: [x, w])
            }
            XCTAssertGreaterThan(r.calls, 0, "case \(k): phases in the penalty's graph")
            // The penalty's weight gradient reaches ~360 (mean ~57) and some elements cancel down
            // to ~0.3, where summation order alone moves them by ~1e-3: oneDNN's AVX2 kernels
            // (session 18, AMD EPYC) gave 0.29751 where unfold + sgemm gave 0.29892, with or
            // without phases. Absolute errors are therefore held to 1e-5 of the largest value,
            // far below what a wrong tap or pixel would make.
            for (i, name) in ["dx", "dweight"].enumerated() {
                let scale = r.reference[i].abs().max().item
                assertClose(r.phased[i], r.reference[i], rtol: 1e-3, atol: Swift.max(1e-3, 1e-5 * scale), "case \(k) \(name)")
            }
            XCTAssertGreaterThan(r.reference[1].abs().sum().item, 0, "case \(k): trivially zero")
        }
    }
}
