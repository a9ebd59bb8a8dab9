import Datasets
import Engine
import Foundation
import NN
#if canImport(Glibc)
import Glibc
#endif

/// Set by SIGINT / SIGTERM; the loop saves a checkpoint and stops after the current step.
nonisolated(unsafe) var stopSignal: Int32 = 0

public enum StopSignals {
    public static func install() {
        signal(SIGINT) { stopSignal = $0 }
        signal(SIGTERM) { stopSignal = $0 }
        // Under a file-size limit (ulimit -f) a write past it should fail with EFBIG and be
        // reported, not kill the process before it can say why.
        signal(SIGXFSZ, SIG_IGN)
    }
    public static var requested: Int32 { stopSignal }
    public static func request() { stopSignal = SIGINT }
    public static func reset() { stopSignal = 0 }
}

/// Drives a `GANTrainer` over a run directory: metrics, sample grids, the epoch-progress
/// sheet, plots and checkpoints. `--resume` continues from the newest checkpoint.
public final class TrainingRun {
    public let dir: RunDirectory
    public let trainer: GANTrainer
    let log: (String) -> Void
    var jsonl: LineAppender!
    var csv: LineAppender!
    /// The first ten fixed samples after each epoch: the rows of the progress sheet.
    var progressRows: [(epoch: Int, images: Tensor)] = []
    /// Scores generated images in [0, 1] ([N, 1, 28, 28]); set by the caller for `--eval-every`
    /// (the GAN module does not depend on the evaluation module). Returns named figures,
    /// at least `fd` and `classes_covered`.
    public var evaluator: ((Tensor) -> [String: Double])?
    /// One in-training evaluation, as the FD plot and the jump and collapse warnings need it.
    typealias EvaluationPoint = (epoch: Int, step: Int, fd: Double, covered: Double)
    var evalHistory: [EvaluationPoint] = []
    /// What this session noticed and the summary reports: a discriminator that has won,
    /// coverage collapse, FD jumps, divergence rollbacks.
    public private(set) var warnings: [String] = []
    lazy var dWatch = DiscriminatorWatch(steps: trainer.config.dWinSteps)

    public init(config: TrainConfig, runDirectory: String, resume: Bool, overwrite: Bool = false,
                log: @escaping (String) -> Void) throws {
        dir = RunDirectory(runDirectory)
        self.log = log
        var config = config
        if resume {
            guard dir.latestCheckpoint != nil else {
                throw ConfigError("--resume: \(runDirectory) holds no checkpoint to resume from")
            }
            // The newest checkpoint that reads; one damaged after it was written (they are never
            // left half-written by the program) is reported and skipped.
            var found: (String, Checkpoint)?
            var damaged: [String] = []
            for path in dir.checkpointFiles().reversed() {
                do { found = (path, try Checkpoint.read(path: path)); break } catch {
                    log("warning: skipping unreadable checkpoint: \(error)")
                    damaged.append(path)
                }
            }
            guard let (latest, ck) = found else {
                throw FileFormatError(dir.checkpoints, "none of the checkpoints can be read (\(damaged.count) tried); the run cannot be resumed")
            }
            guard let text = ck.metadata["config"], let saved = try? JSONDecoder().decode(TrainConfig.self, from: Data(text.utf8)) else {
                throw ConfigError("\(latest): checkpoint has no readable training configuration")
            }
            // The saved configuration wins, except for how long to train and on how many threads.
            let (epochs, steps, threads) = (config.epochs, config.steps, config.threads)
            config = saved
            if epochs != nil || steps != nil { config.epochs = epochs; config.steps = steps }
            if let threads {
                if let before = saved.threads, before != threads {
                    log("warning: \(runDirectory) was trained on \(before) threads and now runs on \(threads): results depend on the thread count, so from here on they will differ in the last digits from a run that stayed on \(before) (--threads \(before) keeps them identical)")
                }
                config.threads = threads
            }
            trainer = try TrainingRun.trainer(for: config, log: log)
            try trainer.restore(ck)
            progressRows = TrainingRun.rows(from: ck)
            log("Resuming \(runDirectory) from \((latest as NSString).lastPathComponent) (epoch \(trainer.epoch), step \(trainer.globalStep))")
            try truncateMetrics(after: trainer.globalStep)
            evalHistory = try truncateEvaluations(after: trainer.globalStep)
        } else {
            if !overwrite, !dir.checkpointFiles().isEmpty {
                throw ConfigError("run directory \(runDirectory) already holds checkpoints; use --resume to continue it, --overwrite to start again, or another --run-dir")
            }
            trainer = try TrainingRun.trainer(for: config, log: log)
            try dir.create()
            if overwrite {
                for f in dir.checkpointFiles() + [dir.metricsJSONL, dir.metricsCSV, dir.evalJSONL, dir.fdPlot, dir.summary] { try? FileManager.default.removeItem(atPath: f) }
            }
            try AtomicFile.write(Data(config.json().utf8), to: dir.config)
        }
        dir.removeStaleTemporaryFiles()
        try checkWritable()
        try openAppenders()
    }

