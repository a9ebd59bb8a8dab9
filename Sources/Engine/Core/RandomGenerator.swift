import CSupport

/// Philox4x32-10 counter-based generator (Salmon et al., SC'11), the generator of cuRAND, JAX
/// and PyTorch's CUDA backend. The same seed gives the same stream on every machine. The whole
/// state is `(seed, counter)`: saving those two numbers and restoring them resumes the stream
/// exactly, which is what exact training resume needs.
///
/// Each counter value yields four 32-bit words. A fill consumes whole blocks of four, so the
/// stream position after any call is a plain counter with no hidden cached values.
/// Uniforms use the top 24 bits (`u = (x >> 8) · 2⁻²⁴`), normals use Box–Muller on pairs.
public struct RandomGenerator: Equatable, Sendable {
    public let seed: UInt64
    public private(set) var counter: UInt64

    public init(seed: UInt64, counter: UInt64 = 0) {
        self.seed = seed
        self.counter = counter
    }

    public struct State: Equatable, Sendable, Codable {
        public var seed: UInt64
        public var counter: UInt64
    }

    public var state: State {
        get { State(seed: seed, counter: counter) }
        set { self = RandomGenerator(seed: newValue.seed, counter: newValue.counter) }
    }

    @inline(__always)
    static func mulhilo(_ a: UInt32, _ b: UInt32) -> (hi: UInt32, lo: UInt32) {
        let p = UInt64(a) &* UInt64(b)
        return (UInt32(truncatingIfNeeded: p >> 32), UInt32(truncatingIfNeeded: p))
    }

    /// Philox4x32-10 of a 128-bit counter under a 64-bit key (Random123's `philox4x32`).
    @inline(__always)
    public static func philox(_ ctr: SIMD4<UInt32>, key: SIMD2<UInt32>) -> SIMD4<UInt32> {
        var (x0, x1, x2, x3) = (ctr[0], ctr[1], ctr[2], ctr[3])
        var (k0, k1) = (key[0], key[1])
        for _ in 0..<10 {
            let (hi0, lo0) = mulhilo(0xD251_1F53, x0)
            let (hi1, lo1) = mulhilo(0xCD9E_8D57, x2)
            x0 = hi1 ^ x1 ^ k0
            x1 = lo1
            x2 = hi0 ^ x3 ^ k1
            x3 = lo0
            k0 = k0 &+ 0x9E37_79B9
            k1 = k1 &+ 0xBB67_AE85
        }
        return SIMD4(x0, x1, x2, x3)
    }

    /// The block for stream position `c`: the counter's low words are `c`, the key is the seed.
    @inline(__always)
    static func block(counter c: UInt64, key: UInt64) -> SIMD4<UInt32> {
        philox(SIMD4(UInt32(truncatingIfNeeded: c), UInt32(truncatingIfNeeded: c >> 32), 0, 0),
               key: SIMD2(UInt32(truncatingIfNeeded: key), UInt32(truncatingIfNeeded: key >> 32)))
    }

    /// Next block of four raw words.
    public mutating func nextBlock() -> SIMD4<UInt32> {
        let b = Self.block(counter: counter, key: seed)
        counter &+= 1
        return b
    }

    @inline(__always) static func unit(_ x: UInt32) -> Float { Float(x >> 8) * 0x1p-24 }

