// The three convolution primitives on channels-last images (x [N, H, W, C], y [N, OH, OW, O]).
// oneDNN runs them in that layout directly; this is why a model keeps its activations
// channels-last: between oneDNN calls there is then nothing to convert (in NCHW every call
// converts its input and output to and from oneDNN's layout). oneDNN also takes a one-channel
// input here (the critic's 1→64 first layer: its forward and weight gradient beat unfold +
// sgemm), but not its input gradient (a 64→1 transposed convolution, ~8× slower there), which
// runs as sgemm + col2im reading the channels-last gradient in place. A kernel that covers the
// whole unpadded image (the critic's 7×7 output layer) is a matrix product on the flattened
// images, [H·W·C] per image in this layout. Anything else oneDNN refuses runs on the NCHW code
// between two permutations.

extension Tensor {
    static func conv2dChannelsLast(_ x: Tensor, _ w: Tensor, _ g: ConvGeometry) -> Tensor {
        let (n, c, h, wd) = g.dims(x.shape)
        let o = w.shape[0]
        let (oh, ow) = g.smallSize(big: h, wd)
        precondition(oh > 0 && ow > 0, "conv2d: input \(h)×\(wd) is smaller than the kernel")
        if let y = OneDNN.run(.forward, .init(n: n, c: c, h: h, w: wd, o: o, oh: oh, ow: ow, geometry: g),
                              x.storage.base, w.storage.base, outShape: [n, oh, ow, o]) { return y }
        if g.coversWholeImage(h, wd) {
            // y[n, o] = x[n, K] · W'[o, K]ᵀ, W' the weight as [O, kh, kw, C].
            let y = Tensor(uninitializedShape: [n, 1, 1, o]), wp = kernelLast(w)
            sgemm(transA: false, transB: true, m: n, n: o, k: h * wd * c, x.storage.base, lda: h * wd * c,
                  wp.storage.base, ldb: h * wd * c, y.storage.base, ldc: o)
            return y
        }
        if let dual = fewOutputsDual(c: c, o: o, g) {
            // To one channel (the dcgan generator's 128→1 output layer): the stride-1 dual's
            // transposed convolution reads x as it is, where NCHW would first permute all of it.
            return convTranspose2dChannelsLast(x, flipTransposed(w), dual, (oh, ow))
        }
        return channelsLastCopy(conv2dRaw(planarCopy(x), w, g.withChannelsLast(false)))
    }

    static func convTranspose2dChannelsLast(_ x: Tensor, _ w: Tensor, _ g: ConvGeometry, _ size: (Int, Int)) -> Tensor {
        let (n, c, h, wd) = g.dims(x.shape)
        let o = w.shape[1]
        let (bh, bw) = size
        if let y = OneDNN.run(.backwardData, .init(n: n, c: o, h: bh, w: bw, o: c, oh: h, ow: wd, geometry: g),
                              x.storage.base, w.storage.base, outShape: [n, bh, bw, o]) { return y }
        if g.coversWholeImage(bh, bw) && (h, wd) == (1, 1) {
            // out[n, K] = x[n, C] · W'[C, K], W' the weight [C, O, kh, kw] as [C, kh, kw, O].
            let out = Tensor(uninitializedShape: [n, bh, bw, o]), wp = kernelLast(w)
            sgemm(transA: false, transB: false, m: n, n: bh * bw * o, k: c, x.storage.base, lda: c,
                  wp.storage.base, ldb: bh * bw * o, out.storage.base, ldc: bh * bw * o)
            return out
        }
        if o == 1 && convTranspose2dDual(c: c, o: o, g, small: (h, wd), big: size) == nil {
            return oneChannelTransposed(x, w, g, size)
        }
        if c < OneDNN.minChannels, let dual = convTranspose2dDual(c: c, o: o, g, small: (h, wd), big: size) {
            // From few channels to many (the gradient of a c→1 layer's input): the dual's
            // convolution, which oneDNN takes with few inputs, writes channels-last directly.
            return conv2dChannelsLast(x, flipTransposed(w), dual)
        }
        return channelsLastCopy(convTranspose2dRaw(planarCopy(x), w, g.withChannelsLast(false), size))
    }

