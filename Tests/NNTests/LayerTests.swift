import Engine
import NN
import TestSupport
import XCTest

final class LayerTests: XCTestCase {
    var rng = RandomGenerator(seed: 1)

    func testLinearConvAndConvTransposeMatchPyTorchFixtures() throws {
        let lin = Linear(7, 3, generator: &rng)
        lin.weight.assign(try Fixtures.get("linear.weight"))
        lin.bias!.assign(try Fixtures.get("linear.bias"))
        assertClose(lin(try Fixtures.get("linear.x")), try Fixtures.get("linear.y"), "Linear")

        let conv = Conv2d(3, 4, kernel: 5, stride: 2, padding: .symmetric(2), generator: &rng)
        conv.weight.assign(try Fixtures.get("conv_k5_s2_p2.weight"))
        conv.bias!.assign(try Fixtures.get("conv_k5_s2_p2.bias"))
        let x = try Fixtures.get("conv_k5_s2_p2.x")
        let y = conv(x)
        assertClose(y, try Fixtures.get("conv_k5_s2_p2.y"), "Conv2d")
        try (y * Fixtures.get("conv_k5_s2_p2.dy")).sum().backward()
        assertClose(conv.weight.grad!, try Fixtures.get("conv_k5_s2_p2.dweight"), "Conv2d weight grad")
        assertClose(conv.bias!.grad!, try Fixtures.get("conv_k5_s2_p2.dbias"), "Conv2d bias grad")

        let convT = ConvTranspose2d(4, 3, kernel: 5, stride: 2, padding: .symmetric(2), outputPadding: 1, generator: &rng)
        convT.weight.assign(try Fixtures.get("convt_k5_s2_p2_op1.weight"))
        convT.bias!.assign(try Fixtures.get("convt_k5_s2_p2_op1.bias"))
        assertClose(convT(try Fixtures.get("convt_k5_s2_p2_op1.x")), try Fixtures.get("convt_k5_s2_p2_op1.y"), "ConvTranspose2d")
    }

    func testSamePaddingMatchesKeras() {
        // Keras "same" on stride 2: 28 → 14 with one row/column more at the bottom/right.
        let conv = Conv2d(1, 1, kernel: 5, stride: 2, padding: .same, bias: false, generator: &rng)
        XCTAssertEqual(conv(Tensor.zeros([1, 1, 28, 28])).shape, [1, 1, 14, 14])
        // With a kernel that picks its top-left tap, output (0, 0) reads input (−1, −1) = 0 and
        // output (1, 1) reads input (1, 1): the padding before is 1, not 2.
        var w = Tensor.zeros([1, 1, 5, 5]); w.withUnsafeMutableBufferPointer { $0[0] = 1 }
        conv.weight.assign(w)
        let x = Tensor(shape: [1, 1, 28, 28], (0..<784).map { Float($0) })
        let y = conv(x)
        XCTAssertEqual(y.scalars[0], 0)
        XCTAssertEqual(y.scalars[15], 29)   // output (1,1) ← input (1,1) = 1·28 + 1
        let convT = ConvTranspose2d(1, 1, kernel: 5, stride: 2, padding: .same, bias: false, generator: &rng)
        XCTAssertEqual(convT(Tensor.zeros([2, 1, 7, 7])).shape, [2, 1, 14, 14])
    }