    /// Philox4x32-10 of eight consecutive counters `start…start+7` at once, one per SIMD lane:
    /// the same words as eight calls of `block(counter:key:)`, in a quarter of the time or less
    /// (the 32×32→64-bit products become vector multiplies).
    @inline(__always)
    static func blocks8(counter start: UInt64, key: UInt64)
        -> (SIMD8<UInt32>, SIMD8<UInt32>, SIMD8<UInt32>, SIMD8<UInt32>) {
        let c = SIMD8<UInt64>(repeating: start) &+ SIMD8<UInt64>(0, 1, 2, 3, 4, 5, 6, 7)
        var x0 = SIMD8<UInt32>(truncatingIfNeeded: c)
        var x1 = SIMD8<UInt32>(truncatingIfNeeded: c &>> 32)
        var x2 = SIMD8<UInt32>(repeating: 0), x3 = SIMD8<UInt32>(repeating: 0)
        var k0 = UInt32(truncatingIfNeeded: key), k1 = UInt32(truncatingIfNeeded: key >> 32)
        let m0 = SIMD8<UInt64>(repeating: 0xD251_1F53), m1 = SIMD8<UInt64>(repeating: 0xCD9E_8D57)
        for _ in 0..<10 {
            let p0 = SIMD8<UInt64>(truncatingIfNeeded: x0) &* m0
            let p1 = SIMD8<UInt64>(truncatingIfNeeded: x2) &* m1
            let hi0 = SIMD8<UInt32>(truncatingIfNeeded: p0 &>> 32), lo0 = SIMD8<UInt32>(truncatingIfNeeded: p0)
            let hi1 = SIMD8<UInt32>(truncatingIfNeeded: p1 &>> 32), lo1 = SIMD8<UInt32>(truncatingIfNeeded: p1)
            x0 = hi1 ^ x1 ^ SIMD8(repeating: k0)
            x1 = lo1
            x2 = hi0 ^ x3 ^ SIMD8(repeating: k1)
            x3 = lo0
            k0 = k0 &+ 0x9E37_79B9
            k1 = k1 &+ 0xBB67_AE85
        }
        return (x0, x1, x2, x3)
    }

    /// Uniform in [low, high).
    public mutating func fillUniform(_ out: UnsafeMutableBufferPointer<Float>, low: Float = 0, high: Float = 1) {
        let start = counter
        counter &+= UInt64((out.count + 3) / 4)
        Self.fillUniform(out, low: low, high: high, start: start, key: seed)
    }

    /// Whether `fillDropout` can run here (it needs AVX-512 or AVX2).
    public static var fillsDropoutInOnePass: Bool { WideKernels.active }

    /// Inverted dropout of `x` (`mask.count` values) into `out`: `mask` gets keep where the
    /// uniform `fillUniform(mask)` would draw is ≥ p and 0 elsewhere, `out` gets x · mask — the
    /// same values, and the same counters consumed, as that fill followed by the mask and the
    /// product, in one pass. Only where `fillsDropoutInOnePass`.
    public mutating func fillDropout(_ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>,
                                     mask: UnsafeMutableBufferPointer<Float>, p: Float, keep: Float) {
        precondition(Self.fillsDropoutInOnePass, "fillDropout needs AVX-512 or AVX2")
        let n = mask.count, wideGroups = n / 64
        let start = counter
        counter &+= UInt64((n + 3) / 4)
        let key = seed, m = mask.baseAddress!
        Parallel.forChunks(wideGroups, grain: 256) { r in
            let i = r.lowerBound * 64
            _ = gan_dropout_wide(x + i, out + i, m + i, r.count, start &+ UInt64(r.lowerBound * 16), key, p, keep)
        }
        // The last n mod 64 values: their uniforms from the counters after the groups'.
        let done = wideGroups * 64
        guard done < n else { return }
        Self.fillUniform(UnsafeMutableBufferPointer(rebasing: mask[done...]), low: 0, high: 1, start: start &+ UInt64(wideGroups * 16), key: key)
        let kernel = DropoutMaskK(p: p, scale: keep)
        for i in done..<n {
            m[i] = kernel.scalar(m[i])
            out[i] = x[i] * m[i]
        }
    }

