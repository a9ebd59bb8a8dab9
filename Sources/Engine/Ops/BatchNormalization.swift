// Batch normalization with batch statistics, its affine step and a leaky ReLU, as one op.
// Built from the engine's ops it reads and writes the big tensor eight times forward (mean,
// centering, squares, their mean, the affine step) and some twenty times backward, for
// intermediate tensors that live one layer; here the statistics take two reading passes, the
// output one pass, and the backward two passes. Under a recorded graph (WGAN-GP through a
// batch-normed critic) the input gradient is an op of its own, `batchNormInputGradient`, whose
// rule spells out batch norm's second derivatives, again in two fused passes.

extension Tensor {
    /// leakyRelu((x − mean) / √(var + eps) · weight + bias, alpha) with mean and (biased) variance
    /// over every axis but 1, as PyTorch's `batch_norm` in training mode followed by the
    /// activation (`alpha` 1: none, 0: ReLU). Returns the output and the statistics (no graph).
    public static func batchNormLeakyRelu(_ x: Tensor, weight: Tensor?, bias: Tensor?, eps: Float, alpha: Float)
        -> (output: Tensor, mean: Tensor, variance: Tensor) {
        precondition(alpha >= 0, "batchNormLeakyRelu needs a non-negative slope, got \(alpha)")
        precondition(x.rank >= 2, "batchNormLeakyRelu needs [N, C, …], got \(x.shape)")
        let geo = ChannelGeometry(x.shape)
        let (n, c, inner) = (geo.n, geo.c, geo.inner)
        for t in [weight, bias].compactMap({ $0 }) {
            precondition(t.count == c, "batchNormLeakyRelu: \(t.count) per-channel values for \(c) channels")
        }
        let mean = Tensor(uninitializedShape: [c]), variance = Tensor(uninitializedShape: [c])
        Kernels.channelMoments(x.storage.base, n: n, c: c, inner: inner, mean: mean.storage.base, variance: variance.storage.base)
        // y = act(x · scale + shift) with scale = weight / √(var + eps), shift = bias − mean · scale.
        let invStd = [Float](unsafeUninitializedCapacity: c) { b, count in
            for i in 0..<c { b[i] = 1 / (variance.storage.base[i] + eps).squareRoot() }
            count = c
        }
        let scales = (0..<c).map { invStd[$0] * (weight?.storage.base[$0] ?? 1) }
        let shifts = (0..<c).map { (bias?.storage.base[$0] ?? 0) - mean.storage.base[$0] * scales[$0] }
        let out = withoutGrad { affineLeakyRelu(x, scale: Tensor(shape: [c], scales), shift: Tensor(shape: [c], shifts), alpha: alpha) }
        let flat = [weight, bias].map { $0?.reshaped([c]) }
        let y = out.recorded("batchNormLeakyRelu", [x] + flat.compactMap { $0 }, savesOutput: true,
                             Rules.batchNormLeakyRelu(x, weight: flat[0], hasBias: bias != nil, eps: eps, alpha: alpha,
                                                      mean: mean, invStd: invStd, affine: (scales, shifts)))
        return (y, mean, variance)
    }
}

