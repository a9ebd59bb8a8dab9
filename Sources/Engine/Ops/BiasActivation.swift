// leakyRelu(x · scale + shift) with per-channel scale and shift, and sigmoid or tanh of x + bias,
// each as one op: what a layer's bias or a batch norm's affine step followed by the activation
// computes, in one pass over the output instead of two or three, with one saved tensor instead of
// two or three. The values are those of the separate ops bit for bit (the same float operations
// in the same order, no FMA).
import CSupport

extension Tensor {
    /// `(x + bias).leakyRelu(alpha)` with `bias` [C] along axis 1 (features of [N, F], channels
    /// of NCHW); `alpha` 0 is ReLU.
    /// With `reusingInput`, when no graph is recorded the output is written over x (which the
    /// caller has just made and nothing else reads): inference keeps one full-size tensor fewer.
    public static func biasLeakyRelu(_ x: Tensor, bias: Tensor?, alpha: Float, reusingInput: Bool = false) -> Tensor {
        affineLeakyRelu(x, scale: nil, shift: bias, alpha: alpha, reusingInput: reusingInput)
    }

    /// `(x · scale + shift).leakyRelu(alpha)`, `scale` and `shift` holding one value per entry of
    /// axis 1 (any shape of that count, e.g. [C] or [1, C, 1, 1]); nil means 1 and 0. Needs
    /// `alpha ≥ 0`, so that the output's sign is the input's and the backward reads the slope
    /// from the output.
    public static func affineLeakyRelu(_ x: Tensor, scale: Tensor?, shift: Tensor?, alpha: Float,
                                       reusingInput: Bool = false) -> Tensor {
        precondition(alpha >= 0, "affineLeakyRelu needs a non-negative slope, got \(alpha)")
        precondition(x.rank >= 2, "affineLeakyRelu needs [N, C, …], got \(x.shape)")
        let c = x.shape[1]
        for t in [scale, shift].compactMap({ $0 }) {
            precondition(t.count == c, "affineLeakyRelu: \(t.count) per-channel values for \(c) channels")
        }
        let inner = x.count / Swift.max(x.shape[0] * c, 1)
        let out = reusingInput && !GradMode.isEnabled ? Tensor(shape: x.shape, storage: x.storage) : Tensor(uninitializedShape: x.shape)
        let xs = x.storage.base, ys = out.storage.base
        let ss = scale?.storage.base, bs = shift?.storage.base
        let k = LeakyReluK(alpha: alpha)
        if ss == nil && bs == nil {
            Kernels.map(k, xs, ys, x.count)
        } else if inner == 1 {
            // [N, F]: scale and shift run along each row.
            Parallel.forChunks(x.shape[0], grain: Swift.max(1, (1 << 15) / Swift.max(c, 1))) { rows in
                for r in rows { Kernels.affineLeakyRow(xs + r * c, ss, 1, bs, 1, ys + r * c, c, k) }
            }
        } else {
            // [N, C, H, W]: one scale and shift per plane.
            Parallel.forChunks(x.shape[0] * c, grain: Swift.max(1, (1 << 15) / inner)) { planes in
                for p in planes { Kernels.affineLeakyRow(xs + p * inner, ss.map { $0 + p % c }, 0, bs.map { $0 + p % c }, 0, ys + p * inner, inner, k) }
            }
        }
        let flat = [scale, shift].map { $0?.reshaped([c]) }
        let inputs = [x] + flat.compactMap { $0 }
        return out.recorded("affineLeakyRelu", inputs, savesOutput: true,
                            Rules.affineLeakyRelu(x.shape, scaled: flat[0].map { (x, $0) }, hasShift: shift != nil, alpha: alpha))
    }
}

/// The saturating activations that end a generator or a probability head, which
/// `Tensor.biasActivated` fuses with the bias before them.
public enum SaturatingActivation: Sendable {
    case sigmoid, tanh

