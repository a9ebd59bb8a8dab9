import Engine
import TestSupport
import XCTest

/// Forward values of ops against small hand-computed cases.
final class TensorOpsTests: XCTestCase {
    /// A graph kept with `retainGraph` gives the same gradients on every pass until the last
    /// (default) pass frees it — the case a later pass must not silently turn into zeros.
    func testRetainedGraphGivesTheSameGradientsAgain() {
        let x = randomTensor([3, 4], seed: 11).requiringGrad(), w = randomTensor([4, 2], seed: 12).requiringGrad()
        let loss = Tensor.matmul(x, w).tanh().square().sum()
        let first = loss.gradients(wrt: [x, w], retainGraph: true)
        let second = loss.gradients(wrt: [x, w])
        for (a, b) in zip(first, second) {
            XCTAssertEqual(a.scalars, b.scalars)
            XCTAssertGreaterThan(a.abs().sum().item, 0)
        }
    }

    func testBroadcastingValues() {
        let a = Tensor(shape: [2, 3], [1, 2, 3, 4, 5, 6])
        XCTAssertEqual((a + Tensor([10, 20, 30])).scalars, [11, 22, 33, 14, 25, 36])
        XCTAssertEqual((a * Tensor(shape: [2, 1], [2, 3])).scalars, [2, 4, 6, 12, 15, 18])
        XCTAssertEqual((Tensor(shape: [3, 1], [1, 2, 3]) - Tensor([1, 1])).shape, [3, 2])
        XCTAssertEqual((a .> 3).scalars, [0, 0, 0, 1, 1, 1])
        XCTAssertEqual(Tensor.select(a .> 3, a, -a).scalars, [-1, -2, -3, 4, 5, 6])
    }