    /// `fillUniform`'s values for the counters from `start`, leaving the generator alone.
    static func fillUniform(_ out: UnsafeMutableBufferPointer<Float>, low: Float, high: Float, start: UInt64, key: UInt64) {
        let n = out.count
        let span = high - low
        let blocks = (n + 3) / 4
        let p = out.baseAddress!
        // Eight blocks (32 values) per pass while they all fit, split over the engine's threads
        // (each block depends on its counter only); the words land where the one-block loop
        // below would put them.
        // With AVX-512 or AVX2, sixteen blocks (64 values) per call in C (`gan_uniform_wide`, the
        // same words and float operations); the eight-block loop takes what is left.
        var wideGroups = 0
        if WideKernels.active {
            wideGroups = n / 64
            Parallel.forChunks(wideGroups, grain: 512) { r in
                _ = gan_uniform_wide(p + r.lowerBound * 64, r.count, start &+ UInt64(r.lowerBound * 16), key, span * 0x1p-24, low)
            }
        }
        let scale = SIMD8<Float>(repeating: span * 0x1p-24), offset = SIMD8<Float>(repeating: low)
        let first = wideGroups * 2, groups = n / 32
        Parallel.forChunks(groups - first, grain: 1024) { r in
            for group in r.lowerBound + first..<r.upperBound + first {
                let b = group * 8
                let (w0, w1, w2, w3) = blocks8(counter: start &+ UInt64(b), key: key)
                let f0 = SIMD8<Float>(w0 &>> 8) * scale + offset, f1 = SIMD8<Float>(w1 &>> 8) * scale + offset
                let f2 = SIMD8<Float>(w2 &>> 8) * scale + offset, f3 = SIMD8<Float>(w3 &>> 8) * scale + offset
                let q = p + b * 4
                for i in 0..<8 {
                    q[4 * i] = f0[i]; q[4 * i + 1] = f1[i]; q[4 * i + 2] = f2[i]; q[4 * i + 3] = f3[i]
                }
            }
        }
        var b = groups * 8
        while b < blocks {
            let w = block(counter: start &+ UInt64(b), key: key)
            let i = b * 4
            for j in 0..<min(4, n - i) { p[i + j] = low + span * unit(w[j]) }
            b += 1
        }
    }

    /// Standard normal (then scaled: `mean + std · z`): the uniforms of the next ⌈n/4⌉ blocks,
    /// two Box–Muller pairs per block (`gan_box_muller`, vectorized, no libm).
    public mutating func fillNormal(_ out: UnsafeMutableBufferPointer<Float>, mean: Float = 0, std: Float = 1) {
        let n = out.count
        guard n > 0 else { return }
        let size = (n + 3) / 4 * 4, start = counter, key = seed
        counter &+= UInt64(size / 4)
        withUnsafeTemporaryAllocation(of: Float.self, capacity: size) { words in
            let u = words.baseAddress!, z = out.baseAddress!
            // From 4,096 values (64 groups of 64, the grain 32 groups) in parts on the engine's
            // threads, each from a multiple of 64 values: a part's uniforms come from its own
            // counters, grouped as the whole fill groups them, and its pairs are the whole's, so
            // the values are the same (the mlp's 64 × 100 latent batch took 16 µs on one thread,
            // `gan bench train --trace`; the step 1.004 and 1.006×, `--alternate`). Fewer values
            // are one part, the whole fill; the last part takes the values after the last group.
            let groups = size / 64
            Parallel.forChunks(groups, grain: 32) { r in
                let lo = r.lowerBound * 64, hi = r.upperBound == groups ? size : r.upperBound * 64
                Self.fillUniform(UnsafeMutableBufferPointer(start: u + lo, count: hi - lo), low: 0, high: 1,
                                 start: start &+ UInt64(lo / 4), key: key)
                gan_box_muller(u + lo, z + lo, Swift.min(hi, n) - lo, mean, std)
            }
        }
    }

    public mutating func nextUniform() -> Float {
        var x: Float = 0
        withUnsafeMutablePointer(to: &x) { fillUniform(UnsafeMutableBufferPointer(start: $0, count: 1)) }
        return x
    }

    /// Uniform integer in `0..<bound`, by Lemire's multiply-shift (bias below 2⁻³²·bound).
    public mutating func nextInt(below bound: Int) -> Int {
        precondition(bound > 0)
        let w = nextBlock()
        let x = (UInt64(w[0]) << 32) | UInt64(w[1])
        return Int(x.multipliedFullWidth(by: UInt64(bound)).high)
    }

    /// Fisher–Yates permutation of `0..<n`.
    public mutating func permutation(_ n: Int) -> [Int] {
        var p = Array(0..<n)
        if n < 2 { return p }
        for i in stride(from: n - 1, to: 0, by: -1) { p.swapAt(i, nextInt(below: i + 1)) }
        return p
    }
}