extension Rules {
    /// With gp = g · slope(y) and x̂ = (x − mean) · invStd: d/dbias = Σ gp, d/dweight = Σ gp · x̂,
    /// d/dx = weight · invStd · (gp − mean(gp) − x̂ · mean(gp · x̂)), sums and means over every axis
    /// but 1. Without a graph to record: two fused passes from the saved statistics, which read
    /// the slope's side off x · scale + shift (`affine`, the forward's own factors, so the same
    /// sign as the output's) rather than reading the output too. With one: the leaky gradient and
    /// `batchNormInputGradient` as ops, and d/dweight in the engine's ops with x̂ recomputed from
    /// x, so that all of them can be differentiated again.
    static func batchNormLeakyRelu(_ x: Tensor, weight: Tensor?, hasBias: Bool, eps: Float, alpha: Float,
                                   mean: Tensor, invStd: [Float], affine: (scale: [Float], shift: [Float])) -> GradRule {
        { g, y, needs in
            let y = y!  // recorded with savesOutput
            let geo = ChannelGeometry(x.shape)
            if GradMode.isEnabled {
                let gp = leakyGradient(g, y, alpha: alpha)
                var grads: [Tensor?] = [needs[0] ? Tensor.batchNormInputGradient(gp, x, weight: weight, mean: mean, invStd: invStd, eps: eps) : nil]
                if weight != nil {
                    grads.append(needs[1] ? (gp * normalizedComposite(x, eps: eps).xhat).sum(axes: geo.axes) : nil)
                }
                if hasBias { grads.append(needs[grads.count] ? gp.sum(axes: geo.axes) : nil) }
                return grads
            }
            // Σ gp and Σ gp · (x − mean) per channel, then every gradient from them.
            var sumG = [Float](repeating: 0, count: geo.c), sumGX = sumG
            Kernels.leakyChannelSums(g.storage.base, x.storage.base, affine, mean.storage.base, alpha: alpha,
                                     n: geo.n, c: geo.c, inner: geo.inner, sumG: &sumG, sumGX: &sumGX)
            var grads: [Tensor?] = [nil]
            if needs[0] {
                grads[0] = Kernels.batchNormInputGradient(g, affine, alpha: alpha, x, weight: weight, mean: mean, invStd: invStd,
                                                          sumG: sumG, sumGX: sumGX)
            }
            if weight != nil {
                grads.append(needs[1] ? Tensor(shape: [geo.c], zip(sumGX, invStd).map(*)) : nil)
            }
            if hasBias { grads.append(needs[grads.count] ? Tensor(shape: [geo.c], sumG) : nil) }
            return grads
        }
    }
}

extension Tensor {
    /// Batch norm's input gradient for the gradient `gp` arriving at its output (after the
    /// activation): weight · invStd · (gp − mean(gp) − x̂ · mean(gp · x̂)) per channel, with
    /// x̂ = (x − mean) · invStd and `mean`, `invStd` the batch statistics of x. An op of its own,
    /// so that a penalty on input gradients (WGAN-GP) differentiates it in two fused passes
    /// instead of through the dozen ops that spell it out.
    static func batchNormInputGradient(_ gp: Tensor, _ x: Tensor, weight: Tensor?, mean: Tensor, invStd: [Float], eps: Float) -> Tensor {
        let geo = ChannelGeometry(x.shape)
        var sumG = [Float](repeating: 0, count: geo.c), sumGX = sumG
        // Slope 1: gp passes whatever the sign.
        let identity = ([Float](repeating: 1, count: geo.c), [Float](repeating: 0, count: geo.c))
        Kernels.leakyChannelSums(gp.storage.base, x.storage.base, identity, mean.storage.base, alpha: 1,
                                 n: geo.n, c: geo.c, inner: geo.inner, sumG: &sumG, sumGX: &sumGX)
        let dx = Kernels.batchNormInputGradient(gp, identity, alpha: 1, x, weight: weight, mean: mean, invStd: invStd, sumG: sumG, sumGX: sumGX)
        return dx.recorded("batchNormInputGradient", [gp, x] + [weight].compactMap { $0 },
                           Rules.batchNormInputGradient(gp, x, weight: weight, mean: mean, invStd: invStd, eps: eps, sumG: sumG, sumGX: sumGX))
    }
}

extension Rules {
    /// x − mean, invStd and x̂ = (x − mean) · invStd per channel in the engine's ops, so that they
    /// can be differentiated as functions of x.
    static func normalizedComposite(_ x: Tensor, eps: Float) -> (centered: Tensor, invStd: Tensor, xhat: Tensor) {
        let axes = ChannelGeometry(x.shape).axes
        let centered = x - x.mean(axes: axes, keepDims: true)
        let invStd = (centered.square().mean(axes: axes, keepDims: true) + eps).pow(-0.5)
        return (centered, invStd, centered * invStd)
    }

