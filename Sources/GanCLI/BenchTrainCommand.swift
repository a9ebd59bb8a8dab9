import ArgumentParser
import Datasets
import Engine
import Foundation
import GAN
import NN

/// Peak resident set size of this process in MiB.
func peakRSSMiB() -> Double {
    var usage = rusage()
    #if os(Linux)
    getrusage(RUSAGE_SELF.rawValue, &usage)
    #else
    getrusage(RUSAGE_SELF, &usage)
    #endif
    return Double(usage.ru_maxrss) / 1024
}

struct BenchTrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Median seconds per training iteration, images/s and peak RSS (same protocol as the reference scripts).",
        discussion: """
        One iteration: the next real batch, z, fake = G(z) once, a D update on real and
        fake, a G update through the updated, frozen D. Warm-up iterations are not
        timed.

        Also reported: the step's matrix products and convolutions (GFLOP, counted as
        they run), their rate over the median step, and that as a fraction of an sgemm
        measured before and after the steps (the faster of the two): how close the
        whole step comes to the machine's limit.

        Example:
          swift build -c release
          .build/release/gan bench train --model dcgan --batch 64 --iters 30 --json
          .build/release/gan bench train --model mlp --iters 1000 --trace /tmp/mlp-trace.json
        """
    )

    @Option(help: "Model.") var model = "dcgan"
    @Option(help: "Loss (default: the model's).") var loss: String?
    @Option(help: "Images per iteration.") var batch = 64
    @Option(help: "Timed iterations.") var iters = 30
    @Option(help: "Untimed warm-up iterations.") var warmup = 5
    @Flag(help: "Print one JSON object.") var json = false
    @Option(help: ArgumentHelp("A setting to turn off and on between blocks of --block steps (off, on, on, off, …), reporting each side's median and the paired ratio.",
                               valueName: BenchSwitch.allCases.map(\.rawValue).joined(separator: "|")))
    var alternate: BenchSwitch?
    @Option(help: "Steps per block with --alternate.") var block = 20
    @Flag(help: "After the timed steps, as many again with the op profiler on: where the main thread's time goes in a step, op by op (forward ops, backward ops and gradient rules, the trainer's sections such as the data batch and the optimizer steps).")
    var profile = false
    @Option(help: ArgumentHelp("After the timed (and profiled) steps, --trace-steps more with a timeline of every thread recorded, written to this file in Chrome's trace-event format (Perfetto, chrome://tracing); prints each thread's time a step by what runs on it, and what the calling thread runs while the worker has no part to run. The engine's threads only: oneDNN's convolutions run on its own OpenMP threads, and show as their graph op on thread 0.", valueName: "file.json"))
    var trace: String?
    @Option(help: "Steps recorded with --trace.") var traceSteps = 20

    func validate() throws {
        guard batch > 0 else { throw ValidationError("--batch must be positive, got \(batch)") }
        guard iters > 0 else { throw ValidationError("--iters must be positive, got \(iters)") }
        guard block > 0 else { throw ValidationError("--block must be positive, got \(block)") }
        if alternate != nil && profile { throw ValidationError("--profile and --alternate do not go together: profile a setting's runs one at a time") }
        if alternate != nil && trace != nil { throw ValidationError("--trace and --alternate do not go together: trace a setting's runs one at a time") }
        guard traceSteps > 0 else { throw ValidationError("--trace-steps must be positive, got \(traceSteps)") }
        if let trace {
            if trace.isEmpty || trace.hasSuffix("/") { throw ValidationError("--trace wants a file name, got '\(trace)'") }
            // Checked before the run, not after its steps.
            let directory = (trace as NSString).deletingLastPathComponent
            var isDirectory: ObjCBool = false
            if !directory.isEmpty, !FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) || !isDirectory.boolValue {
                throw ValidationError("--trace \(trace): the directory \(directory) does not exist")
            }
        }
        if alternate != nil && iters < 4 * block {
            throw ValidationError("--alternate needs --iters of at least 4 blocks (\(4 * block) with --block \(block)), got \(iters)")
        }
        guard warmup >= 0 else { throw ValidationError("--warmup must not be negative, got \(warmup)") }
        guard ModelZoo.spec(model) != nil else { throw ValidationError("--model \(model) is not one of \(ModelZoo.all.map(\.name).joined(separator: ", "))") }
        if let loss, GANLossKind(rawValue: loss) == nil { throw ValidationError("--loss \(loss) is not one of \(GANLossKind.allCases.map(\.rawValue).joined(separator: ", "))") }
    }

    func run() throws {
        let gemm = Benchmark.sgemmGFLOPS(size: 1024)
        var config = TrainConfig()
        config.model = model
        config.loss = loss
        config.batchSize = batch
        config.steps = warmup + iters * (profile ? 2 : 1) + (trace != nil ? traceSteps : 0)
        let train = try DatasetStore.load("mnist", split: .train) { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
        let trainer = try GANTrainer(config: config, train: train)
        for _ in 0..<warmup { _ = trainer.step() }
        if let alternate { return runAlternating(alternate, trainer, gemm) }
        var times: [Double] = []
        let flops0 = ProductFlops.total
        for _ in 0..<iters {
            let t0 = Benchmark.now()
            _ = trainer.step()
            times.append(Benchmark.now() - t0)
        }
        let flops = ProductFlops.total - flops0
        let rss = peakRSSMiB()  // the training's, before the second yardstick's matrices
        // The host's speed drifts: the fraction is taken against the faster of two yardsticks,
        // before and after the timed steps.
        let gemmAfter = Benchmark.sgemmGFLOPS(size: 1024)
        let step = Benchmark.ProductRate(flops: Double(flops) / Double(iters), seconds: times, sgemm: Swift.max(gemm, gemmAfter))
        // Profiled apart from the timed steps, so that the profiler's own cost stays out of them.
        var table: ProfileTable?
        if profile {
            let t0 = Benchmark.now()
            OpProfiler.start()
            for _ in 0..<iters { _ = trainer.step() }
            let rows = OpProfiler.stop()
            table = ProfileTable(rows: rows, steps: iters, seconds: Benchmark.now() - t0)
        }
        var timeline: OpTraceReport?
        if let trace {
            try OpTrace.start()
            for _ in 0..<traceSteps { _ = trainer.step() }
            let (events, dropped, duration) = OpTrace.stop()
            if dropped > 0 { FileHandle.standardError.write(Data("--trace: \(dropped) spans did not fit in the buffer; the timeline ends early\n".utf8)) }
            do { try AtomicFile.write(try OpTraceReport.chromeTrace(events), to: trace) } catch {
                throw optionError("--trace \(trace): could not write the timeline: \(error)", command: "bench train")
            }
            timeline = OpTraceReport(events: events, duration: duration, steps: traceSteps)
        }
        // A run that slows down as it goes (denormals creeping into the weights) shows as a last
        // tenth slower than the first.
        let tenth = Swift.max(1, times.count / 10)
        let (first, last) = (Benchmark.median(of: times.prefix(tenth)), Benchmark.median(of: times.suffix(tenth)))
        times.sort()
        let median = times[times.count / 2]
        var report: [String: Any] = [
            "first_tenth_median_s": Benchmark.round(first, 5), "last_tenth_median_s": Benchmark.round(last, 5),
            "model": model, "loss": trainer.lossKind.rawValue, "batch": batch, "median_s_per_iter": Benchmark.round(median, 5),
            "img_per_s": Benchmark.round(Double(batch) / median, 1), "peak_rss_mib": Benchmark.round(rss, 1),
            "sgemm_gflops": Benchmark.round(gemm, 1), "sgemm_gflops_after": Benchmark.round(gemmAfter, 1),
            "blas": BLASInfo.description, "threads": Runtime.defaultThreads, "worker_spin": Runtime.workerSpin,
            "convolutions": Runtime.convolutionBackend, "matmul": Runtime.matmulBackend,
            "min_s_per_iter": Benchmark.round(times.first!, 5), "max_s_per_iter": Benchmark.round(times.last!, 5),
            "step_gflop": Benchmark.round(step.gflop, 3), "product_gflops": Benchmark.round(step.gflops, 1),
            "sgemm_fraction": Benchmark.round(step.fraction, 3),
        ]
        if let table {
            report["profile"] = table.json
            report["profile_s_per_iter"] = Benchmark.round(table.seconds / Double(iters), 5)
        }
        if let timeline, let trace {
            report["trace"] = timeline.json
            report["trace_file"] = trace
        }
        if json { print(Benchmark.json(report)); return }
        print("\(model) / \(trainer.lossKind.rawValue), batch \(batch): median \(String(format: "%.4f", median)) s/iter, \(String(format: "%.1f", Double(batch) / median)) img/s, peak RSS \(String(format: "%.0f", rss)) MiB; sgemm \(String(format: "%.0f", gemm)) / \(String(format: "%.0f", gemmAfter)) GFLOP/s before / after (\(BLASInfo.kernel)); \(step.summary(per: "step"))")
        if let table { print(table.text) }
        if let timeline, let trace { print(timeline.text + "\n  timeline written to \(trace)") }
    }

    /// Blocks of steps with the setting off and on in the order off, on, on, off, … (a drift in
    /// the host's speed then weighs on both sides alike); each side's median step, and the median
    /// over block pairs of (off block's median / on block's median): above 1, on is faster.
    func runAlternating(_ setting: BenchSwitch, _ trainer: GANTrainer, _ gemm: Double) {
        let initial = setting.isOn(in: trainer)
        defer { setting.set(initial, trainer) }
        var off: [Double] = [], on: [Double] = [], blockMedians: [Double] = []
        let blocks = iters / block
        // Block b is on for b mod 4 in {1, 2}: blocks 2i and 2i + 1 are one off and one on.
        func isOn(_ b: Int) -> Bool { b % 4 == 1 || b % 4 == 2 }
        for b in 0..<blocks {
            setting.set(isOn(b), trainer)
            var times: [Double] = []
            for _ in 0..<block {
                let t0 = Benchmark.now()
                _ = trainer.step()
                times.append(Benchmark.now() - t0)
            }
            if isOn(b) { on += times } else { off += times }
            blockMedians.append(Benchmark.median(of: times))
        }
        let pairs = stride(from: 0, to: blocks - 1, by: 2).map { b in
            isOn(b) ? blockMedians[b + 1] / blockMedians[b] : blockMedians[b] / blockMedians[b + 1]
        }
        let (mOff, mOn, ratio) = (Benchmark.median(of: off), Benchmark.median(of: on), Benchmark.median(of: pairs))
        let report: [String: Any] = [
            "model": model, "loss": trainer.lossKind.rawValue, "batch": batch, "alternate": setting.rawValue,
            "block": block, "pairs": pairs.count, "off_median_s_per_iter": Benchmark.round(mOff, 5),
            "on_median_s_per_iter": Benchmark.round(mOn, 5), "off_img_per_s": Benchmark.round(Double(batch) / mOff, 1),
            "on_img_per_s": Benchmark.round(Double(batch) / mOn, 1), "on_speedup_paired_median": Benchmark.round(ratio, 4),
            "on_speedup_paired_range": [Benchmark.round(pairs.min()!, 4), Benchmark.round(pairs.max()!, 4)],
            "sgemm_gflops": Benchmark.round(gemm, 1),
        ]
        if json { print(Benchmark.json(report)); return }
        print("\(model) / \(trainer.lossKind.rawValue), batch \(batch), --alternate \(setting.rawValue): off \(String(format: "%.1f", Double(batch) / mOff)) img/s, on \(String(format: "%.1f", Double(batch) / mOn)) img/s; on / off speed over \(pairs.count) block pairs: median \(String(format: "%.4f", ratio)) (\(String(format: "%.3f", pairs.min()!))–\(String(format: "%.3f", pairs.max()!)))")
    }
}

