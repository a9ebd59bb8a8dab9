#if canImport(Accelerate)
import Accelerate
#else
import CBLAS
#endif
import CSupport
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Row-major sgemm: C = alpha · op(A) · op(B) + beta · C, with op(A) M×K and op(B) K×N.
@inline(__always)
func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
           _ a: UnsafePointer<Float>, lda: Int, _ b: UnsafePointer<Float>, ldb: Int,
           beta: Float = 0, _ c: UnsafeMutablePointer<Float>, ldc: Int) {
    if m == 0 || n == 0 { return }
    if k == 0 {
        if beta == 0 { for i in 0..<m { (c + i * ldc).update(repeating: 0, count: n) } }
        return
    }
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// What BLAS the process uses, for benchmark reports.
public enum BLASInfo {
    public static var description: String {
        #if canImport(Accelerate)
        return "Accelerate"
        #else
        let config = String(cString: openblas_get_config())
        let core = String(cString: openblas_get_corename())
        return "OpenBLAS (\(config.trimmingCharacters(in: .whitespaces))), kernel \(core)"
        #endif
    }

    public static var kernel: String {
        #if canImport(Accelerate)
        return "Accelerate"
        #else
        return String(cString: openblas_get_corename())
        #endif
    }

    /// Sets the number of BLAS threads (and of the engine's own elementwise threads).
    public static func setThreads(_ n: Int) {
        #if !canImport(Accelerate)
        openblas_set_num_threads(Int32(n))
        #endif
        Parallel.threads = max(1, n)
    }
}

