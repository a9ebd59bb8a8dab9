import CSupport

/// Update rules of the optimizers as single fused passes over raw buffers: the NN module's
/// optimizers call these so that a step reads each parameter, gradient and moment once,
/// sixteen lanes at a time, split over the engine's threads.
public enum OptimizerKernels {

    /// One tensor's share of an Adam step: its parameter, gradient and moments, and its own step
    /// size and bias correction (each tensor counts its own steps, as in PyTorch).
    public struct AdamTensor {
        public var parameter: UnsafeMutablePointer<Float>, gradient: UnsafePointer<Float>
        public var m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>
        public var count: Int
        public var stepSize: Float, biasCorrection2Sqrt: Float

        public init(parameter: UnsafeMutablePointer<Float>, gradient: UnsafePointer<Float>, m: UnsafeMutablePointer<Float>,
                    v: UnsafeMutablePointer<Float>, count: Int, stepSize: Float, biasCorrection2Sqrt: Float) {
            (self.parameter, self.gradient, self.m, self.v) = (parameter, gradient, m, v)
            (self.count, self.stepSize, self.biasCorrection2Sqrt) = (count, stepSize, biasCorrection2Sqrt)
        }
    }

    /// Adam's update of every tensor in one split over the engine's threads: the elements of all
    /// tensors, end to end, in equal shares (small tensors one by one would each run on one
    /// thread, and each large one would be a hand-off of its own). Returns whether every updated
    /// value is finite, checked on the way at no extra pass.
    @discardableResult
    public static func adam(_ tensors: [AdamTensor], beta1: Float, beta2: Float, eps: Float, weightDecay: Float) -> Bool {
        let total = tensors.reduce(0) { $0 + $1.count }
        // Two parts from 16 Ki values: from 64 Ki, the mlp's discriminator (54,500) ran on one thread.
        let parts = Parallel.parts(total >> 13)
        var finite = [Bool](repeating: true, count: parts)
        finite.withUnsafeMutableBufferPointer { finite in
            Parallel.split(parts) { part in
                let start = OpTrace.clock()
                defer { OpTrace.record(.adam, since: start, total / parts) }
                let lo = total * part / parts, hi = total * (part + 1) / parts
                var offset = 0
                for t in tensors {
                    let a = Swift.max(lo, offset), b = Swift.min(hi, offset + t.count)
                    if a < b {
                        let k = a - offset
                        if !adam(t.parameter + k, t.gradient + k, t.m + k, t.v + k, count: b - a, beta1: beta1, beta2: beta2, eps: eps,
                                 weightDecay: weightDecay, stepSize: t.stepSize, biasCorrection2Sqrt: t.biasCorrection2Sqrt) {
                            finite[part] = false
                        }
                    }
                    offset += t.count
                }
            }
        }
        return !finite.contains(false)
    }

    /// Adam's update on one run of values, in the order of operations `NN.Adam` documents
    /// (bit-identical to the scalar loop: no fused multiply-adds, the same rounding at every
    /// step): g' = g + wd·p; m = b1·m + (1−b1)·g'; v = b2·v + (1−b2)·g'²; p −= s·m / (√v / c + eps).
    /// Returns whether every new p is finite.
    static func adam(_ p: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>,
                     _ m: UnsafeMutablePointer<Float>, _ v: UnsafeMutablePointer<Float>, count n: Int,
                     beta1 b1: Float, beta2 b2: Float, eps e: Float, weightDecay wd: Float,
                     stepSize s: Float, biasCorrection2Sqrt c: Float) -> Bool {
        typealias V = SIMD16<Float>
        let (ob1, ob2) = (1 - b1, 1 - b2)
        // AVX-512 (or AVX2 + FMA) when the CPU has it: the same operations (square root and
        // division are correctly rounded at any width), 16 (8) lanes per instruction instead of 4.
        var wideFinite: Int32 = 0
        if WideKernels.active, gan_adam_wide(p, g, m, v, n, b1, b2, e, wd, s, c, &wideFinite) != 0 { return wideFinite != 0 }
        // x − x is 0 exactly when x is finite; the differences are summed as in Kernels.allFinite.
        var differences = V()
        var k = 0
        while k + V.scalarCount <= n {
            let pv = UnsafeRawPointer(p + k).loadUnaligned(as: V.self)
            var gv = UnsafeRawPointer(g + k).loadUnaligned(as: V.self)
            if wd != 0 { gv = gv + wd * pv }
            let mv = b1 * UnsafeRawPointer(m + k).loadUnaligned(as: V.self) + ob1 * gv
            let vv = b2 * UnsafeRawPointer(v + k).loadUnaligned(as: V.self) + ob2 * gv * gv
            UnsafeMutableRawPointer(m + k).storeBytes(of: mv, as: V.self)
            UnsafeMutableRawPointer(v + k).storeBytes(of: vv, as: V.self)
            let np = pv - s * mv / (vv.squareRoot() / c + e)
            UnsafeMutableRawPointer(p + k).storeBytes(of: np, as: V.self)
            differences += np - np
            k += V.scalarCount
        }
        var difference = differences.sum()
        while k < n {
            let gk = wd == 0 ? g[k] : g[k] + wd * p[k]
            m[k] = b1 * m[k] + ob1 * gk
            v[k] = b2 * v[k] + ob2 * gk * gk
            p[k] -= s * m[k] / (v[k].squareRoot() / c + e)
            difference += p[k] - p[k]
            k += 1
        }
        return difference == 0
    }
}
