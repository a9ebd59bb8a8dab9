import Engine
import Foundation

/// Batch normalization over [N, C] (1d) or [N, C, H, W] (2d), as PyTorch: batch statistics in
/// training (biased variance to normalize, unbiased for the running variance), running
/// statistics in eval, momentum 0.1, eps 1e-5.
public final class BatchNorm: Module {
    public let weight: Parameter?
    public let bias: Parameter?
    public let runningMean: Buffer
    public let runningVar: Buffer
    public let numBatchesTracked: Buffer
    public let momentum: Float
    public let eps: Float
    public let features: Int
    /// Images come channels-last ([N, H, W, C]): they normalize as the rows of [N·H·W, C].
    public var channelsLast = false

    public init(_ features: Int, momentum: Float = 0.1, eps: Float = 1e-5, affine: Bool = true) {
        precondition(features > 0, "BatchNorm needs a positive feature count")
        self.features = features
        self.momentum = momentum
        self.eps = eps
        weight = affine ? Parameter(Tensor.ones([features])) : nil
        bias = affine ? Parameter(Tensor.zeros([features])) : nil
        runningMean = Buffer(Tensor.zeros([features]))
        runningVar = Buffer(Tensor.ones([features]))
        numBatchesTracked = Buffer(Tensor.zeros([]), isInteger: true)
    }

    override public var ownParameters: [(String, Parameter)] {
        (weight.map { [("weight", $0)] } ?? []) + (bias.map { [("bias", $0)] } ?? [])
    }
    override public var ownBuffers: [(String, Buffer)] {
        [("running_mean", runningMean), ("running_var", runningVar), ("num_batches_tracked", numBatchesTracked)]
    }

    /// Whether training runs through `Tensor.batchNormLeakyRelu` (`GAN_FUSED_BN=0` builds it
    /// from the engine's elementwise ops and reductions instead, for comparisons).
    nonisolated(unsafe) public static var fusesStatistics = ProcessInfo.processInfo.environment["GAN_FUSED_BN"] != "0"

    /// A channels-last image batch as [N·H·W, C] rows; nil for anything else.
    public func rows(_ x: Tensor) -> Tensor? {
        guard channelsLast && x.rank == 4 else { return nil }
        precondition(x.shape[3] == features, "BatchNorm(\(features)) channels-last expects [N, H, W, \(features)], got \(x.shape)")
        return x.reshaped([-1, features])
    }

    override public func callAsFunction(_ x: Tensor) -> Tensor {
        if let r = rows(x) { return self(r).reshaped(x.shape) }
        if let y = fusedTrainingOutput(x, alpha: 1) { return y }
        let (input, scale, shift) = affineParts(x)
        let y = input * scale
        return shift.map { y + $0 } ?? y
    }

    /// In training (unless `fusesStatistics` is off): the output followed by leaky ReLU with
    /// `alpha` (1: none) as one op (`Tensor.batchNormLeakyRelu`), updating the running
    /// statistics; nil otherwise (then `affineParts` applies).
    public func fusedTrainingOutput(_ x: Tensor, alpha: Float) -> Tensor? {
        guard isTraining && Self.fusesStatistics else { return nil }
        if let r = rows(x) { return fusedTrainingOutput(r, alpha: alpha)?.reshaped(x.shape) }
        checkShape(x)
        let r = Tensor.batchNormLeakyRelu(x, weight: weight?.value, bias: bias?.value, eps: eps, alpha: alpha)
        updateRunningStatistics(mean: r.mean, variance: r.variance, count: x.count / features)
        return r.output
    }

    func checkShape(_ x: Tensor) {
        precondition((x.rank == 2 || x.rank == 4) && x.shape[1] == features,
                     "BatchNorm(\(features)) expects [N, \(features)] or [N, \(features), H, W], got \(x.shape)")
    }

    /// PyTorch's update: momentum-weighted, the variance made unbiased over the `count` values
    /// each channel's statistics came from.
    func updateRunningStatistics(mean: Tensor, variance: Tensor, count: Int) {
        withoutGrad {
            let n = Float(count)
            let unbiased = variance.detached().reshaped([features]) * (n / Swift.max(n - 1, 1))
            runningMean.value = runningMean.value * (1 - momentum) + mean.detached().reshaped([features]) * momentum
            runningVar.value = runningVar.value * (1 - momentum) + unbiased * momentum
            numBatchesTracked.value = numBatchesTracked.value + 1
        }
    }

    /// The output as `input · scale + shift` with per-channel [1, C(, 1, 1)] factors, before
    /// that last step, so that `Sequential` can fuse it with the activation after it. In
    /// training this computes the batch statistics and updates the running ones.
    public func affineParts(_ x: Tensor) -> (input: Tensor, scale: Tensor, shift: Tensor?) {
        precondition(!(channelsLast && x.rank == 4), "BatchNorm.affineParts takes channels-last images as rows([N·H·W, C])")
        checkShape(x)
        let axes = x.rank == 4 ? [0, 2, 3] : [0]
        let shape = x.rank == 4 ? [1, features, 1, 1] : [1, features]
        // The per-channel factors are folded into one [1, C, 1, 1] scale (and shift) before they
        // meet the big tensor: one pass over it after the statistics (fused with the activation
        // when one follows) instead of four.
        let weight = self.weight?.value.reshaped(shape), bias = self.bias?.value.reshaped(shape)
        if isTraining {
            let mean = x.mean(axes: axes, keepDims: true)
            let centered = x - mean
            let variance = centered.square().mean(axes: axes, keepDims: true)
            let invStd = (variance + eps).pow(-0.5)
            updateRunningStatistics(mean: mean, variance: variance, count: x.count / features)
            return (centered, weight.map { invStd * $0 } ?? invStd, bias)
        }
        let invStd = (runningVar.value.reshaped(shape) + eps).pow(-0.5)
        let scale = weight.map { invStd * $0 } ?? invStd
        let shift = (bias ?? Tensor.zeros(shape)) - runningMean.value.reshaped(shape) * scale
        return (x, scale, shift)
    }
}

/// Layer normalization over the trailing `normalizedShape` dimensions (PyTorch's nn.LayerNorm).
public final class LayerNorm: Module {
    public let weight: Parameter
    public let bias: Parameter
    public let normalizedShape: [Int]
    public let eps: Float

    public init(_ normalizedShape: [Int], eps: Float = 1e-5) {
        self.normalizedShape = normalizedShape
        self.eps = eps
        weight = Parameter(Tensor.ones(normalizedShape))
        bias = Parameter(Tensor.zeros(normalizedShape))
    }

    override public var ownParameters: [(String, Parameter)] { [("weight", weight), ("bias", bias)] }
    /// Statistics over each sample's own features.
    override public var isPerSample: Bool { true }

    override public func callAsFunction(_ x: Tensor) -> Tensor {
        let k = normalizedShape.count
        precondition(Array(x.shape.suffix(k)) == normalizedShape, "LayerNorm(\(normalizedShape)) got \(x.shape)")
        let axes = Array((x.rank - k)..<x.rank)
        let (mean, variance) = x.moments(axes: axes)
        return (x - mean) / (variance + eps).sqrt() * weight.value + bias.value
    }
}
