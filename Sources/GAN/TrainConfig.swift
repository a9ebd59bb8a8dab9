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
    /// Use only the first N training images (quick runs, tests).
    public var limit: Int?
    public var threads: Int?

    public init() {}

    public static func load(path: String) throws -> TrainConfig {
        try JSONDecoder().decode(TrainConfig.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
    }

    public func json() -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .prettyPrinted]
        return String(data: try! e.encode(self), encoding: .utf8)!
    }
}