    func testBatchNormTrainAndEvalMatchPyTorch() throws {
        let bn = BatchNorm(3)
        bn.weight!.assign(try Fixtures.get("batchnorm2d_train.weight"))
        bn.bias!.assign(try Fixtures.get("batchnorm2d_train.bias"))
        let x = try Fixtures.get("batchnorm2d_train.x")
        let y = bn(x)
        assertClose(y, try Fixtures.get("batchnorm2d_train.y"), "batch norm forward")
        try (y * Fixtures.get("batchnorm2d_train.dy")).sum().backward()
        assertClose(bn.weight!.grad!, try Fixtures.get("batchnorm2d_train.dweight"), "dweight")
        assertClose(bn.bias!.grad!, try Fixtures.get("batchnorm2d_train.dbias"), "dbias")
        assertClose(bn.runningMean.value, try Fixtures.get("batchnorm2d_train.running_mean"), "running mean")
        assertClose(bn.runningVar.value, try Fixtures.get("batchnorm2d_train.running_var"), "running var")
        XCTAssertEqual(bn.numBatchesTracked.value.item, 1)
        // Eval uses the running statistics: (x − rm)/√(rv + eps)·w + b.
        bn.eval()
        let shape = [1, 3, 1, 1]
        let expected = (x - bn.runningMean.value.reshaped(shape)) / (bn.runningVar.value.reshaped(shape) + 1e-5).sqrt()
            * bn.weight!.value.detached().reshaped(shape) + bn.bias!.value.detached().reshaped(shape)
        assertClose(bn(x), expected, "eval mode")
        XCTAssertEqual(bn.namedBuffers().map(\.0), ["running_mean", "running_var", "num_batches_tracked"])
    }

    func testLayerNormNormalizesTrailingDims() {
        let ln = LayerNorm([2, 3])
        let x = randomTensor([4, 2, 3], seed: 3) * 3 + 1
        let y = ln(x)
        for m in y.mean(axes: [1, 2]).scalars { XCTAssertEqual(m, 0, accuracy: 1e-5) }
        for v in y.variance(axes: [1, 2]).scalars { XCTAssertEqual(v, 1, accuracy: 1e-3) }
    }

    func testStateDictNamesFollowPyTorch() throws {
        let net = Sequential(Linear(4, 3, generator: &rng), ReLU(), BatchNorm(3), Linear(3, 1, bias: false, generator: &rng))
        XCTAssertEqual(net.stateDict().map(\.0),
                       ["0.weight", "0.bias", "2.weight", "2.bias", "3.weight", "2.running_mean", "2.running_var", "2.num_batches_tracked"])
        var values = Dictionary(uniqueKeysWithValues: net.stateDict())
        values["0.weight"] = Tensor.zeros([3, 5])
        values["extra"] = Tensor.zeros([1])
        values.removeValue(forKey: "3.weight")
        XCTAssertThrowsError(try net.loadStateDict(values)) { error in
            let text = String(describing: error)
            XCTAssertTrue(text.contains("0.weight: shape [3, 5] in the file, [3, 4] in the model"), text)
            XCTAssertTrue(text.contains("missing 3.weight"), text)
            XCTAssertTrue(text.contains("unexpected extra"), text)
        }
    }

    func testFrozenParametersGetNoGradient() {
        let d = Linear(3, 1, generator: &rng), g = Linear(2, 3, generator: &rng)
        d.setFrozen(true)
        let loss = d(g(randomTensor([4, 2], seed: 4))).sum()
        loss.backward()
        XCTAssertNil(d.weight.grad)
        XCTAssertNotNil(g.weight.grad)
        d.setFrozen(false)
        XCTAssertTrue(d.weight.value.requiresGrad)
    }

