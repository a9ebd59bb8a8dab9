extension Tensor {
    /// Rows `indices` of a 2-D (or higher) tensor along axis 0: embedding lookup.
    public func indexSelect(_ indices: [Int]) -> Tensor {
        precondition(rank >= 1, "indexSelect needs at least one dimension")
        let rowSize = count / Swift.max(shape[0], 1)
        for i in indices { precondition(i >= 0 && i < shape[0], "index \(i) out of range 0..<\(shape[0])") }
        let out = Tensor(uninitializedShape: [indices.count] + shape.dropFirst())
        for (r, i) in indices.enumerated() {
            (out.storage.base + r * rowSize).update(from: storage.base + i * rowSize, count: rowSize)
        }
        return out.recorded("indexSelect", [self], Rules.indexSelect(shape, indices))
    }

    /// A zero tensor of `rows` rows with row `indices[r]` += self[r]: the adjoint of `indexSelect`.
    public func indexAdd(rows: Int, _ indices: [Int]) -> Tensor {
        precondition(shape[0] == indices.count, "indexAdd: \(shape[0]) rows for \(indices.count) indices")
        let rowSize = count / Swift.max(shape[0], 1)
        let out = Tensor(shape: [rows] + shape.dropFirst(), repeating: 0)
        for (r, i) in indices.enumerated() {
            precondition(i >= 0 && i < rows, "index \(i) out of range 0..<\(rows)")
            Kernels.addInPlace(out.storage.base + i * rowSize, storage.base + r * rowSize, rowSize)
        }
        return out.recorded("indexAdd", [self], Rules.indexAdd(indices))
    }

    /// One-hot rows of length `classes` (a constant).
    public static func oneHot(_ labels: [Int], classes: Int) -> Tensor {
        var t = Tensor(shape: [labels.count, classes], repeating: 0)
        t.withUnsafeMutableBufferPointer { p in
            for (r, l) in labels.enumerated() {
                precondition(l >= 0 && l < classes, "label \(l) out of range 0..<\(classes)")
                p[r * classes + l] = 1
            }
        }
        return t
    }

    /// Elements picked along `axis` 1 of a 2-D tensor: out[r] = self[r, indices[r]].
    public func gatherColumns(_ indices: [Int]) -> Tensor {
        precondition(rank == 2 && shape[0] == indices.count, "gatherColumns needs [N, C] and N indices")
        return (self * Tensor.oneHot(indices, classes: shape[1])).sum(axis: 1)
    }
}

extension Tensor {
    /// Inverted dropout: zeroes each element with probability `p` and scales the rest by 1/(1−p).
    /// The mask is a constant; gradients pass through it.
    public func dropout(_ p: Float, generator: inout RandomGenerator) -> Tensor {
        precondition(p >= 0 && p < 1, "dropout probability must be in [0, 1), got \(p)")
        if p == 0 || count == 0 { return self }
        let keep = 1 / (1 - p)
        var mask = Tensor(uninitializedShape: shape)
        // One pass from the random words to the mask and the product where AVX-512 allows;
        // either way the same values as the three passes below, recorded as the same product.
        if RandomGenerator.fillsDropoutInOnePass {
            let out = Tensor(uninitializedShape: shape)
            withExtendedLifetime(self) {
                generator.fillDropout(storage.base, into: out.storage.base, mask: mask.storage.buffer, p: p, keep: keep)
            }
            return out.recorded("mul", [self, mask], Rules.mul(self, mask))
        }
        generator.fillUniform(mask.storage.buffer)
        mask = mask.mapped(DropoutMaskK(p: p, scale: keep))
        return self * mask
    }
}

struct DropoutMaskK: UnaryKernel {
    let p: Float, scale: Float
    @inline(__always) func scalar(_ u: Float) -> Float { u >= p ? scale : 0 }
    @inline(__always) func vector(_ u: Vec) -> Vec { Vec(repeating: 0).replacing(with: scale, where: u .>= p) }
}
