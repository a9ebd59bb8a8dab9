import ArgumentParser
import Engine
import Foundation
import GAN

/// `gan bench engine`: sgemm GFLOP/s and forward + backward GFLOP/s of the DCGAN (or MLP, or the
/// WGAN-GP critic's) layers; with `--breakdown`, each primitive on its own and what one training
/// step's primitives add up to, the step's floor if nothing else took time.
struct BenchEngineCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "engine",
        abstract: "Benchmark sgemm and a model's layers (forward + backward) at one batch size.",
        discussion: """
        Each layer runs forward, then the gradients of its input and weight; GFLOP/s
        counts 3 × the forward multiply-adds × 2. fraction_of_sgemm compares with a
        square sgemm measured in the same run. With --breakdown, each primitive is
        timed on its own and step_primitives_ms adds them up as often as one training
        step of the model runs them (the generator's layers once, the discriminator's
        forward three times, its weight gradient twice, its input gradient once): the
        time a step would take if nothing but these primitives took time, and
        max_img_per_s = batch / that. The dcgan generator's layers run channels-last
        where the model builds them so (AVX2 without AVX-512: the implicit-GEMM
        kernels; AVX-512: the Winograd passes; GAN_CHANNELS_LAST_G=0 keeps NCHW).
        --model wgan-gp-critic times the dcgan-bn critic's two large channels-last
        convolutions, which a WGAN-GP step runs 5 times forward, 5 for the input
        gradient and 4 for the weight gradient (through the engine's implicit GEMM:
        without AVX-512 all of them, with it those writing 128 channels or more;
        GAN_IGEMM=0 runs oneDNN instead, GAN_IGEMM=2 the kernels for all, to compare;
        with AVX-512 both layers' three passes as Winograd products, 2×2 tiles for
        64 → 128 and 4×4 for 128 → 256, GAN_WINOGRAD=0 to compare; the forward and
        input gradient reuse their transformed kernel while the weights stay equal).
        GFLOP/s counts the direct convolution's work, so a Winograd pass can
        exceed the sgemm yardstick.

        Example:
          swift build -c release && .build/release/gan bench engine --breakdown --json
          .build/release/gan bench engine --model mlp --breakdown
          .build/release/gan bench engine --model wgan-gp-critic --breakdown
        """
    )

    @Option(help: "Model whose layers to time: dcgan, mlp or wgan-gp-critic.") var model = "dcgan"
    @Option(help: "Batch size.") var batch = 64
    @Option(help: "Timed repetitions per layer (the median is reported).") var iters = 10
    @Option(help: "Size of the square sgemm used as the yardstick.") var gemmSize = 1024
    @Flag(help: "Print one JSON object.") var json = false

    func validate() throws {
        guard batch > 0 else { throw ValidationError("--batch must be positive, got \(batch)") }
        guard iters > 0 else { throw ValidationError("--iters must be positive, got \(iters)") }
        guard gemmSize > 0 else { throw ValidationError("--gemm-size must be positive, got \(gemmSize)") }
        guard Self.models.contains(model) else {
            throw ValidationError("--model \(model) is not one of \(Self.models.joined(separator: ", "))")
        }
    }

    static let models = ["dcgan", "mlp", "wgan-gp-critic"]

    @Flag(help: "Also time the forward, input-gradient and weight-gradient primitives of each layer separately.")
    var breakdown = false

    struct Layer {
        let name: String
        let macs: Double
        let run: () -> Void
        /// Primitives timed on their own with --breakdown, with how often a training step runs each.
        var parts: [Part] = []
    }

    struct Part {
        let name: String
        let perStep: Int
        let body: () -> Void
        init(_ name: String, _ perStep: Int, _ body: @escaping () -> Void) { (self.name, self.perStep, self.body) = (name, perStep, body) }
    }

    /// How often one training step runs a layer's forward, input gradient and weight gradient: a
    /// generator layer once each (no input gradient for the first), a discriminator layer's
    /// forward on real, fake and fake again, its weight gradient for the real and fake halves of
    /// its loss, its input gradient once (for the generator's loss).
    static func perStep(discriminator: Bool, first: Bool) -> (forward: Int, input: Int, weight: Int) {
        discriminator ? (3, 1, 2) : (1, first ? 0 : 1, 1)
    }

    func mlpLayers() -> [Layer] {
        var rng = RandomGenerator(seed: 1)
        func linear(_ name: String, _ fin: Int, _ fout: Int, discriminator: Bool, first: Bool) -> Layer {
            let x = Tensor.randn([batch, fin], generator: &rng).requiringGrad()
            let w = (Tensor.randn([fout, fin], generator: &rng) * 0.02).requiringGrad()
            let dy = Tensor.randn([batch, fout], generator: &rng)
            let xc = x.detached(), wc = w.detached()
            let n = Self.perStep(discriminator: discriminator, first: first)
            return Layer(name: name, macs: Double(batch * fin * fout), run: {
                _ = (Tensor.linear(x, weight: w) * dy).sum().gradients(wrt: [x, w])
            }, parts: [
                Part("forward x·Wᵀ", n.forward, { _ = Tensor.matmul(xc, wc, transposeB: true) }),
                Part("input grad dy·W", n.input, { _ = Tensor.matmul(dy, wc) }),
                Part("weight grad dyᵀ·x", n.weight, { _ = Tensor.matmul(dy, xc, transposeA: true) }),
            ])
        }
        return [
            linear("G linear 100→256", 100, 256, discriminator: false, first: true),
            linear("G linear 256→256", 256, 256, discriminator: false, first: false),
            linear("G linear 256→784", 256, 784, discriminator: false, first: false),
            linear("D linear 784→64", 784, 64, discriminator: true, first: true),
            linear("D linear 64→64", 64, 64, discriminator: true, first: false),
            linear("D linear 64→1", 64, 1, discriminator: true, first: false),
        ]
    }

    /// The dcgan's layers; the generator's channels-last where the model builds it so
    /// (`ModelZoo.channelsLastDCGANGenerator`: on the implicit-GEMM kernels or Winograd's).
    func layers() -> [Layer] {
        var rng = RandomGenerator(seed: 1)
        let last = ModelZoo.channelsLastDCGANGenerator
        let layout = last ? " NHWC" : ""
        func convT(_ name: String, cin: Int, cout: Int, k: Int, from h: Int) -> Layer {
            let n = Self.perStep(discriminator: false, first: false)
            let x = Tensor.randn(last ? [batch, h, h, cin] : [batch, cin, h, h], generator: &rng).requiringGrad()
            let w = (Tensor.randn([cin, cout, k, k], generator: &rng) * 0.02).requiringGrad()
            let geo = ConvGeometry(kernel: k, stride: 2, padding: k / 2).withChannelsLast(last)
            let dy = Tensor.randn(last ? [batch, 2 * h, 2 * h, cout] : [batch, cout, 2 * h, 2 * h], generator: &rng)
            let xc = x.detached(), wc = w.detached()
            return Layer(name: name, macs: Double(batch * cin * h * h * cout * k * k), run: {
                let y = Tensor.convTranspose2d(x, weight: w, geo, outputPadding: (1, 1))
                _ = (y * dy).sum().gradients(wrt: [x, w])
            }, parts: [
                Part("forward convTranspose2d", n.forward, { _ = Tensor.convTranspose2d(xc, weight: wc, geo, outputPadding: (1, 1)) }),
                Part("input grad conv2d", n.input, { _ = Tensor.conv2d(dy, weight: wc, geo) }),
                Part("weight grad conv2dWeightGrad", n.weight, { _ = Tensor.conv2dWeightGrad(dy, xc, geo) }),
            ])
        }
        func conv(_ name: String, cin: Int, cout: Int, k: Int, stride: Int, at h: Int, discriminator: Bool) -> Layer {
            convolution(name, cin: cin, cout: cout, k: k, stride: stride, at: h, channelsLast: last && !discriminator,
                        perStep: Self.perStep(discriminator: discriminator, first: false), generator: &rng)
        }
        let lx = Tensor.randn([batch, 100], generator: &rng).requiringGrad()
        let lw = (Tensor.randn([6272, 100], generator: &rng) * 0.02).requiringGrad()
        let ldy = Tensor.randn([batch, 6272], generator: &rng)
        let lxc = lx.detached(), lwc = lw.detached()
        return [
            convT("convTranspose2d\(layout) 128→128 k5 s2 7→14", cin: 128, cout: 128, k: 5, from: 7),
            convT("convTranspose2d\(layout) 128→128 k5 s2 14→28", cin: 128, cout: 128, k: 5, from: 14),
            conv("conv2d\(layout) 128→1 k7 p3 28×28", cin: 128, cout: 1, k: 7, stride: 1, at: 28, discriminator: false),
            conv("conv2d 1→64 k5 s2 28→14", cin: 1, cout: 64, k: 5, stride: 2, at: 28, discriminator: true),
            conv("conv2d 64→64 k3 s2 14→7", cin: 64, cout: 64, k: 3, stride: 2, at: 14, discriminator: true),
            Layer(name: "linear 100→6272", macs: Double(batch * 100 * 6272), run: {
                let y = Tensor.linear(lx, weight: lw)
                _ = (y * ldy).sum().gradients(wrt: [lx, lw])
            }, parts: [
                Part("forward x·Wᵀ", 1, { _ = Tensor.matmul(lxc, lwc, transposeB: true) }),
                Part("weight grad dyᵀ·x", 1, { _ = Tensor.matmul(ldy, lxc, transposeA: true) }),
            ]),
        ]
    }

    /// A convolution with padding k / 2 on h × h images (channels-last: [N, H, W, C]), its
    /// forward and both gradients, each part run `perStep` times a training step.
    func convolution(_ name: String, cin: Int, cout: Int, k: Int, stride: Int, at h: Int, channelsLast: Bool,
                     perStep n: (forward: Int, input: Int, weight: Int), generator rng: inout RandomGenerator) -> Layer {
        let geo = ConvGeometry(kernel: k, stride: stride, padding: k / 2).withChannelsLast(channelsLast)
        let (oh, ow) = geo.smallSize(big: h, h)
        let x = Tensor.randn(channelsLast ? [batch, h, h, cin] : [batch, cin, h, h], generator: &rng).requiringGrad()
        let w = (Tensor.randn([cout, cin, k, k], generator: &rng) * 0.02).requiringGrad()
        let dy = Tensor.randn(channelsLast ? [batch, oh, ow, cout] : [batch, cout, oh, ow], generator: &rng)
        let xc = x.detached(), wc = w.detached()
        return Layer(name: name, macs: Double(batch * cout * oh * ow * cin * k * k), run: {
            let y = Tensor.conv2d(x, weight: w, geo)
            _ = (y * dy).sum().gradients(wrt: [x, w])
        }, parts: [
            Part("forward conv2d", n.forward, { _ = Tensor.conv2d(xc, weight: wc, geo) }),
            Part("input grad convTranspose2d", n.input, { _ = Tensor.convTranspose2d(dy, weight: wc, geo, outputSize: (h, h)) }),
            Part("weight grad conv2dWeightGrad", n.weight, { _ = Tensor.conv2dWeightGrad(xc, dy, geo) }),
        ])
    }

    /// The dcgan-bn critic's 5×5 stride-2 convolutions (default filters), channels-last as the
    /// critic runs them. A WGAN-GP step runs each 5 times forward (real, fake, interpolates, the
    /// generator's step and the penalty's adjoint), 5 for the input gradient and 4 for the weight
    /// gradient (docs/performance-log.md, session 19).
    func criticLayers() -> [Layer] {
        var rng = RandomGenerator(seed: 1)
        return [
            convolution("conv2d NHWC 64→128 k5 s2 28→14", cin: 64, cout: 128, k: 5, stride: 2, at: 28, channelsLast: true,
                        perStep: (5, 5, 4), generator: &rng),
            convolution("conv2d NHWC 128→256 k5 s2 14→7", cin: 128, cout: 256, k: 5, stride: 2, at: 14, channelsLast: true,
                        perStep: (5, 5, 4), generator: &rng),
        ]
    }

    func run() throws {
        let gemm = Benchmark.sgemmGFLOPS(size: gemmSize)
        var results: [[String: Any]] = []
        var stepSeconds = 0.0
        for layer in model == "mlp" ? mlpLayers() : model == "wgan-gp-critic" ? criticLayers() : layers() {
            let seconds = Benchmark.median(warmup: 2, iterations: iters, layer.run)
            let gflops = 3 * 2 * layer.macs / seconds / 1e9
            var entry: [String: Any] = ["name": layer.name, "gflops": Benchmark.round(gflops, 1),
                                        "fraction_of_sgemm": Benchmark.round(gflops / gemm, 3),
                                        "median_ms": Benchmark.round(seconds * 1000, 2)]
            if breakdown {
                entry["parts"] = layer.parts.map { part -> [String: Any] in
                    let t = Benchmark.median(warmup: 1, iterations: iters, part.body)
                    stepSeconds += Double(part.perStep) * t
                    return ["name": part.name, "median_ms": Benchmark.round(t * 1000, 3), "per_step": part.perStep,
                            "gflops": Benchmark.round(2 * layer.macs / t / 1e9, 1)]
                }
            }
            results.append(entry)
        }
        var report: [String: Any] = [
            "blas": BLASInfo.description, "blas_kernel": BLASInfo.kernel, "threads": Runtime.defaultThreads,
            "convolutions": Runtime.convolutionBackend, "matmul": Runtime.matmulBackend,
            "flush_denormals": Runtime.flushesDenormals, "batch": batch,
            "sgemm_gflops": Benchmark.round(gemm, 1), "sgemm_size": gemmSize, "layers": results, "model": model,
        ]
        if breakdown {
            report["step_primitives_ms"] = Benchmark.round(stepSeconds * 1000, 2)
            report["max_img_per_s"] = Benchmark.round(Double(batch) / stepSeconds, 1)
        }
        if json {
            print(Benchmark.json(report))
        } else {
            print("BLAS: \(BLASInfo.description); threads \(Runtime.defaultThreads); flush-to-zero \(Runtime.flushesDenormals)")
            print("sgemm \(gemmSize)×\(gemmSize): \(Benchmark.round(gemm, 1)) GFLOP/s")
            for r in results {
                let name = (r["name"] as! String).padding(toLength: 40, withPad: " ", startingAt: 0)
                print("\(name) \(r["gflops"]!) GFLOP/s  \(r["fraction_of_sgemm"]!) of sgemm  \(r["median_ms"]!) ms")
                for part in r["parts"] as? [[String: Any]] ?? [] {
                    print("    \((part["name"] as! String).padding(toLength: 36, withPad: " ", startingAt: 0)) \(part["gflops"]!) GFLOP/s  \(part["median_ms"]!) ms  ×\(part["per_step"]!) a step")
                }
            }
            if breakdown {
                print("one \(model == "wgan-gp-critic" ? "WGAN-GP step's critic-convolution" : "\(model) training step's") primitives: \(report["step_primitives_ms"]!) ms → at most \(report["max_img_per_s"]!) img/s if nothing else took time")
            }
        }
    }
}
