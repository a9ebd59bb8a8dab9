extension Tensor {
    /// Non-overlapping average pooling of NCHW input (H and W divisible by `size`).
    /// Written as reshape + mean, so its gradients of every order come for free.
    public func avgPool2d(_ size: Int = 2) -> Tensor {
        precondition(rank == 4 && shape[2] % size == 0 && shape[3] % size == 0,
                     "avgPool2d(\(size)) needs NCHW with H, W divisible by \(size), got \(shape)")
        return reshaped([shape[0], shape[1], shape[2] / size, size, shape[3] / size, size]).mean(axes: [3, 5])
    }

    /// Non-overlapping max pooling of NCHW input (H and W divisible by `size`). Records where
    /// each maximum came from: the gradient is scattered back there (`scatterFlat`), and that
    /// scatter's own gradient is the matching gather (`gatherFlat`), so every order works.
    public func maxPool2d(_ size: Int = 2) -> Tensor {
        precondition(rank == 4 && shape[2] % size == 0 && shape[3] % size == 0,
                     "maxPool2d(\(size)) needs NCHW with H, W divisible by \(size), got \(shape)")
        // With no graph to record (evaluation, sampling) only the values are needed.
        if size == 2 && !(GradMode.isEnabled && node != nil) { return maxPool2x2Values() }
        let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
        let (oh, ow) = (h / size, w / size)
        let out = Tensor(uninitializedShape: [n, c, oh, ow])
        // Every element is written below, so the indices need no zeroing first.
        let argmax = [Int32](unsafeUninitializedCapacity: out.count) { idx, initialized in
            let ip = idx.baseAddress!
            let src = storage.base, dst = out.storage.base
            Parallel.forChunks(n * c, grain: Swift.max(1, 8192 / Swift.max(h * w, 1))) { r in
                for plane in r {
                    let base = plane * h * w
                    for i in 0..<oh {
                        for j in 0..<ow {
                            let o = (plane * oh + i) * ow + j
                            let corner = base + i * size * w + j * size
                            let at = size == 2 ? Self.argmax2x2(src, corner, w) : Self.argmaxWindow(src, corner, w, size)
                            dst[o] = src[at]
                            ip[o] = Int32(at)
                        }
                    }
                }
            }
            initialized = out.count
        }
        let positions = IndexMap(argmax)
        return out.recorded("maxPool2d", [self], Rules.gatherFlat(positions, shape))
    }

    /// `maxPool2d(2)`'s values without the positions, eight windows at a time: each row's pairs,
    /// then the two rows, each max keeping the left operand unless it is smaller — the first
    /// largest in row order, as `argmax2x2` picks (which also decides windows holding a NaN).
    func maxPool2x2Values() -> Tensor {
        let (planes, h, w) = (shape[0] * shape[1], shape[2], shape[3])
        let ow = w / 2
        let out = Tensor(uninitializedShape: [shape[0], shape[1], h / 2, ow])
        let src = storage.base, dst = out.storage.base
        @inline(__always) func larger(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { a.replacing(with: b, where: a .< b) }
        Parallel.forChunks(planes * (h / 2), grain: Swift.max(1, 8192 / Swift.max(2 * w, 1))) { rows in
            for r in rows {
                let top = src + 2 * r * w, bottom = top + w, o = dst + r * ow
                var j = 0
                while j + 16 <= w {
                    let t = UnsafeRawPointer(top + j).loadUnaligned(as: SIMD16<Float>.self)
                    let b = UnsafeRawPointer(bottom + j).loadUnaligned(as: SIMD16<Float>.self)
                    guard !any(t .!= t) && !any(b .!= b) else { break }
                    let m = larger(larger(t.evenHalf, t.oddHalf), larger(b.evenHalf, b.oddHalf))
                    UnsafeMutableRawPointer(o + j / 2).storeBytes(of: m, as: SIMD8<Float>.self)
                    j += 16
                }
                while j < w {
                    o[j / 2] = src[Self.argmax2x2(src, 2 * r * w + j, w)]
                    j += 2
                }
            }
        }
        return out
    }

    /// Where the maximum of the `size` × `size` window at `corner` is: the first largest in row
    /// order, or the first NaN (which then is the window's value, as in PyTorch).
    @inline(__always)
    static func argmaxWindow(_ src: UnsafeMutablePointer<Float>, _ corner: Int, _ w: Int, _ size: Int) -> Int {
        var at = corner
        for a in 0..<size {
            for b in 0..<size {
                let k = corner + a * w + b
                if src[k].isNaN { return k }
                if src[k] > src[at] { at = k }
            }
        }
        return at
    }

    /// `argmaxWindow` for 2 × 2, without loops: LeNet's pools (7 % of `gan classifier train`'s
    /// samples went to the general loop).
    @inline(__always)
    static func argmax2x2(_ src: UnsafeMutablePointer<Float>, _ corner: Int, _ w: Int) -> Int {
        let a = src[corner], b = src[corner + 1], c = src[corner + w], d = src[corner + w + 1]
        // x == x is false only for NaN: the rare window with one takes the general path.
        guard a == a && b == b && c == c && d == d else { return argmaxWindow(src, corner, w, 2) }
        var at = corner, best = a
        if b > best { at = corner + 1; best = b }
        if c > best { at = corner + w; best = c }
        if d > best { at = corner + w + 1 }
        return at
    }

    /// out[k] = self.flat[positions[k]], shaped `outShape`.
    func gatherFlat(_ positions: IndexMap, _ outShape: [Int]) -> Tensor {
        precondition(positions.upperBound <= count && positions.indices.count == Shape.count(outShape), "gatherFlat: positions do not fit")
        let out = Tensor(uninitializedShape: outShape)
        let src = storage.base, dst = out.storage.base
        positions.indices.withUnsafeBufferPointer { p in
            for k in 0..<p.count { dst[k] = src[Int(p[k])] }
        }
        return out.recorded("gatherFlat", [self], Rules.gatherFlat(positions, shape))
    }

    /// A zero tensor of `outShape` with out.flat[positions[k]] += self.flat[k].
    func scatterFlat(_ positions: IndexMap, _ outShape: [Int]) -> Tensor {
        precondition(positions.upperBound <= Shape.count(outShape) && positions.indices.count == count, "scatterFlat: positions do not fit")
        let out = Tensor(shape: outShape, repeating: 0)
        let src = storage.base, dst = out.storage.base
        positions.indices.withUnsafeBufferPointer { p in
            for k in 0..<p.count { dst[Int(p[k])] += src[k] }
        }
        return out.recorded("scatterFlat", [self], Rules.scatterFlat(positions, shape))
    }
}

/// Flat element positions shared by a gather and its adjoint scatter.
final class IndexMap {
    let indices: [Int32]
    /// One past the largest position, checked against every tensor the map is applied to.
    let upperBound: Int
    init(_ indices: [Int32]) {
        self.indices = indices
        upperBound = Int(indices.max() ?? -1) + 1
    }
}
