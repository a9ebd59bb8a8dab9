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

    /// Only the gradients asked for (a frozen layer, a first layer), and they are the graph's
    /// when the graph is asked for the same ones. (A pass asked for all three runs its two
    /// products at once, one per thread, and a lone product is split over both: on an AVX2
    /// host, whose gemm:jit and OpenBLAS sum a split product in another order, the lone input
    /// gradient is not the paired one's bits, so it is held to the rounding of the product.)
    func testGradientsOnlyWhereAsked() {
        let (n, inputs, outputs) = (64, 256, 784)
        let x = randomTensor([n, inputs], seed: 421), w = randomTensor([outputs, inputs], seed: 422, scale: 0.1)
        let b = randomTensor([outputs], seed: 423), u = randomTensor([n, outputs], seed: 424)
        func graphGradients(_ wanted: [Bool]) -> [Tensor] {
            let leaves = zip([x, w, b], wanted).map { $1 ? $0.requiringGrad() : $0 }
            let y = Tensor.linearActivated(leaves[0], weight: leaves[1], bias: leaves[2], .saturating(.sigmoid))
            return (y * u).sum().gradients(wrt: zip(leaves, wanted).filter(\.1).map(\.0))
        }
        var out = Tensor.zeros([n, outputs])
        DenseLayerPass.forward(x.unsafeElements, rows: n, weight: w, bias: b, .saturating(.sigmoid), into: out.unsafeMutableElements())

        var g = u * 1, dx = Tensor(shape: [n, inputs], repeating: 7)
        DenseLayerPass.backward(g.unsafeMutableElements(), output: out.unsafeElements, input: x.unsafeElements, rows: n, weight: w,
                                .saturating(.sigmoid), weightGradient: nil, biasGradient: nil, inputGradient: dx.unsafeMutableElements())
        XCTAssertEqual(dx.scalars.map(\.bitPattern), graphGradients([true, false, false])[0].scalars.map(\.bitPattern))

        var g2 = u * 1, dw = Tensor.zeros([outputs, inputs]), db = Tensor.zeros([outputs])
        DenseLayerPass.backward(g2.unsafeMutableElements(), output: out.unsafeElements, input: x.unsafeElements, rows: n, weight: w,
                                .saturating(.sigmoid), weightGradient: dw.unsafeMutableElements(),
                                biasGradient: db.unsafeMutableElements(), inputGradient: nil)
        let parameters = graphGradients([false, true, true])
        XCTAssertEqual(dw.scalars.map(\.bitPattern), parameters[0].scalars.map(\.bitPattern))
        XCTAssertEqual(db.scalars.map(\.bitPattern), parameters[1].scalars.map(\.bitPattern))

        let all = graphGradients([true, true, true])
        for (only, full, what) in [(dx, all[0], "input"), (dw, all[1], "weight"), (db, all[2], "bias")] {
            assertClose(only, full, rtol: 0, atol: 1e-5 * full.abs().max().item, "\(what) gradient")
        }
    }
}
