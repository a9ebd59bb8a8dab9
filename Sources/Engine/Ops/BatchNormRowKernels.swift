// Batch norm's kernels for [rows, C] with the channels along each row: BatchNorm1d's [N, F] and
// channels-last images viewed as [N·H·W, C]. The vectors run across 16 channels of a row, so a
// row is a few loads whatever the image size (the NCHW kernels run along a plane, which a 7×7
// image leaves mostly as a scalar tail). Every pass streams whole rows: the threads split the
// rows, not the channels (a thread that took a block of channels read one cache line of every
// row and left the rest of it, ~3× the passes' time). Sums are taken in float over blocks of
// `rowBlock` rows, and the blocks' partial sums added in double in block order, so the results
// do not depend on the thread count.

extension Kernels {
    static let rowBlock = 64

    /// Splits the rows over the threads, for passes that write every element and sum nothing.
    @inline(__always)
    static func forRowParts(rows n: Int, c: Int, _ body: (Range<Int>) -> Void) {
        Parallel.forChunks(n, grain: Swift.max(1, (1 << 15) / Swift.max(c, 1)), body)
    }

    /// `m` per-channel sums over the rows of [n, c]: `body(rows, partial)` adds the contributions
    /// of a block of rows to partial[q · c + ch] (zeroed) in float; blocks run in parallel and are
    /// then added in double in block order. Returns the sums as partial's layout.
    @inline(__always)
    static func rowBlockSums(n: Int, c: Int, m: Int, _ body: (Range<Int>, UnsafeMutablePointer<Float>) -> Void) -> [Double] {
        let blocks = (n + rowBlock - 1) / rowBlock, width = m * c
        var total = [Double](repeating: 0, count: width)
        Scratch.with(Swift.max(blocks * width, 1)) { partials in
            Parallel.forChunks(blocks, grain: Swift.max(1, (1 << 15) / Swift.max(rowBlock * c, 1))) { range in
                for b in range {
                    let p = partials + b * width
                    p.update(repeating: 0, count: width)
                    body((b * rowBlock)..<Swift.min(n, (b + 1) * rowBlock), p)
                }
            }
            total.withUnsafeMutableBufferPointer { t in
                for b in 0..<blocks {
                    let p = partials + b * width
                    for j in 0..<width { t[j] += Double(p[j]) }
                }
            }
        }
        return total
    }

    /// For each row of `rows` in [·, c]: `vector(i, ch)` for each full group of 16 channels
    /// (i = row · c + ch, the group's first element), then `scalar(i, ch)` for the channels after
    /// the last group.
    @inline(__always)
    static func forRowChannels(_ rows: Range<Int>, _ c: Int, vector: (Int, Int) -> Void, scalar: (Int, Int) -> Void) {
        for r in rows {
            let o = r * c
            var ch = 0
            while ch + Vec.scalarCount <= c { vector(o + ch, ch); ch += Vec.scalarCount }
            while ch < c { scalar(o + ch, ch); ch += 1 }
        }
    }

    /// Mean and biased variance per channel of [n, c] rows (the variance over x − mean).
    static func rowMoments(_ x: UnsafePointer<Float>, n: Int, c: Int, mean: UnsafeMutablePointer<Float>, variance: UnsafeMutablePointer<Float>) {
        let count = Double(n)
        let sums = rowBlockSums(n: n, c: c, m: 1) { rows, acc in
            forRowChannels(rows, c, vector: { i, ch in store(load(acc + ch) + load(x + i), acc + ch) },
                           scalar: { i, ch in acc[ch] += x[i] })
        }
        for ch in 0..<c { mean[ch] = Float(sums[ch] / count) }
        let mu = UnsafePointer(mean)
        let squares = rowBlockSums(n: n, c: c, m: 1) { rows, acc in
            forRowChannels(rows, c, vector: { i, ch in let v = load(x + i) - load(mu + ch); store(load(acc + ch) + v * v, acc + ch) },
                           scalar: { i, ch in let v = x[i] - mu[ch]; acc[ch] += v * v })
        }
        for ch in 0..<c { variance[ch] = Float(squares[ch] / count) }
    }

