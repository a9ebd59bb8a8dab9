import Engine
import NN
import TestSupport
import XCTest

/// `Sequential` runs a `Linear` layer and its activation as one op (`Tensor.linearActivated`).
final class LinearActivationLayerTests: XCTestCase {
    /// `Sequential` takes the op for `Linear` + activation, and a network's training step gives
    /// the same loss and gradients with it as without it.
    func testSequentialUsesItWithTheSameResults() {
        var g = RandomGenerator(seed: 331)
        let net = Sequential([Linear(100, 256, generator: &g), LeakyReLU(0.2), Linear(256, 784, generator: &g), Sigmoid()])
        let z = randomTensor([64, 100], seed: 332)
        func run(_ fuses: Bool) -> (Tensor, [Tensor], [String]) {
            let saved = Sequential.fusesLinear
            defer { Sequential.fusesLinear = saved }
            Sequential.fusesLinear = fuses
            OpProfiler.start()
            let y = net(z)
            let names = OpProfiler.stop().map(\.name)
            let grads = project(y).gradients(wrt: net.parameters.map(\.value))
            return (y, grads, names)
        }
        let (yf, gf, namesf) = run(true), (yp, gp, namesp) = run(false)
        XCTAssertTrue(namesf.contains("linearLeakyRelu") && namesf.contains("linearSigmoid"), "fused ops in the graph: \(namesf)")
        XCTAssertFalse(namesp.contains("linearLeakyRelu"), "two-op form when turned off: \(namesp)")
        XCTAssertEqual(yf.scalars, yp.scalars)
        for k in gf.indices { XCTAssertEqual(gf[k].scalars, gp[k].scalars, "parameter \(k)") }
    }
}
