import Engine

/// Minibatch standard deviation (Karras et al., ProGAN): appends one feature map holding the
/// average over features of the per-feature standard deviation across the batch, so the
/// discriminator can see a lack of variety.
public final class MinibatchStdDev: Module {
    public let eps: Float
    public init(eps: Float = 1e-8) { self.eps = eps }

    override public func callAsFunction(_ x: Tensor) -> Tensor {
        let std = (x.variance(axes: [0]) + eps).sqrt()   // biased, as ProGAN
        let s = std.mean()
        var shape = x.shape
        shape[1] = 1
        return Tensor.concat([x, s.reshaped(Array(repeating: 1, count: x.rank)).expanded(to: shape)], axis: 1)
    }
}

/// Minibatch discrimination (Salimans et al. 2016): features x [N, A] are projected by T into
/// B kernels of C dimensions; o_b(x_i) = Σ_{j≠i} exp(−‖M_i,b − M_j,b‖₁) is appended, giving
/// [N, A + B]. The parameter is named `T` with shape [A, B·C].
public final class MinibatchDiscrimination: Module {
    public let T: Parameter
    public let kernels: Int
    public let kernelDim: Int

    public init(inFeatures: Int, kernels: Int = 50, kernelDim: Int = 5, generator: inout RandomGenerator) {
        T = Parameter(Tensor.randn([inFeatures, kernels * kernelDim], generator: &generator) * 0.1)
        self.kernels = kernels
        self.kernelDim = kernelDim
    }

    override public var ownParameters: [(String, Parameter)] { [("T", T)] }

    override public func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.rank == 2 && x.shape[1] == T.shape[0], "MinibatchDiscrimination expects [N, \(T.shape[0])], got \(x.shape)")
        let n = x.shape[0]
        let m = x.matmul(T.value).reshaped([n, kernels, kernelDim])
        let l1 = (m.unsqueezed(axis: 1) - m.unsqueezed(axis: 0)).abs().sum(axis: 3)   // [N, N, B]
        let o = (-l1).exp().sum(axis: 1) - 1                                          // drop j = i
        return Tensor.concat([x, o], axis: 1)
    }
}
