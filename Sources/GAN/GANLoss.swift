import Engine
import NN

/// The adversarial losses of `--loss`.
public enum GANLossKind: String, CaseIterable, Sendable {
    /// The original paper's saturating generator loss: minimize log(1 − D(G(z))).
    case minimax
    /// The generator maximizes log D(G(z)) (fakes labelled 1).
    case nonsaturating
    /// Least squares (Mao et al. 2017) with targets 1 (real) and 0 (fake), ½ factors.
    case lsgan
    /// WGAN with weight clipping (Arjovsky et al. 2017): ±0.01, RMSProp 5e-5, 5 critic steps.
    case wganClip = "wgan-clip"
    /// WGAN with gradient penalty (Gulrajani et al. 2017), λ = 10.
    case wganGP = "wgan-gp"
    /// Hinge loss (Lim & Ye 2017; SAGAN, BigGAN).
    case hinge

    /// Whether the discriminator outputs a probability (cross-entropy losses) or a raw score.
    public var usesProbabilities: Bool { self == .minimax || self == .nonsaturating }

    public var summary: String {
        switch self {
        case .minimax: return "BCE for D; G minimizes log(1 − D(G(z))) (saturating)"
        case .nonsaturating: return "BCE for D; G minimizes −log D(G(z))"
        case .lsgan: return "½(D(x)−1)² + ½D(G(z))²; G: ½(D(G(z))−1)²"
        case .wganClip: return "critic D(G(z)) − D(x), weights clipped to ±0.01, RMSProp 5e-5, 5 critic steps"
        case .wganGP: return "critic D(G(z)) − D(x) + λ(‖∇D(x̂)‖₂ − 1)², λ 10"
        case .hinge: return "relu(1 − D(x)) + relu(1 + D(G(z))); G: −D(G(z))"
        }
    }
}

/// Loss values for discriminator outputs. With `kerasBCE` the cross-entropy clips
/// probabilities to [1e-7, 1 − 1e-7] as Keras does; otherwise it clamps logs at −100 as PyTorch.
public struct GANLoss {
    public let kind: GANLossKind
    public let kerasBCE: Bool
    /// One-sided label smoothing: real targets become 1 − smoothing (Salimans et al. 2016).
    public let labelSmoothing: Float

    public init(_ kind: GANLossKind, kerasBCE: Bool = false, labelSmoothing: Float = 0) {
        self.kind = kind
        self.kerasBCE = kerasBCE
        self.labelSmoothing = labelSmoothing
    }

    func bce(_ p: Tensor, _ target: Float) -> Tensor {
        let t = Tensor.full(p.shape, target)
        return kerasBCE ? Loss.kerasBCE(p, t) : Loss.bce(p, t)
    }

    /// The discriminator's loss on its outputs for real and generated images.
    public func discriminator(real: Tensor, fake: Tensor) -> Tensor {
        switch kind {
        case .minimax, .nonsaturating: return bce(real, 1 - labelSmoothing) + bce(fake, 0)
        case .lsgan: return ((real - (1 - labelSmoothing)).square().mean() + fake.square().mean()) * 0.5
        case .wganClip, .wganGP: return Loss.wassersteinCritic(real: real, fake: fake)
        case .hinge: return Loss.hingeDiscriminator(real: real, fake: fake)
        }
    }

    /// The Keras tutorial's loss on one batch [real; fake] with labels 1 and 0: the mean BCE.
    public func discriminatorCombined(_ outputs: Tensor, realCount: Int) -> Tensor {
        precondition(kind.usesProbabilities, "a combined batch is only used with cross-entropy losses")
        var targets = [Float](repeating: 0, count: outputs.count)
        for i in 0..<realCount { targets[i] = 1 - labelSmoothing }
        let t = Tensor(shape: outputs.shape, targets)
        return kerasBCE ? Loss.kerasBCE(outputs, t) : Loss.bce(outputs, t)
    }

    /// The generator's loss on the discriminator's outputs for generated images.
    public func generator(fake: Tensor) -> Tensor {
        switch kind {
        case .minimax: return -bce(fake, 0)          // = mean log(1 − D(G(z)))
        case .nonsaturating: return bce(fake, 1)
        case .lsgan: return (fake - 1).square().mean() * 0.5
        case .wganClip, .wganGP, .hinge: return -fake.mean()
        }
    }
}

/// The WGAN-GP penalty: mean over the batch of (‖∇ₓD(x̂)‖₂ − 1)², x̂ = αx + (1 − α)x̃ with one
/// α ~ U(0, 1) per sample. The result is differentiable in D's parameters (second order).
public func gradientPenalty(real: Tensor, fake: Tensor, alpha: Tensor, critic: (Tensor) -> Tensor) -> Tensor {
    precondition(alpha.shape == [real.shape[0]] + Array(repeating: 1, count: real.rank - 1), "alpha must be [N, 1, …]")
    let interpolates = (alpha * real.detached() + (1 - alpha) * fake.detached()).detached().requiringGrad()
    let out = critic(interpolates)
    let grads = out.sum().gradients(wrt: [interpolates], createGraph: true)[0]
    // A tiny epsilon keeps the square root differentiable if a gradient is exactly zero.
    let norms = (grads.square().sum(axes: Array(1..<grads.rank)) + 1e-12).sqrt()
    return (norms - 1).square().mean()
}
