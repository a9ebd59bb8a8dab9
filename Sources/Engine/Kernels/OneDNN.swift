import CSupport
import Foundation
#if canImport(DNNLConvolution)
import DNNLConvolution
#endif

/// Convolutions through oneDNN's JIT kernels where they beat unfold + sgemm. On the dcgan
/// shapes (batch 64, 2 threads, `/tmp` microbenchmark in docs/performance-log.md) oneDNN's direct
/// AVX-512 kernels did a 128→128 5×5 stride-2 transposed convolution's forward, input and
/// weight gradient in 122 ms against 256 ms for ours; but they were slower for one input or
/// output channel (the 128→1 7×7 output layer: 34 ms against 7 ms; the 1→64 first critic
/// layer's input gradient: 19 ms against 0.7 ms), hence the channel threshold. On AVX2 CPUs
/// (without AVX-512) oneDNN 2.6 runs its jit:avx2 kernels: on an AMD EPYC (Zen 3) they did the
/// same 128→128 layer in 222 ms against 304 ms for unfold + OpenBLAS (`gan bench engine
/// --breakdown`, session 18). `GAN_DNNL=0` turns it off for comparison.
enum OneDNN {
    static let available: Bool = {
        #if canImport(DNNLConvolution)
        return gan_cpu_has_avx512f() == 1 || gan_cpu_has_avx2() == 1
        #else
        return false
        #endif
    }()
    nonisolated(unsafe) static var enabled = available && ProcessInfo.processInfo.environment["GAN_DNNL"] != "0"

    static let minChannels = 16

    /// conv2d's terms: x [n, c, h, w] (big), weight [o, c, kh, kw], y [n, o, oh, ow] (small).
    struct Problem {
        var n: Int, c: Int, h: Int, w: Int, o: Int, oh: Int, ow: Int
        var geometry: ConvGeometry
    }

    /// `smallOutput`: a forward convolution with o · kh · kw ≤ `smallOutputLimit` on the engine's
    /// own AVX-512 kernel (the last step of a chain only).
    enum Kind: Int32 { case forward = 0, backwardData = 1, backwardWeights = 2, smallOutput = 3 }

    static let smallOutputLimit = 64

    #if canImport(DNNLConvolution)
    /// The problem in oneDNN's terms, or nil when oneDNN is off or does it badly (fewer than
    /// `minChannels` on a side) or the geometry has no exact oneDNN padding.
    static func shape(_ p: Problem, checkChannels: Bool = true) -> gan_dnnl_shape? {
        guard enabled, !Parallel.isSerial, !checkChannels || (p.c >= minChannels && p.o >= minChannels) else { return nil }
        let g = p.geometry
        // oneDNN wants the padding that makes the sizes agree exactly; extra rows our geometry
        // pads but never reaches are dropped.
        let ekh = g.dilationH * (g.kernelH - 1) + 1, ekw = g.dilationW * (g.kernelW - 1) + 1
        let pb = (p.oh - 1) * g.strideH + ekh - p.h - g.padTop
        let pr = (p.ow - 1) * g.strideW + ekw - p.w - g.padLeft
        guard pb >= 0, pr >= 0, pb <= g.padBottom, pr <= g.padRight else { return nil }
        return gan_dnnl_shape(n: Int32(p.n), c: Int32(p.c), h: Int32(p.h), w: Int32(p.w), o: Int32(p.o),
                              oh: Int32(p.oh), ow: Int32(p.ow), kh: Int32(g.kernelH), kw: Int32(g.kernelW),
                              sh: Int32(g.strideH), sw: Int32(g.strideW), pt: Int32(g.padTop), pl: Int32(g.padLeft),
                              pb: Int32(pb), pr: Int32(pr), dh: Int32(g.dilationH), dw: Int32(g.dilationW),
                              cl: g.channelsLast ? 1 : 0)
    }
    #endif

    /// Runs the convolution into a new tensor of `outShape`, or returns nil (nothing allocated)
    /// when `shape` refuses the problem or oneDNN does.
    static func run(_ kind: Kind, _ p: Problem, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                    outShape: [Int]) -> Tensor? {
        #if canImport(DNNLConvolution)
        // Channels-last, a one-channel input is fine for the forward and weight gradient (the
        // critic's first layer: 1.0 ms each where unfold + sgemm takes ~2); not for the input
        // gradient, nor few outputs (the 256→1 output layer) in any direction.
        let fewInputsAllowed = p.geometry.channelsLast && kind != .backwardData && p.o >= minChannels
        guard var s = shape(p, checkChannels: !fewInputsAllowed) else { return nil }
        let out = Tensor(uninitializedShape: outShape)
        let rc = gan_dnnl_convolution(gan_dnnl_kind(rawValue: UInt32(kind.rawValue)), &s, a, b, out.storage.base, Int32(Parallel.threads))
        guard rc == 0 else { return nil }
        ProductFlops.add(p)
        return out
        #else
        return nil
        #endif
    }

