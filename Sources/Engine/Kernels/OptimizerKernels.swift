import CSupport

/// Update rules of the optimizers as single fused passes over raw buffers: the NN module's
/// optimizers call these so that a step reads each parameter, gradient and moment once,
/// sixteen lanes at a time, split over the engine's threads for large tensors.
public enum OptimizerKernels {

    /// Adam's update, in the order of operations `NN.Adam` documents (bit-identical to the
    /// scalar loop: no fused multiply-adds, the same rounding at every step):
    /// g' = g + wd·p; m = b1·m + (1−b1)·g'; v = b2·v + (1−b2)·g'²; p −= s·m / (√v / c + eps).
    public static func adam(_ p: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>,
                            _ m: UnsafeMutablePointer<Float>, _ v: UnsafeMutablePointer<Float>, count n: Int,
                            beta1 b1: Float, beta2 b2: Float, eps e: Float, weightDecay wd: Float,
                            stepSize s: Float, biasCorrection2Sqrt c: Float) {
        typealias V = SIMD16<Float>
        let (ob1, ob2) = (1 - b1, 1 - b2)
        Parallel.forChunks(n, grain: 1 << 15) { r in
            // AVX-512 when the CPU has it: the same operations (square root and division are
            // correctly rounded at any width), 16 lanes per instruction instead of 4.
            if WideKernels.active, gan_adam_wide(p + r.lowerBound, g + r.lowerBound, m + r.lowerBound, v + r.lowerBound, r.count,
                                          b1, b2, e, wd, s, c) != 0 { return }
            var k = r.lowerBound
            while k + V.scalarCount <= r.upperBound {
                let pv = UnsafeRawPointer(p + k).loadUnaligned(as: V.self)
                var gv = UnsafeRawPointer(g + k).loadUnaligned(as: V.self)
                if wd != 0 { gv = gv + wd * pv }
                let mv = b1 * UnsafeRawPointer(m + k).loadUnaligned(as: V.self) + ob1 * gv
                let vv = b2 * UnsafeRawPointer(v + k).loadUnaligned(as: V.self) + ob2 * gv * gv
                UnsafeMutableRawPointer(m + k).storeBytes(of: mv, as: V.self)
                UnsafeMutableRawPointer(v + k).storeBytes(of: vv, as: V.self)
                UnsafeMutableRawPointer(p + k).storeBytes(of: pv - s * mv / (vv.squareRoot() / c + e), as: V.self)
                k += V.scalarCount
            }
            while k < r.upperBound {
                let gk = wd == 0 ? g[k] : g[k] + wd * p[k]
                m[k] = b1 * m[k] + ob1 * gk
                v[k] = b2 * v[k] + ob2 * gk * gk
                p[k] -= s * m[k] / (v[k].squareRoot() / c + e)
                k += 1
            }
        }
    }
}
