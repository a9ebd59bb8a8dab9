import Foundation
// Convolutions as im2col + sgemm (conv2d) and sgemm + col2im (convTranspose2d), DL4S-style.
// The three primitives below are each other's adjoints, so their backward rules close the set:
//   conv2d(x, w)            dx = convTranspose2d(g, w)   dw = conv2dWeightGrad(x, g)
//   convTranspose2d(x, w)   dx = conv2d(g, w)            dw = conv2dWeightGrad(g, x)
//   conv2dWeightGrad(x, g)  dx = convTranspose2d(g, G)   dg = conv2d(x, G)
// Images are processed in chunks whose column buffer stays around `chunkBytes`.

let convChunkBytes = ProcessInfo.processInfo.environment["GAN_CONV_CHUNK_KB"].flatMap { Int($0) }.map { $0 << 10 } ?? (6 << 20)
/// `GAN_WIDE_IMAGE_PIXELS`: images with at least this many output pixels get a GEMM each.
let wideImagePixels = ProcessInfo.processInfo.environment["GAN_WIDE_IMAGE_PIXELS"].flatMap { Int($0) } ?? 512

extension Tensor {
    /// 2-D cross-correlation, PyTorch's `conv2d`: x [N, C, H, W], weight [O, C, kh, kw].
    public static func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, _ g: ConvGeometry) -> Tensor {
        precondition(x.rank == 4 && weight.rank == 4, "conv2d needs NCHW (or NHWC) input and [O, C, kh, kw] weight, got \(x.shape), \(weight.shape)")
        precondition(weight.shape[1] == g.dims(x.shape).c, "conv2d: input has \(g.dims(x.shape).c) channels, weight expects \(weight.shape[1])")
        precondition(weight.shape[2] == g.kernelH && weight.shape[3] == g.kernelW, "conv2d: weight \(weight.shape) does not match kernel \(g.kernelH)×\(g.kernelW)")
        let y = conv2dRaw(x, weight, g).recorded("conv2d", [x, weight], Rules.conv2d(x, weight, g))
        guard let bias else { return y }
        return y + bias.reshaped(g.channelShape)
    }

    /// Transposed convolution, PyTorch's `conv_transpose2d`: x [N, C, h, w], weight [C, O, kh, kw].
    /// The output size is the smallest one the geometry allows plus `outputPadding`, or `outputSize`.
    public static func convTranspose2d(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, _ g: ConvGeometry,
                                       outputPadding: (Int, Int) = (0, 0), outputSize: (Int, Int)? = nil) -> Tensor {
        precondition(x.rank == 4 && weight.rank == 4, "convTranspose2d needs NCHW (or NHWC) input and [C, O, kh, kw] weight, got \(x.shape), \(weight.shape)")
        let d = g.dims(x.shape)
        precondition(weight.shape[0] == d.c, "convTranspose2d: input has \(d.c) channels, weight expects \(weight.shape[0])")
        let base = g.bigSize(small: d.h, d.w)
        let size = outputSize ?? (base.0 + outputPadding.0, base.1 + outputPadding.1)
        precondition(g.smallSize(big: size.0, size.1) == (d.h, d.w),
                     "convTranspose2d: output \(size) does not map back to input \(d.h)×\(d.w)")
        let y = convTranspose2dRaw(x, weight, g, size).recorded("convTranspose2d", [x, weight], Rules.convTranspose2d(x, weight, g))
        guard let bias else { return y }
        return y + bias.reshaped(g.channelShape)
    }

    /// d⟨g, conv2d(x, w)⟩/dw for a kernel of `g.kernelH × g.kernelW`: the conv2d weight gradient
    /// as an op of its own so that it can be differentiated again.
    public static func conv2dWeightGrad(_ x: Tensor, _ gradOut: Tensor, _ g: ConvGeometry) -> Tensor {
        conv2dWeightGradRaw(x, gradOut, g).recorded("conv2dWeightGrad", [x, gradOut], Rules.conv2dWeightGrad(x, gradOut, g))
    }

    // MARK: kernels

    /// w[a, b, i, j] → w[b, a, kh−1−i, kw−1−j]: the weight of the dual stride-1 convolution.
    static func flipTransposed(_ w: Tensor) -> Tensor {
        let (a, b, kh, kw) = (w.shape[0], w.shape[1], w.shape[2], w.shape[3])
        let out = Tensor(uninitializedShape: [b, a, kh, kw])
        let src = w.storage.base, dst = out.storage.base
        for p in 0..<a { for q in 0..<b { for i in 0..<kh { for j in 0..<kw {
            dst[((q * a + p) * kh + (kh - 1 - i)) * kw + (kw - 1 - j)] = src[((p * b + q) * kh + i) * kw + j]
        } } } }
        return out
    }

    /// Images per GEMM. Several images side by side make a wide enough GEMM out of small ones,
    /// at the price of copying them into (or out of) [C, b, P] order; once one image has
    /// `wideImagePixels` pixels the GEMM is already wide and the copy costs more than it saves
    /// (the 128→1 7×7 output layer's forward: 8.9–12.0 ms a batch of 64 unchunked against
    /// 13.4–25.1 ms chunked, alternating `gan bench engine --breakdown` with `GAN_THREADS=1`).
    static func chunkImages(columnFloatsPerImage: Int, pixels: Int, batch: Int) -> Int {
        if pixels >= wideImagePixels { return 1 }
        return Swift.max(1, Swift.min(batch, convChunkBytes / Swift.max(1, columnFloatsPerImage * 4)))
    }

    /// Splits a batch of `n` images over the engine's threads: `body(lo..<hi)` runs once per
    /// part, on its own thread, with kernels and sgemm inside it serial.
    static func forImageParts(_ n: Int, _ body: (Range<Int>) -> Void) {
        let parts = imageParts(n)
        Parallel.split(parts) { t in
            let lo = t * n / parts, hi = (t + 1) * n / parts
            if lo < hi { body(lo..<hi) }
        }
    }

    /// Parts to split a batch into: the engine's threads, or one when OpenBLAS owns them.
    static func imageParts(_ n: Int) -> Int { Parallel.engineOwnsThreads ? Parallel.parts(n) : 1 }

    /// The stride-1 dual conv2dRaw runs a c → o convolution on instead (fewer output than input
    /// channels), or nil when it runs it as it is.
    static func conv2dDual(c: Int, o: Int, _ g: ConvGeometry) -> ConvGeometry? {
        o < c ? g.strideOneDual : nil
    }

    /// The stride-1 dual convTranspose2dRaw runs a c → o transposed convolution from `small` to
    /// `big` on instead (fewer input than output channels), or nil when it runs it as it is.
    static func convTranspose2dDual(c: Int, o: Int, _ g: ConvGeometry, small: (Int, Int), big: (Int, Int)) -> ConvGeometry? {
        guard c < o, let dual = g.strideOneDual, dual.smallSize(big: small.0, small.1) == big else { return nil }
        return dual
    }

    static func conv2dRaw(_ x: Tensor, _ w: Tensor, _ g: ConvGeometry) -> Tensor {
        if g.channelsLast { return conv2dChannelsLast(x, w, g) }
        let (n, c, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let o = w.shape[0]
        if let dual = conv2dDual(c: c, o: o, g) {
            // Fewer output than input channels: GEMM + col2im touches O·k²·P values, not C·k²·P.
            return convTranspose2dRaw(x, flipTransposed(w), dual, g.smallSize(big: h, wd))
        }
        let (oh, ow) = g.smallSize(big: h, wd)
        precondition(oh > 0 && ow > 0, "conv2d: input \(h)×\(wd) is smaller than the kernel")
        if let y = OneDNN.run(.forward, .init(n: n, c: c, h: h, w: wd, o: o, oh: oh, ow: ow, geometry: g),
                              x.storage.base, w.storage.base, outShape: [n, o, oh, ow]) { return y }
        return unfoldAndMultiply(x, g, weight: w, gradOut: nil).output!
    }

    static func convTranspose2dRaw(_ x: Tensor, _ w: Tensor, _ g: ConvGeometry, _ size: (Int, Int)) -> Tensor {
        if g.channelsLast { return convTranspose2dChannelsLast(x, w, g, size) }
        let (n, c, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let o = w.shape[1]
        if let dual = convTranspose2dDual(c: c, o: o, g, small: (h, wd), big: size) {
            // Fewer input than output channels: im2col + GEMM touches C·k²·P values, not O·k²·P.
            return conv2dRaw(x, flipTransposed(w), dual)
        }
        let (bh, bw) = size
        // In conv2d's terms this is the input gradient: the big side has o channels, the small c.
        if let out = OneDNN.run(.backwardData, .init(n: n, c: o, h: bh, w: bw, o: c, oh: h, ow: wd, geometry: g),
                                x.storage.base, w.storage.base, outShape: [n, o, bh, bw]) { return out }
        let out = Tensor(uninitializedShape: [n, o, bh, bw])
        let k = o * g.kernelH * g.kernelW, p = h * wd
        let (xs, ws, ys) = (x.storage.base, w.storage.base, out.storage.base)
        forImageParts(n) { images in
            let chunk = chunkImages(columnFloatsPerImage: k * p, pixels: p, batch: images.count)
            Scratch.with(k * p * chunk) { cols in Scratch.with(chunk > 1 ? c * p * chunk : 0) { gathered in
            var start = images.lowerBound
            while start < images.upperBound {
                let b = Swift.min(chunk, images.upperBound - start)
                let src: UnsafePointer<Float>
                if b == 1 {
                    src = UnsafePointer(xs + start * c * p)
                } else {
                    // [b, C, P] → [C, b, P] so one sgemm covers the chunk.
                    Kernels.copyStrided(xs + start * c * p, [p, c * p, 1], gathered, [b * p, p, 1], [c, b, p])
                    src = UnsafePointer(gathered)
                }
                sgemm(transA: true, transB: false, m: k, n: b * p, k: c, ws, lda: k, src, ldb: b * p, cols, ldc: b * p)
                for i in 0..<b {
                    Kernels.col2im(cols + i * p, ldc: b * p, channels: o, height: bh, width: bw, g, outH: h, outW: wd,
                                   ys + (start + i) * o * bh * bw)
                }
                start += b
            }
            } }
        }
        return out
    }

    static func conv2dWeightGradRaw(_ x: Tensor, _ gy: Tensor, _ g: ConvGeometry) -> Tensor {
        if g.channelsLast { return conv2dWeightGradChannelsLast(x, gy, g) }
        let (n, c, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let o = gy.shape[1]
        if o < c, let dual = g.strideOneDual, dual.smallSize(big: gy.shape[2], gy.shape[3]) == (h, wd) {
            // Unfold the side with fewer channels; the dual's weight is the flipped transpose.
            return flipTransposed(conv2dWeightGradRaw(gy, x, dual))
        }
        let (oh, ow) = (gy.shape[2], gy.shape[3])
        precondition(gy.shape[0] == n && g.smallSize(big: h, wd) == (oh, ow),
                     "conv2dWeightGrad: gradient \(gy.shape) does not match input \(x.shape)")
        if let dw = OneDNN.run(.backwardWeights, .init(n: n, c: c, h: h, w: wd, o: o, oh: oh, ow: ow, geometry: g),
                               x.storage.base, gy.storage.base, outShape: [o, c, g.kernelH, g.kernelW]) { return dw }
        return unfoldAndMultiply(x, g, weight: nil, gradOut: gy).weightGrad!
    }

    /// The unfold-and-multiply core of conv2d and conv2dWeightGrad: each part of the batch
    /// unfolds its images chunk by chunk; with `w`, output[b, O, P] = W · cols; with `gy`,
    /// weightGrad[O, K] += gy · colsᵀ, each part into a buffer of its own, the parts added in
    /// order afterwards (so the result depends on the thread count but not on timing). With
    /// both, each chunk is unfolded once for the two GEMMs.
    static func unfoldAndMultiply(_ x: Tensor, _ g: ConvGeometry, weight w: Tensor?, gradOut gy: Tensor?)
        -> (output: Tensor?, weightGrad: Tensor?) {
        let (n, c, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (oh, ow) = g.smallSize(big: h, wd)
        let o = w?.shape[0] ?? gy!.shape[1]
        let out = w.map { _ in Tensor(uninitializedShape: [n, o, oh, ow]) }
        let dW = gy.map { _ in Tensor(uninitializedShape: [o, c, g.kernelH, g.kernelW]) }
        let k = c * g.kernelH * g.kernelW, p = oh * ow
        let (xs, ws, ys, gs) = (x.storage.base, w?.storage.base, out?.storage.base, gy?.storage.base)
        let parts = imageParts(n)
        let partials = dW.map { d in (0..<parts).map { $0 == 0 ? d.storage : TensorStorage(count: o * k) } }
        Parallel.split(parts) { t in
            let lo = t * n / parts, hi = (t + 1) * n / parts
            let acc = partials?[t].base
            guard lo < hi else { acc?.update(repeating: 0, count: o * k); return }
            let chunk = chunkImages(columnFloatsPerImage: k * p, pixels: p, batch: hi - lo)
            let staging = chunk > 1 ? o * p * chunk : 0
            Scratch.with(k * p * chunk) { cols in Scratch.with(ys == nil ? 0 : staging) { tmp in
            Scratch.with(gs == nil ? 0 : staging) { gathered in
            var start = lo
            while start < hi {
                let b = Swift.min(chunk, hi - start)
                for i in 0..<b {
                    Kernels.im2col(xs + (start + i) * c * h * wd, channels: c, height: h, width: wd, g,
                                   outH: oh, outW: ow, cols + i * p, ldc: b * p)
                }
                if let ws, let ys {
                    if b == 1 {
                        sgemm(transA: false, transB: false, m: o, n: p, k: k, ws, lda: k, cols, ldb: p, ys + start * o * p, ldc: p)
                    } else {
                        sgemm(transA: false, transB: false, m: o, n: b * p, k: k, ws, lda: k, cols, ldb: b * p, tmp, ldc: b * p)
                        // [O, b, P] → [b, O, P]
                        Kernels.copyStrided(tmp, [p, b * p, 1], ys + start * o * p, [o * p, p, 1], [b, o, p])
                    }
                }
                if let gs, let acc {
                    let gsrc: UnsafePointer<Float>
                    if b == 1 {
                        gsrc = UnsafePointer(gs + start * o * p)
                    } else {
                        // [b, O, P] → [O, b, P] so one sgemm covers the chunk.
                        Kernels.copyStrided(gs + start * o * p, [p, o * p, 1], gathered, [b * p, p, 1], [o, b, p])
                        gsrc = UnsafePointer(gathered)
                    }
                    sgemm(transA: false, transB: true, m: o, n: k, k: b * p, gsrc, lda: b * p, cols, ldb: b * p,
                          beta: start == lo ? 0 : 1, acc, ldc: k)
                }
                start += b
            }
            } } }
        }
        if let dW, let partials {
            for t in 1..<Swift.max(parts, 1) { Kernels.addInPlace(dW.storage.base, partials[t].base, o * k) }
            if n == 0 { dW.storage.base.update(repeating: 0, count: dW.count) }
        }
        return (out, dW)
    }
}

/// `GAN_UNFUSED_CONVT=1` makes transposed convolutions' backward unfold twice, for comparison.
let fuseTransposedBackward = ProcessInfo.processInfo.environment["GAN_UNFUSED_CONVT"] == nil

extension Tensor {
    /// `conv2d(x, w)` and `conv2dWeightGrad(x, gy)` in one pass: both unfold `x` with the same
    /// geometry, so each chunk of columns is made once and used by both GEMMs. This is a
    /// transposed convolution's backward (x is the upstream gradient) when no graph is recorded;
    /// the results are bit-identical to the two separate calls (same parts, chunks and GEMMs).
    /// Only for geometries without a stride-1 dual, where both calls unfold `x`.
    static func conv2dAndWeightGradRaw(_ x: Tensor, _ w: Tensor, _ gy: Tensor, _ g: ConvGeometry) -> (output: Tensor, weightGrad: Tensor) {
        precondition(g.strideOneDual == nil, "conv2dAndWeightGradRaw is for strided geometries")
        let (n, c, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let o = w.shape[0]
        let (oh, ow) = g.smallSize(big: h, wd)
        precondition(w.shape == [o, c, g.kernelH, g.kernelW] && gy.shape == [n, o, oh, ow],
                     "conv2dAndWeightGrad: weight \(w.shape) or gradient \(gy.shape) does not match input \(x.shape)")
        let problem = OneDNN.Problem(n: n, c: c, h: h, w: wd, o: o, oh: oh, ow: ow, geometry: g)
        if let y = OneDNN.run(.forward, problem, x.storage.base, w.storage.base, outShape: [n, o, oh, ow]),
           let dw = OneDNN.run(.backwardWeights, problem, x.storage.base, gy.storage.base, outShape: [o, c, g.kernelH, g.kernelW]) {
            return (y, dw)
        }
        let r = unfoldAndMultiply(x, g, weight: w, gradOut: gy)
        return (r.output!, r.weightGrad!)
    }
}
