import Engine
import TestSupport
import XCTest

/// `Tensor.batchNormLeakyRelu` (statistics, affine step and activation as one op with fused
/// passes) against the same function built from the engine's elementwise ops and reductions,
/// and against finite differences, first and second order.
final class BatchNormalizationTests: XCTestCase {
    /// leakyRelu((x − mean) / √(var + eps) · w + b) from separate ops.
    func composite(_ x: Tensor, _ w: Tensor, _ b: Tensor, alpha: Float) -> Tensor {
        let axes = [0] + Array(2..<x.rank)
        let shape = [1, x.shape[1]] + Array(repeating: 1, count: x.rank - 2)
        let (mean, variance) = x.moments(axes: axes)
        let y = (x - mean) / (variance + 1e-5).sqrt() * w.reshaped(shape) + b.reshaped(shape)
        return alpha == 1 ? y : y.leakyRelu(alpha)
    }

    func fused(_ x: Tensor, _ w: Tensor, _ b: Tensor, alpha: Float) -> Tensor {
        Tensor.batchNormLeakyRelu(x, weight: w, bias: b, eps: 1e-5, alpha: alpha).output
    }

    /// Shapes that take each kernel path: planes of 20 (vector body and tail), [N, C] rows, and a
    /// size that splits over the threads.
    let cases: [(shape: [Int], alpha: Float)] = [([3, 4, 4, 5], 0.2), ([5, 6], 0), ([4, 3, 2, 2], 1), ([8, 16, 24, 24], 0.01), ([64, 300], 0.2),
        // Rows ([N·H·W, C], channels-last images): several row blocks, two channel blocks and a tail.
        ([150, 40], 0.2)]

    func testOutputStatisticsAndGradientsMatchTheCompositeOp() {
        for (k, c) in cases.enumerated() {
            let ch = c.shape[1]
            let x = randomTensor(c.shape, seed: 500 + UInt64(k), scale: 2) + 0.5
            let w = randomTensor([ch], seed: 510 + UInt64(k)) + 1, b = randomTensor([ch], seed: 520 + UInt64(k))
            let upstream = randomTensor(c.shape, seed: 530 + UInt64(k))
            let what = "\(c.shape) alpha \(c.alpha)"
            let r = Tensor.batchNormLeakyRelu(x, weight: w, bias: b, eps: 1e-5, alpha: c.alpha)
            let axes = [0] + Array(2..<x.rank)
            assertClose(r.mean, x.mean(axes: axes), rtol: 1e-5, atol: 1e-6, "\(what) mean")
            assertClose(r.variance, x.variance(axes: axes), rtol: 1e-4, atol: 1e-6, "\(what) variance")
            assertClose(r.output, composite(x, w, b, alpha: c.alpha), rtol: 1e-4, atol: 1e-5, "\(what) output")
            // First order without a recorded graph (the fused passes)…
            let inputs = [x, w, b].map { $0.requiringGrad() }
            let a = (fused(inputs[0], inputs[1], inputs[2], alpha: c.alpha) * upstream).sum().gradients(wrt: inputs)
            let e = (composite(inputs[0], inputs[1], inputs[2], alpha: c.alpha) * upstream).sum().gradients(wrt: inputs)
            for (i, name) in ["x", "weight", "bias"].enumerated() { assertClose(a[i], e[i], rtol: 1e-3, atol: 1e-4, "\(what) d\(name)") }
            // …and with one, then differentiated again: a penalty on the input gradient, as WGAN-GP
            // puts on a critic. The upstream gradient depends on a parameter (v, as the next
            // layer's weight would), so the penalty reaches every input of the input gradient.
            let v = upstream.requiringGrad()
            func penalty(_ f: (Tensor, Tensor, Tensor) -> Tensor, createGraph: Bool = false) -> [Tensor] {
                let gx = (f(inputs[0], inputs[1], inputs[2]) * v).sum().gradients(wrt: [inputs[0]], createGraph: true)[0]
                return (gx * upstream).square().sum().gradients(wrt: inputs + [v], createGraph: createGraph)
            }
            let pa = penalty { fused($0, $1, $2, alpha: c.alpha) }, pe = penalty { composite($0, $1, $2, alpha: c.alpha) }
            for (i, name) in ["x", "weight", "bias", "v"].enumerated() { assertClose(pa[i], pe[i], rtol: 2e-3, atol: 1e-4, "\(what) penalty d\(name)") }
            XCTAssertGreaterThan(pa[0].abs().sum().item, 0, "\(what): the penalty's input gradient is not trivially zero")
            XCTAssertGreaterThan(pa[3].abs().sum().item, 0, "\(what): the penalty's upstream gradient is not trivially zero")
            // A third derivative: the penalty's gradients recorded and differentiated once more.
            func third(_ f: @escaping (Tensor, Tensor, Tensor) -> Tensor) -> [Tensor] {
                let p = penalty(f, createGraph: true)
                return (p[0] * upstream).sum().gradients(wrt: inputs + [v])
            }
            let ta = third { self.fused($0, $1, $2, alpha: c.alpha) }, te = third { self.composite($0, $1, $2, alpha: c.alpha) }
            for (i, name) in ["x", "weight", "bias", "v"].enumerated() { assertClose(ta[i], te[i], rtol: 5e-3, atol: 2e-4, "\(what) third order d\(name)") }
        }
    }

    func testFiniteDifferences() {
        let inputs = [randomTensor([3, 2, 3, 3], seed: 540, scale: 2), randomTensor([2], seed: 541) + 1, randomTensor([2], seed: 542)]
        let v = randomTensor([3, 2, 3, 3], seed: 543)
        checkGradient(inputs, "batchNormLeakyRelu", h: 1e-2) { (self.fused($0[0], $0[1], $0[2], alpha: 0.2) * v).sum() }
        // The normalization makes the function non-linear in x, so its second derivative is not zero.
        checkSecondOrder(inputs, "batchNormLeakyRelu", h: 1e-2) { (self.fused($0[0], $0[1], $0[2], alpha: 0.2) * v).sum() }
    }

    func testStatisticsDoNotDependOnTheThreadCount() {
        // Planes (NCHW) and rows (channels-last), each with a penalty's second pass.
        for (shape, ch) in [([16, 8, 16, 16], 8), ([4096, 48], 48)] {
            let x = randomTensor(shape, seed: 550), w = randomTensor([ch], seed: 551), b = randomTensor([ch], seed: 552)
            let g = randomTensor(shape, seed: 553)
            func run() -> [[Float]] {
                let xi = x.requiringGrad(), wi = w.requiringGrad()
                let y = fused(xi, wi, b, alpha: 0.2)
                let first = (y * g).sum().gradients(wrt: [xi, wi])
                let gx = (fused(xi, wi, b, alpha: 0.2) * g).sum().gradients(wrt: [xi], createGraph: true)[0]
                return [y.scalars] + first.map(\.scalars) + (gx * g).square().sum().gradients(wrt: [xi, wi]).map(\.scalars)
            }
            let two = run()
            Runtime.configure(threads: 1)
            let one = run()
            Runtime.configure(threads: 2)
            XCTAssertEqual(one, two, "\(shape)")
        }
    }
}