    /// The engine set to the run's thread count, its data set loaded and its models built.
    private static func trainer(for config: TrainConfig, log: (String) -> Void) throws -> GANTrainer {
        if let threads = config.threads { Runtime.configure(threads: threads) }
        return try GANTrainer(config: config, train: DatasetStore.load(config.dataset, split: .train, log: log))
    }

    func openAppenders() throws {
        jsonl = try LineAppender(path: dir.metricsJSONL)
        csv = try LineAppender(path: dir.metricsCSV, header: "step,epoch,d_loss,g_loss,d_real,d_fake,acc_real,acc_fake")
    }

    /// Refuses to start when the run directory cannot take a checkpoint: not writable, or
    /// with less free space than a checkpoint and its replacement need.
    func checkWritable() throws {
        for d in [dir.path, dir.checkpoints] where access(d, W_OK) != 0 {
            throw FileFormatError(d, "the run directory is not writable (\(String(cString: strerror(errno)))); choose another --run-dir")
        }
        var fs = statvfs()
        guard statvfs(dir.checkpoints, &fs) == 0 else { return }
        let free = Double(fs.f_bavail) * Double(fs.f_frsize)
        let ck = trainer.checkpoint()
        let need = Double(ck.file.tensors.values.reduce(0) { $0 + $1.count * 4 } + (1 << 20))
        if free < 2 * need {
            throw FileFormatError(dir.path, String(format: "%.1f MiB free, but a checkpoint of this model needs about %.1f MiB, and as much again while it replaces the previous one; free some space or choose another --run-dir", free / 1048576, need / 1048576))
        }
    }

    static func rows(from ck: Checkpoint) -> [(Int, Tensor)] {
        guard let rows = ck.file.tensors["progress_rows"], let epochs = ck.file.tensors["progress_epochs"] else { return [] }
        return epochs.scalars.enumerated().map { k, e in (Int(e), rows.sliced(axis: 0, k..<(k + 1)).squeezed(axis: 0)) }
    }

    /// Drops metric lines past `step` (they are recomputed after a resume).
    func truncateMetrics(after step: Int) throws {
        for (path, hasHeader) in [(dir.metricsJSONL, false), (dir.metricsCSV, true)] {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { continue }
            var lines = text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
            let header = hasHeader && !lines.isEmpty ? [lines.removeFirst()] : []
            lines = lines.filter { line in
                // A line cut short by a kill is dropped whatever step it seems to name.
                guard hasHeader ? line.split(separator: ",", omittingEmptySubsequences: false).count == 8 : line.hasSuffix("}") else { return false }
                let s = hasHeader ? line.prefix { $0 != "," } : line.split(separator: ":").dropFirst().first?.prefix { $0 != "," } ?? ""
                return (Int(s.trimmingCharacters(in: .whitespaces)) ?? 0) <= step
            }
            try AtomicFile.write(Data(((header + lines).joined(separator: "\n") + "\n").utf8), to: path)
        }
    }

    /// A JSON number, or null for NaN and infinities (which JSON cannot spell; "nan" made the
    /// line unreadable, and a resume dropped it).
    static func jsonNumber(_ v: Double) -> String { v.isFinite ? "\(v)" : "null" }

