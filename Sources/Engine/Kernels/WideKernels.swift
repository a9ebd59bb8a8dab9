import CSupport
import Foundation

/// AVX-512 and AVX2 versions of the hottest engine kernels (Adam's update, uniform random numbers,
/// dropout), in C (`Sources/CSupport/WideKernels.c`) and chosen at run time: the Swift build
/// targets baseline x86-64, where SIMD16 code runs as four 128-bit operations. They compute the
/// same values bit for bit, so turning them off changes speed only.
public enum WideKernels {
    public static let available = gan_cpu_has_avx512f() == 1 || gan_cpu_has_avx2() == 1
    /// `GAN_WIDE_KERNELS=0` keeps the portable Swift kernels, for comparison.
    nonisolated(unsafe) public static var enabled = ProcessInfo.processInfo.environment["GAN_WIDE_KERNELS"] != "0"
    static var active: Bool { enabled && available }
}
