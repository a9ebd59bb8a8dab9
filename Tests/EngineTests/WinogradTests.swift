import Engine
import TestSupport
import XCTest

/// The Winograd forward, input gradient and weight gradient of channels-last 5×5, stride-2,
/// pad-2 convolutions (winograd.c), with 2×2 tiles (blocked) and 4×4 tiles (staged), against
/// direct sums in Double here, across output sides that the tiles cover exactly and not, channel
/// counts of one and several vectors, several blocks of tiles with a partial last one; that the
/// thread count does not change the bits it promises not to; which calls the default mode takes;
/// that a transformed kernel is reused only for equal weights; and a gradient penalty through
/// them differentiated again.
final class WinogradTests: XCTestCase {
    let geometry = ConvGeometry(kernel: 5, stride: 2, padding: 2)
    /// The two paddings it takes: 2 before and 1 after (PyTorch's padding 2, the critic's), and
    /// 1 before and 2 after (Keras's "same", the dcgan generator's).
    let paddings: [(top: Int, geometry: ConvGeometry)] = [
        (2, ConvGeometry(kernel: 5, stride: 2, padding: 2).withChannelsLast(true)),
        (1, ConvGeometry(kernel: (5, 5), stride: (2, 2), padding: (1, 1, 2, 2)).withChannelsLast(true)),
    ]

    // (n, input channels, output channels, input side): the forward and weight gradient write the
    // output channels (a multiple of 64), the input gradient the input channels (`dataCases`, the
    // same with the two swapped).
    let cases: [(Int, Int, Int, Int)] = [
        (2, 16, 64, 8),    // 4×4 outputs: tiles cover them exactly
        (3, 32, 128, 10),  // 5×5: the last tile of a row and column half outside; two panels of 64
        (2, 48, 64, 6),    // three vectors of input channels, 3×3 outputs
        (1, 16, 64, 2),    // one output pixel: one tile, mostly padding
        (17, 16, 64, 28),  // 833 2×2 tiles: 17 blocks of 48 and a partial one; 272 4×4 tiles: two chunks
    ]
    var dataCases: [(Int, Int, Int, Int)] { cases.map { ($0.0, $0.2, $0.1, $0.3) } }

    override func setUpWithError() throws {
        try XCTSkipUnless(Runtime.usesOneDNN, "oneDNN is not available here (the path sits behind its entry point)")
        try XCTSkipUnless(Runtime.cpuHasAVX512 || Runtime.cpuHasAVX2, "neither AVX-512 nor AVX2 here: the Winograd passes never run")
    }

    /// The tile sides, and how far from a direct sum in Double each may be, as a fraction of the
    /// largest output: F(2×2, 3×3)'s transforms use only ±1 and ½ (measured up to 6.1e-7, about
    /// five units in the last place); F(4×4, 3×3)'s 4, 5, 8 and sixths (measured up to 4.8e-6, about forty units in the
    /// last place).
    let tiles: [(side: Int, bound: Double)] = [(2, 4e-6), (4, 2e-5)]

    /// `body` with the Winograd path taking every call that fits (`mode` 2; 1: the default mode),
    /// with `tile`×`tile` tiles (0: each call's own), and the calls it took.
    func onWinograd<T>(mode: Int = 2, tile: Int = 2, _ body: () -> T) -> (result: T, calls: Int) {
        let saved = (Runtime.winogradConvolutions, Runtime.winogradTile)
        defer { (Runtime.winogradConvolutions, Runtime.winogradTile) = saved }
        Runtime.winogradConvolutions = mode
        Runtime.winogradTile = tile
        let before = Runtime.winogradCalls
        let result = body()
        return (result, Runtime.winogradCalls - before)
    }

