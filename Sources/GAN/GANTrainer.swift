import Datasets
import Engine
import Foundation
import NN

/// What one training iteration measured.
public struct StepMetrics: Sendable {
    public var step: Int
    public var epoch: Int
    public var dLoss: Float
    public var gLoss: Float?
    /// Mean discriminator output on real and on generated images (probabilities for the
    /// cross-entropy losses, raw scores otherwise).
    public var dReal: Float
    public var dFake: Float
    public var accReal: Float
    public var accFake: Float
    /// The first loss, gradient or weight that held NaN or ±Inf in this step, if any
    /// ("D loss", "gradient of discriminator.net.0.weight", "generator.net.4.bias", …).
    public var nonFinite: String?
}

/// Trains one GAN. All randomness comes from four Philox streams saved in every checkpoint —
/// latent noise, data order, dropout masks and the rest (penalty α, instance noise) — so a run
/// interrupted and resumed ends bit-identical to one that was never interrupted.
public final class GANTrainer {
    public let config: TrainConfig
    public let spec: ModelSpec
    public let lossKind: GANLossKind
    public let loss: GANLoss
    public let generator: Network
    public let discriminator: Network
    /// `discriminator.isPerSample`, fixed once the model is built.
    let discriminatorIsPerSample: Bool
    public private(set) var ema: Network?
    let optG: Optimizer
    let optD: Optimizer
    public let loader: BatchLoader
    public let nCritic: Int
    public let latentDim: Int
    let latentDistribution: LatentDistribution
    let dropout: RandomSource
    var noise: RandomGenerator
    var dataEpochStart: RandomGenerator
    var data: RandomGenerator
    var misc: RandomGenerator
    var order: [Int] = []

    public private(set) var epoch = 0          // epochs completed
    public private(set) var stepInEpoch = 0     // batches done in the current epoch
    public private(set) var globalStep = 0
    public let fixedZ: Tensor
    public let fixedLabels: [Int]?
    public let totalSteps: Int
    /// Multiplies the configured learning rates; halved by each divergence rollback.
    public private(set) var learningRateScale: Float = 1
    /// Divergence rollbacks so far in this run (saved in checkpoints).
    public var rollbacks = 0
    /// Called after each backward pass, before the gradients are checked and applied. For
    /// fault-injection tests (a poisoned gradient must be caught in the step it appears).
    public var afterBackward: ((_ network: Network, _ step: Int) -> Void)?
    let baseLearningRates: (g: Float, d: Float)
    /// The parameters checked for NaN/Inf every step, with their checkpoint names (built once:
    /// parameters keep their identity for the trainer's life, loading only assigns values).
    let watchedG: [(String, Parameter)]
    let watchedD: [(String, Parameter)]
    /// Whether this training can run as a `DenseGANStep`, and its plans by batch size.
    var denseStepApplies: Bool
    var denseSteps: [Int: DenseGANStep] = [:]
    /// Whether the last `step()` ran as a `DenseGANStep`.
    public private(set) var lastStepWasPlanned = false

