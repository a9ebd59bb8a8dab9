extension Kernels {
    /// Sums a tensor viewed as [outer, n, inner] over its middle dimension into [outer, inner].
    static func sumMiddle(_ x: UnsafePointer<Float>, outer: Int, n: Int, inner: Int, _ out: UnsafeMutablePointer<Float>) {
        if inner == 1 {
            Parallel.forChunks(outer, grain: max(1, (1 << 15) / max(n, 1))) { r in
                for o in r { out[o] = sumContiguous(x + o * n, n) }
            }
            return
        }
        for o in 0..<outer {
            let dst = out + o * inner
            dst.update(from: x + o * n * inner, count: inner)
            for k in 1..<max(n, 1) { addInPlace(dst, x + (o * n + k) * inner, inner) }
            if n == 0 { dst.update(repeating: 0, count: inner) }
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
