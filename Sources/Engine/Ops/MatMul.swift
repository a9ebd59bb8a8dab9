extension Tensor {
    /// op(a) · op(b) for 2-D tensors, or batch by batch for 3-D tensors with equal batch size.
    /// The transpose flags go straight to sgemm, so backward rules never materialize a transpose.
    public static func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) -> Tensor {
        precondition((a.rank == 2 && b.rank == 2) || (a.rank == 3 && b.rank == 3 && a.shape[0] == b.shape[0]),
                     "matmul needs two 2-D or two 3-D tensors with equal batch, got \(a.shape) and \(b.shape)")
        let batch = a.rank == 3 ? a.shape[0] : 1
        let (ar, ac) = (a.shape[a.rank - 2], a.shape[a.rank - 1])
        let (br, bc) = (b.shape[b.rank - 2], b.shape[b.rank - 1])
        let (m, k) = transposeA ? (ac, ar) : (ar, ac)
        let (k2, n) = transposeB ? (bc, br) : (br, bc)
        precondition(k == k2, "matmul inner sizes differ: \(a.shape)\(transposeA ? "ᵀ" : "") · \(b.shape)\(transposeB ? "ᵀ" : "")")
        let outShape = a.rank == 3 ? [batch, m, n] : [m, n]
        let out = Tensor(uninitializedShape: outShape)
        for i in 0..<batch {
            sgemm(transA: transposeA, transB: transposeB, m: m, n: n, k: k,
                  a.storage.base + i * ar * ac, lda: ac, b.storage.base + i * br * bc, ldb: bc,
                  out.storage.base + i * m * n, ldc: n)
        }
        return out.recorded("matmul", [a, b], Rules.matmul(a, b, transposeA, transposeB))
    }

    public func matmul(_ other: Tensor) -> Tensor { Tensor.matmul(self, other) }

    /// x · Wᵀ + b with PyTorch's weight layout [out, in].
    public static func linear(_ x: Tensor, weight: Tensor, bias: Tensor? = nil) -> Tensor {
        let y = matmul(x, weight, transposeB: true)
        guard let bias else { return y }
        return y + bias
    }
}
