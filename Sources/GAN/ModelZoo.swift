import Foundation
import Engine
import NN

/// How a model's discriminator normalizes (the `--critic-norm` option).
public enum CriticNorm: String, CaseIterable, Sendable { case batch, layer, none }

/// Latent distribution of a model.
public enum LatentDistribution: String, Sendable { case normal, uniform }

/// Everything a model needs to be built and trained as its tutorial says.
public struct ModelSpec: Sendable {
    public let name: String
    public let origin: String
    public let summary: String
    public let latentDim: Int
    public let latent: LatentDistribution
    public let scaling: PixelScalingName
    public let defaultLoss: GANLossKind
    public let batchSize: Int
    public let learningRateG: Float, learningRateD: Float
    public let betasG: (Float, Float), betasD: (Float, Float)
    public let conditional: Bool
    /// Keras' train step: one discriminator call on [real; fake] rather than two calls.
    public let combinedDiscriminatorBatch: Bool
    public let paddingNote: String

    /// Built from `--filters` and `--blocks` (dcgan-bn, cdcgan): the generator starts at 7×7 and
    /// doubles per stride-2 block, and the critic's normalization is a choice (`--critic-norm`).
    public var isBlockBuilt: Bool { name == "dcgan-bn" || name == "cdcgan" }
}

extension ModelZoo {
    /// The generator's first feature map of a block-built model, 7×7 (MNIST's 28 = 7 · 2²).
    static let blockStartSide = 7
    /// The allowed `--blocks` (`BuildOptions.blocks`).
    public static let blockCounts = 0...4
    /// The image side a block-built model generates with `blocks` stride-2 blocks.
    public static func blockImageSide(blocks: Int) -> Int { blockStartSide << blocks }
}

/// The pixel range a model's data and generator output use.
public enum PixelScalingName: String, Sendable {
    case unit = "[0, 1]", symmetric = "[-1, 1]"
    public var range: (Float, Float) { self == .unit ? (0, 1) : (-1, 1) }
}

/// Options that change how a model is built.
public struct BuildOptions: Sendable {
    /// The discriminator ends in a sigmoid only for the cross-entropy losses.
    public var probabilityOutput = true
    public var criticNorm: CriticNorm?
    public var spectralNorm = false
    public var minibatchStdDev = false
    public var minibatchDiscrimination = false
    public var filters = 128
    public var blocks = 2
    public var latentDim: Int?
    public init() {}
}

