#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Tensor {
    /// Elementwise binary cross-entropy of probabilities `self` against `target`, as PyTorch's
    /// `binary_cross_entropy`: −(t·max(log p, −100) + (1 − t)·max(log(1 − p), −100)).
    /// It is a primitive because its gradient must be PyTorch's (p − t) / max(p(1 − p), 1e-12):
    /// composing log and clamp would give 0 · ∞ = NaN where a sigmoid saturates to exactly 0 or 1.
    public func binaryCrossEntropy(target: Tensor) -> Tensor {
        precondition(target.shape == shape, "binaryCrossEntropy: target \(target.shape) differs from \(shape)")
        let out = Tensor(uninitializedShape: shape)
        let p = storage.base, t = target.storage.base, o = out.storage.base
        Parallel.forChunks(count) { r in
            for i in r { o[i] = Tensor.binaryCrossEntropy(p[i], t[i]) }
        }
        return out.recorded("binaryCrossEntropy", [self], Rules.binaryCrossEntropy(self, target.detached()))
    }

    @inline(__always)
    static func binaryCrossEntropy(_ p: Float, _ t: Float) -> Float {
        let lp = Swift.max(logf(p), -100), l1p = Swift.max(logf(1 - p), -100)
        return -(t * lp + (1 - t) * l1p)
    }

    /// `binaryCrossEntropy(target: full(target)).mean().item` of `count` contiguous
    /// probabilities, without tensors: the same elements, summed and scaled as `mean` does.
    public static func binaryCrossEntropyMean(of p: UnsafePointer<Float>, count n: Int, target t: Float) -> Float {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: Swift.max(n, 1)) { losses in
            for i in 0..<n { losses[i] = binaryCrossEntropy(p[i], t) }
            return mean(of: losses.baseAddress!, count: n)
        }
    }
}
