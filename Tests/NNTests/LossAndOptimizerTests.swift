import Engine
import Foundation
import NN
import TestSupport
import XCTest

final class LossAndOptimizerTests: XCTestCase {
    func testLossesAgainstFixturesAndClosedForms() throws {
        let logits = try Fixtures.get("bce_with_logits_mean.logits"), target = try Fixtures.get("bce_with_logits_mean.target")
        assertClose(Loss.bceWithLogits(logits, target).reshaped([1]), try Fixtures.get("bce_with_logits_mean.y"), "BCE with logits")
        assertClose(Loss.bce(logits.sigmoid(), target).reshaped([1]), try Fixtures.get("bce_with_logits_mean.y"), rtol: 1e-3, "BCE on probabilities")
        let ce = try Fixtures.get("cross_entropy_mean.logits")
        let labels = try Fixtures.get("cross_entropy_mean.labels").scalars.map { Int($0) }
        assertClose(Loss.crossEntropy(ce, labels: labels).reshaped([1]), try Fixtures.get("cross_entropy_mean.y"), "cross-entropy")
        // Closed forms on a small case.
        let p = Tensor([0.9, 0.2, 1.0]), t = Tensor([1, 0, 0])
        let expected = -(log(0.9) + log(0.8) + -100) / 3     // log(1 − 1) is clamped to −100
        XCTAssertEqual(Double(Loss.bce(p, t).item), expected, accuracy: 1e-5)
        // 1 − ε is rounded to Float, so the clipped log is log(1 − Float(1 − 1e-7)), as in Keras' float32.
        let clipped = Double(1 - Float(1 - 1e-7))
        XCTAssertEqual(Double(Loss.kerasBCE(p, t).item), -(log(0.9) + log(0.8) + log(clipped)) / 3, accuracy: 1e-4)
        XCTAssertEqual(Loss.mse(Tensor([1, 2]), Tensor([0, 4])).item, 2.5)
        XCTAssertEqual(Loss.hingeDiscriminator(real: Tensor([2, 0.5]), fake: Tensor([-2, 0.5])).item, 0.25 + 0.75, accuracy: 1e-6)
        XCTAssertEqual(Loss.wassersteinCritic(real: Tensor([1, 3]), fake: Tensor([0, 1])).item, -1.5)
        // Saturated probabilities (a sigmoid that underflowed to exactly 0 or 1) keep a finite
        // gradient, PyTorch's (p − t) / max(p(1 − p), 1e-12).
        let saturated = Tensor([0, 1, 0.5]).requiringGrad()
        let sg = Loss.bce(saturated, Tensor([1, 0, 1])).gradients(wrt: [saturated])[0].scalars
        XCTAssertEqual(sg[0], -1e12 / 3, accuracy: 1e6)
        XCTAssertEqual(sg[1], 1e12 / 3, accuracy: 1e6)
        XCTAssertEqual(sg[2], (0.5 - 1) / 0.25 / 3, accuracy: 1e-6)
        XCTAssertEqual(Loss.bce(saturated, Tensor([1, 0, 1])).item, Float(100 + 100 - log(0.5)) / 3, accuracy: 1e-4)
        // Gradients of the closed forms.
        let x = Tensor([0.3, -0.7]).requiringGrad()
        let g = Loss.bceWithLogits(x, Tensor([1, 0])).gradients(wrt: [x])[0]
        assertClose(g, (x.detached().sigmoid() - Tensor([1, 0])) / 2, "dBCE/dlogits = (σ(x) − t)/N")
        let r = Tensor([0.3, 1.5]).requiringGrad(), f = Tensor([-1.5, 0.2]).requiringGrad()
        let h = Loss.hingeDiscriminator(real: r, fake: f).gradients(wrt: [r, f])
        assertClose(h[0], Tensor([-0.5, 0]), "hinge gradient, real (margin met at 1.5)")
        assertClose(h[1], Tensor([0, 0.5]), "hinge gradient, fake (margin met at −1.5)")
    }

