// Every primitive's backward rule, in one place. Each rule is written with differentiable
// Tensor ops, so running a backward pass with `createGraph: true` records the rules themselves
// and gradients of gradients follow with no extra code.
//
// A rule receives g (the gradient of the op's output), y (the output, for rules recorded with
// `savesOutput`) and `needs` (which inputs want a gradient), and returns one entry per input.
// Constants that a rule multiplies by (masks, slopes) are built detached: their own derivative
// is zero almost everywhere.

enum Rules {
    // MARK: arithmetic

    static func add(_ a: [Int], _ b: [Int]) -> GradRule {
        { g, _, needs in [needs[0] ? g.sumTo(a) : nil, needs[1] ? g.sumTo(b) : nil] }
    }
    static func sub(_ a: [Int], _ b: [Int]) -> GradRule {
        { g, _, needs in [needs[0] ? g.sumTo(a) : nil, needs[1] ? (-g).sumTo(b) : nil] }
    }
    static func mul(_ a: Tensor, _ b: Tensor) -> GradRule {
        { g, _, needs in [needs[0] ? (g * b).sumTo(a.shape) : nil, needs[1] ? (g * a).sumTo(b.shape) : nil] }
    }
    static func div(_ a: Tensor, _ b: Tensor) -> GradRule {
        { g, _, needs in
            [needs[0] ? (g / b).sumTo(a.shape) : nil,
             needs[1] ? (-(g * a) / b.square()).sumTo(b.shape) : nil]
        }
    }
    static func affine(_ scale: Float) -> GradRule { { g, _, _ in [g * scale] } }

    // MARK: unary math

    static func exp() -> GradRule { { g, y, _ in [g * y!] } }
    static func log(_ x: Tensor) -> GradRule { { g, _, _ in [g / x] } }
    static func sqrt() -> GradRule { { g, y, _ in [g * 0.5 / y!] } }
    static func pow(_ x: Tensor, _ p: Float) -> GradRule { { g, _, _ in [g * x.pow(p - 1) * p] } }
    static func square(_ x: Tensor) -> GradRule { { g, _, _ in [g * x * 2] } }
    static func abs(_ x: Tensor) -> GradRule { { g, _, _ in [g * x.detached().sign()] } }
    static func clamp(_ x: Tensor, _ lo: Float, _ hi: Float) -> GradRule {
        { g, _, _ in [g * x.detached().mapped(InRangeK(lo: lo, hi: hi))] }
    }
    static func minimum(_ a: Tensor, _ b: Tensor) -> GradRule {
        { g, _, needs in
            let takeA = a.detached().compared(.lessEqual, b.detached())
            return [needs[0] ? (g * takeA).sumTo(a.shape) : nil, needs[1] ? (g * (1 - takeA)).sumTo(b.shape) : nil]
        }
    }
    static func maximum(_ a: Tensor, _ b: Tensor) -> GradRule {
        { g, _, needs in
            let takeA = a.detached().compared(.greaterEqual, b.detached())
            return [needs[0] ? (g * takeA).sumTo(a.shape) : nil, needs[1] ? (g * (1 - takeA)).sumTo(b.shape) : nil]
        }
    }
    static func select(_ condition: Tensor, _ a: [Int], _ b: [Int]) -> GradRule {
        { g, _, needs in
            let zero = Tensor(scalar: 0)
            return [needs[0] ? Tensor.select(condition, g, zero).sumTo(a) : nil,
                    needs[1] ? Tensor.select(condition, zero, g).sumTo(b) : nil]
        }
    }

    // MARK: activations

    static func leakyRelu(_ x: Tensor, _ alpha: Float) -> GradRule {
        { g, _, _ in [leakyGradient(g, x, alpha: alpha)] }
    }
    static func sigmoid() -> GradRule {
        { g, y, _ in
            let y = y!
            return [GradMode.isEnabled ? g * y * (1 - y) : Tensor.zipped(g, y, SigmoidGradK())]
        }
    }
    static func tanh() -> GradRule {
        { g, y, _ in
            let y = y!
            return [GradMode.isEnabled ? g * (1 - y.square()) : Tensor.zipped(g, y, TanhGradK())]
        }
    }
    static func softplus(_ x: Tensor) -> GradRule { { g, _, _ in [g * x.sigmoid()] } }

    static func binaryCrossEntropy(_ p: Tensor, _ t: Tensor) -> GradRule {
        { g, _, _ in [g * (p - t) / (p * (1 - p)).clamp(min: 1e-12)] }
    }

    // MARK: reductions

    static func sum(_ inShape: [Int], _ keptShape: [Int]) -> GradRule {
        { g, _, _ in [g.reshaped(keptShape).expanded(to: inShape)] }
    }
    static func max(_ x: Tensor, _ kept: Tensor) -> GradRule {
        { g, _, _ in
            // Ties share the gradient equally, as torch.amax does.
            let hit = x.detached().compared(.equal, kept)
            let share = hit / hit.sum(axes: (0..<x.rank).filter { kept.shape[$0] == 1 && x.shape[$0] != 1 }, keepDims: true)
            return [g.reshaped(kept.shape).expanded(to: x.shape) * share]
        }
    }

    // MARK: shape

