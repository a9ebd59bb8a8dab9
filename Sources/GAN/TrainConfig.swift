import Foundation

/// Everything that defines a training run; saved as `config.json` and in every checkpoint.
public struct TrainConfig: Codable, Sendable, Equatable {
    public var model = "dcgan"
    public var loss: String?
    public var dataset = "mnist"
    public var epochs: Int?
    public var steps: Int?
    public var batchSize: Int?
    public var seed: UInt64 = 0
    public var lrG: Float?
    public var lrD: Float?
    public var betasG: [Float]?
    public var betasD: [Float]?
    public var nCritic: Int?
    public var gpLambda: Float = 10
    public var clipValue: Float = 0.01
    public var labelSmoothing: Float = 0
    public var instanceNoise: Float = 0
    public var spectralNorm = false
    public var emaDecay: Float?
    public var minibatchStdDev = false
    public var minibatchDiscrimination = false
    public var featureMatching = false
    public var criticNorm: String?
    public var filters = 128
    public var blocks = 2
    public var latentDim: Int?
    public var latentDistribution: String?
    /// Write a sample grid every this many steps (0: only at epoch ends).
    public var sampleEvery = 0
    /// Save a checkpoint every this many epochs (always at the end and on interruption).
    public var checkpointEvery = 1
    /// Append metrics every this many steps.
    public var logEvery = 10
    /// Score 2,000 samples (FD, class coverage) every this many epochs; 0 turns it off.
    public var evalEvery = 0
    /// Use only the first N training images (quick runs, tests).
    public var limit: Int?
    /// The threads the run trains on (`TrainingRun` sets the engine to it; nil leaves the
    /// engine's count). Results depend on the count (a split sums in its own order) but never on
    /// timing, so it is recorded: a resume on another count warns.
    public var threads: Int?
    /// What a NaN or Inf in a loss, gradient or weight does: "rollback" (to the last checkpoint,
    /// learning rates halved, at most `maxRollbacks` times, then stop) or "stop".
    public var onDivergence = "rollback"
    public var maxRollbacks = 3
    /// Report a discriminator whose loss stays below 0.01 for this many steps in a row.
    public var dWinSteps = 200

    public init() {}

    enum CodingKeys: String, CodingKey {
        case model, loss, dataset, epochs, steps, batchSize, seed, lrG, lrD, betasG, betasD, nCritic, gpLambda, clipValue
        case labelSmoothing, instanceNoise, spectralNorm, emaDecay, minibatchStdDev, minibatchDiscrimination, featureMatching
        case criticNorm, filters, blocks, latentDim, latentDistribution, sampleEvery, checkpointEvery, logEvery, evalEvery, limit, threads
        case onDivergence, maxRollbacks, dWinSteps
    }

    /// Decodes leniently: keys added in later versions default when absent.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = TrainConfig()
        func get<T: Decodable>(_ k: CodingKeys, _ fallback: T) throws -> T { try c.decodeIfPresent(T.self, forKey: k) ?? fallback }
        model = try get(.model, d.model); loss = try c.decodeIfPresent(String.self, forKey: .loss)
        dataset = try get(.dataset, d.dataset); epochs = try c.decodeIfPresent(Int.self, forKey: .epochs)
        steps = try c.decodeIfPresent(Int.self, forKey: .steps); batchSize = try c.decodeIfPresent(Int.self, forKey: .batchSize)
        seed = try get(.seed, d.seed); lrG = try c.decodeIfPresent(Float.self, forKey: .lrG); lrD = try c.decodeIfPresent(Float.self, forKey: .lrD)
        betasG = try c.decodeIfPresent([Float].self, forKey: .betasG); betasD = try c.decodeIfPresent([Float].self, forKey: .betasD)
        nCritic = try c.decodeIfPresent(Int.self, forKey: .nCritic); gpLambda = try get(.gpLambda, d.gpLambda)
        clipValue = try get(.clipValue, d.clipValue); labelSmoothing = try get(.labelSmoothing, d.labelSmoothing)
        instanceNoise = try get(.instanceNoise, d.instanceNoise); spectralNorm = try get(.spectralNorm, d.spectralNorm)
        emaDecay = try c.decodeIfPresent(Float.self, forKey: .emaDecay); minibatchStdDev = try get(.minibatchStdDev, d.minibatchStdDev)
        minibatchDiscrimination = try get(.minibatchDiscrimination, d.minibatchDiscrimination)
        featureMatching = try get(.featureMatching, d.featureMatching); criticNorm = try c.decodeIfPresent(String.self, forKey: .criticNorm)
        filters = try get(.filters, d.filters); blocks = try get(.blocks, d.blocks); latentDim = try c.decodeIfPresent(Int.self, forKey: .latentDim)
        latentDistribution = try c.decodeIfPresent(String.self, forKey: .latentDistribution)
        sampleEvery = try get(.sampleEvery, d.sampleEvery); checkpointEvery = try get(.checkpointEvery, d.checkpointEvery)
        logEvery = try get(.logEvery, d.logEvery); evalEvery = try get(.evalEvery, d.evalEvery)
        limit = try c.decodeIfPresent(Int.self, forKey: .limit); threads = try c.decodeIfPresent(Int.self, forKey: .threads)
        onDivergence = try get(.onDivergence, d.onDivergence); maxRollbacks = try get(.maxRollbacks, d.maxRollbacks)
        dWinSteps = try get(.dWinSteps, d.dWinSteps)
    }

    public static func load(path: String) throws -> TrainConfig {
        try JSONDecoder().decode(TrainConfig.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
    }

    public func json() -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .prettyPrinted]
        return String(data: try! e.encode(self), encoding: .utf8)!
    }
}
