import ArgumentParser
import Datasets
import Engine
import Foundation
import Evaluation
import GAN

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a GAN; writes grids, metrics, plots and checkpoints to a run directory.",
        discussion: """
        With no options: the Keras tutorial DCGAN on MNIST for 2 epochs (about 6
        minutes on 2 cores). The tutorial's full recipe is 21 epochs at batch 256:
          gan train --epochs 21 --batch-size 256

        Examples:
          gan train
          gan train --model mlp --epochs 20
          gan train --model dcgan-bn --loss wgan-gp --critic-norm layer --epochs 5
          gan train --model cdcgan --dataset fashion-mnist --ema 0.999
          gan train --run-dir runs/dcgan --resume --epochs 10   # go on to epoch 10

        Ctrl-C saves a checkpoint and stops; --resume continues exactly where it
        stopped. A NaN or Inf in a loss, gradient or weight rolls the run back to its
        last checkpoint with halved learning rates (up to --max-rollbacks times), or
        stops with --on-divergence stop. Exit status: 0 done or stopped by a signal,
        1 a bad file or I/O error, 2 diverged, 64 a bad option.

        Run directory: config.json, metrics.jsonl, metrics.csv, eval.jsonl, samples/,
        progress.png, plots/, checkpoints/, summary.json (see docs/gan.md).
        """
    )

    @Option(help: "Model: \(ModelZoo.all.map(\.name).joined(separator: ", ")) (see `gan models`).") var model = "dcgan"
    @Option(help: "Loss: \(GANLossKind.allCases.map(\.rawValue).joined(separator: ", ")); default: the model's.") var loss: String?
    @Option(help: "mnist, fashion-mnist, or a directory of IDX files.") var dataset = "mnist"
    @Option(help: "Epochs to train (default 2 for dcgan, about 6 minutes on 2 cores; 1 otherwise).") var epochs: Int?
    @Option(help: "Iterations to train instead of epochs.") var steps: Int?
    @Option(name: .customLong("batch-size"), help: "Images per iteration (default: the model's).") var batchSize: Int?
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Option(name: .customLong("run-dir"), help: "Run directory (default runs/<model>[-<loss>]).") var runDir: String?
    @Flag(help: "Continue from the newest checkpoint in --run-dir.") var resume = false
    @Flag(help: "Start again in an existing run directory, deleting its checkpoints.") var overwrite = false
    @Option(name: .customLong("lr-g"), help: "Generator learning rate.") var lrG: Float?
    @Option(name: .customLong("lr-d"), help: "Discriminator learning rate.") var lrD: Float?
    @Option(name: .customLong("beta1-g"), help: "Adam β1 for the generator (default: the model's; see `gan models`).") var beta1G: Float?
    @Option(name: .customLong("beta2-g"), help: "Adam β2 for the generator (default: the model's).") var beta2G: Float?
    @Option(name: .customLong("beta1-d"), help: "Adam β1 for the discriminator (default: the model's).") var beta1D: Float?
    @Option(name: .customLong("beta2-d"), help: "Adam β2 for the discriminator (default: the model's).") var beta2D: Float?
    @Option(name: .customLong("n-critic"), help: "Discriminator steps per generator step (default 5 for wgan-clip, else 1).") var nCritic: Int?
    @Option(name: .customLong("gp-lambda"), help: "Gradient-penalty weight for wgan-gp.") var gpLambda: Float = 10
    @Option(name: .customLong("clip"), help: "Weight clip for wgan-clip.") var clip: Float = 0.01
    @Option(name: .customLong("critic-norm"), help: "Normalization in dcgan-bn's critic: batch, layer, none.") var criticNorm: String?
    @Option(name: .customLong("label-smoothing"), help: "One-sided label smoothing: real targets 1 − s.") var labelSmoothing: Float = 0
    @Option(name: .customLong("instance-noise"), help: "Std of Gaussian noise added to D's inputs, annealed to 0.") var instanceNoise: Float = 0
    @Flag(name: .customLong("spectral-norm"), help: "Spectral normalization on D's weight layers.") var spectralNorm = false
    @Option(help: "Keep an exponential moving average of G's weights with this decay (e.g. 0.999).") var ema: Float?
    @Flag(name: .customLong("minibatch-std"), help: "Add a minibatch standard-deviation layer to D.") var minibatchStd = false
    @Flag(name: .customLong("minibatch-discrimination"), help: "Add a minibatch-discrimination layer to D.") var minibatchDiscrimination = false
    @Flag(name: .customLong("feature-matching"), help: "Train G to match D's intermediate features.") var featureMatching = false
    @Option(help: "dcgan-bn: filters of the first block.") var filters = 128
    @Option(help: "dcgan-bn: number of stride-2 blocks.") var blocks = 2
    @Option(name: .customLong("latent-dim"), help: "Latent size (default: the model's).") var latentDim: Int?
    @Option(name: .customLong("latent"), help: "Latent distribution: normal or uniform.") var latent: String?
    @Option(name: .customLong("sample-every"), help: "Also write a grid every N iterations.") var sampleEvery = 0
    @Option(name: .customLong("checkpoint-every"), help: "Checkpoint every K epochs (and always at the end).") var checkpointEvery = 1
    @Option(name: .customLong("log-every"), help: "Append metrics every N iterations.") var logEvery = 10
    @Option(name: .customLong("eval-every"), help: "Every K epochs: FD and class coverage on 2,000 samples with the bundled classifier, plotted and watched for collapse (default 1 for mnist and fashion-mnist; 0 turns it off).") var evalEvery: Int?
    @Option(help: "Train on the first N images only.") var limit: Int?
    @Option(help: "Threads for the kernels (default: GAN_THREADS, else every core). Results depend on the count, not on timing: a run resumed on another count is not bit-identical to one that stayed.") var threads: Int?
    @Option(name: .customLong("on-divergence"), help: "On a NaN or Inf in a loss, gradient or weight: rollback (to the last checkpoint with halved learning rates, then stop) or stop.") var onDivergence = "rollback"
    @Option(name: .customLong("max-rollbacks"), help: "Rollbacks before a diverging run stops.") var maxRollbacks = 3
    @Option(name: .customLong("d-win-steps"), help: "Warn when D's loss stays below 0.01 for this many steps in a row.") var dWinSteps = 200

    func validate() throws {
        func positive(_ v: Int?, _ flag: String) throws {
            if let v, v <= 0 { throw ValidationError("\(flag) must be positive, got \(v)") }
        }
        func positiveRate(_ v: Float?, _ flag: String) throws {
            if let v, !(v > 0 && v.isFinite) { throw ValidationError("\(flag) must be a positive number, got \(v)") }
        }
        guard ModelZoo.spec(model) != nil else {
            throw ValidationError("--model \(model) is not one of \(ModelZoo.all.map(\.name).joined(separator: ", "))")
        }
        if let loss, GANLossKind(rawValue: loss) == nil {
            throw ValidationError("--loss \(loss) is not one of \(GANLossKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if epochs != nil && steps != nil { throw ValidationError("--epochs and --steps conflict: give one") }
        if overwrite && resume { throw ValidationError("--overwrite and --resume conflict: give one") }
        try positive(epochs, "--epochs"); try positive(steps, "--steps"); try positive(batchSize, "--batch-size")
        try positive(nCritic, "--n-critic"); try positive(filters, "--filters"); try positive(latentDim, "--latent-dim")
        try positive(checkpointEvery, "--checkpoint-every"); try positive(logEvery, "--log-every"); try positive(limit, "--limit")
        try positive(threads, "--threads")
        if let threads, threads > Runtime.maxThreads { throw ValidationError("--threads must be at most \(Runtime.maxThreads), got \(threads)") }
        if !ModelZoo.blockCounts.contains(blocks) {
            throw ValidationError("--blocks must be \(ModelZoo.blockCounts.lowerBound) to \(ModelZoo.blockCounts.upperBound), got \(blocks)")
        }
        if let evalEvery, evalEvery < 0 { throw ValidationError("--eval-every must not be negative, got \(evalEvery)") }
        if let evalEvery, evalEvery > 0 && !DatasetStore.known.contains(dataset) { throw ValidationError("--eval-every needs a bundled classifier: --dataset mnist or fashion-mnist") }
        if !["rollback", "stop"].contains(onDivergence) { throw ValidationError("--on-divergence \(onDivergence) is not one of rollback, stop") }
        if maxRollbacks < 0 { throw ValidationError("--max-rollbacks must not be negative, got \(maxRollbacks)") }
        try positive(dWinSteps, "--d-win-steps")
        if sampleEvery < 0 { throw ValidationError("--sample-every must not be negative, got \(sampleEvery)") }
        try positiveRate(lrG, "--lr-g"); try positiveRate(lrD, "--lr-d"); try positiveRate(clip, "--clip")
        if gpLambda < 0 || !gpLambda.isFinite { throw ValidationError("--gp-lambda must not be negative, got \(gpLambda)") }
        for (v, f) in [(beta1G, "--beta1-g"), (beta2G, "--beta2-g"), (beta1D, "--beta1-d"), (beta2D, "--beta2-d")] {
            if let v, !(v >= 0 && v < 1) { throw ValidationError("\(f) must be in [0, 1), got \(v)") }
        }
        if !(labelSmoothing >= 0 && labelSmoothing < 1) { throw ValidationError("--label-smoothing must be in [0, 1), got \(labelSmoothing)") }
        if !(instanceNoise >= 0 && instanceNoise.isFinite) { throw ValidationError("--instance-noise must not be negative, got \(instanceNoise)") }
        if let ema, !(ema > 0 && ema < 1) { throw ValidationError("--ema must be in (0, 1), got \(ema)") }
        if let criticNorm, CriticNorm(rawValue: criticNorm) == nil { throw ValidationError("--critic-norm \(criticNorm) is not one of batch, layer, none") }
        if criticNorm != nil && ModelZoo.spec(model)?.isBlockBuilt != true { throw ValidationError("--critic-norm applies to dcgan-bn and cdcgan only") }
        if let latent, LatentDistribution(rawValue: latent) == nil { throw ValidationError("--latent \(latent) is not one of normal, uniform") }
        if featureMatching && (loss == "wgan-gp" || loss == "wgan-clip") { throw ValidationError("--feature-matching replaces the generator loss; it does not combine with \(loss!)") }
    }

    func makeConfig() -> TrainConfig {
        var c = TrainConfig()
        c.model = model; c.loss = loss; c.dataset = dataset
        c.epochs = epochs ?? (steps == nil ? (model == "dcgan" ? 2 : 1) : nil); c.steps = steps
        c.batchSize = batchSize; c.seed = seed; c.lrG = lrG; c.lrD = lrD
        // A β not given keeps the model's (mlp-deep and cgan use β1 0.9), not Adam's usual 0.5.
        let spec = ModelZoo.spec(model)
        let (defaultG, defaultD) = (spec?.betasG ?? (0.5, 0.999), spec?.betasD ?? (0.5, 0.999))
        if beta1G != nil || beta2G != nil { c.betasG = [beta1G ?? defaultG.0, beta2G ?? defaultG.1] }
        if beta1D != nil || beta2D != nil { c.betasD = [beta1D ?? defaultD.0, beta2D ?? defaultD.1] }
        c.nCritic = nCritic; c.gpLambda = gpLambda; c.clipValue = clip; c.criticNorm = criticNorm
        c.labelSmoothing = labelSmoothing; c.instanceNoise = instanceNoise; c.spectralNorm = spectralNorm
        c.emaDecay = ema; c.minibatchStdDev = minibatchStd; c.minibatchDiscrimination = minibatchDiscrimination
        c.featureMatching = featureMatching; c.filters = filters; c.blocks = blocks; c.latentDim = latentDim
        c.latentDistribution = latent; c.sampleEvery = sampleEvery; c.checkpointEvery = checkpointEvery
        c.logEvery = logEvery; c.limit = limit; c.threads = threads ?? Runtime.defaultThreads
        c.evalEvery = evalEvery ?? (DatasetStore.known.contains(dataset) ? 1 : 0)
        c.onDivergence = onDivergence; c.maxRollbacks = maxRollbacks; c.dWinSteps = dWinSteps
        return c
    }

    /// The bundled classifier with the features of `dataset`'s test images.
    static func testSetEvaluator(_ dataset: String, log: (String) -> Void) throws -> Evaluator {
        guard let bundled = BundledClassifier.forDataset(dataset) else { throw ValidationError("no bundled classifier for \(dataset)") }
        let classifier = try bundled.load()
        let test = try DatasetStore.load(dataset, split: .test, log: log)
        return Evaluator.forTestSet(test, classifier: classifier, name: bundled.version, cache: ReferenceCache(bundled, dataset: dataset))
    }

    func run() throws {
        // Warnings printed since the last progress line are still the last thing on screen: the
        // list at the end leaves them out instead of printing them twice in a row.
        var unscrolledWarnings: Set<String> = []
        let log: (String) -> Void = { message in
            if message.hasPrefix("warning: ") { unscrolledWarnings.insert(String(message.dropFirst("warning: ".count))) }
            FileHandle.standardError.write(Data((message + "\n").utf8))
        }
        let config = makeConfig()
        let cores = ProcessInfo.processInfo.activeProcessorCount
        if let threads, threads > cores {
            log("warning: --threads \(threads) is more than the \(cores) cores here: the extra parts wait for a free core, which is slower than \(cores) threads (dcgan 110 against 190 img/s at 64 threads on 2 cores)")
        }
        let dir = runDir ?? "runs/\(model)\(loss.map { "-\($0)" } ?? "")"
        if config.loss == "wgan-gp" && (config.criticNorm ?? "batch") == "batch" && ModelZoo.spec(model)?.isBlockBuilt == true {
            log("warning: WGAN-GP with batch norm in the critic: the penalty is defined per sample, but batch norm makes each critic output depend on the whole batch, so the gradient norm it constrains is not the one the theory needs (Gulrajani et al. use layer norm). Consider --critic-norm layer.")
        }
        StopSignals.install()
        let run: TrainingRun
        do {
            run = try TrainingRun(config: config, runDirectory: dir, resume: resume, overwrite: overwrite, log: log)
        } catch let e as ConfigError {
            throw optionError(e.description, command: "train")
        }
        let t = run.trainer
        if resume && t.isFinished {
            // The run still finishes as usual below (summary, plots), so that a run killed after
            // its last checkpoint completes; this only says why no step runs.
            print("Nothing left to train: \(dir) is at step \(t.globalStep) and \(t.totalSteps) iterations were asked for; raise --steps or --epochs to go on.")
        }
        if t.config.evalEvery > 0 {
            let evaluator = try Self.testSetEvaluator(t.config.dataset, log: log)
            // Embedding the test set leaves the classifier's activations and the test images in
            // the buffer cache, sizes no training step asks for: ~180 MB of peak RSS for nothing.
            BufferCache.release()
            run.evaluator = { images in
                let r = evaluator.evaluate(images, kidSubsets: 10, withPrecisionRecall: false)
                return ["fd": r.fd, "classes_covered": Double(r.classesCovered), "coverage_kl": r.coverageKL]
            }
        }
        let threadCount = Runtime.threads
        print("Training \(t.spec.name) with \(t.lossKind.rawValue) loss on \(t.config.dataset): \(t.loader.dataset.count) images, batch \(t.loader.batchSize), \(t.totalSteps) iterations (\(t.loader.batchesPerEpoch) per epoch); G \(t.generator.parameterCount) / D \(t.discriminator.parameterCount) parameters; \(BLASInfo.kernel) BLAS, \(threadCount) thread\(threadCount == 1 ? "" : "s")")
        print("Run directory: \(dir)")
        fflush(stdout)
        var bar: ProgressBar?
        var currentEpoch = -1
        let summary = try run.run { m in
            unscrolledWarnings.removeAll()
            if m.epoch != currentEpoch {
                currentEpoch = m.epoch
                let total = t.config.steps.map { min(t.loader.batchesPerEpoch, $0) } ?? t.loader.batchesPerEpoch
                bar = ProgressBar(total: total, label: "epoch \(m.epoch)")
            }
            let g = m.gLoss.map { String(format: "%.3f", $0) } ?? "–"
            bar?.update((m.step - 1) % t.loader.batchesPerEpoch + 1, items: ((m.step - 1) % t.loader.batchesPerEpoch + 1) * t.loader.batchSize,
                        extra: String(format: "step %d  D %.3f  G %@  D(x) %.2f  D(G(z)) %.2f", m.step, m.dLoss, g, m.dReal, m.dFake))
        }
        for w in summary.warnings where !unscrolledWarnings.contains(w) { print("warning: \(w)") }
        if summary.interrupted {
            print("Stopped by signal after step \(summary.steps); checkpoint saved in \(run.dir.checkpoints). Continue with: gan train --run-dir \(dir) --resume")
        } else if let step = summary.divergedAt {
            let after = summary.rollbacks > 0 ? " after \(summary.rollbacks) rollback(s) with halved learning rates" : ""
            print("Training diverged at step \(step) (non-finite \(summary.nonFinite ?? "value"))\(after); the last good checkpoint is in \(run.dir.checkpoints).")
            throw ExitCode(2)
        } else {
            print(String(format: "Done: %d iterations in %.0f s. Samples: %@/samples, plots: %@/plots, checkpoint: %@", summary.steps, summary.seconds, dir, dir, run.dir.latestCheckpoint ?? "-"))
        }
    }
}