    /// The gradients of dx = γ·s·(gp − A − x̂·B) (s = invStd, A = mean(gp), B = mean(gp · x̂), the
    /// statistics functions of x) for the upstream u, with ū, mean(u · x̂), mean(u · gp) per channel:
    ///   d/dgp = γ·s·(u − ū − x̂·mean(u·x̂))
    ///   d/dx  = −s²·(x̂·P + γB·(u − ū − x̂·mean(u·x̂)) + mean(u·x̂)·γ·(gp − A − x̂·B)),
    ///           P = γ·mean(u·gp) − γA·ū − γB·mean(u·x̂)
    ///   d/dγ  = s·Σ u·(gp − A − x̂·B)
    /// Without a graph to record: one pass for the three sums and one for both gradients. With
    /// one (a third derivative): the same formulas in the engine's ops.
    static func batchNormInputGradient(_ gp: Tensor, _ x: Tensor, weight: Tensor?, mean: Tensor, invStd: [Float], eps: Float,
                                       sumG: [Float], sumGX: [Float]) -> GradRule {
        { u, _, needs in
            let geo = ChannelGeometry(x.shape)
            let (n, c, inner, axes) = (geo.n, geo.c, geo.inner, geo.axes)
            if GradMode.isEnabled {
                let (_, s, xhat) = normalizedComposite(x, eps: eps)
                let gamma = weight?.reshaped(geo.channelShape)
                let h = gamma.map { gp * $0 } ?? gp
                let (hMean, hx) = (h.mean(axes: axes, keepDims: true), (h * xhat).mean(axes: axes, keepDims: true))
                let (uMean, ux) = (u.mean(axes: axes, keepDims: true), (u * xhat).mean(axes: axes, keepDims: true))
                let projected = u - uMean - xhat * ux
                var grads: [Tensor?] = [needs[0] ? (gamma.map { projected * $0 } ?? projected) * s : nil]
                if needs[1] {
                    let p = (u * h).mean(axes: axes, keepDims: true) - hMean * uMean - hx * ux
                    grads.append(-s.square() * (xhat * p + hx * projected + ux * (h - hMean - xhat * hx)))
                } else {
                    grads.append(nil)
                }
                if weight != nil {
                    let gx = (gp * xhat).mean(axes: axes, keepDims: true)
                    grads.append(needs[2] ? ((u * (gp - gp.mean(axes: axes, keepDims: true) - xhat * gx)).sum(axes: axes, keepDims: true) * s).reshaped([c]) : nil)
                }
                return grads
            }
            var su = [Float](repeating: 0, count: c), suc = su, sug = su
            Kernels.channelSums3(u.storage.base, x.storage.base, gp.storage.base, mean.storage.base, n: n, c: c, inner: inner,
                                 sumU: &su, sumUC: &suc, sumUG: &sug)
            let m = Float(n * inner)
            var dgpCoef = [[Float]](repeating: [Float](repeating: 0, count: c), count: 3)   // u, x, 1
            var dxCoef = [[Float]](repeating: [Float](repeating: 0, count: c), count: 4)    // u, gp, x, 1
            var dGamma = [Float](repeating: 0, count: c)
            for i in 0..<c {
                let s = invStd[i], gamma = weight?.storage.base[i] ?? 1, mu = mean.storage.base[i]
                let a = sumG[i] / m, b = s * sumGX[i] / m                    // mean(gp), mean(gp · x̂)
                let ub = su[i] / m, ux = s * suc[i] / m, ug = sug[i] / m     // ū, mean(u · x̂), mean(u · gp)
                let (ha, hb) = (gamma * a, gamma * b)
                let p = gamma * ug - ha * ub - hb * ux
                // d/dgp = γs·u − γs²·mean(u·x̂)·c − γs·ū, c = x − mean
                let cx = -gamma * s * s * ux
                dgpCoef[0][i] = gamma * s; dgpCoef[1][i] = cx; dgpCoef[2][i] = -gamma * s * ub - cx * mu
                // d/dx = −s²·(hb·u + γ·ux·gp + s·(p − 2·hb·ux)·c − hb·ū − ux·ha)
                let s2 = s * s
                let cc = -s2 * s * (p - 2 * hb * ux)
                dxCoef[0][i] = -s2 * hb; dxCoef[1][i] = -s2 * gamma * ux; dxCoef[2][i] = cc
                dxCoef[3][i] = s2 * (hb * ub + ux * ha) - cc * mu
                dGamma[i] = s * (sug[i] - a * su[i] - b * s * suc[i])
            }
            let dgp = needs[0] ? Tensor(uninitializedShape: x.shape) : nil
            let dx = needs[1] ? Tensor(uninitializedShape: x.shape) : nil
            Kernels.batchNormSecondPass(u.storage.base, gp.storage.base, x.storage.base, n: n, c: c, inner: inner,
                                        dgpCoef: dgpCoef, dgp: dgp?.storage.base, dxCoef: dxCoef, dx: dx?.storage.base)
            var grads: [Tensor?] = [dgp, dx]
            if weight != nil { grads.append(needs[2] ? Tensor(shape: [c], dGamma) : nil) }
            return grads
        }
    }
}