    /// Sequential adds a layer's bias together with the (leaky) ReLU, sigmoid or tanh after it.
    /// That must change nothing: outputs bit for bit, first-order gradients, and the second-order
    /// gradients of a gradient penalty through the network.
    func testFusedBiasActivationMatchesSeparateLayers() {
        let net = Sequential(
            Conv2d(2, 4, kernel: 3, padding: .symmetric(1), generator: &rng), LeakyReLU(0.2),
            ConvTranspose2d(4, 3, kernel: 4, stride: 2, padding: .symmetric(1), generator: &rng), ReLU(),
            Conv2d(3, 3, kernel: 3, padding: .symmetric(1), generator: &rng), Sigmoid(),
            Conv2d(3, 3, kernel: 3, padding: .symmetric(1), bias: false, generator: &rng), BatchNorm(3), LeakyReLU(0.2),
            Flatten(), Linear(3 * 8 * 8, 5, generator: &rng), BatchNorm(5), ReLU(), Linear(5, 4, generator: &rng), LeakyReLU(0.1),
            Linear(4, 3, generator: &rng), Tanh(), Linear(3, 1, generator: &rng), Sigmoid())
        for case let bn as BatchNorm in net.layers {
            // Non-trivial affine factors, so that scale and shift gradients are not all alike.
            bn.weight!.assign(randomTensor([bn.features], seed: 71) + 1)
            bn.bias!.assign(randomTensor([bn.features], seed: 72))
        }
        let x = randomTensor([2, 2, 4, 4], seed: 70)
        let saved = Sequential.fusesBiasActivation
        defer { Sequential.fusesBiasActivation = saved }
        func run(fused: Bool) -> (out: Tensor, grads: [Tensor], penalty: [Tensor]) {
            Sequential.fusesBiasActivation = fused
            let xi = x.requiringGrad()
            let params = net.parameters.map(\.value)
            let out = net(xi)
            let grads = out.sum().gradients(wrt: [xi] + params)
            let gx = net(xi).sum().gradients(wrt: [xi], createGraph: true)[0]
            let penalty = gx.square().sum().gradients(wrt: params)
            return (out, grads, penalty)
        }
        let fused = run(fused: true), separate = run(fused: false)
        // The fused ops did run: a convolution's bias with the sigmoid after it; the dense layers
        // with their activations as one op each (leaky ReLU, tanh, sigmoid).
        Sequential.fusesBiasActivation = true
        OpProfiler.start()
        _ = net(x.requiringGrad())
        let ops = OpProfiler.stop().filter { $0.phase == .forward }
        XCTAssertEqual(ops.first { $0.name == "biasSigmoid" }?.calls, 1)
        for name in ["linearLeakyRelu", "linearTanh", "linearSigmoid"] { XCTAssertEqual(ops.first { $0.name == name }?.calls, 1, name) }
        XCTAssertEqual(fused.out.scalars, separate.out.scalars)
        for (a, b) in zip(fused.grads, separate.grads) { assertClose(a, b, rtol: 1e-5, atol: 1e-6, "first order") }
        for (a, b) in zip(fused.penalty, separate.penalty) { assertClose(a, b, rtol: 1e-5, atol: 1e-6, "gradient penalty") }
        XCTAssertGreaterThan(fused.penalty.map { $0.abs().sum().item }.reduce(0, +), 0)
        // Eval mode (running statistics) as generation uses it.
        net.eval()
        defer { net.train() }
        Sequential.fusesBiasActivation = true
        let evalFused = withoutGrad { net(x) }
        Sequential.fusesBiasActivation = false
        XCTAssertEqual(evalFused.scalars, withoutGrad { net(x) }.scalars)
    }

