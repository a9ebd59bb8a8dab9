import Engine
import TestSupport
import XCTest

/// `ProductFlops` counts what `gan bench` divides by a step's time: two flops per multiply-add of
/// every matrix product and convolution, whichever kernel runs it.
final class ProductFlopsTests: XCTestCase {
    func counted(_ body: () -> Void) -> Int {
        let before = ProductFlops.total
        body()
        return ProductFlops.total - before
    }

    func testMatrixProductCountsTwoFlopsPerMultiplyAdd() {
        let a = randomTensor([37, 19], seed: 1), b = randomTensor([19, 23], seed: 2)
        XCTAssertEqual(counted { _ = Tensor.matmul(a, b) }, 2 * 37 * 19 * 23)
        // Large enough to be split over the threads: the parts add up to the same count.
        let c = randomTensor([256, 300], seed: 3), d = randomTensor([300, 200], seed: 4)
        XCTAssertEqual(counted { _ = Tensor.matmul(c, d) }, 2 * 256 * 300 * 200)
    }

    /// A strided convolution's forward, input gradient and weight gradient each count
    /// 2 · n · o · oh · ow · c · kh · kw, on oneDNN and on unfold + sgemm, in either layout.
    func testConvolutionCountsItsMultiplyAddsOnEveryPath() {
        let (n, c, o, size) = (2, 16, 24, 14)
        let geo = ConvGeometry(kernel: 5, stride: 2, padding: 2)
        let one = 2 * n * o * 7 * 7 * c * 25
        let saved = Runtime.usesOneDNN
        defer { Runtime.usesOneDNN = saved }
        for oneDNN in [true, false] {
            Runtime.usesOneDNN = oneDNN
            for layout in [geo, geo.withChannelsLast(true)] {
                let what = "oneDNN \(Runtime.usesOneDNN), channels-last \(layout.channelsLast)"
                let xShape = layout.channelsLast ? [n, size, size, c] : [n, c, size, size]
                let x = randomTensor(xShape, seed: 5).requiringGrad()
                let w = randomTensor([o, c, 5, 5], seed: 6, scale: 0.2).requiringGrad()
                var y = Tensor.conv2d(x, weight: w, layout)
                XCTAssertEqual(counted { y = Tensor.conv2d(x, weight: w, layout) }, one, "\(what): forward")
                XCTAssertEqual(counted { _ = y.square().sum().gradients(wrt: [x, w]) }, 2 * one, "\(what): both gradients")
                y = Tensor.conv2d(x, weight: w, layout)
                XCTAssertEqual(counted { _ = y.square().sum().gradients(wrt: [w]) }, one, "\(what): weight gradient alone")
            }
        }
    }
}
