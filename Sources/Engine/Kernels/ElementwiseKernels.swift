#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

typealias Vec = SIMD16<Float>

extension Kernels {
    /// 16 floats from `p` (any alignment).
    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> Vec { UnsafeRawPointer(p).loadUnaligned(as: Vec.self) }
    /// `v` to 16 floats at `p` (any alignment).
    @inline(__always) static func store(_ v: Vec, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: Vec.self) }
}

/// An elementwise function of one value, with an optional SIMD form.
protocol UnaryKernel {
    func scalar(_ x: Float) -> Float
    func vector(_ x: Vec) -> Vec
}

extension UnaryKernel {
    @inline(__always) func vector(_ x: Vec) -> Vec {
        var r = Vec()
        for i in 0..<Vec.scalarCount { r[i] = scalar(x[i]) }
        return r
    }
}

/// An elementwise function of two values.
protocol BinaryKernel {
    func scalar(_ a: Float, _ b: Float) -> Float
    func vector(_ a: Vec, _ b: Vec) -> Vec
}

enum Kernels {
    /// out[i] = k(x[i]) for contiguous buffers.
    @inline(__always)
    static func map<K: UnaryKernel>(_ k: K, _ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int) {
        Parallel.forChunks(n) { r in
            var i = r.lowerBound
            let end = r.upperBound
            while i + Vec.scalarCount <= end {
                let v = UnsafeRawPointer(x + i).loadUnaligned(as: Vec.self)
                UnsafeMutableRawPointer(out + i).storeBytes(of: k.vector(v), as: Vec.self)
                i += Vec.scalarCount
            }
            while i < end { out[i] = k.scalar(x[i]); i += 1 }
        }
    }

    /// Broadcasting binary map. `aStrides`/`bStrides` are per output dimension (0 = broadcast).
    static func zip<K: BinaryKernel>(_ k: K, _ a: UnsafePointer<Float>, _ aStrides: [Int],
                                     _ b: UnsafePointer<Float>, _ bStrides: [Int],
                                     _ out: UnsafeMutablePointer<Float>, _ shape: [Int]) {
        let (dims, sa, sb) = coalesce(shape, aStrides, bStrides)
        let inner = dims.last ?? 1
        let ia = sa.last ?? 0, ib = sb.last ?? 0
        let rows = Shape.count(dims) / max(inner, 1)
        if inner == 0 || rows == 0 { return }
        let outerDims = Array(dims.dropLast())
        let grain = max(1, (1 << 15) / inner)
        Parallel.forChunks(rows, grain: grain) { r in
            // Offsets of the first row of the chunk, then an odometer over the outer dims.
            var idx = [Int](repeating: 0, count: outerDims.count)
            var rem = r.lowerBound
            for d in stride(from: outerDims.count - 1, through: 0, by: -1) {
                idx[d] = rem % outerDims[d]; rem /= outerDims[d]
            }
            var offA = 0, offB = 0
            for d in 0..<outerDims.count { offA += idx[d] * sa[d]; offB += idx[d] * sb[d] }
            for row in r {
                row1(k, a + offA, ia, b + offB, ib, out + row * inner, inner)
                var d = outerDims.count - 1
                while d >= 0 {
                    idx[d] += 1; offA += sa[d]; offB += sb[d]
                    if idx[d] < outerDims[d] { break }
                    offA -= sa[d] * outerDims[d]; offB -= sb[d] * outerDims[d]; idx[d] = 0
                    d -= 1
                }
            }
        }
    }

