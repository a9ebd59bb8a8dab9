/// How a 2-D convolution relates a "big" image (conv2d's input, convTranspose2d's output) to a
/// "small" one (conv2d's output, convTranspose2d's input). Padding may differ per side, which is
/// what Keras' "same" padding on stride 2 needs (one more row/column at the bottom/right).
public struct ConvGeometry: Equatable, Sendable {
    public var kernelH: Int, kernelW: Int
    public var strideH: Int, strideW: Int
    public var padTop: Int, padLeft: Int, padBottom: Int, padRight: Int
    public var dilationH: Int, dilationW: Int
    /// Images in channels-last order: x [N, H, W, C] and y [N, OH, OW, O] instead of NCHW (the
    /// weights keep PyTorch's layout). oneDNN's kernels take it without converting, so layers
    /// that run channels-last end to end skip the conversions around every call.
    public var channelsLast = false

    public init(kernel: (Int, Int), stride: (Int, Int) = (1, 1), padding: (top: Int, left: Int, bottom: Int, right: Int) = (0, 0, 0, 0),
                dilation: (Int, Int) = (1, 1)) {
        precondition(kernel.0 > 0 && kernel.1 > 0, "kernel size must be positive, got \(kernel)")
        precondition(stride.0 > 0 && stride.1 > 0, "stride must be positive, got \(stride)")
        precondition(dilation.0 > 0 && dilation.1 > 0, "dilation must be positive, got \(dilation)")
        precondition([padding.top, padding.left, padding.bottom, padding.right].allSatisfy { $0 >= 0 }, "padding must not be negative")
        (kernelH, kernelW) = kernel
        (strideH, strideW) = stride
        (padTop, padLeft, padBottom, padRight) = padding
        (dilationH, dilationW) = dilation
    }

    /// Symmetric PyTorch-style geometry.
    public init(kernel: Int, stride: Int = 1, padding: Int = 0, dilation: Int = 1) {
        self.init(kernel: (kernel, kernel), stride: (stride, stride),
                  padding: (padding, padding, padding, padding), dilation: (dilation, dilation))
    }

    /// For stride 1 and no dilation, conv2d with this geometry equals convTranspose2d with the
    /// kernel flipped, channels swapped and padding k − 1 − p (and the other way round); nil
    /// when that padding would be negative.
    public var strideOneDual: ConvGeometry? {
        guard strideH == 1, strideW == 1, dilationH == 1, dilationW == 1,
              padTop < kernelH, padBottom < kernelH, padLeft < kernelW, padRight < kernelW else { return nil }
        var dual = ConvGeometry(kernel: (kernelH, kernelW), stride: (1, 1),
                                padding: (kernelH - 1 - padTop, kernelW - 1 - padLeft, kernelH - 1 - padBottom, kernelW - 1 - padRight))
        dual.channelsLast = channelsLast
        return dual
    }

    /// The same geometry with `channelsLast` set to `on`.
    public func withChannelsLast(_ on: Bool) -> ConvGeometry {
        var g = self
        g.channelsLast = on
        return g
    }

    /// Images, channels, height and width of an image tensor's `shape` in this geometry's layout.
    public func dims(_ shape: [Int]) -> (n: Int, c: Int, h: Int, w: Int) {
        channelsLast ? (shape[0], shape[3], shape[1], shape[2]) : (shape[0], shape[1], shape[2], shape[3])
    }

    /// Height and width of an image tensor's `shape` in this geometry's layout.
    public func imageSize(_ shape: [Int]) -> (Int, Int) {
        let d = dims(shape)
        return (d.h, d.w)
    }

    /// The shape of `n` images of `c` channels and `h × w` pixels in this geometry's layout.
    public func shape(n: Int, c: Int, h: Int, w: Int) -> [Int] {
        channelsLast ? [n, h, w, c] : [n, c, h, w]
    }

    /// Whether the kernel covers the whole unpadded `h × w` image, for a 1×1 output: the
    /// convolution is then a matrix product on flattened images.
    public func coversWholeImage(_ h: Int, _ w: Int) -> Bool {
        kernelH == h && kernelW == w && dilationH == 1 && dilationW == 1 && [padTop, padLeft, padBottom, padRight].allSatisfy { $0 == 0 }
    }

    /// The shape [1, C, 1, 1] or [1, 1, 1, C] a per-channel vector broadcasts in.
    public var channelShape: [Int] { channelsLast ? [1, 1, 1, -1] : [1, -1, 1, 1] }

