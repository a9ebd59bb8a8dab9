import Engine

public final class ReLU: Module {
    override public var isPerSample: Bool { true }
    override public func callAsFunction(_ x: Tensor) -> Tensor { x.relu() }
}

public final class LeakyReLU: Module {
    override public var isPerSample: Bool { true }
    public let slope: Float
    public init(_ slope: Float = 0.01) { self.slope = slope }
    override public func callAsFunction(_ x: Tensor) -> Tensor { x.leakyRelu(slope) }
}

public final class Tanh: Module {
    override public var isPerSample: Bool { true }
    override public func callAsFunction(_ x: Tensor) -> Tensor { x.tanh() }
}

public final class Sigmoid: Module {
    override public var isPerSample: Bool { true }
    override public func callAsFunction(_ x: Tensor) -> Tensor { x.sigmoid() }
}

/// Zeroes elements with probability `p` in training and scales the rest by 1/(1−p).
/// Keras' `Dropout(rate)` is `p = rate`; TensorFlow 1's `keep_prob` is `p = 1 − keep_prob`.
public final class Dropout: Module {
    public let p: Float
    public let random: RandomSource
    public init(_ p: Float, random: RandomSource) {
        precondition(p >= 0 && p < 1, "dropout probability must be in [0, 1), got \(p)")
        self.p = p
        self.random = random
    }
    override public var isPerSample: Bool { true }
    override public func callAsFunction(_ x: Tensor) -> Tensor {
        isTraining ? x.dropout(p, generator: &random.generator) : x
    }
}

/// [N, ...] → [N, prod(...)] (nn.Flatten).
public final class Flatten: Module {
    override public var isPerSample: Bool { true }
    override public func callAsFunction(_ x: Tensor) -> Tensor { x.flattened() }
}

/// [N, ...] → [N] + shape (Keras Reshape; nn.Unflatten).
public final class Reshape: Module {
    override public var isPerSample: Bool { true }
    public let shape: [Int]
    /// To [C, H, W], then on to channels-last [H, W, C] (for channels-last layers after it).
    public var channelsLast = false
    public init(_ shape: [Int]) { self.shape = shape }
    override public func callAsFunction(_ x: Tensor) -> Tensor {
        let y = x.reshaped([x.shape[0]] + shape)
        return channelsLast && y.rank == 4 ? y.toChannelsLast() : y
    }
}

/// A lookup table of `count` vectors of size `dim` (nn.Embedding, N(0, 1) init).
public final class Embedding: Module {
    public let weight: Parameter
    public init(_ count: Int, _ dim: Int, generator: inout RandomGenerator) {
        precondition(count > 0 && dim > 0, "Embedding sizes must be positive")
        weight = Parameter(Tensor.randn([count, dim], generator: &generator))
    }
    override public var ownParameters: [(String, Parameter)] { [("weight", weight)] }
    public func callAsFunction(indices: [Int]) -> Tensor { weight.value.indexSelect(indices) }
}
