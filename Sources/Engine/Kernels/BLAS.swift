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
    ProductFlops.add(2 * m * n * k)
    // Large products are split over the engine's threads by rows or columns of C (OpenBLAS
    // itself runs single-threaded; see Parallel). Each part is an independent sgemm, so the
    // result does not depend on how it was split.
    let parts = Parallel.engineOwnsThreads && 2 * m * n * k >= sgemmSplitFlops ? Parallel.parts(max(m, n) / 32) : 1
    if parts > 1 {
        let byColumns = n >= m
        let total = byColumns ? n : m
        let step = ((total + parts - 1) / parts + 15) / 16 * 16
        Parallel.split(parts) { p in
            let lo = p * step, hi = min(total, lo + step)
            guard lo < hi else { return }
            if byColumns {
                cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                            Int32(m), Int32(hi - lo), Int32(k), alpha, a, Int32(lda), transB ? b + lo * ldb : b + lo, Int32(ldb),
                            beta, c + lo, Int32(ldc))
            } else {
                cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                            Int32(hi - lo), Int32(n), Int32(k), alpha, transA ? a + lo : a + lo * lda, Int32(lda), b, Int32(ldb),
                            beta, c + lo * ldc, Int32(ldc))
            }
        }
        return
    }
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// Below this many flops a GEMM runs on one thread: handing half of it to another costs more.
let sgemmSplitFlops = ProcessInfo.processInfo.environment["GAN_SGEMM_SPLIT_FLOPS"].flatMap { Int($0) } ?? 2_000_000

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

    /// Sets the number of threads: the engine's (OpenBLAS then runs single-threaded inside them),
    /// or with `GAN_THREADING=blas` OpenBLAS's own and the engine's elementwise ones.
    public static func setThreads(_ n: Int) {
        #if !canImport(Accelerate)
        openblas_set_num_threads(Parallel.engineOwnsThreads ? 1 : Int32(n))
        #endif
        Parallel.threads = max(1, n)
    }
}