    /// Inference through a chain of oneDNN convolutions (activations kept in oneDNN's blocked
    /// layout, bias and activation applied in place) gives the layer-by-layer values bit for bit:
    /// channel counts that leave a partial block (24, 20), a layer without bias, one without
    /// activation, 7×7 images (pixels not a multiple of 4). The one-channel output layer runs on
    /// the small-output kernel, reading the blocked layout: equal up to rounding.
    func testConvolutionChainMatchesLayerByLayer() throws {
        let saved = (Runtime.usesOneDNN, Sequential.chainsConvolutions, Runtime.stridedGradientPhases)
        defer { (Runtime.usesOneDNN, Sequential.chainsConvolutions, Runtime.stridedGradientPhases) = saved }
        Runtime.usesOneDNN = true
        // Both sides on oneDNN's stride-2 kernels: layer by layer, a transposed convolution would
        // otherwise run in phases (StridedGradientPhaseTests), which the chain does not, and round differently.
        Runtime.stridedGradientPhases = 0
        try XCTSkipUnless(Runtime.usesOneDNN, "oneDNN is not available here")
        let net = Sequential(
            ConvTranspose2d(16, 24, kernel: 4, stride: 2, padding: .symmetric(1), generator: &rng), LeakyReLU(0.2),
            Conv2d(24, 32, kernel: 3, stride: 2, padding: .symmetric(1), bias: false, generator: &rng), ReLU(),
            ConvTranspose2d(32, 20, kernel: 5, stride: 2, padding: .symmetric(2), outputPadding: 1, generator: &rng),
            Conv2d(20, 1, kernel: 3, padding: .symmetric(1), generator: &rng), Sigmoid())
        for p in net.parameters where p.shape.count == 1 { p.assign(randomTensor(p.shape, seed: 80)) }
        let x = randomTensor([3, 16, 7, 7], seed: 81)
        Sequential.chainsConvolutions = true
        let chained = withoutGrad { net(x) }
        Sequential.chainsConvolutions = false
        let layered = withoutGrad { net(x) }
        assertClose(chained, layered, rtol: 1e-5, atol: 1e-6, "chain ending in a small-output layer")
        // The first three layers really ran as one chain, and only without a graph.
        let convT = net.layers[0] as! ConvTranspose2d, conv = net.layers[2] as! Conv2d, last = net.layers[4] as! ConvTranspose2d
        let steps = [
            ConvolutionStep(.convTranspose2d(outputPadding: (0, 0), outputSize: nil), weight: convT.weight.value, bias: convT.bias!.value,
                            geometry: ConvGeometry(kernel: 4, stride: 2, padding: 1), slope: 0.2),
            ConvolutionStep(.conv2d, weight: conv.weight.value, bias: nil, geometry: ConvGeometry(kernel: 3, stride: 2, padding: 1), slope: 0),
            ConvolutionStep(.convTranspose2d(outputPadding: (1, 1), outputSize: nil), weight: last.weight.value, bias: last.bias!.value,
                            geometry: ConvGeometry(kernel: 5, stride: 2, padding: 2), slope: nil),
        ]
        let direct = try XCTUnwrap(withoutGrad { Tensor.convolutionChain(x, steps) })
        XCTAssertEqual(direct.shape, [3, 20, 14, 14])
        let partial = withoutGrad { Sequential(Array(net.layers[0..<5]))(x) }
        XCTAssertEqual(differing(direct, partial), 0, "values that differ from the layer-by-layer path")
        XCTAssertNil(Tensor.convolutionChain(x, steps), "a recorded graph must not take the chain")
        Runtime.usesOneDNN = false
        XCTAssertNil(withoutGrad { Tensor.convolutionChain(x, steps) })
    }

    /// The small-output kernel after a oneDNN layer: strides, padding on one side only, two
    /// output channels, 9×9 images (more pixels than one 64-pixel tile), a first layer without
    /// activation, against conv2d + leaky ReLU layer by layer. Alone it is not used.
    func testSmallOutputConvolutionMatchesConv2d() throws {
        let saved = Runtime.usesOneDNN
        defer { Runtime.usesOneDNN = saved }
        Runtime.usesOneDNN = true
        try XCTSkipUnless(Runtime.usesOneDNN, "oneDNN is not available here")
        // Weights scaled so that activations stay near 1 and a tolerance of 1e-5 is rounding's.
        let x = randomTensor([3, 16, 9, 9], seed: 82), w = randomTensor([2, 16, 3, 3], seed: 83, scale: 0.1)
        let b = randomTensor([2], seed: 84), w0 = randomTensor([16, 16, 3, 3], seed: 85, scale: 0.1), b0 = randomTensor([16], seed: 86)
        let g0 = ConvGeometry(kernel: 3, padding: 1)
        for (g, slope0) in [(ConvGeometry(kernel: 3, stride: 2, padding: 1), Float(0.2)),
                            (ConvGeometry(kernel: (3, 3), stride: (1, 2), padding: (0, 2, 1, 0)), nil), (ConvGeometry(kernel: 3), 0)] {
            let first = ConvolutionStep(.conv2d, weight: w0, bias: b0, geometry: g0, slope: slope0)
            let step = ConvolutionStep(.conv2d, weight: w, bias: b, geometry: g, slope: 0.1)
            let y = try XCTUnwrap(withoutGrad { Tensor.convolutionChain(x, [first, step]) }, "\(g)")
            let expected = withoutGrad {
                let h = Tensor.conv2d(x, weight: w0, bias: b0, g0)
                return Tensor.conv2d(slope0.map { h.leakyRelu($0) } ?? h, weight: w, bias: b, g).leakyRelu(0.1)
            }
            assertClose(y, expected, rtol: 1e-5, atol: 1e-5, "\(g)")
            XCTAssertNil(withoutGrad { Tensor.convolutionChain(x, [step]) }, "alone, the layer-by-layer path runs it")
        }
    }

