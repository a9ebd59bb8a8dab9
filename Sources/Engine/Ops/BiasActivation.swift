// leakyRelu(x + bias) as one op: what a layer followed by its activation computes, in one pass
// over the output instead of two, with one saved tensor instead of two. The values are those of
// the two ops bit for bit (the same float operations in the same order).

extension Tensor {
    /// `(x + bias).leakyRelu(alpha)` with `bias` [C] along axis 1 (features of [N, F], channels
    /// of NCHW); `alpha` 0 is ReLU. Needs `alpha ≥ 0`, so that the output's sign is the input's
    /// and the backward can read the slope from the output.
    public static func biasLeakyRelu(_ x: Tensor, bias: Tensor?, alpha: Float) -> Tensor {
        precondition(alpha >= 0, "biasLeakyRelu needs a non-negative slope, got \(alpha)")
        precondition(x.rank >= 2, "biasLeakyRelu needs [N, C, …], got \(x.shape)")
        let c = x.shape[1]
        if let bias { precondition(bias.count == c, "biasLeakyRelu: bias of \(bias.count) for \(c) channels") }
        let inner = x.count / Swift.max(x.shape[0] * c, 1)
        let out = Tensor(uninitializedShape: x.shape)
        let xs = x.storage.base, ys = out.storage.base
        let k = LeakyReluK(alpha: alpha)
        if let bias {
            let bs = bias.storage.base
            if inner == 1 {
                // [N, F]: the bias runs along each row.
                Parallel.forChunks(x.shape[0], grain: Swift.max(1, (1 << 15) / Swift.max(c, 1))) { rows in
                    for r in rows { Kernels.row1(BiasLeakyK(alpha: alpha), xs + r * c, 1, bs, 1, ys + r * c, c) }
                }
            } else {
                // [N, C, H, W]: one bias value per plane.
                Parallel.forChunks(x.shape[0] * c, grain: Swift.max(1, (1 << 15) / inner)) { planes in
                    for p in planes { Kernels.row1(BiasLeakyK(alpha: alpha), xs + p * inner, 1, bs + p % c, 0, ys + p * inner, inner) }
                }
            }
        } else {
            Kernels.map(k, xs, ys, x.count)
        }
        let inputs = bias.map { [x, $0] } ?? [x]
        return out.recorded("biasLeakyRelu", inputs, savesOutput: true, Rules.biasLeakyRelu(alpha, rank: x.rank))
    }
}

/// leakyRelu(a + b).
struct BiasLeakyK: BinaryKernel {
    let alpha: Float
    @inline(__always) func scalar(_ a: Float, _ b: Float) -> Float { let v = a + b; return v > 0 ? v : alpha * v }
    @inline(__always) func vector(_ a: Vec, _ b: Vec) -> Vec { let v = a + b; return (v * alpha).replacing(with: v, where: v .> 0) }
}

/// The upstream gradient through leaky ReLU, read off the output: g where y > 0, α·g elsewhere.
struct LeakyGradK: BinaryKernel {
    let alpha: Float
    @inline(__always) func scalar(_ g: Float, _ y: Float) -> Float { y > 0 ? g : alpha * g }
    @inline(__always) func vector(_ g: Vec, _ y: Vec) -> Vec { (g * alpha).replacing(with: g, where: y .> 0) }
}

extension Rules {
    /// d/dx = g · slope(y), d/dbias = that summed over every axis but 1. Under a recorded graph
    /// (double backward) the slope is a detached constant times g, as for `leakyRelu`; without
    /// one, a single fused pass.
    static func biasLeakyRelu(_ alpha: Float, rank: Int) -> GradRule {
        { g, y, needs in
            let gx = GradMode.isEnabled ? g * y.detached().mapped(LeakySlopeK(alpha: alpha))
                                        : Tensor.zipped(g, y, LeakyGradK(alpha: alpha))
            guard needs.count > 1 else { return [gx] }
            return [gx, needs[1] ? gx.sum(axes: [0] + Array(2..<Swift.max(rank, 2))) : nil]
        }
    }
}
