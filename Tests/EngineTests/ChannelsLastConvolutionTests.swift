import Engine
import TestSupport
import XCTest

/// Channels-last convolutions against the NCHW ones on the same images permuted: outputs, first
/// order, and a gradient penalty differentiated again (WGAN-GP's use), with oneDNN (where it
/// runs channels-last directly) and without it (the NCHW code between permutations).
final class ChannelsLastConvolutionTests: XCTestCase {
    /// [N, C, H, W] → [N, H, W, C] and back, recorded (so gradients flow through them).
    func nhwc(_ x: Tensor) -> Tensor { x.permuted([0, 2, 3, 1]) }
    func nchw(_ x: Tensor) -> Tensor { x.permuted([0, 3, 1, 2]) }

    // (n, input channels, output channels, size, geometry): the critic's layers — a one-channel
    // input (oneDNN forward and weight gradient, sgemm + col2im input gradient), 16-channel
    // strided layers with 14×14 and 7×7 outputs, the 7×7 valid one-output layer — a
    // stride-1 layer with fewer outputs than inputs (the dual form), and "same" stride-1 layers
    // to one channel, symmetric and not (the dcgan generator's output layer: its forward, input
    // and weight gradient through the stride-1 dual, which reads and writes channels-last).
    let cases: [(Int, Int, Int, Int, ConvGeometry)] = [
        (2, 1, 16, 12, ConvGeometry(kernel: 5, stride: 1, padding: 2)),
        (2, 16, 24, 14, ConvGeometry(kernel: (5, 5), stride: (2, 2), padding: (top: 1, left: 1, bottom: 2, right: 2))),
        (3, 24, 16, 7, ConvGeometry(kernel: 5, stride: 2, padding: 2)),
        (2, 20, 1, 7, ConvGeometry(kernel: 7)),
        (2, 6, 3, 6, ConvGeometry(kernel: 3, stride: 1, padding: 1)),
        (2, 24, 1, 10, ConvGeometry(kernel: 7, stride: 1, padding: 3)),
        (3, 32, 1, 9, ConvGeometry(kernel: (4, 4), stride: (1, 1), padding: (top: 1, left: 1, bottom: 2, right: 2))),
    ]

    /// `body(case index, case, label)` for every case, with oneDNN on (where available) and off.
    func forEachCase(_ body: (Int, (Int, Int, Int, Int, ConvGeometry), String) -> Void) {
        let saved = Runtime.usesOneDNN
        defer { Runtime.usesOneDNN = saved }
        for oneDNN in [true, false] {
            Runtime.usesOneDNN = oneDNN
            for (k, c) in cases.enumerated() { body(k, c, "case \(k) oneDNN \(Runtime.usesOneDNN)") }
        }
    }

    func testPrimitivesMatchNCHW() {
        forEachCase { k, shape, what in
            let (n, c, o, size, geo) = shape
            let cl = geo.withChannelsLast(true)
            let x = randomTensor([n, c, size, size], seed: 700 + UInt64(k))
            let w = randomTensor([o, c, geo.kernelH, geo.kernelW], seed: 710 + UInt64(k), scale: 0.3)
            let y = Tensor.conv2d(x, weight: w, geo)
            let v = randomTensor(y.shape, seed: 720 + UInt64(k))
            assertClose(nchw(Tensor.conv2d(nhwc(x), weight: w, cl)), y, rtol: 1e-4, atol: 1e-4, "\(what) conv2d")
            assertClose(nchw(Tensor.convTranspose2d(nhwc(v), weight: w, cl, outputSize: (size, size))),
                        Tensor.convTranspose2d(v, weight: w, geo, outputSize: (size, size)), rtol: 1e-4, atol: 1e-4, "\(what) convTranspose2d")
            assertClose(Tensor.conv2dWeightGrad(nhwc(x), nhwc(v), cl), Tensor.conv2dWeightGrad(x, v, geo),
                        rtol: 1e-4, atol: 1e-3, "\(what) conv2dWeightGrad")
        }
    }

    /// ⟨conv(x, w)⟩ through tanh, its input gradient penalized and differentiated again: the
    /// gradients of x, w and the bias agree between the layouts.
    func testGradientPenaltyMatchesNCHW() {
        forEachCase { k, shape, what in
            let (n, c, o, size, geo) = shape
            let x = randomTensor([n, c, size, size], seed: 730 + UInt64(k)).requiringGrad()
            let w = randomTensor([o, c, geo.kernelH, geo.kernelW], seed: 740 + UInt64(k), scale: 0.3).requiringGrad()
            let b = randomTensor([o], seed: 750 + UInt64(k)).requiringGrad()
            func penalty(_ layout: (Tensor) -> Tensor, _ g: ConvGeometry, back: (Tensor) -> Tensor) -> [Tensor] {
                let y = back(Tensor.conv2d(layout(x), weight: w, bias: b, g)).tanh()
                let gx = y.sum().gradients(wrt: [x], createGraph: true)[0]
                return (gx.square().sum() + y.square().sum()).gradients(wrt: [x, w, b])
            }
            let viaNHWC = penalty(nhwc, geo.withChannelsLast(true), back: nchw)
            let viaNCHW = penalty({ $0 }, geo, back: { $0 })
            for (i, name) in ["x", "weight", "bias"].enumerated() {
                assertClose(viaNHWC[i], viaNCHW[i], rtol: 1e-3, atol: 1e-3, "\(what) d\(name)")
            }
            XCTAssertGreaterThan(viaNCHW[1].abs().sum().item, 0, "\(what): trivially zero")
        }
    }
}
