extension Kernels {
    /// dst[idx·dstStrides] = src[idx·srcStrides] for every index of `shape`. Covers permute,
    /// slice, pad, concat and broadcast (stride 0) with one odometer loop.
    static func copyStrided(_ src: UnsafePointer<Float>, _ srcStrides: [Int],
                            _ dst: UnsafeMutablePointer<Float>, _ dstStrides: [Int], _ shape: [Int]) {
        let total = Shape.count(shape)
        if total == 0 { return }
        // Merge dimensions that are contiguous in both source and destination.
        var dims: [Int] = [], ss: [Int] = [], ds: [Int] = []
        for d in 0..<shape.count where shape[d] != 1 {
            if let last = dims.last, ss.last! == srcStrides[d] * shape[d], ds.last! == dstStrides[d] * shape[d] {
                dims[dims.count - 1] = last * shape[d]; ss[ss.count - 1] = srcStrides[d]; ds[ds.count - 1] = dstStrides[d]
            } else {
                dims.append(shape[d]); ss.append(srcStrides[d]); ds.append(dstStrides[d])
            }
        }
        if dims.isEmpty { dst[0] = src[0]; return }
        let inner = dims.last!, si = ss.last!, di = ds.last!
        let outer = Array(dims.dropLast())
        let rows = total / inner
        Parallel.forChunks(rows, grain: max(1, (1 << 15) / inner)) { r in
            var idx = [Int](repeating: 0, count: outer.count)
            var rem = r.lowerBound
            for d in stride(from: outer.count - 1, through: 0, by: -1) { idx[d] = rem % outer[d]; rem /= outer[d] }
            var so = 0, dOff = 0
            for d in 0..<outer.count { so += idx[d] * ss[d]; dOff += idx[d] * ds[d] }
            for _ in r {
                let s = src + so, t = dst + dOff
                if si == 1 && di == 1 {
                    t.update(from: s, count: inner)
                } else if si == 0 && di == 1 {
                    t.update(repeating: s[0], count: inner)
                } else {
                    for i in 0..<inner { t[i * di] = s[i * si] }
                }
                var d = outer.count - 1
                while d >= 0 {
                    idx[d] += 1; so += ss[d]; dOff += ds[d]
                    if idx[d] < outer[d] { break }
                    so -= ss[d] * outer[d]; dOff -= ds[d] * outer[d]; idx[d] = 0
                    d -= 1
                }
            }
        }
    }
}
