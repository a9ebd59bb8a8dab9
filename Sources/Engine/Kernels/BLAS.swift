#if canImport(Accelerate)
import Accelerate
#else
import CBLAS
#endif
import CSupport
#if canImport(DNNLConvolution)
import DNNLConvolution
#endif
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Row-major sgemm: C = alpha · op(A) · op(B) + beta · C, with op(A) M×K and op(B) K×N.
@inline(__always)
func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
           _ a: UnsafePointer<Float>, lda: Int, _ b: UnsafePointer<Float>, ldb: Int,
           beta: Float = 0, _ c: UnsafeMutablePointer<Float>, ldc: Int) {
    sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a, lda: lda, b, ldb: ldb, beta: beta, c, ldc: ldc) { _, _ in }
}

/// sgemm, then `epilogue(rows, columns)` on each block of C as soon as its thread has written
/// it (the whole of C when the product is not split): a layer's bias and activation applied
/// while the block is still in that core's cache, instead of in a pass of their own after the
/// product, on one thread when C is small (`Tensor.linearActivated`).
@inline(__always)
func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
           _ a: UnsafePointer<Float>, lda: Int, _ b: UnsafePointer<Float>, ldb: Int,
           beta: Float = 0, _ c: UnsafeMutablePointer<Float>, ldc: Int,
           epilogue: (Range<Int>, Range<Int>) -> Void) {
    if m == 0 || n == 0 { return }
    if k == 0 {
        if beta == 0 { for i in 0..<m { (c + i * ldc).update(repeating: 0, count: n) } }
        epilogue(0..<m, 0..<n)
        return
    }
    ProductFlops.add(2 * m * n * k)
    // Large products are split over the engine's threads by rows or columns of C (OpenBLAS
    // itself runs single-threaded; see Parallel). Each part is an independent sgemm, so the
    // result does not depend on how it was split.
    let parts = Parallel.engineOwnsThreads && 2 * m * n * k >= sgemmSplitFlops ? Parallel.parts(max(m, n) / 32) : 1
    if parts > 1 {
        // oneDNN's matmul wants dense operands: a block of rows of C is one, and so is the
        // block of A it needs when A is plain; a transposed A's block (k × rows) is copied, which
        // for a weight gradient (k the batch) is far less than splitting by columns would copy
        // (a block of B and C's block back: `gan bench train --model mlp --alternate`, three
        // runs, 1.027–1.029× the step). With B transposed, by columns: its block is dense and
        // only C's block is copied back (splitting the forward x·Wᵀ by rows, each thread reading
        // all of W, was slower).
        let byColumns = SmallProducts.takes(m: m, n: n, k: k) ? transB : n >= m
        let total = byColumns ? n : m
        // Boundaries at multiples of 16, rounded down: an uneven split gives the smaller part to
        // part 0, which the calling thread claims first. That thread also runs the step's serial
        // work, and ran its part slower: the mlp's 64 × 784 × 256 forward took 291 µs a step for
        // 400 columns on part 0, 260 µs for 384 on part 1 (a throwaway trace of both parts);
        // with 384 and 400 the step ran 1.005–1.027× in seven `--alternate` runs of a throwaway
        // switch (40 block pairs each, median 1.016×); mlp-deep 0.987 and 1.011×.
        Parallel.split(parts) { p in
            let lo = total * p / parts / 16 * 16, hi = p == parts - 1 ? total : total * (p + 1) / parts / 16 * 16
            guard lo < hi else { return }
            if byColumns {
                product(transA, transB, m, hi - lo, k, alpha, a, lda, transB ? b + lo * ldb : b + lo, ldb, beta, c + lo, ldc)
                epilogue(0..<m, lo..<hi)
            } else {
                product(transA, transB, hi - lo, n, k, alpha, transA ? a + lo : a + lo * lda, lda, b, ldb, beta, c + lo * ldc, ldc)
                epilogue(lo..<hi, 0..<n)
            }
        }
        return
    }
    product(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
    epilogue(0..<m, 0..<n)
}

/// One thread's product: oneDNN's matmul for the small products it does faster (see
/// `SmallProducts`), OpenBLAS otherwise or when oneDNN refuses.
@inline(__always)
private func product(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
                     _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                     _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
    let start = OpTrace.clock(), form = (transA ? 1 : 0) | (transB ? 2 : 0)
    #if canImport(DNNLConvolution)
    if alpha == 1 && beta == 0 && SmallProducts.takes(m: m, n: n, k: k)
        && gan_dnnl_sgemm(transA ? 1 : 0, transB ? 1 : 0, Int32(m), Int32(n), Int32(k), a, Int32(lda), b, Int32(ldb), c, Int32(ldc)) == 0 {
        OpTrace.record(.product, since: start, m, n, k, form | 4)
        return
    }
    #endif
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    OpTrace.record(.product, since: start, m, n, k, form)
}

/// Which products go to oneDNN's matmul (brgemm; gemm:jit on CPUs without AVX-512, see
/// dnnl_matmul.c) instead of OpenBLAS: small ones, where
/// OpenBLAS packs both operands for about as long as it multiplies. One thread of brgemm ran the
/// mlp's 64-row products 1.05–1.7× faster than one thread of OpenBLAS (scripts/matmul_compare.c).
/// Not for a side under `minSide`: an outer product (k = 1), a matrix-vector product or a
/// 20-wide latent layer ran 1.1–2.3× slower on brgemm than on OpenBLAS in a WGAN-GP step.
/// Up to `maxFlops` a thread's part: 2²⁸ (268 MFLOP) with AVX-512, where brgemm ran mlp-deep's
/// 64- to 128-row parts of 100–200 MFLOP 1.04–1.46× as fast as OpenBLAS and its step 1.06–1.11×
/// (`gan bench train --alternate dnnl-matmul-large`), while parts of 300 MFLOP and more
/// (generation's 500-row dense layer, 1024³) were as fast or faster on OpenBLAS; 2²⁶ (67 MFLOP)
/// without (gemm:jit ran mlp-deep's larger parts slower, session 25). `GAN_DNNL_MATMUL=0` turns
/// it off (to compare).
enum SmallProducts {
    nonisolated(unsafe) static var enabled = OneDNN.available && ProcessInfo.processInfo.environment["GAN_DNNL_MATMUL"] != "0"
    static let minFlops = ProcessInfo.processInfo.environment["GAN_DNNL_MATMUL_MIN"].flatMap { Int($0) } ?? 1 << 18
    /// The two bounds `maxFlops` defaults to: without AVX-512, and with it.
    static let bounds = (small: 1 << 26, midSized: 1 << 28)
    nonisolated(unsafe) static var maxFlops = ProcessInfo.processInfo.environment["GAN_DNNL_MATMUL_MAX"].flatMap { Int($0) }
        ?? (gan_cpu_has_avx512f() == 1 ? bounds.midSized : bounds.small)
    static let minSide = 32

    static var calls: Int {
        #if canImport(DNNLConvolution)
        return Int(gan_dnnl_sgemm_calls())
        #else
        return 0
        #endif
    }

    @inline(__always)
    static func takes(m: Int, n: Int, k: Int) -> Bool {
        guard enabled else { return false }
        let flops = 2 * m * n * k
        return flops >= minFlops && flops <= maxFlops && Swift.min(m, n, k) >= minSide
    }
}

/// Below this many flops a GEMM runs on one thread: handing half of it to another costs more.
let sgemmSplitFlops = ProcessInfo.processInfo.environment["GAN_SGEMM_SPLIT_FLOPS"].flatMap { Int($0) } ?? 2_000_000

/// Whether a dense layer's two gradient products, of `flopsEach` flops each, run at once, one per
/// thread (the weight gradient on the calling thread, the input gradient on the worker), rather
/// than one after the other, each split in two. Two unsplit GEMMs beat each split in two, which
/// packs the shared operand twice and waits for the slower half. The calling thread takes the
/// weight gradient, whose transposed operand oneDNN copies (0.351 against 0.316 ms for the mlp's
/// 256 → 784 layer on one thread); the worker, which starts a little later, the other: the mlp's
/// step 1.002, 1.023 and 1.015× (`gan bench train --alternate` with a throwaway switch, 40–80
/// block pairs), mlp-deep's 1.013×. Used by `matmul`'s rule and `DenseLayerPass`.
@inline(__always)
func pairsGradientProducts(flopsEach: Int) -> Bool { 2 * flopsEach >= sgemmSplitFlops && Parallel.parts(2) == 2 }

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

