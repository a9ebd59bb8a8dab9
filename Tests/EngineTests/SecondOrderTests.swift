import Engine
import TestSupport
import XCTest

/// Finite-difference checks of gradients of gradients: for f and a fixed direction v, the
/// gradient of ⟨∇f, v⟩ obtained with `createGraph` against differences of ⟨∇f, v⟩ itself.
final class SecondOrderTests: XCTestCase {
    func testConv2d() {
        let geo = ConvGeometry(kernel: 3, stride: 2, padding: 1)
        checkSecondOrder([randomTensor([2, 2, 5, 5], seed: 30), randomTensor([3, 2, 3, 3], seed: 31)], "conv2d") {
            // tanh makes the function non-linear in the input, so the second derivative is not zero.
            project(Tensor.conv2d($0[0], weight: $0[1], geo).tanh())
        }
    }

    func testConvTranspose2d() {
        let geo = ConvGeometry(kernel: 4, stride: 2, padding: 1)
        checkSecondOrder([randomTensor([2, 3, 3, 3], seed: 32), randomTensor([3, 2, 4, 4], seed: 33)], "convTranspose2d") {
            project(Tensor.convTranspose2d($0[0], weight: $0[1], geo).tanh())
        }
    }

    func testLinear() {
        checkSecondOrder([randomTensor([3, 4], seed: 34), randomTensor([2, 4], seed: 35), randomTensor([2], seed: 36)], "linear") {
            project(Tensor.linear($0[0], weight: $0[1], bias: $0[2]).sigmoid())
        }
    }

    func testLeakyRelu() {
        // Leaky ReLU is piecewise linear: its own second derivative is zero, so it is checked
        // composed with a product, where the first-order rule must carry the slope correctly.
        checkSecondOrder([randomTensor([3, 4], seed: 37), randomTensor([3, 4], seed: 38)], "leakyRelu", h: 1e-3) {
            project($0[0].leakyRelu(0.2) * $0[1].leakyRelu(0.2))
        }
    }

    func testBiasLeakyRelu() {
        // Composed with a product, as for leakyRelu, so the second derivative is not zero.
        checkSecondOrder([randomTensor([2, 3, 2, 2], seed: 63), randomTensor([3], seed: 64), randomTensor([2, 3, 2, 2], seed: 65)],
                         "biasLeakyRelu", h: 1e-3) {
            project(Tensor.biasLeakyRelu($0[0], bias: $0[1], alpha: 0.2) * $0[2].tanh())
        }
        checkSecondOrder([randomTensor([2, 3, 2, 2], seed: 66), randomTensor([3], seed: 67) + 2, randomTensor([3], seed: 68)],
                         "affineLeakyRelu", h: 1e-3) {
            project(Tensor.affineLeakyRelu($0[0], scale: $0[1], shift: $0[2], alpha: 0.2).square())
        }
    }

    func testTanh() {
        checkSecondOrder([randomTensor([3, 4], seed: 39)], "tanh") { project($0[0].tanh()) }
    }

    func testSigmoid() {
        checkSecondOrder([randomTensor([3, 4], seed: 40)], "sigmoid") { project($0[0].sigmoid()) }
    }

    func testMaxPool() {
        checkSecondOrder([randomTensor([2, 2, 4, 4], seed: 44)], "maxPool2d", h: 1e-3) { project($0[0].maxPool2d().tanh()) }
    }

    func testExpLogSoftmax() {
        checkSecondOrder([randomTensor([3, 4], seed: 41) * 0.5], "exp") { project($0[0].exp()) }
        checkSecondOrder([randomTensor([3, 4], seed: 42).abs() + 0.5], "log") { project($0[0].log()) }
        checkSecondOrder([randomTensor([3, 4], seed: 43)], "logSoftmax") { project($0[0].logSoftmax(axis: 1)) }
    }
}
