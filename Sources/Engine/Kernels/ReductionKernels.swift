extension Kernels {
    /// Sums a tensor viewed as [outer, n, inner] over its middle dimension into [outer, inner].
    static func sumMiddle(_ x: UnsafePointer<Float>, outer: Int, n: Int, inner: Int, _ out: UnsafeMutablePointer<Float>) {
        if inner == 1 {
            Parallel.forChunks(outer, grain: max(1, (1 << 15) / max(n, 1))) { r in
                for o in r { out[o] = sumContiguous(x + o * n, n) }
            }
            return
        }
        // Split the columns of each outer slab (so every thread streams whole rows of its own).
        Parallel.forChunks(inner, grain: max(1, (1 << 15) / max(n * outer, 1))) { cols in
            for o in 0..<outer {
                let dst = out + o * inner + cols.lowerBound
                let src = x + o * n * inner + cols.lowerBound
                if n == 0 { dst.update(repeating: 0, count: cols.count); continue }
                dst.update(from: src, count: cols.count)
                for k in 1..<n { addInPlace(dst, src + k * inner, cols.count) }
            }
        }
    }

    /// Maximum over the middle dimension of [outer, n, inner].
    static func maxMiddle(_ x: UnsafePointer<Float>, outer: Int, n: Int, inner: Int, _ out: UnsafeMutablePointer<Float>) {
        for o in 0..<outer {
            let dst = out + o * inner
            dst.update(from: x + o * n * inner, count: inner)
            for k in 1..<max(n, 1) {
                let src = x + (o * n + k) * inner
                for i in 0..<inner where src[i] > dst[i] || src[i].isNaN { dst[i] = src[i] }
            }
        }
    }

    @inline(__always)
    static func sumContiguous(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = Vec()
        var i = 0
        while i + Vec.scalarCount <= n {
            acc += UnsafeRawPointer(x + i).loadUnaligned(as: Vec.self)
            i += Vec.scalarCount
        }
        var s = acc.sum()
        while i < n { s += x[i]; i += 1 }
        return s
    }

    @inline(__always)
    static func addInPlace(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ n: Int) {
        var i = 0
        while i + Vec.scalarCount <= n {
            let v = UnsafeRawPointer(dst + i).loadUnaligned(as: Vec.self) + UnsafeRawPointer(src + i).loadUnaligned(as: Vec.self)
            UnsafeMutableRawPointer(dst + i).storeBytes(of: v, as: Vec.self)
            i += Vec.scalarCount
        }
        while i < n { dst[i] += src[i]; i += 1 }
    }
}

extension Kernels {
    /// True when no element is NaN or ±Inf: x − x is 0 for finite x and NaN otherwise, so
    /// accumulators of those differences answer for the whole buffer. Four of them, because one
    /// makes every add wait for the previous one (the check ran at a quarter of memory speed).
    static func allFinite(_ x: UnsafePointer<Float>, _ n: Int) -> Bool {
        var (a0, a1, a2, a3) = (Vec(), Vec(), Vec(), Vec())
        let w = Vec.scalarCount
        var i = 0
        @inline(__always) func diff(_ k: Int) -> Vec {
            let v = UnsafeRawPointer(x + k).loadUnaligned(as: Vec.self)
            return v - v
        }
        while i + 4 * w <= n {
            a0 += diff(i); a1 += diff(i + w); a2 += diff(i + 2 * w); a3 += diff(i + 3 * w)
            i += 4 * w
        }
        while i + w <= n { a0 += diff(i); i += w }
        var s = ((a0 + a1) + (a2 + a3)).sum()
        while i < n { s += x[i] - x[i]; i += 1 }
        return s == 0
    }
}

extension Tensor {
    /// True when every element is finite (no NaN, no ±Inf); divergence checks run this on
    /// every weight and gradient each step, so it is one vectorized pass.
    public var isAllFinite: Bool {
        withUnsafeBufferPointer { Kernels.allFinite($0.baseAddress!, $0.count) }
    }
}