    @inline(__always)
    static func row1<K: BinaryKernel>(_ k: K, _ a: UnsafePointer<Float>, _ ia: Int, _ b: UnsafePointer<Float>, _ ib: Int,
                                      _ out: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        let w = Vec.scalarCount
        if ia == 1 && ib == 1 {
            while i + w <= n {
                let va = UnsafeRawPointer(a + i).loadUnaligned(as: Vec.self)
                let vb = UnsafeRawPointer(b + i).loadUnaligned(as: Vec.self)
                UnsafeMutableRawPointer(out + i).storeBytes(of: k.vector(va, vb), as: Vec.self)
                i += w
            }
        } else if ia == 1 && ib == 0 {
            let vb = Vec(repeating: b[0])
            while i + w <= n {
                let va = UnsafeRawPointer(a + i).loadUnaligned(as: Vec.self)
                UnsafeMutableRawPointer(out + i).storeBytes(of: k.vector(va, vb), as: Vec.self)
                i += w
            }
        } else if ia == 0 && ib == 1 {
            let va = Vec(repeating: a[0])
            while i + w <= n {
                let vb = UnsafeRawPointer(b + i).loadUnaligned(as: Vec.self)
                UnsafeMutableRawPointer(out + i).storeBytes(of: k.vector(va, vb), as: Vec.self)
                i += w
            }
        }
        while i < n { out[i] = k.scalar(a[i * ia], b[i * ib]); i += 1 }
    }

    /// Merges adjacent dimensions that are contiguous for both operands, so a broadcast over a
    /// [N, C, H, W] tensor with a [1, C, 1, 1] one runs as rows of H·W.
    static func coalesce(_ shape: [Int], _ a: [Int], _ b: [Int]) -> ([Int], [Int], [Int]) {
        var dims: [Int] = [], sa: [Int] = [], sb: [Int] = []
        for d in 0..<shape.count where shape[d] != 1 {
            if let last = dims.last, sa.last! == a[d] * shape[d], sb.last! == b[d] * shape[d] {
                dims[dims.count - 1] = last * shape[d]
                sa[sa.count - 1] = a[d]; sb[sb.count - 1] = b[d]
            } else {
                dims.append(shape[d]); sa.append(a[d]); sb.append(b[d])
            }
        }
        if dims.isEmpty { return ([1], [0], [0]) }
        return (dims, sa, sb)
    }
}

// MARK: kernels

struct AddK: BinaryKernel {
    @inline(__always) func scalar(_ a: Float, _ b: Float) -> Float { a + b }
    @inline(__always) func vector(_ a: Vec, _ b: Vec) -> Vec { a + b }
}
struct SubK: BinaryKernel {
    @inline(__always) func scalar(_ a: Float, _ b: Float) -> Float { a - b }
    @inline(__always) func vector(_ a: Vec, _ b: Vec) -> Vec { a - b }
}
struct MulK: BinaryKernel {
    @inline(__always) func scalar(_ a: Float, _ b: Float) -> Float { a * b }
    @inline(__always) func vector(_ a: Vec, _ b: Vec) -> Vec { a * b }
}
struct DivK: BinaryKernel {
    @inline(__always) func scalar(_ a: Float, _ b: Float) -> Float { a / b }
    @inline(__always) func vector(_ a: Vec, _ b: Vec) -> Vec { a / b }
}
struct MinK: BinaryKernel {
    @inline(__always) func scalar(_ a: Float, _ b: Float) -> Float { Swift.min(a, b) }
    @inline(__always) func vector(_ a: Vec, _ b: Vec) -> Vec { pointwiseMin(a, b) }
}
struct MaxK: BinaryKernel {
    @inline(__always) func scalar(_ a: Float, _ b: Float) -> Float { Swift.max(a, b) }
    @inline(__always) func vector(_ a: Vec, _ b: Vec) -> Vec { pointwiseMax(a, b) }
}
public enum Comparison { case less, lessEqual, greater, greaterEqual, equal, notEqual }
/// 1 where the comparison holds, else 0.
struct CompareK: BinaryKernel {
    let op: Comparison
    @inline(__always) func scalar(_ a: Float, _ b: Float) -> Float {
        switch op {
        case .less: return a < b ? 1 : 0
        case .lessEqual: return a <= b ? 1 : 0
        case .greater: return a > b ? 1 : 0
        case .greaterEqual: return a >= b ? 1 : 0
        case .equal: return a == b ? 1 : 0
        case .notEqual: return a != b ? 1 : 0
        }
    }
    @inline(__always) func vector(_ a: Vec, _ b: Vec) -> Vec {
        let one = Vec(repeating: 1), zero = Vec(repeating: 0)
        switch op {
        case .less: return zero.replacing(with: one, where: a .< b)
        case .lessEqual: return zero.replacing(with: one, where: a .<= b)
        case .greater: return zero.replacing(with: one, where: a .> b)
        case .greaterEqual: return zero.replacing(with: one, where: a .>= b)
        case .equal: return zero.replacing(with: one, where: a .== b)
        case .notEqual: return zero.replacing(with: one, where: a .!= b)
        }
    }
}

