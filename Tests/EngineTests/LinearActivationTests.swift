import Engine
import TestSupport
import XCTest

/// `Tensor.linearActivated` (a dense layer, its bias and its activation as one op) against finite
/// differences, first and second order, and bit for bit against the two-op form it replaces
/// (`matmul` then `biasLeakyRelu` or `biasActivated`), forward and backward, at sizes that run on
/// one thread and at the mlp's sizes, which split the product and the gradient pass.
final class LinearActivationTests: XCTestCase {
    static let activations: [LayerActivation] = [.leakyRelu(0.2), .leakyRelu(0), .saturating(.sigmoid), .saturating(.tanh)]

    /// The two-op form: what `Sequential` ran before (without a bias, the product and the
    /// activation's own op).
    func twoOps(_ x: Tensor, _ w: Tensor, _ b: Tensor?, _ activation: LayerActivation) -> Tensor {
        let y = Tensor.matmul(x, w, transposeB: true)
        switch activation {
        case .leakyRelu(let slope): return Tensor.biasLeakyRelu(y, bias: b, alpha: slope)
        case .saturating(let f):
            if let b { return Tensor.biasActivated(y, bias: b, f) }
            return f == .sigmoid ? y.sigmoid() : y.tanh()
        }
    }

    func testAgainstFiniteDifferences() {
        let x = randomTensor([4, 5], seed: 301), w = randomTensor([3, 5], seed: 302), b = randomTensor([3], seed: 303)
        // Leaky ReLU's kink: every pre-activation must lie well away from 0 for the differences.
        let pre = withoutGrad { Tensor.matmul(x, w, transposeB: true) + b }
        XCTAssertGreaterThan(pre.scalars.map(abs).min()!, 0.05, "the seeds put a pre-activation on the kink")
        for activation in Self.activations {
            let what = "linearActivated \(activation)"
            checkGradient([x, w, b], what, h: 1e-3) { project(Tensor.linearActivated($0[0], weight: $0[1], bias: $0[2], activation)) }
            checkSecondOrder([x, w, b], what, h: 1e-3) { project(Tensor.linearActivated($0[0], weight: $0[1], bias: $0[2], activation)) }
        }
        let bare = withoutGrad { Tensor.matmul(x, w, transposeB: true) }
        XCTAssertGreaterThan(bare.scalars.map(abs).min()!, 0.05, "the seeds put a pre-activation on the kink")
        checkGradient([x, w], "linearActivated leaky ReLU without bias", h: 1e-3) {
            project(Tensor.linearActivated($0[0], weight: $0[1], bias: nil, .leakyRelu(0.2)))
        }
    }

    /// Forward values and every gradient equal to the two ops' bit for bit, with and without a
    /// recorded graph for the gradients (the double-backward path composes the same ops).
    func testSameBitsAsTheTwoOps() {
        for (n, inputs, outputs) in [(4, 5, 3), (64, 256, 784), (128, 784, 64), (64, 100, 256), (128, 64, 1)] {
            let x = randomTensor([n, inputs], seed: 311, scale: 2), w = randomTensor([outputs, inputs], seed: 312, scale: 0.2)
            let b = randomTensor([outputs], seed: 313)
            for activation in Self.activations {
                let biases: [Tensor?] = activation == .leakyRelu(0) ? [b] : [b, nil]
                for bias in biases {
                    let what = "\(n)×\(inputs)→\(outputs) \(activation)\(bias == nil ? " without bias" : "")"
                    for createGraph in [false, true] {
                        let leaves = ([x, w] + (bias.map { [$0] } ?? [])).map { $0.requiringGrad() }
                        let fused = Tensor.linearActivated(leaves[0], weight: leaves[1], bias: leaves.count > 2 ? leaves[2] : nil, activation)
                        let plain = twoOps(leaves[0], leaves[1], leaves.count > 2 ? leaves[2] : nil, activation)
                        XCTAssertEqual(fused.scalars, plain.scalars, "\(what): forward")
                        let gf = project(fused).gradients(wrt: leaves, createGraph: createGraph)
                        let gp = project(plain).gradients(wrt: leaves, createGraph: createGraph)
                        for k in leaves.indices {
                            XCTAssertEqual(gf[k].scalars, gp[k].scalars, "\(what): gradient \(k), createGraph \(createGraph)")
                        }
                    }
                }
            }
        }
    }

    /// Only the gradients asked for: a frozen layer (no weight or bias gradient) still passes
    /// the input's on, and a first layer (input without a gradient) still trains, each equal to
    /// the two-op form asked for the same gradients. (Not to the gradients of a pass asked for
    /// all three: that one runs its two products at once, one per thread, while a lone product
    /// is split over both, and only brgemm gives a split product the unsplit one's bits; on an
    /// AVX2 host oneDNN's gemm:jit and OpenBLAS do not.) Then within the two products' rounding
    /// of those.
    func testGradientsOnlyWhereNeeded() {
        let x = randomTensor([64, 256], seed: 321), w = randomTensor([784, 256], seed: 322, scale: 0.1)
        let b = randomTensor([784], seed: 323)
        let xl = x.requiringGrad(), wl = w.requiringGrad(), bl = b.requiringGrad()
        let all = project(twoOps(xl, wl, bl, .saturating(.sigmoid))).gradients(wrt: [xl, wl, bl])
        let onlyX = project(Tensor.linearActivated(xl, weight: w, bias: b, .saturating(.sigmoid))).gradients(wrt: [xl])
        XCTAssertEqual(onlyX[0].scalars, project(twoOps(xl, w, b, .saturating(.sigmoid))).gradients(wrt: [xl])[0].scalars)
        let onlyParameters = project(Tensor.linearActivated(x, weight: wl, bias: bl, .saturating(.sigmoid))).gradients(wrt: [wl, bl])
        let expected = project(twoOps(x, wl, bl, .saturating(.sigmoid))).gradients(wrt: [wl, bl])
        XCTAssertEqual(onlyParameters[0].scalars, expected[0].scalars)
        XCTAssertEqual(onlyParameters[1].scalars, expected[1].scalars)
        for (only, full, what) in [(onlyX[0], all[0], "input"), (onlyParameters[0], all[1], "weight"), (onlyParameters[1], all[2], "bias")] {
            assertClose(only, full, rtol: 0, atol: 1e-5 * full.abs().max().item, "\(what) gradient")
        }
    }
}