    /// `leakyChannelSums` for [n, c] rows.
    static func rowLeakySums(_ g: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ scale: UnsafePointer<Float>, _ shift: UnsafePointer<Float>,
                             _ mean: UnsafePointer<Float>, alpha: Float, n: Int, c: Int,
                             sumG: UnsafeMutablePointer<Float>, sumGX: UnsafeMutablePointer<Float>) {
        let k = LeakyGradK(alpha: alpha)
        let sums = rowBlockSums(n: n, c: c, m: 2) { rows, acc in
            let accGX = acc + c
            forRowChannels(rows, c, vector: { i, ch in
                let xv = load(x + i)
                let gp = k.vector(load(g + i), xv * load(scale + ch) + load(shift + ch))
                store(load(acc + ch) + gp, acc + ch)
                store(load(accGX + ch) + gp * (xv - load(mean + ch)), accGX + ch)
            }, scalar: { i, ch in
                let gp = k.scalar(g[i], x[i] * scale[ch] + shift[ch])
                acc[ch] += gp
                accGX[ch] += gp * (x[i] - mean[ch])
            })
        }
        for ch in 0..<c { sumG[ch] = Float(sums[ch]); sumGX[ch] = Float(sums[c + ch]) }
    }

    /// `channelSums3` for [n, c] rows.
    static func rowSums3(_ u: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ gp: UnsafePointer<Float>, _ mean: UnsafePointer<Float>,
                         n: Int, c: Int, sumU: UnsafeMutablePointer<Float>, sumUC: UnsafeMutablePointer<Float>, sumUG: UnsafeMutablePointer<Float>) {
        let sums = rowBlockSums(n: n, c: c, m: 3) { rows, acc in
            let (a2, a3) = (acc + c, acc + 2 * c)
            forRowChannels(rows, c, vector: { i, ch in
                let uv = load(u + i)
                store(load(acc + ch) + uv, acc + ch)
                store(load(a2 + ch) + uv * (load(x + i) - load(mean + ch)), a2 + ch)
                store(load(a3 + ch) + uv * load(gp + i), a3 + ch)
            }, scalar: { i, ch in
                acc[ch] += u[i]; a2[ch] += u[i] * (x[i] - mean[ch]); a3[ch] += u[i] * gp[i]
            })
        }
        for ch in 0..<c { sumU[ch] = Float(sums[ch]); sumUC[ch] = Float(sums[c + ch]); sumUG[ch] = Float(sums[2 * c + ch]) }
    }

    /// `batchNormInputGradientPass` for [n, c] rows: dx = a · gp + b · x + d per channel.
    static func rowInputGradient(_ g: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ scale: UnsafePointer<Float>,
                                 _ shift: UnsafePointer<Float>, alpha: Float,
                                 a: UnsafePointer<Float>, b: UnsafePointer<Float>, d: UnsafePointer<Float>, n: Int, c: Int,
                                 _ dx: UnsafeMutablePointer<Float>) {
        let k = LeakyGradK(alpha: alpha)
        forRowParts(rows: n, c: c) { rows in
            forRowChannels(rows, c, vector: { i, ch in
                let xv = load(x + i)
                store(load(a + ch) * k.vector(load(g + i), xv * load(scale + ch) + load(shift + ch)) + load(b + ch) * xv + load(d + ch), dx + i)
            }, scalar: { i, ch in
                dx[i] = a[ch] * k.scalar(g[i], x[i] * scale[ch] + shift[ch]) + b[ch] * x[i] + d[ch]
            })
        }
    }

    /// `batchNormSecondPass` for [n, c] rows, its per-channel coefficients as one [7, c] block:
    /// k0, k1, k2 (of dgp), then q0 … q3 (of dx).
    static func rowSecondPass(_ u: UnsafePointer<Float>, _ gp: UnsafePointer<Float>, _ x: UnsafePointer<Float>, n: Int, c: Int,
                              coefficients f: UnsafePointer<Float>, dgp: UnsafeMutablePointer<Float>?, dx: UnsafeMutablePointer<Float>?) {
        let (k0, k1, k2) = (f, f + c, f + 2 * c), (q0, q1, q2, q3) = (f + 3 * c, f + 4 * c, f + 5 * c, f + 6 * c)
        forRowParts(rows: n, c: c) { rows in
            forRowChannels(rows, c, vector: { i, ch in
                let uv = load(u + i), xv = load(x + i)
                if let dgp { store(load(k0 + ch) * uv + load(k1 + ch) * xv + load(k2 + ch), dgp + i) }
                if let dx { store(load(q0 + ch) * uv + load(q1 + ch) * load(gp + i) + load(q2 + ch) * xv + load(q3 + ch), dx + i) }
            }, scalar: { i, ch in
                if let dgp { dgp[i] = k0[ch] * u[i] + k1[ch] * x[i] + k2[ch] }
                if let dx { dx[i] = q0[ch] * u[i] + q1[ch] * gp[i] + q2[ch] * x[i] + q3[ch] }
            })
        }
    }
}
