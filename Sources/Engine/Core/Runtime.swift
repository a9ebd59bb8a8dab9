import CSupport
import Foundation
#if canImport(DNNLConvolution)
import DNNLConvolution
#endif
#if canImport(Glibc)
import Glibc
#endif

/// Process-wide numeric set-up: BLAS core type, threads and flush-to-zero.
///
/// OpenBLAS reads `OPENBLAS_CORETYPE` and `OPENBLAS_NUM_THREADS` when it is loaded, before
/// `main` runs, so a command line tool that wants different values must start again with them:
/// `relaunchIfNeeded` re-executes the binary once with
/// - `OPENBLAS_CORETYPE=SkylakeX` when the CPU has AVX-512 but the environment pins an AVX2 core
///   (this machine exports `Haswell`, which caps sgemm at ~140 instead of ~240 GFLOP/s);
/// - `OPENBLAS_NUM_THREADS=1`, so that OpenBLAS starts no worker thread before `configure` has
///   set flush-to-zero; `configure` then raises the count and the worker thread OpenBLAS creates
///   inherits the main thread's floating-point mode (new threads copy it on Linux).
/// - `OMP_WAIT_POLICY=passive` unless the caller set a policy: oneDNN runs on libgomp's threads,
///   which otherwise spin after each convolution while the engine's own threads do the
///   elementwise work between convolutions, on the same cores (9 % of a dcgan step's CPU samples
///   were libgomp spinning; passive: dcgan 198–224 against 176–208 img/s, alternating runs).
/// `GAN_KEEP_OPENBLAS_CORETYPE=1` keeps the caller's core type.
public enum Runtime {
    static let marker = "GAN_RELAUNCHED"

    public static func relaunchIfNeeded() {
        #if os(Linux)
        let env = ProcessInfo.processInfo.environment
        guard env[marker] == nil else { return }
        setenv(marker, "1", 1)
        var changed = false
        if env["GAN_KEEP_OPENBLAS_CORETYPE"] == nil, let core = preferredCoreType(current: env["OPENBLAS_CORETYPE"]) {
            setenv("OPENBLAS_CORETYPE", core, 1)
            changed = true
        }
        if env["OMP_WAIT_POLICY"] == nil {
            setenv("OMP_WAIT_POLICY", "passive", 1)
            changed = true
        }
        if env["OPENBLAS_NUM_THREADS"] != "1" {
            if let n = env["OPENBLAS_NUM_THREADS"] { setenv("GAN_THREADS_REQUESTED", n, 1) }
            setenv("OPENBLAS_NUM_THREADS", "1", 1)
            changed = true
        }
        guard changed else { return }
        var args = CommandLine.arguments.map { strdup($0) }
        args.append(nil)
        execv("/proc/self/exe", &args)
        // exec failed: carry on with the environment as it was loaded.
        #endif
    }

    /// The OpenBLAS core to force, or nil to keep the current one. An AVX-512 CPU always gets
    /// SkylakeX unless an AVX-512 core is already named; an AVX2 CPU gets Haswell when nothing is
    /// named. Forcing also matters with the variable unset: OpenBLAS 0.3.21 (Debian 12) does not
    /// recognize Sapphire Rapids and falls back to its generic Prescott kernels (~30 GFLOP/s).
    static func preferredCoreType(current: String?) -> String? {
        let avx512Cores: Set<String> = ["SkylakeX", "Cooperlake", "SapphireRapids"]
        if gan_cpu_has_avx512f() == 1 {
            if let current, avx512Cores.contains(current) { return nil }
            return "SkylakeX"
        }
        if gan_cpu_has_avx2() == 1 && current == nil { return "Haswell" }
        return nil
    }

    /// Threads for BLAS and the engine's kernels: `GAN_THREADS`, else the caller's
    /// `OPENBLAS_NUM_THREADS`, else every core; at most `maxThreads`.
    public static var defaultThreads: Int {
        let env = ProcessInfo.processInfo.environment
        for key in ["GAN_THREADS", "GAN_THREADS_REQUESTED"] {
            if let v = env[key], let n = Int(v), n > 0 { return min(n, maxThreads) }
        }
        return min(ProcessInfo.processInfo.activeProcessorCount, maxThreads)
    }

    /// The threads the engine runs on now (set by `configure`).
    public static var threads: Int { Parallel.threads }

    /// The most threads the engine runs on. Each oneDNN and implicit-GEMM call starts that many
    /// OpenMP threads, each with its own partial sums: at 1,000 a WGAN-GP step took 3.8 GB
    /// (64: 0.67 GB), so a mistyped count would run the machine out of memory.
    public static let maxThreads = 256