    /// A oneDNN convolution with its bias and leaky ReLU as one op (`Tensor.activatedConvolution`)
    /// against the separate ops: the output bit for bit; first-order gradients (where oneDNN makes
    /// the activation's gradient once in its blocked layout and sums the bias gradient on the
    /// way) and a gradient penalty's (double backward, through the rule's op-language form) up
    /// to rounding. Transposed and plain convolutions, 20 and 24 channels (partial blocks of 16),
    /// with and without a bias, ReLU and leaky slopes, 7×7 images (blocked layout) and 14×14 ones
    /// (channels-last).
    func testActivatedConvolutionMatchesSeparateOps() throws {
        let saved = (Runtime.usesOneDNN, Runtime.stridedGradientPhases)
        defer { (Runtime.usesOneDNN, Runtime.stridedGradientPhases) = saved }
        Runtime.usesOneDNN = true
        // The separate ops on the same stride-2 kernels as the fused ones, which do not run in phases.
        Runtime.stridedGradientPhases = 0
        try XCTSkipUnless(Runtime.usesOneDNN, "oneDNN is not available here")
        let x = randomTensor([3, 16, 7, 7], seed: 90)
        let cases: [(ConvolutionStep, String)] = [
            (ConvolutionStep(.convTranspose2d(outputPadding: (1, 1), outputSize: nil), weight: randomTensor([16, 20, 5, 5], seed: 91, scale: 0.1),
                             bias: randomTensor([20], seed: 92), geometry: ConvGeometry(kernel: 5, stride: 2, padding: 2), slope: 0.2), "convT + bias"),
            (ConvolutionStep(.conv2d, weight: randomTensor([24, 16, 3, 3], seed: 93, scale: 0.1), bias: randomTensor([24], seed: 94),
                             geometry: ConvGeometry(kernel: 3, stride: 2, padding: 1), slope: 0), "conv + bias, ReLU"),
            (ConvolutionStep(.conv2d, weight: randomTensor([20, 16, 3, 3], seed: 95, scale: 0.1), bias: nil,
                             geometry: ConvGeometry(kernel: 3, padding: 1), slope: 0.1), "conv, no bias"),
        ]
        // Outputs (in conv2d's terms) of 14×14 take oneDNN's channels-last layout, which the
        // activation's gradient is then written in.
        let big = randomTensor([2, 16, 14, 14], seed: 98)
        let largeCases: [(ConvolutionStep, String)] = [
            (ConvolutionStep(.convTranspose2d(outputPadding: (1, 1), outputSize: nil), weight: randomTensor([16, 20, 5, 5], seed: 99, scale: 0.1),
                             bias: randomTensor([20], seed: 100), geometry: ConvGeometry(kernel: 5, stride: 2, padding: 2), slope: 0.2), "14×14 convT + bias"),
            (ConvolutionStep(.conv2d, weight: randomTensor([24, 16, 3, 3], seed: 101, scale: 0.1), bias: randomTensor([24], seed: 102),
                             geometry: ConvGeometry(kernel: 3, padding: 1), slope: 0.1), "14×14 conv + bias"),
        ]
        for (step, what, x) in cases.map({ ($0.0, $0.1, x) }) + largeCases.map({ ($0.0, $0.1, big) }) {
            let params = [step.weight] + (step.bias.map { [$0] } ?? [])
            func separate(_ xi: Tensor, _ p: [Tensor]) -> Tensor {
                let b = p.count > 1 ? p[1] : nil
                switch step.kind {
                case .conv2d: return Tensor.conv2d(xi, weight: p[0], bias: b, step.geometry).leakyRelu(step.slope!)
                case let .convTranspose2d(op, _): return Tensor.convTranspose2d(xi, weight: p[0], bias: b, step.geometry, outputPadding: op).leakyRelu(step.slope!)
                }
            }
            func fused(_ xi: Tensor, _ p: [Tensor]) -> Tensor {
                var s = step
                s.weight = p[0]
                s.bias = p.count > 1 ? p[1] : nil
                return Tensor.activatedConvolution(xi, s)!
            }
            func run(_ f: (Tensor, [Tensor]) -> Tensor) -> (out: Tensor, grads: [Tensor], penalty: [Tensor]) {
                let xi = x.requiringGrad(), p = params.map { $0.requiringGrad() }
                let out = f(xi, p)
                let seed = randomTensor(out.shape, seed: 96)
                let grads = (out * seed).sum().gradients(wrt: [xi] + p)
                let gx = (f(xi, p) * seed).sum().gradients(wrt: [xi], createGraph: true)[0]
                return (out, grads, (gx * gx).sum().gradients(wrt: p))
            }
            XCTAssertNotNil(withoutGrad { Tensor.activatedConvolution(x, step) }, what)
            let a = run(fused), b = run(separate)
            XCTAssertEqual(differing(a.out, b.out), 0, "\(what): forward values that differ")
            for (k, (u, v)) in zip(a.grads, b.grads).enumerated() { assertClose(u, v, rtol: 1e-5, atol: 1e-5, "\(what): gradient \(k)") }
            for (k, (u, v)) in zip(a.penalty, b.penalty).enumerated() { assertClose(u, v, rtol: 1e-4, atol: 1e-5, "\(what): penalty gradient \(k)") }
        }
        // Through Sequential, as training runs it: the same output and parameter gradients.
        let net = Sequential(ConvTranspose2d(16, 20, kernel: 5, stride: 2, padding: .symmetric(2), outputPadding: 1, generator: &rng), LeakyReLU(0.2),
                             Conv2d(20, 24, kernel: 3, stride: 2, padding: .symmetric(1), generator: &rng), LeakyReLU(0.2))
        let savedFlag = Sequential.activatesConvolutions
        defer { Sequential.activatesConvolutions = savedFlag }
        func train(_ on: Bool) -> (Tensor, [Tensor]) {
            Sequential.activatesConvolutions = on
            let y = net(x)
            return (y, (y * randomTensor(y.shape, seed: 97)).sum().gradients(wrt: net.parameters.map(\.value)))
        }
        let (y1, g1) = train(true), (y0, g0) = train(false)
        XCTAssertEqual(differing(y1, y0), 0)
        for (u, v) in zip(g1, g0) { assertClose(u, v, rtol: 1e-5, atol: 1e-5, "Sequential") }
        Runtime.usesOneDNN = false
        XCTAssertNil(Tensor.activatedConvolution(x, cases[0].0), "without oneDNN the separate ops run")
    }