    /// The fused op's name in the graph (and in `gan bench train --profile`).
    var opName: String { self == .sigmoid ? "biasSigmoid" : "biasTanh" }

    /// The activation's vector loop (CSupport) on n values; x and y must not overlap.
    func apply(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        switch self {
        case .sigmoid: gan_sigmoid(x, y, n)
        case .tanh: gan_tanh(x, y, n)
        }
    }
}

extension Tensor {
    /// `(x + bias).sigmoid()` or `.tanh()`, `bias` [C] along axis 1, as one op: the mlp's 784
    /// output sigmoids, mlp-deep's tanh, a discriminator's probability. One pass and one tensor
    /// instead of two (the bias addition was 2.4 % of an mlp step in `gan bench train --profile`),
    /// with the same float operations as the two ops, so the same values bit for bit.
    public static func biasActivated(_ x: Tensor, bias: Tensor, _ activation: SaturatingActivation) -> Tensor {
        precondition(x.rank >= 2, "biasActivated needs [N, C, …], got \(x.shape)")
        let geo = ChannelGeometry(x.shape)
        precondition(bias.count == geo.c, "biasActivated: \(bias.count) biases for \(geo.c) channels")
        let out = Tensor(uninitializedShape: x.shape)
        let xs = x.storage.base, ys = out.storage.base, bs = bias.storage.base
        // Rows of [N, F] take the bias vector; planes of [N, C, H, W] one bias each.
        let (units, length) = geo.inner == 1 ? (geo.n, geo.c) : (geo.n * geo.c, geo.inner)
        Parallel.forChunks(units, grain: Swift.max(1, (1 << 13) / Swift.max(length, 1))) { r in
            Kernels.withSaturatingBuffer { t in
                for u in r {
                    let (b, bStep) = geo.inner == 1 ? (bs, 1) : (bs + u % geo.c, 0)
                    Kernels.saturatingRow(xs + u * length, b, bStep, ys + u * length, length, activation, buffer: t)
                }
            }
        }
        return out.recorded(activation.opName, [x, bias.reshaped([geo.c])], savesOutput: true,
                            Rules.biasActivated(geo.axes, activation))
    }
}

extension Kernels {
    /// Floats of the buffer `saturatingRow` takes.
    static let saturatingBlock = 1024

    /// Runs `body` with a stack buffer for `saturatingRow`.
    @inline(__always)
    static func withSaturatingBuffer<R>(_ body: (UnsafeMutablePointer<Float>) -> R) -> R {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: saturatingBlock) { body($0.baseAddress!) }
    }

    /// out[i] = f(x[i] + b[i · bStep]) along a row (`bStep` 1: a vector, 0: one value; nil b:
    /// f(x[i])), block by block through `buffer` (`saturatingBlock` floats), not through the
    /// output: the activation loops vectorize only when their input and output do not overlap.
    /// So x and out may be the same row.
    @inline(__always)
    static func saturatingRow(_ x: UnsafePointer<Float>, _ b: UnsafePointer<Float>?, _ bStep: Int,
                              _ out: UnsafeMutablePointer<Float>, _ n: Int, _ f: SaturatingActivation,
                              buffer t: UnsafeMutablePointer<Float>) {
        for lo in stride(from: 0, to: n, by: saturatingBlock) {
            let count = Swift.min(saturatingBlock, n - lo)
            if let b, bStep == 0 {
                let v = b[0]
                for i in 0..<count { t[i] = x[lo + i] + v }
            } else if let b {
                for i in 0..<count { t[i] = x[lo + i] + b[lo + i] }
            } else {
                t.update(from: x + lo, count: count)
            }
            f.apply(t, out + lo, count)
        }
    }

    /// out[i] = k(x[i] · s + b) along a row; `s`/`b` step by `sStep`/`bStep` (1: a vector,
    /// 0: one value) and nil means no scale / no shift. The branches are loop-invariant.
    @inline(__always)
    static func affineLeakyRow(_ x: UnsafePointer<Float>, _ s: UnsafeMutablePointer<Float>?, _ sStep: Int,
                               _ b: UnsafeMutablePointer<Float>?, _ bStep: Int,
                               _ out: UnsafeMutablePointer<Float>, _ n: Int, _ k: LeakyReluK) {
        let w = Vec.scalarCount
        let s1 = s.map { Vec(repeating: $0[0]) }, b1 = b.map { Vec(repeating: $0[0]) }
        var i = 0
        while i + w <= n {
            var v = UnsafeRawPointer(x + i).loadUnaligned(as: Vec.self)
            if let s { v = v * (sStep == 0 ? s1! : UnsafeRawPointer(s + i).loadUnaligned(as: Vec.self)) }
            if let b { v = v + (bStep == 0 ? b1! : UnsafeRawPointer(b + i).loadUnaligned(as: Vec.self)) }
            UnsafeMutableRawPointer(out + i).storeBytes(of: k.vector(v), as: Vec.self)
            i += w
        }
        while i < n {
            var v = x[i]
            if let s { v = v * s[i * sStep] }
            if let b { v = v + b[i * bStep] }
            out[i] = k.scalar(v)
            i += 1
        }
    }
}