    /// Sets flush-to-zero on the calling thread, then the thread count, and pins glibc's mmap
    /// threshold at its default (`BufferCache.pageRounding`, the size the cache rounds to pages from).
    ///
    /// Left to itself, glibc raises the threshold to the size of each mapped chunk it frees (up to
    /// 32 MB), and chunks below it then come from its heap, which hands little back. A
    /// `BufferCache.release()` frees many such chunks at once: after `gan train`'s evaluation the
    /// steps' buffers came back from the heap, 26 MiB more each time (peak 268 against 244 MiB
    /// pinned, 3,200 images for 2 epochs). Tensors' buffers are kept by `BufferCache`, so mapping
    /// every large one costs a map per buffer, not per step.
    public static func configure(threads: Int? = nil) {
        gan_set_flush_denormals(1)
        BLASInfo.setThreads(min(threads ?? defaultThreads, maxThreads))
        if ProcessInfo.processInfo.environment["MALLOC_MMAP_THRESHOLD_"] == nil { _ = gan_pin_mmap_threshold(Int32(BufferCache.pageRounding)) }
    }

    /// Whether convolutions with at least 16 input and output channels run on oneDNN's JIT
    /// kernels (Linux with AVX2 or AVX-512; `GAN_DNNL=0` turns it off). Setting it true where oneDNN is
    /// unavailable leaves it false.
    public static var usesOneDNN: Bool {
        get { OneDNN.enabled }
        set { OneDNN.enabled = newValue && OneDNN.available }
    }

    /// Which gradients of stride-2 convolutions on oneDNN run as four stride-1 convolutions over
    /// every other pixel and tap: 0 none, 1 input gradients, 2 input and weight gradients (the
    /// default with AVX-512, 0 without; `GAN_DNNL_PHASES=0`, `=data` or `=2` at start). Where
    /// oneDNN is unavailable it stays 0.
    public static var stridedGradientPhases: Int {
        get {
            #if canImport(DNNLConvolution)
            return OneDNN.available ? Int(gan_dnnl_phases()) : 0
            #else
            return 0
            #endif
        }
        set {
            #if canImport(DNNLConvolution)
            gan_dnnl_set_phases(Int32(newValue))
            #endif
        }
    }

    /// Whether channels-last convolutions (the batch-norm critic's) run on the engine's own
    /// implicit-GEMM kernels instead of oneDNN: 0 off, 1 on (the default; `GAN_IGEMM=0` at start
    /// turns it off; on AVX-512 CPUs only those writing 128 channels or more, where the kernels
    /// beat oneDNN's AVX-512 ones), 2 every one that fits (`GAN_IGEMM=2`; for tests and
    /// measurements on AVX-512 CPUs: the generators then run channels-last too).
    /// Where oneDNN is unavailable it stays 0: the kernels sit behind its convolution entry point.
    public static var implicitGemmConvolutions: Int {
        get {
            #if canImport(DNNLConvolution)
            return OneDNN.available ? Int(gan_implicit_gemm_enabled()) : 0
            #else
            return 0
            #endif
        }
        set {
            #if canImport(DNNLConvolution)
            gan_implicit_gemm_set_enabled(Int32(newValue))
            #endif
        }
    }

    /// Whether the forward, input gradient and weight gradient of channels-last 5×5, stride-2
    /// convolutions padded 2 / 1 or 1 / 2 (Keras's "same") that halve an even image (the WGAN-GP
    /// critic's, the dcgan generator's transposed layers) run as Winograd
    /// products (winograd.c; AVX-512 or AVX2 CPUs with oneDNN on): 0 off (`GAN_WINOGRAD=0` at start), 1
    /// where they pay (the default: F(2×2, 3×3) on even output sides with at least 96 tiles, the
    /// critic's 64 → 128 layer; F(4×4, 3×3) on odd ones with at least 128, and with AVX2 on even
    /// ones where both sides have 128 channels or more (the dcgan generator's 14 → 28), its 128 → 256 layer's
    /// 7×7, its weight gradient with AVX-512 only with 256 output channels or more), 2 every call that fits
    /// (`GAN_WINOGRAD=2`; for tests and measurements). 0 where oneDNN is unavailable: the path
    /// sits behind its convolution entry point.
    public static var winogradConvolutions: Int {
        get {
            #if canImport(DNNLConvolution)
            return OneDNN.available ? Int(gan_winograd_enabled()) : 0
            #else
            return 0
            #endif
        }
        set {
            #if canImport(DNNLConvolution)
            gan_winograd_set_enabled(Int32(newValue))
            #endif
        }
    }