    public init(config: TrainConfig, train: ImageDataset) throws {
        guard let spec = ModelZoo.spec(config.model) else {
            throw ConfigError("--model \(config.model) is not one of \(ModelZoo.all.map(\.name).joined(separator: ", "))")
        }
        let kind: GANLossKind
        if let name = config.loss {
            guard let k = GANLossKind(rawValue: name) else {
                throw ConfigError("--loss \(name) is not one of \(GANLossKind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            kind = k
        } else { kind = spec.defaultLoss }
        self.config = config
        self.spec = spec
        lossKind = kind
        loss = GANLoss(kind, kerasBCE: spec.name == "dcgan", labelSmoothing: config.labelSmoothing)
        latentDim = config.latentDim ?? spec.latentDim
        latentDistribution = config.latentDistribution.flatMap(LatentDistribution.init(rawValue:)) ?? spec.latent

        var options = BuildOptions()
        options.probabilityOutput = kind.usesProbabilities
        options.criticNorm = try config.criticNorm.map {
            guard let n = CriticNorm(rawValue: $0) else { throw ConfigError("--critic-norm \($0) is not one of batch, layer, none") }
            return n
        }
        options.spectralNorm = config.spectralNorm
        options.minibatchStdDev = config.minibatchStdDev
        options.minibatchDiscrimination = config.minibatchDiscrimination
        options.filters = config.filters
        options.blocks = config.blocks
        options.latentDim = latentDim
        var initRNG = RandomGenerator(seed: config.seed)
        dropout = RandomSource(seed: config.seed &+ 3)
        (generator, discriminator) = ModelZoo.build(spec, options: options, generator: &initRNG, random: dropout)
        discriminatorIsPerSample = discriminator.isPerSample
        try GANTrainer.checkImageSize(generator, latentDim: latentDim, spec: spec, blocks: options.blocks, data: train)
        if let decay = config.emaDecay {
            guard decay > 0 && decay < 1 else { throw ConfigError("--ema must be in (0, 1), got \(decay)") }
            var r = RandomGenerator(seed: 0)
            let copy = ModelZoo.build(spec, options: options, generator: &r, random: RandomSource(seed: 0)).0
            try copy.loadStateDict(Dictionary(uniqueKeysWithValues: generator.stateDict()))
            copy.eval()
            ema = copy
        }

        let clip = kind == .wganClip
        nCritic = config.nCritic ?? (clip ? 5 : 1)
        let lrG = config.lrG ?? (clip ? 5e-5 : spec.learningRateG)
        let lrD = config.lrD ?? (clip ? 5e-5 : spec.learningRateD)
        let bG = config.betasG.map { ($0[0], $0[1]) } ?? spec.betasG
        let bD = config.betasD.map { ($0[0], $0[1]) } ?? spec.betasD
        baseLearningRates = (lrG, lrD)
        watchedG = generator.namedParameters().map { ("generator." + $0.0, $0.1) }
        watchedD = discriminator.namedParameters().map { ("discriminator." + $0.0, $0.1) }
        if clip {
            optG = RMSProp(generator.parameters, learningRate: lrG)
            optD = RMSProp(discriminator.parameters, learningRate: lrD)
        } else {
            optG = Adam(generator.parameters, learningRate: lrG, beta1: bG.0, beta2: bG.1)
            optD = Adam(discriminator.parameters, learningRate: lrD, beta1: bD.0, beta2: bD.1)
        }

        let batch = config.batchSize ?? spec.batchSize
        let data = config.limit.map { train.prefix($0) } ?? train
        guard data.count >= batch else {
            throw ConfigError("--batch-size \(batch) is larger than the \(data.count) training images")
        }
        loader = BatchLoader(data, batchSize: batch, scaling: spec.scaling == .unit ? .unit : .symmetric)
        noise = RandomGenerator(seed: config.seed &+ 1)
        self.data = RandomGenerator(seed: config.seed &+ 2)
        dataEpochStart = self.data
        misc = RandomGenerator(seed: config.seed &+ 4)
        if let steps = config.steps { totalSteps = steps } else { totalSteps = (config.epochs ?? 1) * loader.batchesPerEpoch }

        // The fixed batch shown in every grid: 64 latents (and for conditional models, rows of
        // the digits 0–9) from a stream of its own.
        var fixedRNG = RandomGenerator(seed: config.seed &+ 5)
        fixedZ = GANTrainer.latent(64, latentDim, latentDistribution, &fixedRNG)
        fixedLabels = spec.conditional ? (0..<64).map { $0 % 10 } : nil
        denseStepApplies = kind.usesProbabilities && !loss.kerasBCE && !config.featureMatching && config.instanceNoise == 0
            && !spec.conditional && discriminatorIsPerSample
    }

    /// The generator must make images of the dataset's size: the discriminator is built for the
    /// generator's size and sees both. One sample in eval mode, without a graph, tells.
    static func checkImageSize(_ generator: Network, latentDim: Int, spec: ModelSpec, blocks: Int, data: ImageDataset) throws {
        let out = withoutGrad {
            generator.eval()
            defer { generator.train() }
            return generator(Tensor.zeros([1, latentDim]), labels: spec.conditional ? [0] : nil)
        }
        let size = (out.shape[out.rank - 2], out.shape[out.rank - 1])
        guard size != (data.height, data.width) else { return }
        var hint = ""
        if spec.isBlockBuilt {
            hint = " (\(spec.name) starts at 7×7 and doubles per block: --blocks \(blocks) gives \(size.0)×\(size.1)"
            let fits = data.height == data.width ? ModelZoo.blockCounts.first { ModelZoo.blockImageSide(blocks: $0) == data.height } : nil
            hint += fits.map { "; use --blocks \($0))" } ?? ")"
        }
        throw ConfigError("--model \(spec.name) generates \(size.0)×\(size.1) images but \(data.name) holds \(data.height)×\(data.width) images\(hint)")
    }

    static func latent(_ n: Int, _ dim: Int, _ dist: LatentDistribution, _ g: inout RandomGenerator) -> Tensor {
        dist == .normal ? Tensor.randn([n, dim], generator: &g) : Tensor.rand([n, dim], low: -1, high: 1, generator: &g)
    }

    /// Whether a discriminator whose layers are all per-sample (`Module.isPerSample`) runs once
    /// on real and fake joined instead of twice: the same outputs, half the ops (`gan bench train
    /// --alternate join-discriminator-batch` measures it).
    nonisolated(unsafe) public static var joinsPerSampleBatches = true

    public var isFinished: Bool { globalStep >= totalSteps }
    public var isConditional: Bool { spec.conditional }

    // MARK: one iteration

    /// Runs one iteration: a discriminator update, and a generator update every `nCritic`.
    public func step() -> StepMetrics {
        if order.isEmpty {
            // The epoch's order is drawn from the stream's state at the epoch's start, so a
            // resumed run (which saved that state) draws the same one.
            data = dataEpochStart
            order = loader.order(generator: &data)
        }
        let n = loader.batchRows(stepInEpoch, order: order).count
        generator.train()
        discriminator.train()
        let plan = denseStep(rows: n)
        lastStepWasPlanned = plan != nil
        // A plan takes the real images straight into its joined batch: no batch tensor to copy.
        var batch: (images: Tensor, labels: [Int])?
        if let plan { loader.gatherImages(stepInEpoch, order: order, into: plan.realImages) } else { batch = loader.batch(stepInEpoch, order: order) }
        OpProfiler.mark("data batch")
        let z = GANTrainer.latent(n, latentDim, latentDistribution, &noise)
        OpProfiler.mark("latent z")
        if let plan {
            let metrics = plannedStep(plan, z: z)
            advance()
            return metrics
        }
        let (real, realLabels) = batch!
        let labels: [Int]? = isConditional ? realLabels : nil
        let fake = generator(z, labels: labels)

        // Discriminator.
        discriminator.setFrozen(false)
        optD.zeroGrad()
        OpProfiler.mark("zero D's gradients")
        let sigma = config.instanceNoise * Swift.max(0, 1 - Float(globalStep) / Float(Swift.max(totalSteps, 1)))
        let realIn = sigma > 0 ? real + Tensor.randn(real.shape, generator: &misc) * sigma : real
        let fakeIn = sigma > 0 ? fake.detached() + Tensor.randn(fake.shape, generator: &misc) * sigma : fake.detached()
        let dReal: Tensor, dFake: Tensor
        var dLoss: Tensor
        let kerasCombined = spec.combinedDiscriminatorBatch && lossKind.usesProbabilities
        if kerasCombined || (GANTrainer.joinsPerSampleBatches && discriminatorIsPerSample) {
            // One call on [real; fake]: the Keras tutorial's batch, or, for a per-sample
            // discriminator, the same outputs as two calls with half as many ops over twice the
            // rows and one weight gradient per layer instead of two to add.
            let out = discriminator(Tensor.concat([realIn, fakeIn], axis: 0), labels: labels.map { $0 + $0 })
            dReal = out.sliced(axis: 0, 0..<n)
            dFake = out.sliced(axis: 0, n..<(2 * n))
            dLoss = kerasCombined ? loss.discriminatorCombined(out, realCount: n) : loss.discriminator(real: dReal, fake: dFake)
        } else {
            dReal = discriminator(realIn, labels: labels)
            dFake = discriminator(fakeIn, labels: labels)
            dLoss = loss.discriminator(real: dReal, fake: dFake)
        }
        if lossKind == .wganGP {
            let alpha = Tensor.rand([n, 1, 1, 1], generator: &misc)
            let gp = gradientPenalty(real: real, fake: fake, alpha: alpha) { self.discriminator($0, labels: labels) }
            dLoss = dLoss + gp * config.gpLambda
        }
        dLoss.backward()
        afterBackward?(discriminator, globalStep + 1)
        var nonFinite: String? = dLoss.item.isFinite ? nil : "D loss"
        OpProfiler.mark("D loss value")
        optD.step()
        OpProfiler.mark("D optimizer")
        nonFinite = nonFinite ?? firstNonFiniteAfterStep(watchedD, optD)
        if lossKind == .wganClip {
            for p in discriminator.parameters { p.assign(p.value.detached().clamp(min: -config.clipValue, max: config.clipValue)) }
        }
        let threshold: Float = lossKind.usesProbabilities ? 0.5 : 0
        // Read without recording: the discriminator's outputs still carry the graph.
        var metrics = withoutGrad {
            StepMetrics(step: globalStep + 1, epoch: epoch + 1, dLoss: dLoss.item, gLoss: nil,
                        dReal: dReal.mean().item, dFake: dFake.mean().item,
                        accReal: (dReal .> threshold).mean().item,
                        accFake: 1 - (dFake .> threshold).mean().item, nonFinite: nil)
        }
        OpProfiler.mark("metrics")

        // Generator, through the updated and frozen discriminator.
        if (globalStep + 1) % nCritic == 0 {
            discriminator.setFrozen(true)
            optG.zeroGrad()
            OpProfiler.mark("freeze D, zero G's gradients")
            let gLoss: Tensor
            if config.featureMatching {
                let fr = discriminator.features(realIn, labels: labels).detached().mean(axis: 0)
                let ff = discriminator.features(fake, labels: labels).mean(axis: 0)
                gLoss = (fr - ff).square().mean()
            } else {
                gLoss = loss.generator(fake: discriminator(fake, labels: labels))
            }
            gLoss.backward()
            afterBackward?(generator, globalStep + 1)
            if !gLoss.item.isFinite { nonFinite = nonFinite ?? "G loss" }
            OpProfiler.mark("G loss value")
            optG.step()
            OpProfiler.mark("G optimizer")
            discriminator.setFrozen(false)
            metrics.gLoss = gLoss.item
            nonFinite = nonFinite ?? firstNonFiniteAfterStep(watchedG, optG)
            updateEMA()
        }
        metrics.nonFinite = nonFinite
        OpProfiler.mark("step end")
        advance()
        return metrics
    }

    /// Counts the step done and moves through the epoch.
    func advance() {
        globalStep += 1
        stepInEpoch += 1
        if stepInEpoch == loader.batchesPerEpoch {
            stepInEpoch = 0
            epoch += 1
            dataEpochStart = data
            order = []
        }
    }

    // MARK: the planned step of dense models

    /// Whether a dense model's iteration runs as a `DenseGANStep` (`GAN_DENSE_STEP=0` turns it
    /// off, for comparisons): the same values as the graph's step, without the graph.
    nonisolated(unsafe) public static var plansDenseSteps = ProcessInfo.processInfo.environment["GAN_DENSE_STEP"] != "0"

    /// The plan for batches of `rows`, made at the first such batch (an epoch's smaller last
    /// batch gets one of its own), or nil when this training is not one it runs: it runs
    /// unconditional dense models with a cross-entropy loss (PyTorch's), the discriminator
    /// on real and generated images joined, and none of the step's options that add ops.
    func denseStep(rows: Int) -> DenseGANStep? {
        // The switches that change the graph's ops (which the plan's values must equal) are read
        // at every step: `gan bench train --alternate` flips them between blocks.
        guard GANTrainer.plansDenseSteps, denseStepApplies, afterBackward == nil,
              GANTrainer.joinsPerSampleBatches, Sequential.fusesBiasActivation, Sequential.fusesLinear,
              Sequential.fusesBiasSaturating else { return nil }
        if let plan = denseSteps[rows] { return plan }
        // The loader gathers real images straight into the plan's batch: they must be its width.
        guard let plan = DenseGANStep(generator: generator, discriminator: discriminator, optG: optG, optD: optD, rows: rows),
              plan.imageSize == loader.dataset.height * loader.dataset.width else {
            denseStepApplies = false
            return nil
        }
        denseSteps[rows] = plan
        return plan
    }

    /// `step()` with a plan: the same metrics, bit for bit (each `mean` and cross-entropy of the
    /// graph's step, on the plan's buffers instead of tensors), the same checks for non-finite
    /// values.
    func plannedStep(_ plan: DenseGANStep, z: Tensor) -> StepMetrics {
        let updatesG = (globalStep + 1) % nCritic == 0
        let minimax = lossKind == .minimax
        plan.run(z: z, realTarget: 1 - config.labelSmoothing, minimax: minimax,
                 updateGenerator: updatesG, optG: optG, optD: optD)
        let n = plan.rows, scores = UnsafePointer(plan.scoreElements)
        let fake = scores + n, after = scores + 2 * n
        let dLoss = Tensor.binaryCrossEntropyMean(of: scores, count: n, target: 1 - config.labelSmoothing)
            + Tensor.binaryCrossEntropyMean(of: fake, count: n, target: 0)
        var nonFinite: String? = dLoss.isFinite ? nil : "D loss"
        nonFinite = nonFinite ?? firstNonFiniteAfterStep(watchedD, optD)
        // (p .> 0.5).mean(): the share of outputs above the threshold, summed as `mean` does.
        func above(_ p: UnsafePointer<Float>) -> Float {
            withUnsafeTemporaryAllocation(of: Float.self, capacity: n) { hits in
                for i in 0..<n { hits[i] = p[i] > 0.5 ? 1 : 0 }
                return Tensor.mean(of: hits.baseAddress!, count: n)
            }
        }
        // 1 − x and −x as the graph's `affine` computes them: −1 · x + 1 and −1 · x + 0.
        var metrics = StepMetrics(step: globalStep + 1, epoch: epoch + 1, dLoss: dLoss, gLoss: nil,
                                  dReal: Tensor.mean(of: scores, count: n), dFake: Tensor.mean(of: fake, count: n),
                                  accReal: above(scores), accFake: -1 * above(fake) + 1, nonFinite: nil)
        if updatesG {
            let gLoss = minimax ? -1 * Tensor.binaryCrossEntropyMean(of: after, count: n, target: 0) + 0
                : Tensor.binaryCrossEntropyMean(of: after, count: n, target: 1)
            if !gLoss.isFinite { nonFinite = nonFinite ?? "G loss" }
            metrics.gLoss = gLoss
            nonFinite = nonFinite ?? firstNonFiniteAfterStep(watchedG, optG)
            updateEMA()
        }
        metrics.nonFinite = nonFinite
        OpProfiler.mark("metrics")
        return metrics
    }

    /// After an optimizer step: the first gradient, else parameter, holding NaN or ±Inf. A
    /// non-finite gradient leaves its parameter non-finite under every optimizer here (NaN or ±Inf
    /// reaches the update through the moments or the step), so the parameters decide — as Adam
    /// checked them while writing them when it updated every watched tensor, else in one pass —
    /// and the gradients are searched only to name the culprit.
    func firstNonFiniteAfterStep(_ watched: [(String, Parameter)], _ optimizer: Optimizer) -> String? {
        if let check = optimizer.lastStepCheck, check.updated == watched.count {
            if check.allFinite { return nil }
        } else if watched.allSatisfy({ $0.1.value.isAllFinite }) {
            return nil
        }
        return firstNonFinite(watched, gradients: true) ?? firstNonFinite(watched, gradients: false)
    }

    /// The name of the first parameter (or its gradient) holding NaN or ±Inf.
    func firstNonFinite(_ watched: [(String, Parameter)], gradients: Bool) -> String? {
        for (name, p) in watched {
            if gradients {
                if let g = p.grad, !g.isAllFinite { return "gradient of " + name }
            } else if !p.value.isAllFinite {
                return name
            }
        }
        return nil
    }

    /// Sets the learning rates to the configured ones times `scale`.
    public func setLearningRateScale(_ scale: Float) {
        learningRateScale = scale
        optG.learningRate = baseLearningRates.g * scale
        optD.learningRate = baseLearningRates.d * scale
    }

    public var learningRates: (g: Float, d: Float) { (optG.learningRate, optD.learningRate) }

    func updateEMA() {
        guard let ema, let decay = config.emaDecay else { return }
        for (e, p) in zip(ema.parameters, generator.parameters) {
            e.assign(e.value.detached() * decay + p.value.detached() * (1 - decay))
        }
        for (e, b) in zip(ema.namedBuffers(), generator.namedBuffers()) { e.1.value = b.1.value }
    }

    /// Generator output for the fixed latent batch, in eval mode and without a graph.
    public func fixedSamples(useEMA: Bool = false) -> Tensor {
        let g = useEMA ? (ema ?? generator) : generator
        g.eval()
        defer { if g === generator { g.train() } }
        return withoutGrad { g(fixedZ, labels: fixedLabels) }
    }

    // MARK: checkpoints

    public func checkpoint() -> Checkpoint {
        var ck = Checkpoint()
        ck.add(generator, as: "generator")
        ck.add(discriminator, as: "discriminator")
        if let ema { ck.add(ema, as: "generator_ema") }
        ck.add(optG, as: "optimizer_g")
        ck.add(optD, as: "optimizer_d")
        ck.file.tensors["fixed_z"] = fixedZ
        ck.metadata["config"] = config.json()
        ck.metadata["model"] = spec.name
        ck.metadata["loss"] = lossKind.rawValue
        ck.metadata["latent_dim"] = "\(latentDim)"
        ck.metadata["latent_distribution"] = latentDistribution.rawValue
        ck.metadata["pixel_range"] = spec.scaling.rawValue
        ck.metadata["epoch"] = "\(epoch)"
        ck.metadata["step_in_epoch"] = "\(stepInEpoch)"
        ck.metadata["global_step"] = "\(globalStep)"
        ck.metadata["learning_rate_scale"] = "\(learningRateScale)"
        ck.metadata["rollbacks"] = "\(rollbacks)"
        ck.setRandomState("noise", noise)
        ck.setRandomState("data_epoch_start", dataEpochStart)
        ck.setRandomState("dropout", dropout.generator)
        ck.setRandomState("misc", misc)
        return ck
    }

    /// Restores everything a checkpoint holds; the configuration must be the same.
    public func restore(_ ck: Checkpoint) throws {
        try ck.load(into: generator, from: "generator")
        try ck.load(into: discriminator, from: "discriminator")
        if let ema { try ck.load(into: ema, from: "generator_ema") }
        try ck.load(into: optG, from: "optimizer_g")
        try ck.load(into: optD, from: "optimizer_d")
        func int(_ k: String) throws -> Int {
            guard let s = ck.metadata[k], let v = Int(s) else { throw StateDictError(problems: ["missing or invalid \(k)"]) }
            return v
        }
        epoch = try int("epoch")
        stepInEpoch = try int("step_in_epoch")
        globalStep = try int("global_step")
        noise = try ck.randomState("noise")
        dataEpochStart = try ck.randomState("data_epoch_start")
        data = dataEpochStart
        order = []
        dropout.generator = try ck.randomState("dropout")
        misc = try ck.randomState("misc")
        setLearningRateScale(ck.metadata["learning_rate_scale"].flatMap(Float.init) ?? 1)
        rollbacks = ck.metadata["rollbacks"].flatMap(Int.init) ?? 0
    }
}

public struct ConfigError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

extension Network {
    /// The activations that feed the discriminator's last layer (feature matching).
    public func features(_ x: Tensor, labels: [Int]?) -> Tensor {
        let layers = net.layers
        let last = layers.lastIndex { $0 is WeightedLayer || $0 is SpectralNorm } ?? layers.count
        return layers[..<last].reduce(input(x, labels: labels)) { $1($0) }
    }
}
