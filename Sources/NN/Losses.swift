import Engine

/// Loss functions, each reducing to the mean over the batch.
public enum Loss {
    /// Binary cross-entropy on logits: mean(softplus(x) − x·t), stable for any x.
    public static func bceWithLogits(_ logits: Tensor, _ target: Tensor) -> Tensor {
        (logits.softplus() - logits * target).mean()
    }

    /// Binary cross-entropy on probabilities exactly as PyTorch's BCELoss: logs clamped at −100,
    /// gradient (p − t) / max(p(1 − p), 1e-12), finite even for saturated probabilities.
    public static func bce(_ p: Tensor, _ target: Tensor) -> Tensor {
        p.binaryCrossEntropy(target: target).mean()
    }

    /// Binary cross-entropy on probabilities as Keras computes it: p clipped to [ε, 1 − ε], ε = 1e-7.
    public static func kerasBCE(_ p: Tensor, _ target: Tensor, epsilon: Float = 1e-7) -> Tensor {
        let q = p.clamp(min: epsilon, max: 1 - epsilon)
        return -(target * q.log() + (1 - target) * (1 - q).log()).mean()
    }

    public static func mse(_ x: Tensor, _ target: Tensor) -> Tensor { (x - target).square().mean() }

    /// Softmax cross-entropy of logits [N, C] against class indices.
    public static func crossEntropy(_ logits: Tensor, labels: [Int]) -> Tensor {
        -logits.logSoftmax(axis: 1).gatherColumns(labels).mean()
    }

    /// Hinge loss for a discriminator: mean(relu(1 − D(real))) + mean(relu(1 + D(fake))).
    public static func hingeDiscriminator(real: Tensor, fake: Tensor) -> Tensor {
        (1 - real).relu().mean() + (1 + fake).relu().mean()
    }

    /// The Wasserstein critic loss: mean(D(fake)) − mean(D(real)).
    public static func wassersteinCritic(real: Tensor, fake: Tensor) -> Tensor { fake.mean() - real.mean() }
}
