import Engine
import TestSupport
import XCTest

/// Finite-difference checks of every op's gradient, each reduced to a scalar through a fixed
/// random projection so that every output element contributes.
final class GradientCheckTests: XCTestCase {
    func testBroadcastingArithmetic() {
        let a = randomTensor([2, 3, 4], seed: 1), b = randomTensor([3, 1], seed: 2)
        let pos = randomTensor([3, 1], seed: 3).abs() + 0.5
        checkGradient([a, b], "add") { project($0[0] + $0[1]) }
        checkGradient([a, b], "sub") { project($0[0] - $0[1]) }
        checkGradient([a, b], "mul") { project($0[0] * $0[1]) }
        checkGradient([a, pos], "div") { project($0[0] / $0[1]) }
        checkGradient([a], "affine") { project($0[0] * 3 - 2) }
        checkGradient([a], "neg") { project(-$0[0]) }
        checkGradient([pos], "scalar / tensor") { project(2 / $0[0]) }
    }

    func testUnaryMath() {
        let x = randomTensor([3, 5], seed: 4)
        let pos = x.abs() + 0.3
        checkGradient([x], "exp") { project($0[0].exp()) }
        checkGradient([pos], "log") { project($0[0].log()) }
        checkGradient([pos], "sqrt") { project($0[0].sqrt()) }
        checkGradient([pos], "pow") { project($0[0].pow(1.7)) }
        checkGradient([x], "square") { project($0[0].square()) }
        // Kinked functions are checked away from their kinks (no element within 0.1 of one).
        let kinkFree = x + x.sign() * 0.1
        checkGradient([kinkFree], "abs", h: 1e-3) { project($0[0].abs()) }
        checkGradient([x], "clamp", h: 1e-3) { project($0[0].clamp(min: -0.5, max: 0.7)) }
        let y = randomTensor([3, 5], seed: 5)
        checkGradient([x, y], "minimum", h: 1e-3) { project($0[0].minimum($0[1])) }
        checkGradient([x, y], "maximum", h: 1e-3) { project($0[0].maximum($0[1])) }
        let cond = x .> y
        checkGradient([x, y], "where") { project(Tensor.select(cond, $0[0], $0[1])) }
    }

    func testActivations() {
        let x = randomTensor([4, 6], seed: 6) * 2
        checkGradient([x], "relu", h: 1e-3) { project($0[0].relu()) }
        checkGradient([x], "leakyRelu", h: 1e-3) { project($0[0].leakyRelu(0.2)) }
        checkGradient([x], "sigmoid") { project($0[0].sigmoid()) }
        checkGradient([x], "tanh") { project($0[0].tanh()) }
        checkGradient([x], "softplus") { project($0[0].softplus()) }
        checkGradient([x], "logSigmoid") { project($0[0].logSigmoid()) }
        let probabilities = x.sigmoid() * 0.8 + 0.1, targets = (randomTensor([4, 6], seed: 9) .> 0)
        checkGradient([probabilities], "binaryCrossEntropy", h: 1e-3) { project($0[0].binaryCrossEntropy(target: targets)) }
        checkGradient([x], "softmax") { project($0[0].softmax(axis: 1)) }
        checkGradient([x], "logSoftmax") { project($0[0].logSoftmax(axis: 0)) }
    }