    /// Drops evaluations past `step` (a resume repeats them) and returns the ones kept, for the
    /// FD plot and the jump and collapse warnings.
    func truncateEvaluations(after step: Int) throws -> [EvaluationPoint] {
        guard let text = try? String(contentsOfFile: dir.evalJSONL, encoding: .utf8) else { return [] }
        var kept: [String] = []
        var history: [EvaluationPoint] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            // A line cut short by a kill does not parse and is dropped.
            guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let s = (o["step"] as? NSNumber)?.intValue, s <= step else { continue }
            kept.append(String(line))
            history.append(((o["epoch"] as? NSNumber)?.intValue ?? 0, s,
                            (o["fd_2000"] as? NSNumber)?.doubleValue ?? .nan, (o["classes_covered_2000"] as? NSNumber)?.doubleValue ?? .nan))
        }
        try AtomicFile.write(Data(kept.map { $0 + "\n" }.joined().utf8), to: dir.evalJSONL)
        return history
    }

    func record(_ m: StepMetrics) throws {
        guard m.step % trainer.config.logEvery == 0 || m.step == trainer.totalSteps else { return }
        let g = m.gLoss.map { String(format: "%.6f", $0) } ?? "null"
        try jsonl.append(String(format: "{\"step\": %d, \"epoch\": %d, \"d_loss\": %.6f, \"g_loss\": %@, \"d_real\": %.6f, \"d_fake\": %.6f, \"acc_real\": %.4f, \"acc_fake\": %.4f}",
                            m.step, m.epoch, m.dLoss, g, m.dReal, m.dFake, m.accReal, m.accFake))
        try csv.append(String(format: "%d,%d,%.6f,%@,%.6f,%.6f,%.4f,%.4f", m.step, m.epoch, m.dLoss, m.gLoss.map { String(format: "%.6f", $0) } ?? "", m.dReal, m.dFake, m.accReal, m.accFake))
    }

    func writeGrid(_ path: String) throws {
        let samples = trainer.fixedSamples()
        try PNGImage.grid(samples, range: trainer.spec.scaling.range, columns: 8, scale: 2).write(to: path)
    }

    public func saveCheckpoint() throws {
        var ck = trainer.checkpoint()
        if !progressRows.isEmpty {
            ck.file.tensors["progress_rows"] = Tensor.stack(progressRows.map(\.images))
            ck.file.tensors["progress_epochs"] = Tensor(progressRows.map { Float($0.epoch) })
        }
        let path = dir.checkpointPath(step: trainer.globalStep)
        let previous = dir.latestCheckpoint
        do {
            try ck.write(to: path)
        } catch {
            throw SaveError("could not save the checkpoint at step \(trainer.globalStep): \(error). "
                + (previous.map { "The previous checkpoint \($0) is intact; continue from it with --resume once there is room." } ?? "No earlier checkpoint exists."))
        }
        dir.pruneCheckpoints()
    }

    /// Restores the newest readable checkpoint with the learning rates halved. False when there
    /// is none to go back to.
    func rollBack() throws -> Bool {
        for path in dir.checkpointFiles().reversed() {
            guard let ck = try? Checkpoint.read(path: path) else {
                log("warning: \(path) is unreadable; trying an older checkpoint")
                continue
            }
            let (count, scale) = (trainer.rollbacks + 1, trainer.learningRateScale * 0.5)
            try trainer.restore(ck)
            trainer.rollbacks = count
            trainer.setLearningRateScale(scale)
            progressRows = TrainingRun.rows(from: ck)
            try truncateMetrics(after: trainer.globalStep)
            try openAppenders()
            dWatch.reset()
            let lr = trainer.learningRates
            let note = String(format: "rolled back to step %d (%@) with learning rates halved to G %.3g, D %.3g (rollback %d of %d)",
                              trainer.globalStep, (path as NSString).lastPathComponent, lr.g, lr.d, count, trainer.config.maxRollbacks)
            log(note)
            warnings.append(note)
            return true
        }
        return false
    }

    func watchDiscriminator(_ m: StepMetrics) {
        guard trainer.lossKind != .wganGP && trainer.lossKind != .wganClip else { return }
        if let note = dWatch.observe(step: m.step, dLoss: m.dLoss) {
            log("warning: " + note)
            warnings.append(note)
        }
    }

    /// FD and coverage of 2,000 samples (a fixed seed each time), logged to eval.jsonl and
    /// plotted; warns when coverage collapses or FD jumps.
    func evaluateNow() throws {
        guard let evaluator else { return }
        var g = RandomGenerator(seed: 20_000 &+ trainer.config.seed)
        let z = GANTrainer.latent(2000, trainer.latentDim, trainer.latentDistribution, &g)
        let labels = trainer.isConditional ? (0..<2000).map { $0 % 10 } : nil
        trainer.generator.eval()
        // In the steps' batch size: the buffers the steps keep serve it (2,000 at once took 1.8 GB).
        var images = trainer.generator.inBatches(z, labels: labels, batch: trainer.loader.batchSize)
        trainer.generator.train()
        if trainer.spec.scaling == .symmetric { images = (images + 1) * 0.5 }
        let scores = evaluator(images)
        let fd = scores["fd"] ?? .nan, covered = scores["classes_covered"] ?? .nan
        let line = (["\"epoch\": \(trainer.epoch)", "\"step\": \(trainer.globalStep)", "\"samples\": 2000"]
            + scores.keys.sorted().map { "\"\($0)_2000\": \(Self.jsonNumber(scores[$0]!))" }).joined(separator: ", ")
        let appender = try LineAppender(path: dir.evalJSONL)
        try appender.append("{" + line + "}")
        if let best = evalHistory.map(\.fd).min(), fd > best * 1.5 {
            let note = String(format: "FD on 2,000 samples jumped to %.2f (best so far %.2f) at epoch %d", fd, best, trainer.epoch)
            log("warning: " + note)
            warnings.append(note)
        }
        let previous = evalHistory.last?.covered
        var note: String?
        if let previous, covered < previous - 1 {
            note = String(format: "class coverage fell from %.0f to %.0f classes at epoch %d: possible mode collapse", previous, covered, trainer.epoch)
        } else if covered <= 5 {
            note = String(format: "samples %@cover only %.0f of the classes (≥ 5 %% of samples each) at epoch %d: mode collapse",
                          (previous ?? 10) <= 5 ? "still " : "", covered, trainer.epoch)
        }
        if let note {
            log("warning: " + note)
            warnings.append(note)
        }
        evalHistory.append((trainer.epoch, trainer.globalStep, fd, covered))
        if evalHistory.count >= 2 {
            try LinePlot(title: "FD on 2000 samples", xLabel: "iteration", secondaryXScale: Float(trainer.loader.batchesPerEpoch), secondaryXLabel: "epoch",
                         series: [("FD (2000)", evalHistory.map { Float($0.step) }, evalHistory.map { Float($0.fd) }, (150, 40, 160))])
                .render().write(to: dir.fdPlot)
        }
    }

    func endOfEpoch() throws {
        let e = trainer.epoch
        if trainer.config.evalEvery > 0 && e % trainer.config.evalEvery == 0 {
            // The steps' kept buffers (~115 MB for dcgan) would sit idle beside the classifier's
            // batch-200 activations, and those would stay kept beside the steps' afterwards:
            // `gan train` peaked at 388 MiB (305 now). Freed on both sides, the evaluation reuses the memory
            // and the next step allocates its buffers once more (once an epoch).
            BufferCache.release()
            defer { BufferCache.release() }
            try evaluateNow()
        }
        try writeGrid(dir.samples + String(format: "/epoch-%04d.png", e))
        progressRows.append((e, trainer.fixedSamples().sliced(axis: 0, 0..<10)))
        try writeProgressSheet()
        if e % Swift.max(trainer.config.checkpointEvery, 1) == 0 { try saveCheckpoint() }
    }

    /// Rows of chosen epochs (up to ten, evenly spread, always the last), ten samples each.
    func writeProgressSheet() throws {
        let n = progressRows.count
        let picks = n <= 10 ? Array(0..<n) : (0..<10).map { $0 * (n - 1) / 9 }
        let images = Tensor.concat(picks.map { progressRows[$0].images }, axis: 0)
        try PNGImage.grid(images, range: trainer.spec.scaling.range, columns: 10, scale: 2).write(to: dir.progressSheet)
    }

    public struct Summary: Sendable {
        public var steps: Int
        public var epochs: Int
        public var seconds: Double
        public var interrupted: Bool
        public var finalMetrics: StepMetrics?
        /// The step where training stopped on a NaN or Inf, and what held it.
        public var divergedAt: Int?
        public var nonFinite: String?
        public var rollbacks: Int
        public var warnings: [String]
    }

    /// Trains until the configured length or a stop signal. `progress` sees every step.
    /// A NaN or Inf rolls back to the last checkpoint with halved learning rates (at most
    /// `maxRollbacks` times) or, with `onDivergence == "stop"`, stops.
    public func run(progress: (StepMetrics) -> Void = { _ in }) throws -> Summary {
        let start = Date()
        var last: StepMetrics?
        var interrupted = false
        var diverged: (step: Int, what: String)?
        // A state at step 0, so a run killed in its first epoch resumes and a divergence in it
        // has somewhere to roll back to.
        if dir.checkpointFiles().isEmpty { try saveCheckpoint() }
        let firstStep = trainer.globalStep
        while !trainer.isFinished {
            let m = trainer.step()
            if let what = m.nonFinite {
                log("Non-finite value at step \(m.step): \(what) (D loss \(m.dLoss), G loss \(m.gLoss.map { "\($0)" } ?? "–")).")
                if trainer.config.onDivergence == "rollback" && trainer.rollbacks < trainer.config.maxRollbacks, try rollBack() { continue }
                diverged = (m.step, what)
                break
            }
            last = m
            try record(m)
            progress(m)
            watchDiscriminator(m)
            let every = trainer.config.sampleEvery
            if every > 0 && trainer.globalStep % every == 0 {
                try writeGrid(dir.stepGrid(step: trainer.globalStep))
            }
            if trainer.stepInEpoch == 0 { try endOfEpoch() }
            if StopSignals.requested != 0 {
                interrupted = true
                break
            }
        }
        // A run that ends between epochs (--steps, a signal) still leaves a grid of where it got to.
        let every = trainer.config.sampleEvery
        if diverged == nil && trainer.globalStep > firstStep && trainer.stepInEpoch != 0
            && !(every > 0 && trainer.globalStep % every == 0) {
            try writeGrid(dir.stepGrid(step: trainer.globalStep))
        }
        if let diverged {
            let note = "stopped at step \(diverged.step): non-finite \(diverged.what)"
                + (trainer.config.onDivergence == "rollback" ? " after \(trainer.rollbacks) rollback(s)" : "")
            warnings.append(note)
        } else if trainer.globalStep > firstStep || dir.latestCheckpoint == nil {
            try saveCheckpoint()
        } else {
            log("Nothing to do: the run is already at step \(trainer.globalStep) of \(trainer.totalSteps).")
        }
        try writePlots()
        let summary = Summary(steps: trainer.globalStep, epochs: trainer.epoch, seconds: Date().timeIntervalSince(start),
                              interrupted: interrupted, finalMetrics: last, divergedAt: diverged?.step, nonFinite: diverged?.what,
                              rollbacks: trainer.rollbacks, warnings: warnings)
        var object: [String: Any] = ["model": trainer.spec.name, "loss": trainer.lossKind.rawValue, "steps": summary.steps,
                                     "epochs_completed": summary.epochs, "seconds_this_session": summary.seconds,
                                     "interrupted": interrupted, "checkpoint": dir.latestCheckpoint ?? "",
                                     "rollbacks": trainer.rollbacks, "learning_rate_scale": Double(trainer.learningRateScale),
                                     "batches_per_epoch": trainer.loader.batchesPerEpoch, "warnings": warnings]
        if let m = last {
            object["final"] = ["d_loss": m.dLoss, "g_loss": m.gLoss ?? Float.nan, "d_real": m.dReal, "d_fake": m.dFake]
                .mapValues { $0.isFinite ? Double($0) : 0 }
        }
        if let diverged { object["diverged_at_step"] = diverged.step; object["non_finite"] = diverged.what }
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])
        try AtomicFile.write(data, to: dir.summary)
        return summary
    }

    /// Loss curves and D outputs from metrics.csv (so resumed runs plot their whole history).
    func writePlots() throws {
        try TrainingRun.writePlots(dir, batchesPerEpoch: trainer.loader.batchesPerEpoch, probabilities: trainer.lossKind.usesProbabilities)
    }

    /// Renders `plots/losses.png` and `plots/d_outputs.png` of a run directory from its metrics.
    /// Without `batchesPerEpoch` it is read off summary.json, else off the metrics (the last
    /// step logged in epoch 1: a few steps short, and the run's last step while it is in epoch 1).
    public static func writePlots(_ dir: RunDirectory, batchesPerEpoch: Int? = nil, probabilities: Bool = true) throws {
        guard let text = try? String(contentsOfFile: dir.metricsCSV, encoding: .utf8) else {
            throw FileFormatError(dir.metricsCSV, "no metrics to plot")
        }
        var steps: [Float] = [], d: [Float] = [], g: [Float] = [], dr: [Float] = [], df: [Float] = []
        var lastOfFirstEpoch = 0
        for line in text.split(separator: "\n").dropFirst() {
            let f = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard f.count == 8, let s = Float(f[0]), let e = Int(f[1]), let dl = Float(f[2]), let r = Float(f[4]), let k = Float(f[5]) else { continue }
            steps.append(s); d.append(dl); dr.append(r); df.append(k)
            g.append(Float(f[3]) ?? .nan)
            if e == 1 { lastOfFirstEpoch = Int(s) }
        }
        guard steps.count >= 2 else { return }
        try FileManager.default.createDirectory(atPath: dir.plots, withIntermediateDirectories: true)
        // summary.json is read only when the caller does not know (gan plot).
        let recorded = batchesPerEpoch ?? (try? Data(contentsOf: URL(fileURLWithPath: dir.summary)))
            .flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
            .flatMap { ($0["batches_per_epoch"] as? Int).flatMap { $0 > 0 ? $0 : nil } }
        let perEpoch = Float(recorded ?? Swift.max(lastOfFirstEpoch, 1))
        try LinePlot(title: "losses", xLabel: "iteration", secondaryXScale: perEpoch, secondaryXLabel: "epoch",
                     series: [("D loss", steps, d, (220, 60, 60)), ("G loss", steps, g, (60, 110, 220))])
            .render().write(to: dir.plots + "/losses.png")
        let real = probabilities ? "D(x)" : "critic(x)", fake = probabilities ? "D(G(z))" : "critic(G(z))"
        try LinePlot(title: "discriminator outputs", xLabel: "iteration", secondaryXScale: perEpoch, secondaryXLabel: "epoch",
                     series: [(real, steps, dr, (40, 160, 80)), (fake, steps, df, (200, 120, 30))])
            .render().write(to: dir.plots + "/d_outputs.png")
    }
}

/// Notices a discriminator whose loss has stayed near zero: it has won, and the generator's
/// gradient through it vanishes. Not for the Wasserstein losses, whose critic loss is unbounded.
public struct DiscriminatorWatch {
    public let steps: Int
    public let threshold: Float
    var streak = 0
    public init(steps: Int, threshold: Float = 0.01) { self.steps = steps; self.threshold = threshold }

    /// A warning the step the streak reaches `steps`, nothing otherwise (one per streak).
    public mutating func observe(step: Int, dLoss: Float) -> String? {
        streak = dLoss < threshold ? streak + 1 : 0
        guard streak == steps else { return nil }
        return String(format: "discriminator loss below %g for %d steps in a row (steps %d–%d, now %.2g): D has won and G's gradient through it vanishes; try --label-smoothing 0.1, --instance-noise 0.1, a lower --lr-d, or --loss wgan-gp",
                      threshold, streak, step - streak + 1, step, dLoss)
    }

    public mutating func reset() { streak = 0 }
}
