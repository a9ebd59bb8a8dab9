// A dense layer and the activation after it as one op: activation(x · Wᵀ + b). The product's
// threads add the bias and apply the activation to their own block of the output as soon as
// they have written it, where the two-op form (matmul, then `affineLeakyRelu` or
// `biasActivated`) ran that pass after the product, on the calling thread alone when the output
// is small (an mlp's 64 × 256 layers). Its backward reads the activation's slope and sums the
// bias gradient in one pass. The values are the two ops' bit for bit: the same product split the
// same way, the same float operations on every element, the bias gradient summed over the rows
// in the same order.
import CSupport

/// The activation `Tensor.linearActivated` applies after a dense layer.
public enum LayerActivation: Sendable, Equatable {
    /// Leaky ReLU with a slope ≥ 0 (0 is ReLU): its backward reads the slope off the output.
    case leakyRelu(Float)
    case saturating(SaturatingActivation)

    /// The op's name in the graph (and in `gan bench train --profile`).
    var opName: String {
        switch self {
        case .leakyRelu: return "linearLeakyRelu"
        case .saturating(.sigmoid): return "linearSigmoid"
        case .saturating(.tanh): return "linearTanh"
        }
    }
}

extension Tensor {
    /// `activation(x · weightᵀ + bias)` for x [N, in], weight [out, in] (PyTorch's layout) and
    /// bias [out] or nil (no bias: `activation(x · weightᵀ)`), as one op.
    public static func linearActivated(_ x: Tensor, weight: Tensor, bias: Tensor?, _ activation: LayerActivation) -> Tensor {
        precondition(x.rank == 2 && weight.rank == 2 && x.shape[1] == weight.shape[1],
                     "linearActivated needs x [N, in] and weight [out, in], got \(x.shape) and \(weight.shape)")
        let (rows, outFeatures) = (x.shape[0], weight.shape[0])
        if let bias { precondition(bias.shape == [outFeatures], "linearActivated: bias \(bias.shape) for \(outFeatures) outputs") }
        if case .leakyRelu(let slope) = activation { precondition(slope >= 0, "linearActivated needs a non-negative slope, got \(slope)") }
        let out = Tensor(uninitializedShape: [rows, outFeatures])
        DenseLayerPass.forward(x.storage.base, rows: rows, weight: weight, bias: bias, activation, into: out.storage.base)
        return out.recorded(activation.opName, bias.map { [x, weight, $0] } ?? [x, weight], savesOutput: true,
                            Rules.linearActivated(x, weight, hasBias: bias != nil, activation))
    }
}

extension Kernels {
    /// y = activation(y + bias) on a block of rows and columns of a [·, stride] matrix, in place.
    static func activate(_ y: UnsafeMutablePointer<Float>, stride: Int, rows: Range<Int>, columns: Range<Int>,
                         bias: UnsafeMutablePointer<Float>?, _ activation: LayerActivation) {
        let start = OpTrace.clock()
        defer { OpTrace.record(.activation, since: start, rows.count, columns.count) }
        let n = columns.count, b = bias.map { $0 + columns.lowerBound }
        switch activation {
        case .leakyRelu(let slope):
            let k = LeakyReluK(alpha: slope)
            for r in rows {
                let row = y + r * stride + columns.lowerBound
                affineLeakyRow(row, nil, 1, b, 1, row, n, k)
            }
        case .saturating(let f):
            withSaturatingBuffer { t in
                for r in rows {
                    let row = y + r * stride + columns.lowerBound
                    saturatingRow(row, b, 1, row, n, f, buffer: t)
                }
            }
        }
    }

    /// The upstream gradient g [N, F] through the activation, read off its output y, and (with
    /// `sums`) that summed over the rows, in one pass split by columns: each thread sums whole
    /// columns from row 0 down, the order of `sum(axes: [0])` (which sums a single column as
    /// one contiguous run, in vector lanes, so that one is summed after the pass the same way).
    static func activationGradient(_ g: Tensor, _ y: Tensor, _ activation: LayerActivation, sums: Bool) -> (Tensor, Tensor?) {
        precondition(g.shape == y.shape && g.rank == 2, "activationGradient: gradient \(g.shape) for output \(y.shape)")
        let (rows, columns) = (g.shape[0], g.shape[1])
        let gp = Tensor(uninitializedShape: g.shape)
        let total = sums ? Tensor(uninitializedShape: [columns]) : nil
        activationGradient(g.storage.base, y.storage.base, rows: rows, columns: columns, activation,
                           into: gp.storage.base, sums: total?.storage.base)
        return (gp, total)
    }

    /// `activationGradient` on raw [rows, columns] buffers; `gp` may be `g` itself (each element
    /// is read before it is written, by the same thread).
    static func activationGradient(_ gs: UnsafePointer<Float>, _ ys: UnsafePointer<Float>, rows: Int, columns: Int,
                                   _ activation: LayerActivation, into ps: UnsafeMutablePointer<Float>,
                                   sums total: UnsafeMutablePointer<Float>?) {
        let ts = columns == 1 ? nil : total
        func run<K: BinaryKernel>(_ k: K) {
            Parallel.forChunks(columns, grain: Swift.max(16, (1 << 15) / Swift.max(rows, 1))) { cs in
                let start = OpTrace.clock()
                defer { OpTrace.record(.activationGradient, since: start, rows, cs.count) }
                let lo = cs.lowerBound, n = cs.count
                if rows == 0, let ts { (ts + lo).update(repeating: 0, count: n) }
                for r in 0..<rows {
                    let at = r * columns + lo
                    row1(k, gs + at, 1, ys + at, 1, ps + at, n)
                    if let ts {
                        if r == 0 { (ts + lo).update(from: ps + at, count: n) } else { addInPlace(ts + lo, ps + at, n) }
                    }
                }
            }
        }
        switch activation {
        case .leakyRelu(let slope): run(LeakyGradK(alpha: slope))
        case .saturating(.sigmoid): run(SigmoidGradK())
        case .saturating(.tanh): run(TanhGradK())
        }
        if columns == 1, let total { total[0] = rows == 0 ? 0 : sumContiguous(ps, rows) }
    }
}

extension Rules {
    /// With gp = g · activation′ (read off the output): d/dx = gp · W, d/dW = gpᵀ · x (both at
    /// once, as `matmul`'s rule), d/dbias = gp summed over the rows. Recording a graph, the two-op
    /// form's rules themselves (`affineLeakyRelu`'s or `biasActivated`'s, then `matmul`'s), which
    /// are written in differentiable ops, so gradients of gradients follow.
    static func linearActivated(_ x: Tensor, _ weight: Tensor, hasBias: Bool, _ activation: LayerActivation) -> GradRule {
        let product = matmul(x, weight, false, true)
        return { g, y, needs in
            let y = y!  // recorded with savesOutput
            let wantsBias = hasBias && needs[2]
            let gp: Tensor, total: Tensor?
            if GradMode.isEnabled {
                let rule = switch activation {
                case .leakyRelu(let slope): affineLeakyRelu(y.shape, scaled: nil, hasShift: hasBias, alpha: slope)
                case .saturating(let f): biasActivated([0], f)
                }
                let parts = rule(g, y, [true, wantsBias])
                (gp, total) = (parts[0]!, wantsBias ? parts[1] : nil)
            } else {
                (gp, total) = Kernels.activationGradient(g, y, activation, sums: wantsBias)
            }
            let grads = needs[0] || needs[1] ? product(gp, nil, [needs[0], needs[1]]) : [nil, nil]
            return hasBias ? grads + [total] : grads
        }
    }
}
