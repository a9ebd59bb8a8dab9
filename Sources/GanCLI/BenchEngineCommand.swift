import ArgumentParser
import Engine
import Foundation

/// `gan bench engine`: sgemm GFLOP/s and forward + backward GFLOP/s of the DCGAN layers.
struct BenchEngineCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "engine",
        abstract: "Benchmark sgemm and the DCGAN layers (forward + backward) at one batch size.",
        discussion: """
        Each layer runs forward, then the gradients of its input and weight; GFLOP/s counts
        3 × the forward multiply-adds × 2. fraction_of_sgemm compares with a square sgemm
        measured in the same run.

        Example:
          swift build -c release && .build/release/gan bench engine --json
        """
    )

    @Option(help: "Batch size.") var batch = 64
    @Option(help: "Timed repetitions per layer (the median is reported).") var iters = 10
    @Option(help: "Size of the square sgemm used as the yardstick.") var gemmSize = 1024
    @Flag(help: "Print one JSON object.") var json = false

    func validate() throws {
        guard batch > 0 else { throw ValidationError("--batch must be positive, got \(batch)") }
        guard iters > 0 else { throw ValidationError("--iters must be positive, got \(iters)") }
        guard gemmSize > 0 else { throw ValidationError("--gemm-size must be positive, got \(gemmSize)") }
    }

    @Flag(help: "Also time the forward, input-gradient and weight-gradient primitives of each layer separately.")
    var breakdown = false

    struct Layer {
        let name: String
        let macs: Double
        let run: () -> Void
        /// (primitive, body) pairs timed on their own with --breakdown.
        var parts: [(String, () -> Void)] = []
    }

    func layers() -> [Layer] {
        var rng = RandomGenerator(seed: 1)
        func convT(_ name: String, cin: Int, cout: Int, k: Int, from h: Int) -> Layer {
            let x = Tensor.randn([batch, cin, h, h], generator: &rng).requiringGrad()
            let w = (Tensor.randn([cin, cout, k, k], generator: &rng) * 0.02).requiringGrad()
            let geo = ConvGeometry(kernel: k, stride: 2, padding: k / 2)
            let dy = Tensor.randn([batch, cout, 2 * h, 2 * h], generator: &rng)
            let xc = x.detached(), wc = w.detached()
            return Layer(name: name, macs: Double(batch * cin * h * h * cout * k * k), run: {
                let y = Tensor.convTranspose2d(x, weight: w, geo, outputPadding: (1, 1))
                _ = (y * dy).sum().gradients(wrt: [x, w])
            }, parts: [
                ("forward convTranspose2d", { _ = Tensor.convTranspose2d(xc, weight: wc, geo, outputPadding: (1, 1)) }),
                ("input grad conv2d", { _ = Tensor.conv2d(dy, weight: wc, geo) }),
                ("weight grad conv2dWeightGrad", { _ = Tensor.conv2dWeightGrad(dy, xc, geo) }),
            ])
        }
        func conv(_ name: String, cin: Int, cout: Int, k: Int, stride: Int, at h: Int) -> Layer {
            let x = Tensor.randn([batch, cin, h, h], generator: &rng).requiringGrad()
            let w = (Tensor.randn([cout, cin, k, k], generator: &rng) * 0.02).requiringGrad()
            let geo = ConvGeometry(kernel: k, stride: stride, padding: k / 2)
            let (oh, ow) = geo.smallSize(big: h, h)
            let dy = Tensor.randn([batch, cout, oh, ow], generator: &rng)
            let xc = x.detached(), wc = w.detached()
            return Layer(name: name, macs: Double(batch * cout * oh * ow * cin * k * k), run: {
                let y = Tensor.conv2d(x, weight: w, geo)
                _ = (y * dy).sum().gradients(wrt: [x, w])
            }, parts: [
                ("forward conv2d", { _ = Tensor.conv2d(xc, weight: wc, geo) }),
                ("input grad convTranspose2d", { _ = Tensor.convTranspose2d(dy, weight: wc, geo, outputSize: (h, h)) }),
                ("weight grad conv2dWeightGrad", { _ = Tensor.conv2dWeightGrad(xc, dy, geo) }),
            ])
        }
        let lx = Tensor.randn([batch, 100], generator: &rng).requiringGrad()
        let lw = (Tensor.randn([6272, 100], generator: &rng) * 0.02).requiringGrad()
        let ldy = Tensor.randn([batch, 6272], generator: &rng)
        return [
            convT("convTranspose2d 128→128 k5 s2 7→14", cin: 128, cout: 128, k: 5, from: 7),
            convT("convTranspose2d 128→128 k5 s2 14→28", cin: 128, cout: 128, k: 5, from: 14),
            conv("conv2d 128→1 k7 p3 28×28", cin: 128, cout: 1, k: 7, stride: 1, at: 28),
            conv("conv2d 1→64 k5 s2 28→14", cin: 1, cout: 64, k: 5, stride: 2, at: 28),
            conv("conv2d 64→64 k3 s2 14→7", cin: 64, cout: 64, k: 3, stride: 2, at: 14),
            Layer(name: "linear 100→6272", macs: Double(batch * 100 * 6272), run: {
                let y = Tensor.linear(lx, weight: lw)
                _ = (y * ldy).sum().gradients(wrt: [lx, lw])
            }),
        ]
    }

    func run() throws {
        let gemm = Benchmark.sgemmGFLOPS(size: gemmSize)
        var results: [[String: Any]] = []
        for layer in layers() {
            let seconds = Benchmark.median(warmup: 2, iterations: iters, layer.run)
            let gflops = 3 * 2 * layer.macs / seconds / 1e9
            var entry: [String: Any] = ["name": layer.name, "gflops": Benchmark.round(gflops, 1),
                                        "fraction_of_sgemm": Benchmark.round(gflops / gemm, 3),
                                        "median_ms": Benchmark.round(seconds * 1000, 2)]
            if breakdown {
                entry["parts"] = layer.parts.map { name, body -> [String: Any] in
                    let t = Benchmark.median(warmup: 1, iterations: iters, body)
                    return ["name": name, "median_ms": Benchmark.round(t * 1000, 2),
                            "gflops": Benchmark.round(2 * layer.macs / t / 1e9, 1)]
                }
            }
            results.append(entry)
        }
        let report: [String: Any] = [
            "blas": BLASInfo.description, "blas_kernel": BLASInfo.kernel, "threads": Runtime.defaultThreads,
            "convolutions": Runtime.convolutionBackend,
            "flush_denormals": Runtime.flushesDenormals, "batch": batch,
            "sgemm_gflops": Benchmark.round(gemm, 1), "sgemm_size": gemmSize, "layers": results,
        ]
        if json {
            print(Benchmark.json(report))
        } else {
            print("BLAS: \(BLASInfo.description); threads \(Runtime.defaultThreads); flush-to-zero \(Runtime.flushesDenormals)")
            print("sgemm \(gemmSize)×\(gemmSize): \(Benchmark.round(gemm, 1)) GFLOP/s")
            for r in results {
                let name = (r["name"] as! String).padding(toLength: 40, withPad: " ", startingAt: 0)
                print("\(name) \(r["gflops"]!) GFLOP/s  \(r["fraction_of_sgemm"]!) of sgemm  \(r["median_ms"]!) ms")
                for part in r["parts"] as? [[String: Any]] ?? [] {
                    print("    \((part["name"] as! String).padding(toLength: 36, withPad: " ", startingAt: 0)) \(part["gflops"]!) GFLOP/s  \(part["median_ms"]!) ms")
                }
            }
        }
    }
}
