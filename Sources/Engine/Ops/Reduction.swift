extension Tensor {
    func normalizedAxes(_ axes: [Int]?) -> [Int] {
        guard let axes else { return Array(0..<rank) }
        var a = axes.map { Shape.axis($0, rank: rank) }
        a.sort()
        for k in a.indices.dropFirst() { precondition(a[k] != a[k - 1], "repeated axis in \(axes)") }
        return a
    }

    static func reducedShape(_ shape: [Int], _ axes: [Int], keepDims: Bool) -> [Int] {
        var out: [Int] = []
        for d in 0..<shape.count {
            if axes.contains(d) { if keepDims { out.append(1) } } else { out.append(shape[d]) }
        }
        return out
    }

    /// Applies a [outer, n, inner] middle-axis kernel once per run of adjacent axes, innermost
    /// first. Adjacent axes are reduced as one (H and W of an NCHW tensor are one axis of H·W):
    /// a 14-wide row alone is too short for a vector loop.
    func reduceRaw(_ axes: [Int], _ kernel: (UnsafePointer<Float>, Int, Int, Int, UnsafeMutablePointer<Float>) -> Void) -> Tensor {
        var runs: [ClosedRange<Int>] = []
        for a in axes {
            if let last = runs.last, last.upperBound + 1 == a { runs[runs.count - 1] = last.lowerBound...a }
            else { runs.append(a...a) }
        }
        var cur = self
        var shape = self.shape
        for run in runs.reversed() {
            let outer = shape[..<run.lowerBound].reduce(1, *)
            let n = shape[run].reduce(1, *)
            let inner = shape[(run.upperBound + 1)...].reduce(1, *)
            for a in run { shape[a] = 1 }
            let out = Tensor(uninitializedShape: shape)
            kernel(cur.storage.base, outer, n, inner, out.storage.base)
            cur = out
        }
        return cur
    }

    /// Sum over `axes` (all when nil).
    public func sum(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor { sum(normalized: normalizedAxes(axes), keepDims: keepDims) }

    /// `sum` over axes `normalizedAxes` already gave (mean and variance normalize once).
    func sum(normalized ax: [Int], keepDims: Bool) -> Tensor {
        // reduceRaw's result already has the kept shape (each reduced axis 1).
        let kept = reduceRaw(ax) { Kernels.sumMiddle($0, outer: $1, n: $2, inner: $3, $4) }
        let out = kept.viewing(keepDims ? kept.shape : Tensor.reducedShape(shape, ax, keepDims: false))
        return out.recorded("sum", [self], Rules.sum(shape, kept.shape))
    }
    public func sum(axis: Int, keepDims: Bool = false) -> Tensor { sum(axes: [axis], keepDims: keepDims) }

    /// `mean().item` of `count` contiguous values, without a tensor: the same sum and the same
    /// scaling, so the same bits (for a caller keeping its values in its own buffers, as
    /// `DenseGANStep`'s metrics do, where each tensor op on 64 values cost more than its work).
    public static func mean(of values: UnsafePointer<Float>, count n: Int) -> Float {
        let s = Kernels.sumContiguous(values, n)
        return AffineK(a: 1 / Float(Swift.max(n, 1)), b: 0).scalar(s)
    }

    public func mean(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor { mean(normalized: normalizedAxes(axes), keepDims: keepDims) }

    func mean(normalized ax: [Int], keepDims: Bool) -> Tensor {
        let n = ax.reduce(1) { $0 * shape[$1] }
        return sum(normalized: ax, keepDims: keepDims) * (1 / Float(Swift.max(n, 1)))
    }
    public func mean(axis: Int, keepDims: Bool = false) -> Tensor { mean(axes: [axis], keepDims: keepDims) }

    /// Maximum over `axes`; the gradient goes to the positions that hold the maximum.
    public func max(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
        let ax = normalizedAxes(axes)
        let kept = reduceRaw(ax) { Kernels.maxMiddle($0, outer: $1, n: $2, inner: $3, $4) }
        let out = kept.viewing(Tensor.reducedShape(shape, ax, keepDims: keepDims))
        return out.recorded("max", [self], Rules.max(self, kept))
    }
    public func max(axis: Int, keepDims: Bool = false) -> Tensor { max(axes: [axis], keepDims: keepDims) }
    public func min(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor { -((-self).max(axes: axes, keepDims: keepDims)) }

    /// Biased (population) variance, as batch norm normalizes with; `unbiased` divides by n − 1.
    public func variance(axes: [Int]? = nil, keepDims: Bool = false, unbiased: Bool = false) -> Tensor {
        let ax = normalizedAxes(axes)
        let n = ax.reduce(1) { $0 * shape[$1] }
        let centered = self - mean(normalized: ax, keepDims: true)
        let ss = centered.square().sum(normalized: ax, keepDims: keepDims)
        return ss * (1 / Float(Swift.max(unbiased ? n - 1 : n, 1)))
    }

    /// Mean and biased variance over `axes` with kept dimensions: the statistics batch norm needs.
    public func moments(axes: [Int]) -> (mean: Tensor, variance: Tensor) {
        let ax = normalizedAxes(axes)
        let m = mean(normalized: ax, keepDims: true)
        let v = (self - m).square().mean(normalized: ax, keepDims: true)
        return (m, v)
    }

    /// log Σ exp over `axis`, shifted by the (constant) maximum for stability.
    public func logSumExp(axis: Int, keepDims: Bool = false) -> Tensor {
        let m = detached().max(axis: axis, keepDims: true)
        let finiteM = Tensor.select(m.compared(.equal, Float.infinity) + m.compared(.equal, -Float.infinity), Tensor(scalar: 0), m)
        let s = (self - finiteM).exp().sum(axis: axis, keepDims: true).log() + finiteM
        return keepDims ? s : s.squeezed(axis: axis)
    }

    public func logSoftmax(axis: Int = -1) -> Tensor { self - logSumExp(axis: axis, keepDims: true) }
    public func softmax(axis: Int = -1) -> Tensor { logSoftmax(axis: axis).exp() }

    /// Sums broadcast dimensions away so the result has `target` shape (the adjoint of `expand`).
    public func sumTo(_ target: [Int]) -> Tensor {
        if shape == target { return self }
        let lead = rank - target.count
        precondition(lead >= 0, "cannot sum shape \(shape) to \(target)")
        var axes = Array(0..<lead)
        for d in 0..<target.count where target[d] == 1 && shape[lead + d] != 1 { axes.append(lead + d) }
        return sum(axes: axes, keepDims: true).reshaped(target)
    }
}
