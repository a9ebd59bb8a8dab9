import CSupport

/// The floating-point operations of the matrix products and convolutions this process has run
/// (two per multiply-add, as GFLOP/s figures count them), counted where they reach sgemm or
/// oneDNN. A benchmark divides a step's share by the step's time to say how close the step
/// comes to the machine's sgemm rate; everything else a step does shows as the distance.
public enum ProductFlops {
    public static var total: Int { Int(gan_flops_total()) }

    static func add(_ n: Int) { gan_flops_add(Int64(n)) }

    /// A convolution's forward, input gradient and weight gradient each do one multiply-add per
    /// output value, input channel and kernel tap.
    static func add(_ p: OneDNN.Problem) {
        add(2 * p.n * p.o * p.oh * p.ow * p.c * p.geometry.kernelH * p.geometry.kernelW)
    }
}