    func testReductionsAndShapes() {
        let a = Tensor(shape: [2, 3], [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(a.sum(axis: 0).scalars, [5, 7, 9])
        XCTAssertEqual(a.sum(axis: 1, keepDims: true).shape, [2, 1])
        XCTAssertEqual(a.mean().item, 3.5)
        XCTAssertEqual(a.max(axis: 1).scalars, [3, 6])
        XCTAssertEqual(a.variance().item, 35.0 / 12.0, accuracy: 1e-6)
        XCTAssertEqual(a.transposed().scalars, [1, 4, 2, 5, 3, 6])
        XCTAssertEqual(a.sliced([1..<2, 0..<2]).scalars, [4, 5])
        XCTAssertEqual(Tensor([1, 2]).padded([(1, 2)]).scalars, [0, 1, 2, 0, 0])
        XCTAssertEqual(Tensor.concat([a, a * 10], axis: 1).scalars, [1, 2, 3, 10, 20, 30, 4, 5, 6, 40, 50, 60])
        XCTAssertEqual(Tensor.stack([Tensor([1, 2]), Tensor([3, 4])], axis: 1).scalars, [1, 3, 2, 4])
        XCTAssertEqual(Tensor.arange(0, 5, step: 2).scalars, [0, 2, 4])
        let img = Tensor(shape: [1, 1, 2, 4], [1, 2, 3, 4, 5, 6, 7, 8])
        XCTAssertEqual(img.avgPool2d().scalars, [3.5, 5.5])
        XCTAssertEqual(img.maxPool2d().scalars, [6, 8])
        XCTAssertEqual(Tensor([0, 1000, -1000]).softmax().scalars, [0, 1, 0])
        XCTAssertEqual(Tensor([-100, 100]).sigmoid().scalars, [0, 1])
        XCTAssertEqual(Tensor([-100, 100]).softplus().scalars, [0, 100])
    }

    /// The finiteness check finds NaN, +Inf and −Inf wherever they sit: in the four-vector main
    /// loop, the single-vector rest and the scalar tail (213 = 3·64 + 16 + 5 values).
    func testAllFiniteFindsEveryNonFiniteValueAnywhere() {
        let base = (0..<213).map { Float($0 % 2 == 0 ? 3e38 : -1e-30) }
        XCTAssertTrue(Tensor(base).isAllFinite)
        for position in [0, 63, 64, 191, 192, 207, 208, 212] {
            for bad in [Float.nan, .infinity, -.infinity] {
                var v = base
                v[position] = bad
                XCTAssertFalse(Tensor(v).isAllFinite, "\(bad) at \(position)")
            }
        }
    }

    /// Thousands of hand-offs to the worker threads in a row, as a small model's step makes them:
    /// each result complete (a worker that finished early or missed a job would leave stale or
    /// uninitialized values) and none lost (that would hang).
    func testManyHandOffsInARowGiveCompleteResults() {
        let n = 70_001  // split over the threads: more than twice the 32 K grain
        let x = Tensor((0..<n).map { Float($0 % 1000) })
        for round in 0..<3_000 {
            let y = x * Float(round % 7 + 1)
            if round % 500 == 0 || round == 2_999 {
                let k = Float(round % 7 + 1)
                XCTAssertEqual(y.scalars, x.scalars.map { $0 * k }, "round \(round)")
            } else {
                XCTAssertEqual(y.scalars[n - 1], Float((n - 1) % 1000) * Float(round % 7 + 1), "round \(round)")
            }
        }
    }

    /// The sigmoid's own exp (no libm) against exp in Double, over the range where its value is
    /// neither 0 nor 1 in Float, and the fused gradient g·y·(1 − y) against the same formula.
    /// Max pooling against a direct loop over each window: the first largest value wins (ties),
    /// a NaN anywhere in a window is its value, and the gradient goes to the position it came from.
    func testMaxPoolAgainstDirectWindows() {
        for size in [2, 3] {
            let (n, c, h, w) = (2, 3, 6 * size / 2 * 2, 4 * size)
            var v = randomTensor([n, c, h, w], seed: 70 + UInt64(size)).scalars.map { ($0 * 4).rounded() / 4 }  // ties
            v[5] = .nan; v[h * w + 2 * w + 1] = .nan; v[7 * w] = -.infinity
            let x = Tensor(shape: [n, c, h, w], v).requiringGrad()
            let y = x.maxPool2d(size)
            let (oh, ow) = (h / size, w / size)
            var expectGrad = [Float](repeating: 0, count: v.count)
            for plane in 0..<(n * c) {
                for i in 0..<oh {
                    for j in 0..<ow {
                        var at = -1
                        for a in 0..<size {
                            for b in 0..<size {
                                let k = plane * h * w + (i * size + a) * w + j * size + b
                                if at >= 0 && v[at].isNaN { continue }
                                if at < 0 || v[k].isNaN || v[k] > v[at] { at = k }
                            }
                        }
                        let o = (plane * oh + i) * ow + j
                        if v[at].isNaN { XCTAssertTrue(y.scalars[o].isNaN, "size \(size) output \(o)") } else { XCTAssertEqual(y.scalars[o], v[at], "size \(size) output \(o)") }
                        expectGrad[at] += Float(o + 1)
                    }
                }
            }
            let weights = Tensor(shape: y.shape, (0..<y.count).map { Float($0 + 1) })
            let g = (y * weights).sum().gradients(wrt: [x])[0]
            XCTAssertEqual(g.scalars, expectGrad, "size \(size) gradient positions")
        }
    }

    /// Without a graph, 2×2 max pooling takes its vector path (16 columns at a time) and a
    /// scalar tail: bit for bit the recorded path's values, on row widths that use one, the
    /// other and both, with ties between 0 and −0 (the first in row order wins) and NaNs inside
    /// and outside the vector part.
    func testMaxPoolWithoutGraphMatchesTheRecordedPath() {
        for w in [6, 14, 16, 28, 40] {
            let (n, c, h) = (2, 3, 8)
            var v = randomTensor([n, c, h, w], seed: 90 + UInt64(w)).scalars.map { ($0 * 2).rounded() / 2 }  // ties
            for k in stride(from: 0, to: v.count, by: 5) where v[k] == 0 { v[k] = -0.0 }
            v[3] = .nan; v[w * h + w - 1] = .nan; v[2 * w * h + 2] = -.infinity
            let x = Tensor(shape: [n, c, h, w], v)
            let values = withoutGrad { x.maxPool2d(2) }.scalars
            let recorded = x.requiringGrad().maxPool2d(2).scalars
            XCTAssertEqual(values.count, recorded.count)
            for (k, (a, b)) in zip(values, recorded).enumerated() {
                XCTAssertEqual(a.bitPattern, b.bitPattern, "width \(w) output \(k): \(a) against \(b)")
            }
            XCTAssertTrue(values.contains { $0 == 0 && $0.sign == .minus }, "width \(w): no −0 kept")
        }
    }

    /// A join along the first axis large enough to be split over the threads, whose chunk
    /// boundaries fall inside parts (sizes 5, 70,003 and 11 rows of 1): every element where an
    /// index-by-index copy puts it, and its gradient back in each part's rows.
    func testConcatAlongTheFirstAxisSplitOverThreads() {
        let sizes = [5, 70_003, 11]
        let parts = sizes.enumerated().map { k, n in Tensor(shape: [n, 1], (0..<n).map { Float(k * 100_000 + $0) }).requiringGrad() }
        let joined = Tensor.concat(parts, axis: 0)
        XCTAssertEqual(joined.shape, [sizes.reduce(0, +), 1])
        var expected: [Float] = []
        for (k, n) in sizes.enumerated() { expected += (0..<n).map { Float(k * 100_000 + $0) } }
        XCTAssertEqual(joined.scalars, expected)
        let weights = Tensor(shape: joined.shape, (0..<joined.count).map { Float($0 % 7) })
        let grads = (joined * weights).sum().gradients(wrt: parts)
        var start = 0
        for (k, n) in sizes.enumerated() {
            XCTAssertEqual(grads[k].scalars, (start..<(start + n)).map { Float($0 % 7) }, "part \(k)")
            start += n
        }
    }

    /// Clamp's vector path (16 lanes) and its tail give the closed form, NaN and infinities included.
    func testClampKeepsNaNAndLimitsInfinities() {
        var values = (0..<37).map { Float($0 - 18) * 0.1 }
        values[3] = .nan; values[17] = .infinity; values[20] = -.infinity; values[35] = .nan
        let x = Tensor(shape: [37], values)
        for (lo, hi) in [(Float(-0.5), Float(0.7)), (0, .infinity)] {
            let y = x.clamp(min: lo, max: hi).scalars
            for (i, v) in values.enumerated() {
                if v.isNaN { XCTAssertTrue(y[i].isNaN, "element \(i)"); continue }
                XCTAssertEqual(y[i], v < lo ? lo : (v > hi ? hi : v), "element \(i) of [\(lo), \(hi)]")
            }
        }
    }

    func testSigmoidAgainstDoubleReference() {
        let xs = stride(from: Float(-88), through: 30, by: 0.0173).map { $0 }
        let y = Tensor(xs).sigmoid()
        var worst = 0.0
        for (x, v) in zip(xs, y.scalars) {
            let exact = 1 / (1 + Foundation.exp(-Double(x)))
            guard exact > 1e-37 else { continue }  // below: a denormal, flushed to 0
            worst = max(worst, abs(Double(v) - exact) / exact)
        }
        XCTAssertLessThan(worst, 1e-6, "worst relative error of sigmoid")
        // Tail lanes (count not a multiple of 16) give the same value as vector lanes.
        let odd = Tensor(Array(xs.prefix(37)))
        XCTAssertEqual(odd.sigmoid().scalars, Array(y.scalars.prefix(37)))
        let g = Tensor(xs.map { sinf($0) })
        let x = Tensor(xs).requiringGrad()
        let grad = gradients(of: (x.sigmoid() * g).sum(), wrt: [x])[0]
        for (i, (dy, yi)) in zip(grad.scalars, y.scalars).enumerated() where i % 97 == 0 {
            XCTAssertEqual(dy, g.scalars[i] * yi * (1 - yi), "gradient at \(xs[i])")
        }
    }

    /// The engine's own tanh against tanh in Double: across the switch from the polynomial to the
    /// quotient at 0.625, in the tails, for tiny values (where a quotient alone would cancel) and
    /// at ±0, ±∞ and NaN; the fused gradient g·(1 − y²) against the same formula.
    func testTanhAgainstDoubleReference() {
        var xs = stride(from: Float(-12), through: 12, by: 0.00173).map { $0 }
        xs += stride(from: Float(0.6), through: 0.65, by: 0.0000731).flatMap { [$0, -$0] }
        xs += (1...60).map { Float(sign: .plus, exponent: -$0, significand: 1) }.flatMap { [$0, -$0] }
        let y = Tensor(xs).tanh().scalars
        var worst = 0.0
        for (x, v) in zip(xs, y) {
            let exact = Foundation.tanh(Double(x))
            let ulp = Double(Float(exact).ulp)
            worst = max(worst, abs(Double(v) - exact) / ulp)
        }
        XCTAssertLessThan(worst, 3, "worst error of tanh in ulp")
        let special = Tensor([0.0, -0.0, .infinity, -.infinity, .nan, 40, -40]).tanh().scalars
        XCTAssertEqual(special[0].sign, .plus)
        XCTAssertEqual(special[1].sign, .minus, "tanh(−0) is −0")
        XCTAssertEqual(Array(special[2...3]), [1, -1])
        XCTAssertTrue(special[4].isNaN)
        XCTAssertEqual(Array(special[5...6]), [1, -1])
        // Tail lanes (count not a multiple of 16) give the same value as vector lanes.
        XCTAssertEqual(Tensor(Array(xs.prefix(37))).tanh().scalars, Array(y.prefix(37)))
        let g = Tensor(xs.map { sinf($0) })
        let x = Tensor(xs).requiringGrad()
        let grad = gradients(of: (x.tanh() * g).sum(), wrt: [x])[0]
        for (i, (dy, yi)) in zip(grad.scalars, y).enumerated() where i % 97 == 0 {
            XCTAssertEqual(dy, g.scalars[i] * (1 - yi * yi), "gradient at \(xs[i])")
        }
    }

    /// Sum and max over every subset of axes of a 4-d tensor (adjacent axes are reduced as one
    /// run, columns split over threads) against loops in Double.
    func testReductionsOverEveryAxisSubset() {
        let shape = [3, 5, 4, 37]
        let x = randomTensor(shape, seed: 5)
        let v = x.scalars
        for mask in 1..<(1 << 4) {
            let axes = (0..<4).filter { mask & (1 << $0) != 0 }
            let outShape = (0..<4).map { axes.contains($0) ? 1 : shape[$0] }
            var sums = [Double](repeating: 0, count: outShape.reduce(1, *))
            var maxs = [Float](repeating: -.infinity, count: sums.count)
            for i in 0..<v.count {
                var rem = i, o = 0, mul = 1
                var idx = [Int](repeating: 0, count: 4)
                for d in stride(from: 3, through: 0, by: -1) { idx[d] = rem % shape[d]; rem /= shape[d] }
                for d in stride(from: 3, through: 0, by: -1) { o += (axes.contains(d) ? 0 : idx[d]) * mul; mul *= outShape[d] }
                sums[o] += Double(v[i]); maxs[o] = Swift.max(maxs[o], v[i])
            }
            let s = x.sum(axes: axes, keepDims: true), m = x.max(axes: axes, keepDims: true)
            XCTAssertEqual(s.shape, outShape, "sum over \(axes)")
            for (a, b) in zip(s.scalars, sums) { XCTAssertEqual(Double(a), b, accuracy: 1e-4 * Swift.max(1, abs(b)), "sum over \(axes)") }
            XCTAssertEqual(m.scalars, maxs, "max over \(axes)")
        }
        // Big enough to be split over threads: a [64, 128, 14, 14] batch-norm reduction.
        let big = randomTensor([64, 128, 14, 14], seed: 6)
        let perChannel = big.sum(axes: [0, 2, 3]).scalars
        let bv = big.scalars
        for c in [0, 1, 77, 127] {
            var ref = 0.0
            for n in 0..<64 { for k in 0..<196 { ref += Double(bv[(n * 128 + c) * 196 + k]) } }
            XCTAssertEqual(Double(perChannel[c]), ref, accuracy: 1e-3 * Swift.max(1, abs(ref)))
        }
        XCTAssertEqual(Double(big.sum(axes: [0]).sum().item), Double(big.sum().item), accuracy: 0.5)
        // Column sums (a bias gradient) add the rows in order, in Float, in vector and tail
        // columns alike and however the columns are split over threads: bit for bit the
        // sequential sum, so a gradient does not depend on the thread count. (One column is a
        // contiguous sum, with vector accumulators: not this order.)
        for (rows, columns) in [(65, 147), (64, 784), (1, 20), (5, 2)] {
            let m = randomTensor([rows, columns], seed: 8).scalars
            var sequential = Array(m[0..<columns])
            for r in 1..<rows { for c in 0..<columns { sequential[c] += m[r * columns + c] } }
            XCTAssertEqual(Tensor(shape: [rows, columns], m).sum(axes: [0]).scalars, sequential, "column sums of [\(rows), \(columns)]")
        }
    }

    func testCopyOnWrite() {
        let a = Tensor([1, 2, 3])
        var b = a
        b.withUnsafeMutableBufferPointer { $0[0] = 9 }
        XCTAssertEqual(a.scalars, [1, 2, 3])
        XCTAssertEqual(b.scalars, [9, 2, 3])
    }

    /// conv2d by a naive loop: the reference for the im2col, col2im and dual-form kernels.
    func directConv(_ x: Tensor, _ w: Tensor, _ g: ConvGeometry) -> Tensor {
        let (n, c, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let o = w.shape[0]
        let (oh, ow) = g.smallSize(big: h, wd)
        let xs = x.scalars, ws = w.scalars
        var out = [Float](repeating: 0, count: n * o * oh * ow)
        for b in 0..<n { for oc in 0..<o { for i in 0..<oh { for j in 0..<ow {
            var s: Float = 0
            for ic in 0..<c { for ki in 0..<g.kernelH { for kj in 0..<g.kernelW {
                let ih = i * g.strideH - g.padTop + ki * g.dilationH, iw = j * g.strideW - g.padLeft + kj * g.dilationW
                if ih >= 0 && ih < h && iw >= 0 && iw < wd {
                    s += xs[((b * c + ic) * h + ih) * wd + iw] * ws[((oc * c + ic) * g.kernelH + ki) * g.kernelW + kj]
                }
            } } }
            out[((b * o + oc) * oh + i) * ow + j] = s
        } } } }
        return Tensor(shape: [n, o, oh, ow], out)
    }

    func testConvolutionAgainstDirectLoops() {
        // (input channels, output channels, geometry): strided, and stride 1 with fewer and with
        // more output than input channels (which take the dual flipped-kernel form).
        let cases: [(Int, Int, ConvGeometry)] = [
            (3, 4, ConvGeometry(kernel: (3, 2), stride: (2, 1), padding: (top: 1, left: 0, bottom: 2, right: 1))),
            (6, 1, ConvGeometry(kernel: (3, 3), stride: (1, 1), padding: (top: 1, left: 2, bottom: 0, right: 1))),
            (2, 5, ConvGeometry(kernel: (3, 2), stride: (1, 1), padding: (top: 2, left: 1, bottom: 1, right: 0))),
            // ≥ 16 channels each side: oneDNN's kernels where available. Keras "same" stride 2
            // (a padded row oneDNN never reaches), and a dilated stride-1 case.
            (16, 24, ConvGeometry(kernel: (5, 5), stride: (2, 2), padding: (top: 1, left: 1, bottom: 2, right: 2))),
            (24, 16, ConvGeometry(kernel: (3, 3), stride: (1, 1), padding: (top: 2, left: 2, bottom: 2, right: 2), dilation: (2, 2))),
        ]
        for (k, (c, o, geo)) in cases.enumerated() {
            let x = randomTensor([5, c, 9, 8], seed: 60 + UInt64(k)), w = randomTensor([o, c, geo.kernelH, geo.kernelW], seed: 70 + UInt64(k))
            assertMatchesDirectLoops(x, w, geo, seeds: (80 + UInt64(k), 90 + UInt64(k)), "case \(k)")
        }
    }

    /// conv2d(x, w) against direct loops; convTranspose2d as its adjoint, ⟨conv(x), v⟩ =
    /// ⟨x, convT(v)⟩; and the weight gradient as d⟨conv(x, w), v⟩/dw: conv is linear in w, so
    /// ⟨dw, u⟩ = ⟨conv(x, u), v⟩ for any direction u. `seeds` seed v and u.
    func assertMatchesDirectLoops(_ x: Tensor, _ w: Tensor, _ geo: ConvGeometry, seeds: (v: UInt64, u: UInt64), _ what: String,
                                  file: StaticString = #filePath, line: UInt = #line) {
        let y = Tensor.conv2d(x, weight: w, geo)
        assertClose(y, directConv(x, w, geo), "\(what): conv2d vs direct", file: file, line: line)
        let v = randomTensor(y.shape, seed: seeds.v)
        let lhs = (y * v).sum().item
        let rhs = (x * Tensor.convTranspose2d(v, weight: w, geo, outputSize: (x.shape[2], x.shape[3]))).sum().item
        XCTAssertEqual(lhs, rhs, accuracy: 1e-3 * Swift.abs(lhs) + 1e-3, "\(what): adjoint", file: file, line: line)
        let u = randomTensor(w.shape, seed: seeds.u)
        let viaGrad = (Tensor.conv2dWeightGrad(x, v, geo) * u).sum().item, viaConv = (directConv(x, u, geo) * v).sum().item
        XCTAssertEqual(viaGrad, viaConv, accuracy: 1e-3 * Swift.abs(viaConv) + 1e-3, "\(what): weight grad", file: file, line: line)
    }

    /// Forty seeded random geometries on the default path (oneDNN from 16 channels where it is
    /// available, else unfold + sgemm; the 1-output-channel forms): kernels 1–5 a side, strides
    /// 1–3, dilation 1–2, each side's padding on its own, rectangular images, against direct loops
    /// and the same adjoint identities. Under `scripts/sanitize.sh address` this is also
    /// the unfold and fold loops' bounds check at their edges.
    func testRandomGeometriesAgainstDirectLoops() {
        var rng = RandomGenerator(seed: 32)
        func pick(_ values: [Int]) -> Int { values[rng.nextInt(below: values.count)] }
        for k in 0..<40 {
            let (kh, kw) = (1 + rng.nextInt(below: 5), 1 + rng.nextInt(below: 5))
            let (dh, dw) = (1 + rng.nextInt(below: 2), 1 + rng.nextInt(below: 2))
            let pad = (top: rng.nextInt(below: kh), left: rng.nextInt(below: kw), bottom: rng.nextInt(below: kh), right: rng.nextInt(below: kw))
            let geo = ConvGeometry(kernel: (kh, kw), stride: (1 + rng.nextInt(below: 3), 1 + rng.nextInt(below: 3)), padding: pad, dilation: (dh, dw))
            // At least one output pixel: the padded image holds one dilated kernel.
            let h = Swift.max(1, (kh - 1) * dh + 1 - pad.top - pad.bottom) + rng.nextInt(below: 8)
            let wd = Swift.max(1, (kw - 1) * dw + 1 - pad.left - pad.right) + rng.nextInt(below: 8)
            let (n, c, o) = (1 + rng.nextInt(below: 3), pick([1, 2, 3, 16, 24]), pick([1, 4, 16, 24]))
            let what = "random case \(k): n \(n), \(c)→\(o), \(h)×\(wd), \(geo)"
            let x = randomTensor([n, c, h, wd], seed: 3400 + UInt64(k)), w = randomTensor([o, c, kh, kw], seed: 3500 + UInt64(k))
            assertMatchesDirectLoops(x, w, geo, seeds: (3600 + UInt64(k), 3700 + UInt64(k)), what)
        }
    }

    /// Where oneDNN is used, its three convolutions agree with the engine's own unfold + sgemm
    /// path on the dcgan-bn and Keras geometries (two independent implementations), in both the
    /// blocked and the channels-last layouts oneDNN is asked for.
    func testOneDNNMatchesTheGEMMPath() throws {
        let saved = (Runtime.usesOneDNN, Runtime.usesOneDNNMatmul)
        defer { (Runtime.usesOneDNN, Runtime.usesOneDNNMatmul) = saved }
        Runtime.usesOneDNN = true
        // The unfold path's products on OpenBLAS: oneDNN's matmul would make it less independent.
        Runtime.usesOneDNNMatmul = false
        try XCTSkipUnless(Runtime.usesOneDNN, "oneDNN is not available here")
        let cases: [(Int, Int, Int, ConvGeometry, (Int, Int))] = [
            // (n, big channels, small channels, geometry, big size)
            (3, 16, 32, ConvGeometry(kernel: (5, 5), stride: (2, 2), padding: (top: 1, left: 1, bottom: 2, right: 2)), (14, 14)),
            (2, 32, 16, ConvGeometry(kernel: 5, stride: 2, padding: 2), (14, 14)),  // convT with output padding 1
            (2, 16, 16, ConvGeometry(kernel: 5, stride: 1, padding: 2), (7, 7)),
            // Outputs of 14×14 and more take oneDNN's channels-last kernels (`wants_nhwc`), with
            // channel counts that are not multiples of 16.
            (2, 24, 20, ConvGeometry(kernel: (5, 5), stride: (2, 2), padding: (top: 1, left: 1, bottom: 2, right: 2)), (28, 28)),
            (2, 20, 16, ConvGeometry(kernel: 3, stride: 1, padding: 1), (14, 15)),
        ]
        for (k, (n, c, o, geo, big)) in cases.enumerated() {
            let small = geo.smallSize(big: big.0, big.1)
            let x = randomTensor([n, c, big.0, big.1], seed: 100 + UInt64(k))
            let w = randomTensor([o, c, geo.kernelH, geo.kernelW], seed: 110 + UInt64(k), scale: 0.2)
            let v = randomTensor([n, o, small.0, small.1], seed: 120 + UInt64(k))
            let ops: [() -> Tensor] = [
                { Tensor.conv2d(x, weight: w, geo) }, { Tensor.convTranspose2d(v, weight: w, geo, outputSize: big) },
                { Tensor.conv2dWeightGrad(x, v, geo) },
            ]
            for (i, op) in ops.enumerated() {
                // Each op once through the oneDNN module and once without it, counting its calls:
                // equal bits do not tell the paths apart (on AVX-512, oneDNN's weight gradient of
                // case 2 sums in OpenBLAS's order and gives the same bits).
                var calls = Runtime.oneDNNConvolutionCalls
                let a = op()
                XCTAssertGreaterThan(Runtime.oneDNNConvolutionCalls, calls, "case \(k) op \(i): oneDNN did not run it")
                Runtime.usesOneDNN = false
                calls = Runtime.oneDNNConvolutionCalls
                let b = op()
                XCTAssertEqual(Runtime.oneDNNConvolutionCalls, calls, "case \(k) op \(i): oneDNN ran the GEMM path's op")
                Runtime.usesOneDNN = true
                XCTAssertEqual(a.shape, b.shape)
                assertClose(a, b, rtol: 1e-4, atol: 1e-4, "case \(k) op \(i)")
            }
        }
    }

    /// A strided transposed convolution's backward unfolds the upstream gradient once for both
    /// gradients when no graph is recorded; the results must equal the two separate primitives
    /// (taken with createGraph, which records and so uses them) bit for bit.
    func testFusedTransposedConvolutionBackwardMatchesTheSeparatePrimitives() {
        // Keras "same" on stride 2 (one more row/column at the bottom/right), odd batch.
        let geo = ConvGeometry(kernel: (5, 5), stride: (2, 2), padding: (1, 1, 2, 2))
        for n in [1, 3, 4] {
            let x = randomTensor([n, 6, 5, 5], seed: 1).requiringGrad()
            let w = randomTensor([6, 4, 5, 5], seed: 2, scale: 0.3).requiringGrad()
            func loss() -> Tensor { project(Tensor.convTranspose2d(x, weight: w, geo, outputSize: (10, 10))) }
            let fused = gradients(of: loss(), wrt: [x, w])
            let separate = gradients(of: loss(), wrt: [x, w], createGraph: true)
            for (a, b) in zip(fused, separate) {
                XCTAssertEqual(a.shape, b.shape)
                XCTAssertGreaterThan(b.abs().max().item, 0)
                XCTAssertEqual(a.scalars.map(\.bitPattern), b.scalars.map(\.bitPattern), "n \(n)")
            }
        }
    }

    /// `Tensor.mean(of:count:)` and `binaryCrossEntropyMean(of:count:target:)` (the planned dense
    /// step's metrics, on raw buffers) are `mean()` and `binaryCrossEntropy(target:).mean()` of a
    /// tensor bit for bit, at lengths around the vector width and with saturated probabilities.
    func testMeansOnBuffersMatchTheTensorOps() {
        var rng = RandomGenerator(seed: 91)
        for n in [1, 15, 16, 17, 64, 100] {
            var p = Tensor.rand([n], generator: &rng).scalars
            p[0] = 0
            if n > 2 { p[n - 1] = 1 }
            let t = Tensor(p)
            p.withUnsafeBufferPointer { b in
                XCTAssertEqual(Tensor.mean(of: b.baseAddress!, count: n).bitPattern, t.mean().item.bitPattern, "mean of \(n)")
                for target: Float in [0, 1, 0.9] {
                    let expected = t.binaryCrossEntropy(target: Tensor.full([n], target)).mean().item
                    XCTAssertEqual(Tensor.binaryCrossEntropyMean(of: b.baseAddress!, count: n, target: target).bitPattern,
                                   expected.bitPattern, "BCE mean of \(n), target \(target)")
                }
            }
        }
    }
}