struct BenchGenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Time generating samples with an untrained generator in eval mode (no graph).",
        discussion: """
        Example:
          .build/release/gan bench generate --model dcgan --count 10000 --json
        """
    )

    @Option(help: "Model.") var model = "dcgan"
    @Option(help: "Samples to generate.") var count = 10_000
    @Option(help: "Samples per batch.") var batch = 500
    @Flag(help: "Print one JSON object.") var json = false

    func validate() throws {
        guard count > 0 else { throw ValidationError("--count must be positive, got \(count)") }
        guard batch > 0 else { throw ValidationError("--batch must be positive, got \(batch)") }
        guard ModelZoo.spec(model) != nil else { throw ValidationError("--model \(model) is not one of \(ModelZoo.all.map(\.name).joined(separator: ", "))") }
    }

    func run() throws {
        let spec = ModelZoo.spec(model)!
        var g = RandomGenerator(seed: 0)
        var o = BuildOptions()
        o.probabilityOutput = spec.defaultLoss.usesProbabilities
        let gen = ModelZoo.build(spec, options: o, generator: &g, random: RandomSource(seed: 0)).0
        gen.eval()
        let labels: (Int) -> [Int]? = { n in spec.conditional ? (0..<n).map { $0 % 10 } : nil }
        _ = withoutGrad { gen(Tensor.randn([batch, spec.latentDim], generator: &g), labels: labels(batch)) }   // warm-up
        var times: [Double] = []
        let flops0 = ProductFlops.total
        let start = Benchmark.now()
        var done = 0
        while done < count {
            let n = min(batch, count - done)
            let z = Tensor.randn([n, spec.latentDim], generator: &g)
            let t0 = Benchmark.now()
            _ = withoutGrad { gen(z, labels: labels(n)) }
            times.append(Benchmark.now() - t0)
            done += n
        }
        let total = Benchmark.now() - start
        let flops = ProductFlops.total - flops0
        let rss = peakRSSMiB()  // generation's, before the yardstick's matrices
        let gemm = Benchmark.sgemmGFLOPS(size: 1024)
        // Per batch of `batch` samples (the last, smaller batch counted at its share).
        let rate = Benchmark.ProductRate(flops: Double(flops) * Double(batch) / Double(count), seconds: times, sgemm: gemm)
        times.sort()
        let report: [String: Any] = ["model": model, "count": count, "batch": batch, "total_s": Benchmark.round(total, 3),
                                     "median_s_per_batch": Benchmark.round(times[times.count / 2], 4),
                                     "samples_per_s": Benchmark.round(Double(count) / total, 1),
                                     "peak_rss_mib": Benchmark.round(rss, 1), "blas": BLASInfo.description,
                                     "convolutions": Runtime.convolutionBackend, "matmul": Runtime.matmulBackend, "sgemm_gflops": Benchmark.round(gemm, 1),
                                     "batch_gflop": Benchmark.round(rate.gflop, 3), "product_gflops": Benchmark.round(rate.gflops, 1),
                                     "sgemm_fraction": Benchmark.round(rate.fraction, 3)]
        if json { print(Benchmark.json(report)); return }
        print("\(model): \(count) samples in \(String(format: "%.2f", total)) s (\(String(format: "%.0f", Double(count) / total)) samples/s), peak RSS \(String(format: "%.0f", rss)) MiB; sgemm \(String(format: "%.0f", gemm)) GFLOP/s; \(rate.summary(per: "batch"))")
    }
}
