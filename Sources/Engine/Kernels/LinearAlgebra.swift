#if canImport(Accelerate)
import Accelerate
#else
import CBLAS
#endif

/// Double-precision dense linear algebra for statistics (Fréchet distance and friends).
public enum LinearAlgebra {
    /// Eigenvalues (ascending) and eigenvectors (columns of a row-major n×n matrix) of a
    /// symmetric matrix, by LAPACK's dsyevd.
    public static func symmetricEigen(_ a: [Double], n: Int) -> (values: [Double], vectors: [Double]) {
        precondition(a.count == n * n, "symmetricEigen: \(a.count) values for \(n)×\(n)")
        // LAPACK is column-major; a symmetric matrix is its own transpose, and the returned
        // column-major eigenvector matrix, read row-major, is its transpose: fix that below.
        var m = a
        var w = [Double](repeating: 0, count: n)
        var nn = Int32(n), lda = Int32(max(n, 1)), info: Int32 = 0
        var lwork: Int32 = -1, liwork: Int32 = -1
        var workQuery = [Double](repeating: 0, count: 1)
        var iworkQuery = [Int32](repeating: 0, count: 1)
        let jobz: CChar = 86 /* V */, uplo: CChar = 85 /* U */
        var jz = jobz, up = uplo
        dsyevd_(&jz, &up, &nn, &m, &lda, &w, &workQuery, &lwork, &iworkQuery, &liwork, &info)
        lwork = Int32(workQuery[0]); liwork = iworkQuery[0]
        var work = [Double](repeating: 0, count: Int(lwork))
        var iwork = [Int32](repeating: 0, count: Int(liwork))
        dsyevd_(&jz, &up, &nn, &m, &lda, &w, &work, &lwork, &iwork, &liwork, &info)
        precondition(info == 0, "dsyevd failed with info \(info)")
        var vectors = [Double](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0..<n { vectors[i * n + j] = m[j * n + i] } }
        return (w, vectors)
    }

    /// Row-major C = A · B (m×k · k×n).
    public static func matmul(_ a: [Double], _ b: [Double], m: Int, k: Int, n: Int, transposeA: Bool = false) -> [Double] {
        var c = [Double](repeating: 0, count: m * n)
        cblas_dgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k),
                    1, a, Int32(transposeA ? m : k), b, Int32(n), 0, &c, Int32(n))
        return c
    }

    /// The symmetric positive semi-definite square root (negative eigenvalues, from rounding,
    /// count as zero).
    public static func sqrtPSD(_ a: [Double], n: Int) -> [Double] {
        let (w, v) = symmetricEigen(a, n: n)
        var scaled = v
        for i in 0..<n { for j in 0..<n { scaled[i * n + j] *= max(w[j], 0).squareRoot() } }
        // V diag(√w) Vᵀ
        var out = [Double](repeating: 0, count: n * n)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(n), Int32(n), 1, scaled, Int32(n), v, Int32(n), 0, &out, Int32(n))
        return out
    }
}