    /// Small-image size for a big-image size (conv2d's output size).
    public func smallSize(big h: Int, _ w: Int) -> (Int, Int) {
        let eh = dilationH * (kernelH - 1) + 1, ew = dilationW * (kernelW - 1) + 1
        return ((h + padTop + padBottom - eh) / strideH + 1, (w + padLeft + padRight - ew) / strideW + 1)
    }

    /// Smallest big-image size that maps to `small` (convTranspose2d's output without output padding).
    public func bigSize(small h: Int, _ w: Int) -> (Int, Int) {
        ((h - 1) * strideH - padTop - padBottom + dilationH * (kernelH - 1) + 1,
         (w - 1) * strideW - padLeft - padRight + dilationW * (kernelW - 1) + 1)
    }
}

extension Kernels {
    /// cols[(c·kh + i)·kw + j, colOffset + oh·Wo + ow] = x[c, oh·sh − pt + i·dh, ow·sw − pl + j·dw] (0 outside).
    /// `ldc` is the row length of `cols`, so several images can sit side by side.
    static func im2col(_ x: UnsafePointer<Float>, channels: Int, height: Int, width: Int, _ g: ConvGeometry,
                       outH: Int, outW: Int, _ cols: UnsafeMutablePointer<Float>, ldc: Int) {
        let kk = g.kernelH * g.kernelW
        Parallel.forChunks(channels * kk, grain: max(1, 4096 / max(outH * outW, 1))) { r in
            for row in r {
                let c = row / kk, i = (row % kk) / g.kernelW, j = row % g.kernelW
                let src = x + c * height * width
                let dst = cols + row * ldc
                let colOff = j * g.dilationW - g.padLeft
                // Range of ow whose input column lies inside the image.
                let owLo = colOff >= 0 ? 0 : min(outW, (-colOff + g.strideW - 1) / g.strideW)
                let owHi = max(owLo, min(outW, (width - 1 - colOff) >= 0 ? (width - 1 - colOff) / g.strideW + 1 : 0))
                for oh in 0..<outH {
                    let ih = oh * g.strideH - g.padTop + i * g.dilationH
                    let d = dst + oh * outW
                    if ih < 0 || ih >= height {
                        d.update(repeating: 0, count: outW)
                        continue
                    }
                    let s = src + ih * width + colOff
                    if owLo > 0 { d.update(repeating: 0, count: owLo) }
                    if g.strideW == 1 {
                        (d + owLo).update(from: s + owLo, count: owHi - owLo)
                    } else {
                        var ow = owLo
                        while ow < owHi { d[ow] = s[ow * g.strideW]; ow += 1 }
                    }
                    if owHi < outW { (d + owHi).update(repeating: 0, count: outW - owHi) }
                }
            }
        }
    }

    /// The adjoint of `im2col`: adds each column entry back into the image (which it overwrites
    /// first). Channels are independent, so they are split across threads.
    static func col2im(_ cols: UnsafePointer<Float>, ldc: Int, channels: Int, height: Int, width: Int, _ g: ConvGeometry,
                       outH: Int, outW: Int, _ x: UnsafeMutablePointer<Float>) {
        let kk = g.kernelH * g.kernelW
        Parallel.forChunks(channels, grain: max(1, 8192 / max(kk * outH * outW, 1))) { r in
            for c in r {
                let dstImage = x + c * height * width
                dstImage.update(repeating: 0, count: height * width)
                for i in 0..<g.kernelH {
                    for j in 0..<g.kernelW {
                        let row = (c * g.kernelH + i) * g.kernelW + j
                        let src = cols + row * ldc
                        let colOff = j * g.dilationW - g.padLeft
                        let owLo = colOff >= 0 ? 0 : min(outW, (-colOff + g.strideW - 1) / g.strideW)
                        let owHi = max(owLo, min(outW, (width - 1 - colOff) >= 0 ? (width - 1 - colOff) / g.strideW + 1 : 0))
                        for oh in 0..<outH {
                            let ih = oh * g.strideH - g.padTop + i * g.dilationH
                            if ih < 0 || ih >= height { continue }
                            let d = dstImage + ih * width + colOff
                            let s = src + oh * outW
                            if g.strideW == 1 {
                                addInPlace(d + owLo, s + owLo, owHi - owLo)
                            } else {
                                var ow = owLo
                                while ow < owHi { d[ow * g.strideW] += s[ow]; ow += 1 }
                            }
                        }
                    }
                }
            }
        }
    }
}