public enum ModelZoo {
    public static let all: [ModelSpec] = [
        ModelSpec(name: "mlp", origin: "PyTorch tutorial GAN (fully connected)",
                  summary: "G 100→256→256→784 ReLU, sigmoid; D 784→64→64→1 ReLU, sigmoid; PyTorch default init",
                  latentDim: 100, latent: .normal, scaling: .unit, defaultLoss: .nonsaturating, batchSize: 64,
                  learningRateG: 2e-4, learningRateD: 2e-4, betasG: (0.5, 0.999), betasD: (0.5, 0.999),
                  conditional: false, combinedDiscriminatorBatch: false, paddingNote: "—"),
        ModelSpec(name: "mlp-deep", origin: "TensorFlow 1 tutorial GAN",
                  summary: "G 100→256→512→1024→784 ReLU, tanh; D 784→1024→512→256→1 ReLU + dropout keep 0.3, sigmoid; truncated normal(0, 0.02)",
                  latentDim: 100, latent: .normal, scaling: .symmetric, defaultLoss: .nonsaturating, batchSize: 100,
                  learningRateG: 2e-4, learningRateD: 2e-4, betasG: (0.9, 0.999), betasD: (0.9, 0.999),
                  conditional: false, combinedDiscriminatorBatch: false, paddingNote: "—"),
        ModelSpec(name: "dcgan", origin: "Keras tutorial DCGAN (the default)",
                  summary: "G Dense(6272) → 7×7×128 → ConvT 128 5×5 s2 → ConvT 128 5×5 s2 (LeakyReLU 0.2) → Conv 1 7×7 sigmoid; D Conv 64 5×5 s2 → Conv 64 3×3 s2 (LeakyReLU 0.2, Dropout 0.4) → Dense 1 sigmoid; Glorot init",
                  latentDim: 100, latent: .normal, scaling: .unit, defaultLoss: .nonsaturating, batchSize: 64,
                  learningRateG: 2e-4, learningRateD: 2e-4, betasG: (0.5, 0.999), betasD: (0.5, 0.999),
                  conditional: false, combinedDiscriminatorBatch: true,
                  paddingNote: "Keras \"same\": stride-2 layers pad one more row/column at the bottom/right"),
        ModelSpec(name: "dcgan-bn", origin: "textbook DCGAN builder with batch norm (WGAN-GP with --loss wgan-gp)",
                  summary: "G Dense(6272, no bias) BN LReLU → ConvT 128 5×5 → per block ConvT(filters/2, s2) BN LReLU → ConvT 1 5×5 tanh; D Conv 64 5×5 BN LReLU → per block Conv(filters·2, s2) BN LReLU Dropout 0.3 → Conv 1 7×7 valid",
                  latentDim: 20, latent: .normal, scaling: .symmetric, defaultLoss: .nonsaturating, batchSize: 64,
                  learningRateG: 2e-4, learningRateD: 2e-4, betasG: (0.5, 0.999), betasD: (0.5, 0.999),
                  conditional: false, combinedDiscriminatorBatch: false,
                  paddingNote: "PyTorch symmetric padding with output padding 1 on stride-2 ConvTranspose"),
        ModelSpec(name: "cgan", origin: "conditional mlp-deep (Mirza & Osindero 2014)",
                  summary: "mlp-deep with the one-hot class joined to z and to the flattened image",
                  latentDim: 100, latent: .normal, scaling: .symmetric, defaultLoss: .nonsaturating, batchSize: 100,
                  learningRateG: 2e-4, learningRateD: 2e-4, betasG: (0.9, 0.999), betasD: (0.9, 0.999),
                  conditional: true, combinedDiscriminatorBatch: false, paddingNote: "—"),
        ModelSpec(name: "cdcgan", origin: "conditional dcgan-bn",
                  summary: "dcgan-bn with the one-hot class joined to z and as 10 constant channels of D's input",
                  latentDim: 20, latent: .normal, scaling: .symmetric, defaultLoss: .nonsaturating, batchSize: 64,
                  learningRateG: 2e-4, learningRateD: 2e-4, betasG: (0.5, 0.999), betasD: (0.5, 0.999),
                  conditional: true, combinedDiscriminatorBatch: false,
                  paddingNote: "PyTorch symmetric padding with output padding 1 on stride-2 ConvTranspose"),
    ]

    public static func spec(_ name: String) -> ModelSpec? { all.first { $0.name == name } }

