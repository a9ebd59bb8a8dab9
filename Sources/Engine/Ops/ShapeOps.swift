extension Tensor {
    /// Same elements, new shape; one dimension may be −1.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var s = newShape
        if let i = s.firstIndex(of: -1) {
            let known = s.enumerated().filter { $0.offset != i }.reduce(1) { $0 * $1.element }
            precondition(known > 0 && count % known == 0, "cannot reshape \(shape) to \(newShape)")
            s[i] = count / known
        }
        precondition(Shape.count(s) == count, "cannot reshape \(shape) (\(count) elements) to \(newShape)")
        if s == shape { return self }
        return viewing(s).recorded("reshape", [self], Rules.reshape(shape))
    }

    /// Keeps dimensions before `startAxis` and merges the rest (PyTorch's `nn.Flatten`).
    public func flattened(startAxis: Int = 1) -> Tensor {
        let a = Shape.axis(startAxis, rank: rank)
        return reshaped(Array(shape[..<a]) + [Shape.count(Array(shape[a...]))])
    }

    public func unsqueezed(axis: Int) -> Tensor {
        let a = axis < 0 ? axis + rank + 1 : axis
        var s = shape
        s.insert(1, at: a)
        return reshaped(s)
    }

    public func squeezed(axis: Int) -> Tensor {
        let a = Shape.axis(axis, rank: rank)
        precondition(shape[a] == 1, "cannot squeeze axis \(axis) of size \(shape[a])")
        var s = shape
        s.remove(at: a)
        return reshaped(s)
    }

    /// NCHW images as channels-last [N, H, W, C], recorded; one channel is a reshape (the same memory).
    public func toChannelsLast() -> Tensor {
        precondition(rank == 4, "toChannelsLast needs [N, C, H, W], got \(shape)")
        return shape[1] == 1 ? reshaped([shape[0], shape[2], shape[3], 1]) : permuted([0, 2, 3, 1])
    }

    /// Channels-last [N, H, W, C] images as NCHW, recorded; `toChannelsLast`'s inverse.
    public func toChannelsFirst() -> Tensor {
        precondition(rank == 4, "toChannelsFirst needs [N, H, W, C], got \(shape)")
        return shape[3] == 1 ? reshaped([shape[0], 1, shape[1], shape[2]]) : permuted([0, 3, 1, 2])
    }

    /// Reorders dimensions: result dimension i is input dimension `order[i]`.
    public func permuted(_ order: [Int]) -> Tensor {
        precondition(order.sorted() == Array(0..<rank), "\(order) is not a permutation of \(rank) axes")
        if order == Array(0..<rank) { return self }
        let inStrides = Shape.strides(shape)
        let outShape = order.map { shape[$0] }
        let out = Tensor(uninitializedShape: outShape)
        Kernels.copyStrided(storage.base, order.map { inStrides[$0] }, out.storage.base, Shape.strides(outShape), outShape)
        return out.recorded("permute", [self], Rules.permute(order))
    }

    public func transposed(_ a: Int = -2, _ b: Int = -1) -> Tensor {
        var order = Array(0..<rank)
        order.swapAt(Shape.axis(a, rank: rank), Shape.axis(b, rank: rank))
        return permuted(order)
    }

    /// Broadcasts to `newShape` (materialized).
    public func expanded(to newShape: [Int]) -> Tensor {
        if newShape == shape { return self }
        precondition(Shape.broadcast(shape, newShape) == newShape, "cannot expand \(shape) to \(newShape)")
        return expandedConstant(newShape).recorded("expand", [self], Rules.expand(shape))
    }

    /// The block `ranges[d]` of every dimension (missing trailing ranges take everything).
    public func sliced(_ ranges: [Range<Int>]) -> Tensor {
        precondition(ranges.count <= rank, "\(ranges.count) ranges for rank \(rank)")
        let full = (0..<rank).map { d in d < ranges.count ? ranges[d] : 0..<shape[d] }
        for d in 0..<rank {
            precondition(full[d].lowerBound >= 0 && full[d].upperBound <= shape[d],
                         "slice \(full[d]) out of bounds for dimension \(d) of size \(shape[d])")
        }
        let outShape = full.map(\.count)
        if outShape == shape { return self }
        let strides = Shape.strides(shape)
        let offset = (0..<rank).reduce(0) { $0 + full[$1].lowerBound * strides[$1] }
        let out = Tensor(uninitializedShape: outShape)
        Kernels.copyStrided(storage.base + offset, strides, out.storage.base, Shape.strides(outShape), outShape)
        return out.recorded("slice", [self], Rules.slice(shape, full))
    }

    /// Slice of one axis.
    public func sliced(axis: Int, _ range: Range<Int>) -> Tensor {
        let a = Shape.axis(axis, rank: rank)
        var ranges = shape.map { 0..<$0 }
        ranges[a] = range
        return sliced(ranges)
    }

    /// Zero padding: `widths[d] = (before, after)` for each dimension (missing ones get none).
    public func padded(_ widths: [(Int, Int)], value: Float = 0) -> Tensor {
        let w = (0..<rank).map { d in d < widths.count ? widths[d] : (0, 0) }
        precondition(w.allSatisfy { $0.0 >= 0 && $0.1 >= 0 }, "padding must not be negative")
        let outShape = (0..<rank).map { shape[$0] + w[$0].0 + w[$0].1 }
        if outShape == shape { return self }
        let out = Tensor(shape: outShape, repeating: value)
        let os = Shape.strides(outShape)
        let offset = (0..<rank).reduce(0) { $0 + w[$1].0 * os[$1] }
        Kernels.copyStrided(storage.base, Shape.strides(shape), out.storage.base + offset, os, shape)
        return out.recorded("pad", [self], Rules.pad(shape, w.map { $0.0 }))
    }

    /// Joins tensors along `axis`; all other dimensions must agree.
    public static func concat(_ parts: [Tensor], axis: Int = 0) -> Tensor {
        precondition(!parts.isEmpty, "concat of no tensors")
        let r = parts[0].rank
        let a = Shape.axis(axis, rank: r)
        var outShape = parts[0].shape
        outShape[a] = 0
        for p in parts {
            precondition(p.rank == r && (0..<r).allSatisfy { $0 == a || p.shape[$0] == parts[0].shape[$0] },
                         "concat: shape \(p.shape) does not match \(parts[0].shape) off axis \(a)")
            outShape[a] += p.shape[a]
        }
        let out = Tensor(uninitializedShape: outShape)
        if a == 0 {
            // Along the first axis the parts are consecutive blocks of the output: one copy,
            // split over the threads when large. The mlp's joined real and fake batch (128 × 784):
            // 1.008–1.014× the step, three runs of `gan bench train --model mlp --alternate` with
            // a temporary switch.
            var offsets = [0]
            for p in parts { offsets.append(offsets[offsets.count - 1] + p.count) }
            let bases = parts.map { UnsafePointer($0.storage.base) }, dst = out.storage.base
            Parallel.forChunks(out.count) { r in
                for (k, base) in bases.enumerated() {
                    let lo = Swift.max(r.lowerBound, offsets[k]), hi = Swift.min(r.upperBound, offsets[k + 1])
                    if lo < hi { (dst + lo).update(from: base + (lo - offsets[k]), count: hi - lo) }
                }
            }
        } else {
            let os = Shape.strides(outShape)
            var start = 0
            for p in parts {
                Kernels.copyStrided(p.storage.base, Shape.strides(p.shape), out.storage.base + start * os[a], os, p.shape)
                start += p.shape[a]
            }
        }
        return out.recorded("concat", parts, Rules.concat(parts.map { $0.shape[a] }, axis: a))
    }

    /// Stacks equal-shaped tensors along a new axis.
    public static func stack(_ parts: [Tensor], axis: Int = 0) -> Tensor {
        concat(parts.map { $0.unsqueezed(axis: axis) }, axis: axis)
    }
}
