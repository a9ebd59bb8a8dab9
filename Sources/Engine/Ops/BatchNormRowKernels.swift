// Batch norm's kernels for [rows, C] with the channels along each row: BatchNorm1d's [N, F] and
// channels-last images viewed as [N·H·W, C]. The vectors run across 16 channels of a row, so a
// row is a few loads whatever the image size (the NCHW kernels run along a plane, which a 7×7
// image leaves mostly as a scalar tail). Sums are taken in float over blocks of `rowBlock` rows
// and in double across blocks; each channel block belongs to one thread, so the results do not
// depend on the thread count. Channels after the last full block of 16 go one by one.

typealias Wide = SIMD16<Double>

extension Kernels {
    static let rowBlock = 64

    @inline(__always) static func widened(_ v: Vec) -> Wide {
        var w = Wide()
        for l in 0..<Vec.scalarCount { w[l] = Double(v[l]) }
        return w
    }

    @inline(__always) static func narrowed(_ w: Wide) -> Vec {
        var v = Vec()
        for l in 0..<Vec.scalarCount { v[l] = Float(w[l]) }
        return v
    }

    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> Vec { UnsafeRawPointer(p).loadUnaligned(as: Vec.self) }
    @inline(__always) static func store(_ v: Vec, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: Vec.self) }

    /// Splits the c channels into blocks of 16 over the threads: `block(ch0)` for each full
    /// block, `single(ch)` for each channel of a last partial one.
    @inline(__always)
    static func forChannelBlocks(c: Int, rows n: Int, block: (Int) -> Void, single: (Int) -> Void) {
        let w = Vec.scalarCount
        let blocks = (c + w - 1) / w
        Parallel.forChunks(blocks, grain: Swift.max(1, (1 << 15) / Swift.max(n * w, 1))) { r in
            for b in r {
                if (b + 1) * w <= c { block(b * w) } else { for ch in (b * w)..<c { single(ch) } }
            }
        }
    }

    /// Splits the rows over the threads, for passes that write every element and sum nothing.
    @inline(__always)
    static func forRowParts(rows n: Int, c: Int, _ body: (Range<Int>) -> Void) {
        Parallel.forChunks(n, grain: Swift.max(1, (1 << 15) / Swift.max(c, 1)), body)
    }

    /// Σ over the rows of f(row offset) for one block of 16 channels: float within blocks of
    /// `rowBlock` rows, double across them.
    @inline(__always)
    static func rowSum(_ n: Int, _ c: Int, _ ch0: Int, _ f: (Int) -> Vec) -> Wide {
        var total = Wide(), r = 0
        while r < n {
            let end = Swift.min(n, r + rowBlock)
            var acc = Vec()
            for i in r..<end { acc += f(i * c + ch0) }
            total += widened(acc)
            r = end
        }
        return total
    }

    /// `rowSum` of two functions at once.
    @inline(__always)
    static func rowSum2(_ n: Int, _ c: Int, _ ch0: Int, _ f: (Int) -> (Vec, Vec)) -> (Wide, Wide) {
        var t1 = Wide(), t2 = Wide(), r = 0
        while r < n {
            let end = Swift.min(n, r + rowBlock)
            var a1 = Vec(), a2 = Vec()
            for i in r..<end { let v = f(i * c + ch0); a1 += v.0; a2 += v.1 }
            t1 += widened(a1); t2 += widened(a2)
            r = end
        }
        return (t1, t2)
    }

    /// Mean and biased variance per channel of [n, c] rows (the variance over x − mean).
    static func rowMoments(_ x: UnsafePointer<Float>, n: Int, c: Int, mean: UnsafeMutablePointer<Float>, variance: UnsafeMutablePointer<Float>) {
        let count = Double(n)
        forChannelBlocks(c: c, rows: n, block: { ch0 in
            let m = narrowed(rowSum(n, c, ch0) { load(x + $0) } / count)
            let q = rowSum(n, c, ch0) { let v = load(x + $0) - m; return v * v }
            store(m, mean + ch0)
            store(narrowed(q / count), variance + ch0)
        }, single: { ch in
            var s = 0.0
            for r in 0..<n { s += Double(x[r * c + ch]) }
            let m = Float(s / count)
            var q = 0.0
            for r in 0..<n { let v = x[r * c + ch] - m; q += Double(v * v) }
            mean[ch] = m
            variance[ch] = Float(q / count)
        })
    }

    /// `leakyChannelSums` for [n, c] rows.
    static func rowLeakySums(_ g: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ mean: UnsafePointer<Float>,
                             alpha: Float, n: Int, c: Int, sumG: UnsafeMutablePointer<Float>, sumGX: UnsafeMutablePointer<Float>) {
        let k = LeakyGradK(alpha: alpha)
        forChannelBlocks(c: c, rows: n, block: { ch0 in
            let m = load(mean + ch0)
            let (s, q) = rowSum2(n, c, ch0) { o in
                let gp = k.vector(load(g + o), load(y + o))
                return (gp, gp * (load(x + o) - m))
            }
            store(narrowed(s), sumG + ch0)
            store(narrowed(q), sumGX + ch0)
        }, single: { ch in
            var s = 0.0, q = 0.0
            for r in 0..<n {
                let i = r * c + ch
                let gp = k.scalar(g[i], y[i])
                s += Double(gp)
                q += Double(gp * (x[i] - mean[ch]))
            }
            sumG[ch] = Float(s)
            sumGX[ch] = Float(q)
        })
    }

    /// `channelSums3` for [n, c] rows.
    static func rowSums3(_ u: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ gp: UnsafePointer<Float>, _ mean: UnsafePointer<Float>,
                         n: Int, c: Int, sumU: UnsafeMutablePointer<Float>, sumUC: UnsafeMutablePointer<Float>, sumUG: UnsafeMutablePointer<Float>) {
        forChannelBlocks(c: c, rows: n, block: { ch0 in
            let m = load(mean + ch0)
            let (s1, s2) = rowSum2(n, c, ch0) { o in let uv = load(u + o); return (uv, uv * (load(x + o) - m)) }
            let s3 = rowSum(n, c, ch0) { o in load(u + o) * load(gp + o) }
            store(narrowed(s1), sumU + ch0)
            store(narrowed(s2), sumUC + ch0)
            store(narrowed(s3), sumUG + ch0)
        }, single: { ch in
            var t1 = 0.0, t2 = 0.0, t3 = 0.0
            for r in 0..<n {
                let i = r * c + ch
                t1 += Double(u[i]); t2 += Double(u[i] * (x[i] - mean[ch])); t3 += Double(u[i] * gp[i])
            }
            sumU[ch] = Float(t1); sumUC[ch] = Float(t2); sumUG[ch] = Float(t3)
        })
    }

    /// `batchNormInputGradientPass` for [n, c] rows: dx = a · gp + b · x + d per channel.
    static func rowInputGradient(_ g: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ x: UnsafePointer<Float>, alpha: Float,
                                 a: UnsafePointer<Float>, b: UnsafePointer<Float>, d: UnsafePointer<Float>, n: Int, c: Int,
                                 _ dx: UnsafeMutablePointer<Float>) {
        let k = LeakyGradK(alpha: alpha)
        let full = c / Vec.scalarCount * Vec.scalarCount
        forRowParts(rows: n, c: c) { rows in
            for r in rows {
                let o = r * c
                var ch = 0
                while ch < full {
                    let i = o + ch
                    store(load(a + ch) * k.vector(load(g + i), load(y + i)) + load(b + ch) * load(x + i) + load(d + ch), dx + i)
                    ch += Vec.scalarCount
                }
                while ch < c { let i = o + ch; dx[i] = a[ch] * k.scalar(g[i], y[i]) + b[ch] * x[i] + d[ch]; ch += 1 }
            }
        }
    }

    /// `batchNormSecondPass` for [n, c] rows; coefficients are per channel.
    static func rowSecondPass(_ u: UnsafePointer<Float>, _ gp: UnsafePointer<Float>, _ x: UnsafePointer<Float>, n: Int, c: Int,
                              k: [UnsafePointer<Float>], dgp: UnsafeMutablePointer<Float>?, q: [UnsafePointer<Float>],
                              dx: UnsafeMutablePointer<Float>?) {
        let full = c / Vec.scalarCount * Vec.scalarCount
        let (k0, k1, k2) = (k[0], k[1], k[2]), (q0, q1, q2, q3) = (q[0], q[1], q[2], q[3])
        forRowParts(rows: n, c: c) { rows in
            for r in rows {
                let o = r * c
                var ch = 0
                while ch < full {
                    let i = o + ch
                    let uv = load(u + i), xv = load(x + i)
                    if let dgp { store(load(k0 + ch) * uv + load(k1 + ch) * xv + load(k2 + ch), dgp + i) }
                    if let dx { store(load(q0 + ch) * uv + load(q1 + ch) * load(gp + i) + load(q2 + ch) * xv + load(q3 + ch), dx + i) }
                    ch += Vec.scalarCount
                }
                while ch < c {
                    let i = o + ch
                    if let dgp { dgp[i] = k0[ch] * u[i] + k1[ch] * x[i] + k2[ch] }
                    if let dx { dx[i] = q0[ch] * u[i] + q1[ch] * gp[i] + q2[ch] * x[i] + q3[ch] }
                    ch += 1
                }
            }
        }
    }
}