extension Kernels {
    /// dx = a · gp + b · x + d per channel (gp = g · slope(x · scale + shift), as
    /// `leakyChannelSums`), with a = weight · invStd, b = −a · invStd² · mean(gp · (x − mean)),
    /// d = −a · mean(gp) − b · mean.
    static func batchNormInputGradient(_ g: Tensor, _ affine: (scale: [Float], shift: [Float]), alpha: Float, _ x: Tensor,
                                       weight: Tensor?, mean: Tensor, invStd: [Float], sumG: [Float], sumGX: [Float]) -> Tensor {
        let geo = ChannelGeometry(x.shape)
        let (n, c, inner) = (geo.n, geo.c, geo.inner)
        let count = Float(n * inner)
        var a = [Float](repeating: 0, count: c), b = a, d = a
        for i in 0..<c {
            let k = (weight?.storage.base[i] ?? 1) * invStd[i]
            a[i] = k
            b[i] = -k * invStd[i] * invStd[i] * sumGX[i] / count
            d[i] = -k * sumG[i] / count - b[i] * mean.storage.base[i]
        }
        let dx = Tensor(uninitializedShape: x.shape)
        batchNormInputGradientPass(g.storage.base, x.storage.base, affine, alpha: alpha, a: a, b: b, d: d,
                                   n: n, c: c, inner: inner, dx.storage.base)
        return dx
    }

    /// Per channel: Σ u, Σ u · (x − mean), Σ u · gp.
    static func channelSums3(_ u: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ gp: UnsafePointer<Float>, _ mean: UnsafePointer<Float>,
                             n: Int, c: Int, inner: Int, sumU: inout [Float], sumUC: inout [Float], sumUG: inout [Float]) {
        sumU.withUnsafeMutableBufferPointer { s1 in sumUC.withUnsafeMutableBufferPointer { s2 in sumUG.withUnsafeMutableBufferPointer { s3 in
            let (s1, s2, s3) = (s1.baseAddress!, s2.baseAddress!, s3.baseAddress!)
            if inner == 1 { return rowSums3(u, x, gp, mean, n: n, c: c, sumU: s1, sumUC: s2, sumUG: s3) }
            forChannelParts(c: c, perChannel: n * inner) { channels in
                for ch in channels {
                    var t1 = 0.0, t2 = 0.0, t3 = 0.0
                    let m = Vec(repeating: mean[ch])
                    for r in 0..<n {
                        let o = (r * c + ch) * inner
                        var a1 = Vec(), a2 = Vec(), a3 = Vec(), i = 0
                        while i + Vec.scalarCount <= inner {
                            let uv = load(u + o + i)
                            a1 += uv
                            a2 += uv * (load(x + o + i) - m)
                            a3 += uv * load(gp + o + i)
                            i += Vec.scalarCount
                        }
                        var p1 = a1.sum(), p2 = a2.sum(), p3 = a3.sum()
                        while i < inner {
                            p1 += u[o + i]; p2 += u[o + i] * (x[o + i] - mean[ch]); p3 += u[o + i] * gp[o + i]
                            i += 1
                        }
                        t1 += Double(p1); t2 += Double(p2); t3 += Double(p3)
                    }
                    s1[ch] = Float(t1); s2[ch] = Float(t2); s3[ch] = Float(t3)
                }
            }
        } } }
    }