struct NegK: UnaryKernel {
    @inline(__always) func scalar(_ x: Float) -> Float { -x }
    @inline(__always) func vector(_ x: Vec) -> Vec { -x }
}
struct AffineK: UnaryKernel {  // a·x + b
    let a: Float, b: Float
    @inline(__always) func scalar(_ x: Float) -> Float { a * x + b }
    @inline(__always) func vector(_ x: Vec) -> Vec { x * a + b }
}
struct ExpK: UnaryKernel { @inline(__always) func scalar(_ x: Float) -> Float { expf(x) } }
struct LogK: UnaryKernel { @inline(__always) func scalar(_ x: Float) -> Float { logf(x) } }
struct SqrtK: UnaryKernel {
    @inline(__always) func scalar(_ x: Float) -> Float { x.squareRoot() }
    @inline(__always) func vector(_ x: Vec) -> Vec { x.squareRoot() }
}
struct PowK: UnaryKernel {
    let p: Float
    @inline(__always) func scalar(_ x: Float) -> Float { powf(x, p) }
}
struct AbsK: UnaryKernel {
    @inline(__always) func scalar(_ x: Float) -> Float { Swift.abs(x) }
    @inline(__always) func vector(_ x: Vec) -> Vec { Vec(repeating: 0).replacing(with: -x, where: x .< 0).replacing(with: x, where: x .>= 0) }
}
struct SignK: UnaryKernel {
    @inline(__always) func scalar(_ x: Float) -> Float { x > 0 ? 1 : (x < 0 ? -1 : 0) }
}
struct ClampK: UnaryKernel {
    let lo: Float, hi: Float
    @inline(__always) func scalar(_ x: Float) -> Float { Swift.min(Swift.max(x, lo), hi) }
    // Not `clamped(lowerBound:upperBound:)`: the standard library's was not inlined and ran at
    // 17 % of `gan eval`'s samples (its distance matrices). A NaN stays NaN, as in `scalar`.
    @inline(__always) func vector(_ x: Vec) -> Vec {
        let l = Vec(repeating: lo), h = Vec(repeating: hi)
        return x.replacing(with: l, where: x .< l).replacing(with: h, where: x .> h)
    }
}
/// 1 inside [lo, hi], else 0.
struct InRangeK: UnaryKernel {
    let lo: Float, hi: Float
    @inline(__always) func scalar(_ x: Float) -> Float { x >= lo && x <= hi ? 1 : 0 }
}
struct LeakyReluK: UnaryKernel {
    let alpha: Float
    @inline(__always) func scalar(_ x: Float) -> Float { x > 0 ? x : alpha * x }
    @inline(__always) func vector(_ x: Vec) -> Vec { (x * alpha).replacing(with: x, where: x .> 0) }
}
/// The gradient through a sigmoid from its output y: g · y · (1 − y), in one pass.
struct SigmoidGradK: BinaryKernel {
    @inline(__always) func scalar(_ g: Float, _ y: Float) -> Float { g * y * (1 - y) }
    @inline(__always) func vector(_ g: Vec, _ y: Vec) -> Vec { g * y * (1 - y) }
}
/// The gradient through a tanh from its output y: g · (1 − y²), in one pass.
struct TanhGradK: BinaryKernel {
    @inline(__always) func scalar(_ g: Float, _ y: Float) -> Float { g * (1 - y * y) }
    @inline(__always) func vector(_ g: Vec, _ y: Vec) -> Vec { g * (1 - y * y) }
}
struct SoftplusK: UnaryKernel {
    // log(1 + eˣ) = max(x, 0) + log1p(e^(−|x|)), exact without overflow.
    @inline(__always) func scalar(_ x: Float) -> Float { Swift.max(x, 0) + log1pf(expf(-Swift.abs(x))) }
}
