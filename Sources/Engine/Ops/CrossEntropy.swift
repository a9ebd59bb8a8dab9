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
            for i in r {
                let lp = Swift.max(logf(p[i]), -100), l1p = Swift.max(logf(1 - p[i]), -100)
                o[i] = -(t[i] * lp + (1 - t[i]) * l1p)
            }
        }
        return out.recorded("binaryCrossEntropy", [self], Rules.binaryCrossEntropy(self, target.detached()))
    }
}