    /// Whether the Winograd path can take a convolution here: oneDNN and AVX-512 or AVX2 + FMA
    /// present, and `winogradConvolutions` not 0.
    public static var winogradActive: Bool { winogradConvolutions > 0 && (cpuHasAVX512 || cpuHasAVX2) }

    /// Whether the Winograd kernels run in AVX-512 vectors: true where the CPU has them, unless
    /// set false, which runs the AVX2 copy (for tests: the two give the same bits).
    public static var winogradWideVectors: Bool {
        get {
            #if canImport(DNNLConvolution)
            return gan_winograd_wide_vectors() == 1
            #else
            return false
            #endif
        }
        set {
            #if canImport(DNNLConvolution)
            gan_winograd_set_wide_vectors(newValue ? 1 : 0)
            #endif
        }
    }

    /// The Winograd tile side: 0 (the default) 2×2 tiles on even output sides and 4×4 on odd
    /// ones; 2 or 4 on every call that fits with `winogradConvolutions` 2, while the default mode
    /// still takes a side only where it pays (so 2 leaves 7×7 outputs to the other kernels)
    /// (`GAN_WINOGRAD_TILE` at start; for tests and measurements).
    public static var winogradTile: Int {
        get {
            #if canImport(DNNLConvolution)
            return Int(gan_winograd_tile())
            #else
            return 0
            #endif
        }
        set {
            #if canImport(DNNLConvolution)
            gan_winograd_set_tile(Int32(newValue))
            #endif
        }
    }

    /// Winograd calls so far that reused a transformed kernel made from byte-for-byte equal
    /// weights (for tests).
    public static var winogradReusedKernels: Int {
        #if canImport(DNNLConvolution)
        return Int(gan_winograd_reused_kernels())
        #else
        return 0
        #endif
    }

    /// Convolutions run as Winograd products so far (for tests: that the path is taken).
    public static var winogradCalls: Int {
        #if canImport(DNNLConvolution)
        return Int(gan_winograd_calls())
        #else
        return 0
        #endif
    }

    /// Of `winogradCalls`, those with 4×4 tiles (for tests: which tile a call took).
    public static var winogradCalls4x4: Int {
        #if canImport(DNNLConvolution)
        return Int(gan_winograd_calls_4x4())
        #else
        return 0
        #endif
    }

    /// The `implicitGemmConvolutions` the process started with (`GAN_IGEMM`), whatever it was set
    /// to since; 0 where oneDNN is unavailable.
    public static var implicitGemmStartMode: Int {
        #if canImport(DNNLConvolution)
        return OneDNN.available ? Int(gan_implicit_gemm_start_mode()) : 0
        #else
        return 0
        #endif
    }

    /// Whether the implicit-GEMM kernels use their AVX-512 register tiles (on by default where the
    /// CPU has AVX-512; `GAN_IGEMM_TILE=avx2` at start turns them off). Both tiles give the same
    /// bits; setting it on a CPU without AVX-512 leaves it off.
    public static var implicitGemmWideTiles: Bool {
        get {
            #if canImport(DNNLConvolution)
            return gan_implicit_gemm_wide_tiles() != 0
            #else
            return false
            #endif
        }
        set {
            #if canImport(DNNLConvolution)
            gan_implicit_gemm_set_wide_tiles(newValue ? 1 : 0)
            #endif
        }
    }

    /// Whether channels-last convolutions that fit the implicit-GEMM kernels run on them on this
    /// CPU now (`implicitGemmConvolutions` 2, or 1 on an AVX2 CPU without AVX-512, with oneDNN on).
    public static var implicitGemmActive: Bool {
        usesOneDNN && (implicitGemmConvolutions == 2 || (implicitGemmConvolutions == 1 && !cpuHasAVX512 && cpuHasAVX2))
    }

    /// Whether the implicit-GEMM kernels can write `channels` channels (at least 16, a multiple of
    /// 16; `gan_implicit_gemm_writes_channels`): what a model checks before building layers
    /// channels-last for them.
    public static func implicitGemmWrites(channels: Int) -> Bool {
        #if canImport(DNNLConvolution)
        return gan_implicit_gemm_writes_channels(channels) != 0
        #else
        // The same rule where the kernels are not built, so that a forced layout
        // (`GAN_CHANNELS_LAST_G=1`) builds the same models.
        return channels >= 16 && channels % 16 == 0
        #endif
    }

    /// Convolutions run on the implicit-GEMM kernels so far (for tests: that the path is taken).
    public static var implicitGemmCalls: Int {
        #if canImport(DNNLConvolution)
        return Int(gan_implicit_gemm_calls())
        #else
        return 0
        #endif
    }