    /// Builds (generator, discriminator). `random` feeds dropout masks.
    public static func build(_ spec: ModelSpec, options o: BuildOptions, generator g: inout RandomGenerator,
                             random: RandomSource) -> (Network, Network) {
        let classes = spec.conditional ? 10 : 0
        let z = o.latentDim ?? spec.latentDim
        switch spec.name {
        case "mlp":
            let gen = Sequential(Linear(z, 256, generator: &g), ReLU(), Linear(256, 256, generator: &g), ReLU(),
                                 Linear(256, 784, generator: &g), Sigmoid(), Reshape([1, 28, 28]))
            var d: [Module] = [Flatten(), Linear(784, 64, generator: &g), ReLU(), Linear(64, 64, generator: &g), ReLU()]
            d += head(64, o, &g, init: .pytorchDefault)
            return (Network(gen), Network(Sequential(d)))
        case "mlp-deep", "cgan":
            let ini = Initializer.truncatedNormal(std: 0.02)
            let gen = Sequential(Linear(z + classes, 256, init: ini, generator: &g), ReLU(),
                                 Linear(256, 512, init: ini, generator: &g), ReLU(),
                                 Linear(512, 1024, init: ini, generator: &g), ReLU(),
                                 Linear(1024, 784, init: ini, generator: &g), Tanh(), Reshape([1, 28, 28]))
            var d: [Module] = [Linear(784 + classes, 1024, init: ini, generator: &g), ReLU(), Dropout(0.7, random: random),
                               Linear(1024, 512, init: ini, generator: &g), ReLU(), Dropout(0.7, random: random),
                               Linear(512, 256, init: ini, generator: &g), ReLU(), Dropout(0.7, random: random)]
            d += head(256, o, &g, init: ini)
            if !spec.conditional { d.insert(Flatten(), at: 0) }
            return (Network(gen, classes: classes), Network(Sequential(d), classes: classes))
        case "dcgan":
            let ini = Initializer.glorotUniform
            let gen = Sequential(Linear(z, 7 * 7 * 128, init: ini, generator: &g), Reshape([128, 7, 7]),
                                 ConvTranspose2d(128, 128, kernel: 5, stride: 2, padding: .same, init: ini, generator: &g), LeakyReLU(0.2),
                                 ConvTranspose2d(128, 128, kernel: 5, stride: 2, padding: .same, init: ini, generator: &g), LeakyReLU(0.2),
                                 Conv2d(128, 1, kernel: 7, padding: .same, init: ini, generator: &g), Sigmoid())
            var d: [Module] = [maybeSN(Conv2d(1, 64, kernel: 5, stride: 2, padding: .same, init: ini, generator: &g), o, &g),
                               LeakyReLU(0.2), Dropout(0.4, random: random),
                               maybeSN(Conv2d(64, 64, kernel: 3, stride: 2, padding: .same, init: ini, generator: &g), o, &g),
                               LeakyReLU(0.2), Dropout(0.4, random: random)]
            if o.minibatchStdDev { d.append(MinibatchStdDev()) }
            d.append(Flatten())
            d += head(7 * 7 * (64 + (o.minibatchStdDev ? 1 : 0)), o, &g, init: ini)
            let generator = Network(gen)
            if Self.channelsLastDCGANGenerator { generator.setChannelsLastGenerator(true) }
            return (generator, Network(Sequential(d)))
        default:  // dcgan-bn, cdcgan
            let ini = Initializer.pytorchDefault
            let f = o.filters
            var gl: [Module] = [Linear(z + classes, 7 * 7 * f, bias: false, init: ini, generator: &g), BatchNorm(7 * 7 * f), LeakyReLU(0.01),
                                Reshape([f, 7, 7]),
                                ConvTranspose2d(f, f, kernel: 5, stride: 1, padding: .symmetric(2), bias: false, init: ini, generator: &g),
                                BatchNorm(f), LeakyReLU(0.01)]
            var c = f
            var size = blockStartSide
            for _ in 0..<o.blocks {
                let next = Swift.max(c / 2, 1)
                gl += [ConvTranspose2d(c, next, kernel: 5, stride: 2, padding: .symmetric(2), outputPadding: 1, bias: false, init: ini, generator: &g),
                       BatchNorm(next), LeakyReLU(0.01)]
                c = next
                size *= 2
            }
            gl += [ConvTranspose2d(c, 1, kernel: 5, stride: 1, padding: .symmetric(2), bias: false, init: ini, generator: &g), Tanh()]
            let norm = o.criticNorm ?? .batch
            // The critic starts at half the generator's filters (64 for the default 128) and doubles per block.
            let d0 = Swift.max(f / 2, 1)
            var dl: [Module] = [maybeSN(Conv2d(1 + classes, d0, kernel: 5, stride: 1, padding: .symmetric(2), init: ini, generator: &g), o, &g)]
            dl += normalization(norm, channels: d0, size: size) + [LeakyReLU(0.01)]
            var dc = d0
            for _ in 0..<o.blocks {
                dl += [maybeSN(Conv2d(dc, dc * 2, kernel: 5, stride: 2, padding: .symmetric(2), init: ini, generator: &g), o, &g)]
                dc *= 2
                size = (size + 1) / 2
                dl += normalization(norm, channels: dc, size: size) + [LeakyReLU(0.01), Dropout(0.3, random: random)]
            }
            if o.minibatchStdDev { dl.append(MinibatchStdDev()); dc += 1 }
            dl += [maybeSN(Conv2d(dc, 1, kernel: size, init: ini, generator: &g), o, &g), Reshape([1])]
            if o.probabilityOutput { dl.append(Sigmoid()) }
            // With batch norm (or none of the layout-bound extras) the critic runs channels-last.
            let channelsLast = Self.channelsLastCritic && norm == .batch && !o.minibatchStdDev
            if channelsLast { Self.setChannelsLast(dl) }
            let generator = Network(Sequential(gl), classes: classes)
            // Channels-last where every transposed convolution but the last fits the kernels: the
            // last block's channels divide all the others'.
            if Self.channelsLastGenerator && Runtime.implicitGemmWrites(channels: c) { generator.setChannelsLastGenerator(true) }
            return (generator, Network(Sequential(dl), classes: classes, imageInput: true, channelsLast: channelsLast))
        }
    }