    /// dgp = k[0]·u + k[1]·x + k[2] and dx = q[0]·u + q[1]·gp + q[2]·x + q[3] per channel, each
    /// only when its output is given.
    static func batchNormSecondPass(_ u: UnsafePointer<Float>, _ gp: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
                                    n: Int, c: Int, inner: Int, dgpCoef k: [[Float]], dgp: UnsafeMutablePointer<Float>?,
                                    dxCoef q: [[Float]], dx: UnsafeMutablePointer<Float>?) {
        if inner == 1 {
            return Array((k + q).joined()).withUnsafeBufferPointer {
                rowSecondPass(u, gp, x, n: n, c: c, coefficients: $0.baseAddress!, dgp: dgp, dx: dx)
            }
        }
        forChannelParts(c: c, perChannel: n * inner) { channels in
            for r in 0..<n {
                for ch in channels {
                    let o = (r * c + ch) * inner
                    let (k0, k1, k2) = (Vec(repeating: k[0][ch]), Vec(repeating: k[1][ch]), Vec(repeating: k[2][ch]))
                    let (q0, q1, q2, q3) = (Vec(repeating: q[0][ch]), Vec(repeating: q[1][ch]), Vec(repeating: q[2][ch]), Vec(repeating: q[3][ch]))
                    var i = 0
                    while i + Vec.scalarCount <= inner {
                        let uv = load(u + o + i)
                        let xv = load(x + o + i)
                        if let dgp { store(k0 * uv + k1 * xv + k2, dgp + o + i) }
                        if let dx {
                            let gv = load(gp + o + i)
                            store(q0 * uv + q1 * gv + q2 * xv + q3, dx + o + i)
                        }
                        i += Vec.scalarCount
                    }
                    while i < inner {
                        if let dgp { dgp[o + i] = k[0][ch] * u[o + i] + k[1][ch] * x[o + i] + k[2][ch] }
                        if let dx { dx[o + i] = q[0][ch] * u[o + i] + q[1][ch] * gp[o + i] + q[2][ch] * x[o + i] + q[3][ch] }
                        i += 1
                    }
                }
            }
        }
    }
}

extension Kernels {
    /// Calls `body(channels, images)` over parts of the channels, split over the engine's threads
    /// when there is enough work; each channel's sums are made by one part, so the results do not
    /// depend on the thread count.
    @inline(__always)
    static func forChannelParts(c: Int, perChannel: Int, _ body: (Range<Int>) -> Void) {
        Parallel.forChunks(c, grain: Swift.max(1, (1 << 15) / Swift.max(perChannel, 1)), body)
    }

    /// Per-channel mean and biased variance of [n, c, inner] in two passes (the second over
    /// x − mean), each plane summed in float vectors and the planes in double.
    static func channelMoments(_ x: UnsafePointer<Float>, n: Int, c: Int, inner: Int,
                               mean: UnsafeMutablePointer<Float>, variance: UnsafeMutablePointer<Float>) {
        if inner == 1 { return rowMoments(x, n: n, c: c, mean: mean, variance: variance) }
        let count = Double(n * inner)
        forChannelParts(c: c, perChannel: n * inner) { channels in
            for ch in channels {
                var s = 0.0
                for r in 0..<n { s += Double(planeSum(x + (r * c + ch) * inner, inner)) }
                let m = Float(s / count)
                var q = 0.0
                for r in 0..<n { q += Double(planeSquares(x + (r * c + ch) * inner, inner, shift: m)) }
                mean[ch] = m
                variance[ch] = Float(q / count)
            }
        }
    }

    @inline(__always)
    static func planeSum(_ p: UnsafePointer<Float>, _ k: Int) -> Float {
        var acc = Vec(), i = 0
        while i + Vec.scalarCount <= k { acc += load(p + i); i += Vec.scalarCount }
        var s = acc.sum()
        while i < k { s += p[i]; i += 1 }
        return s
    }

    @inline(__always)
    static func planeSquares(_ p: UnsafePointer<Float>, _ k: Int, shift: Float) -> Float {
        var acc = Vec(), i = 0
        let m = Vec(repeating: shift)
        while i + Vec.scalarCount <= k {
            let v = load(p + i) - m
            acc += v * v
            i += Vec.scalarCount
        }
        var s = acc.sum()
        while i < k { let v = p[i] - shift; s += v * v; i += 1 }
        return s
    }