    /// One parameter, three steps with known gradients, against Adam's formulas in Double.
    func testAdamMatchesHandComputation() {
        let p = Parameter(Tensor([1.0, -2.0]))
        let adam = Adam([p], learningRate: 0.1, beta1: 0.5, beta2: 0.9, eps: 1e-8, weightDecay: 0.01)
        var value = [1.0, -2.0], m = [0.0, 0.0], v = [0.0, 0.0]
        let grads: [[Double]] = [[0.5, -1.0], [0.25, 2.0], [-0.1, 0.3]]
        for (step, g) in grads.enumerated() {
            p.value.grad = Tensor(g.map(Float.init))
            adam.step()
            let t = Double(step + 1)
            for k in 0..<2 {
                let gk = g[k] + 0.01 * value[k]
                m[k] = 0.5 * m[k] + 0.5 * gk
                v[k] = 0.9 * v[k] + 0.1 * gk * gk
                let mhat = m[k] / (1 - pow(0.5, t)), vhat = v[k] / (1 - pow(0.9, t))
                value[k] -= 0.1 * mhat / (vhat.squareRoot() + 1e-8)
            }
            for k in 0..<2 { XCTAssertEqual(Double(p.value.scalars[k]), value[k], accuracy: 1e-6, "step \(step + 1)") }
        }
    }

    /// The AVX-512 or AVX2 Adam kernel (whichever the CPU has) gives the portable kernel's values bit
    /// for bit: 4,099 values (whole vectors and a masked tail), with and without weight decay. It
    /// divides √v by the bias correction through a reciprocal and a fused-multiply-add remainder,
    /// which must round as the division does for every value; a gradient of ±1e30 makes v = ∞
    /// (where the remainder alone would be ∞ − ∞), and a zero gradient v = 0.
    func testWideAdamKernelMatchesPortableBitForBit() {
        let saved = WideKernels.enabled
        defer { WideKernels.enabled = saved }
        let count = 4099
        func run(wide: Bool, weightDecay: Float) -> [Float] {
            WideKernels.enabled = wide
            let p = Parameter(randomTensor([count], seed: 90))
            let adam = Adam([p], learningRate: 0.01, beta1: 0.5, beta2: 0.999, eps: 1e-8, weightDecay: weightDecay)
            for step in 0..<3 {
                var g = randomTensor([count], seed: 91 + UInt64(step), scale: 0.1).scalars
                (g[5], g[6], g[7]) = (1e30, -1e30, 0)
                p.value.grad = Tensor(g)
                adam.step()
            }
            return p.value.scalars
        }
        for wd: Float in [0, 0.01] {
            let wide = run(wide: true, weightDecay: wd), portable = run(wide: false, weightDecay: wd)
            XCTAssertEqual(wide.map(\.bitPattern), portable.map(\.bitPattern), "weight decay \(wd)")
            XCTAssertNotEqual(wide, randomTensor([count], seed: 90).scalars)
            XCTAssertTrue(wide[5].isFinite && wide[6].isFinite, "v = ∞ leaves the parameter finite, as the division does")
        }
    }

    /// Adam updates all its tensors in one pass split over threads, in shares that cut through
    /// tensors: the values must equal one Adam per tensor bit for bit (a tensor without a
    /// gradient is skipped and counts no step).
    func testAdamOverManyTensorsMatchesOneTensorAtATime() {
        let sizes = [40_003, 7, 50_017, 30_000]
        func params() -> [Parameter] { sizes.enumerated().map { Parameter(randomTensor([$1], seed: 70 + UInt64($0))) } }
        let together = params(), apart = params()
        let shared = Adam(together, learningRate: 0.01, weightDecay: 0.01)
        let single = apart.map { Adam([$0], learningRate: 0.01, weightDecay: 0.01) }
        for step in 0..<2 {
            for (i, (a, b)) in zip(together, apart).enumerated() where !(step == 0 && i == 1) {
                a.value.grad = randomTensor([sizes[i]], seed: 80 + UInt64(10 * step + i), scale: 0.1)
                b.value.grad = a.value.grad
            }
            shared.step()
            for (i, o) in single.enumerated() where !(step == 0 && i == 1) { o.step() }
            for (a, b) in zip(together, apart) { a.value.grad = nil; b.value.grad = nil }
        }
        for (i, (a, b)) in zip(together, apart).enumerated() {
            XCTAssertEqual(a.value.scalars.map(\.bitPattern), b.value.scalars.map(\.bitPattern), "tensor \(i)")
        }
        XCTAssertNotEqual(together[2].value.scalars, randomTensor([sizes[2]], seed: 72).scalars)
    }