    static func conv2dWeightGradChannelsLast(_ x: Tensor, _ gy: Tensor, _ g: ConvGeometry) -> Tensor {
        let (n, c, h, wd) = g.dims(x.shape)
        let (_, o, oh, ow) = g.dims(gy.shape)
        precondition(gy.shape[0] == n && g.smallSize(big: h, wd) == (oh, ow),
                     "conv2dWeightGrad: gradient \(gy.shape) does not match input \(x.shape)")
        if let dw = OneDNN.run(.backwardWeights, .init(n: n, c: c, h: h, w: wd, o: o, oh: oh, ow: ow, geometry: g),
                               x.storage.base, gy.storage.base, outShape: [o, c, g.kernelH, g.kernelW]) { return dw }
        if g.coversWholeImage(h, wd) {
            // W'[o, K] = gy[n, o]ᵀ · x[n, K], then back to [O, C, kh, kw].
            let wp = Tensor(uninitializedShape: [o, h, wd, c])
            sgemm(transA: true, transB: false, m: o, n: h * wd * c, k: n, gy.storage.base, lda: o,
                  x.storage.base, ldb: h * wd * c, wp.storage.base, ldc: h * wd * c)
            return kernelFirst(wp)
        }
        if let dual = fewOutputsDual(c: c, o: o, g), dual.smallSize(big: oh, ow) == (h, wd) {
            // The dual's weight gradient has the few channels as its input side, which oneDNN takes.
            return flipTransposed(conv2dWeightGradChannelsLast(gy, x, dual))
        }
        return conv2dWeightGradRaw(planarCopy(x), planarCopy(gy), g.withChannelsLast(false))
    }

    /// `conv2dDual` for a convolution with fewer outputs than oneDNN takes.
    static func fewOutputsDual(c: Int, o: Int, _ g: ConvGeometry) -> ConvGeometry? {
        o < OneDNN.minChannels ? conv2dDual(c: c, o: o, g) : nil
    }

    /// A transposed convolution to one channel from channels-last x: per image, colsᵀ = x · W
    /// (x's [P, C] rows as they are; W as [C, kh·kw]), transposed, then col2im into the single
    /// output plane, which is the same memory in either layout. (sgemm on both operands
    /// transposed, straight into cols, ran at 26–36 GFLOP/s against ~60 for this form.)
    static func oneChannelTransposed(_ x: Tensor, _ w: Tensor, _ g: ConvGeometry, _ size: (Int, Int)) -> Tensor {
        let (n, c, h, wd) = g.dims(x.shape)
        let (bh, bw) = size
        let out = Tensor(uninitializedShape: [n, bh, bw, 1])
        let k = g.kernelH * g.kernelW, p = h * wd
        let (xs, ws, ys) = (x.storage.base, w.storage.base, out.storage.base)
        forImageParts(n) { images in
            Scratch.with(k * p) { colsT in Scratch.with(k * p) { cols in
                for i in images {
                    sgemm(transA: false, transB: false, m: p, n: k, k: c, xs + i * p * c, lda: c, ws, ldb: k, colsT, ldc: k)
                    for r in 0..<k { for q in 0..<p { cols[r * p + q] = colsT[q * k + r] } }
                    Kernels.col2im(cols, ldc: p, channels: 1, height: bh, width: bw, g, outH: h, outW: wd, ys + i * bh * bw)
                }
            } }
        }
        return out
    }

    /// [A, B, kh, kw] → [A, kh, kw, B]: a weight in the order of channels-last images.
    static func kernelLast(_ w: Tensor) -> Tensor { axesReordered(w, [0, 2, 3, 1]) }

    /// [A, kh, kw, B] → [A, B, kh, kw], `kernelLast`'s inverse.
    static func kernelFirst(_ w: Tensor) -> Tensor { axesReordered(w, [0, 3, 1, 2]) }

    /// A copy with axis i taken from `order[i]`, not recorded (inside a primitive).
    static func axesReordered(_ w: Tensor, _ order: [Int]) -> Tensor {
        let strides = Shape.strides(w.shape)
        let out = Tensor(uninitializedShape: order.map { w.shape[$0] })
        Kernels.copyStrided(w.storage.base, order.map { strides[$0] }, out.storage.base, Shape.strides(out.shape), out.shape)
        return out
    }

    /// NHWC → NCHW, not recorded. One channel or one pixel: the same memory.
    static func planarCopy(_ x: Tensor) -> Tensor {
        let (n, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        if c == 1 || h * w == 1 { return Tensor(shape: [n, c, h, w], storage: x.storage) }
        return axesReordered(x, [0, 3, 1, 2])
    }

    /// NCHW → NHWC, not recorded.
    static func channelsLastCopy(_ x: Tensor) -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        if c == 1 || h * w == 1 { return Tensor(shape: [n, h, w, c], storage: x.storage) }
        return axesReordered(x, [0, 2, 3, 1])
    }
}