    /// The fused bias + (leaky) ReLU against finite differences, for [N, F] and NCHW, with and
    /// without a bias; inputs are kept 0.1 away from the kink.
    func testBiasLeakyRelu() {
        for (shape, alpha) in [([4, 5], Float(0.2)), ([2, 3, 2, 3], Float(0)), ([2, 3, 2, 3], Float(0.2))] {
            let b = randomTensor([shape[1]], seed: 61)
            let pre = randomTensor(shape, seed: 62)
            let bShape = [1, shape[1]] + Array(repeating: 1, count: shape.count - 2)
            let x = pre + pre.sign() * 0.1 - b.reshaped(bShape)
            checkGradient([x, b], "biasLeakyRelu \(shape) α \(alpha)", h: 1e-3) {
                project(Tensor.biasLeakyRelu($0[0], bias: $0[1], alpha: alpha))
            }
            checkGradient([x], "leakyRelu without bias \(shape) α \(alpha)", h: 1e-3) {
                project(Tensor.biasLeakyRelu($0[0], bias: nil, alpha: alpha))
            }
            let fused = Tensor.biasLeakyRelu(x, bias: b, alpha: alpha)
            XCTAssertEqual(fused.scalars, (x + b.reshaped(bShape)).leakyRelu(alpha).scalars, "bit-identical to the two ops")
            // With a per-channel scale (batch norm's affine step); x·s + b kept off the kink.
            let s = randomTensor([shape[1]], seed: 66).abs() + 0.5
            let xs = (pre + pre.sign() * 0.1 - b.reshaped(bShape)) / s.reshaped(bShape)
            checkGradient([xs, s, b], "affineLeakyRelu \(shape) α \(alpha)", h: 1e-3) {
                project(Tensor.affineLeakyRelu($0[0], scale: $0[1], shift: $0[2], alpha: alpha))
            }
            checkGradient([xs, s], "affineLeakyRelu without shift \(shape) α \(alpha)", h: 1e-3) {
                project(Tensor.affineLeakyRelu($0[0] - b.reshaped(bShape) / s.reshaped(bShape), scale: $0[1], shift: nil, alpha: alpha))
            }
            XCTAssertEqual(Tensor.affineLeakyRelu(xs, scale: s.reshaped(bShape), shift: b, alpha: alpha).scalars,
                           (xs * s.reshaped(bShape) + b.reshaped(bShape)).leakyRelu(alpha).scalars, "bit-identical to the three ops")
        }
    }

    /// The fused bias + sigmoid / tanh against finite differences (first and second order), for
    /// [N, F] and NCHW, and bit for bit against the two ops, also at a size split over threads.
    func testBiasSigmoidAndTanh() {
        for shape in [[4, 5], [2, 3, 2, 3]] {
            let x = randomTensor(shape, seed: 71), b = randomTensor([shape[1]], seed: 72)
            for activation in [SaturatingActivation.sigmoid, .tanh] {
                let what = "\(activation) \(shape)"
                checkGradient([x, b], what, h: 1e-3) { project(Tensor.biasActivated($0[0], bias: $0[1], activation)) }
                checkSecondOrder([x, b], what, h: 1e-3) { project(Tensor.biasActivated($0[0], bias: $0[1], activation)) }
            }
        }
        for shape in [[4, 5], [2, 3, 2, 3], [256, 784], [64, 16, 14, 14]] {
            let x = randomTensor(shape, seed: 73, scale: 3), b = randomTensor([shape[1]], seed: 74)
            let pre = x + b.reshaped([1, shape[1]] + Array(repeating: 1, count: shape.count - 2))
            XCTAssertEqual(Tensor.biasActivated(x, bias: b, .sigmoid).scalars, pre.sigmoid().scalars, "sigmoid \(shape): bit-identical to the two ops")
            XCTAssertEqual(Tensor.biasActivated(x, bias: b, .tanh).scalars, pre.tanh().scalars, "tanh \(shape): bit-identical to the two ops")
        }
    }

    func testReductions() {
        let x = randomTensor([2, 3, 4], seed: 7)
        checkGradient([x], "sum all") { $0[0].sum() * 1.5 }
        checkGradient([x], "sum axes keepdims") { project($0[0].sum(axes: [0, 2], keepDims: true)) }
        checkGradient([x], "mean axis") { project($0[0].mean(axis: 1)) }
        checkGradient([x], "max axis", h: 1e-3) { project($0[0].max(axis: 2)) }
        checkGradient([x], "variance") { project($0[0].variance(axes: [0, 2])) }
        checkGradient([x], "logSumExp") { project($0[0].logSumExp(axis: 1)) }
        let m = x.moments(axes: [0, 2])
        XCTAssertEqual(m.mean.shape, [1, 3, 1])
    }