/// The upstream gradient through leaky ReLU, read off the output: g where y > 0, α·g elsewhere.
struct LeakyGradK: BinaryKernel {
    let alpha: Float
    @inline(__always) func scalar(_ g: Float, _ y: Float) -> Float { y > 0 ? g : alpha * g }
    @inline(__always) func vector(_ g: Vec, _ y: Vec) -> Vec { (g * alpha).replacing(with: g, where: y .> 0) }
}

extension Rules {
    /// g where `sign` > 0, alpha · g elsewhere: the upstream gradient through leaky ReLU, its
    /// slope read off the activation's input (or, for alpha ≥ 0, its output) as a constant. One
    /// pass, and an op of its own under a recorded graph: it is linear in g, so its rule is
    /// itself and a double backward costs one pass more, not a slope tensor and a product.
    static func leakyGradient(_ g: Tensor, _ sign: Tensor, alpha: Float) -> Tensor {
        let reference = sign.detached()
        return Tensor.zipped(g, reference, LeakyGradK(alpha: alpha))
            .recorded("leakyGradient", [g], { u, _, _ in [leakyGradient(u, reference, alpha: alpha)] })
    }

    /// d/dx = g · f'(y) (f's rule, from the output), d/dbias = that summed over `axes` (every
    /// axis but 1).
    static func biasActivated(_ axes: [Int], _ activation: SaturatingActivation) -> GradRule {
        let rule = activation == .sigmoid ? sigmoid() : tanh()
        return { g, y, needs in
            let gz = rule(g, y, [true])[0]!
            return [needs[0] ? gz : nil, needs[1] ? gz.sum(axes: axes) : nil]
        }
    }

    /// With gp = g · slope(y): d/dx = gp · scale, d/dscale = Σ gp · x, d/dshift = Σ gp, the sums
    /// over every axis but 1 (gp by `leakyGradient`). The input is kept only when there is a
    /// scale to differentiate (the bias-only form keeps nothing but y).
    static func affineLeakyRelu(_ shape: [Int], scaled: (input: Tensor, scale: Tensor)?, hasShift: Bool, alpha: Float) -> GradRule {
        { g, y, needs in
            let y = y!  // recorded with savesOutput
            let gp = leakyGradient(g, y, alpha: alpha)
            let geo = ChannelGeometry(shape)
            var grads: [Tensor?] = [needs[0] ? (scaled.map { gp * $0.scale.reshaped(geo.channelShape) } ?? gp) : nil]
            if let scaled { grads.append(needs[1] ? (gp * scaled.input).sum(axes: geo.axes) : nil) }
            if hasShift { grads.append(needs[grads.count] ? gp.sum(axes: geo.axes) : nil) }
            return grads
        }
    }
}