    /// Whether the batch-norm critic keeps its activations channels-last ([N, H, W, C]), as
    /// Keras does: its convolutions then hand oneDNN its own layout and take its output as it
    /// is, where NCHW layers convert both at every call (~50 ms of a WGAN-GP step).
    /// `GAN_CHANNELS_LAST=0` keeps NCHW, for comparisons. Weights and state_dict are the same.
    nonisolated(unsafe) public static var channelsLastCritic = ProcessInfo.processInfo.environment["GAN_CHANNELS_LAST"] != "0"

    /// `GAN_CHANNELS_LAST_G`: `0` keeps the generators NCHW, `1` makes them channels-last (for
    /// comparisons); otherwise each model's default below.
    static let forcedGeneratorLayout: Bool? = {
        switch ProcessInfo.processInfo.environment["GAN_CHANNELS_LAST_G"] {
        case "0": return false
        case "1": return true
        default: return nil
        }
    }()

    /// Whether the generators of dcgan-bn and cdcgan keep their activations channels-last
    /// ([N, H, W, C]): where their convolutions then run on the engine's implicit-GEMM kernels
    /// (`Runtime.implicitGemmActive`, AVX2 CPUs without AVX-512), which run the transposed
    /// convolutions faster than oneDNN's NCHW primitives (only when the last block keeps at least
    /// 16 channels, a multiple of 16). Weights and state_dict are the same either way.
    nonisolated(unsafe) public static var channelsLastGenerator: Bool = forcedGeneratorLayout ?? Runtime.implicitGemmActive

    /// Whether the dcgan's (Keras's) generator keeps its activations channels-last: as the others
    /// on AVX2, and also where the Winograd path runs (`Runtime.winogradActive`: AVX-512), which
    /// takes its two 5×5 stride-2 transposed layers (Keras's "same" padding): in one A/B run 1.22×
    /// the training step and ~1.4× generation against the NCHW generator on oneDNN
    /// (docs/performance-log.md, session 37).
    nonisolated(unsafe) public static var channelsLastDCGANGenerator: Bool =
        forcedGeneratorLayout ?? (Runtime.implicitGemmActive || Runtime.winogradActive)

    /// Marks the convolutions (spectrally normalized or not), batch norms and the reshape to
    /// images of `layers` channels-last.
    static func setChannelsLast(_ layers: [Module], _ on: Bool = true) {
        for m in layers {
            if let c = (m as? Conv2d) ?? ((m as? SpectralNorm)?.layer as? Conv2d) { c.channelsLast = on }
            if let c = m as? ConvTranspose2d { c.channelsLast = on }
            if let bn = m as? BatchNorm { bn.channelsLast = on }
            if let r = m as? Reshape, r.shape.count == 3 { r.channelsLast = on }
        }
    }

    static func normalization(_ n: CriticNorm, channels: Int, size: Int) -> [Module] {
        switch n {
        case .batch: return [BatchNorm(channels)]
        case .layer: return [LayerNorm([channels, size, size])]
        case .none: return []
        }
    }

    static func maybeSN(_ layer: any WeightedLayer, _ o: BuildOptions, _ g: inout RandomGenerator) -> Module {
        o.spectralNorm ? SpectralNorm(layer, generator: &g) : layer
    }

    /// The discriminator's last layer(s) on flat features.
    static func head(_ features: Int, _ o: BuildOptions, _ g: inout RandomGenerator, init ini: Initializer) -> [Module] {
        var layers: [Module] = []
        var n = features
        if o.minibatchDiscrimination {
            layers.append(MinibatchDiscrimination(inFeatures: n, kernels: 50, kernelDim: 5, generator: &g))
            n += 50
        }
        layers.append(maybeSN(Linear(n, 1, init: ini, generator: &g), o, &g))
        if o.probabilityOutput { layers.append(Sigmoid()) }
        return layers
    }
}
