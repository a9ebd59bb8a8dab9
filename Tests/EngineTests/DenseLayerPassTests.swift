import Engine
import TestSupport
import XCTest

/// `DenseLayerPass` (a dense layer's passes on the caller's buffers, without a graph) against
/// the graph's `Tensor.linearActivated` and its rule, bit for bit: forward values, and the input,
/// weight and bias gradients for an upstream gradient u (the rule of (y · u).sum() hands it u),
/// at sizes that run on one thread and at the mlp's, which split the product and the pair.
final class DenseLayerPassTests: XCTestCase {
    func testSameBitsAsTheGraph() {
        let activations: [LayerActivation] = [.leakyRelu(0.2), .leakyRelu(0), .saturating(.sigmoid), .saturating(.tanh)]
        for (n, inputs, outputs) in [(4, 5, 3), (64, 256, 784), (128, 784, 64), (64, 100, 256), (128, 64, 1), (64, 64, 784)] {
            let x = randomTensor([n, inputs], seed: 411, scale: 2), w = randomTensor([outputs, inputs], seed: 412, scale: 0.2)
            let b = randomTensor([outputs], seed: 413), u = randomTensor([n, outputs], seed: 414)
            for activation in activations {
                for bias in [b, nil] {
                    let what = "\(n)×\(inputs)→\(outputs) \(activation)\(bias == nil ? " without bias" : "")"
                    let leaves = ([x, w] + (bias.map { [$0] } ?? [])).map { $0.requiringGrad() }
                    let y = Tensor.linearActivated(leaves[0], weight: leaves[1], bias: leaves.count > 2 ? leaves[2] : nil, activation)
                    let expected = (y * u).sum().gradients(wrt: leaves)

                    var out = Tensor.zeros([n, outputs]), g = u * 1, dx = Tensor.zeros([n, inputs])
                    var dw = Tensor.zeros([outputs, inputs]), db = Tensor.zeros([outputs])
                    DenseLayerPass.forward(x.unsafeElements, rows: n, weight: w, bias: bias, activation, into: out.unsafeMutableElements())
                    XCTAssertEqual(out.scalars.map(\.bitPattern), y.scalars.map(\.bitPattern), "\(what): forward")
                    DenseLayerPass.backward(g.unsafeMutableElements(), output: out.unsafeElements, input: x.unsafeElements, rows: n,
                                            weight: w, activation, weightGradient: dw.unsafeMutableElements(),
                                            biasGradient: bias == nil ? nil : db.unsafeMutableElements(),
                                            inputGradient: dx.unsafeMutableElements())
                    XCTAssertEqual(dx.scalars.map(\.bitPattern), expected[0].scalars.map(\.bitPattern), "\(what): input gradient")
                    XCTAssertEqual(dw.scalars.map(\.bitPattern), expected[1].scalars.map(\.bitPattern), "\(what): weight gradient")
                    if bias != nil {
                        XCTAssertEqual(db.scalars.map(\.bitPattern), expected[2].scalars.map(\.bitPattern), "\(what): bias gradient")
                    }
                }
            }
        }
    }

    /// Only the gradients asked for (a frozen layer, a first layer), and they are the graph's.
    func testGradientsOnlyWhereAsked() {
        let (n, inputs, outputs) = (64, 256, 784)
        let x = randomTensor([n, inputs], seed: 421), w = randomTensor([outputs, inputs], seed: 422, scale: 0.1)
        let b = randomTensor([outputs], seed: 423), u = randomTensor([n, outputs], seed: 424)
        let leaves = [x, w, b].map { $0.requiringGrad() }
        let expected = (Tensor.linearActivated(leaves[0], weight: leaves[1], bias: leaves[2], .saturating(.sigmoid)) * u).sum()
            .gradients(wrt: leaves)
        var out = Tensor.zeros([n, outputs])
        DenseLayerPass.forward(x.unsafeElements, rows: n, weight: w, bias: b, .saturating(.sigmoid), into: out.unsafeMutableElements())

        var g = u * 1, dx = Tensor(shape: [n, inputs], repeating: 7)
        DenseLayerPass.backward(g.unsafeMutableElements(), output: out.unsafeElements, input: x.unsafeElements, rows: n, weight: w,
                                .saturating(.sigmoid), weightGradient: nil, biasGradient: nil, inputGradient: dx.unsafeMutableElements())
        XCTAssertEqual(dx.scalars.map(\.bitPattern), expected[0].scalars.map(\.bitPattern))

        var g2 = u * 1, dw = Tensor.zeros([outputs, inputs]), db = Tensor.zeros([outputs])
        DenseLayerPass.backward(g2.unsafeMutableElements(), output: out.unsafeElements, input: x.unsafeElements, rows: n, weight: w,
                                .saturating(.sigmoid), weightGradient: dw.unsafeMutableElements(),
                                biasGradient: db.unsafeMutableElements(), inputGradient: nil)
        XCTAssertEqual(dw.scalars.map(\.bitPattern), expected[1].scalars.map(\.bitPattern))
        XCTAssertEqual(db.scalars.map(\.bitPattern), expected[2].scalars.map(\.bitPattern))
    }
}
