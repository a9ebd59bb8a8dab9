import Engine
import Foundation
import NN

/// A generator rebuilt from a training checkpoint, with what is needed to sample from it.
public struct SavedGenerator {
    public let network: Network
    public let spec: ModelSpec
    public let latentDim: Int
    public let latent: LatentDistribution
    public let config: TrainConfig

    /// Loads the generator (or its EMA copy with `ema`) from a checkpoint file.
    public init(path: String, ema: Bool = false) throws {
        let ck = try Checkpoint.read(path: path)
        guard let text = ck.metadata["config"], let config = try? JSONDecoder().decode(TrainConfig.self, from: Data(text.utf8)) else {
            throw FileFormatError(path, "not a gan training checkpoint (no training configuration in its metadata)")
        }
        guard let spec = ModelZoo.spec(config.model) else { throw FileFormatError(path, "unknown model \(config.model)") }
        let kind = config.loss.flatMap(GANLossKind.init(rawValue:)) ?? spec.defaultLoss
        var o = BuildOptions()
        o.probabilityOutput = kind.usesProbabilities
        o.filters = config.filters
        o.blocks = config.blocks
        o.latentDim = config.latentDim
        o.criticNorm = config.criticNorm.flatMap(CriticNorm.init(rawValue:))
        o.spectralNorm = config.spectralNorm
        o.minibatchStdDev = config.minibatchStdDev
        o.minibatchDiscrimination = config.minibatchDiscrimination
        var g = RandomGenerator(seed: 0)
        let (gen, _) = ModelZoo.build(spec, options: o, generator: &g, random: RandomSource(seed: 0))
        let prefix = ema ? "generator_ema" : "generator"
        if ema && !ck.file.tensors.keys.contains(where: { $0.hasPrefix("generator_ema.") }) {
            throw FileFormatError(path, "has no EMA generator (train with --ema DECAY)")
        }
        do { try ck.load(into: gen, from: prefix) } catch {
            throw FileFormatError(path, "\(error)")
        }
        gen.eval()
        network = gen
        self.spec = spec
        self.config = config
        latentDim = config.latentDim ?? spec.latentDim
        latent = config.latentDistribution.flatMap(LatentDistribution.init(rawValue:)) ?? spec.latent
    }

    public func drawLatent(_ n: Int, seed: UInt64) -> Tensor {
        var g = RandomGenerator(seed: seed)
        return GANTrainer.latent(n, latentDim, latent, &g)
    }

    /// Images [N, 1, 28, 28] in the model's pixel range, in batches of `batch`, without a graph.
    /// 100 rather than the benchmark's 500: `gan bench generate --model dcgan --count 4000` gave
    /// 565–615 samples/s and 134 MiB peak RSS at 100, 578–650 and 501 MiB at 500.
    public func generate(_ z: Tensor, labels: [Int]? = nil, batch: Int = 100) -> Tensor {
        precondition(z.rank == 2 && z.shape[1] == latentDim, "latent vectors must be [N, \(latentDim)], got \(z.shape)")
        return network.inBatches(z, labels: labels, batch: batch)
    }

    /// Images mapped to [0, 1].
    public func unitRange(_ images: Tensor) -> Tensor {
        spec.scaling == .unit ? images : (images + 1) * 0.5
    }
}

/// Spherical interpolation between two latent vectors (Shoemake's slerp).
public func slerp(_ a: Tensor, _ b: Tensor, _ t: Float) -> Tensor {
    let na = a.square().sum().sqrt().item, nb = b.square().sum().sqrt().item
    let cos = Swift.max(-1, Swift.min(1, (a * b).sum().item / Swift.max(na * nb, 1e-12)))
    let omega = acosf(cos)
    if omega < 1e-4 { return a * (1 - t) + b * t }
    let s = sinf(omega)
    return a * (sinf((1 - t) * omega) / s) + b * (sinf(t * omega) / s)
}

#if canImport(Glibc)
import Glibc
#endif