    /// `run` for `.forward` or `.backwardData`, then `+ bias` and leaky ReLU with `slope` applied
    /// while the output leaves oneDNN's layout.
    static func runActivated(_ kind: Kind, _ p: Problem, _ a: Tensor, _ weight: Tensor, bias: Tensor?, slope: Float,
                             outShape: [Int]) -> Tensor? {
        #if canImport(DNNLConvolution)
        guard kind == .forward || kind == .backwardData, var s = shape(p) else { return nil }
        let out = Tensor(uninitializedShape: outShape)
        let rc = withExtendedLifetime((a, weight, bias)) {
            gan_dnnl_activated_convolution(gan_dnnl_kind(rawValue: UInt32(kind.rawValue)), &s, a.storage.base, weight.storage.base,
                                           bias?.storage.base, slope, out.storage.base, Int32(Parallel.threads))
        }
        guard rc == 0 else { return nil }
        ProductFlops.add(p)
        return out
        #else
        return nil
        #endif
    }

    /// The gradients of `runActivated(kind, p, a, weight, bias, slope)` for the upstream gradient
    /// `g` and the output `y`: of `a`, of the weight and of the bias, each only when `needs` says
    /// so; nil when oneDNN cannot do it.
    static func activatedBackward(_ kind: Kind, _ p: Problem, g: Tensor, y: Tensor, slope: Float, a: Tensor, weight: Tensor,
                                  needs: (input: Bool, weight: Bool, bias: Bool)) -> (input: Tensor?, weight: Tensor?, bias: Tensor?)? {
        #if canImport(DNNLConvolution)
        guard kind == .forward || kind == .backwardData, var s = shape(p) else { return nil }
        let dx = needs.input ? Tensor(uninitializedShape: a.shape) : nil
        let dw = needs.weight ? Tensor(uninitializedShape: weight.shape) : nil
        let db = needs.bias ? Tensor(uninitializedShape: [y.shape[1]]) : nil
        let rc = withExtendedLifetime((g, y, a, weight)) {
            gan_dnnl_activated_backward(gan_dnnl_kind(rawValue: UInt32(kind.rawValue)), &s, g.storage.base, y.storage.base, slope,
                                        a.storage.base, weight.storage.base, dx?.storage.base, dw?.storage.base, db?.storage.base,
                                        Int32(Parallel.threads))
        }
        guard rc == 0 else { return nil }
        if needs.input { ProductFlops.add(p) }
        if needs.weight { ProductFlops.add(p) }
        return (dx, dw, db)
        #else
        return nil
        #endif
    }

    /// One layer of `runChain`: its problem and kind (`.forward` or `.backwardData`), weight,
    /// bias and leaky-ReLU slope.
    struct ChainStep {
        var kind: Kind
        var problem: Problem
        var weight: Tensor
        var bias: Tensor?
        var slope: Float?
    }

    /// Runs the steps from `x` into a new tensor of `outShape` with the activations between them
    /// in oneDNN's layouts, or returns nil when any step cannot take part.
    static func runChain(_ x: Tensor, _ steps: [ChainStep], outShape: [Int]) -> Tensor? {
        #if canImport(DNNLConvolution)
        var cSteps: [gan_dnnl_step] = []
        for s in steps {
            guard let shape = shape(s.problem, checkChannels: s.kind != .smallOutput), s.kind != .backwardWeights else { return nil }
            cSteps.append(gan_dnnl_step(kind: gan_dnnl_kind(rawValue: UInt32(s.kind.rawValue)), shape: shape,
                                        weight: s.weight.storage.base, bias: s.bias?.storage.base,
                                        slope: s.slope ?? 0, activate: s.slope == nil ? 0 : 1))
        }
        guard !cSteps.isEmpty, cSteps.count <= Int(GAN_DNNL_MAX_CHAIN) else { return nil }
        let out = Tensor(uninitializedShape: outShape)
        let rc = withExtendedLifetime((x, steps)) {
            gan_dnnl_inference_chain(Int32(cSteps.count), cSteps, x.storage.base, out.storage.base, Int32(Parallel.threads))
        }
        guard rc == 0 else { return nil }
        for s in steps { ProductFlops.add(s.problem) }
        return out
        #else
        return nil
        #endif
    }
}