    private func differing(_ a: Tensor, _ b: Tensor) -> Int {
        zip(a.scalars, b.scalars).filter { $0.bitPattern != $1.bitPattern }.count + abs(a.count - b.count)
    }

    func testDropoutTrainAndEval() {
        let drop = Dropout(0.4, random: RandomSource(seed: 9))
        let x = Tensor.ones([100_000])
        let y = drop(x)
        let zeros = y.scalars.filter { $0 == 0 }.count
        XCTAssertEqual(Double(zeros) / 100_000, 0.4, accuracy: 0.01)
        XCTAssertEqual(y.scalars.first { $0 != 0 }!, 1 / 0.6, accuracy: 1e-6)
        drop.eval()
        XCTAssertEqual(drop(x).scalars, x.scalars)
    }

    func testSpectralNormSigmaConvergesToLargestSingularValue() {
        let lin = Linear(6, 4, generator: &rng)
        let sn = SpectralNorm(lin, generator: &rng)
        for _ in 0..<200 { _ = sn(Tensor.zeros([1, 6])) }
        // Independent reference: power iteration on WᵀW in Double until it stops changing.
        let w = lin.weight.value.scalars.map(Double.init)
        var v = [Double](repeating: 1, count: 6)
        var sigma = 0.0
        for _ in 0..<2000 {
            var u = [Double](repeating: 0, count: 4)
            for r in 0..<4 { for c in 0..<6 { u[r] += w[r * 6 + c] * v[c] } }
            var nv = [Double](repeating: 0, count: 6)
            for c in 0..<6 { for r in 0..<4 { nv[c] += w[r * 6 + c] * u[r] } }
            let norm = nv.map { $0 * $0 }.reduce(0, +).squareRoot()
            v = nv.map { $0 / norm }
            sigma = norm.squareRoot()
        }
        sn.eval()
        XCTAssertEqual(Double(sn.sigma().item), sigma, accuracy: 1e-4 * sigma)
        XCTAssertEqual(sn.stateDict().map(\.0), ["weight_orig", "bias", "weight_u", "weight_v"])
        // The normalized weight has spectral norm 1: ‖W/σ · v‖ = 1 for the top singular vector.
        let wn = lin.weight.value.detached() / sn.sigma()
        let top = Tensor.matmul(wn, sn.v.value.reshaped([-1, 1]))
        XCTAssertEqual(top.square().sum().sqrt().item, 1, accuracy: 1e-3)
    }