    /// With gp = g where x · scale + shift > 0 (the activation's input, so its output's sign),
    /// alpha · g elsewhere: sumG[c] = Σ gp, sumGX[c] = Σ gp · (x − mean[c]).
    static func leakyChannelSums(_ g: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ affine: (scale: [Float], shift: [Float]),
                                 _ mean: UnsafePointer<Float>, alpha: Float, n: Int, c: Int, inner: Int,
                                 sumG: inout [Float], sumGX: inout [Float]) {
        let k = LeakyGradK(alpha: alpha)
        sumG.withUnsafeMutableBufferPointer { sg in sumGX.withUnsafeMutableBufferPointer { sgx in
        affine.scale.withUnsafeBufferPointer { sc in affine.shift.withUnsafeBufferPointer { sh in
            let (sg, sgx, sc, sh) = (sg.baseAddress!, sgx.baseAddress!, sc.baseAddress!, sh.baseAddress!)
            if inner == 1 { return rowLeakySums(g, x, sc, sh, mean, alpha: alpha, n: n, c: c, sumG: sg, sumGX: sgx) }
            forChannelParts(c: c, perChannel: n * inner) { channels in
                for ch in channels {
                    var s = 0.0, q = 0.0
                    let m = Vec(repeating: mean[ch])
                    let (scale, shift) = (sc[ch], sh[ch])
                    let (sv, bv) = (Vec(repeating: scale), Vec(repeating: shift))
                    for r in 0..<n {
                        let o = (r * c + ch) * inner
                        var a1 = Vec(), a2 = Vec(), i = 0
                        while i + Vec.scalarCount <= inner {
                            let gv = load(g + o + i)
                            let xv = load(x + o + i)
                            let gp = k.vector(gv, xv * sv + bv)
                            a1 += gp
                            a2 += gp * (xv - m)
                            i += Vec.scalarCount
                        }
                        var p1 = a1.sum(), p2 = a2.sum()
                        while i < inner {
                            let gp = k.scalar(g[o + i], x[o + i] * scale + shift)
                            p1 += gp
                            p2 += gp * (x[o + i] - mean[ch])
                            i += 1
                        }
                        s += Double(p1)
                        q += Double(p2)
                    }
                    sg[ch] = Float(s)
                    sgx[ch] = Float(q)
                }
            }
        } } } }
    }

    /// dx = a[c] · gp + b[c] · x + d[c], gp as in `leakyChannelSums`.
    static func batchNormInputGradientPass(_ g: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ affine: (scale: [Float], shift: [Float]),
                                           alpha: Float, a: [Float], b: [Float], d: [Float], n: Int, c: Int, inner: Int,
                                           _ dx: UnsafeMutablePointer<Float>) {
        let k = LeakyGradK(alpha: alpha)
        // One [5, c] block of per-channel factors: scale, shift, a, b, d.
        (affine.scale + affine.shift + a + b + d).withUnsafeBufferPointer { f in
            let (sc, sh, a, b, d) = (f.baseAddress!, f.baseAddress! + c, f.baseAddress! + 2 * c, f.baseAddress! + 3 * c, f.baseAddress! + 4 * c)
            if inner == 1 { return rowInputGradient(g, x, sc, sh, alpha: alpha, a: a, b: b, d: d, n: n, c: c, dx) }
            forChannelParts(c: c, perChannel: n * inner) { channels in
                for r in 0..<n {
                    for ch in channels {
                        let o = (r * c + ch) * inner
                        let (av, bv, dv) = (Vec(repeating: a[ch]), Vec(repeating: b[ch]), Vec(repeating: d[ch]))
                        let (sv, hv) = (Vec(repeating: sc[ch]), Vec(repeating: sh[ch]))
                        var i = 0
                        while i + Vec.scalarCount <= inner {
                            let gv = load(g + o + i)
                            let xv = load(x + o + i)
                            store(av * k.vector(gv, xv * sv + hv) + bv * xv + dv, dx + o + i)
                            i += Vec.scalarCount
                        }
                        while i < inner {
                            dx[o + i] = a[ch] * k.scalar(g[o + i], x[o + i] * sc[ch] + sh[ch]) + b[ch] * x[o + i] + d[ch]
                            i += 1
                        }
                    }
                }
            }
        }
    }
}
