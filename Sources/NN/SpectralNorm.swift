import Engine

/// Spectral normalization (Miyato et al. 2018) of a layer's weight, as
/// `torch.nn.utils.spectral_norm`: the weight is stored as `weight_orig`, the power-iteration
/// vectors as the buffers `weight_u` and `weight_v`, and the layer computes with W / σ(W).
/// In training each call runs `powerIterations` steps and updates u and v; in eval they stay.
/// ConvTranspose2d's weight is [in, out, …], so its matrix puts dimension 1 first, as PyTorch does.
public final class SpectralNorm: Module {
    public let layer: any WeightedLayer
    public let u: Buffer
    public let v: Buffer
    public let powerIterations: Int
    public let eps: Float
    let dim: Int

    public init(_ layer: any WeightedLayer, powerIterations: Int = 1, eps: Float = 1e-12, generator: inout RandomGenerator) {
        self.layer = layer
        self.powerIterations = powerIterations
        self.eps = eps
        dim = layer is ConvTranspose2d ? 1 : 0
        let (rows, cols) = SpectralNorm.matrixShape(layer.weight.shape, dim: dim)
        u = Buffer(SpectralNorm.normalized(Tensor.randn([rows], generator: &generator), eps))
        v = Buffer(SpectralNorm.normalized(Tensor.randn([cols], generator: &generator), eps))
    }

    static func matrixShape(_ shape: [Int], dim: Int) -> (Int, Int) {
        let rows = shape[dim]
        return (rows, shape.reduce(1, *) / rows)
    }

    static func normalized(_ t: Tensor, _ eps: Float) -> Tensor {
        t / Swift.max(t.square().sum().sqrt().item, eps)
    }

    /// The weight as a [rows, cols] matrix.
    func matrix(_ w: Tensor) -> Tensor {
        let m = dim == 0 ? w : w.transposed(0, 1)
        return m.reshaped([m.shape[0], -1])
    }

    override public var ownParameters: [(String, Parameter)] {
        [("weight_orig", layer.weight)] + (layer.bias.map { [("bias", $0)] } ?? [])
    }
    override public var ownBuffers: [(String, Buffer)] { [("weight_u", u), ("weight_v", v)] }

    /// σ(W) estimated with the current vectors (after updating them in training).
    public func sigma() -> Tensor {
        let w = layer.weight.value
        if isTraining {
            withoutGrad {
                let m = matrix(w.detached())
                var uu = u.value, vv = v.value
                for _ in 0..<powerIterations {
                    vv = SpectralNorm.normalized(Tensor.matmul(m, uu.reshaped([-1, 1]), transposeA: true).reshaped([-1]), eps)
                    uu = SpectralNorm.normalized(Tensor.matmul(m, vv.reshaped([-1, 1])).reshaped([-1]), eps)
                }
                u.value = uu
                v.value = vv
            }
        }
        // σ = uᵀ W v, differentiable in W with u and v held constant (as PyTorch does).
        return Tensor.matmul(u.value.reshaped([1, -1]), Tensor.matmul(matrix(w), v.value.reshaped([-1, 1]))).reshaped([])
    }

    override public func callAsFunction(_ x: Tensor) -> Tensor {
        layer.forward(x, weight: layer.weight.value / sigma())
    }
}