    func testMinibatchLayers() {
        let x = randomTensor([5, 2, 3, 3], seed: 7)
        let y = MinibatchStdDev()(x)
        XCTAssertEqual(y.shape, [5, 3, 3, 3])
        let expected = (x.variance(axes: [0]) + 1e-8).sqrt().mean().item
        XCTAssertEqual(y.sliced(axis: 1, 2..<3).scalars, [Float](repeating: expected, count: 45))
        let md = MinibatchDiscrimination(inFeatures: 4, kernels: 3, kernelDim: 2, generator: &rng)
        let f = randomTensor([6, 4], seed: 8)
        let out = md(f)
        XCTAssertEqual(out.shape, [6, 7])
        // Identical rows are at distance 0 from each other: each adds exp(0) = 1.
        let same = md(Tensor.ones([3, 4]))
        XCTAssertEqual(same.sliced(axis: 1, 4..<7).scalars, [Float](repeating: 2, count: 9))
        checkGradient([f], "minibatch discrimination") { md($0[0]).sum() }
    }

    func testInitializers() {
        let w = Initializer.pytorchDefault.weight([64, 32, 3, 3], generator: &rng)
        let bound = 1 / Float(32 * 9).squareRoot()
        XCTAssertLessThanOrEqual(w.abs().max().item, bound)
        XCTAssertEqual(w.variance().item, bound * bound / 3, accuracy: 0.05 * bound * bound / 3)
        let g = Initializer.glorotUniform.weight([200, 100], generator: &rng)
        let limit = (6 / Float(300)).squareRoot()
        XCTAssertLessThanOrEqual(g.abs().max().item, limit)
        XCTAssertEqual(g.variance().item, limit * limit / 3, accuracy: 0.05 * limit * limit / 3)
        let n = Initializer.normal(std: 0.02).weight([100, 100], generator: &rng)
        XCTAssertEqual(n.variance().item.squareRoot(), 0.02, accuracy: 0.001)
        let t = Initializer.truncatedNormal(std: 0.02).weight([100, 100], generator: &rng)
        XCTAssertLessThanOrEqual(t.abs().max().item, 0.04)
        XCTAssertEqual(Initializer.glorotUniform.bias(5, weightShape: [5, 3], generator: &rng).scalars, [0, 0, 0, 0, 0])
    }
}