    func testShapeOps() {
        let x = randomTensor([2, 3, 4], seed: 8)
        checkGradient([x], "reshape") { project($0[0].reshaped([4, 6])) }
        checkGradient([x], "permute") { project($0[0].permuted([2, 0, 1])) }
        checkGradient([x], "transpose") { project($0[0].transposed(0, 2)) }
        checkGradient([x], "slice") { project($0[0].sliced([0..<2, 1..<3, 1..<4])) }
        checkGradient([x], "pad") { project($0[0].padded([(1, 0), (0, 2), (1, 1)])) }
        checkGradient([randomTensor([3, 1], seed: 9)], "expand") { project($0[0].expanded(to: [2, 3, 4])) }
        let y = randomTensor([2, 2, 4], seed: 10)
        checkGradient([x, y], "concat") { project(Tensor.concat([$0[0], $0[1]], axis: 1)) }
        checkGradient([x, x * 2], "stack") { project(Tensor.stack([$0[0], $0[1]], axis: 1)) }
    }

    func testMatmulAllTransposes() {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let a = randomTensor(ta ? [4, 3] : [3, 4], seed: 11), b = randomTensor(tb ? [5, 4] : [4, 5], seed: 12)
            checkGradient([a, b], "matmul \(ta) \(tb)") { project(Tensor.matmul($0[0], $0[1], transposeA: ta, transposeB: tb)) }
        }
        let a3 = randomTensor([2, 3, 4], seed: 13), b3 = randomTensor([2, 4, 2], seed: 14)
        checkGradient([a3, b3], "batched matmul") { project(Tensor.matmul($0[0], $0[1])) }
        checkGradient([randomTensor([3, 4], seed: 15), randomTensor([2, 4], seed: 16), randomTensor([2], seed: 17)], "linear") {
            project(Tensor.linear($0[0], weight: $0[1], bias: $0[2]))
        }
    }

    /// Above 2 MFLOP a matmul's two gradients run at once, one per thread: they must equal the
    /// products written out, g · op(b)ᵀ and op(a)ᵀ · g in double precision, within float rounding
    /// (a 64×256 · 256×300 product, as in the mlp's layers). A relative tolerance would not do:
    /// elements that cancel to ~0.04 from terms of ~1 carry ~1e-5 of rounding whichever kernel
    /// sums them, and kernels sum in different orders on different CPUs.
    func testLargeMatmulGradientsEqualTheProducts() {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let a = randomTensor(ta ? [256, 64] : [64, 256], seed: 18).requiringGrad()
            let b = randomTensor(tb ? [300, 256] : [256, 300], seed: 19).requiringGrad()
            let g = randomTensor([64, 300], seed: 20)
            Tensor.matmul(a, b, transposeA: ta, transposeB: tb).backward(g)
            let at = ta ? a.detached().transposed() : a.detached(), bt = tb ? b.detached().transposed() : b.detached()
            let da = a.grad!, db = b.grad!
            XCTAssertEqual(da.shape, a.shape)
            XCTAssertEqual(db.shape, b.shape)
            let daRows = ta ? da.transposed() : da, dbRows = tb ? db.transposed() : db
            XCTAssertLessThanOrEqual(productRoundingError(daRows.scalars, doubleProduct(g, bt, false, true)), 1, "dA \(ta) \(tb)")
            XCTAssertLessThanOrEqual(productRoundingError(dbRows.scalars, doubleProduct(at, g, true, false)), 1, "dB \(ta) \(tb)")
        }
    }

    /// Each convolution is linear in each input, so a central difference is exact for any step:
    /// h = 0.5 keeps the difference far above Float32 rounding of a ~500-sized projected sum
    /// (with h = 0.01 a change of summation order alone moved it by 0.007).
    func testConvolutions() {
        let x = randomTensor([2, 3, 7, 6], seed: 18)
        let geos = [ConvGeometry(kernel: 3, stride: 2, padding: 1),
                    ConvGeometry(kernel: (3, 2), stride: (1, 2), padding: (top: 1, left: 0, bottom: 2, right: 1)),
                    ConvGeometry(kernel: 2, stride: 1, padding: 0, dilation: 2)]
        for (i, geo) in geos.enumerated() {
            let w = randomTensor([4, 3, geo.kernelH, geo.kernelW], seed: 19)
            checkGradient([x, w, randomTensor([4], seed: 20)], "conv2d geometry \(i)", h: 0.5) {
                project(Tensor.conv2d($0[0], weight: $0[1], bias: $0[2], geo))
            }
            let small = Tensor.conv2d(x, weight: w, geo)
            let wt = randomTensor([4, 3, geo.kernelH, geo.kernelW], seed: 21)
            checkGradient([small, wt], "convTranspose2d geometry \(i)", h: 0.5) {
                project(Tensor.convTranspose2d($0[0], weight: $0[1], geo, outputSize: (7, 6)))
            }
            checkGradient([x, small], "conv2dWeightGrad geometry \(i)", h: 0.5) { project(Tensor.conv2dWeightGrad($0[0], $0[1], geo)) }
        }
    }

    func testPoolingIndexingDropout() {
        let x = randomTensor([2, 2, 4, 6], seed: 22)
        checkGradient([x], "avgPool2d") { project($0[0].avgPool2d()) }
        checkGradient([x], "maxPool2d", h: 1e-3) { project($0[0].maxPool2d()) }
        let table = randomTensor([5, 3], seed: 23)
        checkGradient([table], "indexSelect") { project($0[0].indexSelect([4, 0, 4, 2])) }
        checkGradient([randomTensor([4, 3], seed: 24)], "indexAdd") { project($0[0].indexAdd(rows: 5, [4, 0, 4, 2])) }
        checkGradient([table], "gatherColumns") { project($0[0].gatherColumns([2, 0, 1, 1, 0])) }
        checkGradient([x], "dropout") { xs in
            var g = RandomGenerator(seed: 5)
            return project(xs[0].dropout(0.3, generator: &g))
        }
    }

    func testBackwardAccumulatesLikePyTorch() {
        let w = randomTensor([3], seed: 25).requiringGrad()
        (w * 2).sum().backward()
        (w * 3).sum().backward()
        assertClose(w.grad!, Tensor.full([3], 5), "accumulated grad")
        w.zeroGrad()
        XCTAssertNil(w.grad)
        // A node consumed twice receives the sum of both paths.
        let x = randomTensor([3], seed: 26).requiringGrad()
        let y = x.square()
        (y + y * 2).sum().backward()
        assertClose(x.grad!, x.detached() * 6, "shared node")
    }

    func testNoGradScopeAndDetach() {
        let x = randomTensor([3], seed: 27).requiringGrad()
        XCTAssertFalse(withoutGrad { x * 2 }.requiresGrad)
        XCTAssertFalse((x.detached() * 2).requiresGrad)
        XCTAssertTrue((x * 2).requiresGrad)
        // d/dx of (x · stop(x)) is stop(x) only.
        let g = (x * x.detached()).sum().gradients(wrt: [x])[0]
        assertClose(g, x.detached(), "detach")
    }

    func testDeepGraphHasNoRecursionLimit() {
        var y = Tensor.ones([4]).requiringGrad()
        let x = y
        for _ in 0..<50_000 { y = y * 1.0001 }
        let g = y.sum().gradients(wrt: [x])[0]
        let expected = Foundation.pow(Double(Float(1.0001)), 50_000.0)
        XCTAssertEqual(Double(g.scalars[0]), expected, accuracy: expected * 2e-3)
    }
}

import Foundation