    /// Adam reports whether every value it wrote is finite (the trainer's divergence check uses
    /// that instead of a pass of its own): with the AVX-512 kernel and the portable one, for a
    /// NaN or ±Inf gradient in a masked tail, in the second of two threads' shares, or nowhere.
    func testAdamReportsNonFiniteUpdates() {
        let saved = WideKernels.enabled
        defer { WideKernels.enabled = saved }
        for wide in [true, false] {
            WideKernels.enabled = wide
            for (tensor, index, bad) in [(0, 52, Float.nan), (1, 69_999, .infinity), (1, 3, -.infinity), (-1, 0, 0)] {
                let params = [Parameter(randomTensor([53], seed: 60)), Parameter(randomTensor([70_000], seed: 61))]
                let adam = Adam(params, learningRate: 0.01)
                for (i, p) in params.enumerated() {
                    var g = randomTensor(p.shape, seed: 62 + UInt64(i), scale: 0.1).scalars
                    if i == tensor { g[index] = bad }
                    p.value.grad = Tensor(g)
                }
                adam.step()
                XCTAssertEqual(adam.lastStepCheck?.updated, 2)
                XCTAssertEqual(adam.lastStepCheck?.allFinite, tensor < 0, "wide \(wide), \(bad) in tensor \(tensor) at \(index)")
            }
        }
    }

    func testSGDMomentumNesterovAndRMSProp() {
        let a = Parameter(Tensor([1.0])), b = Parameter(Tensor([1.0])), c = Parameter(Tensor([1.0]))
        let sgd = SGD([a], learningRate: 0.1, momentum: 0.9)
        let nesterov = SGD([b], learningRate: 0.1, momentum: 0.9, nesterov: true)
        let rms = RMSProp([c], learningRate: 0.01, alpha: 0.9, eps: 1e-8)
        for p in [a, b, c] { p.value.grad = Tensor([2.0]) }
        sgd.step(); nesterov.step(); rms.step()
        XCTAssertEqual(a.value.item, 1 - 0.1 * 2, accuracy: 1e-6)                 // buf = g
        XCTAssertEqual(b.value.item, 1 - 0.1 * (2 + 0.9 * 2), accuracy: 1e-6)     // g + μ·buf
        let s1: Float = 0.1 * 4
        XCTAssertEqual(c.value.item, 1 - 0.01 * 2 / (s1.squareRoot() + 1e-8), accuracy: 1e-6)
        sgd.step()
        XCTAssertEqual(a.value.item, 0.8 - 0.1 * (0.9 * 2 + 2), accuracy: 1e-6)  // buf = μ·buf + g
    }

    func testCheckpointRoundTripIsBitExact() throws {
        var rng = RandomGenerator(seed: 5)
        let net = Sequential(Conv2d(1, 2, kernel: 3, generator: &rng), BatchNorm(2), Flatten(), Linear(8, 1, generator: &rng))
        let adam = Adam(net.parameters, learningRate: 1e-3)
        for _ in 0..<2 {
            net.zeroGrad()
            net(randomTensor([3, 1, 4, 4], seed: 6)).square().mean().backward()
            adam.step()
        }
        var ck = Checkpoint()
        ck.add(net, as: "model")
        ck.add(adam, as: "optimizer")
        _ = Tensor.randn([5], generator: &rng)
        ck.setRandomState("data", rng)
        ck.metadata["config"] = #"{"lr": 0.001}"#
        let path = NSTemporaryDirectory() + "/ck-\(UUID().uuidString).safetensors"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try ck.write(to: path)

        var rng2 = RandomGenerator(seed: 99)
        let net2 = Sequential(Conv2d(1, 2, kernel: 3, generator: &rng2), BatchNorm(2), Flatten(), Linear(8, 1, generator: &rng2))
        let adam2 = Adam(net2.parameters, learningRate: 1e-3)
        let back = try Checkpoint.read(path: path)
        try back.load(into: net2, from: "model")
        try back.load(into: adam2, from: "optimizer")
        XCTAssertEqual(back.file.dtypes["model.1.num_batches_tracked"], .i64)
        for ((n1, t1), (n2, t2)) in zip(net.stateDict(), net2.stateDict()) {
            XCTAssertEqual(n1, n2)
            XCTAssertEqual(t1.scalars.map(\.bitPattern), t2.scalars.map(\.bitPattern), n1)
        }
        for ((n1, t1), (_, t2)) in zip(adam.stateDict(), adam2.stateDict()) {
            XCTAssertEqual(t1.scalars.map(\.bitPattern), t2.scalars.map(\.bitPattern), n1)
        }
        XCTAssertEqual(try back.randomState("data"), rng)
        XCTAssertEqual(back.metadata["config"], #"{"lr": 0.001}"#)
        // One more identical step on both gives identical weights.
        for (n, o) in [(net, adam), (net2, adam2)] as [(Module, Adam)] {
            n.zeroGrad()
            n(randomTensor([3, 1, 4, 4], seed: 7)).square().mean().backward()
            o.step()
        }
        XCTAssertEqual(net.stateDict().flatMap { $0.1.scalars.map(\.bitPattern) }, net2.stateDict().flatMap { $0.1.scalars.map(\.bitPattern) })
    }
}