    /// `body(y, w, x)` with the NCHW output, OIHW weight and NCHW input indices of every product
    /// a direct convolution sums (output (i, j) through tap (t, u) meets input (2i + t − top,
    /// 2j + u − top) inside the image): the forward adds w · x into y, the input gradient w · dy
    /// into dx, the weight gradient dy · x into dw.
    func forEachProduct(n: Int, c: Int, o: Int, size: Int, top: Int = 2, _ body: (Int, Int, Int) -> Void) {
        let side = size / 2
        for b in 0..<n {
            for oc in 0..<o {
                for i in 0..<side {
                    for j in 0..<side {
                        for ci in 0..<c {
                            for t in 0..<5 {
                                let r = 2 * i + t - top
                                guard r >= 0 && r < size else { continue }
                                for u in 0..<5 {
                                    let q = 2 * j + u - top
                                    guard q >= 0 && q < size else { continue }
                                    body(((b * o + oc) * side + i) * side + j, ((oc * c + ci) * 5 + t) * 5 + u,
                                         ((b * c + ci) * size + r) * size + q)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// `got` within `bound` of the largest of `want`, a direct sum in Double, which must not be trivially small.
    func assertNearDirectSum(_ got: [Float], _ want: [Double], bound: Double, _ what: String,
                             file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.count, want.count, what, file: file, line: line)
        let largest = want.map { Swift.abs($0) }.max() ?? 0
        var worst = 0.0
        for (a, b) in zip(got, want) { worst = Swift.max(worst, Swift.abs(Double(a) - b)) }
        XCTAssertGreaterThan(largest, 1, "\(what): trivially small", file: file, line: line)
        XCTAssertLessThan(worst, bound * largest, "\(what): largest difference \(worst), largest output \(largest)",
                          file: file, line: line)
    }

    func testForwardMatchesADirectConvolutionInDouble() {
        for (k, (n, c, o, size)) in cases.enumerated() {
            let x = randomTensor([n, c, size, size], seed: 3600 + UInt64(k))
            let w = randomTensor([o, c, 5, 5], seed: 3610 + UInt64(k), scale: 0.3)
            let (xs, ws) = (x.scalars, w.scalars)
            for (top, g) in paddings {
                var want = [Double](repeating: 0, count: n * o * (size / 2) * (size / 2))
                forEachProduct(n: n, c: c, o: o, size: size, top: top) { yi, wi, xi in want[yi] += Double(ws[wi]) * Double(xs[xi]) }
                for tile in tiles {
                    let what = "case \(k), padding \(top), tile \(tile.side)"
                    let (y, calls) = onWinograd(tile: tile.side) { Tensor.conv2d(x.permuted([0, 2, 3, 1]), weight: w, g) }
                    XCTAssertEqual(calls, 1, "\(what): the call on the Winograd forward")
                    XCTAssertEqual(y.shape, [n, size / 2, size / 2, o], what)
                    assertNearDirectSum(y.permuted([0, 3, 1, 2]).scalars, want, bound: tile.bound, what)
                }
            }
        }
    }

    func testInputGradientMatchesADirectSumInDouble() {
        for (k, (n, c, o, size)) in dataCases.enumerated() {
            let dy = randomTensor([n, o, size / 2, size / 2], seed: 3670 + UInt64(k))
            let w = randomTensor([o, c, 5, 5], seed: 3680 + UInt64(k), scale: 0.3)
            let (dys, ws) = (dy.scalars, w.scalars)
            for (top, g) in paddings {
                var want = [Double](repeating: 0, count: n * c * size * size)
                forEachProduct(n: n, c: c, o: o, size: size, top: top) { yi, wi, xi in want[xi] += Double(ws[wi]) * Double(dys[yi]) }
                for tile in tiles {
                    let what = "case \(k), padding \(top), tile \(tile.side)"
                    let (dx, calls) = onWinograd(tile: tile.side) {
                        Tensor.convTranspose2d(dy.permuted([0, 2, 3, 1]), weight: w, g, outputSize: (size, size))
                    }
                    XCTAssertEqual(calls, 1, "\(what): the call on the Winograd input gradient")
                    XCTAssertEqual(dx.shape, [n, size, size, c], what)
                    assertNearDirectSum(dx.permuted([0, 3, 1, 2]).scalars, want, bound: tile.bound, what)
                }
            }
        }
    }

    func testWeightGradientMatchesADirectSumInDouble() {
        for (k, (n, c, o, size)) in cases.enumerated() {
            let x = randomTensor([n, c, size, size], seed: 3690 + UInt64(k))
            let dy = randomTensor([n, o, size / 2, size / 2], seed: 3700 + UInt64(k))
            let (xs, dys) = (x.scalars, dy.scalars)
            for (top, g) in paddings {
                var want = [Double](repeating: 0, count: o * c * 25)
                forEachProduct(n: n, c: c, o: o, size: size, top: top) { yi, wi, xi in want[wi] += Double(dys[yi]) * Double(xs[xi]) }
                for tile in tiles {
                    let what = "case \(k), padding \(top), tile \(tile.side)"
                    let (dw, calls) = onWinograd(tile: tile.side) {
                        Tensor.conv2dWeightGrad(x.permuted([0, 2, 3, 1]), dy.permuted([0, 2, 3, 1]), g)
                    }
                    XCTAssertEqual(calls, 1, "\(what): the call on the Winograd weight gradient")
                    XCTAssertEqual(dw.shape, [o, c, 5, 5], what)
                    assertNearDirectSum(dw.scalars, want, bound: tile.bound, what)
                }
            }
        }
    }

    /// Every output value is one thread's, summed in a fixed order: one thread and two give the
    /// same bits, for the forward and input gradient with either tile, and for the 4×4 tiles'
    /// weight gradient (each position's sum over all tiles on one thread).
    func testBitsDoNotDependOnTheThreadCount() {
        let g = geometry.withChannelsLast(true)
        defer { Runtime.configure() }
        for tile in [2, 4] {
            for (k, (n, c, o, size)) in [cases[1], cases[4]].enumerated() {
                let x = randomTensor([n, size, size, c], seed: 3620 + UInt64(k))
                let w = randomTensor([o, c, 5, 5], seed: 3630 + UInt64(k), scale: 0.3)
                let dy = randomTensor([n, size / 2, size / 2, c], seed: 3635 + UInt64(k))
                let wd = randomTensor([c, o, 5, 5], seed: 3636 + UInt64(k), scale: 0.3)  // o written: a multiple of 64
                let dyw = randomTensor([n, size / 2, size / 2, o], seed: 3637 + UInt64(k))
                func run() -> (result: [Tensor], calls: Int) {
                    onWinograd(tile: tile) {
                        [Tensor.conv2d(x, weight: w, g), Tensor.convTranspose2d(dy, weight: wd, g, outputSize: (size, size))]
                            + (tile == 4 ? [Tensor.conv2dWeightGrad(x, dyw, g)] : [])
                    }
                }
                Runtime.configure(threads: 2)
                let two = run()
                Runtime.configure(threads: 1)
                let one = run()
                XCTAssertEqual(two.calls + one.calls, tile == 4 ? 6 : 4, "case \(k), tile \(tile)")
                for i in one.result.indices {
                    XCTAssertEqual(one.result[i].scalars.map(\.bitPattern), two.result[i].scalars.map(\.bitPattern),
                                   "case \(k), tile \(tile), pass \(i)")
                }
            }
        }
    }

    /// The AVX-512 copy of the kernels (a register tile's 64 columns at once, sixteen channels a
    /// vector) and the AVX2 copy (16 columns in each of four passes, eight channels a vector) do
    /// the same float operations in the same order: the three passes, with either tile, must give
    /// the same bits. Only an AVX-512 CPU runs both.
    func testAVX512KernelsGiveTheAVX2KernelsBits() throws {
        try XCTSkipUnless(Runtime.cpuHasAVX512, "no AVX-512 here: only the AVX2 kernels run")
        let g = geometry.withChannelsLast(true)
        defer { Runtime.winogradWideVectors = true }
        for tile in [2, 4] {
            for (k, (n, c, o, size)) in [cases[2], cases[4]].enumerated() {
                let x = randomTensor([n, size, size, c], seed: 3820 + UInt64(k))
                let w = randomTensor([o, c, 5, 5], seed: 3830 + UInt64(k), scale: 0.3)
                let dy = randomTensor([n, size / 2, size / 2, c], seed: 3835 + UInt64(k))
                let wd = randomTensor([c, o, 5, 5], seed: 3836 + UInt64(k), scale: 0.3)
                let dyw = randomTensor([n, size / 2, size / 2, o], seed: 3837 + UInt64(k))
                func run(wide: Bool) -> (result: [Tensor], calls: Int) {
                    Runtime.winogradWideVectors = wide
                    XCTAssertEqual(Runtime.winogradWideVectors, wide)
                    // Other weights of the same shapes first, so that the passes below transform
                    // their kernels with this copy instead of reusing the other copy's transform.
                    _ = onWinograd(tile: tile) {
                        [Tensor.conv2d(x, weight: w * 2, g), Tensor.convTranspose2d(dy, weight: wd * 2, g, outputSize: (size, size))]
                    }
                    let reusedBefore = Runtime.winogradReusedKernels
                    defer { XCTAssertEqual(Runtime.winogradReusedKernels, reusedBefore, "case \(k), tile \(tile): a kept transform reused") }
                    return onWinograd(tile: tile) {
                        [Tensor.conv2d(x, weight: w, g), Tensor.convTranspose2d(dy, weight: wd, g, outputSize: (size, size)),
                         Tensor.conv2dWeightGrad(x, dyw, g)]
                    }
                }
                let (wide, narrow) = (run(wide: true), run(wide: false))
                XCTAssertEqual(wide.calls + narrow.calls, 6, "case \(k), tile \(tile)")
                for i in wide.result.indices {
                    XCTAssertGreaterThan(narrow.result[i].abs().max().item, 0, "case \(k), tile \(tile), pass \(i)")
                    XCTAssertEqual(wide.result[i].scalars.map(\.bitPattern), narrow.result[i].scalars.map(\.bitPattern),
                                   "case \(k), tile \(tile), pass \(i)")
                }
            }
        }
    }

    /// The default mode takes a pass only where its tiles pay: 2×2 tiles on an even output side
    /// with at least 96 of them, 4×4 tiles on an odd side with at least 128, their weight
    /// gradient with AVX-512 only with 256 output channels or more (with AVX2 with 128 too).
    func testDefaultModeTakesEvenOutputsWithEnoughTiles() {
        _ = onWinograd(mode: 1, tile: 0) { defaultModeCases() }
    }

    func defaultModeCases() {
        let g = geometry.withChannelsLast(true)
        // 98 2×2 tiles; 49; 7×7 outputs in 32 4×4 tiles; in 128 (the weight gradient with AVX-512
        // only with 256 output channels); 6×6 outputs in 72 2×2 tiles
        let avx2 = !Runtime.winogradWideVectors
        let cases = [(2, 28, 128, true, true), (1, 28, 128, false, false), (8, 14, 128, false, false),
                     (32, 14, 128, true, avx2), (32, 14, 256, true, true), (8, 12, 128, false, false)]
        for (n, size, o, takes, takesWeightGradient) in cases {
            let x = randomTensor([n, size, size, 64], seed: 3640)
            let w = randomTensor([o, 64, 5, 5], seed: 3641, scale: 0.3)
            let v = randomTensor([n, size / 2, size / 2, o], seed: 3642)
            let before = Runtime.winogradCalls
            _ = Tensor.conv2d(x, weight: w, g)
            XCTAssertEqual(Runtime.winogradCalls - before, takes ? 1 : 0, "n \(n), side \(size), o \(o): forward")
            _ = Tensor.convTranspose2d(v, weight: w, g, outputSize: (size, size))
            XCTAssertEqual(Runtime.winogradCalls - before, takes ? 2 : 0, "n \(n), side \(size), o \(o): input gradient")
            _ = Tensor.conv2dWeightGrad(x, v, g)
            XCTAssertEqual(Runtime.winogradCalls - before, (takes ? 2 : 0) + (takesWeightGradient ? 1 : 0),
                           "n \(n), side \(size), o \(o): weight gradient")
        }
    }

    /// On an even output side the default mode takes 2×2 tiles, but with AVX2 4×4 ones where both
    /// sides have 128 channels or more (the dcgan generator's 14 → 28 layer; with 64 input
    /// channels, the critic's 64 → 128, 2×2), for all three passes; with AVX-512 always 2×2.
    func testEvenSidesTakeFourByFourTilesWithAVX2OnWideLayers() {
        _ = onWinograd(mode: 1, tile: 0) { evenSideCases() }
    }

    func evenSideCases() {
        let g = geometry.withChannelsLast(true)
        for (c, o) in [(64, 128), (128, 128), (128, 64)] {
            let x = randomTensor([8, 28, 28, c], seed: 3860), w = randomTensor([o, c, 5, 5], seed: 3861, scale: 0.3)
            let v = randomTensor([8, 14, 14, o], seed: 3862)
            let fourByFour = !Runtime.winogradWideVectors && c >= 128 && o >= 128
            let before = (Runtime.winogradCalls, Runtime.winogradCalls4x4)
            _ = Tensor.conv2d(x, weight: w, g)
            _ = Tensor.conv2dWeightGrad(x, v, g)
            // The input gradient writes the input channels: 64 of them is one panel, still a fit.
            _ = Tensor.convTranspose2d(v, weight: w, g, outputSize: (28, 28))
            XCTAssertEqual(Runtime.winogradCalls - before.0, 3, "c \(c), o \(o): the three passes on the path")
            XCTAssertEqual(Runtime.winogradCalls4x4 - before.1, fourByFour ? 3 : 0, "c \(c), o \(o): 4×4 tiles")
        }
    }

    /// A call reuses the transformed kernel of an earlier one only where the weights are equal
    /// byte for byte and the pass, tile and padding the same: equal weights in another tensor give
    /// the same bits from the kept transform; the other padding, or one weight changed in place
    /// (the same storage, as an optimizer's step leaves it), gives the new convolution, for the
    /// forward and the input gradient with either tile.
    func testTransformedKernelsAreReusedOnlyForEqualWeights() {
        let (n, c, o, size) = (2, 64, 128, 10)  // 64 input channels: the input gradient fits too
        let x = randomTensor([n, size, size, c], seed: 3720)
        let dy = randomTensor([n, size / 2, size / 2, o], seed: 3721)
        for tile in tiles {
            var w = randomTensor([o, c, 5, 5], seed: 3722, scale: 0.3)
            func passes(_ w: Tensor, _ g: ConvGeometry) -> [Tensor] {
                [Tensor.conv2d(x, weight: w, g), Tensor.convTranspose2d(dy, weight: w, g, outputSize: (size, size))]
            }
            func withoutOneDNN(_ w: Tensor, _ g: ConvGeometry) -> [Tensor] {
                let saved = Runtime.usesOneDNN
                defer { Runtime.usesOneDNN = saved }
                Runtime.usesOneDNN = false
                return passes(w, g)
            }
            func assertNew(_ got: [Tensor], _ want: [Tensor], _ what: String) {
                for i in 0..<2 {
                    let scale = want[i].abs().max().item
                    assertClose(got[i], want[i], rtol: 0, atol: Float(5 * tile.bound) * scale, "tile \(tile.side), \(what), pass \(i)")
                }
            }
            let g = paddings[0].geometry
            let first = onWinograd(tile: tile.side) { passes(w, g) }.result
            let before = Runtime.winogradReusedKernels
            let again = onWinograd(tile: tile.side) { passes(Tensor(shape: [o, c, 5, 5], w.scalars), g) }.result
            XCTAssertEqual(Runtime.winogradReusedKernels - before, 2, "tile \(tile.side): equal weights reuse both transforms")
            for i in 0..<2 {
                XCTAssertEqual(again[i].scalars.map(\.bitPattern), first[i].scalars.map(\.bitPattern), "tile \(tile.side), pass \(i)")
            }
            let other = paddings[1].geometry
            let padded = onWinograd(tile: tile.side) { passes(w, other) }
            XCTAssertEqual(padded.calls, 2, "tile \(tile.side): the other padding on the Winograd path")
            XCTAssertEqual(Runtime.winogradReusedKernels - before, 2, "tile \(tile.side): the other padding transforms again")
            assertNew(padded.result, withoutOneDNN(w, other), "the other padding")
            let address = w.unsafeElements
            w.withUnsafeMutableBufferPointer { $0[(o / 2 * c + c / 2) * 25 + 12] += 1 }  // one pair's centre tap
            XCTAssertEqual(w.unsafeElements, address, "changed in place")
            let reused = Runtime.winogradReusedKernels
            let got = onWinograd(tile: tile.side) { passes(w, g) }.result
            XCTAssertEqual(Runtime.winogradReusedKernels, reused, "tile \(tile.side): changed weights transform again")
            let want = withoutOneDNN(w, g)
            for i in 0..<2 {
                XCTAssertGreaterThan((want[i] - first[i]).abs().max().item, 0.1, "tile \(tile.side), pass \(i): the change shows")
            }
            assertNew(got, want, "changed weights")
        }
    }

    /// WGAN-GP's use (with either padding): the input gradient of ⟨conv(x, w)⟩ through tanh, penalized and
    /// differentiated again; the second-order graph runs the forward form twice (the layer and
    /// the input gradient's own gradient), the weight gradient twice (the layer's and the input
    /// gradient's), and the input gradient twice where 64 input channels make it fit. Against
    /// the same graph without oneDNN.
    func testGradientPenaltyMatchesWithoutOneDNN() {
        // Elements that cancel to small values move with the summation order: oneDNN's own path
        // (Winograd off) differed from the reference by up to 2.1e-5 of the largest element here,
        // the 2×2 tiles by up to 2.9e-5, the 4×4 tiles by up to 1.25e-4.
        for (tile, bound) in [(2, 6e-5), (4, 3e-4)] {
            let runs: [((Int, Int, Int, Int), Int)] = [(cases[0], 0), (cases[1], 1), ((2, 64, 64, 8), 0), ((2, 64, 64, 8), 1)]
            for (k, ((n, c, o, size), which)) in runs.enumerated() {
                let (top, g) = paddings[which]
                let x = randomTensor([n, c, size, size], seed: 3650 + UInt64(k)).permuted([0, 2, 3, 1]).requiringGrad()
                let w = randomTensor([o, c, 5, 5], seed: 3660 + UInt64(k), scale: 0.3).requiringGrad()
                func run() -> [Tensor] {
                    let y = Tensor.conv2d(x, weight: w, g).tanh()
                    let gx = y.sum().gradients(wrt: [x], createGraph: true)[0]
                    return (gx.square().sum() + y.square().sum()).gradients(wrt: [x, w])
                }
                let (winograd, calls) = onWinograd(tile: tile, run)
                XCTAssertGreaterThanOrEqual(calls, c % 64 == 0 ? 6 : 4, "case \(k), padding \(top), tile \(tile): the penalty's graph on the Winograd path")
                let saved = Runtime.usesOneDNN
                Runtime.usesOneDNN = false
                let reference = run()
                Runtime.usesOneDNN = saved
                for (i, name) in ["dx", "dweight"].enumerated() {
                    let scale = reference[i].abs().max().item
                    XCTAssertGreaterThan(scale, 0, "case \(k) \(name): trivially zero")
                    assertClose(winograd[i], reference[i], rtol: 1e-3, atol: Swift.max(1e-3, Float(bound) * scale), "case \(k), padding \(top), tile \(tile) \(name)")
                }
            }
        }
    }
}