    static func reshape(_ inShape: [Int]) -> GradRule { { g, _, _ in [g.reshaped(inShape)] } }
    static func permute(_ order: [Int]) -> GradRule {
        var inverse = [Int](repeating: 0, count: order.count)
        for (i, o) in order.enumerated() { inverse[o] = i }
        return { g, _, _ in [g.permuted(inverse)] }
    }
    static func expand(_ inShape: [Int]) -> GradRule { { g, _, _ in [g.sumTo(inShape)] } }
    static func slice(_ inShape: [Int], _ ranges: [Range<Int>]) -> GradRule {
        { g, _, _ in [g.padded((0..<inShape.count).map { (ranges[$0].lowerBound, inShape[$0] - ranges[$0].upperBound) })] }
    }
    static func pad(_ inShape: [Int], _ before: [Int]) -> GradRule {
        { g, _, _ in [g.sliced((0..<inShape.count).map { before[$0]..<(before[$0] + inShape[$0]) })] }
    }
    static func concat(_ sizes: [Int], axis: Int) -> GradRule {
        { g, _, needs in
            var start = 0
            return sizes.enumerated().map { k, n in
                defer { start += n }
                return needs[k] ? g.sliced(axis: axis, start..<(start + n)) : nil
            }
        }
    }

    // MARK: linear algebra

    static func matmul(_ a: Tensor, _ b: Tensor, _ ta: Bool, _ tb: Bool) -> GradRule {
        { g, _, needs in
            let gradA: () -> Tensor, gradB: () -> Tensor
            switch (ta, tb) {
            case (false, false):
                gradA = { Tensor.matmul(g, b, transposeB: true) }
                gradB = { Tensor.matmul(a, g, transposeA: true) }
            case (true, false):
                gradA = { Tensor.matmul(b, g, transposeB: true) }
                gradB = { Tensor.matmul(a, g) }
            case (false, true):
                gradA = { Tensor.matmul(g, b) }
                gradB = { Tensor.matmul(g, a, transposeA: true) }
            case (true, true):
                gradA = { Tensor.matmul(b, g, transposeA: true, transposeB: true) }
                gradB = { Tensor.matmul(g, a, transposeA: true, transposeB: true) }
            }
            // Both products at once, one per thread (b's gradient, a dense layer's weight
            // gradient, on the calling thread), when no graph is recorded (recording is
            // single-threaded): see `pairsGradientProducts`.
            let inner = ta ? a.shape[a.rank - 2] : a.shape[a.rank - 1]
            let flopsEach = 2 * a.count * b.count / Swift.max(inner, 1)
            if needs[0] && needs[1] && !GradMode.isEnabled && pairsGradientProducts(flopsEach: flopsEach) {
                var da: Tensor?, db: Tensor?
                Parallel.split(2) { p in if p == 0 { db = gradB() } else { da = gradA() } }
                return [da, db]
            }
            return [needs[0] ? gradA() : nil, needs[1] ? gradB() : nil]
        }
    }

    // MARK: convolution (see Convolution.swift for why these three close the set)

    static func conv2d(_ x: Tensor, _ w: Tensor, _ geo: ConvGeometry) -> GradRule {
        let size = geo.imageSize(x.shape)
        return { g, _, needs in
            [needs[0] ? Tensor.convTranspose2d(g, weight: w, geo, outputSize: size) : nil,
             needs[1] ? Tensor.conv2dWeightGrad(x, g, geo) : nil]
        }
    }
    static func convTranspose2d(_ x: Tensor, _ w: Tensor, _ geo: ConvGeometry) -> GradRule {
        { g, _, needs in
            // Without a graph to record, both gradients come from one unfolding of g.
            if needs[0] && needs[1] && !GradMode.isEnabled && geo.strideOneDual == nil && !geo.channelsLast && fuseTransposedBackward {
                let (dx, dw) = Tensor.conv2dAndWeightGradRaw(g, w, x, geo)
                return [dx, dw]
            }
            return [needs[0] ? Tensor.conv2d(g, weight: w, geo) : nil,
             needs[1] ? Tensor.conv2dWeightGrad(g, x, geo) : nil]
        }
    }
    static func conv2dWeightGrad(_ x: Tensor, _ gy: Tensor, _ geo: ConvGeometry) -> GradRule {
        let size = geo.imageSize(x.shape)
        return { g, _, needs in
            [needs[0] ? Tensor.convTranspose2d(gy, weight: g, geo, outputSize: size) : nil,
             needs[1] ? Tensor.conv2d(x, weight: g, geo) : nil]
        }
    }

    // MARK: indexing

    static func indexSelect(_ inShape: [Int], _ indices: [Int]) -> GradRule {
        { g, _, _ in [g.indexAdd(rows: inShape[0], indices)] }
    }
    static func indexAdd(_ indices: [Int]) -> GradRule { { g, _, _ in [g.indexSelect(indices)] } }

    /// Max pooling and gatherFlat send the gradient back to the gathered positions;
    /// scatterFlat's gradient gathers from them.
    static func gatherFlat(_ positions: IndexMap, _ inShape: [Int]) -> GradRule {
        { g, _, _ in [g.scatterFlat(positions, inShape)] }
    }
    static func scatterFlat(_ positions: IndexMap, _ inShape: [Int]) -> GradRule {
        { g, _, _ in [g.gatherFlat(positions, inShape)] }
    }
}