    /// Convolutions `gan_dnnl_convolution` ran so far, on any of its kernels (for tests: that
    /// the oneDNN module, not the engine's unfold + GEMM, computed a result).
    public static var oneDNNConvolutionCalls: Int {
        #if canImport(DNNLConvolution)
        return Int(gan_dnnl_convolution_calls())
        #else
        return 0
        #endif
    }

    /// Stride-2 gradients run in phases so far (for tests: that the path is taken).
    public static var stridedGradientPhaseCalls: Int {
        #if canImport(DNNLConvolution)
        return Int(gan_dnnl_phased_calls())
        #else
        return 0
        #endif
    }

    /// Whether small matrix products (see `matmulBackend`; one call per thread) run on oneDNN's matmul
    /// instead of OpenBLAS (Linux with AVX2 or AVX-512: its brgemm kernel with AVX-512, its JIT
    /// sgemm without; `GAN_DNNL_MATMUL=0` turns it off). Setting it true
    /// where oneDNN is unavailable leaves it false.
    public static var usesOneDNNMatmul: Bool {
        get { SmallProducts.enabled }
        set { SmallProducts.enabled = newValue && OneDNN.available }
    }

    /// The largest product (in flops, one thread's part) that runs on oneDNN's matmul when
    /// `usesOneDNNMatmul`: 2²⁸ (268 MFLOP) on AVX-512 CPUs, 2²⁶ (67 MFLOP) otherwise
    /// (`GAN_DNNL_MATMUL_MAX`).
    public static var oneDNNMatmulMaxFlops: Int {
        get { SmallProducts.maxFlops }
        set { SmallProducts.maxFlops = Swift.max(0, newValue) }
    }

    /// The bounds `oneDNNMatmulMaxFlops` defaults to: 2²⁶ without AVX-512, 2²⁸ with it.
    public static var oneDNNMatmulBounds: (small: Int, midSized: Int) { SmallProducts.bounds }

    /// Whether the engine's worker threads shorten their spin between jobs while their spins run
    /// out, as when another process holds the cores (`GAN_POOL_ADAPTIVE=0` starts it off).
    public static var adaptsWorkerSpin: Bool {
        get { WorkerPool.shared.adaptiveSpin }
        set { WorkerPool.shared.adaptiveSpin = newValue }
    }

    /// How the engine's workers wait between jobs, for benchmark reports: e.g. "1000 µs, adaptive".
    public static var workerSpin: String {
        let pool = WorkerPool.shared
        if pool.workers == 0 { return "no workers" }
        if pool.spinMicroseconds == 0 { return "no spin" }
        return "\(pool.spinMicroseconds) µs, \(pool.adaptiveSpin ? "adaptive" : "fixed")"
    }

    /// What runs matrix products, for benchmark reports.
    public static var matmulBackend: String {
        guard usesOneDNNMatmul else { return "sgemm" }
        return String(format: "oneDNN matmul (\(cpuHasAVX512 ? "brgemm" : "gemm:jit")) from %.2f to %.0f MFLOP with every side ≥ %ld, else sgemm",
                      Double(SmallProducts.minFlops) / 1e6, Double(SmallProducts.maxFlops) / 1e6, SmallProducts.minSide)
    }

    /// Products oneDNN's matmul has run so far (for tests: that the path is taken).
    public static var oneDNNMatmulCalls: Int { SmallProducts.calls }

    /// What runs convolutions, for benchmark reports.
    public static var convolutionBackend: String {
        guard usesOneDNN else { return "unfold + sgemm" }
        let kernels = implicitGemmActive ? "channels-last on the engine's implicit GEMM where it fits, else "
            : implicitGemmConvolutions == 1 && cpuHasAVX512 ? "channels-last on the engine's implicit GEMM where it writes ≥ 128 channels, else " : ""
        let winograd = winogradActive ? "5×5 stride-2 channels-last passes as Winograd F(2×2 | 4×4, 3×3) products where they pay, else " : ""
        return winograd + kernels +
            "oneDNN JIT (≥ 16 channels each side), else unfold + sgemm"
    }

    public static var flushesDenormals: Bool { gan_flush_denormals_enabled() == 1 }

    /// Whether the CPU has AVX-512F: oneDNN's brgemm kernels (its matmul, and the kernels the
    /// stride-2 phases were measured on) need it; without it the engine runs AVX2 (or baseline)
    /// kernels instead.
    public static let cpuHasAVX512 = gan_cpu_has_avx512f() == 1
    /// Whether the CPU has AVX2 with FMA (the implicit-GEMM convolutions' kernels need it).
    public static let cpuHasAVX2 = gan_cpu_has_avx2() == 1
}
