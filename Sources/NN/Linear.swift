import Engine

/// y = x Wᵀ + b with PyTorch's weight layout [out, in].
public final class Linear: Module, WeightedLayer {
    public let weight: Parameter
    public let bias: Parameter?

    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, init scheme: Initializer = .pytorchDefault,
                generator: inout RandomGenerator) {
        precondition(inFeatures > 0 && outFeatures > 0, "Linear sizes must be positive, got \(inFeatures)→\(outFeatures)")
        let shape = [outFeatures, inFeatures]
        weight = Parameter(scheme.weight(shape, generator: &generator))
        self.bias = bias ? Parameter(scheme.bias(outFeatures, weightShape: shape, generator: &generator)) : nil
    }

    override public var ownParameters: [(String, Parameter)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }
    override public var isPerSample: Bool { true }

    public func forward(_ x: Tensor, weight w: Tensor, bias b: Tensor?) -> Tensor {
        precondition(x.rank == 2 && x.shape[1] == w.shape[1], "Linear expects [N, \(w.shape[1])], got \(x.shape)")
        return Tensor.linear(x, weight: w, bias: b)
    }

    override public func callAsFunction(_ x: Tensor) -> Tensor { forward(x, weight: weight.value) }
}

/// A layer with one weight that spectral normalization can wrap, and whose bias `Sequential`
/// can add together with the activation that follows.
public protocol WeightedLayer: Module {
    var weight: Parameter { get }
    var bias: Parameter? { get }
    /// The layer's output with `weight` in place of its own and `bias` (nil: none) added.
    func forward(_ x: Tensor, weight: Tensor, bias: Tensor?) -> Tensor
}

extension WeightedLayer {
    public func forward(_ x: Tensor, weight w: Tensor) -> Tensor { forward(x, weight: w, bias: bias?.value) }
}
