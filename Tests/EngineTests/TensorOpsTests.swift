import Engine
import XCTest

/// Forward values of ops against small hand-computed cases.
final class TensorOpsTests: XCTestCase {
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

    func testCopyOnWrite() {
        let a = Tensor([1, 2, 3])
        var b = a
        b.withUnsafeMutableBufferPointer { $0[0] = 9 }
        XCTAssertEqual(a.scalars, [1, 2, 3])
        XCTAssertEqual(b.scalars, [9, 2, 3])
    }

    func testConvolutionAgainstDirectLoops() {
        // A larger, asymmetric case checked against a naive six-fold loop, with batch chunking.
        let x = randomTensor([5, 3, 9, 8], seed: 60), w = randomTensor([4, 3, 3, 2], seed: 61)
        let geo = ConvGeometry(kernel: (3, 2), stride: (2, 1), padding: (top: 1, left: 0, bottom: 2, right: 1))
        let y = Tensor.conv2d(x, weight: w, geo)
        let (oh, ow) = geo.smallSize(big: 9, 8)
        XCTAssertEqual(y.shape, [5, 4, oh, ow])
        let xs = x.scalars, ws = w.scalars
        var expected = [Float](repeating: 0, count: y.count)
        for n in 0..<5 { for o in 0..<4 { for i in 0..<oh { for j in 0..<ow {
            var s: Float = 0
            for c in 0..<3 { for ki in 0..<3 { for kj in 0..<2 {
                let ih = i * 2 - 1 + ki, iw = j - 0 + kj
                if ih >= 0 && ih < 9 && iw >= 0 && iw < 8 { s += xs[((n * 3 + c) * 9 + ih) * 8 + iw] * ws[((o * 3 + c) * 3 + ki) * 2 + kj] }
            } } }
            expected[((n * 4 + o) * oh + i) * ow + j] = s
        } } } }
        assertClose(y, Tensor(shape: y.shape, expected), "conv2d vs direct")
        // convTranspose2d is the adjoint of conv2d: ⟨conv(x), v⟩ = ⟨x, convT(v)⟩.
        let v = randomTensor(y.shape, seed: 62)
        let lhs = (y * v).sum().item
        let rhs = (x * Tensor.convTranspose2d(v, weight: w, geo, outputSize: (9, 8))).sum().item
        XCTAssertEqual(lhs, rhs, accuracy: 1e-3 * Swift.abs(lhs) + 1e-3)
    }
}
